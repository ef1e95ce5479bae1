import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlatformApiServer } from '../../src/platform/api-server.js';
import type { Ledger } from '../../src/platform/ledger/ledger.js';
import type { IntervalStatement } from '../../src/platform/statement-intervals.js';
import { type Browser, downloadByClick, launchChromium, openPage, type Page } from '../helpers/chromium.js';
import { tempDir } from '../helpers/net.js';
import { settledMarketsLedger } from '../helpers/settled-markets.js';

// A member's day in a real browser (Debian's chromium): the page served by the platform API from a
// ledger with both market levels settled, read back from the DOM the browser built.
const tmp = tempDir('p2p-statement-page-');
/** Kept after the run, to be looked at. */
const SCREENSHOT = join(tmpdir(), 'p2p-edge-statement-page.png');

let ledger: Ledger;
let api: PlatformApiServer;
let browser: Browser;
let base: string;

beforeAll(async () => {
  ledger = settledMarketsLedger(join(tmp.dir, 'page.db'));
  api = new PlatformApiServer({ ledger, host: '127.0.0.1', port: 0, token: 'member-page-token' });
  base = `http://127.0.0.1:${(await api.listen()).port}`;
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await api?.close();
  ledger?.close();
  tmp.remove();
});

interface PageFigures {
  rows: { interval: string; shown: string; values: (number | null)[] }[];
  bars: { interval: string; value: number; height: number; y: number }[];
  dots: { interval: string; value: number }[];
  zeroY: number;
  chartLabel: string;
  ticks: string[];
  axisLabels: string[];
  csvHref: string;
  summary: { net: string; savings: string };
}

const READ_PAGE = `(() => {
  const num = (s) => (s === '' ? null : Number(s));
  const svg = document.getElementById('chart');
  const zero = [...svg.querySelectorAll('line')].find((l) => l.getAttribute('stroke') === '#333' && l.getAttribute('y1') === l.getAttribute('y2'));
  return {
    rows: [...document.querySelectorAll('#intervals tbody tr')].map((tr) => ({
      interval: tr.querySelector('time').getAttribute('datetime'),
      shown: tr.querySelector('time').textContent,
      values: [...tr.querySelectorAll('td')].map((td) => num(td.dataset.value)),
    })),
    bars: [...svg.querySelectorAll('rect.bar-net')].map((r) => ({
      interval: r.dataset.interval, value: Number(r.dataset.value),
      height: Number(r.getAttribute('height')), y: Number(r.getAttribute('y')),
    })),
    dots: [...svg.querySelectorAll('rect.dot-savings')].map((r) => ({ interval: r.dataset.interval, value: Number(r.dataset.value) })),
    zeroY: Number(zero.getAttribute('y1')),
    chartLabel: [...(svg.getAttribute('aria-labelledby') || '').split(' ')].map((id) => document.getElementById(id).textContent).join(' | '),
    ticks: [...svg.querySelectorAll('text.tick')].map((t) => t.textContent),
    axisLabels: [...svg.querySelectorAll('text:not(.tick)')].map((t) => t.textContent),
    csvHref: document.getElementById('csv').href,
    summary: { net: document.getElementById('net').textContent, savings: document.getElementById('savings').textContent },
  };
})()`;

const COLUMNS = [
  'soldKWh',
  'boughtKWh',
  'imbalanceKWh',
  'averagePricePerKWh',
  'received',
  'paid',
  'fees',
  'net',
  'aloneNet',
  'savings',
] as const;

