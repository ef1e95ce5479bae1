import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StatementAccount } from './statement.js';
import type { IntervalRow, IntervalStatement } from './statement-intervals.js';

/**
 * A member's day as one HTML page (`/statement?member=ID`): the statement's account for the period,
 * a chart of the money per interval and the table of intervals, with a link to the same rows as CSV.
 * Everything is in the page: the table and summary written here, the chart drawn in the browser by
 * `web/statement-chart.js` (inlined: no second request, no CDN), which also turns UTC times into the
 * reader's local time. Without script the page still has every figure.
 */

export interface StatementPageInput {
  account: StatementAccount;
  days: IntervalStatement;
  settledIntervals: number;
  /** The CSV of the same rows, relative to the page. */
  csvHref: string;
}

const CHART_SCRIPT_FILE = join(import.meta.dirname, 'web', 'statement-chart.js');
let chartScript: string | undefined;
/** Read once; the build copies `web/` beside the compiled module (scripts/finish-build.mjs). */
function chartScriptText(): string {
  chartScript ??= readFileSync(CHART_SCRIPT_FILE, 'utf8');
  return chartScript;
}

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

/** A signed figure with the minus sign people read (U+2212) and a fixed number of decimals. */
export function signed(x: number, decimals: number): string {
  const text = Math.abs(x).toFixed(decimals);
  if (Number(text) === 0) return text;
  return x < 0 ? `\u2212${text}` : `+${text}`;
}

const MONEY_DECIMALS = 4;
const KWH_DECIMALS = 3;

/** A table cell that keeps the exact figure in `data-value` (what the chart and the tests read). */
function cell(value: number | null, decimals: number, sign: boolean): string {
  if (value === null) return '<td data-value="" title="not known: the level above\'s price is missing">–</td>';
  const text = sign ? signed(value, decimals) : value.toFixed(decimals);
  return `<td data-value="${value}">${text}</td>`;
}

/** Better or worse than trading alone, in words as well as in colour. */
function savingsText(savings: number | null): string {
  if (savings === null) return '<span>not known</span>';
  const text = signed(savings, MONEY_DECIMALS);
  if (savings > 0) return `<span class="gain">${text} <small>(better than trading alone)</small></span>`;
  if (savings < 0) return `<span class="loss">${text} <small>(worse than trading alone)</small></span>`;
  return `<span>${text} <small>(the same as trading alone)</small></span>`;
}

const utcText = (iso: string): string => iso.replace('T', ' ').replace(/:00Z$|Z$/, ' UTC');
const time = (iso: string): string => `<time datetime="${escapeHtml(iso)}">${escapeHtml(utcText(iso))}</time>`;

const COLUMNS: { key: keyof IntervalRow; label: string; decimals: number; sign: boolean }[] = [
  { key: 'soldKWh', label: 'Sold to peers (kWh)', decimals: KWH_DECIMALS, sign: false },
  { key: 'boughtKWh', label: 'Bought from peers (kWh)', decimals: KWH_DECIMALS, sign: false },
  { key: 'imbalanceKWh', label: 'To (+) / from (−) the level above (kWh)', decimals: KWH_DECIMALS, sign: true },
  { key: 'averagePricePerKWh', label: 'Peer price (average, per kWh)', decimals: MONEY_DECIMALS, sign: false },
  { key: 'received', label: 'Received', decimals: MONEY_DECIMALS, sign: false },
  { key: 'paid', label: 'Paid', decimals: MONEY_DECIMALS, sign: false },
  { key: 'fees', label: 'Fees', decimals: MONEY_DECIMALS, sign: false },
  { key: 'net', label: 'Net', decimals: MONEY_DECIMALS, sign: true },
  { key: 'aloneNet', label: 'Net trading alone', decimals: MONEY_DECIMALS, sign: true },
  { key: 'savings', label: 'Savings', decimals: MONEY_DECIMALS, sign: true },
];

function intervalTable(rows: IntervalRow[]): string {
  const head = COLUMNS.map((c) => `<th scope="col">${escapeHtml(c.label)}</th>`).join('');
  const body = rows
    .map((r) => {
      const cells = COLUMNS.map((c) => cell(r[c.key] as number | null, c.decimals, c.sign)).join('');
      return `<tr><th scope="row">${time(r.interval)}</th>${cells}</tr>`;
    })
    .join('\n');
  return `<table id="intervals">
<caption>One row per settled interval. Money in the settlement currency; + is owed to you, − owed by you.</caption>
<thead><tr><th scope="col" id="interval-column">Start (UTC)</th>${head}</tr></thead>
<tbody>
${body || `<tr><td colspan="${COLUMNS.length + 1}">No settled interval in this period.</td></tr>`}
</tbody></table>`;
}

