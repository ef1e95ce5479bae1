/**
 * npm run bench:settlement [-- --members 1000 --sample-s 60 --intervals 96] — what settling a day at
 * run time costs the platform: 1000 prosumers in cells of 20 (an MG trader `tx-<cell>` each), a DSO
 * (network operator and the account above the cells) and the platform, all members with Ed25519 keys,
 * fed one simulated day of 15-minute intervals on an injected clock. Per member a meter reading every
 * `--sample-s` seconds (the gateways' `scheduler.secondaryMs`) integrated on its own gateway
 * (`IntervalMeter`), and each interval's energy stored as the platform stores it
 * (`MeterIntervals.addAll`, the members' intervals in one transaction); per interval each trader's
 * cell report and its report one level up (`TradeReports.add`). Timed apart: storing; the platform's
 * part of settling (`draftDue` when each interval is due, `signaturesReceived` for the
 * signatures of each draft, which its parties send at once); the parties' part (`checkDraft` and `signContent`, done on their own gateways
 * in the field); `settlementSummary`; `Ledger.verify()` over the whole database. Every unit must
 * commit, the balance be 0 and verify pass, else the run fails. Writes bench/results/settlement.json.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { purchasesFromNeighbours, tradesWithProsumers } from '../src/agent/roles/trade-reporter.js';
import { table } from '../src/bench/report-table.js';
import type { TradeReportBody } from '../src/comms/messages/market.js';
import { STREAM_COUNT, TARGETED_STREAM } from '../src/comms/replay-guard.js';
import { seededRandom } from '../src/core/prng.js';
import { generateKeyPair, type KeyPair, privateKeyObject, signCanonical } from '../src/core/signing.js';
import { Ledger, type SignedContent } from '../src/platform/ledger/ledger.js';
import { LiveSettlement, type MadeDraft, settlementSummary } from '../src/platform/live-settlement.js';
import { Membership } from '../src/platform/membership.js';
import { decideMembership } from '../src/platform/membership-decision.js';
import { IntervalMeter } from '../src/platform/meter-energy.js';
import { type MeterInterval, MeterIntervals } from '../src/platform/meter-intervals.js';
import { checkDraft, type OwnTrade, type PartyRecords, RECORDED_SALE_KWH } from '../src/platform/settlement-check.js';
import { SettlementSchedule, type UnitPayload } from '../src/platform/settlement-content.js';
import { TradeReports } from '../src/platform/trades.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const MEMBERS = arg('members', 1000);
const CELL_SIZE = 20;
const INTERVALS = arg('intervals', 96);
const SAMPLE_MS = arg('sample-s', 60) * 1000;
const INTERVAL_MS = 900_000;
/** The platform's defaults: metering interval 900 s, grace 60 s, readings kept 24 h, ticks every 5 s. */
const WAIT_AFTER_END_MS = (900 + 60) * 1000;
const PLATFORM_TICK_MS = 5000;
const DAY_START = Date.UTC(2026, 5, 21);
const CELL_PRICE = 0.1;
const UPPER_PRICE = 0.12;
if (!(MEMBERS >= CELL_SIZE && MEMBERS % CELL_SIZE === 0) || !(INTERVALS >= 1) || !(SAMPLE_MS >= 1000))
  throw new Error('--members must be a multiple of 20, --intervals ≥ 1, --sample-s ≥ 1');
if (WAIT_AFTER_END_MS % SAMPLE_MS !== 0 || INTERVAL_MS % SAMPLE_MS !== 0) throw new Error('--sample-s must divide 60');

const schedule = SettlementSchedule.parse({
  networkOperator: 'dso',
  networkFeePerKWh: 0.02,
  platform: 'platform',
  platformFeePerKWh: 0.004,
  importPricePerKWh: 0.3,
  exportPricePerKWh: 0.04,
  upperLevel: 'dso',
});

