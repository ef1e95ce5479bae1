import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alarm } from '../../src/agent/alarms.js';
import { StatusServer } from '../../src/agent/status-server.js';
import { componentLogger } from '../../src/core/log.js';
import { type Browser, launchChromium, openPage, type Page } from '../helpers/chromium.js';
import { eventually, freePort, startCli } from '../helpers/net.js';

// The operator view and the member view in a real browser (Debian's chromium) against a running demo
// (`p2p-edge start`, two cells of two houses), read back from the DOM the browser built and compared
// with /api/state. The alarm list is checked against a gateway with a device that does not answer,
// and against a status server whose state carries an active and a cleared alarm.
/** Kept after the run, to be looked at (docs/operator-view.png is taken from it). */
const SCREENSHOT = join(tmpdir(), 'p2p-edge-operator-view.png');
const MEMBER_SCREENSHOT = join(tmpdir(), 'p2p-edge-member-view.png');
const CLOCK = /^\d\d:\d\d:\d\d$/;

type GatewayState = {
  id: string;
  cell: string;
  roles: {
    'voltage-agent'?: { voltagePu: number | null; bus: string | null; feederBuses?: string[] };
    prosumer?: { lastReading: { pvW: number; loadW: number } | null };
  };
};

let demo: ReturnType<typeof startCli>;
let base: string;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

async function state(): Promise<GatewayState[]> {
  return ((await (await fetch(`${base}/api/state`)).json()) as { gateways: GatewayState[] }).gateways;
}

/**
 * Waits for two refreshes of the page (each changes its "updated" time): the second fetched its state
 * after whatever the test read from /api/state before, so what the page shows lies between that and
 * what the test reads after (PV moves fast at 600×).
 */
async function twoRefreshes(p: Page): Promise<void> {
  for (let refresh = 0; refresh < 2; refresh++) {
    const summary = await p.$eval('#summary', (e) => e.textContent);
    await p.waitForFunction(`document.getElementById('summary').textContent !== ${JSON.stringify(summary)}`, {
      timeout: 10_000,
    });
  }
}

