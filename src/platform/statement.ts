import { z } from 'zod';
import { ErrorCode, P2PError } from '../core/errors.js';
import { DR_MARKET, DrPaymentPayload } from './dr-payment.js';
import type { LedgerEntry } from './ledger/ledger.js';
import { money, SettlementConfig, settleInterval } from './settlement.js';
import { UnitTrade } from './settlement-content.js';

/**
 * Statement of accounts over a period (docs/interfaces.md, `platform statement`): what each account is owed
 * from the settlements in the ledger, and what it would have been owed trading only with the level
 * above. Pure: the caller hands in the ledger's entries and the time.
 */

export type AccountRole = 'prosumer' | 'networkOperator' | 'platform' | 'levelAbove';

export interface StatementAccount {
  id: string;
  role: AccountRole;
  /** Settled intervals of the period the account appears in. */
  intervals: number;
  soldKWh: number;
  boughtKWh: number;
  /** Metered net export minus traded net export (the level above: what it took, negative, or gave). */
  imbalanceKWh: number;
  received: number;
  paid: number;
  fees: number;
  /** received − paid − fees. */
  net: number;
  /** Null only when an entry settled before settlements stored the level above's prices lacks the one needed. */
  aloneNet: number | null;
  savings: number | null;
}

export interface Statement {
  from: string;
  to: string;
  settledIntervals: number;
  /** Intervals of the period with a settlement a party disputed (not committed; not in the accounts). */
  disputedIntervals: number;
  accounts: StatementAccount[];
  /** Sum of `net` over every account of the period (also under `member`); 0 within 1e-6. */
  balance: number;
}

export interface StatementQuery {
  /** Inclusive, on the interval's start (ms since the epoch). */
  fromMs?: number | undefined;
  /** Exclusive; when absent every later interval counts and `to` is the statement's time. */
  toMs?: number | undefined;
  member?: string | undefined;
  /** Ids that are members though possibly never settled: asked for, they get an account of zeros. */
  knownIds?: readonly string[];
  /** The starts of the intervals with a disputed settlement (from the platform's disputes). */
  disputedIntervals?: readonly number[];
}

const SettlementLine = z.object({
  party: z.string(),
  what: z.enum(['energy-sold', 'energy-bought', 'network-fee', 'platform-fee', 'imbalance', 'dr-payment']),
  kWh: z.number(),
  amount: z.number(),
});

/**
 * A settlement entry's payload; `meteredNetExportKWh` and `config` are absent from older entries.
 * Settlements drafted at run time carry their trades instead of the lines, which follow from them.
 */
const StoredPayload = z.object({
  interval: z.number().int(),
  imbalanceKWh: z.record(z.string(), z.number()),
  lines: z.array(SettlementLine).optional(),
  trades: z.array(UnitTrade).optional(),
  meteredNetExportKWh: z.record(z.string(), z.number()).optional(),
  config: SettlementConfig.optional(),
});
type SettlementPayload = z.infer<typeof StoredPayload> & { lines: z.infer<typeof SettlementLine>[] };

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** `--from`/`--to`: an ISO 8601 date (UTC midnight) or date-time with `Z` or an offset. */
export function parseIsoOption(value: string, option: string): number {
  const ms = Date.parse(value);
  if (!ISO_DATE_TIME.test(value) || Number.isNaN(ms)) {
    throw new P2PError(
      ErrorCode.input,
      `${option} must be an ISO 8601 time such as 2026-12-07T10:00:00Z (got "${value}")`,
      {
        component: 'statement',
        field: option,
      },
    );
  }
  return ms;
}

/** ISO 8601 UTC, without the milliseconds when they are zero (as the contract writes times). */
export const isoTime = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z');
/** Energy is rounded like money, to 1e-9. */
const energy = money;
const ZERO_KWH = 1e-9;

/**
 * One account's part of one settled interval: every settlement entry of the interval added up (an
 * interval has one entry per market level and cell, or one in ledgers written before markets were
 * settled apart). Rounded like the settlement's amounts; a statement account is the sum of these.
 */
export interface IntervalAccount {
  role: AccountRole;
  soldKWh: number;
  boughtKWh: number;
  imbalanceKWh: number;
  received: number;
  paid: number;
  fees: number;
  net: number;
  aloneNet: number | null;
  savings: number | null;
  /** The money of the account's peer trades, sold and bought alike (positive unless prices were). */
  peerTradeValue: number;
}

export interface SettledInterval {
  /** The interval's start, ms since the epoch (as the traders name intervals). */
  intervalMs: number;
  /** The settlement entries of the interval. */
  entries: number;
  accounts: Map<string, IntervalAccount>;
}

type Sums = Omit<IntervalAccount, 'net' | 'savings'>;

