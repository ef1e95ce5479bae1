import { z } from 'zod';
import type { SignedContent } from '../comms/messages/settle.js';
import { ErrorCode, P2PError } from '../core/errors.js';
import { parseWith } from '../core/validate.js';
import type { Contract, Contracts } from './contracts.js';
import type { Ledger, LedgerEntry, LedgerParty } from './ledger/ledger.js';
import { ChainedTable } from './ledger/table-chain.js';
import {
  averageWithSameDayAdjustment,
  type BaselineDay,
  type DeliveryResult,
  deliveredFlexibility,
  highXofY,
  meteredBeforeAfter,
} from './mv/baseline.js';
import type { Readings } from './readings.js';

/**
 * Demand-response events under DR contracts, and their measurement and verification: the provider's
 * baseline by the contract's method from the stored meter readings, the flexibility delivered
 * against it, and whether that met the contract. An evaluation is final: it is written to the ledger
 * as the operator's attestation and never changes afterwards.
 */
const isoTime = z
  .string()
  .refine((t) => /^\d{4}-\d{2}-\d{2}T/.test(t) && !Number.isNaN(Date.parse(t)), 'expected an ISO 8601 time');

export const DrEventInput = z.object({ contract: z.number().int().positive(), start: isoTime, end: isoTime }).strict();

export interface DrEvent {
  id: number;
  contract: number;
  startMs: number;
  endMs: number;
  result: (DeliveryResult & { baselineKWh: number[]; meteredKWh: number[]; ledgerIndex: number }) | null;
}

