import type { TradeMarket, TradeReportBody } from '../comms/messages/market.js';
import type { SqliteDatabase } from './ledger/sqlite.js';
import { ChainedTable } from './ledger/table-chain.js';

/**
 * The trades the markets agreed, as their MG traders report them to the platform at run time, so
 * that settlement takes them from the platform's database rather than from files. Each trade is
 * reported by one party: between two traders by the buyer (at its price), between a trader and
 * its prosumers by the trader. A report is stored whole, before it is acknowledged, keyed by
 * (interval, market, seller, buyer): a resend is recognised and stored once, and a second report
 * of the same trade with other figures (a trader that cleared an interval twice) is kept out and
 * counted as a conflict. The report's body (`mkt/trades`) is in the message catalogue.
 */

export interface StoredTrade {
  interval: number;
  market: TradeMarket;
  seller: string;
  buyer: string;
  kWh: number;
  pricePerKWh: number;
  reporter: string;
  session: string;
  converged: boolean;
  receivedMs: number;
}

export type TradeReportOutcome =
  | { outcome: 'stored'; trades: number }
  | { outcome: 'resent' }
  | { outcome: 'conflict'; trade: { seller: string; buyer: string } }
  | { outcome: 'refused'; reason: string };

const SCHEMA = `
CREATE TABLE IF NOT EXISTS platform_trades (
  interval INTEGER NOT NULL,
  market TEXT NOT NULL,
  seller TEXT NOT NULL,
  buyer TEXT NOT NULL,
  kwh REAL NOT NULL,
  price REAL NOT NULL,
  reporter TEXT NOT NULL,
  session TEXT NOT NULL,
  converged INTEGER NOT NULL,
  received_ms INTEGER NOT NULL,
  PRIMARY KEY (interval, market, seller, buyer)
);
CREATE TABLE IF NOT EXISTS platform_trade_reports (
  reporter TEXT NOT NULL,
  market TEXT NOT NULL,
  interval INTEGER NOT NULL,
  trades INTEGER NOT NULL,
  received_ms INTEGER NOT NULL,
  PRIMARY KEY (reporter, market, interval)
);
CREATE INDEX IF NOT EXISTS platform_trade_reports_interval ON platform_trade_reports (interval);
`;

interface Row {
  interval: number;
  market: TradeMarket;
  seller: string;
  buyer: string;
  kwh: number;
  price: number;
  reporter: string;
  session: string;
  converged: number;
  received_ms: number;
}

const fromRow = (r: Row): StoredTrade => ({
  interval: r.interval,
  market: r.market,
  seller: r.seller,
  buyer: r.buyer,
  kWh: r.kwh,
  pricePerKWh: r.price,
  reporter: r.reporter,
  session: r.session,
  converged: r.converged === 1,
  receivedMs: r.received_ms,
});

export class TradeReports {
  private readonly trades: ChainedTable;
  private readonly reports: ChainedTable;

  constructor(private readonly db: SqliteDatabase) {
    db.exec(SCHEMA);
    this.trades = ChainedTable.open(db, 'platform_trades');
    this.reports = ChainedTable.open(db, 'platform_trade_reports');
  }

  /**
   * Stores one trader's report of an interval, whole or not at all. A report the platform has
   * (the same reporter, market and interval, with the same trades) is a resend.
   */
  add(reporter: string, report: TradeReportBody, receivedMs: number): TradeReportOutcome {
    const foreign = report.trades.find((t) => t.seller !== reporter && t.buyer !== reporter);
    if (foreign)
      return { outcome: 'refused', reason: `${reporter} is not a party to ${foreign.seller} → ${foreign.buyer}` };
    let outcome: TradeReportOutcome = { outcome: 'resent' };
    this.db.transaction(() => {
      const seen = this.db
        .prepare('SELECT trades FROM platform_trade_reports WHERE reporter = ? AND market = ? AND interval = ?')
        .get(reporter, report.market, report.interval) as { trades: number } | undefined;
      if (seen) {
        // A resend matches what is stored trade for trade; anything else is a second, different report.
        const differs =
          seen.trades !== report.trades.length
            ? (report.trades[0] ?? { seller: reporter, buyer: reporter })
            : report.trades.find((t) => !this.matches(report, t, true));
        outcome = differs ? { outcome: 'conflict', trade: differs } : { outcome: 'resent' };
        return;
      }
      const conflict = report.trades.find((t) => !this.matches(report, t, false));
      if (conflict) {
        outcome = { outcome: 'conflict', trade: conflict };
        return;
      }
      for (const t of report.trades)
        this.trades.insert(
          {
            interval: report.interval,
            market: report.market,
            seller: t.seller,
            buyer: t.buyer,
            kwh: t.kWh,
            price: t.pricePerKWh,
            reporter,
            session: report.session,
            converged: report.converged ? 1 : 0,
            received_ms: receivedMs,
          },
          { orIgnore: true },
        );
      this.reports.insert({
        reporter,
        market: report.market,
        interval: report.interval,
        trades: report.trades.length,
        received_ms: receivedMs,
      });
      outcome = { outcome: 'stored', trades: report.trades.length };
    })();
    return outcome;
  }

  /** Whether the stored trade under `t`'s key has its figures (or, unless `mustExist`, there is none). */
  private matches(report: TradeReportBody, t: TradeReportBody['trades'][number], mustExist: boolean): boolean {
    const stored = this.db
      .prepare('SELECT kwh, price FROM platform_trades WHERE interval = ? AND market = ? AND seller = ? AND buyer = ?')
      .get(report.interval, report.market, t.seller, t.buyer) as { kwh: number; price: number } | undefined;
    if (!stored) return !mustExist;
    return stored.kwh === t.kWh && stored.price === t.pricePerKWh;
  }

  /** Every stored trade, or those of one interval, oldest first. */
  list(interval?: number): StoredTrade[] {
    const rows = (
      interval === undefined
        ? this.db.prepare('SELECT * FROM platform_trades ORDER BY interval, market, seller, buyer').all()
        : this.db
            .prepare('SELECT * FROM platform_trades WHERE interval = ? ORDER BY market, seller, buyer')
            .all(interval)
    ) as Row[];
    return rows.map(fromRow);
  }

  /** The reports of the intervals that start in [fromMs, toMs]: who reported which market of which interval. */
  reportsBetween(
    fromMs: number,
    toMs: number,
  ): { interval: number; market: TradeMarket; reporter: string; receivedMs: number }[] {
    return this.db
      .prepare(
        'SELECT interval, market, reporter, received_ms AS receivedMs FROM platform_trade_reports WHERE interval >= ? AND interval <= ? ORDER BY interval, market, reporter',
      )
      .all(fromMs, toMs) as { interval: number; market: TradeMarket; reporter: string; receivedMs: number }[];
  }

  /** An interval's trades of every market in the form settlement takes. */
  forSettlement(
    interval: number,
  ): { interval: number; seller: string; buyer: string; kWh: number; pricePerKWh: number }[] {
    return this.list(interval).map((t) => ({
      interval: t.interval,
      seller: t.seller,
      buyer: t.buyer,
      kWh: t.kWh,
      pricePerKWh: t.pricePerKWh,
    }));
  }
}