const emptySums = (role: AccountRole): Sums => ({
  role,
  soldKWh: 0,
  boughtKWh: 0,
  imbalanceKWh: 0,
  received: 0,
  paid: 0,
  fees: 0,
  aloneNet: 0,
  peerTradeValue: 0,
});

const addNullable = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : a + b);

function parsePayload(entry: LedgerEntry): SettlementPayload {
  const r = StoredPayload.safeParse(entry.payload);
  const bad = (field: string) =>
    new P2PError(ErrorCode.storage, `ledger entry ${entry.index}: not a settlement payload`, {
      component: 'statement',
      field: `payload.${field}`,
    });
  if ((entry.payload as { market?: unknown } | null)?.market === DR_MARKET) {
    // A DR payment: the provider receives each event's amount for the energy paid, the aggregator pays it.
    const dr = DrPaymentPayload.safeParse(entry.payload);
    if (!dr.success) throw bad(dr.error.issues[0]?.path.join('.') ?? '');
    const lines = dr.data.events.flatMap((e) => [
      { party: e.provider, what: 'dr-payment' as const, kWh: e.paidKWh, amount: e.amount },
      { party: dr.data.aggregator, what: 'dr-payment' as const, kWh: -e.paidKWh, amount: -e.amount },
    ]);
    return { interval: dr.data.interval, imbalanceKWh: {}, lines };
  }
  if (!r.success) throw bad(r.error.issues[0]?.path.join('.') ?? '');
  const p = r.data;
  if (p.lines) return { ...p, lines: p.lines };
  if (!p.trades || !p.meteredNetExportKWh || !p.config) throw bad('lines');
  const lines = settleInterval(
    p.interval,
    p.trades.map((t) => ({ interval: p.interval, ...t })),
    p.meteredNetExportKWh,
    p.config,
  ).lines;
  return { ...p, lines };
}

/**
 * The accounts of one interval (every party and every metered peer) with their roles: from its config,
 * or, in older entries, from its lines.
 */
function rolesOf(p: SettlementPayload): Map<string, AccountRole> {
  const roles = new Map<string, AccountRole>();
  for (const id of Object.keys(p.imbalanceKWh)) roles.set(id, 'prosumer');
  for (const l of p.lines) if (!roles.has(l.party)) roles.set(l.party, 'prosumer');
  const named = (id: string, role: AccountRole) => {
    if (roles.has(id)) roles.set(id, role);
  };
  if (p.config) {
    named(p.config.networkOperator, 'networkOperator');
    named(p.config.platform, 'platform');
    named(p.config.levelAbove.id, 'levelAbove');
    return roles;
  }
  for (const l of p.lines) {
    if (l.amount > 0 && l.what === 'network-fee') named(l.party, 'networkOperator');
    if (l.amount > 0 && l.what === 'platform-fee') named(l.party, 'platform');
    if (l.what === 'imbalance' && !(l.party in p.imbalanceKWh)) named(l.party, 'levelAbove');
  }
  return roles;
}

function levelAboveOf(p: SettlementPayload, roles: Map<string, AccountRole>): string | undefined {
  return p.config?.levelAbove.id ?? [...roles].find(([, role]) => role === 'levelAbove')?.[0];
}

/** The level above's prices: from the config, or, in older entries, read back from the imbalance lines. */
function levelAbovePrices(p: SettlementPayload): { importPricePerKWh?: number; exportPricePerKWh?: number } {
  if (p.config) return p.config.levelAbove;
  const prices: { importPricePerKWh?: number; exportPricePerKWh?: number } = {};
  for (const l of p.lines) {
    if (l.what !== 'imbalance' || !(l.party in p.imbalanceKWh)) continue;
    if (l.kWh > 0) prices.exportPricePerKWh = l.amount / l.kWh;
    else if (l.kWh < 0) prices.importPricePerKWh = l.amount / l.kWh;
  }
  return prices;
}

/**
 * What each prosumer of the interval would be owed selling its metered surplus to the level above at
 * its export price or buying its shortfall at its import price, with no trades and so no fees
 * (null where the price is not known).
 */
function aloneAmounts(p: SettlementPayload): Map<string, number | null> {
  const traded = new Map<string, number>();
  for (const l of p.lines) {
    if (l.what === 'energy-sold') traded.set(l.party, (traded.get(l.party) ?? 0) + l.kWh);
    if (l.what === 'energy-bought') traded.set(l.party, (traded.get(l.party) ?? 0) - l.kWh);
  }
  const prices = levelAbovePrices(p);
  const alone = new Map<string, number | null>();
  for (const [peer, imbalance] of Object.entries(p.imbalanceKWh)) {
    const metered = p.meteredNetExportKWh?.[peer] ?? imbalance + (traded.get(peer) ?? 0);
    if (Math.abs(metered) < ZERO_KWH) alone.set(peer, 0);
    else {
      const price = metered > 0 ? prices.exportPricePerKWh : prices.importPricePerKWh;
      alone.set(peer, price === undefined ? null : metered * price);
    }
  }
  return alone;
}