async function open(p: Page, url: string): Promise<void> {
  // The demo's status server may need a moment to listen (a minute on a loaded machine).
  for (let attempt = 0; ; attempt++) {
    try {
      await p.goto(url);
      return;
    } catch (e) {
      if (attempt >= 300) throw e;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

beforeAll(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  demo = startCli(['start', '--port', String(port), '--houses', '2', '--speedup', '600']);
  browser = await launchChromium();
  page = await openPage(browser, { timezoneId: 'Europe/Berlin', locale: 'en-GB', width: 1280 });
  page.on('pageerror', (e) => pageErrors.push(e instanceof Error ? e.message : String(e)));
  await open(page, `${base}/`);
  // Charts need two samples, and each cell's flows a cleared interval one level up: wait for both.
  await page.waitForFunction(
    `document.querySelectorAll('#charts svg.chart polyline').length >= 4 &&
     document.querySelectorAll('#cells .flows').length === 2 &&
     [...document.querySelectorAll('#cells .flows')].every((e) => /level above/.test(e.textContent))`,
    { timeout: 60_000, polling: 500 },
  );
}, 90_000);
afterAll(async () => {
  await browser?.close();
  if (demo && demo.child.exitCode === null) {
    demo.child.kill('SIGINT');
    await demo.exited;
  }
});

describe("the demo's operator view in chromium", () => {
  it('draws per cell a feeder diagram with one bus per house, in order from the transformer, each with its voltage in pu', async () => {
    const before = await state();
    await twoRefreshes(page);
    const cells = (await page.evaluate(`[...document.querySelectorAll('#cells .cell')].map((c) => ({
      title: c.querySelector('h2').textContent,
      transformer: c.querySelector('.tx-exchange').textContent,
      flows: c.querySelector('.flows').textContent,
      buses: [...c.querySelectorAll('g.bus')].map((g) => ({
        bus: g.dataset.bus, status: g.dataset.status,
        voltage: g.querySelector('.bus-voltage').textContent,
        houses: [...g.querySelectorAll('.house')].map((h) => h.textContent),
      })),
    }))`)) as {
      title: string;
      transformer: string;
      flows: string;
      buses: { bus: string; status: string; voltage: string; houses: string[] }[];
    }[];
    const after = await state();
    expect(cells.map((c) => c.title)).toEqual([
      'Cell cell-a: feeder from the transformer',
      'Cell cell-b: feeder from the transformer',
    ]);
    // The demo's feeder (src/grid/demo-feeder.ts): tx → b1 → b2; house n of a cell at bus bn.
    const housesOf = { 'cell-a': ['inv-1', 'inv-2'], 'cell-b': ['inv-3', 'inv-4'] };
    for (const [c, cell] of cells.entries()) {
      const ids = Object.values(housesOf)[c]!;
      expect(cell.buses.map((b) => b.bus)).toEqual(['b1', 'b2']);
      expect(cell.transformer).toMatch(/^tx-[12]: (takes|feeds) \d+\.\d kW (from|into) the grid$/);
      expect(cell.flows).toMatch(/level above: (imports|exports) \d+\.\d{3} kWh/);
      for (const [i, bus] of cell.buses.entries()) {
        const id = ids[i]!;
        const m = /^(\d\.\d{3}) pu · (within limits|above max|below min)$/.exec(bus.voltage);
        expect(m, bus.voltage).not.toBeNull();
        const shownPu = Number(m![1]);
        // Status in words, from the figure shown and the 0.95–1.05 pu limits (EN 50160 ±5 % band as configured).
        const word = shownPu > 1.05 ? 'above max' : shownPu < 0.95 ? 'below min' : 'within limits';
        expect(m![2]).toBe(word);
        expect(bus.status).toBe({ 'above max': 'high', 'below min': 'low', 'within limits': 'within' }[word]);
        const apiPu = [before, after].map((s) => s.find((g) => g.id === id)!.roles['voltage-agent']!.voltagePu!);
        expect(shownPu).toBeGreaterThanOrEqual(Math.min(...apiPu) - 0.01);
        expect(shownPu).toBeLessThanOrEqual(Math.max(...apiPu) + 0.01);
        expect(bus.houses).toHaveLength(1);
        expect(bus.houses[0]).toMatch(new RegExp(`^${id}: PV \\d+\\.\\d kW · load \\d+\\.\\d kW$`));
      }
    }
    expect(after.find((g) => g.id === 'inv-1')!.roles['voltage-agent']).toMatchObject({
      bus: 'b1',
      feederBuses: ['tx', 'b1', 'b2'],
    });
    expect(pageErrors).toEqual([]);
  });

  it('gives every chart a title, clock-time ticks on the time axis, a unit on the y axis and labelled limits', async () => {
    const charts = (await page.evaluate(`[...document.querySelectorAll('svg.chart')].map((svg) => ({
      id: svg.id,
      title: svg.querySelector('title').textContent,
      label: document.getElementById(svg.getAttribute('aria-labelledby')).textContent,
      shownTitle: svg.querySelector('.chart-title').textContent,
      xTicks: [...svg.querySelectorAll('.x-tick')].map((t) => t.textContent),
      yTicks: [...svg.querySelectorAll('.y-tick')].map((t) => t.textContent),
      unit: svg.querySelector('.unit').textContent,
      limits: [...svg.querySelectorAll('.limit-label')].map((t) => t.textContent),
    }))`)) as {
      id: string;
      title: string;
      label: string;
      shownTitle: string;
      xTicks: string[];
      yTicks: string[];
      unit: string;
      limits: string[];
    }[];
    expect(charts.map((c) => c.id)).toEqual(['chart-voltage', 'chart-price', 'chart-upstream']);
    for (const c of charts) {
      expect(c.title.length, c.id).toBeGreaterThan(5);
      expect(c.shownTitle).toBe(c.title);
      expect(c.label).toBe(c.title);
      expect(c.xTicks.length, `${c.id} time ticks`).toBeGreaterThanOrEqual(2);
      for (const t of c.xTicks) expect(t).toMatch(CLOCK);
      expect(c.yTicks.length, `${c.id} y ticks`).toBeGreaterThanOrEqual(2);
      for (const t of c.yTicks) expect(Number.isFinite(Number(t)), t).toBe(true);
    }
    expect(charts.map((c) => c.unit)).toEqual(['voltage (pu)', 'price per kWh', 'energy (kWh per slot)']);
    expect(charts[0]!.limits).toEqual(['1.05 pu max', '0.95 pu min']);
  });

  it('shows the market per interval and the curtailment per house', async () => {
    const market = (await page.evaluate(
      `[...document.querySelectorAll('#market tbody tr')].map((tr) => [...tr.cells].map((td) => td.textContent))`,
    )) as string[][];
    expect(market.length).toBeGreaterThan(0);
    for (const row of market) {
      expect(row[0]).toMatch(CLOCK);
      expect(['cell-a', 'cell-b']).toContain(row[1]);
      expect(row[2]).toMatch(/^-?\d+\.\d{4}$/);
      expect(['✓ yes', '✗ no']).toContain(row[5]);
      expect(row[6]).toMatch(/^\d+$/);
    }
    const houses = (await page.evaluate(
      `[...document.querySelectorAll('#curtailment tbody tr')].map((tr) => tr.cells[0].textContent)`,
    )) as string[];
    expect(houses).toEqual(['inv-1', 'inv-2', 'inv-3', 'inv-4']);
  });

  it('updates in place: the same elements stay, an opened raw-state toggle stays open and shows the state', async () => {
    await page.evaluate(`(() => {
      window.kept = { bus: document.querySelector('#cells g.bus'), card: document.querySelector('#gateways [data-key="inv-1"]') };
      window.kept.card.querySelector('summary').click();
    })()`);
    const updated = await page.$eval('#summary', (s) => s.textContent);
    // Two refreshes later.
    await page.waitForFunction(`document.getElementById('summary').textContent !== ${JSON.stringify(updated)}`, {
      timeout: 10_000,
    });
    const second = await page.$eval('#summary', (s) => s.textContent);
    await page.waitForFunction(`document.getElementById('summary').textContent !== ${JSON.stringify(second)}`, {
      timeout: 10_000,
    });
    const after = (await page.evaluate(`(() => {
      const card = document.querySelector('#gateways [data-key="inv-1"]');
      return {
        sameBus: document.querySelector('#cells g.bus') === window.kept.bus && window.kept.bus.isConnected,
        sameCard: card === window.kept.card,
        open: card.querySelector('details').open,
        raw: card.querySelector('pre.raw').textContent,
        rawVisible: card.querySelector('pre.raw').getBoundingClientRect().height > 0,
      };
    })()`)) as { sameBus: boolean; sameCard: boolean; open: boolean; raw: string; rawVisible: boolean };
    expect(after).toMatchObject({ sameBus: true, sameCard: true, open: true, rawVisible: true });
    const raw = JSON.parse(after.raw) as GatewayState;
    expect(raw.id).toBe('inv-1');
    expect(raw.roles['voltage-agent']?.bus).toBe('b1');

    const png = Buffer.from(await page.screenshot({ fullPage: true }));
    writeFileSync(SCREENSHOT, png);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(pageErrors).toEqual([]);
  }, 30_000);

  it("shows a member's house: its PV, load, exchange, price, curtailment, charts and a link to its statement", async () => {
    for (const [url, id] of [
      [`${base}/member/inv-3`, 'inv-3'],
      [`${base}/?member=inv-2`, 'inv-2'],
    ] as const) {
      const member = await openPage(browser, { timezoneId: 'Europe/Berlin', locale: 'en-GB', width: 1100 });
      const errors: string[] = [];
      member.on('pageerror', (e) => errors.push(e instanceof Error ? e.message : String(e)));
      await member.goto(url);
      await member.waitForFunction(`document.querySelector('#member-statement a') !== null`, { timeout: 10_000 });
      const before = (await state()).find((g) => g.id === id)!;
      await twoRefreshes(member);
      const shown = (await member.evaluate(`({
        operatorHidden: document.getElementById('operator').hidden,
        title: document.getElementById('member-title').textContent,
        pv: document.getElementById('member-pv').textContent,
        load: document.getElementById('member-load').textContent,
        exchange: document.getElementById('member-exchange').textContent,
        price: document.getElementById('member-price').textContent,
        curtailment: document.getElementById('member-curtailment').textContent,
        statement: document.querySelector('#member-statement a').getAttribute('href'),
        charts: [...document.querySelectorAll('#member-charts svg.chart title')].map((t) => t.textContent),
      })`)) as Record<string, string | boolean | string[]>;
      const after = (await state()).find((g) => g.id === id)!;
      expect(shown.operatorHidden).toBe(true);
      expect(shown.title).toBe(`House ${id}`);
      const pvKW = Number(/^(\d+\.\d) kW$/.exec(shown.pv as string)![1]);
      const apiPvKW = [before, after].map((g) => g.roles.prosumer!.lastReading!.pvW / 1000);
      expect(pvKW).toBeGreaterThanOrEqual(Math.min(...apiPvKW) - 0.1);
      expect(pvKW).toBeLessThanOrEqual(Math.max(...apiPvKW) + 0.1);
      expect(shown.load).toMatch(/^\d+\.\d kW$/);
      expect(shown.exchange).toMatch(/^(takes \d+\.\d kW from the grid|feeds in \d+\.\d kW)$/);
      expect(shown.price).toMatch(/^-?\d+\.\d{4} per kWh in the interval of \d\d:\d\d:\d\d, payment -?\d+\.\d{3}$/);
      expect(shown.curtailment).toMatch(
        /^PV limit \d+ % · market \d+\.\d{3} kWh · demand response (–|\d+\.\d{3}) kWh$/,
      );
      expect(shown.statement).toBe(`statement?member=${id}`.replace(/^/, url.includes('/member/') ? '/' : ''));
      expect(shown.charts).toEqual([
        `PV, load and exchange of ${id}`,
        `Voltage at ${id}`,
        `Market price in cell ${before.cell} (slot 1)`,
      ]);
      if (id === 'inv-3') writeFileSync(MEMBER_SCREENSHOT, Buffer.from(await member.screenshot({ fullPage: true })));
      // The link leads to the member's statement page.
      await member.click('#member-statement a');
      await member.waitForFunction(`document.querySelector('h1')?.textContent === 'Statement of ${id}'`, {
        timeout: 10_000,
      });
      expect(errors).toEqual([]);
      await member.close();
    }
  }, 60_000);
});

describe('the alarm list in chromium', () => {
  it('a gateway whose inverter does not answer shows it on its own page: a device-down alarm with its time', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'p2p-edge-alarm-'));
    const [statusPort, deadPort] = [await freePort(), await freePort()];
    const config = join(dir, 'gateway.yaml');
    writeFileSync(
      config,
      [
        'gateway: { id: inv-7, kind: inverter, cell: cell-a, bus: b2 }',
        `stateDir: ${join(dir, 'state')}`,
        `status: { host: 127.0.0.1, port: ${statusPort} }`,
        'scheduler: { primaryMs: 500, secondaryMs: 1000, tertiaryMs: 900000 }',
        'voltageControl: { method: volt-var }',
        // Nothing listens on this port: the inverter is down from the start.
        `devices: [{ id: pv-7, driver: sunspec, modbus: "tcp://127.0.0.1:${deadPort}", unit: 1, usage: pv }]`,
      ].join('\n'),
    );
    const gateway = startCli(['run', '--config', config]);
    const p = await openPage(browser, { timezoneId: 'Europe/Berlin', locale: 'en-GB' });
    try {
      await eventually(
        async () => (await fetch(`http://127.0.0.1:${statusPort}/healthz`).catch(() => undefined))?.ok || undefined,
        30_000,
      );
      await p.goto(`http://127.0.0.1:${statusPort}/`);
      await p.waitForSelector('#alarms tr[data-alarm="device-down:pv-7"]', { timeout: 20_000 });
      const row = (await p.evaluate(
        `(() => { const tr = document.querySelector('#alarms tr[data-alarm="device-down:pv-7"]'); return { cells: [...tr.cells].map((td) => td.textContent), datetime: tr.querySelector('time').getAttribute('datetime') }; })()`,
      )) as { cells: string[]; datetime: string | null };
      const state = (await (await fetch(`http://127.0.0.1:${statusPort}/api/state`)).json()) as { alarms: Alarm[] };
      const alarm = state.alarms.find((a) => a.id === 'device-down:pv-7')!;
      expect(alarm).toMatchObject({ kind: 'device-down', severity: 'warning' });
      expect(alarm.clearedAt).toBeUndefined();
      // Its time as the gateway gave it, shown in the browser's zone; severity and state in words.
      expect(row.datetime).toBe(new Date(alarm.since).toISOString());
      expect(row.cells[0]).toMatch(CLOCK);
      expect(row.cells[1]).toBe('⚠ warning');
      expect(row.cells[2]).toContain('pv-7');
      // The text follows the latest error (refused, then backing off); the alarm and its start stay.
      expect(row.cells[3]).toMatch(/^sunspec-inverter pv-7 \(modbus-tcp\) not answering: .+; its values are not used$/);
      expect(row.cells[4]).toBe('active');
      expect(await p.$eval('#alarm-count', (e) => e.textContent)).toMatch(/^[1-9]\d* active$/);
    } finally {
      await p.close();
      gateway.child.kill('SIGTERM');
      await gateway.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it('lists the alarms of the state, active first, each with the time it began and, once cleared, when', async () => {
    const began = Date.UTC(2026, 5, 3, 9, 41, 7);
    const alarms: Alarm[] = [
      {
        id: 'peer-lost:tx-2',
        kind: 'peer-lost',
        severity: 'warning',
        source: 'tx-2',
        text: 'no hello from tx-2 for 30 s',
        since: began - 600_000,
        clearedAt: began - 540_000,
      },
      {
        id: 'device-down:pv-9',
        kind: 'device-down',
        severity: 'critical',
        source: 'pv-9',
        text: 'pv-9 does not answer on 127.0.0.1:1502 (connection refused)',
        since: began,
      },
    ];
    const log = componentLogger('test');
    log.level = 'silent';
    // A gateway whose own state carries alarms (what `p2p-edge run` serves, in the shape of src/agent/alarms.ts).
    const server = new StatusServer({
      host: '127.0.0.1',
      port: 0,
      state: () => ({ id: 'inv-9', kind: 'inverter', cell: 'cell-z', roles: {}, devices: {}, peers: [], alarms }),
      metrics: async () => '',
      log,
    });
    const { port } = await server.listen();
    const p = await openPage(browser, { timezoneId: 'Europe/Berlin', locale: 'en-GB' });
    try {
      await p.goto(`http://127.0.0.1:${port}/`);
      await p.waitForFunction(`document.querySelectorAll('#alarms tbody tr.alarm').length === 2`, { timeout: 10_000 });
      const rows = (await p.evaluate(
        `[...document.querySelectorAll('#alarms tbody tr.alarm')].map((tr) => ({ id: tr.dataset.alarm, cells: [...tr.cells].map((td) => td.textContent), datetime: tr.querySelector('time').getAttribute('datetime') }))`,
      )) as { id: string; cells: string[]; datetime: string }[];
      // 09:41:07 UTC is 11:41:07 in Berlin (summer time).
      expect(rows[0]).toEqual({
        id: 'device-down:pv-9',
        datetime: '2026-06-03T09:41:07.000Z',
        cells: ['11:41:07', '⛔ critical', 'inv-9 · pv-9device-down', alarms[1]!.text, 'active'],
      });
      expect(rows[1]).toEqual({
        id: 'peer-lost:tx-2',
        datetime: '2026-06-03T09:31:07.000Z',
        cells: ['11:31:07', '⚠ warning', 'inv-9 · tx-2peer-lost', alarms[0]!.text, 'cleared 11:32:07'],
      });
      expect(await p.$eval('#alarm-count', (e) => e.textContent)).toBe('1 active');
    } finally {
      await p.close();
      await server.close();
    }
  }, 30_000);
});
