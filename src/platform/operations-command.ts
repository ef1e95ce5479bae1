import { z } from 'zod';
import { GatewayKeyFile } from '../comms/security.js';
import { ErrorCode, P2PError } from '../core/errors.js';
import { printJson } from '../core/output.js';
import { loadDataFile, readDataFile } from '../core/validate.js';
import { Contracts } from './contracts.js';
import { DrEvents } from './dr-events.js';
import { Ledger, type LedgerBody, signBody } from './ledger/ledger.js';
import { Membership } from './membership.js';
import { Readings } from './readings.js';
import { Settlements } from './settlement.js';
import { TradeReports } from './trades.js';

/**
 * Platform commands that write: meter readings, DR events and their evaluation, and settlement in
 * its two phases (the platform drafts; every party signs on its own gateway; the platform commits).
 */

function open<T>(db: string, run: (ledger: Ledger, members: Membership) => T): T {
  const ledger = Ledger.open(db, { mustExist: true });
  try {
    return run(ledger, new Membership(ledger.db, undefined, () => Date.now()));
  } finally {
    ledger.close();
  }
}

/** `platform readings add --db FILE --file READINGS.json`: a batch, stored whole or not at all. */
export function readingsAddCommand(o: { db: string; file: string }): void {
  const input = readDataFile(o.file, 'input');
  printJson({ stored: open(o.db, (l, m) => new Readings(l.db, m).add(input)) });
}

/** `platform events add --db FILE --file EVENT.json`: a DR event under a dr-service contract. */
export function eventsAddCommand(o: { db: string; file: string }): void {
  const input = readDataFile(o.file, 'input');
  printJson(open(o.db, (l, m) => new DrEvents(l, new Contracts(l.db, m), new Readings(l.db, m)).add(input)));
}

/** `platform events evaluate --db FILE --id N --operator-key FILE`: M&V of one event, attested in the ledger. */
export function eventsEvaluateCommand(o: { db: string; id: number; operatorKey: string }): void {
  const operator = loadDataFile(o.operatorKey, GatewayKeyFile, 'input');
  const result = open(o.db, (l, m) =>
    new DrEvents(l, new Contracts(l.db, m), new Readings(l.db, m)).evaluate(o.id, operator, new Date().toISOString()),
  );
  printJson({ ...result.event, ledgerIndex: result.entry.index });
}

/** The result of `p2p-edge trade --json` (flows and prices per agent and slot). */
const TradeOutput = z.object({
  flows: z.array(z.object({ from: z.string(), to: z.string(), energy: z.array(z.number()) })),
  prices: z.record(z.string(), z.array(z.number())),
});
const TradesFile = z.object({
  trades: z.array(z.unknown()),
});

/**
 * Trades of one interval: a `{ "trades": [...] }` file as settlement takes them, or the output of
 * `p2p-edge trade --json`, where each flow of slot `slot` is a trade from its sender to its receiver
 * at the receiver's price.
 */
export function tradesFromFile(file: string, interval: number, slot: number): unknown[] {
  const data = readDataFile(file, 'input');
  const direct = TradesFile.safeParse(data);
  if (direct.success) return direct.data.trades;
  const out = TradeOutput.safeParse(data);
  if (!out.success)
    throw new P2PError(
      ErrorCode.input,
      `${file}: neither { "trades": [...] } nor the output of p2p-edge trade --json`,
      {
        file,
        field: 'trades',
      },
    );
  return out.data.flows.flatMap((f) => {
    const kWh = f.energy[slot] ?? 0;
    const price = out.data.prices[f.to]?.[slot];
    if (kWh <= 1e-9) return [];
    if (price === undefined)
      throw new P2PError(ErrorCode.input, `${file}: no price of ${f.to} in slot ${slot}`, { file, field: 'prices' });
    return [{ interval, seller: f.from, buyer: f.to, kWh: Number(kWh.toFixed(6)), pricePerKWh: price }];
  });
}

const Metered = z.record(z.string(), z.number().finite());

/**
 * `platform settle draft --db FILE --interval N [--trades FILE] --config FILE --metered FILE [--slot T]`:
 * prints the ledger body every account must sign. Without `--trades`, the interval's trades are those
 * the traders reported to the platform at run time (`interval` is then the interval's start, ms). Public keys come from the members list, so every
 * account (peers, the DSO, the platform, the level above) must be a member.
 */
export function settleDraftCommand(o: {
  db: string;
  interval: number;
  trades?: string;
  config: string;
  metered: string;
  slot?: number;
}): void {
  const config = readDataFile(o.config, 'input');
  const metered = loadDataFile(o.metered, Metered, 'input');
  const result = open(o.db, (l, m) => {
    const trades = o.trades
      ? tradesFromFile(o.trades, o.interval, o.slot ?? 0)
      : new TradeReports(l.db).forSettlement(o.interval);
    const keys = Object.fromEntries(
      m
        .list()
        .filter((x) => x.status === 'active')
        .map((x) => [x.id, x.publicKey]),
    );
    return new Settlements(l).draft(o.interval, new Date().toISOString(), trades, metered, config, keys);
  });
  printJson({ body: result.body, settlement: result.settlement });
}

const Body = z.object({ body: z.unknown() }).passthrough();

function readBody(file: string): LedgerBody {
  const data = readDataFile(file, 'input');
  const wrapped = Body.safeParse(data);
  return (wrapped.success && wrapped.data.body ? wrapped.data.body : data) as LedgerBody;
}

/** `platform sign --key KEYFILE --body FILE`: one party's signature over a drafted ledger body. */
export function signCommand(o: { key: string; body: string }): void {
  const key = loadDataFile(o.key, GatewayKeyFile, 'input');
  const body = readBody(o.body);
  const party = body.parties?.find((p) => p.id === key.id);
  if (!party)
    throw new P2PError(ErrorCode.input, `${key.id} is not a party to this entry`, { field: '--key', file: o.key });
  if (party.publicKey !== key.publicKey)
    throw new P2PError(ErrorCode.input, `the entry names another public key for ${key.id}`, { field: '--key' });
  printJson({ [key.id]: signBody(body, key.privateKey) });
}

const Signatures = z.record(z.string(), z.string());

/** `platform settle commit --db FILE --body FILE --signatures FILE...`: appends the signed settlement. */
export function settleCommitCommand(o: { db: string; body: string; signatures: string[] }): void {
  const body = readBody(o.body);
  const signatures = Object.assign({}, ...o.signatures.map((f) => loadDataFile(f, Signatures, 'input')));
  const entry = open(o.db, (l) => new Settlements(l).commit(body, signatures));
  printJson({ interval: (body.payload as { interval: number }).interval, ledgerIndex: entry.index, hash: entry.hash });
}