// --- Members -----------------------------------------------------------------------------------
const setupStart = performance.now();
const dir = mkdtempSync(join(tmpdir(), 'p2p-bench-settlement-'));
const dbFile = join(dir, 'platform.db');
const ledger = Ledger.open(dbFile);
const operator = { id: 'operator', ...generateKeyPair() };
const members = new Membership(ledger.db, operator, () => DAY_START);
const cells = Array.from({ length: MEMBERS / CELL_SIZE }, (_, c) => `c${String(c).padStart(3, '0')}`);
const traderOf = (cell: string) => `tx-${cell}`;
const prosumersOf = new Map(
  cells.map((cell, c) => [cell, Array.from({ length: CELL_SIZE }, (_, i) => `h${c * CELL_SIZE + i}`)]),
);
const keys = new Map<string, KeyPair>();
const registrations: { id: string; role: 'prosumer' | 'mg-trader' | 'dso' | 'platform'; cell: string }[] = [
  { id: 'dso', role: 'dso', cell: 'grid' },
  { id: 'platform', role: 'platform', cell: 'grid' },
  ...cells.flatMap((cell) => [
    { id: traderOf(cell), role: 'mg-trader' as const, cell },
    ...prosumersOf.get(cell)!.map((id) => ({ id, role: 'prosumer' as const, cell })),
  ]),
];
ledger.db.transaction(() => {
  for (const r of registrations) {
    const pair = generateKeyPair();
    keys.set(r.id, pair);
    members.register({ ...r, publicKey: pair.publicKey });
    decideMembership(ledger, members, operator, 'admit', r.id, DAY_START);
  }
})();
const signingKeys = new Map([...keys].map(([id, k]) => [id, privateKeyObject(k.privateKey)]));
const membershipEntries = ledger.head().entries;
const setupS = (performance.now() - setupStart) / 1000;

// --- Households (seeded) -------------------------------------------------------------------------
const random = seededRandom(20260621);
const gauss = (h: number, mean: number, width: number) => Math.exp(-((h - mean) ** 2) / (2 * width ** 2));
const households = new Map(
  [...prosumersOf.values()].flat().map((id) => {
    const baseW = 150 + 250 * random();
    const morningW = 300 + 500 * random();
    const eveningW = 500 + 1000 * random();
    const pvW = random() < 0.3 ? 0 : 3000 + 5000 * random();
    const cloud = 0.6 + 0.4 * random();
    /** Net consumption (W) the household's forecast expects at `hour` of the day (negative: export). */
    const expectedW = (hour: number) =>
      baseW +
      morningW * gauss(hour, 7.5, 1) +
      eveningW * gauss(hour, 19, 1.5) -
      pvW * 0.8 * cloud * Math.max(0, Math.sin((Math.PI * (hour - 5.5)) / 15));
    return [id, expectedW];
  }),
);
const hourOf = (ms: number) => ((ms - DAY_START) / 3_600_000) % 24;

// --- The platform --------------------------------------------------------------------------------
const intervals = new MeterIntervals(ledger.db);
const trades = new TradeReports(ledger.db);
const live = new LiveSettlement(ledger, members, intervals, trades, {
  schedule,
  intervalMs: INTERVAL_MS,
  waitAfterEndMs: WAIT_AFTER_END_MS,
  maxReadingWaitMs: 3_600_000,
  lookBackMs: 24 * 3_600_000,
});
const platformKey = signingKeys.get('platform')!;
/** `signContent` with the key parsed once, as a gateway's signer holds it. */
const signOwn = (content: SignedContent) => signCanonical(content, platformKey);

// --- What each party's gateway knows of its interval ---------------------------------------------
/** The trades each party's roles agreed, by interval and market. */
const agreed = new Map<number, { cell: Map<string, OwnTrade[]>; upper: Map<string, OwnTrade[]> }>();
/** A prosumer's own metered net export per interval, as its gateway sent it. */
const ownMetered = new Map<string, { kWh: number; coverage: number }>();
/** A trader's prosumers' metered sum, from the cell settlement it signed (its figure one level up). */
const signedCellSum = new Map<string, number>();
/** Each prosumer gateway's meter, integrated interval by interval. */
const meterOf = new Map([...households.keys()].map((id) => [id, new IntervalMeter(INTERVAL_MS)]));

const addAgreed = (interval: number, market: 'cell' | 'upper', party: string, t: OwnTrade) => {
  const byMarket = agreed.get(interval)![market];
  byMarket.set(party, [...(byMarket.get(party) ?? []), t]);
};

