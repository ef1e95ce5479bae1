import type { z } from 'zod';
import type { DisputedLine, SignedContent } from '../comms/messages/settle.js';
import { errorMessage } from '../core/errors.js';
import { settleInterval } from './settlement.js';
import { type SettlementSchedule, type UnitPayload, UnitPayload as UnitPayloadSchema } from './settlement-content.js';

/**
 * A party's check of a settlement draft against its own records before it signs (pure): its metered
 * energy, the trades its roles agreed, the published schedule, and the platform's arithmetic. Every
 * line it does not agree with is named with the draft's figure and its own.
 */

/**
 * A trade as the party's own roles agreed it. A trade another party reports (a sale to a neighbour
 * trader, reported by the buyer at its price and after its link losses) has neither: only that it
 * is there is checked.
 */
export interface OwnTrade {
  seller: string;
  buyer: string;
  kWh?: number | undefined;
  pricePerKWh?: number | undefined;
}

/** Sales another party reports are recorded from this size on; smaller ones are taken as drafted. */
export const RECORDED_SALE_KWH = 0.01;

export interface PartyRecords {
  /**
   * The party's own figure of its metered net export in the unit's interval (kWh), and the fraction
   * of the interval its own samples cover. Absent: it has no meter in this market.
   */
  metered?: { kWh: number; coverage: number } | undefined;
  /** The trades of this market and interval its roles agreed. Absent: it takes no part in this market's trades. */
  trades?: readonly OwnTrade[] | undefined;
  /**
   * The public key the operator-signed members list gives an active member (undefined for others):
   * a draft naming a party under another key would let someone else sign for it.
   */
  memberKey?: ((id: string) => string | undefined) | undefined;
}

/** Below this share of the interval the party's own samples cannot contradict the platform's figure. */
export const MIN_METER_COVERAGE = 0.9;
/** Trades are reported to the micro-kWh. */
const TRADE_TOLERANCE_KWH = 1e-5;
export const MONEY_TOLERANCE = 1e-8;

export type DraftCheck = { ok: true; payload: UnitPayload } | { ok: false; lines: DisputedLine[] };

const round = (x: number, digits = 9): number => Number(x.toFixed(digits));

/**
 * Whether an agreed trade is one this unit settles. One level up every trader's trades are in the one
 * unit. A cell's unit has the trades its trader reported: those with its prosumers and its purchases
 * from neighbouring traders; a trader's sale to a neighbour (no figures of its own) is reported by the
 * buyer, in the buyer's cell, and its trades in its own cell are not in a neighbour's.
 */
function belongsTo(p: UnitPayload, t: OwnTrade): boolean {
  if (p.market !== 'cell') return true;
  const trader = p.config.levelAbove.id;
  return t.kWh === undefined ? t.buyer === trader : t.seller === trader || t.buyer === trader;
}

/**
 * What every kind of settlement draft is checked for first: a settlement whose payload `schema`
 * reads, drafted to one of its parties, each party under the key the members list gives it.
 */
export function checkCommon<P>(
  content: SignedContent,
  self: string,
  schema: z.ZodType<P>,
  what: string,
  memberKey?: (id: string) => string | undefined,
): { payload: P; lines: DisputedLine[] } | { unreadable: DisputedLine[] } {
  const parsed = schema.safeParse(content.payload);
  if (content.kind !== 'settlement' || !parsed.success) {
    const issue = parsed.success ? undefined : parsed.error.issues[0];
    return {
      unreadable: [
        {
          line: issue ? `payload.${issue.path.join('.')}` : 'kind',
          draft: content.kind,
          own: null,
          reason: issue ? `not ${what}: ${issue.message}` : 'not a settlement',
        },
      ],
    };
  }
  const lines: DisputedLine[] = [];
  if (!content.parties.some((x) => x.id === self))
    lines.push({ line: 'parties', draft: null, own: self, reason: 'drafted to a gateway that is not its party' });
  if (memberKey)
    for (const party of content.parties) {
      const key = memberKey(party.id);
      if (key !== party.publicKey)
        lines.push({
          line: `parties.${party.id}.publicKey`,
          draft: party.publicKey,
          own: key ?? null,
          reason: key ? 'not the key the members list gives it' : 'not an active member',
        });
    }
  return { payload: parsed.data, lines };
}

/**
 * The draft's amounts and parties against the amounts the party worked out itself: each account's
 * figure (within rounding), and parties exactly the accounts with money.
 */
export function amountsFollow(
  content: SignedContent,
  own: Record<string, number>,
  what: 'settlement' | 'payment',
): DisputedLine[] {
  const lines: DisputedLine[] = [];
  for (const id of [...new Set([...Object.keys(own), ...Object.keys(content.amounts)])].sort()) {
    const drafted = content.amounts[id];
    const mine = own[id];
    if (drafted === undefined || mine === undefined || Math.abs(drafted - mine) > MONEY_TOLERANCE)
      lines.push({
        line: `amounts.${id}`,
        draft: drafted ?? null,
        own: mine ?? null,
        reason: 'does not follow from the draft',
      });
  }
  const partyIds = content.parties.map((x) => x.id).sort();
  const accounts = Object.keys(own).sort();
  if (partyIds.join(',') !== accounts.join(','))
    lines.push({
      line: 'parties',
      draft: partyIds.join(','),
      own: accounts.join(','),
      reason: `not the accounts the ${what} moves money for`,
    });
  return lines;
}

