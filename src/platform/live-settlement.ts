import { createHash } from 'node:crypto';
import type { TradeMarket } from '../comms/messages/market.js';
import type {
  DisputedLine,
  HeadEntry,
  SettleDisputeBody,
  SettleSignatureBody,
  SignedContent,
} from '../comms/messages/settle.js';
import { MAX_HEAD_ENTRIES } from '../comms/messages/settle.js';
import { ErrorCode, errorMessage, P2PError } from '../core/errors.js';
import { canonicalJson, verifyBytes } from '../core/signing.js';
import { contentHash, contentOf, type Ledger, type LedgerEntry, signedBytes } from './ledger/ledger.js';
import { ChainedTable } from './ledger/table-chain.js';
import type { Membership } from './membership.js';
import type { MeterIntervals, StoredMeterInterval } from './meter-intervals.js';
import {
  draftUnit,
  evidenceHash,
  type SettlementSchedule,
  type UnitPayload,
  type UnitTrade,
  unitConfig,
  unitId,
} from './settlement-content.js';
import type { StoredTrade, TradeReports } from './trades.js';

/**
 * Settlement while the system runs: once an interval's readings are in (its end plus the metering
 * interval and a grace period), the platform drafts each market's settlement of it (a cell's market,
 * and the market between the cells' traders one level up), from the trades the traders reported and
 * the metering intervals stored. Every party signs the draft on its own gateway or disputes it; the entry
 * is committed to the ledger when the last signature is in. Drafts, signatures and disputes are
 * platform tables (chained, covered by `ledger verify`), so a platform killed at any point resumes
 * from its database: nothing is drafted twice and a unit is committed once, whole.
 */

const SCHEMA = `
CREATE TABLE IF NOT EXISTS platform_settlement_drafts (
  unit TEXT PRIMARY KEY,
  interval INTEGER NOT NULL,
  market TEXT NOT NULL,
  cell TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  content TEXT NOT NULL,
  drafted_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS platform_settlement_drafts_interval ON platform_settlement_drafts (interval);
CREATE TABLE IF NOT EXISTS platform_settlement_signatures (
  content_hash TEXT NOT NULL,
  party TEXT NOT NULL,
  unit TEXT NOT NULL,
  signature TEXT NOT NULL,
  received_ms INTEGER NOT NULL,
  PRIMARY KEY (content_hash, party)
);
CREATE TABLE IF NOT EXISTS platform_settlement_disputes (
  content_hash TEXT NOT NULL,
  party TEXT NOT NULL,
  unit TEXT NOT NULL,
  lines TEXT NOT NULL,
  message TEXT NOT NULL,
  received_ms INTEGER NOT NULL,
  PRIMARY KEY (content_hash, party)
);
CREATE TABLE IF NOT EXISTS platform_settled_units (
  unit TEXT PRIMARY KEY,
  interval INTEGER NOT NULL,
  content_hash TEXT NOT NULL,
  ledger_index INTEGER NOT NULL,
  committed_ms INTEGER NOT NULL
);
`;

export interface LiveSettlementOptions {
  schedule: SettlementSchedule;
  /** The trading interval, ms of the gateways' clock. */
  intervalMs: number;
  /** After an interval ends: the metering interval plus a grace period for late readings. */
  waitAfterEndMs: number;
  /** How long a unit waits for the readings of a member that traded before it is drafted without them. */
  maxReadingWaitMs: number;
  /** Intervals older than this are not looked at any more (their metering intervals are gone). */
  lookBackMs: number;
}

/** A draft made now, to be sent to each party but the platform. */
export interface MadeDraft {
  unit: string;
  content: SignedContent;
  contentHash: string;
}

export type SignatureOutcome =
  | { outcome: 'stored'; unit: string }
  | { outcome: 'committed'; unit: string; entry: LedgerEntry }
  | { outcome: 'resent' }
  | { outcome: 'refused'; reason: string };