/** Each trader's reports of an interval: its cell's trades from the forecast net energy, its purchases one level up. */
function clearInterval(interval: number): { reporter: string; body: TradeReportBody }[] {
  agreed.set(interval, { cell: new Map(), upper: new Map() });
  const hour = hourOf(interval + INTERVAL_MS / 2);
  const reports: { reporter: string; body: TradeReportBody }[] = [];
  const netExport = new Map<string, number>();
  for (const cell of cells) {
    const trader = traderOf(cell);
    const netKWh = Object.fromEntries(
      prosumersOf.get(cell)!.map((p) => [p, (households.get(p)!(hour) * INTERVAL_MS) / 3_600_000 / 1000]),
    );
    const cellTrades = tradesWithProsumers(trader, netKWh, CELL_PRICE);
    for (const t of cellTrades) {
      addAgreed(interval, 'cell', trader, t);
      addAgreed(interval, 'cell', t.seller === trader ? t.buyer : t.seller, t);
    }
    netExport.set(trader, -Object.values(netKWh).reduce((a, b) => a + b, 0));
    reports.push({
      reporter: trader,
      body: { session: String(interval), interval, market: 'cell', converged: true, trades: cellTrades },
    });
  }
  // One level up: surplus cells sell to short ones, matched in order; each purchase is the buyer's to report.
  const sellers = [...netExport].filter(([, x]) => x > 0).map(([id, x]) => ({ id, left: x }));
  const exchange = new Map<string, Record<string, number>>(cells.map((c) => [traderOf(c), {}]));
  for (const [buyer, x] of [...netExport].filter(([, v]) => v < 0)) {
    let need = -x;
    for (const s of sellers) {
      if (need <= 1e-6) break;
      const kWh = Math.min(need, s.left);
      if (kWh <= 1e-6) continue;
      s.left -= kWh;
      need -= kWh;
      exchange.get(buyer)![s.id] = -kWh;
      exchange.get(s.id)![buyer] = kWh;
    }
  }
  for (const cell of cells) {
    const trader = traderOf(cell);
    const purchases = purchasesFromNeighbours(trader, exchange.get(trader)!, UPPER_PRICE);
    for (const t of purchases) addAgreed(interval, 'upper', trader, t);
    for (const [peer, x] of Object.entries(exchange.get(trader)!))
      if (x >= RECORDED_SALE_KWH) addAgreed(interval, 'upper', trader, { seller: trader, buyer: peer });
    reports.push({
      reporter: trader,
      body: { session: String(interval), interval, market: 'upper', converged: true, trades: purchases },
    });
  }
  return reports;
}

function recordsOf(party: string, p: UnitPayload): PartyRecords {
  const byMarket = agreed.get(p.interval)![p.market];
  const records: PartyRecords = {};
  if (party.startsWith('tx-') || party.startsWith('h')) records.trades = byMarket.get(party) ?? [];
  if (p.market === 'cell' && party.startsWith('h')) {
    const metered = ownMetered.get(`${party}@${p.interval}`);
    if (metered) records.metered = metered;
  }
  if (p.market === 'upper' && party.startsWith('tx-')) {
    const kWh = signedCellSum.get(`${party}@${p.interval}`);
    if (kWh !== undefined) records.metered = { kWh, coverage: 1 };
  }
  return records;
}

// --- The day -------------------------------------------------------------------------------------
const time = { storeMs: 0, draftMs: 0, partiesMs: 0, signaturesMs: 0 };
const counts = {
  samples: 0,
  intervals: 0,
  groups: 0,
  reports: 0,
  trades: 0,
  drafted: 0,
  signatures: 0,
  signatureTransactions: 0,
  committed: 0,
};
const lastDue = DAY_START + INTERVALS * INTERVAL_MS + WAIT_AFTER_END_MS;
let nextDraft = DAY_START + INTERVAL_MS + WAIT_AFTER_END_MS;

