import { z } from 'zod';
import { ErrorCode, P2PError } from '../core/errors.js';
import { parseWith } from '../core/validate.js';
import type { SqliteDatabase } from './ledger/sqlite.js';
import { ChainedTable } from './ledger/table-chain.js';
import type { Membership } from './membership.js';
import { checkReadings } from './mv/baseline.js';

/**
 * Meter readings the gateways report: energy per metering interval, per member and meter. A batch is
 * stored whole or not at all: a reading of an unknown or inactive member, a duplicate, or one older
 * than what is stored for its meter refuses the batch and changes nothing.
 */
const isoTime = z
  .string()
  .refine((t) => /^\d{4}-\d{2}-\d{2}T/.test(t) && !Number.isNaN(Date.parse(t)), 'expected an ISO 8601 time');

export const ReadingsInput = z
  .object({
    readings: z
      .array(
        z
          .object({
            member: z.string().min(1),
            meter: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/),
            /** End of the metering interval. */
            time: isoTime,
            /** Energy taken from the grid in the interval (negative = fed in), kWh. */
            energyKWh: z.number().finite(),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();
export type ReadingsInput = z.infer<typeof ReadingsInput>;

export interface StoredReading {
  member: string;
  meter: string;
  timeMs: number;
  energyKWh: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS platform_readings (
  member TEXT NOT NULL,
  meter TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  energy_kwh REAL NOT NULL,
  PRIMARY KEY (member, meter, time_ms)
);
`;

export class Readings {
  private readonly chain: ChainedTable;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly members: Membership,
  ) {
    db.exec(SCHEMA);
    this.chain = ChainedTable.open(db, 'platform_readings');
  }

  /**
   * Deletes readings older than `beforeMs` (past their retention), oldest stored first, up to the first
   * stored one that is not older (a table's chain is cut only at its start); returns how many.
   */
  prune(beforeMs: number): number {
    return this.chain.deleteOldest('time_ms < ?', beforeMs);
  }

  /** Stores a batch atomically; returns how many readings it held. */
  add(input: unknown): number {
    const rows = parseWith(ReadingsInput, input, { code: ErrorCode.input }).readings;
    rows.forEach((r, i) => {
      const m = this.members.get(r.member);
      if (m?.status !== 'active')
        throw new P2PError(ErrorCode.input, `readings[${i}]: ${r.member} is not an active member`, {
          component: 'readings',
          field: `readings[${i}].member`,
        });
    });
    const last: Record<string, number> = {};
    for (const key of new Set(rows.map((r) => `${r.member}/${r.meter}`))) {
      const [member, meter] = key.split('/') as [string, string];
      const t = this.lastTime(member, meter);
      if (t !== null) last[key] = t;
    }
    checkReadings(
      rows.map((r) => ({
        meter: `${r.member}/${r.meter}`,
        timeMs: Date.parse(r.time),
        energyKWh: Math.abs(r.energyKWh),
      })),
      last,
    );
    this.chain.insertAll(
      rows.map((r) => ({ member: r.member, meter: r.meter, time_ms: Date.parse(r.time), energy_kwh: r.energyKWh })),
    );
    return rows.length;
  }

  /** Time (ms) of a meter's newest stored reading, or null. */
  lastTime(member: string, meter: string): number | null {
    const row = this.db
      .prepare('SELECT MAX(time_ms) AS t FROM platform_readings WHERE member = ? AND meter = ?')
      .get(member, meter) as { t: number | null };
    return row.t;
  }

  list(filter: { member?: string; meter?: string } = {}): StoredReading[] {
    const rows = this.db
      .prepare(
        'SELECT * FROM platform_readings WHERE (? IS NULL OR member = ?) AND (? IS NULL OR meter = ?) ORDER BY member, meter, time_ms',
      )
      .all(filter.member ?? null, filter.member ?? null, filter.meter ?? null, filter.meter ?? null) as {
      member: string;
      meter: string;
      time_ms: number;
      energy_kwh: number;
    }[];
    return rows.map((r) => ({ member: r.member, meter: r.meter, timeMs: r.time_ms, energyKWh: r.energy_kwh }));
  }

  /**
   * A member's energy (all its meters) per metering interval ending at `firstEndMs + k·intervalMs`,
   * k = 0..count−1; undefined where an interval has no reading.
   */
  intervalEnergy(member: string, firstEndMs: number, intervalMs: number, count: number): (number | undefined)[] {
    const lastEndMs = firstEndMs + (count - 1) * intervalMs;
    const rows = this.db
      .prepare(
        'SELECT time_ms, SUM(energy_kwh) AS e FROM platform_readings WHERE member = ? AND time_ms BETWEEN ? AND ? GROUP BY time_ms',
      )
      .all(member, firstEndMs, lastEndMs) as { time_ms: number; e: number }[];
    const byTime = new Map(rows.map((r) => [r.time_ms, r.e]));
    return Array.from({ length: count }, (_, k) => byTime.get(firstEndMs + k * intervalMs));
  }
}
