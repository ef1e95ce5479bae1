import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { canonicalJson, generateKeyPair, type KeyPair } from '../../src/core/signing.js';
import { entryHash, Ledger, signBody, signContent } from '../../src/platform/ledger/ledger.js';
import { openDatabase } from '../../src/platform/ledger/sqlite.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

const alice: KeyPair = generateKeyPair();
const bob: KeyPair = generateKeyPair();
const carol: KeyPair = generateKeyPair();
const keys = { alice: alice.privateKey, bob: bob.privateKey, carol: carol.privateKey };
const party = {
  alice: { id: 'alice', publicKey: alice.publicKey },
  bob: { id: 'bob', publicKey: bob.publicKey },
  carol: { id: 'carol', publicKey: carol.publicKey },
};

let n = 0;
/** A ledger of five settlement-like entries between pairs of peers, closed again. */
function fiveEntryLedger(): string {
  const file = join(tmp.dir, `ledger-${n++}.db`);
  const ledger = Ledger.open(file);
  const pairs = [
    [party.alice, party.bob],
    [party.bob, party.carol],
    [party.alice, party.carol],
    [party.alice, party.bob],
    [party.carol, party.bob],
  ] as const;
  pairs.forEach(([seller, buyer], i) => {
    ledger.append(
      {
        time: `2026-06-01T10:${String(i * 10).padStart(2, '0')}:00.000Z`,
        kind: 'settlement',
        parties: [seller, buyer],
        amounts: { [seller.id]: 1.25 + i, [buyer.id]: -(1.25 + i) },
        payload: { interval: i, kWh: 5 + i },
      },
      keys,
    );
  });
  ledger.close();
  return file;
}

function tamper(file: string, sql: string, ...params: unknown[]): void {
  const db = openDatabase(file);
  db.prepare(sql).run(...params);
  db.close();
}

function verify(file: string) {
  const ledger = Ledger.open(file, { mustExist: true });
  try {
    return ledger.verify();
  } finally {
    ledger.close();
  }
}