describe("a member's statement page in chromium", () => {
  let page: Page;
  let figures: PageFigures;
  let json: IntervalStatement;

  beforeAll(async () => {
    // UTC+05:30 all year: local time differs from UTC by a half hour, which no rounding hides.
    page = await openPage(browser, { timezoneId: 'Asia/Kolkata', locale: 'en-GB', width: 1100 });
    await page.goto(`${base}/statement?member=h1&token=member-page-token`);
    figures = (await page.evaluate(READ_PAGE)) as PageFigures;
    const r = await fetch(`${base}/api/statements/intervals?member=h1`, {
      headers: { authorization: 'Bearer member-page-token' },
    });
    json = (await r.json()) as IntervalStatement;
  }, 60_000);

  it('shows one table row per interval of the JSON, with the same figures, at local times', () => {
    expect(json.intervals).toHaveLength(3);
    expect(figures.rows.map((r) => r.interval)).toEqual(json.intervals.map((r) => r.interval));
    for (const [i, row] of figures.rows.entries())
      expect(row.values).toEqual(COLUMNS.map((c) => json.intervals[i]?.[c] ?? null));
    // 09:45, 10:00, 10:15 UTC are 15:15, 15:30, 15:45 in India.
    expect(figures.rows.map((r) => r.shown)).toEqual(['15:15', '15:30', '15:45']);
    expect(figures.ticks).toEqual(expect.arrayContaining(['15:15', '15:30', '15:45']));
  });

  it('draws one bar per interval for the net, up when owed and down when owing, and the savings', () => {
    expect(figures.bars.map((b) => [b.interval, b.value])).toEqual(json.intervals.map((r) => [r.interval, r.net]));
    const perUnit = figures.bars.map((b) => b.height / Math.abs(b.value));
    for (const scale of perUnit) expect(scale).toBeCloseTo(perUnit[0] ?? 0, 6);
    for (const bar of figures.bars) {
      if (bar.value > 0) expect(bar.y + bar.height).toBeCloseTo(figures.zeroY, 6);
      else expect(bar.y).toBeCloseTo(figures.zeroY, 6);
    }
    expect(figures.dots.map((d) => [d.interval, d.value])).toEqual(json.intervals.map((r) => [r.interval, r.savings]));
    // ICU may name the zone by its older name.
    const zone = 'Asia/(Kolkata|Calcutta)';
    expect(figures.chartLabel).toMatch(
      new RegExp(
        `^Net money per interval .*settlement currency \\| 3 intervals from 7 Dec 2026, 15:15 to 7 Dec 2026, 15:45 \\(${zone}\\)`,
      ),
    );
    expect(figures.axisLabels[0]).toMatch(new RegExp(`^Interval start \\(local time, ${zone}\\)$`));
    expect(figures.axisLabels[1]).toBe('Money (settlement currency)');
    // The account: h1's statement over the same period (0.175 + 0.47 − 0.385; savings 0.36).
    expect(figures.summary.net).toBe('+0.2600');
    expect(figures.summary.savings).toBe('+0.3600 (better than trading alone)');
  });

  it('downloads, through the page link, the same numbers as CSV', async () => {
    expect(new URL(figures.csvHref).pathname).toBe('/api/statements/intervals');
    const file = await downloadByClick(page, tmp.dir, '#csv');
    expect(file).toBe('statement-h1-intervals.csv');
    const lines = readFileSync(join(tmp.dir, file), 'utf8').trim().split('\n');
    expect(lines[0]).toBe(`interval,${COLUMNS.join(',')}`);
    const rows = lines.slice(1).map((l) => l.split(','));
    expect(rows.map((r) => r[0])).toEqual(json.intervals.map((r) => r.interval));
    for (const [i, r] of rows.entries())
      expect(r.slice(1).map((v) => (v === '' ? null : Number(v)))).toEqual(
        COLUMNS.map((c) => json.intervals[i]?.[c] ?? null),
      );
  });

  it('renders a page a member can read (screenshot kept)', async () => {
    const png = Buffer.from(await page.screenshot({ fullPage: true }));
    writeFileSync(SCREENSHOT, png);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    // Wider than a phone, the table fits without scrolling sideways.
    const overflow = (await page.evaluate(
      "(() => { const w = document.querySelector('.table-wrap'); return w.scrollWidth - w.clientWidth; })()",
    )) as number;
    expect(overflow).toBeLessThanOrEqual(0);
  });

  it('answers a page for an unknown member or a bad time with 400 naming the parameter', async () => {
    const auth = { authorization: 'Bearer member-page-token' };
    const unknown = await fetch(`${base}/statement?member=stranger`, { headers: auth });
    expect(unknown.status).toBe(400);
    expect(await unknown.text()).toMatch(/unknown member stranger/);
    const bad = await fetch(`${base}/statement?member=h1&to=tomorrow`, { headers: auth });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/^to must be an ISO 8601 time/);
  });
});
