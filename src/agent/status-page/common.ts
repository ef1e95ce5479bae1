/**
 * Helpers every part of the status page uses (browser JavaScript, kept as a string: the page has no
 * build step). Escaping, number and clock formatting, and keyed children so that a refresh updates
 * the elements it drew before instead of replacing them (scroll position and open toggles stay).
 */
export const COMMON_JS = `
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
const num = (v, digits) => (isNum(v) ? v.toFixed(digits) : '–');
const first = (v) => (Array.isArray(v) ? v[0] : v);
const clock = (ms) => new Date(ms).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
const timeTag = (ms) => '<time datetime="' + new Date(ms).toISOString() + '">' + clock(ms) + '</time>';
/** The child of parent with data-key=key, made from html (one element) when it is not there yet. */
function keyed(parent, key, html) {
  for (const child of parent.children) if (child.dataset.key === key) return child;
  const holder = document.createElement('template');
  holder.innerHTML = html.trim();
  const el = holder.content.firstElementChild;
  el.dataset.key = key;
  parent.appendChild(el);
  return el;
}
/** Removes the keyed children of parent whose key is not in keys. */
function dropOthers(parent, keys) {
  for (const child of [...parent.children]) if (child.dataset.key !== undefined && !keys.includes(child.dataset.key)) child.remove();
}
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}
/** Replaces el's content only when it changed. */
function setHtml(el, html) {
  if (el.dataset.drawn !== html) {
    el.innerHTML = html;
    el.dataset.drawn = html;
  }
}
`;