export type DisputeOutcome =
  | { outcome: 'stored'; unit: string }
  | { outcome: 'resent' }
  | { outcome: 'refused'; reason: string };

/** What the bench report and the role's state say of settlement. */
export interface SettlementSummary {
  /** Trading intervals with at least one drafted settlement. */
  intervals: number;
  /** Intervals all of whose drafted settlements are committed. */
  settled: number;
  /** Settled intervals whose every ledger entry carries a checking signature of each of its parties. */
  signedByAllParties: number;
  /** Intervals with a disputed settlement. */
  disputed: number;
  /** Sum of every committed settlement's amounts (0: money only moves between accounts). */
  balance: number;
  units: { drafted: number; committed: number; disputed: number; awaitingSignatures: number };
  /** When counted up to a time (the bench's run end): the units drafted before it. */
  draftedBefore?: string;
}

/** Drafts kept parsed for the signatures that come in for them. */
const RECENT_DRAFTS = 512;

const PLATFORM_MARKETS = { cell: 'cell', upper: 'upper' } as const;

export class LiveSettlement {
  private readonly drafts: ChainedTable;
  private readonly signatures: ChainedTable;
  private readonly disputes: ChainedTable;
  private readonly settled: ChainedTable;
  /** Units drafted, by the interval they settle, within the look-back (kept in step with the table). */
  private readonly draftedUnits = new Set<string>();
  private draftedKnown = false;
  /**
   * Units that move no money (nothing to sign), with a cell's prosumers' metered energy for the level
   * above; not stored, worked out again after a restart.
   */
  private readonly emptyUnits = new Map<string, Record<string, number>>();
  private readonly waiting = new Map<string, string>();
  /** Read once per `draftDue`: the members by cell and each interval's trades. */
  private readOnce: { prosumers?: Map<string, string[]>; trades: Map<number, StoredTrade[]> } = { trades: new Map() };
  /** Per draft (content hash): `<party> <signature>` checked on arrival, until its commit. */
  private readonly verified = new Map<string, Set<string>>();
  private readonly recentDrafts = new Map<string, { content: SignedContent; contentHash: string; bytes: Buffer }>();

  constructor(
    private readonly ledger: Ledger,
    private readonly members: Membership,
    private readonly intervals: MeterIntervals,
    private readonly trades: TradeReports,
    private readonly options: LiveSettlementOptions,
  ) {
    ledger.db.exec(SCHEMA);
    this.drafts = ChainedTable.open(ledger.db, 'platform_settlement_drafts');
    this.signatures = ChainedTable.open(ledger.db, 'platform_settlement_signatures');
    this.disputes = ChainedTable.open(ledger.db, 'platform_settlement_disputes');
    this.settled = ChainedTable.open(ledger.db, 'platform_settled_units');
  }

  /** Units waiting for readings now, and why (for the role's state). */
  waitingUnits(): Record<string, string> {
    return Object.fromEntries(this.waiting);
  }

  /**
   * Drafts every unit that is due at `nowMs` and not drafted yet; the platform's own signature is
   * stored with each draft (`signOwn`). Returns the drafts to send to the other parties.
   */
  draftDue(nowMs: number, signOwn: (content: SignedContent) => string): MadeDraft[] {
    // Every unit due now in one transaction (one fsync a tick, not one a unit). Should it fail, what
    // is remembered of drafted units is read from the database again.
    try {
      return this.ledger.db.transaction(() => this.draftDueNow(nowMs, signOwn)).immediate();
    } catch (err) {
      this.draftedUnits.clear();
      this.draftedKnown = false;
      this.emptyUnits.clear();
      this.recentDrafts.clear();
      throw err;
    }
  }

