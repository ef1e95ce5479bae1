import { createHash } from 'node:crypto';
import { z } from 'zod';
import { TRADE_MARKETS } from '../comms/messages/market.js';
import type { SignedContent } from '../comms/messages/settle.js';
import { ErrorCode, P2PError } from '../core/errors.js';
import { contentHash, type LedgerParty } from './ledger/ledger.js';
import { type IntervalSettlement, SettlementConfig, settleInterval } from './settlement.js';

/**
 * What the platform drafts for one settlement at run time and every party signs (a form-2 ledger
 * entry's content): one market of one interval — a cell's market between its MG trader and its
 * prosumers, or the market between the cells' traders one level up. The payload carries the
 * trades, the metered energy and the config it was computed from, so that a party recomputes the
 * amounts itself, and the hashes of the stored evidence (the trade reports, the meter samples).
 */

/** The published tariff every party checks a draft's fees and prices against. */
export const SettlementSchedule = z
  .object({
    /** Account that receives network fees (the DSO). */
    networkOperator: z.string().min(1).max(64),
    networkFeePerKWh: z.number().finite().nonnegative(),
    /** Account that receives platform fees. */
    platform: z.string().min(1).max(64),
    /** Per kWh traded, half from the seller and half from the buyer. */
    platformFeePerKWh: z.number().finite().nonnegative(),
    /** The level above's prices for imbalance: a shortfall bought at import, a surplus sold at export. */
    importPricePerKWh: z.number().finite(),
    exportPricePerKWh: z.number().finite(),
    /** The account one level above the cells' traders (the supplier at the grid connection). */
    upperLevel: z.string().min(1).max(64),
    /**
     * The hours of energy one trading interval stands for: its length in the field; on a bench whose
     * clock runs faster than the market's slots, the market's slot (15 minutes while the interval
     * lasts seconds).
     */
    slotMinutes: z.number().positive().optional(),
    /** A metered figure is agreed when within this many kWh of the party's own, or `tolerancePct` of it. */
    toleranceKWh: z.number().nonnegative().default(0.01),
    tolerancePct: z.number().nonnegative().default(2),
  })
  .strict();
export type SettlementSchedule = z.infer<typeof SettlementSchedule>;
export type SettlementScheduleInput = z.input<typeof SettlementSchedule>;

const HASH = z.string().regex(/^[0-9a-f]{64}$/);

export const UnitTrade = z
  .object({
    seller: z.string().min(1),
    buyer: z.string().min(1),
    kWh: z.number().finite().positive(),
    pricePerKWh: z.number().finite(),
  })
  .strict();
export type UnitTrade = z.infer<typeof UnitTrade>;

/** The payload of a settlement drafted at run time. */
export const UnitPayload = z
  .object({
    unit: z.string().min(1),
    /** The interval's start, ms since the epoch (as the traders name it). */
    interval: z.number().int().nonnegative(),
    intervalMs: z.number().int().positive(),
    market: z.enum(TRADE_MARKETS),
    /** The cell of a cell market; `*` one level up. */
    cell: z.string().min(1),
    trades: z.array(UnitTrade),
    meteredNetExportKWh: z.record(z.string(), z.number().finite()),
    imbalanceKWh: z.record(z.string(), z.number().finite()),
    config: SettlementConfig,
    /** SHA-256 of the stored trade reports and meter samples the draft was computed from. */
    evidence: z.object({ trades: HASH, samples: HASH }).strict(),
  })
  .strict();
export type UnitPayload = z.infer<typeof UnitPayload>;

export const unitId = (interval: number, market: string, cell: string): string => `${interval}/${market}/${cell}`;

/** The config of one unit: the schedule's fees, and the level above of its market. */
export function unitConfig(schedule: SettlementSchedule, market: 'cell' | 'upper', trader: string): SettlementConfig {
  return {
    networkOperator: schedule.networkOperator,
    networkFeePerKWh: schedule.networkFeePerKWh,
    platform: schedule.platform,
    platformFeePerKWh: schedule.platformFeePerKWh,
    levelAbove: {
      id: market === 'cell' ? trader : schedule.upperLevel,
      importPricePerKWh: schedule.importPricePerKWh,
      exportPricePerKWh: schedule.exportPricePerKWh,
    },
  };
}

export interface UnitInput {
  interval: number;
  intervalMs: number;
  market: 'cell' | 'upper';
  cell: string;
  trades: UnitTrade[];
  meteredNetExportKWh: Record<string, number>;
  config: SettlementConfig;
  evidence: { trades: string; samples: string };
}

/** Pure: the content every party of one unit signs, and the settlement it holds. */
export function draftUnit(
  input: UnitInput,
  publicKeys: (id: string) => string | undefined,
): { content: SignedContent; settlement: IntervalSettlement } {
  const settlement = settleInterval(
    input.interval,
    input.trades.map((t) => ({ interval: input.interval, ...t })),
    input.meteredNetExportKWh,
    input.config,
  );
  const parties: LedgerParty[] = Object.keys(settlement.amounts)
    .sort()
    .map((id) => {
      const publicKey = publicKeys(id);
      if (!publicKey)
        throw new P2PError(ErrorCode.input, `no public key for account ${id}: it is not a member`, {
          component: 'settlement',
          field: `parties.${id}`,
        });
      return { id, publicKey };
    });
  const payload: UnitPayload = {
    unit: unitId(input.interval, input.market, input.cell),
    interval: input.interval,
    intervalMs: input.intervalMs,
    market: input.market,
    cell: input.cell,
    trades: input.trades,
    meteredNetExportKWh: input.meteredNetExportKWh,
    imbalanceKWh: settlement.imbalanceKWh,
    config: input.config,
    evidence: input.evidence,
  };
  return { content: { form: 2, kind: 'settlement', parties, amounts: settlement.amounts, payload }, settlement };
}

/**
 * The evidence a draft names: SHA-256 over the JSON array of the rows in the order given, each row
 * the array of its column values in the table's order (numbers and strings only, so this is also
 * their RFC 8785 canonical JSON).
 */
export function evidenceHash(rows: readonly object[]): string {
  return createHash('sha256')
    .update(JSON.stringify(rows.map((r) => Object.values(r))))
    .digest('hex');
}

export { contentHash };
