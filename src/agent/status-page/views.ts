/**
 * The operator view and the member view (browser JavaScript as a string), drawn from `/api/state`
 * every two seconds: the alarm list, a card per cell (feeder diagram, energy flows between cells and
 * to the level above), the market per interval, curtailment, time charts, the settlement card, the
 * bench's report charts, and a card per gateway with its raw state behind a toggle. `?member=ID` or
 * `/member/ID` shows one house instead.
 */
export const VIEWS_JS = String.raw`
const qs = new URLSearchParams(location.search); const token = qs.get('token');
const memberPath = /\/member\/([^/]+)\/?$/.exec(location.pathname);
const member = qs.get('member') || (memberPath ? decodeURIComponent(memberPath[1]) : null);
const root = memberPath ? location.pathname.slice(0, memberPath.index + 1) : '';
const withToken = (url) => (token ? url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token) : url);
const fmt = (v) => typeof v === 'number' ? (Number.isInteger(v) || Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(3)) : v === null || v === undefined ? '–' : esc(v);
const kv = (k, v) => '<span class="kv">' + esc(k) + ' <b>' + fmt(v) + '</b></span>';
const role = (g, name) => (g.roles && g.roles[name]) || null;
const limitLines = (l) => [{ v: l.max, label: l.max + ' pu max' }, { v: l.min, label: l.min + ' pu min' }];
const cellsOf = (s, gws) => (s.simulation && s.simulation.cells) || [...new Set(gws.map((g) => g.cell).filter(Boolean))];

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

/** What flows out of a cell: to the other cells and to the level above, as its coupling agent last traded it (slot 1). */
function flowsText(tx) {
  const ca = tx && role(tx, 'coupling-agent');
  const t = ca && ca.upwardTrade;
  if (!t) return 'Flows between cells: none traded yet.';
  const neighbours = Object.entries(t.exchangeKWh || {}).map(([peer, e]) => 'with ' + peer + ' ' + num(first(e), 3) + ' kWh');
  const up = (first(t.upstreamImportKWh) || 0) - (first(t.upstreamExportKWh) || 0);
  return 'Flows in the interval of ' + clock(Number(t.session)) + ' (slot 1): ' + (neighbours.length ? neighbours.join(', ') : 'nothing with other cells') +
    '; level above: ' + (up >= 0 ? 'imports ' + num(up, 3) : 'exports ' + num(-up, 3)) + ' kWh; upper market ' + (t.converged ? 'converged' : 'not converged') + ' in ' + t.rounds + ' rounds.';
}

function drawCells(s, gws) {
  const host = document.getElementById('cells');
  const cells = cellsOf(s, gws).filter((c) => gws.some((g) => g.cell === c && (role(g, 'voltage-agent') || g.kind === 'transformer')));
  for (const cell of cells) {
    const card = keyed(host, cell, '<section class="card cell"><h2></h2><div class="feeder-box"></div><p class="flows"></p></section>');
    setText(card.querySelector('h2'), 'Cell ' + cell + ': feeder from the transformer');
    drawFeeder(card.querySelector('.feeder-box'), feederModel(cell, gws));
    setText(card.querySelector('.flows'), flowsText(gws.find((g) => g.cell === cell && g.kind === 'transformer')));
  }
  dropOthers(host, cells);
}

function drawMarket(gws) {
  const rows = gws.flatMap((g) => {
    const mg = role(g, 'mg-trader');
    return mg ? (mg.recentSessions || []).map((m) => ({ cell: g.cell, m })) : [];
  }).sort((a, b) => Number(b.m.session) - Number(a.m.session) || String(a.cell).localeCompare(String(b.cell))).slice(0, 16);
  document.getElementById('market-section').hidden = rows.length === 0;
  setHtml(document.querySelector('#market tbody'), rows.map(({ cell, m }) => '<tr><td>' + timeTag(Number(m.session)) + '</td><td>' + esc(cell) + '</td><td class="num">' + num(first(m.prices), 4) +
    '</td><td class="num">' + num(first(m.demandKWh), 3) + '</td><td class="num">' + num(first(m.gridImportKWh), 3) + '</td><td>' + (m.converged ? '✓ yes' : '✗ no') + '</td><td class="num">' + m.rounds + '</td></tr>').join(''));
}

function curtailmentOf(g) {
  const p = role(g, 'prosumer'), va = role(g, 'voltage-agent');
  const limits = Object.values((va && va.setpoints) || {}).map((x) => x.limitPct).filter(isNum);
  return {
    limitPct: limits.length ? Math.min(...limits) : null,
    marketKWh: p && p.dispatch ? first(p.dispatch.curtailKWh) : null,
    drKWh: p && p.drDispatch ? p.drDispatch.curtailKWh : null,
    drInterval: p && p.drDispatch ? Number(p.drDispatch.interval) : null,
  };
}

function drawCurtailment(gws) {
  const houses = gws.filter((g) => role(g, 'prosumer') || role(g, 'voltage-agent'));
  document.getElementById('curtailment-section').hidden = houses.length === 0;
  setHtml(document.querySelector('#curtailment tbody'), houses.map((g) => {
    const c = curtailmentOf(g);
    return '<tr><td><a href="' + withToken('?member=' + encodeURIComponent(g.id)) + '">' + esc(g.id) + '</a></td><td>' + esc(g.cell) + '</td><td class="num">' + (c.limitPct === null ? '–' : num(c.limitPct, 0) + ' %') +
      '</td><td class="num">' + num(c.marketKWh, 3) + '</td><td class="num">' + num(c.drKWh, 3) + (c.drInterval ? ' (' + timeTag(c.drInterval) + ')' : '') + '</td></tr>';
  }).join(''));
}

function drawChart(host, spec) {
  setHtml(keyed(host, spec.id, '<div class="card chart-card"></div>'), timeChart(spec));
}

function drawCharts(gws) {
  const host = document.getElementById('charts');
  const specs = [];
  const inverters = gws.filter((g) => role(g, 'voltage-agent'));
  if (inverters.length) {
    const l = role(inverters[0], 'voltage-agent').limitsPu || { min: 0.95, max: 1.05 };
    specs.push({ id: 'chart-voltage', title: 'Voltage at each house', unit: 'voltage (pu)', limits: limitLines(l),
      series: inverters.map((g) => ({ name: g.id, points: role(g, 'voltage-agent').history || [] })) });
  }
  const traders = gws.filter((g) => role(g, 'mg-trader'));
  if (traders.length) {
    specs.push({ id: 'chart-price', title: 'Market price per cell (slot 1)', unit: 'price per kWh',
      series: traders.map((g) => ({ name: g.cell + ' (' + g.id + ')', points: role(g, 'mg-trader').history || [] })) });
  }
  const couplers = gws.filter((g) => role(g, 'coupling-agent'));
  if (couplers.length) {
    specs.push({ id: 'chart-upstream', title: 'Exchange with the level above (import positive, slot 1)', unit: 'energy (kWh per slot)', limits: [{ v: 0, label: '0 kWh' }],
      series: couplers.map((g) => ({ name: g.cell + ' (' + g.id + ')', points: (role(g, 'coupling-agent').recentUpwardTrades || [])
        .map((t) => ({ ts: t.endedAt || Number(t.session), v: (first(t.upstreamImportKWh) || 0) - (first(t.upstreamExportKWh) || 0) })) })) });
  }
  for (const spec of specs) drawChart(host, spec);
  dropOthers(host, specs.map((x) => x.id));
}

function drawGateways(gws) {
  const host = document.getElementById('gateways');
  for (const g of gws) {
    const card = keyed(host, g.id, '<section class="card gateway"><h3></h3><p class="gw-line"></p><details><summary>Raw state</summary><pre class="raw"></pre></details></section>');
    setText(card.querySelector('h3'), g.id + ' · ' + g.kind + (g.cell ? ' · cell ' + g.cell : ''));
    const devices = Object.entries(g.devices || {});
    const down = devices.filter(([, d]) => !d.up).map(([id]) => id);
    const peers = g.peers || [];
    setText(card.querySelector('.gw-line'), devices.length + ' device(s)' + (down.length ? ', down: ' + down.join(', ') : ', all up') + ' · peers ' + peers.filter((p) => p.online).length + '/' + peers.length + ' online · comms ' +
      (g.comms ? g.comms.backend + (g.comms.connected ? ' connected' : ' disconnected') +
        (g.comms.links ? ' (' + g.comms.links.map((l) => l.backend + (l.connected ? ' up' : ' down')).join(', ') + ')' : '') : 'none') + ' · roles ' + Object.keys(g.roles || {}).join(', '));
    const raw = card.querySelector('pre.raw');
    if (card.querySelector('details').open || !raw.textContent) setText(raw, JSON.stringify(g, null, 1));
  }
  dropOthers(host, gws.map((g) => g.id));
}

function drawOperator(s, gws) {
  const alarms = collectAlarms(s, gws);
  setHtml(document.querySelector('#alarms tbody'), alarmRowsHtml(alarms));
  setText(document.getElementById('alarm-count'), alarms.filter((a) => a.clearedAt === undefined || a.clearedAt === null).length + ' active');
  drawCells(s, gws);
  drawMarket(gws);
  drawCurtailment(gws);
  drawCharts(gws);
  settlement(gws);
  const plots = (s.simulation && s.simulation.plots) || [];
  const plotHost = document.getElementById('plots');
  for (const p of plots) keyed(plotHost, p, '<div class="card"><img style="width:100%" alt="' + esc(p) + '"></div>').querySelector('img').src = withToken(root + 'plots/' + encodeURIComponent(p) + '?t=' + Date.now());
  drawGateways(gws);
}

/** What the member page has seen of the house since it opened (the state holds the last reading only). */
const memberSeen = { power: [], prices: new Map() };
let statementChecked = false;
async function checkStatement(id) {
  statementChecked = true;
  const href = withToken(root + 'statement?member=' + encodeURIComponent(id));
  const r = await fetch(href).catch(() => null);
  const el = document.getElementById('member-statement');
  el.innerHTML = r && r.ok ? '<a href="' + esc(href) + '">Statement of ' + esc(id) + '</a> (settled intervals, co-signed)' : 'The statement is served by the platform’s page (<code>/statement?member=' + esc(id) + '</code>).';
}

function drawMember(s, gws) {
  const g = gws.find((x) => x.id === member);
  setText(document.getElementById('member-title'), 'House ' + member);
  const box = document.getElementById('member-figures');
  if (!g) { setHtml(box, '<p class="bad">No gateway ' + esc(member) + ' in this state.</p>'); return; }
  if (!statementChecked) checkStatement(g.id);
  const p = role(g, 'prosumer') || {}, va = role(g, 'voltage-agent') || {};
  const m = feederModel(g.cell, [g]).buses.flatMap((b) => b.houses)[0] || { pvW: null, loadW: null };
  const r = p.lastReading || {};
  const netW = isNum(r.netW) ? r.netW : isNum(m.loadW) && isNum(m.pvW) ? m.loadW - m.pvW : null;
  const now = Date.now();
  if (isNum(m.pvW)) memberSeen.power.push({ ts: now, pvW: m.pvW, loadW: m.loadW, netW });
  if (memberSeen.power.length > 900) memberSeen.power.shift();
  if (p.dispatch) memberSeen.prices.set(p.dispatch.session, first(p.dispatch.prices));
  const c = curtailmentOf(g);
  const l = va.limitsPu || { min: 0.95, max: 1.05 };
  setHtml(box, '<p>' + esc(g.kind) + ' · cell ' + esc(g.cell) + (va.bus ? ' · bus ' + esc(va.bus) : '') + '</p><dl class="figures">' +
    '<dt>PV</dt><dd id="member-pv">' + kW(m.pvW) + '</dd><dt>Load</dt><dd id="member-load">' + kW(m.loadW) + '</dd>' +
    '<dt>Exchange</dt><dd id="member-exchange">' + (netW === null ? '–' : netW >= 0 ? 'takes ' + kW(netW) + ' from the grid' : 'feeds in ' + kW(-netW)) + '</dd>' +
    '<dt>Voltage</dt><dd>' + (isNum(va.voltagePu) ? num(va.voltagePu, 3) + ' pu (limits ' + l.min + '–' + l.max + ' pu)' : '–') + '</dd>' +
    '<dt>Price</dt><dd id="member-price">' + (p.dispatch ? num(first(p.dispatch.prices), 4) + ' per kWh in the interval of ' + timeTag(Number(p.dispatch.session)) + ', payment ' + num(p.dispatch.paymentTotal, 3) : '–') + '</dd>' +
    '<dt>Curtailment</dt><dd id="member-curtailment">PV limit ' + (c.limitPct === null ? '–' : num(c.limitPct, 0) + ' %') + ' · market ' + num(c.marketKWh, 3) + ' kWh · demand response ' + num(c.drKWh, 3) + ' kWh</dd></dl>');
  const host = document.getElementById('member-charts');
  const kWSeries = (name, key) => ({ name, points: memberSeen.power.filter((x) => isNum(x[key])).map((x) => ({ ts: x.ts, v: x[key] / 1000 })) });
  drawChart(host, { id: 'chart-member-power', title: 'PV, load and exchange of ' + g.id, unit: 'power (kW)', limits: [{ v: 0, label: '0 kW' }],
    series: [kWSeries('PV', 'pvW'), kWSeries('load', 'loadW'), kWSeries('exchange (import positive)', 'netW')] });
  drawChart(host, { id: 'chart-member-voltage', title: 'Voltage at ' + g.id, unit: 'voltage (pu)', limits: limitLines(l), series: [{ name: g.id, points: va.history || [] }] });
  const tx = gws.find((x) => x.cell === g.cell && role(x, 'mg-trader'));
  const prices = tx ? role(tx, 'mg-trader').history || [] : [...memberSeen.prices].map(([session, v]) => ({ ts: Number(session), v }));
  drawChart(host, { id: 'chart-member-price', title: 'Market price in cell ' + g.cell + ' (slot 1)', unit: 'price per kWh', series: [{ name: 'price', points: prices }] });
}

async function refresh() {
  try {
    const r = await fetch(root + 'api/state', { headers: token ? { authorization: 'Bearer ' + token } : {} });
    if (!r.ok) throw new Error(r.status + ' ' + r.statusText);
    const s = await r.json(); const gws = s.gateways || [s];
    const sim = s.simulation ? ' · simulated day ' + fmt(s.simulation.hourOfDay) + ' h, speed-up ' + s.simulation.speedup + '×' : '';
    setText(document.getElementById('summary'), gws.length + ' gateway(s)' + sim + ' · updated ' + clock(Date.now()));
    const machine = s.machine || (s.simulation && s.simulation.machine);
    const m = document.getElementById('machine');
    m.hidden = !machine;
    if (machine) { setText(m, machine.text); m.className = machine.keepingUp ? '' : 'bad'; }
    if (member) drawMember(s, gws); else drawOperator(s, gws);
  } catch (e) { setText(document.getElementById('summary'), 'no answer from the gateway: ' + e.message); }
}
document.getElementById(member ? 'member' : 'operator').hidden = false;
refresh(); setInterval(refresh, 2000);
`;