  private draftDueNow(nowMs: number, signOwn: (content: SignedContent) => string): MadeDraft[] {
    const { intervalMs, waitAfterEndMs, lookBackMs } = this.options;
    const fromMs = nowMs - lookBackMs;
    const dueBefore = nowMs - intervalMs - waitAfterEndMs;
    if (dueBefore < fromMs) return [];
    this.readOnce = { trades: new Map() };
    const reports = this.trades.reportsBetween(fromMs, dueBefore);
    if (reports.length === 0) return [];
    // Read from the database once (a restart); from then on every draft is stored through here.
    if (!this.draftedKnown) {
      for (const r of this.ledger.db
        .prepare('SELECT unit FROM platform_settlement_drafts WHERE interval >= ?')
        .all(fromMs) as { unit: string }[])
        this.draftedUnits.add(r.unit);
      this.draftedKnown = true;
    }
    const byInterval = new Map<number, { cell: string[]; upper: string[]; lastReportMs: number }>();
    for (const r of reports) {
      const entry = byInterval.get(r.interval) ?? { cell: [], upper: [], lastReportMs: 0 };
      entry.lastReportMs = Math.max(entry.lastReportMs, r.receivedMs);
      if (r.market === PLATFORM_MARKETS.cell) entry.cell.push(r.reporter);
      else if (r.market === PLATFORM_MARKETS.upper) entry.upper.push(r.reporter);
      byInterval.set(r.interval, entry);
    }
    const made: MadeDraft[] = [];
    for (const [interval, reporters] of byInterval) {
      // The wait for readings counts from when the interval was due or, later, from when its trades
      // came in (a platform that was away gets the readings and the reports from the outboxes together).
      const dueMs = Math.max(interval + intervalMs + waitAfterEndMs, reporters.lastReportMs);
      const overdue = nowMs - dueMs > this.options.maxReadingWaitMs;
      const cellMetered = new Map<string, Record<string, number> | null>();
      const traderOfCell = new Map<string, string>();
      const upper = unitId(interval, 'upper', '*');
      const upperDue = reporters.upper.length > 0 && !this.draftedUnits.has(upper) && !this.emptyUnits.has(upper);
      for (const trader of reporters.cell) {
        const cell = this.members.get(trader)?.cell;
        if (!cell) continue;
        const unit = unitId(interval, 'cell', cell);
        // A cell's market is settled with its one MG trader; the platform cannot tell which of its
        // prosumers a second trader in the same cell trades with, so that one is shown, not guessed.
        const first = traderOfCell.get(cell);
        if (first !== undefined && first !== trader) {
          this.waiting.set(`${unit}/${trader}`, `a second MG trader in cell ${cell} (${first} settles it)`);
          continue;
        }
        traderOfCell.set(cell, trader);
        if (this.draftedUnits.has(unit)) {
          // Read back only for an upper unit still to draft: every tick looks at the whole look-back.
          if (upperDue) cellMetered.set(trader, this.draftedMetered(unit, trader));
          continue;
        }
        const empty = this.emptyUnits.get(unit);
        if (empty) {
          cellMetered.set(trader, empty);
          continue;
        }
        const draft = this.draftCell(interval, trader, cell, overdue, signOwn, nowMs);
        cellMetered.set(trader, draft ? draft.prosumers : null);
        if (draft?.made) made.push(draft.made);
      }
      if (upperDue) {
        const draft = this.draftUpper(interval, reporters.upper, cellMetered, signOwn, nowMs);
        if (draft) made.push(draft);
      }
    }
    // Units of intervals that left the look-back are forgotten with it.
    const old = (unit: string) => Number(unit.split('/')[0]) < fromMs;
    for (const unit of this.draftedUnits) if (old(unit)) this.draftedUnits.delete(unit);
    for (const unit of this.emptyUnits.keys()) if (old(unit)) this.emptyUnits.delete(unit);
    for (const unit of this.waiting.keys()) if (old(unit)) this.waiting.delete(unit);
    return made;
  }

  private draftedMetered(unit: string, trader: string): Record<string, number> | null {
    const draft = this.draftRow(unit);
    return draft ? prosumersOf(draft.content, trader) : null;
  }