function settle(made: MadeDraft[], nowMs: number): void {
  for (const d of made) {
    const payload = d.content.payload as UnitPayload;
    const t = performance.now();
    const received = d.content.parties
      .map((x) => x.id)
      .filter((id) => id !== 'platform')
      .map((party) => {
        const check = checkDraft(d.content, party, recordsOf(party, payload), schedule);
        if (!check.ok) throw new Error(`${party} disputes ${d.unit}: ${JSON.stringify(check.lines)}`);
        if (payload.market === 'cell' && payload.config.levelAbove.id === party)
          signedCellSum.set(
            `${party}@${payload.interval}`,
            Number(
              Object.entries(payload.meteredNetExportKWh)
                .filter(([id]) => id !== party)
                .reduce((a, [, v]) => a + v, 0)
                .toFixed(9),
            ),
          );
        const signature = signCanonical(d.content, signingKeys.get(party)!);
        return { party, body: { unit: d.unit, contentHash: d.contentHash, signature } };
      });
    const t1 = performance.now();
    time.partiesMs += t1 - t;
    // The parties answer a draft at once: their signatures arrive, and are stored, together.
    const outcomes = live.signaturesReceived(received, nowMs);
    time.signaturesMs += performance.now() - t1;
    counts.signatureTransactions++;
    for (const [i, r] of outcomes.entries()) {
      if (r.outcome === 'refused' || r.outcome === 'resent')
        throw new Error(`${received[i]!.party} on ${d.unit}: ${r.outcome}`);
      counts.signatures++;
      if (r.outcome === 'committed') counts.committed++;
    }
  }
}

for (let now = DAY_START; now <= lastDue; now += SAMPLE_MS) {
  const batch: MeterInterval[] = [];
  const inDay = now < DAY_START + INTERVALS * INTERVAL_MS;
  const intervalStart = Math.floor((now - DAY_START) / INTERVAL_MS) * INTERVAL_MS + DAY_START;
  if (now === intervalStart) {
    if (inDay) {
      const reports = clearInterval(now);
      const t = performance.now();
      for (const r of reports) {
        const outcome = trades.add(r.reporter, r.body, now);
        if (outcome.outcome !== 'stored') throw new Error(`report of ${r.reporter}: ${JSON.stringify(outcome)}`);
        counts.reports++;
        counts.trades += r.body.trades.length;
      }
      time.storeMs += performance.now() - t;
    }
  }
  const hour = hourOf(now);
  for (const [id, expectedW] of households) {
    const netW = Math.round(expectedW(hour) * (0.85 + 0.3 * random()) * 10) / 10;
    counts.samples++;
    // The reading that starts an interval closes the one before: its gateway sends that interval's energy.
    for (const closed of meterOf.get(id)!.add(now, netW)) {
      ownMetered.set(`${id}@${closed.fromMs}`, { kWh: -closed.kWh, coverage: closed.coveredMs / INTERVAL_MS });
      const n = closed.fromMs / INTERVAL_MS - DAY_START / INTERVAL_MS + 1;
      batch.push({
        member: id,
        epoch: 1,
        seq: n * STREAM_COUNT + TARGETED_STREAM,
        fromMs: closed.fromMs,
        toMs: closed.toMs,
        netKWh: closed.kWh,
        coveredMs: Math.round(closed.coveredMs),
      });
    }
  }
  if (batch.length > 0) {
    const t = performance.now();
    intervals.addAll(batch);
    time.storeMs += performance.now() - t;
    counts.intervals += batch.length;
    counts.groups++;
  }
  if (now >= nextDraft) {
    const t0 = performance.now();
    const made = live.draftDue(now, signOwn);
    time.draftMs += performance.now() - t0;
    counts.drafted += made.length;
    settle(made, now);
    nextDraft += INTERVAL_MS;
  }
}

// The platform asks on every tick (each 5 s) whether something is due: the cost of a tick with nothing to draft.
const IDLE_TICKS = 20;
const idleStart = performance.now();
for (let i = 1; i <= IDLE_TICKS; i++)
  if (live.draftDue(lastDue + i * PLATFORM_TICK_MS, signOwn).length > 0) throw new Error('drafted twice');
const idleTickMs = (performance.now() - idleStart) / IDLE_TICKS;