function summary(a: StatementAccount): string {
  const item = (label: string, value: string, id: string) =>
    `<div><dt>${label}</dt><dd id="${id}" data-value="${id === 'savings' ? (a.savings ?? '') : ''}">${value}</dd></div>`;
  const money = (x: number | null) => (x === null ? 'not known' : signed(x, MONEY_DECIMALS));
  return `<dl class="summary">
${item('Net: what you are owed', money(a.net), 'net')}
${item('Trading alone with the level above', money(a.aloneNet), 'alone-net')}
${item('Savings against trading alone', savingsText(a.savings), 'savings')}
${item('Energy sold / bought to peers', `${a.soldKWh.toFixed(KWH_DECIMALS)} / ${a.boughtKWh.toFixed(KWH_DECIMALS)} kWh`, 'energy')}
${item('Fees paid', a.fees.toFixed(MONEY_DECIMALS), 'fees')}
</dl>`;
}

/** Data for the chart script; `<` escaped so that no text in it can close the script element. */
const jsonForScript = (value: unknown): string => JSON.stringify(value).replace(/</g, '\\u003c');

export function statementPageHtml(input: StatementPageInput): string {
  const { account, days } = input;
  const member = escapeHtml(days.member);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Statement of ${member}</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:1em auto;max-width:1100px;padding:0 1em;color:#1b1b1b;background:#fff}
h1{font-size:1.4em;margin:.2em 0} h2{font-size:1.1em;margin:1.2em 0 .4em}
.period{color:#444}
.summary{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:.6em;margin:0}
.summary div{border:1px solid #c8c8c8;border-radius:6px;padding:.5em .7em}
.summary dt{font-size:.85em;color:#444} .summary dd{margin:.2em 0 0;font-size:1.25em;font-weight:600}
.gain{color:#1a6b32} .loss{color:#b3261e} .summary small{display:block;font-weight:400;font-size:.65em}
figure{margin:0} svg{width:100%;height:auto;max-height:360px;display:block}
.legend{display:flex;gap:1.5em;flex-wrap:wrap;color:#333;font-size:.9em;margin:.3em 0}
.legend svg{display:inline-block;width:28px;height:14px;vertical-align:middle}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;min-width:100%}
caption{text-align:left;color:#444;padding:.3em 0}
th,td{padding:.3em .45em;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}
thead th{vertical-align:bottom;white-space:normal;min-width:4.5em;background:#f2f2f2;color:#1b1b1b}
tbody th,thead th:first-child{text-align:left} tbody th{font-weight:500}
tbody tr:nth-child(even){background:#f7f7f7}
a{color:#0b57a4} .download{display:inline-block;margin:.2em 0 .5em;font-weight:600}
</style></head><body><main>
<h1>Statement of ${member}</h1>
<p class="period">From ${time(days.from)} to ${time(days.to)}: ${input.settledIntervals} settled intervals, ${days.intervals.length} with you in them.
Money in the settlement currency; + is owed to you, − owed by you.</p>
<h2>Your account over the period</h2>
${summary(account)}
<h2 id="chart-heading">Money per interval</h2>
<figure>
<svg id="chart" role="img" aria-labelledby="chart-title chart-desc" viewBox="0 0 900 340">
<title id="chart-title">Net money per interval (bars) and savings against trading alone (dots), settlement currency</title>
<desc id="chart-desc">${days.intervals.length} intervals; the same figures are in the table below.</desc>
</svg>
<figcaption class="legend"><span><svg viewBox="0 0 28 14" aria-hidden="true"><rect x="6" y="1" width="16" height="12" fill="#2f6db5"/></svg> Net per interval (bars)</span>
<span><svg viewBox="0 0 28 14" aria-hidden="true"><line x1="0" y1="7" x2="28" y2="7" stroke="#8a4500" stroke-width="2"/><rect x="9" y="2" width="10" height="10" fill="#8a4500" stroke="#fff" stroke-width="1.5" transform="rotate(45 14 7)"/></svg> Savings against trading alone (diamonds)</span></figcaption>
</figure>
<h2>Intervals</h2>
<a class="download" id="csv" href="${escapeHtml(input.csvHref)}" download="statement-${member}-intervals.csv">Download CSV</a>
<div class="table-wrap">
${intervalTable(days.intervals)}
</div>
</main>
<script type="application/json" id="statement-data">${jsonForScript(days)}</script>
<script>
${chartScriptText()}
</script>
</body></html>
`;
}