/** Adds one settlement entry's lines to the sums of its accounts. */
function addSettlement(p: SettlementPayload, sums: Map<string, Sums>): void {
  const roles = rolesOf(p);
  const account = (id: string, role = roles.get(id) ?? 'prosumer'): Sums => {
    const s = sums.get(id) ?? emptySums(role);
    sums.set(id, s);
    s.role = role;
    return s;
  };
  for (const id of roles.keys()) account(id);
  for (const l of p.lines) {
    const s = account(l.party);
    if (l.what === 'energy-sold') s.soldKWh += l.kWh;
    if (l.what === 'energy-bought') s.boughtKWh += l.kWh;
    if (l.what === 'energy-sold' || l.what === 'energy-bought') s.peerTradeValue += Math.abs(l.amount);
    if (l.what === 'imbalance' && !(l.party in p.imbalanceKWh)) s.imbalanceKWh += l.kWh;
    if ((l.what === 'network-fee' || l.what === 'platform-fee') && l.amount < 0) s.fees -= l.amount;
    else if (l.amount > 0) s.received += l.amount;
    else s.paid -= l.amount;
  }
  for (const [peer, kWh] of Object.entries(p.imbalanceKWh)) account(peer).imbalanceKWh += kWh;
  // Alone, no fees are charged and the level above is the counterparty of every prosumer: it is an
  // account of the statement even in an interval where trades balanced every meter.
  let levelAboveAlone: number | null = 0;
  for (const [peer, amount] of aloneAmounts(p)) {
    const s = account(peer);
    s.aloneNet = addNullable(s.aloneNet, amount);
    levelAboveAlone = addNullable(levelAboveAlone, amount === null ? null : -amount);
  }
  const levelAbove = levelAboveOf(p, roles);
  if (levelAbove !== undefined) {
    const s = account(levelAbove, 'levelAbove');
    s.aloneNet = addNullable(s.aloneNet, levelAboveAlone);
  }
}

function intervalAccount(s: Sums): IntervalAccount {
  const received = money(s.received);
  const paid = money(s.paid);
  const fees = money(s.fees);
  const net = money(received - paid - fees);
  const aloneNet = s.aloneNet === null ? null : money(s.aloneNet);
  return {
    role: s.role,
    soldKWh: energy(s.soldKWh),
    boughtKWh: energy(s.boughtKWh),
    imbalanceKWh: energy(s.imbalanceKWh),
    received,
    paid,
    fees,
    net,
    aloneNet,
    savings: aloneNet === null ? null : money(net - aloneNet),
    peerTradeValue: money(s.peerTradeValue),
  };
}

/** Every settlement payload of the ledger's entries, in ledger order. */
function settlementPayloads(entries: readonly LedgerEntry[]): SettlementPayload[] {
  return entries.filter((e) => e.kind === 'settlement').map(parsePayload);
}

/**
 * The settled intervals whose start is in [from, to), in time order, each with its accounts: the one
 * reading of settlement entries that the statement and its per-interval rows share.
 */
export function settledIntervals(
  entries: readonly LedgerEntry[],
  query: Pick<StatementQuery, 'fromMs' | 'toMs'>,
): SettledInterval[] {
  const byInterval = new Map<number, SettlementPayload[]>();
  for (const p of settlementPayloads(entries)) {
    if (query.fromMs !== undefined && p.interval < query.fromMs) continue;
    if (query.toMs !== undefined && p.interval >= query.toMs) continue;
    byInterval.set(p.interval, [...(byInterval.get(p.interval) ?? []), p]);
  }
  return [...byInterval]
    .sort(([a], [b]) => a - b)
    .map(([intervalMs, payloads]) => {
      const sums = new Map<string, Sums>();
      for (const p of payloads) addSettlement(p, sums);
      const accounts = new Map([...sums].map(([id, s]) => [id, intervalAccount(s)]));
      return { intervalMs, entries: payloads.length, accounts };
    });
}

/**
 * The period a statement covers: from `fromMs`, or the first settled interval; to `toMs`, or now (or,
 * should an interval start later than the clock says, just after its start, so that `to` stays exclusive).
 */
export function statementPeriod(
  intervals: readonly SettledInterval[],
  query: Pick<StatementQuery, 'fromMs' | 'toMs'>,
  nowMs: number,
): { from: string; to: string } {
  const lastStartMs = intervals.at(-1)?.intervalMs;
  const toMs = query.toMs ?? Math.max(nowMs, lastStartMs === undefined ? nowMs : lastStartMs + 1);
  const fromMs = query.fromMs ?? intervals[0]?.intervalMs ?? Math.min(nowMs, toMs);
  return { from: isoTime(fromMs), to: isoTime(toMs) };
}

