import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlatformRoleState } from '../../src/agent/roles/platform.js';
import type { SettlementPartyState } from '../../src/agent/settlement/party.js';
import type { IntervalStatement } from '../../src/platform/statement-intervals.js';
import { type Browser, launchChromium, openPage, type Page } from '../helpers/chromium.js';
import { freePort, startCli } from '../helpers/net.js';

// The demo's status page in a real browser (Debian's chromium): the settlement card, drawn in the
// page from /api/state, read back from the DOM and compared with /api/state fetched around it.
/** Kept after the run, to be looked at. */
const SCREENSHOTS = {
  status: join(tmpdir(), 'p2p-edge-status-page.png'),
  settlementCard: join(tmpdir(), 'p2p-edge-status-page-settlement.png'),
  statement: join(tmpdir(), 'p2p-edge-demo-statement-page.png'),
};

type Gateway = {
  id: string;
  roles: { platform?: PlatformRoleState };
  settlement?: SettlementPartyState;
};

let demo: ReturnType<typeof startCli>;
let base: string;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

async function state(): Promise<Gateway[]> {
  return ((await (await fetch(`${base}/api/state`)).json()) as { gateways: Gateway[] }).gateways;
}

/** The platform's figures and the parties' totals, as the card should show them. */
function settlementOf(gateways: Gateway[]) {
  const platform = gateways.find((g) => g.id === 'platform-1')?.roles.platform?.settlement;
  if (!platform) throw new Error('platform-1 reports no settlement in /api/state');
  const parties = gateways.flatMap((g) => (g.settlement ? [g.settlement] : []));
  const total = (key: 'signed' | 'signedInLedger' | 'disputed') => parties.reduce((sum, p) => sum + p[key], 0);
  return {
    ...platform,
    parties: parties.length,
    signed: total('signed'),
    signedInLedger: total('signedInLedger'),
    disputedByParties: total('disputed'),
  };
}

/** The card's title, its visible text, and each labelled figure (`<span class="kv">label <b>value</b>`). */
const READ_CARD = `(() => {
  const card = document.getElementById('settlement');
  const figures = {};
  for (const kv of card.querySelectorAll('.kv')) figures[kv.firstChild.textContent.trim()] = kv.querySelector('b').textContent;
  return { hidden: card.hidden, title: card.querySelector('h2')?.textContent ?? null, text: card.innerText, figures };
})()`;
interface Card {
  hidden: boolean;
  title: string | null;
  text: string;
  figures: Record<string, string>;
}

beforeAll(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // 600× speed-up: a 15-minute trading interval, and so a settlement, every 1.5 s.
  demo = startCli(['start', '--port', String(port), '--houses', '2', '--speedup', '600']);
  browser = await launchChromium();
  page = await openPage(browser, { timezoneId: 'Europe/Berlin', locale: 'en-GB', width: 1280 });
  page.on('pageerror', (e) => pageErrors.push(e instanceof Error ? e.message : String(e)));
}, 60_000);
afterAll(async () => {
  await browser?.close();
  if (demo && demo.child.exitCode === null) {
    demo.child.kill('SIGINT');
    await demo.exited;
  }
});

describe("the demo's status page in chromium", () => {
  it('shows the settlement card with committed settlements, as /api/state reports them', async () => {
    // The demo's status server may need a moment to listen.
    for (let attempt = 0; ; attempt++) {
      try {
        await page.goto(`${base}/`);
        break;
      } catch (e) {
        if (attempt >= 50) throw e;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    await page.waitForFunction(
      `(() => { const b = [...document.querySelectorAll('#settlement .kv')].find((kv) => kv.firstChild.textContent.trim() === 'committed'); return b && Number(b.querySelector('b').textContent) > 0; })()`,
      { timeout: 60_000, polling: 500 },
    );
    expect(pageErrors).toEqual([]);

    // The card is redrawn on every refresh (each 2 s): count the redraws from here on.
    await page.evaluate(`(() => {
      window.settlementDraws = 0;
      new MutationObserver((records) => { window.settlementDraws += records.filter((r) => r.addedNodes.length).length; })
        .observe(document.getElementById('settlement'), { childList: true });
    })()`);
    const before = settlementOf(await state());
    await page.evaluate('window.settlementDraws = 0');
    // The second redraw from now fetched /api/state after `before` (the first may have asked before it).
    await page.waitForFunction('window.settlementDraws >= 2', { timeout: 10_000, polling: 100 });
    const card = (await page.evaluate(READ_CARD)) as Card;
    const after = settlementOf(await state());

    expect(card.hidden).toBe(false);
    expect(card.title).toBe('Settlement (co-signed by the parties)');
    const figure = (label: string) => {
      const shown = card.figures[label];
      expect(shown, `the card's "${label}"`).toMatch(/^\d+$/);
      return Number(shown);
    };
    const between = (label: string, low: number, high: number) => {
      const shown = figure(label);
      expect(shown, `the card's "${label}"`).toBeGreaterThanOrEqual(low);
      expect(shown, `the card's "${label}"`).toBeLessThanOrEqual(high);
      return shown;
    };
    const committed = between('committed', before.committed, after.committed);
    expect(committed).toBeGreaterThan(0);
    const drafted = between('drafted', before.drafted, after.drafted);
    const disputed = between('disputed', before.disputes, after.disputes);
    expect(figure('awaiting signatures')).toBe(Math.max(0, drafted - committed - disputed));
    between('signatures refused', before.refusedSignatures, after.refusedSignatures);
    between('ledger entries', before.ledgerEntries, after.ledgerEntries);
    // The parties: the four houses, the two transformers' gateways, the aggregator and the DSO.
    expect(before.parties).toBe(after.parties);
    expect(figure('parties')).toBe(after.parties);
    between('signed', before.signed, after.signed);
    between('signed and seen in the ledger', before.signedInLedger, after.signedInLedger);
    between('disputed by parties', before.disputedByParties, after.disputedByParties);
    expect(card.text).toContain('/statement?member=ID');

    const png = Buffer.from(await page.screenshot({ fullPage: true }));
    writeFileSync(SCREENSHOTS.status, png);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    const cardElement = await page.$('#settlement');
    writeFileSync(SCREENSHOTS.settlementCard, Buffer.from((await cardElement!.screenshot()) as Uint8Array));
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it("serves a member's statement page with a row per settled interval", async () => {
    const intervals = async () =>
      (
        (await (await fetch(`${base}/api/statements/intervals?member=inv-1`)).json()) as IntervalStatement
      ).intervals.map((r) => r.interval);
    pageErrors.length = 0;
    const before = await intervals();
    expect(before.length).toBeGreaterThan(0);
    await page.goto(`${base}/statement?member=inv-1`);
    const rows = (await page.evaluate(
      "[...document.querySelectorAll('#intervals tbody tr time')].map((t) => t.getAttribute('datetime'))",
    )) as string[];
    const after = await intervals();
    expect(await page.$eval('h1', (h) => h.textContent)).toBe('Statement of inv-1');
    expect(rows.length).toBeGreaterThanOrEqual(before.length);
    expect(rows.length).toBeLessThanOrEqual(after.length);
    expect(rows).toEqual(after.slice(0, rows.length));
    const png = Buffer.from(await page.screenshot({ fullPage: true }));
    writeFileSync(SCREENSHOTS.statement, png);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(pageErrors).toEqual([]);
  }, 60_000);
});
