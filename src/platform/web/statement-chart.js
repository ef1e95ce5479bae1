// Runs in the member's browser on the statement page (src/platform/statement-page.ts, which inlines
// it): turns the page's UTC times into local time and draws the chart of money per interval as SVG
// from the rows the page carries as JSON. No library: the page must work offline and on a Pi.
(() => {
  const NS = 'http://www.w3.org/2000/svg';
  const data = JSON.parse(document.getElementById('statement-data').textContent);
  const rows = data.intervals;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const starts = rows.map((r) => new Date(r.interval));
  const severalDays = new Set(starts.map((d) => d.toDateString())).size > 1;
  const clock = (d) => d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const tickLabel = (d) =>
    severalDays
      ? d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })
      : clock(d);
  const fullTime = (d) =>
    d.toLocaleString([], { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  const signed = (x, decimals) => {
    const text = Math.abs(x).toFixed(decimals);
    return Number(text) === 0 ? text : (x < 0 ? '\u2212' : '+') + text;
  };

  // The period in full; the table's rows as short as the period allows (the date only over several days).
  for (const t of document.querySelectorAll('time[datetime]')) {
    const when = new Date(t.dateTime);
    t.title = `${fullTime(when)} (${zone}); ${t.dateTime}`;
    t.textContent = t.closest('#intervals') ? tickLabel(when) : fullTime(when);
  }
  const column = document.getElementById('interval-column');
  if (column) column.textContent = `Start (local time, ${zone})`;

  const svg = document.getElementById('chart');
  const add = (parent, name, attributes, text) => {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    parent.appendChild(node);
    return node;
  };
  const W = 900;
  const H = 340;
  const left = 84;
  const right = 16;
  const top = 16;
  const bottom = 56;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const xLabel = `Interval start (local time, ${zone})`;
  add(svg, 'text', { x: left + plotW / 2, y: H - 10, 'text-anchor': 'middle', class: 'axis-label' }, xLabel);
  add(
    svg,
    'text',
    { x: 0, y: 0, transform: `translate(16 ${top + plotH / 2}) rotate(-90)`, 'text-anchor': 'middle' },
    'Money (settlement currency)',
  );
  if (rows.length === 0) {
    add(svg, 'text', { x: left + plotW / 2, y: top + plotH / 2, 'text-anchor': 'middle' }, 'No settled interval');
    return;
  }

  const values = rows.flatMap((r) => [r.net, r.savings]).filter((v) => v !== null);
  let lo = Math.min(0, ...values);
  let hi = Math.max(0, ...values);
  if (hi - lo < 1e-9) hi = lo + 1;
  const raw = (hi - lo) / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  lo = Math.floor(lo / step - 1e-9) * step;
  hi = Math.ceil(hi / step - 1e-9) * step;
  const decimals = Math.min(4, Math.max(0, -Math.floor(Math.log10(step))));
  const y = (v) => top + ((hi - v) / (hi - lo)) * plotH;
  for (let v = lo; v <= hi + step / 2; v += step) {
    const at = y(v);
    const zero = Math.abs(v) < step / 2;
    add(svg, 'line', { x1: left, x2: left + plotW, y1: at, y2: at, stroke: zero ? '#333' : '#d9d9d9' });
    add(svg, 'text', { x: left - 6, y: at + 4, 'text-anchor': 'end', class: 'tick' }, signed(v, decimals));
  }

  const band = plotW / rows.length;
  const barWidth = Math.max(1, band * 0.6);
  const centre = (i) => left + band * (i + 0.5);
  const every = Math.ceil(rows.length / (severalDays ? 6 : 12));
  rows.forEach((r, i) => {
    const when = tickLabel(starts[i]);
    const top0 = y(Math.max(0, r.net));
    const height = Math.max(1, Math.abs(y(r.net) - y(0)));
    const bar = add(svg, 'rect', {
      class: 'bar-net',
      x: centre(i) - barWidth / 2,
      y: r.net < 0 ? y(0) : top0,
      width: barWidth,
      height,
      fill: '#2f6db5',
      'data-interval': r.interval,
      'data-value': r.net,
    });
    const savings = r.savings === null ? 'not known' : signed(r.savings, 4);
    add(bar, 'title', {}, `${fullTime(starts[i])}: net ${signed(r.net, 4)}, savings ${savings}`);
    if (i % every === 0) {
      add(svg, 'line', { x1: centre(i), x2: centre(i), y1: top + plotH, y2: top + plotH + 5, stroke: '#333' });
      add(svg, 'text', { x: centre(i), y: top + plotH + 20, 'text-anchor': 'middle', class: 'tick' }, when);
    }
  });

  // Savings: diamonds joined by a line, broken where the level above's price was not known.
  let segment = [];
  const drawSegment = () => {
    if (segment.length > 1)
      add(svg, 'polyline', { points: segment.join(' '), fill: 'none', stroke: '#8a4500', 'stroke-width': 2 });
    segment = [];
  };
  rows.forEach((r, i) => {
    if (r.savings === null) drawSegment();
    else segment.push(`${centre(i)},${y(r.savings)}`);
  });
  drawSegment();
  const size = Math.min(10, Math.max(5, band * 0.35));
  rows.forEach((r, i) => {
    if (r.savings === null) return;
    const dot = add(svg, 'rect', {
      class: 'dot-savings',
      x: centre(i) - size / 2,
      y: y(r.savings) - size / 2,
      width: size,
      height: size,
      fill: '#8a4500',
      stroke: '#fff',
      'stroke-width': 1.5,
      transform: `rotate(45 ${centre(i)} ${y(r.savings)})`,
      'data-interval': r.interval,
      'data-value': r.savings,
    });
    add(dot, 'title', {}, `${fullTime(starts[i])}: savings ${signed(r.savings, 4)}`);
  });
  add(svg, 'line', { x1: left, x2: left, y1: top, y2: top + plotH, stroke: '#333' });

  const total = (key) => rows.reduce((s, r) => (s === null || r[key] === null ? null : s + r[key]), 0);
  const savingsTotal = total('savings');
  document.getElementById('chart-desc').textContent =
    `${rows.length} intervals from ${fullTime(starts[0])} to ${fullTime(starts[rows.length - 1])} (${zone}); ` +
    `net over them ${signed(total('net'), 4)}, savings ${savingsTotal === null ? 'not known' : signed(savingsTotal, 4)}. ` +
    'The same figures are in the table below.';
})();
