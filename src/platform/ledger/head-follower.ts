import type { HeadEntry, SettleHeadBody } from '../../comms/messages/settle.js';
import { chainHash, GENESIS_HASH } from './ledger.js';

/**
 * A gateway's check of the ledger heads its platform publishes (pure). Each form-2 entry's chain
 * hash is recomputed from the hash before it, its place, time and content hash, so a head that
 * extends the one the gateway saw before proves every earlier entry unchanged, those it signed
 * among them. A head with fewer entries (truncation) or whose entries do not link to what the
 * gateway saw (a rewrite) is a mismatch, and so is a new entry in form 1 (whose hash cannot be
 * recomputed without its body; nothing appends form 1 any more). The first head a gateway sees is
 * taken as it is.
 */

export interface KnownHead {
  entries: number;
  hash: string;
}

export type HeadCheck =
  /** Nothing new, or entries that link: `head` is the new known head, `entries` those it checked. */
  | { outcome: 'extends'; head: KnownHead; entries: HeadEntry[]; more?: number }
  /** The head starts after what the gateway saw: ask the platform for the entries from `from`. */
  | { outcome: 'gap'; from: number }
  | { outcome: 'mismatch'; reason: string };

export function followHead(known: KnownHead | undefined, head: SettleHeadBody): HeadCheck {
  const start = known ?? { entries: head.from, hash: head.from === 0 ? GENESIS_HASH : undefined };
  if (known && head.entries < known.entries)
    return {
      outcome: 'mismatch',
      reason: `the ledger has ${head.entries} entries, ${known.entries} before: entries were removed`,
    };
  if (head.from > start.entries) return { outcome: 'gap', from: start.entries };
  let prev = start.hash;
  let entries = start.entries;
  const checked: HeadEntry[] = [];
  for (const e of head.recent) {
    if (e.index < entries - 1) continue;
    if (e.index === entries - 1) {
      if (prev !== undefined && e.hash !== prev)
        return { outcome: 'mismatch', reason: `entry ${e.index} has changed since this gateway saw it` };
      prev = e.hash;
      continue;
    }
    // Every entry is appended in form 2 now: one in form 1 after a head the gateway saw cannot be linked.
    if (e.form === 1 && known !== undefined)
      return { outcome: 'mismatch', reason: `entry ${e.index} is listed in form 1, which cannot be linked` };
    if (e.form === 2 && prev !== undefined) {
      // An entry the platform says is form 2 is linked by its content hash: without one it proves nothing.
      if (e.contentHash === undefined)
        return { outcome: 'mismatch', reason: `entry ${e.index} is listed without its content hash` };
      const expected = chainHash({ index: e.index, time: e.time, prevHash: prev, contentHash: e.contentHash });
      if (expected !== e.hash)
        return { outcome: 'mismatch', reason: `entry ${e.index} does not link to the entry before it` };
    }
    prev = e.hash;
    entries = e.index + 1;
    checked.push(e);
  }
  if (entries < head.entries) {
    // The head lists at most so many entries: what was checked holds, the rest is asked for.
    if (checked.length === 0) return { outcome: 'gap', from: entries };
    return { outcome: 'extends', head: { entries, hash: prev as string }, entries: checked, more: entries };
  }
  if (prev !== undefined && prev !== head.hash)
    return { outcome: 'mismatch', reason: `the head's hash does not follow from its entries (entry ${entries - 1})` };
  return { outcome: 'extends', head: { entries: head.entries, hash: head.hash }, entries: checked };
}
