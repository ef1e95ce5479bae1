/**
 * The time chart (browser JavaScript as a string; `test/unit/status-page-chart.test.ts` runs it):
 * `timeChart(spec)` returns one SVG with its title, a time axis with clock-time ticks, a y axis with
 * its unit, labelled limit lines and a legend. Hand-written: a few dozen lines, no library to serve.
 *
 * spec: { id, title, unit, series: [{ name, points: [{ ts, v }] }], limits?: [{ v, label }] }
 */
export const CHART_JS = `
const CHART_COLOURS = ['#1565c0', '#2e7d32', '#ef6c00', '#6a1b9a', '#00838f', '#ad1457', '#5d4037', '#455a64'];
/** A step of 1, 2 or 5 × 10^k giving about n intervals over span. */
function niceStep(span, n) {
  const raw = span / n;
  const k = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * k).find((s) => s >= raw) || 10 * k;
}
const TIME_STEPS_MS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((s) => s * 1000);
function ticksEvery(t0, t1, step) {
  const ticks = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) ticks.push(t);
  return ticks;
}
/** Tick times (ms) on round clock times between t0 and t1: at most n, at least two where a step of 1 s allows. */
function timeTicks(t0, t1, n) {
  let i = TIME_STEPS_MS.findIndex((s) => (t1 - t0) / s <= n);
  if (i < 0) i = TIME_STEPS_MS.length - 1;
  while (i > 0 && ticksEvery(t0, t1, TIME_STEPS_MS[i]).length < 2) i--;
  return ticksEvery(t0, t1, TIME_STEPS_MS[i]);
}
function timeChart(spec) {
  const W = 640, left = 64, right = 12, top = 30, plotH = 150, axisH = 34;
  const series = spec.series.filter((s) => s.points.length > 0);
  const limits = spec.limits || [];
  const values = series.flatMap((s) => s.points.map((p) => p.v)).concat(limits.map((l) => l.v));
  const times = series.flatMap((s) => s.points.map((p) => p.ts));
  let lo = values.length ? Math.min(...values) : 0, hi = values.length ? Math.max(...values) : 1;
  const pad = hi > lo ? (hi - lo) * 0.08 : Math.max(Math.abs(hi) * 0.01, 0.01);
  lo -= pad; hi += pad;
  let t0 = times.length ? Math.min(...times) : Date.now() - 60000, t1 = times.length ? Math.max(...times) : Date.now();
  if (t1 - t0 < 2000) t0 = t1 - 2000;
  const plotW = W - left - right;
  const x = (t) => left + (plotW * (t - t0)) / (t1 - t0);
  const y = (v) => top + plotH - (plotH * (v - lo)) / (hi - lo);
  const r = (v) => Math.round(v * 10) / 10;
  const step = niceStep(hi - lo, 4);
  const decimals = Math.max(0, -Math.floor(Math.log10(step)));
  const parts = [];
  const titleId = spec.id + '-title';
  parts.push('<title id="' + titleId + '">' + esc(spec.title) + '</title>');
  parts.push('<text class="chart-title" x="' + left + '" y="18">' + esc(spec.title) + '</text>');
  parts.push('<rect class="plot" x="' + left + '" y="' + top + '" width="' + plotW + '" height="' + plotH + '"/>');
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) {
    parts.push('<line class="grid" x1="' + left + '" x2="' + (W - right) + '" y1="' + r(y(v)) + '" y2="' + r(y(v)) + '"/>');
    parts.push('<text class="tick y-tick" x="' + (left - 4) + '" y="' + r(y(v) + 4) + '" text-anchor="end">' + v.toFixed(decimals) + '</text>');
  }
  parts.push('<text class="unit" transform="translate(12 ' + (top + plotH / 2) + ') rotate(-90)" text-anchor="middle">' + esc(spec.unit) + '</text>');
  for (const t of timeTicks(t0, t1, 6)) {
    parts.push('<line class="axis" x1="' + r(x(t)) + '" x2="' + r(x(t)) + '" y1="' + (top + plotH) + '" y2="' + (top + plotH + 4) + '"/>');
    parts.push('<text class="tick x-tick" x="' + r(x(t)) + '" y="' + (top + plotH + 16) + '" text-anchor="middle">' + clock(t) + '</text>');
  }
  parts.push('<text class="axis-label" x="' + (W - right) + '" y="' + (top + plotH + 30) + '" text-anchor="end">time (clock)</text>');
  for (const l of limits) {
    parts.push('<line class="limit" x1="' + left + '" x2="' + (W - right) + '" y1="' + r(y(l.v)) + '" y2="' + r(y(l.v)) + '"/>');
    parts.push('<text class="limit-label" x="' + (W - right - 4) + '" y="' + r(y(l.v) - 4) + '" text-anchor="end">' + esc(l.label) + '</text>');
  }
  series.forEach((s, i) => {
    const colour = CHART_COLOURS[i % CHART_COLOURS.length];
    const pts = s.points.map((p) => r(x(p.ts)) + ',' + r(y(p.v))).join(' ');
    parts.push(
      s.points.length > 1
        ? '<polyline class="series" data-series="' + esc(s.name) + '" fill="none" stroke="' + colour + '" stroke-width="1.6" points="' + pts + '"/>'
        : '<circle class="series" data-series="' + esc(s.name) + '" r="3" fill="' + colour + '" cx="' + pts.split(',')[0] + '" cy="' + pts.split(',')[1] + '"/>',
    );
  });
  let lx = left, ly = top + plotH + axisH + 14;
  series.forEach((s, i) => {
    const w = 22 + 7 * s.name.length;
    if (lx + w > W) { lx = left; ly += 16; }
    parts.push('<rect x="' + lx + '" y="' + (ly - 9) + '" width="10" height="10" fill="' + CHART_COLOURS[i % CHART_COLOURS.length] + '"/><text class="legend" x="' + (lx + 14) + '" y="' + ly + '">' + esc(s.name) + '</text>');
    lx += w;
  });
  if (!series.length) parts.push('<text class="legend" x="' + left + '" y="' + ly + '">no values yet</text>');
  const H = ly + 8;
  return '<svg class="chart" id="' + esc(spec.id) + '" role="img" aria-labelledby="' + titleId + '" viewBox="0 0 ' + W + ' ' + H + '" width="100%">' + parts.join('') + '</svg>';
}
`;