export function checkDraft(
  content: SignedContent,
  self: string,
  records: PartyRecords,
  schedule: SettlementSchedule,
): DraftCheck {
  const common = checkCommon(content, self, UnitPayloadSchema, 'a settlement payload', records.memberKey);
  if ('unreadable' in common) return { ok: false, lines: common.unreadable };
  const p = common.payload;
  const lines = common.lines;

  // The published schedule: fees, fee accounts, the level above's prices and, one level up, its account.
  const expected: [string, number | string, number | string][] = [
    ['config.networkOperator', p.config.networkOperator, schedule.networkOperator],
    ['config.networkFeePerKWh', p.config.networkFeePerKWh, schedule.networkFeePerKWh],
    ['config.platform', p.config.platform, schedule.platform],
    ['config.platformFeePerKWh', p.config.platformFeePerKWh, schedule.platformFeePerKWh],
    ['config.levelAbove.importPricePerKWh', p.config.levelAbove.importPricePerKWh, schedule.importPricePerKWh],
    ['config.levelAbove.exportPricePerKWh', p.config.levelAbove.exportPricePerKWh, schedule.exportPricePerKWh],
  ];
  if (p.market === 'upper') expected.push(['config.levelAbove.id', p.config.levelAbove.id, schedule.upperLevel]);
  for (const [line, draft, own] of expected)
    if (draft !== own) lines.push({ line, draft, own, reason: 'not the published schedule' });
  // A cell's market is its trader's: every trade has the trader on one side, and the cell's imbalance
  // is the trader's. A level above that is no party to the trades sends that money elsewhere.
  const trader = p.config.levelAbove.id;
  const stranger = p.market === 'cell' && p.trades.find((t) => t.seller !== trader && t.buyer !== trader);
  if (stranger)
    lines.push({
      line: 'config.levelAbove.id',
      draft: trader,
      own: `${stranger.seller}->${stranger.buyer}`,
      reason: "not the cell's trader: a trade without it",
    });

  // Its own meter.
  if (records.metered && records.metered.coverage >= MIN_METER_COVERAGE) {
    const draft = p.meteredNetExportKWh[self];
    const own = records.metered.kWh;
    const tolerance = Math.max(schedule.toleranceKWh, (schedule.tolerancePct / 100) * Math.abs(own));
    if (draft === undefined || Math.abs(draft - own) > tolerance)
      lines.push({
        line: `meteredNetExportKWh.${self}`,
        draft: draft ?? null,
        own: round(own, 6),
        reason: `metered energy differs by more than ${round(tolerance, 6)} kWh`,
      });
  }

  // The trades its roles agreed, and no other trade of its.
  if (records.trades) {
    const drafted = p.trades.filter((t) => t.seller === self || t.buyer === self);
    const key = (t: { seller: string; buyer: string }) => `trades.${t.seller}->${t.buyer}`;
    for (const own of records.trades.filter((t) => belongsTo(p, t))) {
      const d = drafted.find((t) => t.seller === own.seller && t.buyer === own.buyer);
      if (!d) lines.push({ line: key(own), draft: null, own: own.kWh ?? null, reason: 'an agreed trade is missing' });
      else if (own.kWh !== undefined && Math.abs(d.kWh - own.kWh) > TRADE_TOLERANCE_KWH)
        lines.push({ line: `${key(own)}.kWh`, draft: d.kWh, own: own.kWh, reason: 'not the energy agreed' });
      else if (own.pricePerKWh !== undefined && Math.abs(d.pricePerKWh - own.pricePerKWh) > MONEY_TOLERANCE)
        lines.push({
          line: `${key(own)}.pricePerKWh`,
          draft: d.pricePerKWh,
          own: own.pricePerKWh,
          reason: 'not the price agreed',
        });
    }
    const reportedByBuyer = (d: { seller: string; kWh: number }) => d.seller === self && d.kWh < RECORDED_SALE_KWH;
    for (const d of drafted)
      if (!records.trades.some((t) => t.seller === d.seller && t.buyer === d.buyer) && !reportedByBuyer(d))
        lines.push({ line: key(d), draft: d.kWh, own: null, reason: 'a trade it did not agree' });
  }

  // The platform's arithmetic: the amounts and imbalances follow from the trades, meters and config.
  try {
    const again = settleInterval(
      p.interval,
      p.trades.map((t) => ({ interval: p.interval, ...t })),
      p.meteredNetExportKWh,
      p.config,
    );
    lines.push(...amountsFollow(content, again.amounts, 'settlement'));
  } catch (err) {
    lines.push({
      line: 'payload',
      draft: null,
      own: null,
      reason: `cannot be settled: ${errorMessage(err)}`.slice(0, 256),
    });
  }
  return lines.length === 0 ? { ok: true, payload: p } : { ok: false, lines: lines.slice(0, 64) };
}