describe('ledger', () => {
  let file: string;
  beforeEach(() => {
    file = fiveEntryLedger();
  });

  it('an untouched ledger verifies, stored in WAL mode with a full fsync per commit', () => {
    expect(verify(file)).toEqual({ entries: 5, ok: true, firstBad: null });
    const ledger = Ledger.open(file);
    expect(ledger.db.pragma('journal_mode', { simple: true })).toBe('wal');
    // synchronous=FULL is 2 (SQLite PRAGMA synchronous).
    expect(ledger.db.pragma('synchronous', { simple: true })).toBe(2);
    // A bounded page cache (negative: KiB), 2 MB unless the opener says otherwise.
    expect(ledger.db.pragma('cache_size', { simple: true })).toBe(-2048);
    const entries = ledger.entries();
    expect(entries.map((e) => e.index)).toEqual([0, 1, 2, 3, 4]);
    expect(entries[1]?.prevHash).toBe(entries[0]?.hash);
    ledger.close();
  });

  it('takes the page cache bound it is given', () => {
    const ledger = Ledger.open(file, { pageCacheKiB: 512 });
    expect(ledger.db.pragma('cache_size', { simple: true })).toBe(-512);
    ledger.close();
  });

  it('a changed amount of a past entry fails the hash check at that entry', () => {
    tamper(file, `UPDATE ledger_entries SET amounts = ? WHERE idx = 2`, JSON.stringify({ alice: 3.26, carol: -3.25 }));
    expect(verify(file)).toEqual({ entries: 5, ok: false, firstBad: { index: 2, check: 'hash' } });
  });

  it('a changed stored hash fails the hash check', () => {
    tamper(file, `UPDATE ledger_entries SET hash = ? WHERE idx = 1`, 'f'.repeat(64));
    expect(verify(file).firstBad).toEqual({ index: 1, check: 'hash' });
  });

  it('an entry whose hash is recomputed after tampering still fails: the next entry links to the old hash', () => {
    const ledger = Ledger.open(file);
    const e = ledger.entries()[1];
    ledger.close();
    if (!e) throw new Error('missing entry');
    // Re-hash entry 1 with a changed payload: the entry itself now checks out, entry 2's prevHash does not.
    const body = {
      ...(e.form === 2 ? { form: e.form } : {}),
      index: 1,
      time: e.time,
      kind: e.kind,
      parties: e.parties,
      amounts: e.amounts,
      payload: { interval: 1, kWh: 60 },
      prevHash: e.prevHash,
    };
    const newHash = entryHash(body);
    tamper(
      file,
      `UPDATE ledger_entries SET payload = ?, hash = ? WHERE idx = 1`,
      JSON.stringify(body.payload),
      newHash,
    );
    const r = verify(file);
    expect(r.ok).toBe(false);
    // Entry 1's signatures were over the old body.
    expect(r.firstBad).toEqual({ index: 1, check: 'signature' });
  });

  it('a changed signature fails the signature check', () => {
    const ledger = Ledger.open(file);
    const sigs = ledger.entries()[3]?.signatures ?? {};
    ledger.close();
    const sig = Buffer.from(sigs.alice ?? '', 'base64url');
    sig[10] = (sig[10] ?? 0) ^ 1;
    tamper(
      file,
      `UPDATE ledger_entries SET signatures = ? WHERE idx = 3`,
      JSON.stringify({ ...sigs, alice: sig.toString('base64url') }),
    );
    expect(verify(file).firstBad).toEqual({ index: 3, check: 'signature' });
  });

  it('a signature dropped from an entry fails the signature check', () => {
    const ledger = Ledger.open(file);
    const sigs = ledger.entries()[0]?.signatures ?? {};
    ledger.close();
    tamper(file, `UPDATE ledger_entries SET signatures = ? WHERE idx = 0`, JSON.stringify({ alice: sigs.alice }));
    expect(verify(file).firstBad).toEqual({ index: 0, check: 'signature' });
  });

  it('every single stored byte flipped in any past entry is detected', () => {
    const columns = ['time', 'kind', 'parties', 'amounts', 'payload', 'prev_hash', 'hash', 'signatures'];
    for (const column of columns) {
      for (const idx of [0, 2, 4]) {
        const f = fiveEntryLedger();
        const db = openDatabase(f);
        const value = (db.prepare(`SELECT ${column} AS v FROM ledger_entries WHERE idx = ?`).get(idx) as { v: string })
          .v;
        // Flip one character in the middle of the stored text.
        const at = Math.floor(value.length / 2);
        const flipped = value.slice(0, at) + String.fromCharCode(value.charCodeAt(at) ^ 1) + value.slice(at + 1);
        db.prepare(`UPDATE ledger_entries SET ${column} = ? WHERE idx = ?`).run(flipped, idx);
        db.close();
        const r = verify(f);
        expect(r.ok, `${column} of entry ${idx}`).toBe(false);
        expect(r.firstBad?.index, `${column} of entry ${idx}`).toBe(idx);
      }
    }
  });

  it('a deleted middle entry fails the order check where the gap is', () => {
    tamper(file, 'DELETE FROM ledger_entries WHERE idx = 2');
    expect(verify(file)).toEqual({ entries: 4, ok: false, firstBad: { index: 2, check: 'order' } });
  });

  it('a deleted last entry fails the order check against the recorded head', () => {
    tamper(file, 'DELETE FROM ledger_entries WHERE idx = 4');
    expect(verify(file)).toEqual({ entries: 4, ok: false, firstBad: { index: 4, check: 'order' } });
  });

  it('two swapped rows fail the order check', () => {
    const db = openDatabase(file);
    db.exec('UPDATE ledger_entries SET seq = 100 WHERE idx = 1');
    db.exec('UPDATE ledger_entries SET seq = 2 WHERE idx = 2');
    db.exec('UPDATE ledger_entries SET seq = 3 WHERE idx = 1');
    db.close();
    expect(verify(file).firstBad).toEqual({ index: 1, check: 'order' });
  });

  it('a time moved backwards fails the order check', () => {
    tamper(file, `UPDATE ledger_entries SET time = ? WHERE idx = 3`, '2026-06-01T09:00:00.000Z');
    expect(verify(file).firstBad).toEqual({ index: 3, check: 'order' });
  });

  it('refuses an entry not signed by every party, or signed by the wrong key, and stores nothing', () => {
    const ledger = Ledger.open(file);
    const body = ledger.draft({
      time: '2026-06-01T11:00:00.000Z',
      kind: 'settlement',
      parties: [party.alice, party.bob],
      amounts: { alice: 1, bob: -1 },
    });
    expect(() => ledger.appendSigned(body, { alice: signBody(body, alice.privateKey) })).toThrow(
      /not signed by party bob/,
    );
    expect(() =>
      ledger.appendSigned(body, { alice: signBody(body, alice.privateKey), bob: signBody(body, carol.privateKey) }),
    ).toThrow(/signature of party bob does not check/);
    expect(() =>
      ledger.append({ time: '2026-06-01T11:00:00.000Z', kind: 'x', parties: [party.alice], amounts: { bob: 1 } }, keys),
    ).toThrow(/not a party/);
    expect(ledger.entries()).toHaveLength(5);
    ledger.close();
    expect(verify(file).ok).toBe(true);
  });

  it('a draft signed before another append is placed after it (its parties signed its content); a form-1 body is refused', () => {
    const ledger = Ledger.open(file);
    const early = ledger.draft({ time: '2026-06-01T11:00:00.000Z', kind: 'x', parties: [party.alice] });
    const { form: _form, ...formOne } = ledger.draft({
      time: '2026-06-01T11:00:00.000Z',
      kind: 'z',
      parties: [party.carol],
    });
    ledger.append({ time: '2026-06-01T11:00:00.000Z', kind: 'y', parties: [party.bob] }, keys);
    const placed = ledger.appendSigned(early, { alice: signBody(early, alice.privateKey) });
    expect(placed.index).toBe(early.index + 1);
    expect(() => ledger.appendSigned(formOne, { carol: signBody(formOne, carol.privateKey) })).toThrow(
      /does not extend the ledger head/,
    );
    expect(ledger.entries()).toHaveLength(7);
    expect(ledger.verify().ok).toBe(true);
    ledger.close();
  });

  describe('form 2: the parties sign the content, the platform places it', () => {
    const sha = (x: unknown) => createHash('sha256').update(canonicalJson(x)).digest('hex');
    const content = (interval: number) => ({
      form: 2 as const,
      kind: 'settlement',
      parties: [party.alice, party.bob],
      amounts: { alice: 2, bob: -2 },
      payload: { interval },
    });

    it('chains each entry by its place and its content hash, as documented', () => {
      const ledger = Ledger.open(join(tmp.dir, `form2-${n++}.db`));
      const first = ledger.append({ time: '2026-06-01T10:00:00.000Z', kind: 'x', parties: [party.alice] }, keys);
      const second = ledger.append(
        { time: '2026-06-01T10:05:00.000Z', kind: 'y', parties: [party.bob], payload: { a: 1 } },
        keys,
      );
      // Computed here from the documented formula, not with the ledger's own functions.
      const contentHash = sha({ form: 2, kind: 'y', parties: [party.bob], amounts: {}, payload: { a: 1 } });
      expect(second.hash).toBe(
        sha({ form: 2, index: 1, time: '2026-06-01T10:05:00.000Z', prevHash: first.hash, contentHash }),
      );
      expect(ledger.head()).toEqual({ entries: 2, hash: second.hash });
      ledger.close();
    });

    it('contents signed at the same time are all appended, in the order their signatures complete', () => {
      const ledger = Ledger.open(join(tmp.dir, `form2-${n++}.db`));
      const a = content(1);
      const b = content(2);
      const sign = (c: ReturnType<typeof content>) => ({
        alice: signContent(c, alice.privateKey),
        bob: signContent(c, bob.privateKey),
      });
      const sa = sign(a);
      const sb = sign(b);
      ledger.appendContent(b, sb, '2026-06-01T10:00:00.000Z');
      // Committed later with an earlier clock: it takes the last entry's time, so time never goes back.
      const late = ledger.appendContent(a, sa, '2026-06-01T09:00:00.000Z');
      expect(late.index).toBe(1);
      expect(late.time).toBe('2026-06-01T10:00:00.000Z');
      expect(() => ledger.appendContent(a, { ...sa, bob: sb.bob }, '2026-06-01T10:00:00.000Z')).toThrow(
        /signature of party bob does not check/,
      );
      expect(ledger.verify()).toEqual({ entries: 2, ok: true, firstBad: null });
      ledger.close();
    });

    it("a form-1 entry's signatures do not check as form 2: changing a row's form is caught", () => {
      const file = fiveEntryLedger();
      tamper(file, 'UPDATE ledger_entries SET form = 1 WHERE idx = 2');
      expect(verify(file).firstBad).toEqual({ index: 2, check: 'hash' });
    });

    it('opens a ledger written before form 2 (no form column) and chains form-2 entries after its own', () => {
      const file = join(tmp.dir, `old-${n++}.db`);
      const db = openDatabase(file);
      db.exec(`CREATE TABLE ledger_entries (seq INTEGER PRIMARY KEY, idx INTEGER NOT NULL, time TEXT NOT NULL,
        kind TEXT NOT NULL, parties TEXT NOT NULL, amounts TEXT NOT NULL, payload TEXT NOT NULL,
        prev_hash TEXT NOT NULL, hash TEXT NOT NULL, signatures TEXT NOT NULL);
        CREATE TABLE ledger_head (id INTEGER PRIMARY KEY CHECK (id = 1), entries INTEGER NOT NULL, hash TEXT NOT NULL);`);
      const body = {
        index: 0,
        time: '2026-06-01T10:00:00.000Z',
        kind: 'x',
        parties: [party.alice],
        amounts: {},
        payload: null,
        prevHash: '0'.repeat(64),
      };
      const hash = sha(body);
      db.prepare('INSERT INTO ledger_entries VALUES (1, 0, ?, ?, ?, ?, ?, ?, ?, ?)').run(
        body.time,
        body.kind,
        JSON.stringify(body.parties),
        '{}',
        'null',
        body.prevHash,
        hash,
        JSON.stringify({ alice: signBody(body, alice.privateKey) }),
      );
      db.prepare('INSERT INTO ledger_head VALUES (1, 1, ?)').run(hash);
      db.close();
      const ledger = Ledger.open(file);
      ledger.append({ time: '2026-06-01T10:01:00.000Z', kind: 'y', parties: [party.bob] }, keys);
      expect(ledger.entries().map((e) => e.form)).toEqual([undefined, 2]);
      expect(ledger.verify().ok).toBe(true);
      ledger.close();
    });
  });
});
