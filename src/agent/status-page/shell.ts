import { ALARMS_JS } from './alarm-list.js';
import { CHART_JS } from './chart.js';
import { COMMON_JS } from './common.js';
import { FEEDER_JS } from './feeder-diagram.js';
import { VIEWS_JS } from './views.js';

/**
 * Colours: every text colour is at least 4.5:1 on the white cards (WCAG AA), e.g. #555 7.5:1,
 * #b71c1c 6.6:1, #1a7f37 5.1:1, #8a4b00 7.0:1.
 */
const CSS = `
body{font:14px system-ui,sans-serif;margin:1em;color:#222;background:#f4f5f7}
h1{font-size:1.3em;margin:0 0 .3em} h2{font-size:1.08em;margin:.2em 0 .4em} h3{font-size:1em;margin:.1em 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:.8em;margin:.8em 0;align-items:start}
.card{background:#fff;border:1px solid #c8ccd2;border-radius:6px;padding:.6em .8em;margin:.8em 0}
.grid>.card{margin:0}
table{border-collapse:collapse;width:100%} th,td{padding:2px 6px;border-bottom:1px solid #e3e5e8;text-align:left;vertical-align:top}
th{font-weight:600} td.num{text-align:right;font-variant-numeric:tabular-nums}
.kv{display:inline-block;margin-right:.8em}
.ok{color:#1a7f37}.bad{color:#b71c1c}.dim{color:#555} code{font-size:12px}
tr.alarm.critical.active .severity{color:#b71c1c;font-weight:600} tr.alarm.warning.active .severity{color:#8a4b00;font-weight:600}
tr.alarm.cleared{color:#555}
.feeder-box{overflow-x:auto}
svg.feeder text{font-size:12px;fill:#222} svg.feeder .tx-exchange{font-weight:600}
svg.feeder .cable{stroke:#222;stroke-width:3} svg.feeder .transformer{fill:#fff;stroke:#222;stroke-width:2}
svg.feeder .bus-voltage{font-weight:600}
svg.chart text{font-size:11px;fill:#222} svg.chart .chart-title{font-size:13px;font-weight:600}
svg.chart .plot{fill:#fafbfc;stroke:#8a9099} svg.chart .grid{stroke:#e0e3e7} svg.chart .axis{stroke:#222}
svg.chart .limit{stroke:#b71c1c;stroke-dasharray:5 3;stroke-width:1.2} svg.chart .limit-label{fill:#b71c1c;font-weight:600}
pre.raw{max-height:28em;overflow:auto;font-size:11px;background:#f4f5f7;padding:.4em}
dl.figures{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em} dt{font-weight:600} dd{margin:0}
`;

/**
 * The status page: one HTML document with its script inline (no build step, no CDN, small enough for
 * a Pi), served by `StatusServer` for one gateway (`run`), the in-process demo (`start`) and the bench.
 */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>p2p-edge status</title>
<style>${CSS}</style></head><body>
<header><h1>p2p-edge</h1><p id="summary" class="dim" role="status">loading…</p><p id="machine" hidden></p></header>
<main id="operator" hidden>
<section class="card" id="alarms-section"><h2>Alarms <span class="dim" id="alarm-count"></span></h2>
<table id="alarms"><thead><tr><th>Since</th><th>Severity</th><th>Where</th><th>What</th><th>State</th></tr></thead><tbody></tbody></table></section>
<div id="cells"></div>
<section class="card" id="market-section" hidden><h2>Market per interval</h2>
<table id="market"><thead><tr><th>Interval</th><th>Cell</th><th>Price (per kWh, slot 1)</th><th>Net demand cleared (kWh, slot 1)</th><th>From the grid (kWh, slot 1)</th><th>Converged</th><th>Rounds</th></tr></thead><tbody></tbody></table></section>
<section class="card" id="curtailment-section" hidden><h2>Curtailment</h2>
<table id="curtailment"><thead><tr><th>House</th><th>Cell</th><th>PV limit</th><th>Market curtailment (kWh, slot 1)</th><th>Demand response (kWh)</th></tr></thead><tbody></tbody></table></section>
<div class="grid" id="charts"></div>
<div class="card" id="settlement" hidden></div>
<div class="grid" id="plots"></div>
<h2>Gateways</h2>
<div class="grid" id="gateways"></div>
</main>
<main id="member" hidden>
<section class="card"><h2 id="member-title"></h2><div id="member-figures"></div><p id="member-statement"></p></section>
<div class="grid" id="member-charts"></div>
</main>
<script>
${COMMON_JS}${CHART_JS}${FEEDER_JS}${ALARMS_JS}${VIEWS_JS}
</script></body></html>
`;
