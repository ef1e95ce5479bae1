import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type HeadEntry, MAX_HEAD_ENTRIES, SettleHeadBody } from '../../src/comms/messages/settle.js';
import { canonicalJson, generateKeyPair } from '../../src/core/signing.js';
import { followHead, type KnownHead } from '../../src/platform/ledger/head-follower.js';
import { contentHash, contentOf, GENESIS_HASH, Ledger, type LedgerEntry } from '../../src/platform/ledger/ledger.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

const alice = generateKeyPair();
const bob = generateKeyPair();
const parties = [
  { id: 'alice', publicKey: alice.publicKey },
  { id: 'bob', publicKey: bob.publicKey },
];
const keys = { alice: alice.privateKey, bob: bob.privateKey };

let files = 0;
/** A real ledger of `n` form-2 entries. */
function ledgerOf(n: number): Ledger {
  const ledger = Ledger.open(join(tmp.dir, `head-${files++}.db`));
  for (let i = 0; i < n; i++)
    ledger.append(
      {
        time: new Date(Date.UTC(2026, 6, 10, 12, 0, i)).toISOString(),
        kind: 'settlement',
        parties,
        amounts: { alice: i + 0.5, bob: -(i + 0.5) },
        payload: { interval: i },
      },
      keys,
    );
  return ledger;
}

const listed = (e: LedgerEntry): HeadEntry => ({
  index: e.index,
  time: e.time,
  form: 2,
  contentHash: contentHash(contentOf(e)),
  hash: e.hash,
});

/** The head a platform publishes: its entries from `from` on, at most `limit` of them. */
function headOf(entries: LedgerEntry[], from: number, limit = MAX_HEAD_ENTRIES): SettleHeadBody {
  const last = entries[entries.length - 1];
  return SettleHeadBody.parse({
    entries: entries.length,
    hash: last?.hash ?? GENESIS_HASH,
    from,
    recent: entries.slice(from, from + limit).map(listed),
  });
}

/** The chain hash written out here (not the ledger's function): sha256 of the canonical place and content hash. */
const chainOf = (index: number, time: string, prevHash: string, content: string) =>
  createHash('sha256')
    .update(canonicalJson({ form: 2, index, time, prevHash, contentHash: content }))
    .digest('hex');

/** A dishonest platform's ledger: entry `at` changed, every hash from it on recomputed so the chain links. */
function rewritten(entries: LedgerEntry[], at: number): HeadEntry[] {
  const out: HeadEntry[] = [];
  let prev = at === 0 ? GENESIS_HASH : (entries[at - 1] as LedgerEntry).hash;
  for (const e of entries.slice(0, at)) out.push(listed(e));
  for (const e of entries.slice(at)) {
    const content =
      e.index === at ? contentHash({ ...contentOf(e), amounts: { alice: 99, bob: -99 } }) : contentHash(contentOf(e));
    const hash = chainOf(e.index, e.time, prev, content);
    out.push({ index: e.index, time: e.time, form: 2, contentHash: content, hash });
    prev = hash;
  }
  return out;
}

