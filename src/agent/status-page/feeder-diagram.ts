/**
 * The feeder diagram of one cell (browser JavaScript as a string): the transformer and the buses
 * along the cable in order from it, each bus coloured by its voltage against the limits and labelled
 * with its value in pu and a word (so that status does not rest on colour), the PV and load of each
 * house at the bus, and the transformer's exchange with the grid.
 *
 * `feederModel(cell, gateways)` reads what the gateways' states carry: the voltage agent's `bus`,
 * `voltagePu`, `limitsPu` and `feederBuses` (the buses from the transformer), the prosumer's last
 * reading, and the MG trader's `cellNetW` on the transformer's gateway. `drawFeeder(el, model)` draws
 * it once and afterwards changes only texts and colours, unless the buses changed.
 */
export const FEEDER_JS = `
const BUS_FILL = { within: '#2e7d32', high: '#c62828', low: '#e65100', unknown: '#757575' };
const BUS_WORD = { within: 'within limits', high: 'above max', low: 'below min', unknown: 'no reading' };
const naturalOrder = (a, b) => a.localeCompare(b, 'en', { numeric: true });
function feederModel(cell, gateways) {
  const inCell = gateways.filter((g) => g.cell === cell);
  const tx = inCell.find((g) => g.kind === 'transformer');
  const houses = inCell.flatMap((g) => {
    const va = g.roles && g.roles['voltage-agent'];
    if (!va) return [];
    const reading = (g.roles.prosumer && g.roles.prosumer.lastReading) || {};
    const power = (kind) => Object.values(g.devices || {}).filter((d) => d.kind === kind && d.points && d.points.acPowerW).reduce((sum, d) => sum + d.points.acPowerW.value, 0);
    return [{
      id: g.id, bus: va.bus || g.id, voltagePu: isNum(va.voltagePu) ? va.voltagePu : null, limitsPu: va.limitsPu, feederBuses: va.feederBuses,
      pvW: isNum(reading.pvW) ? reading.pvW : power('pv-inverter'), loadW: isNum(reading.loadW) ? reading.loadW : power('household-meter'),
    }];
  });
  const withOrder = houses.find((h) => h.feederBuses && h.feederBuses.length);
  const order = withOrder ? withOrder.feederBuses.slice(1) : [...new Set(houses.map((h) => h.bus))].sort(naturalOrder);
  for (const h of houses) if (!order.includes(h.bus)) order.push(h.bus);
  const limitsPu = (houses.find((h) => h.limitsPu) || {}).limitsPu || { min: 0.95, max: 1.05 };
  const buses = order.map((id) => {
    const at = houses.filter((h) => h.bus === id);
    const v = at.map((h) => h.voltagePu).filter((x) => x !== null);
    // The reading farthest from 1 pu stands for the bus when two gateways share it.
    const voltagePu = v.length ? v.reduce((a, b) => (Math.abs(b - 1) > Math.abs(a - 1) ? b : a)) : null;
    const status = voltagePu === null ? 'unknown' : voltagePu > limitsPu.max ? 'high' : voltagePu < limitsPu.min ? 'low' : 'within';
    return { id, voltagePu, status, houses: at.map((h) => ({ id: h.id, pvW: h.pvW, loadW: h.loadW })) };
  });
  const mg = tx && tx.roles && tx.roles['mg-trader'];
  return { cell, limitsPu, transformer: tx ? { id: tx.id, netW: mg && isNum(mg.cellNetW) ? mg.cellNetW : null } : null, buses };
}
const kW = (w) => num(w / 1000, 1) + ' kW';
function transformerText(t) {
  if (!t) return 'transformer: no gateway';
  if (t.netW === null) return t.id + ': exchange not known yet';
  return t.id + (t.netW >= 0 ? ': takes ' + kW(t.netW) + ' from the grid' : ': feeds ' + kW(-t.netW) + ' into the grid');
}
const busVoltageText = (b) => (b.voltagePu === null ? '– pu' : num(b.voltagePu, 3) + ' pu') + ' · ' + BUS_WORD[b.status];
const houseText = (h) => h.id + ': PV ' + kW(h.pvW) + ' · load ' + kW(h.loadW);
const SPACING = 230;
function feederSvg(m) {
  const W = 120 + Math.max(1, m.buses.length) * SPACING, lines = Math.max(1, ...m.buses.map((b) => b.houses.length));
  const H = 110 + 16 * lines;
  const parts = ['<title>Feeder of ' + esc(m.cell) + ': buses from the transformer, voltage against ' + m.limitsPu.min + '–' + m.limitsPu.max + ' pu</title>'];
  parts.push('<line class="cable" x1="40" y1="46" x2="' + (W - SPACING / 2) + '" y2="46"/>');
  parts.push('<rect class="transformer" x="16" y="30" width="48" height="32" rx="4"/><text class="tx-label" x="40" y="51" text-anchor="middle">TX</text>');
  parts.push('<text class="tx-exchange" x="16" y="20">' + esc(transformerText(m.transformer)) + '</text>');
  m.buses.forEach((b, i) => {
    const cx = 120 + i * SPACING + SPACING / 2 - 40;
    parts.push('<g class="bus" data-bus="' + esc(b.id) + '" data-status="' + b.status + '">' +
      '<circle cx="' + cx + '" cy="46" r="11" fill="' + BUS_FILL[b.status] + '"/>' +
      '<text class="bus-id" x="' + cx + '" y="76" text-anchor="middle">' + esc(b.id) + '</text>' +
      '<text class="bus-voltage" x="' + cx + '" y="93" text-anchor="middle">' + esc(busVoltageText(b)) + '</text>' +
      b.houses.map((h, j) => '<text class="house" data-house="' + esc(h.id) + '" x="' + cx + '" y="' + (110 + 16 * j) + '" text-anchor="middle">' + esc(houseText(h)) + '</text>').join('') +
      '</g>');
  });
  return '<svg class="feeder" role="img" viewBox="0 0 ' + W + ' ' + H + '" width="' + W + '" style="max-width:100%">' + parts.join('') + '</svg>';
}
const feederShape = (m) => m.buses.map((b) => b.id + ':' + b.houses.map((h) => h.id).join('+')).join(',');
/** Draws the model into el, or where its buses are the same as drawn, updates texts and colours in place. */
function drawFeeder(el, m) {
  if (el.dataset.shape !== feederShape(m)) {
    el.innerHTML = feederSvg(m);
    el.dataset.shape = feederShape(m);
    return;
  }
  setText(el.querySelector('.tx-exchange'), transformerText(m.transformer));
  for (const b of m.buses) {
    const g = [...el.querySelectorAll('g.bus')].find((x) => x.dataset.bus === b.id);
    g.dataset.status = b.status;
    g.querySelector('circle').setAttribute('fill', BUS_FILL[b.status]);
    setText(g.querySelector('.bus-voltage'), busVoltageText(b));
    for (const h of b.houses) setText([...g.querySelectorAll('.house')].find((x) => x.dataset.house === h.id), houseText(h));
  }
}
`;
