import { z } from 'zod';
import type { DisputedLine, SignedContent } from '../comms/messages/settle.js';
import { ErrorCode, P2PError } from '../core/errors.js';
import type { LedgerParty } from './ledger/ledger.js';
import { money } from './settlement.js';
import { amountsFollow, checkCommon, MONEY_TOLERANCE, type OwnTrade } from './settlement-check.js';
import { unitId } from './settlement-content.js';

/**
 * The payment of an aggregator's DR dispatches of one interval (pure): each dispatch, measured under
 * its contract's baseline, is paid for the energy delivered (baseline minus metered), at most what
 * was dispatched and never less than nothing, at the dispatch's price. The provider receives it, the
 * aggregator pays it. The payload carries every figure, so that a party recomputes the amounts.
 */

export const DR_MARKET = 'dr';

/** One paid dispatch: the evaluation's energy (kWh of the market's slot) and the money that follows. */
export const DrPaymentEvent = z
  .object({
    /** The DR event on the platform, and the contract it falls under. */
    event: z.number().int().positive(),
    contract: z.number().int().positive(),
    provider: z.string().min(1),
    /** Over the event: the contract's baseline and the metered energy (consumption). */
    baselineKWh: z.number().finite(),
    meteredKWh: z.number().finite(),
    /** Baseline minus metered. */
    deliveredKWh: z.number().finite(),
    /** What the aggregator dispatched. */
    dispatchedKWh: z.number().finite().positive(),
    /** The delivered energy paid for: within [0, dispatchedKWh]. */
    paidKWh: z.number().finite().nonnegative(),
    pricePerKWh: z.number().finite().nonnegative(),
    amount: z.number().finite().nonnegative(),
  })
  .strict();
export type DrPaymentEvent = z.infer<typeof DrPaymentEvent>;

export const DrPaymentPayload = z
  .object({
    unit: z.string().min(1),
    interval: z.number().int().nonnegative(),
    intervalMs: z.number().int().positive(),
    market: z.literal(DR_MARKET),
    /** The aggregator that dispatched and pays (the unit's third part, where a market unit has its cell). */
    cell: z.string().min(1),
    aggregator: z.string().min(1),
    events: z.array(DrPaymentEvent).min(1),
  })
  .strict();
export type DrPaymentPayload = z.infer<typeof DrPaymentPayload>;

/** A measured dispatch, before the money. */
export interface MeasuredDispatch {
  event: number;
  contract: number;
  provider: string;
  baselineKWh: number;
  meteredKWh: number;
  dispatchedKWh: number;
  pricePerKWh: number;
}

const kWh = (x: number): number => Math.round(x * 1e9) / 1e9;

/** The paid line of one measured dispatch: delivered energy capped at the dispatch, times its price. */
export function drPaymentEvent(m: MeasuredDispatch): DrPaymentEvent {
  const deliveredKWh = kWh(m.baselineKWh - m.meteredKWh);
  const paidKWh = kWh(Math.min(Math.max(deliveredKWh, 0), m.dispatchedKWh));
  return {
    event: m.event,
    contract: m.contract,
    provider: m.provider,
    baselineKWh: kWh(m.baselineKWh),
    meteredKWh: kWh(m.meteredKWh),
    deliveredKWh,
    dispatchedKWh: m.dispatchedKWh,
    paidKWh,
    pricePerKWh: m.pricePerKWh,
    amount: money(paidKWh * m.pricePerKWh),
  };
}

/** Each provider receives its events' amounts, the aggregator pays them all. */
export function drPaymentAmounts(aggregator: string, events: readonly DrPaymentEvent[]): Record<string, number> {
  const amounts: Record<string, number> = {};
  let total = 0;
  for (const e of events) {
    amounts[e.provider] = money((amounts[e.provider] ?? 0) + e.amount);
    total += e.amount;
  }
  amounts[aggregator] = money(-total);
  return amounts;
}

/** The unit a DR payment is stored and signed under: `<interval>/dr/<aggregator>`. */
export const drPaymentUnit = (interval: number, aggregator: string): string => unitId(interval, DR_MARKET, aggregator);