  private tradesOf(
    interval: number,
    market: TradeMarket,
    reporter?: string,
  ): { rows: StoredTrade[]; trades: UnitTrade[] } {
    let all = this.readOnce.trades.get(interval);
    if (!all) {
      all = this.trades.list(interval);
      this.readOnce.trades.set(interval, all);
    }
    const rows = all.filter((t) => t.market === market && (reporter === undefined || t.reporter === reporter));
    return {
      rows,
      trades: rows.map((r) => ({ seller: r.seller, buyer: r.buyer, kWh: r.kWh, pricePerKWh: r.pricePerKWh })),
    };
  }

  /** The cell's active prosumers (the members read once per `draftDue`). */
  private prosumersOf(cell: string): string[] {
    if (!this.readOnce.prosumers) {
      this.readOnce.prosumers = new Map();
      for (const m of this.members.list()) {
        if (m.role !== 'prosumer' || m.status !== 'active') continue;
        const ids = this.readOnce.prosumers.get(m.cell) ?? [];
        ids.push(m.id);
        this.readOnce.prosumers.set(m.cell, ids);
      }
    }
    return this.readOnce.prosumers.get(cell) ?? [];
  }

  /** kWh of the interval's energy hours from real-time kWh (a bench's clock runs faster than the market's slots). */
  private energyScale(): number {
    const { slotMinutes } = this.options.schedule;
    return slotMinutes === undefined ? 1 : (slotMinutes * 60_000) / this.options.intervalMs;
  }

  private draftCell(
    interval: number,
    trader: string,
    cell: string,
    overdue: boolean,
    signOwn: (content: SignedContent) => string,
    nowMs: number,
  ): { made: MadeDraft | undefined; prosumers: Record<string, number> } | undefined {
    const { intervalMs } = this.options;
    const unit = unitId(interval, 'cell', cell);
    const { rows, trades } = this.tradesOf(interval, 'cell', trader);
    const traded = new Map<string, number>();
    for (const t of trades) {
      traded.set(t.seller, (traded.get(t.seller) ?? 0) + t.kWh);
      traded.set(t.buyer, (traded.get(t.buyer) ?? 0) - t.kWh);
    }
    const prosumers = this.prosumersOf(cell);
    const metered: Record<string, number> = {};
    const evidence: StoredMeterInterval[] = [];
    const scale = this.energyScale();
    for (const p of prosumers) {
      const e = this.intervals.energy(p, interval, interval + intervalMs);
      const complete = e !== null && this.intervals.isComplete(p, interval, interval + intervalMs);
      if (!complete && !overdue && (traded.has(p) || e !== null)) {
        this.waiting.set(unit, `readings of ${p}`);
        return undefined;
      }
      if (e !== null) {
        metered[p] = Number((-e.kWh * scale).toFixed(9));
        evidence.push(...e.rows);
      }
    }
    for (const peer of traded.keys())
      if (metered[peer] === undefined && peer !== trader) {
        // Overdue and still no reading of a peer that traded: it is settled as traded, no imbalance.
        metered[peer] = traded.get(peer) ?? 0;
      }
    metered[trader] = Number((traded.get(trader) ?? 0).toFixed(9));
    const ofProsumers = { ...metered };
    delete ofProsumers[trader];
    const made = this.store(
      unit,
      {
        interval,
        intervalMs,
        market: 'cell',
        cell,
        trades,
        meteredNetExportKWh: metered,
        config: unitConfig(this.options.schedule, 'cell', trader),
        evidence: { trades: evidenceHash(rows), samples: evidenceHash(evidence) },
      },
      signOwn,
      nowMs,
      ofProsumers,
    );
    return made === undefined ? undefined : { made: made ?? undefined, prosumers: ofProsumers };
  }