/**
 * The role of `member` in the ledger's settlements (any period), or `prosumer` for a known member never
 * settled; an id that is neither is the caller's mistake.
 */
export function memberRole(
  entries: readonly LedgerEntry[],
  member: string,
  knownIds: readonly string[] = [],
): AccountRole {
  let role: AccountRole | undefined;
  for (const p of settlementPayloads(entries)) role ??= rolesOf(p).get(member);
  if (role === undefined && !knownIds.includes(member)) {
    throw new P2PError(ErrorCode.input, `unknown member ${member}: no such member or account in the ledger`, {
      component: 'statement',
      field: '--member',
    });
  }
  return role ?? 'prosumer';
}

const ROLE_ORDER: readonly AccountRole[] = ['prosumer', 'networkOperator', 'platform', 'levelAbove'];

const NUMBER_FIELDS = ['soldKWh', 'boughtKWh', 'imbalanceKWh', 'received', 'paid', 'fees', 'net'] as const;

/**
 * The statement of the settlements among `entries` whose interval starts in [from, to): each account
 * is the sum of its parts of the settled intervals (`settledIntervals`).
 */
export function buildStatement(entries: readonly LedgerEntry[], query: StatementQuery, nowMs: number): Statement {
  const intervals = settledIntervals(entries, query);
  const totals = new Map<string, StatementAccount>();
  for (const interval of intervals) {
    for (const [id, part] of interval.accounts) {
      const t = totals.get(id) ?? { id, ...zeroAccount(part.role) };
      totals.set(id, t);
      t.role = part.role;
      t.intervals += 1;
      for (const field of NUMBER_FIELDS) t[field] += part[field];
      t.aloneNet = addNullable(t.aloneNet, part.aloneNet);
      t.savings = addNullable(t.savings, part.savings);
    }
  }
  const accounts = [...totals.values()].map((t) => {
    const account = { ...t, aloneNet: t.aloneNet === null ? null : money(t.aloneNet) };
    for (const field of NUMBER_FIELDS) account[field] = money(t[field]);
    account.savings = t.savings === null ? null : money(t.savings);
    return account;
  });
  accounts.sort((a, b) => ROLE_ORDER.indexOf(a.role) - ROLE_ORDER.indexOf(b.role) || a.id.localeCompare(b.id));
  const balance = money(accounts.reduce((sum, a) => sum + a.net, 0));

  let shown = accounts;
  if (query.member !== undefined) {
    const member = query.member;
    shown = accounts.filter((a) => a.id === member);
    if (shown.length === 0) shown = [{ id: member, ...zeroAccount(memberRole(entries, member, query.knownIds)) }];
  }
  return {
    ...statementPeriod(intervals, query, nowMs),
    settledIntervals: intervals.length,
    disputedIntervals: new Set(
      (query.disputedIntervals ?? []).filter(
        (i) => (query.fromMs === undefined || i >= query.fromMs) && (query.toMs === undefined || i < query.toMs),
      ),
    ).size,
    accounts: shown,
    balance,
  };
}

function zeroAccount(role: AccountRole): Omit<StatementAccount, 'id'> {
  return {
    role,
    intervals: 0,
    soldKWh: 0,
    boughtKWh: 0,
    imbalanceKWh: 0,
    received: 0,
    paid: 0,
    fees: 0,
    net: 0,
    aloneNet: 0,
    savings: 0,
  };
}

/** The accounts as a table for people (the `--json`-less output). */
export function statementTable(s: Statement): string {
  const header = ['account', 'role', 'intervals', 'soldKWh', 'boughtKWh', 'imbalanceKWh'];
  const moneyColumns = ['received', 'paid', 'fees', 'net', 'aloneNet', 'savings'] as const;
  const kWh = (x: number) => x.toFixed(3);
  const cash = (x: number | null) => (x === null ? '-' : x.toFixed(4));
  const rows = s.accounts.map((a) => [
    a.id,
    a.role,
    String(a.intervals),
    kWh(a.soldKWh),
    kWh(a.boughtKWh),
    kWh(a.imbalanceKWh),
    ...moneyColumns.map((c) => cash(a[c])),
  ]);
  const table = [[...header, ...moneyColumns], ...rows];
  const widths = table[0]?.map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length))) ?? [];
  const line = (r: string[]) =>
    r.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  return [
    `statement ${s.from} .. ${s.to}: ${s.settledIntervals} settled intervals, ${s.disputedIntervals} disputed`,
    ...table.map(line),
    `balance over all accounts: ${s.balance.toFixed(6)}`,
    '',
  ].join('\n');
}