/** The content every party of a DR payment signs (a form-2 settlement). */
export function draftDrPayment(
  input: { interval: number; intervalMs: number; aggregator: string; events: readonly MeasuredDispatch[] },
  publicKeys: (id: string) => string | undefined,
): SignedContent {
  const events = input.events.map(drPaymentEvent);
  const amounts = drPaymentAmounts(input.aggregator, events);
  const parties: LedgerParty[] = Object.keys(amounts)
    .sort()
    .map((id) => {
      const publicKey = publicKeys(id);
      if (!publicKey)
        throw new P2PError(ErrorCode.input, `no public key for account ${id}: it is not a member`, {
          component: 'dr-payment',
          field: `parties.${id}`,
        });
      return { id, publicKey };
    });
  const payload: DrPaymentPayload = {
    unit: drPaymentUnit(input.interval, input.aggregator),
    interval: input.interval,
    intervalMs: input.intervalMs,
    market: DR_MARKET,
    cell: input.aggregator,
    aggregator: input.aggregator,
    events,
  };
  return { form: 2, kind: 'settlement', parties, amounts, payload };
}

const KWH_TOLERANCE = 1e-5;

export type DrPaymentCheck = { ok: true; payload: DrPaymentPayload } | { ok: false; lines: DisputedLine[] };

/**
 * A party's check of a DR payment draft against the dispatches its roles recorded for the interval
 * (`dispatches`: as trades from provider to aggregator, the dispatched kWh at the price; undefined
 * when its records do not reach back there). The provider checks its own lines, the aggregator every
 * line: the price is the dispatch's, the energy paid is the delivered energy capped at the dispatch,
 * and the amounts follow. The baseline and metered figures come from the platform's stored readings.
 */
export function checkDrPayment(
  content: SignedContent,
  self: string,
  dispatches: readonly OwnTrade[] | undefined,
  memberKey?: (id: string) => string | undefined,
): DrPaymentCheck {
  const common = checkCommon(content, self, DrPaymentPayload, 'a DR payment', memberKey);
  if ('unreadable' in common) return { ok: false, lines: common.unreadable };
  const p = common.payload;
  const lines = common.lines;
  /** A disputed line when the draft's figure is off its own by more than `tolerance`; whether it was. */
  const differs = (line: string, draft: number, own: number, tolerance: number, reason: string): boolean => {
    if (!(Math.abs(draft - own) > tolerance)) return false;
    lines.push({ line, draft, own, reason });
    return true;
  };
  p.events.forEach((e, i) => {
    const at = `events.${i}`;
    const again = drPaymentEvent(e);
    differs(
      `${at}.deliveredKWh`,
      e.deliveredKWh,
      again.deliveredKWh,
      KWH_TOLERANCE,
      'not the baseline minus the metered energy',
    );
    if (e.provider !== self && p.aggregator !== self) return;
    const own = dispatches?.find((d) => d.seller === e.provider && d.buyer === p.aggregator);
    if (dispatches && !own) {
      lines.push({
        line: `${at}.dispatchedKWh`,
        draft: e.dispatchedKWh,
        own: null,
        reason: 'a dispatch it has no record of',
      });
      return;
    }
    const dispatchedKWh = own?.kWh ?? e.dispatchedKWh;
    const pricePerKWh = own?.pricePerKWh ?? e.pricePerKWh;
    differs(`${at}.dispatchedKWh`, e.dispatchedKWh, dispatchedKWh, KWH_TOLERANCE, 'not the dispatch');
    differs(`${at}.pricePerKWh`, e.pricePerKWh, pricePerKWh, MONEY_TOLERANCE, 'not the price dispatched');
    const paid = drPaymentEvent({ ...e, dispatchedKWh, pricePerKWh });
    if (
      !differs(
        `${at}.paidKWh`,
        e.paidKWh,
        paid.paidKWh,
        KWH_TOLERANCE,
        'not the delivered energy capped at the dispatch',
      )
    )
      differs(`${at}.amount`, e.amount, paid.amount, MONEY_TOLERANCE, 'not the paid energy at its price');
  });
  const amounts = drPaymentAmounts(p.aggregator, p.events);
  lines.push(...amountsFollow(content, amounts, 'payment'));
  return lines.length === 0 ? { ok: true, payload: p } : { ok: false, lines: lines.slice(0, 64) };
}