const DAY_MS = 86_400_000;
/** How far back eligible baseline days are looked for. */
const LOOKBACK_DAYS = 45;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS platform_dr_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  contract INTEGER NOT NULL,
  start_ms INTEGER NOT NULL,
  end_ms INTEGER NOT NULL,
  result TEXT
);
`;

function inputError(message: string, field: string): P2PError {
  return new P2PError(ErrorCode.input, message, { component: 'dr-events', field });
}

type DrContract = Extract<Contract, { kind: 'dr-service' }>;

export class DrEvents {
  private readonly chain: ChainedTable;

  constructor(
    private readonly ledger: Ledger,
    private readonly contracts: Contracts,
    private readonly readings: Readings,
  ) {
    ledger.db.exec(SCHEMA);
    this.chain = ChainedTable.open(ledger.db, 'platform_dr_events');
  }

  private drContract(id: number): DrContract {
    const c = this.contracts.get(id);
    if (!c) throw inputError(`no contract ${id}`, 'contract');
    if (c.kind !== 'dr-service') throw inputError(`contract ${id} is a ${c.kind} contract, not dr-service`, 'contract');
    return c;
  }

  add(input: unknown): DrEvent {
    const e = parseWith(DrEventInput, input, { code: ErrorCode.input });
    const c = this.drContract(e.contract);
    const startMs = Date.parse(e.start);
    const endMs = Date.parse(e.end);
    if (endMs <= startMs) throw inputError('end must be after start', 'end');
    if (startMs < Date.parse(c.from) || endMs > Date.parse(c.to))
      throw inputError(`the event is outside contract ${c.id} (${c.from} to ${c.to})`, 'start');
    const stepMs = c.meteringIntervalS * 1000;
    if ((endMs - startMs) % stepMs !== 0 || startMs % stepMs !== 0)
      throw inputError(
        `start and end must fall on the contract's ${c.meteringIntervalS} s metering intervals`,
        'start',
      );
    const overlap = this.ledger.db
      .prepare('SELECT id FROM platform_dr_events WHERE contract = ? AND start_ms < ? AND end_ms > ?')
      .get(c.id, endMs, startMs) as { id: number } | undefined;
    if (overlap) throw inputError(`the event overlaps event ${overlap.id} of the same contract`, 'start');
    const { rowid } = this.chain.insert({ contract: c.id, start_ms: startMs, end_ms: endMs, result: null });
    return this.get(rowid)!;
  }

  get(id: number): DrEvent | undefined {
    const row = this.ledger.db.prepare('SELECT * FROM platform_dr_events WHERE id = ?').get(id) as
      | { id: number; contract: number; start_ms: number; end_ms: number; result: string | null }
      | undefined;
    return (
      row && {
        id: row.id,
        contract: row.contract,
        startMs: row.start_ms,
        endMs: row.end_ms,
        result: row.result ? JSON.parse(row.result) : null,
      }
    );
  }

  list(): DrEvent[] {
    const ids = this.ledger.db.prepare('SELECT id FROM platform_dr_events ORDER BY start_ms, id').all() as {
      id: number;
    }[];
    return ids.map((r) => this.get(r.id)!);
  }

  /** The provider's energy per interval of a window, or undefined when any interval lacks a reading. */
  private window(member: string, startMs: number, intervals: number, stepMs: number): number[] | undefined {
    const e = this.readings.intervalEnergy(member, startMs + stepMs, stepMs, intervals);
    return e.every((x) => x !== undefined) ? (e as number[]) : undefined;
  }

  /** Earlier days with complete readings in the event's window and no event of this provider then; oldest first. */
  private eligibleDays(c: DrContract, event: DrEvent, wanted: number, stepMs: number, before = 0): BaselineDay[] {
    const n = (event.endMs - event.startMs) / stepMs;
    const days: BaselineDay[] = [];
    for (let d = 1; d <= LOOKBACK_DAYS && days.length < wanted; d++) {
      const start = event.startMs - d * DAY_MS;
      const busy = this.ledger.db
        .prepare(
          `SELECT e.id FROM platform_dr_events e JOIN platform_contracts c ON c.id = e.contract
           WHERE c.provider = ? AND e.start_ms < ? AND e.end_ms > ?`,
        )
        .get(c.provider, start + n * stepMs, start - before) as { id: number } | undefined;
      if (busy) continue;
      const intervalKWh = this.window(c.provider, start, n, stepMs);
      if (intervalKWh) days.unshift({ date: new Date(start).toISOString().slice(0, 10), intervalKWh });
    }
    return days;
  }

  private baseline(c: DrContract, event: DrEvent, stepMs: number): number[] {
    const n = (event.endMs - event.startMs) / stepMs;
    const b = c.baseline;
    switch (b.method) {
      case 'high-x-of-y':
        return highXofY(this.eligibleDays(c, event, b.y, stepMs), b.x, b.y);
      case 'average-adjusted': {
        const pre = Math.round((b.adjustmentHours * 3_600_000) / stepMs);
        const preMs = pre * stepMs;
        const days = this.eligibleDays(c, event, b.days, stepMs, preMs);
        const sum = (xs: number[] | undefined, what: string) => {
          if (!xs)
            throw inputError(`readings missing in the ${b.adjustmentHours} h before the event (${what})`, 'readings');
          return xs.reduce((s, x) => s + x, 0);
        };
        const eventDayPreEventKWh = sum(this.window(c.provider, event.startMs - preMs, pre, stepMs), 'event day');
        const baselineDaysPreEventKWh = days
          .slice(-b.days)
          .map((d) =>
            sum(
              this.window(
                c.provider,
                Date.parse(`${d.date}T00:00:00Z`) + (event.startMs % DAY_MS) - preMs,
                pre,
                stepMs,
              ),
              d.date,
            ),
          );
        return averageWithSameDayAdjustment(days, b.days, {
          eventDayPreEventKWh,
          baselineDaysPreEventKWh,
          capPct: b.adjustmentCapPct,
        }).baselineKWh;
      }
      case 'metered-before-after': {
        const k = Math.round((b.beforeMinutes * 60_000) / stepMs);
        const before = this.window(c.provider, event.startMs - k * stepMs, k, stepMs);
        if (!before)
          throw inputError(
            `readings missing in the ${Number(b.beforeMinutes.toFixed(3))} min before the event`,
            'readings',
          );
        return meteredBeforeAfter(before, n);
      }
    }
  }

  /**
   * Measures and verifies an event once; the result is stored and written to the ledger signed by
   * the operator. An evaluated event is never evaluated again.
   */
  evaluate(
    id: number,
    operator: LedgerParty & { privateKey: string },
    time: string,
  ): { event: DrEvent; entry: LedgerEntry } {
    return this.evaluateWith(id, (payload) =>
      this.ledger.append(
        { time, kind: 'dr-event', parties: [{ id: operator.id, publicKey: operator.publicKey }], payload },
        { [operator.id]: operator.privateKey },
      ),
    );
  }

  /**
   * As `evaluate`, the attestation signed by the platform gateway's own key (a form-2 entry, as its
   * settlements): the platform evaluates the events the aggregators report while it runs.
   */
  evaluateAsPlatform(
    id: number,
    platform: LedgerParty,
    signDocument: (content: SignedContent) => string,
    time: string,
  ): { event: DrEvent; entry: LedgerEntry } {
    return this.evaluateWith(id, (payload) => {
      const content: SignedContent = { form: 2, kind: 'dr-event', parties: [platform], amounts: {}, payload };
      return this.ledger.appendContent(content, { [platform.id]: signDocument(content) }, time);
    });
  }

  private evaluateWith(id: number, attest: (payload: unknown) => LedgerEntry): { event: DrEvent; entry: LedgerEntry } {
    const event = this.get(id);
    if (!event) throw inputError(`no DR event ${id}`, '--id');
    if (event.result) throw inputError(`DR event ${id} is already evaluated`, '--id');
    const c = this.drContract(event.contract);
    const stepMs = c.meteringIntervalS * 1000;
    const n = (event.endMs - event.startMs) / stepMs;
    const metered = this.window(c.provider, event.startMs, n, stepMs);
    if (!metered) throw inputError(`readings of ${c.provider} missing during event ${id}`, 'readings');
    const baselineKWh = this.baseline(c, event, stepMs);
    const delivery = deliveredFlexibility(baselineKWh, metered, c);
    let entry: LedgerEntry | undefined;
    this.ledger.db.transaction(() => {
      entry = attest({
        event: id,
        contract: c.id,
        provider: c.provider,
        buyer: c.buyer,
        start: new Date(event.startMs).toISOString(),
        end: new Date(event.endMs).toISOString(),
        baseline: c.baseline,
        baselineKWh,
        meteredKWh: metered,
        ...delivery,
      });
      const result = { ...delivery, baselineKWh, meteredKWh: metered, ledgerIndex: entry.index };
      this.chain.update({ id }, { result: JSON.stringify(result) });
    })();
    return { event: this.get(id)!, entry: entry! };
  }
}