  private draftUpper(
    interval: number,
    reporters: readonly string[],
    cellMetered: Map<string, Record<string, number> | null>,
    signOwn: (content: SignedContent) => string,
    nowMs: number,
  ): MadeDraft | undefined {
    const unit = unitId(interval, 'upper', '*');
    const { rows, trades } = this.tradesOf(interval, 'upper');
    const traders = new Set([...reporters, ...trades.flatMap((t) => [t.seller, t.buyer])]);
    const metered: Record<string, number> = {};
    for (const trader of traders) {
      const cell = cellMetered.get(trader);
      if (cell === null) {
        this.waiting.set(unit, `the cell settlement of ${trader}`);
        return undefined;
      }
      if (cell)
        metered[trader] = Number(
          Object.values(cell)
            .reduce((a, b) => a + b, 0)
            .toFixed(9),
        );
      else {
        // A trader without a cell market in this interval: what it traded is what it metered.
        let net = 0;
        for (const t of trades) net += t.seller === trader ? t.kWh : t.buyer === trader ? -t.kWh : 0;
        metered[trader] = Number(net.toFixed(9));
      }
    }
    const made = this.store(
      unit,
      {
        interval,
        intervalMs: this.options.intervalMs,
        market: 'upper',
        cell: '*',
        trades,
        meteredNetExportKWh: metered,
        config: unitConfig(this.options.schedule, 'upper', ''),
        evidence: { trades: evidenceHash(rows), samples: evidenceHash([]) },
      },
      signOwn,
      nowMs,
      {},
    );
    return made ?? undefined;
  }

  /**
   * Stores a draft with the platform's own signature (committed at once when that is the only one).
   * Null: the unit moves no money, so there is nothing to sign. Undefined: it cannot be drafted now
   * (an account with money that is not an active member), and waits.
   */
  private store(
    unit: string,
    input: Parameters<typeof draftUnit>[0],
    signOwn: (content: SignedContent) => string,
    nowMs: number,
    prosumers: Record<string, number>,
  ): MadeDraft | null | undefined {
    let content: SignedContent;
    try {
      content = draftUnit(input, (id) => this.activeKey(id)).content;
    } catch (err) {
      if (!(err instanceof P2PError) || err.code !== ErrorCode.input) throw err;
      this.waiting.set(unit, errorMessage(err));
      return undefined;
    }
    this.waiting.delete(unit);
    if (content.parties.length === 0) {
      this.emptyUnits.set(unit, prosumers);
      return null;
    }
    return this.storeDraft(
      unit,
      { interval: input.interval, market: input.market, cell: input.cell },
      content,
      signOwn,
      nowMs,
    );
  }

  /** An active member's public key, the key a party signs with. */
  activeKey(id: string): string | undefined {
    const m = this.members.get(id);
    return m?.status === 'active' ? m.publicKey : undefined;
  }

  /**
   * Stores a drafted unit once, with the platform's own signature when it is a party, and commits
   * it at once when the platform is its only party. Any kind of settlement content goes through here
   * (the markets' units above, and others such as DR payments).
   */
  storeDraft(
    unit: string,
    at: { interval: number; market: string; cell: string },
    content: SignedContent,
    signOwn: (content: SignedContent) => string,
    nowMs: number,
  ): MadeDraft {
    const hash = contentHash(content);
    const own = this.options.schedule.platform;
    this.ledger.db.transaction(() => {
      this.drafts.insert({
        unit,
        interval: at.interval,
        market: at.market,
        cell: at.cell,
        content_hash: hash,
        content: JSON.stringify(content),
        drafted_ms: nowMs,
      });
      if (content.parties.some((p) => p.id === own))
        this.signatures.insert({
          content_hash: hash,
          party: own,
          unit,
          signature: signOwn(content),
          received_ms: nowMs,
        });
      // A unit whose only party is the platform is complete at once (in the same transaction, so a
      // platform killed in between does not keep it drafted and never committed).
      this.commitIfComplete(unit, hash, content, nowMs);
    })();
    this.draftedUnits.add(unit);
    return { unit, content, contentHash: hash };
  }