const fileBytes = (f: string) => {
  try {
    return statSync(f).size;
  } catch {
    return 0;
  }
};
const dbBytes = fileBytes(dbFile);
const walBytes = fileBytes(`${dbFile}-wal`);

const summaryStart = performance.now();
const summary = settlementSummary(ledger);
const summaryMs = performance.now() - summaryStart;
const verifyStart = performance.now();
const verified = ledger.verify();
const verifyMs = performance.now() - verifyStart;
ledger.close();
rmSync(dir, { recursive: true, force: true });

// --- Right, not just fast --------------------------------------------------------------------------
const units = INTERVALS * (cells.length + 1);
const problems = [
  counts.drafted !== units && `${counts.drafted} units drafted, expected ${units}`,
  counts.committed !== units && `${counts.committed} units committed, expected ${units}`,
  summary.units.committed !== units && `summary: ${summary.units.committed} committed`,
  summary.settled !== INTERVALS && `summary: ${summary.settled} of ${INTERVALS} intervals settled`,
  summary.signedByAllParties !== INTERVALS && `summary: ${summary.signedByAllParties} intervals signed by all`,
  Math.abs(summary.balance) > 1e-6 && `balance ${summary.balance}`,
  verified.entries !== membershipEntries + units && `${verified.entries} ledger entries`,
  !verified.ok && `ledger verify: ${JSON.stringify(verified.firstBad)}`,
].filter((p): p is string => typeof p === 'string');
if (problems.length > 0) throw new Error(`settlement benchmark wrong: ${problems.join('; ')}`);

const settleMs = time.draftMs + time.signaturesMs;
const mb = (b: number) => (b / 1e6).toFixed(1);
const days = (INTERVALS * INTERVAL_MS) / 86_400_000;
const perMemberDayBytes = (dbBytes + walBytes) / MEMBERS / days;
const s = (ms: number) => (ms / 1000).toFixed(1);
process.stdout.write(
  `${MEMBERS} prosumers in ${cells.length} cells, ${INTERVALS} intervals of 15 min, a reading every ${SAMPLE_MS / 1000} s per prosumer (members set up in ${setupS.toFixed(1)} s)\n${table(
    [
      ['step', 'seconds', 'what'],
      [
        'store',
        s(time.storeMs),
        `${counts.intervals} metering intervals (of ${counts.samples} readings on the gateways) in ${counts.groups} transactions, ${counts.reports} trade reports (${counts.trades} trades)`,
      ],
      [
        'settle: platform',
        s(settleMs),
        `draftDue ${s(time.draftMs)} s, signaturesReceived ${s(time.signaturesMs)} s (${counts.signatureTransactions} transactions)`,
      ],
      ['settle: parties', s(time.partiesMs), `checkDraft + sign, ${counts.signatures} signatures`],
      ['settlement summary', s(summaryMs), `${summary.units.committed} units committed, balance ${summary.balance}`],
      ['ledger verify', s(verifyMs), `${verified.entries} ledger entries and every table's chain: ok`],
    ],
  ).join(
    '\n',
  )}\nunits drafted ${counts.drafted}, committed ${counts.committed}; idle draftDue tick ${idleTickMs.toFixed(1)} ms\ndatabase ${mb(dbBytes)} MB + wal ${mb(walBytes)} MB: ${(perMemberDayBytes / 1e3).toFixed(1)} kB per member-day\n`,
);
const out = join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'settlement.json'),
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      members: MEMBERS,
      cells: cells.length,
      intervals: INTERVALS,
      sampleS: SAMPLE_MS / 1000,
      setupS,
      storeS: time.storeMs / 1000,
      settlePlatformS: settleMs / 1000,
      draftDueS: time.draftMs / 1000,
      signatureReceivedS: time.signaturesMs / 1000,
      settlePartiesS: time.partiesMs / 1000,
      summaryS: summaryMs / 1000,
      verifyS: verifyMs / 1000,
      idleTickMs,
      counts,
      ledgerEntries: verified.entries,
      dbBytes,
      walBytes,
      bytesPerMemberDay: perMemberDayBytes,
    },
    null,
    2,
  )}\n`,
);
