import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/core/signing.js';
import { Ledger } from '../../src/platform/ledger/ledger.js';
import { openDatabase } from '../../src/platform/ledger/sqlite.js';
import { Membership } from '../../src/platform/membership.js';
import { MeterIntervals } from '../../src/platform/meter-intervals.js';
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
      'platform_meter_intervals',
      'UPDATE platform_meter_intervals SET net_kwh = net_kwh + 1 WHERE seq = 17',
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
    expect(verifyAfter('DELETE FROM platform_meter_intervals WHERE seq = 17')).toEqual(
      badRow('platform_meter_intervals', 17, 'order', null),
    );
    expect(verifyAfter('DELETE FROM platform_meter_intervals WHERE seq = 39')).toEqual(
      badRow('platform_meter_intervals', 39, 'order', null),
    );
    expect(verifyAfter("DELETE FROM platform_trades WHERE seller = 'tx-a' AND buyer = 'house-1'")).toEqual(
      badRow('platform_trades', 1, 'order', null),
    );
    expect(verifyAfter("DELETE FROM platform_members WHERE id = 'house-2'")).toEqual(
      badRow('platform_members', 2, 'order', null),
    );
    expect(verifyAfter('DELETE FROM platform_settlements')).toEqual(badRow('platform_settlements', 0, 'order', null));
    // A row written around the platform has no place in the chain: reported where it would go (40 intervals stored).
    expect(
      verifyAfter(
        "INSERT INTO platform_meter_intervals (member, epoch, seq, from_ms, to_ms, net_kwh, covered_ms) VALUES ('house-9', 1, 99, 0, 1, 5, 1)",
      ),
    ).toEqual(badRow('platform_meter_intervals', 40, 'order', { member: 'house-9', epoch: 1, seq: 99 }));
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
    db.prepare('UPDATE platform_meter_intervals SET net_kwh = 0 WHERE seq = 3').run();
    db.prepare('DROP TABLE platform_chain_heads').run();
    db.close();
    const ledger = Ledger.open(file, { mustExist: true });
    try {
      expect(() => new MeterIntervals(ledger.db)).toThrow(/chained rows but no chain head/);
      expect(ledger.verify().ok).toBe(false);
    } finally {
      ledger.close();
    }
  });

  it("the ledger's own checks come first and are reported as before", () => {
    expect(
      verifyAfter(
        'UPDATE platform_meter_intervals SET net_kwh = 0 WHERE seq = 3',
        "UPDATE ledger_entries SET kind = 'x' WHERE idx = 1",
      ),
    ).toEqual({ entries: 3, ok: false, firstBad: { index: 1, check: 'hash' } });
  });

  it('legitimate writes through the platform keep it ok: a readmission, new intervals, pruning the oldest intervals and readings', () => {
    const file = join(tmp.dir, 'legit.db');
    copyFileSync(original, file);
    const ledger = Ledger.open(file);
    const members = new Membership(ledger.db, { id: 'op', privateKey: generateKeyPair().privateKey }, () => 0);
    members.admit('house-2');
    const intervals = new MeterIntervals(ledger.db);
    intervals.addAll([
      {
        member: 'house-2',
        epoch: 2,
        seq: 0,
        fromMs: EVENT_START + 50_000,
        toMs: EVENT_START + 51_000,
        netKWh: 0.01,
        coveredMs: 1000,
      },
    ]);
    // Intervals 0..9 ended before this; interval 10 is the first kept.
    expect(intervals.prune(EVENT_START + 10_500)).toBe(10);
    // Readings past their retention: the two oldest of the six.
    const readings = new Readings(ledger.db, members);
    expect(readings.prune(EVENT_START - 2 * Q + 1)).toBe(2);
    expect(readings.list({ member: 'house-1' })).toHaveLength(4);
    expect(ledger.verify()).toEqual({ entries: 3, ok: true, firstBad: null });
    ledger.db.prepare('DELETE FROM platform_meter_intervals WHERE seq = 10').run();
    expect(ledger.verify().firstBad).toEqual({
      index: 10,
      check: 'order',
      table: 'platform_meter_intervals',
      row: null,
    });
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
    new MeterIntervals(ledger.db).addAll([
      { member: 'inv-2', epoch: 1, seq: 1, fromMs: 2500, toMs: 3500, netKWh: 0.002, coveredMs: 1000 },
    ]);
    // The samples that release stored are kept, chained, as they were.
    expect(ledger.db.prepare('SELECT COUNT(*) AS n FROM platform_meter_samples').get()).toEqual({ n: 3 });
    expect(ledger.verify()).toEqual({ entries: 0, ok: true, firstBad: null });
    ledger.db.prepare("UPDATE platform_meter_samples SET net_w = 0 WHERE member = 'inv-2'").run();
    expect(ledger.verify().firstBad).toMatchObject({ check: 'hash', table: 'platform_meter_samples' });
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

describe('the chain over metering intervals stored by the thousand', () => {
  it('verifies thousands of intervals stored in groups, and still finds the one changed among them', () => {
    const file = join(tmp.dir, 'many.db');
    const ledger = Ledger.open(file);
    const intervals = new MeterIntervals(ledger.db);
    const op = generateKeyPair();
    new Membership(ledger.db, { id: 'op', privateKey: op.privateKey }, () => 0);
    let seq = 0;
    for (let g = 0; g < 100; g++)
      intervals.addAll(
        Array.from({ length: 64 }, () => {
          const k = seq++;
          return { member: `inv-${k % 16}`, epoch: 1, seq: k, fromMs: k, toMs: k + 1, netKWh: 1.5, coveredMs: 1 };
        }),
      );
    expect(ledger.verify()).toEqual({ entries: 0, ok: true, firstBad: null });
    ledger.db.prepare('UPDATE platform_meter_intervals SET net_kwh = 2.5 WHERE seq = 4321').run();
    const result = ledger.verify();
    expect(result.ok).toBe(false);
    expect(result.firstBad).toMatchObject({ check: 'hash', table: 'platform_meter_intervals' });
    ledger.close();
  });
});
