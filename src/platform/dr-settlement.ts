import type { DrEventBody } from '../comms/messages/dr.js';
import type { SignedContent } from '../comms/messages/settle.js';
import { errorMessage } from '../core/errors.js';
import type { Contract, Contracts } from './contracts.js';
import type { DrEvents } from './dr-events.js';
import { DR_MARKET, draftDrPayment, drPaymentUnit, type MeasuredDispatch } from './dr-payment.js';
import type { Ledger, LedgerParty } from './ledger/ledger.js';
import { ChainedTable } from './ledger/table-chain.js';
import type { LiveSettlement, MadeDraft } from './live-settlement.js';
import type { Membership } from './membership.js';

/**
 * DR paid at run time: each dispatch an aggregator reports (`dr/event`) becomes a DR event under the
 * dispatching pair's `dr-service` contract, over the contract's metering intervals that start within
 * the dispatched interval. Once the event's window, a metering interval and the grace have passed, it
 * is measured from the stored readings with the contract's baseline (the attestation signed by the
 * platform gateway's key), and the aggregator's dispatches of the interval are drafted as one payment
 * (`<interval>/dr/<aggregator>`) through the live settlement, to be signed by every party. The
 * dispatches are a chained platform table, so a platform killed at any point resumes from it.
 */

const SCHEMA = `
CREATE TABLE IF NOT EXISTS platform_dr_dispatches (
  aggregator TEXT NOT NULL,
  provider TEXT NOT NULL,
  interval INTEGER NOT NULL,
  curtail_kwh REAL NOT NULL,
  price_per_kwh REAL NOT NULL,
  event INTEGER NOT NULL,
  received_ms INTEGER NOT NULL,
  unpaid TEXT,
  PRIMARY KEY (aggregator, provider, interval)
);
`;

export interface DrSettlementOptions {
  /** The trading interval, ms of the gateways' clock. */
  intervalMs: number;
  /** After an event ends: the metering interval plus the settlement's grace. */
  waitAfterEndMs: number;
  /** How long an event waits for its readings before it is left unpaid. */
  maxReadingWaitMs: number;
  /** kWh of the market's slot per kWh of readings (a bench's clock runs faster than the market). */
  energyScale: number;
  lookBackMs: number;
}

export type DrReportOutcome =
  | { outcome: 'stored'; event: number }
  | { outcome: 'resent' }
  /** A trading interval shorter than the metering interval may hold none of its starts: nothing to measure. */
  | { outcome: 'unmeasurable'; reason: string }
  | { outcome: 'refused'; reason: string };

interface DispatchRow {
  aggregator: string;
  provider: string;
  interval: number;
  curtail_kwh: number;
  price_per_kwh: number;
  event: number;
}

type DrContract = Extract<Contract, { kind: 'dr-service' }>;

export class DrSettlement {
  private readonly dispatches: ChainedTable;
  private readonly waiting = new Map<string, string>();

  constructor(
    private readonly ledger: Ledger,
    private readonly members: Membership,
    private readonly contracts: Contracts,
    private readonly events: DrEvents,
    private readonly live: LiveSettlement,
    private readonly options: DrSettlementOptions,
  ) {
    ledger.db.exec(SCHEMA);
    this.dispatches = ChainedTable.open(ledger.db, 'platform_dr_dispatches');
  }

  /** DR payments waiting for readings now, and why. */
  waitingUnits(): Record<string, string> {
    return Object.fromEntries(this.waiting);
  }

  /** The pair's DR contract covering [startMs, endMs), if any. */
  private contractOf(provider: string, buyer: string, startMs: number, endMs: number): DrContract | undefined {
    return this.contracts
      .list()
      .find(
        (c): c is DrContract =>
          c.kind === 'dr-service' &&
          c.provider === provider &&
          c.buyer === buyer &&
          Date.parse(c.from) <= startMs &&
          endMs <= Date.parse(c.to),
      );
  }

