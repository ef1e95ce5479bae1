import { z } from 'zod';
import { ErrorCode, P2PError } from '../core/errors.js';
import type { SqliteDatabase } from './ledger/sqlite.js';
import { ChainedTable } from './ledger/table-chain.js';
import type { Membership } from './membership.js';

/**
 * Contracts between pairs of peers (paper section II: per-pair rules for DR measurement and
 * verification). A contract runs over [from, to); two contracts of the same kind between the same
 * pair may not overlap in time.
 */

const isoTime = z
  .string()
  .refine((t) => /^\d{4}-\d{2}-\d{2}T/.test(t) && !Number.isNaN(Date.parse(t)), 'expected an ISO 8601 time');

export const BaselineMethod = z.discriminatedUnion('method', [
  /** Mean of the X highest of the last Y eligible days (CAISO/NYISO style). */
  z
    .object({ method: z.literal('high-x-of-y'), x: z.number().int().positive(), y: z.number().int().positive() })
    .strict(),
  /** Mean of the last N days, scaled by the event day's pre-event hours, scaling capped (PJM style). */
  z
    .object({
      method: z.literal('average-adjusted'),
      days: z.number().int().positive(),
      adjustmentHours: z.number().int().positive(),
      adjustmentCapPct: z.number().nonnegative(),
    })
    .strict(),
  /**
   * Demand in the window just before the event stands for the baseline during the event; the window
   * may be a fraction of a minute (a bench whose metering interval lasts seconds).
   */
  z.object({ method: z.literal('metered-before-after'), beforeMinutes: z.number().finite().positive() }).strict(),
]);
export type BaselineMethod = z.infer<typeof BaselineMethod>;

const period = { from: isoTime, to: isoTime };

export const ContractInput = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('dr-service'),
      /** The peer that reduces demand on request. */
      provider: z.string().min(1),
      /** The peer that calls events and pays (aggregator, MG trader, DSO). */
      buyer: z.string().min(1),
      ...period,
      capacityKW: z.number().positive(),
      pricePerKWh: z.number().nonnegative(),
      baseline: BaselineMethod,
      meteringIntervalS: z.number().positive(),
      /** Delivered energy may fall short of the contracted reduction by at most this share. */
      tolerancePct: z.number().min(0).max(100),
    })
    .strict(),
  z
    .object({
      kind: z.literal('bilateral-energy'),
      provider: z.string().min(1),
      buyer: z.string().min(1),
      ...period,
      energyKWhPerInterval: z.number().positive(),
      intervalS: z.number().int().positive(),
      pricePerKWh: z.number().nonnegative(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('congestion-relief'),
      provider: z.string().min(1),
      /** The DSO that buys the relief. */
      buyer: z.string().min(1),
      ...period,
      cell: z.string().min(1),
      cellLimitKW: z.number().positive(),
      pricePerKWh: z.number().nonnegative(),
    })
    .strict(),
]);
export type ContractInput = z.infer<typeof ContractInput>;
export type Contract = ContractInput & { id: number };

const SCHEMA = `
CREATE TABLE IF NOT EXISTS platform_contracts (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  provider TEXT NOT NULL,
  buyer TEXT NOT NULL,
  from_ms INTEGER NOT NULL,
  to_ms INTEGER NOT NULL,
  terms TEXT NOT NULL
);
`;

function inputError(message: string, field?: string): P2PError {
  return new P2PError(ErrorCode.input, message, { component: 'contracts', ...(field ? { field } : {}) });
}

export class Contracts {
  private readonly chain: ChainedTable;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly members: Membership,
  ) {
    db.exec(SCHEMA);
    this.chain = ChainedTable.open(db, 'platform_contracts');
  }

  /** Validates and stores a contract; on any error nothing is stored. */
  add(input: unknown): Contract {
    const parsed = ContractInput.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue?.path.join('.') ?? '';
      throw inputError(`contract ${field}: ${issue?.message}`, field);
    }
    const c = parsed.data;
    const fromMs = Date.parse(c.from);
    const toMs = Date.parse(c.to);
    if (toMs <= fromMs) throw inputError(`contract ends (${c.to}) before it starts (${c.from})`, 'to');
    if (c.provider === c.buyer) throw inputError('a contract binds two different peers', 'buyer');
    for (const field of ['provider', 'buyer'] as const) {
      const m = this.members.get(c[field]);
      if (!m) throw inputError(`unknown peer ${c[field]}`, field);
      if (m.status !== 'active') throw inputError(`peer ${c[field]} is ${m.status}, not an active member`, field);
    }
    if (c.kind === 'congestion-relief' && this.members.get(c.buyer)?.role !== 'dso') {
      throw inputError(`congestion relief is bought by a DSO; ${c.buyer} is not one`, 'buyer');
    }
    let stored: Contract | undefined;
    this.db
      .transaction(() => {
        const overlap = this.db
          .prepare(
            `SELECT id FROM platform_contracts WHERE kind = ? AND ((provider = ? AND buyer = ?) OR (provider = ? AND buyer = ?))
           AND from_ms < ? AND to_ms > ? LIMIT 1`,
          )
          .get(c.kind, c.provider, c.buyer, c.buyer, c.provider, toMs, fromMs) as { id: number } | undefined;
        if (overlap) {
          throw inputError(`overlaps ${c.kind} contract ${overlap.id} between ${c.provider} and ${c.buyer}`, 'from');
        }
        const { rowid } = this.chain.insert({
          kind: c.kind,
          provider: c.provider,
          buyer: c.buyer,
          from_ms: fromMs,
          to_ms: toMs,
          terms: JSON.stringify(c),
        });
        stored = { ...c, id: rowid };
      })
      .immediate();
    return stored as Contract;
  }

  list(): Contract[] {
    const rows = this.db.prepare('SELECT id, terms FROM platform_contracts ORDER BY id').all() as {
      id: number;
      terms: string;
    }[];
    return rows.map((r) => ({ ...(ContractInput.parse(JSON.parse(r.terms)) as ContractInput), id: r.id }));
  }

  get(id: number): Contract | undefined {
    return this.list().find((c) => c.id === id);
  }
}