describe("a gateway follows the platform's ledger head", () => {
  const ledger = ledgerOf(8);
  const entries = ledger.entries();
  const at = (n: number): KnownHead => ({ entries: n, hash: (entries[n - 1] as LedgerEntry).hash });

  it("the chain hash written out here is the ledger's", () => {
    const e = entries[3] as LedgerEntry;
    expect(chainOf(e.index, e.time, e.prevHash, contentHash(contentOf(e)))).toBe(e.hash);
  });

  it('takes the first head on trust, and checks the entries it lists from the genesis', () => {
    // A gateway that starts late sees the head of a ledger it cannot link to anything it saw.
    expect(followHead(undefined, headOf(entries.slice(0, 5), 5))).toEqual({
      outcome: 'extends',
      head: at(5),
      entries: [],
    });
    const fromStart = followHead(undefined, headOf(entries.slice(0, 5), 0));
    expect(fromStart).toEqual({ outcome: 'extends', head: at(5), entries: entries.slice(0, 5).map(listed) });
    // Listed from the start, an entry whose content hash was changed does not link to the genesis.
    const forged = headOf(entries.slice(0, 5), 0);
    forged.recent = forged.recent.map((e) => (e.index === 0 ? { ...e, contentHash: 'cd'.repeat(32) } : e));
    expect(followHead(undefined, forged)).toEqual({
      outcome: 'mismatch',
      reason: 'entry 0 does not link to the entry before it',
    });
    // An empty ledger.
    expect(followHead(undefined, headOf([], 0))).toEqual({
      outcome: 'extends',
      head: { entries: 0, hash: GENESIS_HASH },
      entries: [],
    });
  });

  it('an extension whose entries link to the one it saw extends its known head', () => {
    expect(followHead(at(3), headOf(entries, 3))).toEqual({
      outcome: 'extends',
      head: at(8),
      entries: entries.slice(3).map(listed),
    });
    // A head listing from before what it saw: the known entries are compared, the new ones checked.
    expect(followHead(at(3), headOf(entries, 1))).toEqual({
      outcome: 'extends',
      head: at(8),
      entries: entries.slice(3).map(listed),
    });
    // Nothing new.
    expect(followHead(at(8), headOf(entries, 8))).toEqual({ outcome: 'extends', head: at(8), entries: [] });
  });

  it('an entry rewritten, with every hash after it recomputed by the platform, is a mismatch', () => {
    for (const from of [2, 3, 5]) {
      const recent = rewritten(entries, 2);
      const head = SettleHeadBody.parse({
        entries: 8,
        hash: (recent[7] as HeadEntry).hash,
        from,
        recent: recent.slice(from),
      });
      const r = followHead(at(5), head);
      expect(r, `listed from ${from}`).toMatchObject({ outcome: 'mismatch' });
    }
    // Rewritten and nothing appended since: the head's hash is not the one it saw.
    const recent = rewritten(entries.slice(0, 5), 2);
    const same = SettleHeadBody.parse({ entries: 5, hash: (recent[4] as HeadEntry).hash, from: 5, recent: [] });
    expect(followHead(at(5), same)).toMatchObject({ outcome: 'mismatch' });
    // A new entry whose content hash was changed after it was listed does not link either.
    const head = headOf(entries, 5);
    head.recent = head.recent.map((e) => (e.index === 6 ? { ...e, contentHash: 'ab'.repeat(32) } : e));
    expect(followHead(at(5), head)).toEqual({
      outcome: 'mismatch',
      reason: 'entry 6 does not link to the entry before it',
    });
  });

  it('a form-2 entry listed without its content hash cannot be linked: a mismatch', () => {
    const recent = rewritten(entries, 2);
    const head = SettleHeadBody.parse({
      entries: 8,
      hash: (recent[7] as HeadEntry).hash,
      from: 5,
      recent: recent.slice(5).map((e, i) => (i === 0 ? { ...e, contentHash: undefined } : e)),
    });
    expect(followHead(at(5), head)).toMatchObject({ outcome: 'mismatch' });
  });

  it('a new entry listed in form 1 (a rewrite hidden behind an entry whose hash cannot be recomputed) is a mismatch', () => {
    const recent = rewritten(entries, 5);
    const { contentHash: _hidden, ...first } = recent[5] as HeadEntry;
    const head = SettleHeadBody.parse({
      entries: 8,
      hash: (recent[7] as HeadEntry).hash,
      from: 5,
      recent: [{ ...first, form: 1 }, ...recent.slice(6)],
    });
    expect(followHead(at(5), head)).toEqual({
      outcome: 'mismatch',
      reason: 'entry 5 is listed in form 1, which cannot be linked',
    });
    // Taken on trust as the first head a gateway sees (entries written before form 2 existed).
    expect(followHead(undefined, head)).toMatchObject({ outcome: 'extends' });
  });

  it('fewer entries than it saw (truncation) is a mismatch', () => {
    expect(followHead(at(8), headOf(entries.slice(0, 6), 6))).toEqual({
      outcome: 'mismatch',
      reason: 'the ledger has 6 entries, 8 before: entries were removed',
    });
    // Truncated to 6 and grown back to 8 with other entries: the last one it saw has changed.
    const regrown = ledgerOf(6);
    for (const i of [6, 7])
      regrown.append(
        {
          time: new Date(Date.UTC(2026, 6, 10, 12, 0, i)).toISOString(),
          kind: 'settlement',
          parties,
          amounts: { alice: -1, bob: 1 },
          payload: { interval: i },
        },
        keys,
      );
    const other = regrown.entries();
    expect(other[5]?.hash).toBe(entries[5]?.hash);
    for (const from of [6, 7, 8])
      expect(followHead(at(8), headOf(other, from)), `listed from ${from}`).toMatchObject({ outcome: 'mismatch' });
    regrown.close();
  });

  it('a head listing from after what it saw: it asks from its known count', () => {
    expect(followHead(at(3), headOf(entries, 6))).toEqual({ outcome: 'gap', from: 3 });
  });

  it('a head listing only part of the new entries: extends as far as listed and asks for more', () => {
    const big = ledgerOf(MAX_HEAD_ENTRIES + 30);
    const all = big.entries();
    const head = headOf(all, 10);
    expect(head.recent).toHaveLength(MAX_HEAD_ENTRIES);
    const known: KnownHead = { entries: 10, hash: (all[9] as LedgerEntry).hash };
    const r = followHead(known, head);
    const reached = 10 + MAX_HEAD_ENTRIES;
    expect(r).toEqual({
      outcome: 'extends',
      head: { entries: reached, hash: (all[reached - 1] as LedgerEntry).hash },
      entries: all.slice(10, reached).map(listed),
      more: reached,
    });
    // The answer to its request completes it.
    if (r.outcome !== 'extends') throw new Error('unreachable');
    expect(followHead(r.head, headOf(all, reached))).toEqual({
      outcome: 'extends',
      head: { entries: all.length, hash: big.head().hash },
      entries: all.slice(reached).map(listed),
    });
    big.close();
  });
});
