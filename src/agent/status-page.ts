/**
 * The status page: one static HTML document, no build step, small enough for a Pi. It polls
 * `/api/state` every two seconds and draws each gateway's devices, roles and peers, with inline SVG
 * charts of the voltage history (and prices once the market publishes them). It shows one gateway
 * (`run`) or a whole simulated cell (`start`, whose state has a `gateways` list), and for the bench
 * (`bench`, whose state names its `simulation.plots`) the report's charts as they are recorded.
 */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>p2p-edge status</title>
<style>
body{font:14px system-ui,sans-serif;margin:1em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .3em} h2{font-size:1.05em;margin:.2em 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:.8em}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em .8em}
table{border-collapse:collapse;width:100%;table-layout:fixed} td{padding:1px 4px;border-bottom:1px solid #eee;vertical-align:top;overflow-wrap:anywhere}
td:first-child{width:32%} .kv{display:inline-block;margin-right:.8em} .sub{margin-left:.6em}
.ok{color:#1a7f37}.bad{color:#c62828}.dim{color:#777} code{font-size:12px}
svg{width:100%;height:70px;background:#f4f6f8;border-radius:4px}
</style></head><body>
<h1>p2p-edge</h1><div id="summary" class="dim">loading…</div>
<div class="card" id="vchart" hidden><h2>Voltage at each inverter gateway (pu)</h2><svg id="vsvg" viewBox="0 0 300 70" preserveAspectRatio="none"></svg><div class="dim" id="vlegend"></div></div>
<div class="card" id="pchart" hidden><h2>Market price per MG trader (per kWh, first slot)</h2><svg id="psvg" viewBox="0 0 300 70" preserveAspectRatio="none"></svg><div class="dim" id="plegend"></div></div>
<div class="card" id="settlement" hidden></div>
<div class="grid" id="plots"></div>
<div class="grid" id="gateways"></div>
<script>
const qs = new URLSearchParams(location.search); const token = qs.get('token');
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const fmt = (v) => typeof v === 'number' ? (Number.isInteger(v) || Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(3)) : Array.isArray(v) ? v.map((x) => x && typeof x === 'object' ? '<code>' + esc(JSON.stringify(x)) + '</code>' : fmt(x)).join(' / ') : v === null || v === undefined ? '–' : esc(v);
const isTime = (k, v) => typeof v === 'number' && v > 1e12 && (k === 'ts' || k === 'session' || k === 'interval' || /At$/.test(k));
const kv = (k, v) => '<span class="kv">' + esc(k) + ' <b>' + (isTime(k, v) ? new Date(v).toLocaleTimeString() : isTime(k, Number(v)) ? new Date(Number(v)).toLocaleTimeString() : fmt(v)) + '</b></span>';
function fmtValue(v, depth) {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    if (depth > 2) return '<code>' + esc(JSON.stringify(v)).slice(0, 120) + '</code>';
    return Object.entries(v).map(([k, x]) => x && typeof x === 'object' && !Array.isArray(x) ? '<div class="sub">' + esc(k) + ': ' + fmtValue(x, depth + 1) + '</div>' : kv(k, x)).join('');
  }
  return fmt(v);
}
function line(points, lo, hi, colour) {
  if (points.length < 2) return '';
  const t0 = points[0].ts, t1 = points[points.length - 1].ts || t0 + 1;
  const xy = points.map((p) => [300 * (p.ts - t0) / Math.max(1, t1 - t0), 70 - 70 * (p.v - lo) / (hi - lo)]);
  return '<polyline fill="none" stroke="' + colour + '" stroke-width="1.2" points="' + xy.map((p) => p.join(',')).join(' ') + '"/>';
}
function limits(lo, hi, vmin, vmax) {
  return [vmin, vmax].map((v) => { const y = 70 - 70 * (v - lo) / (hi - lo); return '<line x1="0" x2="300" y1="' + y + '" y2="' + y + '" stroke="#c62828" stroke-dasharray="3,3" stroke-width=".6"/>'; }).join('');
}
const colours = ['#1565c0','#2e7d32','#ef6c00','#6a1b9a','#00838f','#ad1457','#5d4037','#455a64'];
function card(g) {
  const devices = Object.entries(g.devices || {}).map(([id, d]) => '<tr><td><b>' + esc(id) + '</b> <span class="' + (d.up ? 'ok' : 'bad') + '">' + (d.up ? 'up' : 'down') + '</span><br><span class="dim">' + esc(d.kind) + ' · ' + esc(d.backend) + '</span></td><td>' +
    Object.entries(d.points || {}).map(([k, p]) => kv(k, p.value) + (p.quality === 'good' ? '' : ' <span class="bad">' + esc(p.quality) + '</span>')).join('') + (d.lastError ? '<br><span class="bad">' + esc(d.lastError) + '</span>' : '') + '</td></tr>').join('');
  const roles = Object.entries(g.roles || {}).map(([name, s]) => '<tr><td><b>' + esc(name) + '</b></td><td>' +
    Object.entries(s).filter(([k]) => !['history', 'intervals', 'recentSessions', 'recentUpwardTrades'].includes(k)).map(([k, v]) => v && typeof v === 'object' && !Array.isArray(v) ? '<div>' + esc(k) + ': ' + fmtValue(v, 1) + '</div>' : kv(k, v)).join('') + '</td></tr>').join('');
  const peers = (g.peers || []).map((p) => '<span class="' + (p.online ? 'ok' : 'bad') + '">' + esc(p.id) + '</span>').join(' ');
  return '<div class="card"><h2>' + esc(g.id) + ' <span class="dim">' + esc(g.kind) + ' · cell ' + esc(g.cell) + '</span></h2>' +
    '<table>' + devices + roles + '</table><div class="dim">peers: ' + (peers || 'none') + ' · comms: ' + esc(g.comms ? g.comms.backend + (g.comms.connected ? ' connected' : ' disconnected') : 'none') + '</div></div>';
}
function settlement(gws) {
  const el = document.getElementById('settlement');
  const platform = gws.find((g) => g.roles && g.roles.platform && g.roles.platform.settlement);
  const parties = gws.filter((g) => g.settlement);
  el.hidden = !platform && !parties.length;
  if (el.hidden) return;
  const s = platform ? platform.roles.platform.settlement : null;
  const open = s ? Math.max(0, s.drafted - s.committed - s.disputes) : 0;
  const problems = parties.filter((g) => g.settlement.ledgerProblem).map((g) => '<div class="bad">' + esc(g.id) + ': ledger problem: ' + esc(g.settlement.ledgerProblem) + '</div>').join('');
  const disputes = parties.filter((g) => g.settlement.lastDispute).map((g) => '<div class="bad">' + esc(g.id) + ' disputed ' + esc(g.settlement.lastDispute.unit) + ': ' + esc(g.settlement.lastDispute.lines.join(', ')) + '</div>').join('');
  el.innerHTML = '<h2>Settlement (co-signed by the parties)</h2>' +
    (s ? kv('drafted', s.drafted) + kv('committed', s.committed) + kv('awaiting signatures', open) + kv('disputed', s.disputes) + kv('signatures refused', s.refusedSignatures) + kv('ledger entries', s.ledgerEntries) + kv('waiting for readings', Object.keys(s.waiting).length) : '') +
    (parties.length ? '<div>' + kv('parties', parties.length) + kv('signed', parties.reduce((a, g) => a + g.settlement.signed, 0)) + kv('signed and seen in the ledger', parties.reduce((a, g) => a + g.settlement.signedInLedger, 0)) + kv('disputed by parties', parties.reduce((a, g) => a + g.settlement.disputed, 0)) + '</div>' : '') +
    problems + disputes + (s ? '<div class="dim">a member’s statement: <code>/statement?member=ID</code> on the platform’s page</div>' : '');
}
function chart(gws, role, prefix, bounds, pad) {
  const hist = gws.map((g) => ({ id: g.id, h: (g.roles && g.roles[role] && g.roles[role].history) || [] })).filter((x) => x.h.length > 1);
  document.getElementById(prefix + 'chart').hidden = hist.length === 0;
  if (!hist.length) return;
  const all = hist.flatMap((x) => x.h.map((p) => p.v)).concat(bounds);
  const lo = Math.min(...all) - pad, hi = Math.max(...all) + pad;
  document.getElementById(prefix + 'svg').innerHTML = (bounds.length ? limits(lo, hi, bounds[0], bounds[1]) : '') + hist.map((x, i) => line(x.h, lo, hi, colours[i % colours.length])).join('');
  document.getElementById(prefix + 'legend').innerHTML = hist.map((x, i) => '<span style="color:' + colours[i % colours.length] + '">■ ' + esc(x.id) + '</span>').join(' ') + ' · ' + fmt(lo) + ' – ' + fmt(hi);
}
async function refresh() {
  try {
    const r = await fetch('api/state', { headers: token ? { authorization: 'Bearer ' + token } : {} });
    if (!r.ok) throw new Error(r.status + ' ' + r.statusText);
    const s = await r.json(); const gws = s.gateways || [s];
    const sim = s.simulation ? ' · simulated day ' + fmt(s.simulation.hourOfDay) + ' h, speed-up ' + s.simulation.speedup + '×' : '';
    document.getElementById('summary').textContent = gws.length + ' gateway(s)' + sim + ' · updated ' + new Date().toLocaleTimeString();
    document.getElementById('gateways').innerHTML = gws.map(card).join('');
    const plots = (s.simulation && s.simulation.plots) || [];
    document.getElementById('plots').innerHTML = plots.map((p) => '<div class="card"><img style="width:100%" alt="' + esc(p) + '" src="plots/' + encodeURIComponent(p) + '?t=' + Date.now() + (token ? '&token=' + encodeURIComponent(token) : '') + '"></div>').join('');
    settlement(gws);
    chart(gws, 'voltage-agent', 'v', [0.95, 1.05], 0.005);
    chart(gws, 'mg-trader', 'p', [], 0.01);
  } catch (e) { document.getElementById('summary').textContent = 'no answer from the gateway: ' + e.message; }
}
refresh(); setInterval(refresh, 2000);
</script></body></html>
`;