  /** An aggregator's report of a dispatch: made a DR event under the pair's contract and kept, once. */
  report(aggregator: string, body: DrEventBody, nowMs: number): DrReportOutcome {
    if (this.members.get(aggregator)?.status !== 'active')
      return { outcome: 'refused', reason: `${aggregator} is not an active member` };
    const known = this.ledger.db
      .prepare('SELECT 1 FROM platform_dr_dispatches WHERE aggregator = ? AND provider = ? AND interval = ?')
      .get(aggregator, body.provider, body.interval);
    if (known) return { outcome: 'resent' };
    const intervalEndMs = body.interval + this.options.intervalMs;
    const contract = this.contractOf(body.provider, aggregator, body.interval, intervalEndMs);
    if (!contract)
      return { outcome: 'refused', reason: `no dr-service contract between ${body.provider} and ${aggregator} then` };
    if (body.pricePerKWh > contract.pricePerKWh)
      return {
        outcome: 'refused',
        reason: `price ${body.pricePerKWh} above contract ${contract.id}'s ${contract.pricePerKWh} per kWh`,
      };
    // The contract's metering intervals that start within the dispatched interval.
    const stepMs = contract.meteringIntervalS * 1000;
    const startMs = Math.ceil(body.interval / stepMs) * stepMs;
    const endMs = Math.ceil(intervalEndMs / stepMs) * stepMs;
    if (endMs <= startMs)
      return {
        outcome: 'unmeasurable',
        reason: `interval ${body.interval} holds no start of the contract's metering intervals`,
      };
    try {
      let event = 0;
      this.ledger.db.transaction(() => {
        event = this.events.add({
          contract: contract.id,
          start: new Date(startMs).toISOString(),
          end: new Date(endMs).toISOString(),
        }).id;
        this.dispatches.insert({
          aggregator,
          provider: body.provider,
          interval: body.interval,
          curtail_kwh: body.curtailKWh,
          price_per_kwh: body.pricePerKWh,
          event,
          received_ms: nowMs,
          unpaid: null,
        });
      })();
      return { outcome: 'stored', event };
    } catch (err) {
      return { outcome: 'refused', reason: errorMessage(err) };
    }
  }

  /**
   * Measures the events that are due and drafts each aggregator's payment of an interval once all
   * its events are measured (or left unpaid: readings missing past the wait). Returns the drafts to
   * send to their parties.
   */
  draftDue(
    nowMs: number,
    platform: LedgerParty,
    signOwn: (content: SignedContent) => string,
    signAttestation: (content: SignedContent) => string,
  ): MadeDraft[] {
    const { intervalMs, waitAfterEndMs, maxReadingWaitMs, energyScale, lookBackMs } = this.options;
    const rows = this.ledger.db
      .prepare(
        `SELECT aggregator, provider, interval, curtail_kwh, price_per_kwh, event FROM platform_dr_dispatches d
         WHERE interval >= ? AND interval <= ? AND unpaid IS NULL
         AND NOT EXISTS (SELECT 1 FROM platform_settlement_drafts s WHERE s.unit = d.interval || '/${DR_MARKET}/' || d.aggregator)
         ORDER BY interval, aggregator, provider`,
      )
      .all(nowMs - lookBackMs, nowMs - intervalMs - waitAfterEndMs) as DispatchRow[];
    const groups = new Map<string, DispatchRow[]>();
    for (const r of rows) {
      const unit = drPaymentUnit(r.interval, r.aggregator);
      groups.set(unit, [...(groups.get(unit) ?? []), r]);
    }
    const made: MadeDraft[] = [];
    for (const [unit, group] of groups) {
      const measured: MeasuredDispatch[] = [];
      let pending = false;
      for (const r of group) {
        let event = this.events.get(r.event);
        if (!event) continue;
        if (!event.result) {
          const dueMs = event.endMs + waitAfterEndMs;
          if (nowMs < dueMs) {
            pending = true;
            continue;
          }
          try {
            event = this.events.evaluateAsPlatform(
              r.event,
              platform,
              signAttestation,
              new Date(nowMs).toISOString(),
            ).event;
          } catch (err) {
            if (nowMs - dueMs <= maxReadingWaitMs) {
              this.waiting.set(unit, `event ${r.event}: ${errorMessage(err)}`);
              pending = true;
            } else
              this.dispatches.update(
                { aggregator: r.aggregator, provider: r.provider, interval: r.interval },
                { unpaid: errorMessage(err).slice(0, 256) },
              );
            continue;
          }
        }
        const result = event.result!;
        const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0) * energyScale;
        measured.push({
          event: r.event,
          contract: event.contract,
          provider: r.provider,
          baselineKWh: sum(result.baselineKWh),
          meteredKWh: sum(result.meteredKWh),
          dispatchedKWh: r.curtail_kwh,
          pricePerKWh: r.price_per_kwh,
        });
      }
      if (pending || measured.length === 0) continue;
      const interval = group[0]!.interval;
      const aggregator = group[0]!.aggregator;
      const content = draftDrPayment({ interval, intervalMs, aggregator, events: measured }, (id) =>
        this.live.activeKey(id),
      );
      this.waiting.delete(unit);
      made.push(this.live.storeDraft(unit, { interval, market: DR_MARKET, cell: aggregator }, content, signOwn, nowMs));
    }
    return made;
  }

  /** Dispatches left unpaid, and why (readings that never came). */
  unpaid(): { aggregator: string; provider: string; interval: number; reason: string }[] {
    return this.ledger.db
      .prepare(
        'SELECT aggregator, provider, interval, unpaid AS reason FROM platform_dr_dispatches WHERE unpaid IS NOT NULL',
      )
      .all() as { aggregator: string; provider: string; interval: number; reason: string }[];
  }
}
