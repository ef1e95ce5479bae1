import { z } from 'zod';
import { ErrorCode, P2PError } from '../core/errors.js';
import { formatPath, parseWith } from '../core/validate.js';
import type { Ledger, LedgerBody, LedgerEntry, LedgerParty } from './ledger/ledger.js';
import { ChainedTable } from './ledger/table-chain.js';

/**
 * Settlement of one trading interval: the trades the market agreed (seller, buyer, kWh, price — the
 * flows and prices the trading algorithm outputs) against the metered energy. Each peer is paid for
 * what it sold and pays for what it bought; network and platform fees are per kWh traded; whatever
 * the meters show beyond the trades (the imbalance) is bought from or sold to the level above (the
 * upstream MG trader or the grid) at that level's price. All money stays inside the parties: the
 * amounts of one interval sum to zero.
 */

export const Trade = z
  .object({
    interval: z.number().int().nonnegative(),
    seller: z.string().min(1),
    buyer: z.string().min(1),
    kWh: z.number().positive(),
    /** Negative when the market pays for taking energy (a surplus of PV). */
    pricePerKWh: z.number().finite(),
  })
  .strict();
export type Trade = z.infer<typeof Trade>;

export const SettlementConfig = z
  .object({
    /** Account that receives network fees (the DSO). */
    networkOperator: z.string().min(1),
    networkFeePerKWh: z.number().nonnegative(),
    /** Account that receives platform fees. */
    platform: z.string().min(1),
    /** Charged per kWh traded, half to the seller and half to the buyer. */
    platformFeePerKWh: z.number().nonnegative(),
    /** The level above: buys surplus and sells shortfall. */
    levelAbove: z
      .object({ id: z.string().min(1), importPricePerKWh: z.number(), exportPricePerKWh: z.number() })
      .strict(),
  })
  .strict();
export type SettlementConfig = z.infer<typeof SettlementConfig>;

export interface SettlementLine {
  party: string;
  what: 'energy-sold' | 'energy-bought' | 'network-fee' | 'platform-fee' | 'imbalance';
  kWh: number;
  amount: number;
}

export interface IntervalSettlement {
  interval: number;
  /** Money per account, positive when the account is owed. Sums to zero. */
  amounts: Record<string, number>;
  /** Metered net export minus traded net export per peer, kWh. */
  imbalanceKWh: Record<string, number>;
  lines: SettlementLine[];
}

function inputError(message: string, field: string): P2PError {
  return new P2PError(ErrorCode.input, message, { component: 'settlement', field });
}

/** Rounds to 1e-9 currency units so sums come out exact in the ledger. */
export const money = (x: number): number => Math.round(x * 1e9) / 1e9;

/**
 * Pure: settles one interval. `meteredNetExportKWh` has an entry for every peer that traded (export
 * positive, import negative).
 */
export function settleInterval(
  interval: number,
  tradesInput: unknown[],
  meteredNetExportKWh: Record<string, number>,
  configInput: unknown,
): IntervalSettlement {
  const config = parseWith(SettlementConfig, configInput, { file: 'settlement config', code: ErrorCode.input });
  const trades = tradesInput.map((t, i) => {
    const r = Trade.safeParse(t);
    if (!r.success) {
      const field = formatPath([`trades[${i}]`, ...(r.error.issues[0]?.path ?? [])]);
      throw inputError(`${field}: ${r.error.issues[0]?.message}`, field);
    }
    if (r.data.interval !== interval)
      throw inputError(`trades[${i}] is for interval ${r.data.interval}, not ${interval}`, `trades[${i}].interval`);
    if (r.data.seller === r.data.buyer)
      throw inputError(`trades[${i}]: seller and buyer are the same peer`, `trades[${i}].buyer`);
    return r.data;
  });
  const lines: SettlementLine[] = [];
  const tradedNet: Record<string, number> = {};
  for (const t of trades) {
    const value = t.kWh * t.pricePerKWh;
    lines.push({ party: t.seller, what: 'energy-sold', kWh: t.kWh, amount: value });
    lines.push({ party: t.buyer, what: 'energy-bought', kWh: t.kWh, amount: -value });
    lines.push({ party: t.buyer, what: 'network-fee', kWh: t.kWh, amount: -t.kWh * config.networkFeePerKWh });
    lines.push({
      party: config.networkOperator,
      what: 'network-fee',
      kWh: t.kWh,
      amount: t.kWh * config.networkFeePerKWh,
    });
    const halfFee = (t.kWh * config.platformFeePerKWh) / 2;
    lines.push({ party: t.seller, what: 'platform-fee', kWh: t.kWh, amount: -halfFee });
    lines.push({ party: t.buyer, what: 'platform-fee', kWh: t.kWh, amount: -halfFee });
    lines.push({ party: config.platform, what: 'platform-fee', kWh: t.kWh, amount: 2 * halfFee });
    tradedNet[t.seller] = (tradedNet[t.seller] ?? 0) + t.kWh;
    tradedNet[t.buyer] = (tradedNet[t.buyer] ?? 0) - t.kWh;
  }
  const imbalanceKWh: Record<string, number> = {};
  const peers = new Set([...Object.keys(tradedNet), ...Object.keys(meteredNetExportKWh)]);
  for (const peer of [...peers].sort()) {
    const metered = meteredNetExportKWh[peer];
    if (metered === undefined || !Number.isFinite(metered))
      throw inputError(`no metered energy for ${peer} in interval ${interval}`, `metered.${peer}`);
    const imbalance = metered - (tradedNet[peer] ?? 0);
    imbalanceKWh[peer] = imbalance;
    if (Math.abs(imbalance) < 1e-9) continue;
    // Surplus is sold to the level above at its export price; shortfall bought from it at its import price.
    const price = imbalance > 0 ? config.levelAbove.exportPricePerKWh : config.levelAbove.importPricePerKWh;
    lines.push({ party: peer, what: 'imbalance', kWh: imbalance, amount: imbalance * price });
    lines.push({ party: config.levelAbove.id, what: 'imbalance', kWh: -imbalance, amount: -imbalance * price });
  }
  const raw: Record<string, number> = {};
  for (const l of lines) raw[l.party] = (raw[l.party] ?? 0) + l.amount;
  const amounts: Record<string, number> = {};
  for (const [party, v] of Object.entries(raw)) amounts[party] = money(v);
  return { interval, amounts, imbalanceKWh, lines };
}

