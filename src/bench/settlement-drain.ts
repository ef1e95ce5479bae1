import { setTimeout as sleep } from 'node:timers/promises';
import { Ledger } from '../platform/ledger/ledger.js';
import { unitsAwaitingSignatures } from '../platform/live-settlement.js';

/** How long the bench waits, after the run, for the parties to answer the last drafts. */
export const SETTLEMENT_DRAIN_MS = 20_000;

/**
 * After the run, while the gateways still run: waits (at most `maxMs`) until every settlement drafted
 * before `endedMs` is committed or disputed, as it waits for the outboxes: the drafts of the run's
 * last intervals go out a metering interval and a grace period after them. Says so when some are
 * still awaiting signatures at the end (the report counts them as not settled).
 */
export async function awaitSettlement(
  platformDb: string,
  endedMs: number,
  maxMs: number,
  progress: (line: string) => void,
): Promise<void> {
  let ledger: Ledger;
  try {
    ledger = Ledger.open(platformDb, { mustExist: true });
  } catch {
    return; // the platform never wrote its database
  }
  const deadline = Date.now() + maxMs;
  let told = false;
  try {
    for (;;) {
      const awaiting = unitsAwaitingSignatures(ledger, endedMs);
      if (awaiting === 0) return;
      if (Date.now() >= deadline) {
        progress(`${awaiting} settlement(s) drafted during the run still await signatures after ${maxMs / 1000} s`);
        return;
      }
      if (!told) progress(`waiting for the parties to sign the ${awaiting} settlement(s) drafted last`);
      told = true;
      await sleep(500);
    }
  } finally {
    ledger.close();
  }
}