  /**
   * A stored draft with its content written once as canonical JSON, the bytes every party's
   * signature covers; the last few hundred are kept (their signatures arrive together).
   */
  private draftRow(unit: string): { content: SignedContent; contentHash: string; bytes: Buffer } | undefined {
    const cached = this.recentDrafts.get(unit);
    if (cached) return cached;
    const row = this.ledger.db
      .prepare('SELECT content, content_hash FROM platform_settlement_drafts WHERE unit = ?')
      .get(unit) as { content: string; content_hash: string } | undefined;
    if (!row) return undefined;
    const content = JSON.parse(row.content) as SignedContent;
    const draft = { content, contentHash: row.content_hash, bytes: Buffer.from(canonicalJson(content)) };
    if (this.recentDrafts.size >= RECENT_DRAFTS)
      this.recentDrafts.delete(this.recentDrafts.keys().next().value as string);
    this.recentDrafts.set(unit, draft);
    return draft;
  }

  /** A party's signature of a draft: stored, and the unit committed when it was the last one missing. */
  signatureReceived(party: string, body: SettleSignatureBody, nowMs: number): SignatureOutcome {
    const draft = this.draftRow(body.unit);
    if (!draft || draft.contentHash !== body.contentHash)
      return { outcome: 'refused', reason: `no draft ${body.unit} with that content` };
    const key = draft.content.parties.find((p) => p.id === party)?.publicKey;
    if (!key) return { outcome: 'refused', reason: `${party} is not a party to ${body.unit}` };
    if (!verifyBytes(draft.bytes, body.signature, key))
      return { outcome: 'refused', reason: `signature of ${party} on ${body.unit} does not check` };
    this.verifiedSignatures(draft.contentHash).add(`${party} ${body.signature}`);
    // The signature and the commit it completes in one transaction: a platform killed in between
    // would keep the last signature without the entry, and its resend is taken as `resent`.
    return this.ledger.db
      .transaction((): SignatureOutcome => {
        const stored = this.signatures.insert(
          { content_hash: body.contentHash, party, unit: body.unit, signature: body.signature, received_ms: nowMs },
          { orIgnore: true },
        );
        if (stored.changes === 0) return { outcome: 'resent' };
        const entry = this.commitIfComplete(body.unit, draft.contentHash, draft.content, nowMs);
        return entry ? { outcome: 'committed', unit: body.unit, entry } : { outcome: 'stored', unit: body.unit };
      })
      .immediate();
  }

  /**
   * `signatureReceived` for the signatures that arrived together, in one transaction (one fsync
   * instead of two per signature: a day of 1000 members brings some 110 000 of them).
   */
  signaturesReceived(
    received: readonly { party: string; body: SettleSignatureBody }[],
    nowMs: number,
  ): SignatureOutcome[] {
    return this.ledger.db
      .transaction(() => received.map((r) => this.signatureReceived(r.party, r.body, nowMs)))
      .immediate();
  }

  private verifiedSignatures(hash: string): Set<string> {
    let set = this.verified.get(hash);
    if (!set) {
      // Bounded like the drafts kept parsed: a draft never completed drops out.
      if (this.verified.size >= RECENT_DRAFTS) this.verified.delete(this.verified.keys().next().value as string);
      set = new Set();
      this.verified.set(hash, set);
    }
    return set;
  }

  /** A party's dispute of a draft, kept with the signed message it came in. */
  disputeReceived(party: string, body: SettleDisputeBody, signedMessage: string, nowMs: number): DisputeOutcome {
    const draft = this.draftRow(body.unit);
    if (!draft || draft.contentHash !== body.contentHash)
      return { outcome: 'refused', reason: `no draft ${body.unit} with that content` };
    if (!draft.content.parties.some((p) => p.id === party))
      return { outcome: 'refused', reason: `${party} is not a party to ${body.unit}` };
    const stored = this.disputes.insert(
      {
        content_hash: body.contentHash,
        party,
        unit: body.unit,
        lines: JSON.stringify(body.lines),
        message: signedMessage,
        received_ms: nowMs,
      },
      { orIgnore: true },
    );
    return stored.changes === 0 ? { outcome: 'resent' } : { outcome: 'stored', unit: body.unit };
  }

