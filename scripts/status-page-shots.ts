// `npm run docs:status-page`: the operator view of a live bench (bench/scenarios/operator-view.yaml)
// in Debian's chromium, photographed while a cell is above its voltage limit and again while the
// brokers are down, into docs/status-page-voltage-violation.png and docs/status-page-broker-restart.png.
// Prints what the page shows at each moment: the alarm list, the feeder's buses and each gateway's
// link, as a person reads them.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../src/core/net.js';
import { launchChromium, openPage, type Page } from '../test/helpers/chromium.js';

const ROOT = join(import.meta.dirname, '..');
const DOCS = join(ROOT, 'docs');
const SCENARIO = join(ROOT, 'bench', 'scenarios', 'operator-view.yaml');

/** What a person reads on the page now: alarms, buses, gateways' links, the machine line. */
interface Shown {
  alarms: string[];
  buses: string[];
  links: string[];
  machine: string;
}
function readPage(page: Page): Promise<Shown> {
  return page.evaluate(`({
    alarms: [...document.querySelectorAll('#alarms tbody tr')].map((tr) => [...tr.cells].map((td) => td.textContent.trim()).join(' | ')),
    buses: [...document.querySelectorAll('#cells g.bus')].map((g) => g.dataset.bus + ' ' + g.querySelector('.bus-voltage').textContent),
    links: [...document.querySelectorAll('#gateways .card')].map((c) => c.querySelector('h3, h2, .title')?.textContent.trim() + ': ' + (c.textContent.match(/comms [a-z0-9]+ (dis)?connected/)?.[0] ?? '?')),
    machine: document.getElementById('machine')?.textContent.trim() ?? '',
  })`) as Promise<Shown>;
}

function print(title: string, shown: Shown, file: string): void {
  process.stdout.write(`\n## ${title} (${file})\n`);
  process.stdout.write(`alarms:\n${shown.alarms.map((a) => `  ${a}`).join('\n')}\n`);
  process.stdout.write(`buses: ${shown.buses.join('; ')}\n`);
  process.stdout.write(`links: ${shown.links.join('; ')}\n`);
  if (shown.machine) process.stdout.write(`machine: ${shown.machine}\n`);
}

const port = await freePort();
const bench = spawn(
  process.execPath,
  [join(ROOT, 'bin', 'p2p-edge.mjs'), 'bench', '--scenario', SCENARIO, '--live', '--status-port', String(port)],
  { stdio: ['ignore', 'ignore', 'pipe'] },
);
let progress = '';
bench.stderr.on('data', (d: Buffer) => {
  progress += d.toString();
});
const browser = await launchChromium();
try {
  const page = await openPage(browser, { timezoneId: 'UTC', locale: 'en-GB', width: 1280 });
  for (let attempt = 0; ; attempt++) {
    try {
      await page.goto(`http://127.0.0.1:${port}/`);
      break;
    } catch {
      if (attempt > 600 || bench.exitCode !== null)
        throw new Error(`the bench's page did not answer: ${progress.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  // cell-b's buses above 1.05 pu: their voltage alarms listed while they last.
  await page.waitForFunction(
    `[...document.querySelectorAll('#alarms tr.alarm')].some((tr) => /voltage/.test(tr.dataset.alarm) && /active/.test(tr.textContent))`,
    { timeout: 240_000, polling: 500 },
  );
  const voltageShot = join(DOCS, 'status-page-voltage-violation.png');
  await page.screenshot({ path: voltageShot, fullPage: true });
  print('a cell above its voltage limit', await readPage(page), 'docs/status-page-voltage-violation.png');
  // The brokers down: gateways lose their link; the page says so while it lasts.
  await page.waitForFunction(
    `[...document.querySelectorAll('#gateways .card')].filter((c) => / disconnected/.test(c.textContent)).length >= 2`,
    { timeout: 240_000, polling: 250 },
  );
  await new Promise((r) => setTimeout(r, 2500));
  const brokerShot = join(DOCS, 'status-page-broker-restart.png');
  await page.screenshot({ path: brokerShot, fullPage: true });
  print('the brokers down', await readPage(page), 'docs/status-page-broker-restart.png');
} finally {
  await browser.close();
  bench.kill('SIGINT');
  await new Promise((r) => bench.once('exit', r));
}
