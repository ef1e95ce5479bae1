import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/core/signing.js';
import { Ledger } from '../../src/platform/ledger/ledger.js';
import { openDatabase } from '../../src/platform/ledger/sqlite.js';
import { Membership } from '../../src/platform/membership.js';
import { MeterSamples } from '../../src/platform/meter-samples.js';
import { Readings } from '../../src/platform/readings.js';
import { tempDir } from '../helpers/net.js';
import { TRADE_INTERVAL, writePlatformDb } from '../helpers/platform-db.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const original = join(tmp.dir, 'platform.db');
beforeAll(() => writePlatformDb(original));

const Q = 900_000;
const EVENT_START = Date.parse('2026-07-10T17:00:00Z');
let copies = 0;

/** A copy of the platform database with `sql` run on it by plain SQLite, then verified. */
function verifyAfter(...sql: string[]): ReturnType<Ledger['verify']> {
  const file = join(tmp.dir, `copy-${copies++}.db`);
  copyFileSync(original, file);
  const db = openDatabase(file);
  for (const statement of sql) db.prepare(statement).run();
  db.close();
  const ledger = Ledger.open(file, { mustExist: true });
  try {
    return ledger.verify();
  } finally {
    ledger.close();
  }
}
const badRow = (table: string, index: number, check: 'hash' | 'order', row: Record<string, unknown> | null) => ({
  entries: 3,
  ok: false,
  firstBad: { index, check, table, row },
});

