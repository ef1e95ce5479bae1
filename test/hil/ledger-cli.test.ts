import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/core/signing.js';
import { Ledger } from '../../src/platform/ledger/ledger.js';
import { openDatabase } from '../../src/platform/ledger/sqlite.js';
import { runCli, tempDir } from '../helpers/net.js';
import { TRADE_INTERVAL, writePlatformDb } from '../helpers/platform-db.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

const seller = generateKeyPair();
const buyer = generateKeyPair();

function makeLedger(name: string): string {
  const file = join(tmp.dir, name);
  const ledger = Ledger.open(file);
  for (let i = 0; i < 3; i++) {
    ledger.append(
      {
        time: `2026-06-01T10:0${i}:00.000Z`,
        kind: 'settlement',
        parties: [
          { id: 'pv-1', publicKey: seller.publicKey },
          { id: 'house, 2', publicKey: buyer.publicKey },
        ],
        amounts: { 'pv-1': 0.5 * (i + 1), 'house, 2': -0.5 * (i + 1) },
        payload: { interval: i },
      },
      { 'pv-1': seller.privateKey, 'house, 2': buyer.privateKey },
    );
  }
  ledger.close();
  return file;
}

describe('p2p-edge ledger', () => {
  it('verify --json reports an intact ledger and exits 0', async () => {
    const file = makeLedger('ok.db');
    const r = await runCli(['ledger', 'verify', '--db', file, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ entries: 3, ok: true, firstBad: null });
  });

  it('verify --json names the first tampered entry and exits 1', async () => {
    const file = makeLedger('bad.db');
    const db = openDatabase(file);
    db.prepare('UPDATE ledger_entries SET amounts = ? WHERE idx = 1').run(
      JSON.stringify({ 'pv-1': 10, 'house, 2': -1 }),
    );
    db.close();
    const r = await runCli(['ledger', 'verify', '--db', file, '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ entries: 3, ok: false, firstBad: { index: 1, check: 'hash' } });
  });

  it('verify covers the platform tables: a sample or a trade changed in a copy exits 1 naming the table and row', async () => {
    const original = join(tmp.dir, 'platform-tables.db');
    writePlatformDb(original);
    const ok = await runCli(['ledger', 'verify', '--db', original, '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ entries: 3, ok: true, firstBad: null });
    const tampered = async (name: string, sql: string) => {
      const file = join(tmp.dir, name);
      copyFileSync(original, file);
      const db = openDatabase(file);
      db.prepare(sql).run();
      db.close();
      return runCli(['ledger', 'verify', '--db', file, '--json']);
    };
    const sample = await tampered('sample.db', 'UPDATE platform_meter_intervals SET net_kwh = 0 WHERE seq = 17');
    expect(sample.code).toBe(1);
    expect(JSON.parse(sample.stdout)).toEqual({
      entries: 3,
      ok: false,
      firstBad: {
        index: 17,
        check: 'hash',
        table: 'platform_meter_intervals',
        row: { member: 'house-2', epoch: 1, seq: 17 },
      },
    });
    const trade = await tampered(
      'trade.db',
      `UPDATE platform_trades SET price = 0.5 WHERE interval = ${TRADE_INTERVAL} AND buyer = 'house-1'`,
    );
    expect(trade.code).toBe(1);
    expect(JSON.parse(trade.stdout)).toEqual({
      entries: 3,
      ok: false,
      firstBad: {
        index: 1,
        check: 'hash',
        table: 'platform_trades',
        row: { interval: TRADE_INTERVAL, market: 'cell', seller: 'tx-a', buyer: 'house-1' },
      },
    });
    const lastSample = await tampered('last-sample.db', 'DELETE FROM platform_meter_intervals WHERE seq = 39');
    expect(lastSample.code).toBe(1);
    expect(JSON.parse(lastSample.stdout).firstBad).toEqual({
      index: 39,
      check: 'order',
      table: 'platform_meter_intervals',
      row: null,
    });
    const text = await runCli(['ledger', 'verify', '--db', join(tmp.dir, 'trade.db')]);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('platform_trades row 1');
  });

  it('verify of a missing database exits 2 naming the file', async () => {
    const file = join(tmp.dir, 'none.db');
    const r = await runCli(['ledger', 'verify', '--db', file, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(file);
  });

  it('export writes index, time, kind, parties, amounts and hash as JSON or CSV', async () => {
    const file = makeLedger('export.db');
    const json = await runCli(['ledger', 'export', '--db', file, '--format', 'json']);
    expect(json.code).toBe(0);
    const rows = JSON.parse(json.stdout) as {
      index: number;
      parties: string[];
      amounts: Record<string, number>;
      hash: string;
    }[];
    expect(rows.map((r) => r.index)).toEqual([0, 1, 2]);
    expect(rows[2]).toMatchObject({
      time: '2026-06-01T10:02:00.000Z',
      kind: 'settlement',
      parties: ['pv-1', 'house, 2'],
      amounts: { 'pv-1': 1.5, 'house, 2': -1.5 },
    });
    expect(rows[2]?.hash).toMatch(/^[0-9a-f]{64}$/);
    const csv = await runCli(['ledger', 'export', '--db', file, '--format', 'csv']);
    expect(csv.code).toBe(0);
    const lines = csv.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('index,time,kind,parties,amounts,hash');
    expect(lines).toHaveLength(4);
    // A party id with a comma is quoted (RFC 4180).
    expect(lines[1]).toBe(
      `0,2026-06-01T10:00:00.000Z,settlement,"pv-1;house, 2","pv-1=0.5;house, 2=-0.5",${rows[0]?.hash}`,
    );
  });
});

describe('p2p-edge platform ... list', () => {
  it('lists members as JSON and CSV from the platform database; a missing database exits 2', async () => {
    const file = join(tmp.dir, 'platform.db');
    const ledger = Ledger.open(file);
    const { Membership } = await import('../../src/platform/membership.js');
    const m = new Membership(ledger.db, { id: 'op', privateKey: generateKeyPair().privateKey }, () => 0);
    m.register({ id: 'house-1', publicKey: seller.publicKey, role: 'prosumer', cell: 'c1' });
    m.register({ id: 'agg', publicKey: buyer.publicKey, role: 'aggregator', cell: 'c1' });
    m.admit('agg');
    ledger.close();
    const json = await runCli(['platform', 'members', 'list', '--db', file, '--json']);
    expect(json.code).toBe(0);
    expect((JSON.parse(json.stdout) as { id: string; status: string }[]).map((r) => [r.id, r.status])).toEqual([
      ['agg', 'active'],
      ['house-1', 'pending'],
    ]);
    const csv = await runCli(['platform', 'members', 'list', '--db', file, '--format', 'csv']);
    expect(csv.stdout.split('\n')[0]).toBe('id,publicKey,role,cell,status,changedAtSerial');
    expect(csv.stdout).toContain(`house-1,${seller.publicKey},prosumer,c1,pending,0`);
    const settlements = await runCli(['platform', 'settlements', 'list', '--db', file, '--json']);
    expect(JSON.parse(settlements.stdout)).toEqual([]);
    expect((await runCli(['platform', 'contracts', 'list', '--db', join(tmp.dir, 'none.db')])).code).toBe(2);
  });
});

describe('p2p-edge platform serve', () => {
  it('serves the API on a free loopback port and stops on SIGTERM', async () => {
    const { eventually, startCli } = await import('../helpers/net.js');
    const file = makeLedger('serve.db');
    const cli = startCli(['platform', 'serve', '--db', file, '--token', 'tok-123']);
    try {
      const url = await eventually(() => {
        const m = /listening on (http:\/\/[^\s]+)/.exec(cli.output());
        if (!m?.[1]) throw new Error('not listening yet');
        return m[1];
      }, 15_000);
      const r = await fetch(`${url}api/ledger/verify`, { headers: { authorization: 'Bearer tok-123' } });
      expect(await r.json()).toEqual({ entries: 3, ok: true, firstBad: null });
    } finally {
      cli.child.kill('SIGTERM');
    }
    expect(await cli.exited).toBe(0);
  });
});

describe('p2p-edge ledger on a file that is not a database', () => {
  it('exits 2 naming the file', async () => {
    const { writeFileSync } = await import('node:fs');
    const file = join(tmp.dir, 'not-a-db.db');
    writeFileSync(file, 'this is not SQLite, just some text that is long enough to have a header\n'.repeat(20));
    const r = await runCli(['ledger', 'verify', '--db', file, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(file);
  });
});
