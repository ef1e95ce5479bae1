/**
 * The alarm list (browser JavaScript as a string): the alarms of every gateway's state (`alarms`) and
 * of the bench (`simulation.alarms`), in the shape of `src/agent/alarms.ts`: active ones first (newest
 * first), then the cleared ones, each with the time it began, its severity in words, what it concerns
 * and, once cleared, when.
 */
export const ALARMS_JS = `
function collectAlarms(state, gateways) {
  const all = [];
  const seen = new Set();
  const add = (list, where) => {
    for (const a of Array.isArray(list) ? list : []) {
      const key = where + '|' + a.id + '|' + a.since;
      if (!seen.has(key)) { seen.add(key); all.push({ ...a, where }); }
    }
  };
  add(state.simulation && state.simulation.alarms, 'bench');
  for (const g of gateways) add(g.alarms, g.id);
  const active = all.filter((a) => a.clearedAt === undefined || a.clearedAt === null).sort((a, b) => b.since - a.since);
  const cleared = all.filter((a) => !(a.clearedAt === undefined || a.clearedAt === null)).sort((a, b) => b.clearedAt - a.clearedAt);
  return active.concat(cleared);
}
function alarmRowsHtml(alarms) {
  if (!alarms.length) return '<tr class="none"><td colspan="5">No alarms.</td></tr>';
  return alarms.map((a) => {
    const cleared = !(a.clearedAt === undefined || a.clearedAt === null);
    return '<tr class="alarm ' + (cleared ? 'cleared' : 'active') + ' ' + esc(a.severity) + '" data-alarm="' + esc(a.id) + '">' +
      '<td>' + timeTag(a.since) + '</td>' +
      '<td class="severity">' + (a.severity === 'critical' ? '⛔ critical' : '⚠ warning') + '</td>' +
      '<td>' + esc(a.where) + (a.source && a.source !== a.where ? ' · ' + esc(a.source) : '') + '<br><span class="dim">' + esc(a.kind) + '</span></td>' +
      '<td class="alarm-text">' + esc(a.text) + '</td>' +
      '<td>' + (cleared ? 'cleared ' + timeTag(a.clearedAt) : '<b>active</b>') + '</td></tr>';
  }).join('');
}
`;