describe('ledger verify covers every platform table', () => {
  it('an untouched database verifies ok (3 ledger entries: two settlements and a DR evaluation)', () => {
    expect(verifyAfter()).toEqual({ entries: 3, ok: true, firstBad: null });
  });

  // Rows are numbered in the order the fixture writes them (test/helpers/platform-db.ts).
  const changed: [string, string, number, Record<string, unknown>][] = [
    [
      'platform_readings',
      `UPDATE platform_readings SET energy_kwh = 0.9 WHERE time_ms = ${EVENT_START - Q}`,
      2,
      { member: 'house-1', meter: 'main', time_ms: EVENT_START - Q },
    ],
    [
      'platform_meter_samples',
      'UPDATE platform_meter_samples SET net_w = net_w + 1 WHERE seq = 17',
      17,
      { member: 'house-2', epoch: 1, seq: 17 },
    ],
    [
      'platform_trades',
      `UPDATE platform_trades SET kwh = 25 WHERE interval = ${TRADE_INTERVAL + Q} AND seller = 'tx-b'`,
      2,
      { interval: TRADE_INTERVAL + Q, market: 'cell', seller: 'tx-b', buyer: 'tx-a' },
    ],
    [
      'platform_trade_reports',
      `UPDATE platform_trade_reports SET trades = 1 WHERE interval = ${TRADE_INTERVAL + Q}`,
      1,
      { reporter: 'tx-a', market: 'cell', interval: TRADE_INTERVAL + Q },
    ],
    [
      'platform_settlements',
      `UPDATE platform_settlements SET amounts = '{}' WHERE interval = ${TRADE_INTERVAL}`,
      1,
      { interval: TRADE_INTERVAL },
    ],
    ['platform_members', "UPDATE platform_members SET status = 'active' WHERE id = 'house-2'", 2, { id: 'house-2' }],
    ['platform_meta', "UPDATE platform_meta SET value = 3 WHERE key = 'members-serial'", 0, { key: 'members-serial' }],
    ['platform_contracts', 'UPDATE platform_contracts SET to_ms = to_ms + 1', 0, { id: 1 }],
    ['platform_dr_events', "UPDATE platform_dr_events SET result = '{}'", 0, { id: 1 }],
  ];
  it.each(changed)('a value changed in %s is reported at that row (hash)', (table, sql, index, row) => {
    expect(verifyAfter(sql)).toEqual(badRow(table, index, 'hash', row));
  });

  it('a row deleted, the last row deleted or a row inserted is reported at its place (order)', () => {
    expect(verifyAfter('DELETE FROM platform_meter_samples WHERE seq = 17')).toEqual(
      badRow('platform_meter_samples', 17, 'order', null),
    );
    expect(verifyAfter('DELETE FROM platform_meter_samples WHERE seq = 39')).toEqual(
      badRow('platform_meter_samples', 39, 'order', null),
    );
    expect(verifyAfter("DELETE FROM platform_trades WHERE seller = 'tx-a' AND buyer = 'house-1'")).toEqual(
      badRow('platform_trades', 1, 'order', null),
    );
    expect(verifyAfter("DELETE FROM platform_members WHERE id = 'house-2'")).toEqual(
      badRow('platform_members', 2, 'order', null),
    );
    expect(verifyAfter('DELETE FROM platform_settlements')).toEqual(badRow('platform_settlements', 0, 'order', null));
    // A row written around the platform has no place in the chain: reported where it would go (40 samples stored).
    expect(
      verifyAfter(
        "INSERT INTO platform_meter_samples (member, epoch, seq, time_ms, net_w) VALUES ('house-9', 1, 99, 0, 5)",
      ),
    ).toEqual(badRow('platform_meter_samples', 40, 'order', { member: 'house-9', epoch: 1, seq: 99 }));
    expect(
      verifyAfter(
        `INSERT INTO platform_readings (member, meter, time_ms, energy_kwh) VALUES ('house-1', 'main', ${EVENT_START + 9 * Q}, 1)`,
      ),
    ).toEqual(
      badRow('platform_readings', 6, 'order', { member: 'house-1', meter: 'main', time_ms: EVENT_START + 9 * Q }),
    );
    // Dropping a table's head does not hide its rows.
    expect(verifyAfter("DELETE FROM platform_chain_heads WHERE tbl = 'platform_contracts'")).toEqual(
      badRow('platform_contracts', 0, 'order', { id: 1 }),
    );
    // Nor does dropping every head: the first chained table's first row then has no place.
    expect(verifyAfter('DROP TABLE platform_chain_heads')).toMatchObject({ ok: false, firstBad: { check: 'order' } });
  });

  it('refuses to chain again rows whose heads were dropped (that would take the change in)', () => {
    const file = join(tmp.dir, `copy-${copies++}.db`);
    copyFileSync(original, file);
    const db = openDatabase(file);
    db.prepare('UPDATE platform_meter_samples SET net_w = 0 WHERE seq = 3').run();
    db.prepare('DROP TABLE platform_chain_heads').run();
    db.close();
    const ledger = Ledger.open(file, { mustExist: true });
    try {
      expect(() => new MeterSamples(ledger.db)).toThrow(/chained rows but no chain head/);
      expect(ledger.verify().ok).toBe(false);
    } finally {
      ledger.close();
    }
  });

  it("the ledger's own checks come first and are reported as before", () => {
    expect(
      verifyAfter(
        'UPDATE platform_meter_samples SET net_w = 0 WHERE seq = 3',
        "UPDATE ledger_entries SET kind = 'x' WHERE idx = 1",
      ),
    ).toEqual({ entries: 3, ok: false, firstBad: { index: 1, check: 'hash' } });
  });

  it('legitimate writes through the platform keep it ok: a readmission, new samples, pruning the oldest', () => {
    const file = join(tmp.dir, 'legit.db');
    copyFileSync(original, file);
    const ledger = Ledger.open(file);
    const members = new Membership(ledger.db, { id: 'op', privateKey: generateKeyPair().privateKey }, () => 0);
    members.admit('house-2');
    const samples = new MeterSamples(ledger.db);
    samples.addAll([{ member: 'house-2', epoch: 2, seq: 0, timeMs: EVENT_START + 50_000, netW: 10 }]);
    // Samples 0..9 are older than this; sample 10 is the first kept.
    expect(samples.prune(EVENT_START + 10_500)).toBe(10);
    expect(ledger.verify()).toEqual({ entries: 3, ok: true, firstBad: null });
    ledger.db.prepare('DELETE FROM platform_meter_samples WHERE seq = 10').run();
    expect(ledger.verify().firstBad).toEqual({ index: 10, check: 'order', table: 'platform_meter_samples', row: null });
    ledger.close();
  });

  it('an update through the platform refuses to write over a changed table, so it cannot hide the change', () => {
    const file = join(tmp.dir, 'no-launder.db');
    copyFileSync(original, file);
    const ledger = Ledger.open(file);
    ledger.db.prepare("UPDATE platform_members SET cell = 'cell-z' WHERE id = 'agg-1'").run();
    const members = new Membership(ledger.db, { id: 'op', privateKey: generateKeyPair().privateKey }, () => 0);
    expect(() => members.admit('house-2')).toThrow(/platform_members was changed outside the platform/);
    expect(members.get('house-2')?.status).toBe('suspended');
    expect(ledger.verify().firstBad).toEqual({
      index: 1,
      check: 'hash',
      table: 'platform_members',
      row: { id: 'agg-1' },
    });
    ledger.close();
  });
});