/** Collects every party's signature over a ledger body (locally or from the parties' gateways). */
export type SettlementSigner = (body: LedgerBody) => Record<string, string>;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS platform_settlements (
  interval INTEGER PRIMARY KEY,
  ledger_index INTEGER NOT NULL,
  amounts TEXT NOT NULL
);
`;

export class Settlements {
  private readonly chain: ChainedTable;

  constructor(private readonly ledger: Ledger) {
    ledger.db.exec(SCHEMA);
    this.chain = ChainedTable.open(ledger.db, 'platform_settlements');
  }

  /** Settled by these commands, or (any market of it) at run time by the platform role. */
  isSettled(interval: number): boolean {
    const db = this.ledger.db;
    if (db.prepare('SELECT 1 FROM platform_settlements WHERE interval = ?').get(interval) !== undefined) return true;
    const live = db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'platform_settled_units'")
      .get();
    return (
      live !== undefined &&
      db.prepare('SELECT 1 FROM platform_settled_units WHERE interval = ?').get(interval) !== undefined
    );
  }

  list(): { interval: number; ledgerIndex: number; amounts: Record<string, number> }[] {
    const rows = this.ledger.db.prepare('SELECT * FROM platform_settlements ORDER BY interval').all() as {
      interval: number;
      ledger_index: number;
      amounts: string;
    }[];
    return rows.map((r) => ({
      interval: r.interval,
      ledgerIndex: r.ledger_index,
      amounts: JSON.parse(r.amounts) as Record<string, number>,
    }));
  }

  /**
   * The ledger body of an interval's settlement, for every account it moves money for to sign (on
   * their own gateways: `platform sign`). Refused when the interval is settled already.
   */
  draft(
    interval: number,
    time: string,
    trades: unknown[],
    meteredNetExportKWh: Record<string, number>,
    config: unknown,
    publicKeys: Record<string, string>,
  ): { settlement: IntervalSettlement; body: LedgerBody } {
    if (this.isSettled(interval)) throw inputError(`interval ${interval} is already settled`, 'interval');
    const settlement = settleInterval(interval, trades, meteredNetExportKWh, config);
    const parties: LedgerParty[] = Object.keys(settlement.amounts)
      .sort()
      .map((id) => {
        const publicKey = publicKeys[id];
        if (!publicKey) throw inputError(`no public key for account ${id}`, `publicKeys.${id}`);
        return { id, publicKey };
      });
    const body = this.ledger.draft({
      time,
      kind: 'settlement',
      parties,
      amounts: settlement.amounts,
      // The metered energy and the config (accounts, fees, the level above's prices) let a statement
      // say what each account would have been owed trading with the level above alone.
      payload: {
        interval,
        imbalanceKWh: settlement.imbalanceKWh,
        lines: settlement.lines,
        meteredNetExportKWh,
        config: SettlementConfig.parse(config),
      },
    });
    return { settlement, body };
  }

  /**
   * Writes a drafted settlement signed by every party. Refused, with nothing changed, when the
   * interval was settled meanwhile, or a signature is missing or
   * does not check.
   */
  commit(body: LedgerBody, signatures: Record<string, string>): LedgerEntry {
    const interval = (body.payload as { interval?: unknown } | null)?.interval;
    if (body.kind !== 'settlement' || typeof interval !== 'number')
      throw inputError('the body is not a settlement drafted by the platform', 'body');
    let entry: LedgerEntry | undefined;
    this.ledger.db.transaction(() => {
      if (this.isSettled(interval)) throw inputError(`interval ${interval} is already settled`, 'interval');
      entry = this.ledger.appendSigned(body, signatures);
      this.chain.insert({ interval, ledger_index: entry.index, amounts: JSON.stringify(body.amounts) });
    })();
    return entry as LedgerEntry;
  }

  /**
   * Settles an interval once and writes it to the ledger, signed by every account it moves money for.
   * Settling the same interval again is refused and changes nothing.
   */
  settle(
    interval: number,
    time: string,
    trades: unknown[],
    meteredNetExportKWh: Record<string, number>,
    config: unknown,
    publicKeys: Record<string, string>,
    signer: SettlementSigner,
  ): { settlement: IntervalSettlement; entry: LedgerEntry } {
    const { settlement, body } = this.draft(interval, time, trades, meteredNetExportKWh, config, publicKeys);
    return { settlement, entry: this.commit(body, signer(body)) };
  }
}