  private commitIfComplete(unit: string, hash: string, content: SignedContent, nowMs: number): LedgerEntry | undefined {
    let entry: LedgerEntry | undefined;
    this.ledger.db
      .transaction(() => {
        // Most signatures are not the last one: counted first, read whole only when complete.
        const count = this.ledger.db
          .prepare('SELECT COUNT(*) AS n FROM platform_settlement_signatures WHERE content_hash = ?')
          .get(hash) as { n: number };
        if (count.n < content.parties.length) return;
        if (this.ledger.db.prepare('SELECT 1 FROM platform_settled_units WHERE unit = ?').get(unit)) return;
        const rows = this.ledger.db
          .prepare('SELECT party, signature FROM platform_settlement_signatures WHERE content_hash = ?')
          .all(hash) as { party: string; signature: string }[];
        const signatures = Object.fromEntries(rows.map((r) => [r.party, r.signature]));
        if (!content.parties.every((p) => signatures[p.id] !== undefined)) return;
        // Signatures checked on arrival in this run are not checked again; any read back from disk are.
        entry = this.ledger.appendContent(content, signatures, new Date(nowMs).toISOString(), this.verified.get(hash));
        this.verified.delete(hash);
        const payload = content.payload as UnitPayload;
        this.settled.insert({
          unit,
          interval: payload.interval,
          content_hash: hash,
          ledger_index: entry.index,
          committed_ms: nowMs,
        });
      })
      .immediate();
    return entry;
  }

  /** The drafts still missing signatures, and who has not signed each (to ask again). */
  unsigned(sinceMs: number): { unit: string; content: SignedContent; contentHash: string; missing: string[] }[] {
    const rows = this.ledger.db
      .prepare(
        `SELECT d.unit, d.content, d.content_hash FROM platform_settlement_drafts d
         WHERE d.interval >= ? AND NOT EXISTS (SELECT 1 FROM platform_settled_units s WHERE s.unit = d.unit)
         AND NOT EXISTS (SELECT 1 FROM platform_settlement_disputes x WHERE x.content_hash = d.content_hash)`,
      )
      .all(sinceMs) as { unit: string; content: string; content_hash: string }[];
    return rows.map((r) => {
      const content = JSON.parse(r.content) as SignedContent;
      const signed = new Set(
        (
          this.ledger.db
            .prepare('SELECT party FROM platform_settlement_signatures WHERE content_hash = ?')
            .all(r.content_hash) as { party: string }[]
        ).map((s) => s.party),
      );
      return {
        unit: r.unit,
        content,
        contentHash: r.content_hash,
        missing: content.parties.map((p) => p.id).filter((id) => !signed.has(id)),
      };
    });
  }

  /** The ledger's entries from `from` on, as the head lists them. */
  headEntries(from: number): HeadEntry[] {
    return this.ledger
      .entriesFrom(from, MAX_HEAD_ENTRIES)
      .map((e) =>
        e.form === 2
          ? { index: e.index, time: e.time, form: 2, contentHash: contentHash(contentOf(e)), hash: e.hash }
          : { index: e.index, time: e.time, form: 1, hash: e.hash },
      );
  }

  /** Disputed units with each party's disputed lines. */
  disputed(): { unit: string; party: string; lines: DisputedLine[]; receivedMs: number }[] {
    return (
      this.ledger.db
        .prepare('SELECT unit, party, lines, received_ms FROM platform_settlement_disputes ORDER BY received_ms')
        .all() as { unit: string; party: string; lines: string; received_ms: number }[]
    ).map((r) => ({
      unit: r.unit,
      party: r.party,
      lines: JSON.parse(r.lines) as DisputedLine[],
      receivedMs: r.received_ms,
    }));
  }

  summary(): SettlementSummary {
    return settlementSummary(this.ledger);
  }
}