describe('a database written by a release without table chains', () => {
  /** The tables as that release created them, with rows, and no chain columns or heads. */
  function legacyDb(name: string): string {
    const file = join(tmp.dir, name);
    const db = openDatabase(file);
    db.exec(`
      CREATE TABLE platform_meter_samples (member TEXT NOT NULL, epoch INTEGER NOT NULL, seq INTEGER NOT NULL,
        time_ms INTEGER NOT NULL, net_w REAL NOT NULL, PRIMARY KEY (member, epoch, seq));
      CREATE TABLE platform_readings (member TEXT NOT NULL, meter TEXT NOT NULL, time_ms INTEGER NOT NULL,
        energy_kwh REAL NOT NULL, PRIMARY KEY (member, meter, time_ms));
      INSERT INTO platform_meter_samples VALUES ('inv-1', 1, 0, 1000, 5.5), ('inv-1', 1, 1, 2000, 6), ('inv-2', 1, 0, 1500, 7);
      INSERT INTO platform_readings VALUES ('inv-1', 'main', 900000, 0.25), ('inv-2', 'main', 900000, 0.5);
    `);
    db.close();
    return file;
  }

  it('verifies ok before the new release opened it (there is nothing chained to check yet)', () => {
    const ledger = Ledger.open(legacyDb('legacy-untouched.db'));
    ledger.db.prepare('UPDATE platform_readings SET energy_kwh = 9').run();
    expect(ledger.verify()).toEqual({ entries: 0, ok: true, firstBad: null });
    ledger.close();
  });

  it('opens; its rows are chained as stored at the first open, every platform table at once, and changes are detected from then on', () => {
    const file = legacyDb('legacy.db');
    const ledger = Ledger.open(file);
    const samples = new MeterSamples(ledger.db);
    expect(samples.counts()).toEqual([
      { member: 'inv-1', samples: 2, sameTime: 0 },
      { member: 'inv-2', samples: 1, sameTime: 0 },
    ]);
    samples.add({ member: 'inv-2', epoch: 1, seq: 1, timeMs: 2500, netW: 8 });
    expect(ledger.verify()).toEqual({ entries: 0, ok: true, firstBad: null });
    ledger.close();

    const tamperedReading = join(tmp.dir, 'legacy-reading.db');
    copyFileSync(file, tamperedReading);
    const db = openDatabase(tamperedReading);
    db.prepare("UPDATE platform_readings SET energy_kwh = 9 WHERE member = 'inv-2'").run();
    db.close();
    const reopened = Ledger.open(tamperedReading);
    // Opening the readings through the platform again does not take the change in.
    new Readings(reopened.db, new Membership(reopened.db, undefined, () => 0));
    expect(reopened.verify().firstBad).toEqual({
      index: 1,
      check: 'hash',
      table: 'platform_readings',
      row: { member: 'inv-2', meter: 'main', time_ms: 900000 },
    });
    reopened.close();
  });
});

describe('the chain over samples stored by the thousand', () => {
  it('verifies thousands of samples stored in groups, and still finds the one changed among them', () => {
    const file = join(tmp.dir, 'many.db');
    const ledger = Ledger.open(file);
    const samples = new MeterSamples(ledger.db);
    const op = generateKeyPair();
    new Membership(ledger.db, { id: 'op', privateKey: op.privateKey }, () => 0);
    let seq = 0;
    for (let g = 0; g < 100; g++)
      samples.addAll(
        Array.from({ length: 64 }, () => ({ member: `inv-${seq % 16}`, epoch: 1, seq: seq++, timeMs: seq, netW: 1.5 })),
      );
    expect(ledger.verify()).toEqual({ entries: 0, ok: true, firstBad: null });
    ledger.db.prepare('UPDATE platform_meter_samples SET net_w = 2.5 WHERE seq = 4321').run();
    const result = ledger.verify();
    expect(result.ok).toBe(false);
    expect(result.firstBad).toMatchObject({ check: 'hash', table: 'platform_meter_samples' });
    ledger.close();
  });
});