/** The metered energy of a cell settlement's prosumers: every metered account but its trader's. */
function prosumersOf(content: SignedContent, trader: string): Record<string, number> {
  const metered = { ...(content.payload as UnitPayload).meteredNetExportKWh };
  delete metered[trader];
  return metered;
}

/**
 * How many units drafted before `draftedBeforeMs` are neither committed nor disputed: one count,
 * cheap enough to poll (the figures and their signatures are `settlementSummary`'s).
 */
export function unitsAwaitingSignatures(ledger: Ledger, draftedBeforeMs: number): number {
  const table = ledger.db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'platform_settlement_drafts'")
    .get();
  if (!table) return 0;
  return (
    ledger.db
      .prepare(
        `SELECT COUNT(*) AS n FROM platform_settlement_drafts d WHERE d.drafted_ms < ?
         AND NOT EXISTS (SELECT 1 FROM platform_settled_units s WHERE s.unit = d.unit)
         AND NOT EXISTS (SELECT 1 FROM platform_settlement_disputes x WHERE x.content_hash = d.content_hash)`,
      )
      .get(draftedBeforeMs) as { n: number }
  ).n;
}

/**
 * The settlement figures of a platform database (the bench report's `settlement` section): of every
 * unit drafted, or of those drafted before `draftedBeforeMs`.
 */
export function settlementSummary(ledger: Ledger, options: { draftedBeforeMs?: number } = {}): SettlementSummary {
  const db = ledger.db;
  const has = (t: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(t);
  const empty = {
    intervals: 0,
    settled: 0,
    signedByAllParties: 0,
    disputed: 0,
    balance: 0,
    units: { drafted: 0, committed: 0, disputed: 0, awaitingSignatures: 0 },
  };
  if (!has('platform_settlement_drafts')) return empty;
  const drafts = db
    .prepare(
      `SELECT d.unit, d.interval, d.content_hash,
        (SELECT ledger_index FROM platform_settled_units s WHERE s.unit = d.unit) AS ledger_index,
        EXISTS (SELECT 1 FROM platform_settlement_disputes x WHERE x.content_hash = d.content_hash) AS disputed
       FROM platform_settlement_drafts d WHERE d.drafted_ms < ?`,
    )
    .all(options.draftedBeforeMs ?? Number.MAX_SAFE_INTEGER) as {
    unit: string;
    interval: number;
    content_hash: string;
    ledger_index: number | null;
    disputed: number;
  }[];
  const entries = new Map(ledger.entries().map((e) => [e.index, e]));
  const perInterval = new Map<number, { all: number; committed: number; signed: number; disputed: boolean }>();
  let balance = 0;
  const units = { drafted: drafts.length, committed: 0, disputed: 0, awaitingSignatures: 0 };
  for (const d of drafts) {
    const i = perInterval.get(d.interval) ?? { all: 0, committed: 0, signed: 0, disputed: false };
    i.all++;
    if (d.ledger_index !== null) {
      units.committed++;
      i.committed++;
      const entry = entries.get(d.ledger_index);
      const bytes = entry?.form === 2 ? signedBytes(entry) : undefined;
      if (entry && bytes && createHash('sha256').update(bytes).digest('hex') === d.content_hash) {
        if (entry.parties.every((p) => verifyBytes(bytes, entry.signatures[p.id] ?? '', p.publicKey))) i.signed++;
        for (const v of Object.values(entry.amounts)) balance += v;
      }
    } else if (d.disputed) {
      units.disputed++;
      i.disputed = true;
    } else units.awaitingSignatures++;
    perInterval.set(d.interval, i);
  }
  const all = [...perInterval.values()];
  return {
    intervals: all.length,
    settled: all.filter((i) => i.committed === i.all).length,
    signedByAllParties: all.filter((i) => i.signed === i.all).length,
    disputed: all.filter((i) => i.disputed).length,
    // `|| 0`: a sum rounded from just below zero is 0, not -0.
    balance: Math.round(balance * 1e9) / 1e9 || 0,
    units,
  };
}
