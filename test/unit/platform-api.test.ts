import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/core/signing.js';
import { PlatformApiServer } from '../../src/platform/api-server.js';
import { Ledger, signBody } from '../../src/platform/ledger/ledger.js';
import { Membership } from '../../src/platform/membership.js';
import { Settlements } from '../../src/platform/settlement.js';
import type { Statement } from '../../src/platform/statement.js';
import type { IntervalStatement } from '../../src/platform/statement-intervals.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

describe('platform HTTP API', () => {
  it('serves members, ledger and verify as JSON or CSV; needs the token when one is set', async () => {
    const ledger = Ledger.open(join(tmp.dir, 'api.db'));
    const key = generateKeyPair();
    const m = new Membership(ledger.db, { id: 'op', privateKey: generateKeyPair().privateKey }, () => 0);
    m.register({ id: 'house-1', publicKey: key.publicKey, role: 'prosumer', cell: 'c1' });
    m.admit('house-1');
    ledger.append(
      { time: '2026-06-01T10:00:00Z', kind: 'note', parties: [{ id: 'house-1', publicKey: key.publicKey }] },
      { 'house-1': key.privateKey },
    );
    const api = new PlatformApiServer({ ledger, host: '127.0.0.1', port: 0, token: 'secret-token' });
    const { port } = await api.listen();
    const base = `http://127.0.0.1:${port}`;
    const auth = { authorization: 'Bearer secret-token' };
    try {
      expect((await fetch(`${base}/api/members`)).status).toBe(401);
      expect((await fetch(`${base}/api/members`, { headers: { authorization: 'Bearer wrong-token!' } })).status).toBe(
        401,
      );
      const members = (await (await fetch(`${base}/api/members`, { headers: auth })).json()) as {
        id: string;
        status: string;
      }[];
      expect(members.map((r) => [r.id, r.status])).toEqual([['house-1', 'active']]);
      const verify = await (await fetch(`${base}/api/ledger/verify`, { headers: auth })).json();
      expect(verify).toEqual({ entries: 1, ok: true, firstBad: null });
      const csv = await (await fetch(`${base}/api/ledger?format=csv`, { headers: auth })).text();
      expect(csv.split('\n')[0]).toBe('index,time,kind,parties,amounts,hash');
      expect((await fetch(`${base}/api/nothing`, { headers: auth })).status).toBe(404);
      expect((await fetch(`${base}/api/members`, { method: 'POST', headers: auth })).status).toBe(405);
    } finally {
      await api.close();
      ledger.close();
    }
  });

  it('serves the statement of accounts as JSON or CSV, filtered by member and period', async () => {
    const ledger = Ledger.open(join(tmp.dir, 'statements.db'));
    const ids = ['h1', 'h2', 'dso', 'plat', 'grid'];
    const keys = Object.fromEntries(ids.map((id) => [id, generateKeyPair()]));
    const publicKeys = Object.fromEntries(ids.map((id) => [id, keys[id]?.publicKey ?? '']));
    const signer = (body: Parameters<typeof signBody>[0]) =>
      Object.fromEntries(body.parties.map((p) => [p.id, signBody(body, keys[p.id]?.privateKey ?? '')]));
    const config = {
      networkOperator: 'dso',
      networkFeePerKWh: 0.02,
      platform: 'plat',
      platformFeePerKWh: 0,
      levelAbove: { id: 'grid', importPricePerKWh: 0.3, exportPricePerKWh: 0.05 },
    };
    const start = Date.parse('2026-12-07T10:00:00Z');
    // A zero platform fee still makes plat a party. h1 sells 1 kWh to h2 at 0.25; h2 pays 0.25 + 0.02 network fee: net −0.27; alone it pays 0.30.
    new Settlements(ledger).settle(
      start,
      '2026-12-07T10:20:00Z',
      [{ interval: start, seller: 'h1', buyer: 'h2', kWh: 1, pricePerKWh: 0.25 }],
      { h1: 1, h2: -1 },
      config,
      publicKeys,
      signer,
    );
    const api = new PlatformApiServer({ ledger, host: '127.0.0.1', port: 0 });
    const { port } = await api.listen();
    const base = `http://127.0.0.1:${port}/api/statements`;
    try {
      const all = (await (await fetch(`${base}?to=2026-12-08T00:00:00Z`)).json()) as Statement;
      expect(all).toMatchObject({ from: '2026-12-07T10:00:00Z', to: '2026-12-08T00:00:00Z', settledIntervals: 1 });
      expect(all.accounts.map((a) => a.id)).toEqual(['h1', 'h2', 'dso', 'plat', 'grid']);
      expect(Math.abs(all.balance)).toBeLessThan(1e-6);
      const h2 = (await (await fetch(`${base}?member=h2`)).json()) as Statement;
      expect(h2.accounts).toHaveLength(1);
      expect(h2.accounts[0]?.net).toBeCloseTo(-0.27, 9);
      expect(h2.accounts[0]?.aloneNet).toBeCloseTo(-0.3, 9);
      expect(h2.accounts[0]?.savings).toBeCloseTo(0.03, 9);
      const later = (await (await fetch(`${base}?from=2026-12-07T10:15:00Z`)).json()) as Statement;
      expect(later).toMatchObject({ settledIntervals: 0, accounts: [] });
      const csv = (await (await fetch(`${base}?member=h2&format=csv`)).text()).split('\n');
      expect(csv[0]).toBe('id,role,intervals,soldKWh,boughtKWh,imbalanceKWh,received,paid,fees,net,aloneNet,savings');
      expect(csv[1]).toBe('h2,prosumer,1,0,1,0,0,0.25,0.02,-0.27,-0.3,0.03');
      const bad = await fetch(`${base}?from=yesterday`);
      expect(bad.status).toBe(400);
      expect(await bad.text()).toMatch(/^from must be an ISO 8601 time/);
      expect((await fetch(`${base}?member=stranger`)).status).toBe(400);

      // The member's rows per interval: here one interval, the same figures as the account.
      const days = (await (await fetch(`${base}/intervals?member=h2`)).json()) as IntervalStatement;
      expect(days).toMatchObject({ member: 'h2', from: '2026-12-07T10:00:00Z' });
      expect(days.intervals).toEqual([
        {
          interval: '2026-12-07T10:00:00Z',
          soldKWh: 0,
          boughtKWh: 1,
          imbalanceKWh: 0,
          averagePricePerKWh: 0.25,
          received: 0,
          paid: 0.25,
          fees: 0.02,
          net: -0.27,
          aloneNet: -0.3,
          savings: 0.03,
        },
      ]);
      const daysCsv = await fetch(`${base}/intervals?member=h2&format=csv`);
      expect(daysCsv.headers.get('content-type')).toMatch(/^text\/csv/);
      expect((await daysCsv.text()).split('\n')[1]).toBe('2026-12-07T10:00:00Z,0,1,0,0.25,0,0.25,0.02,-0.27,-0.3,0.03');
      const noMember = await fetch(`${base}/intervals`);
      expect(noMember.status).toBe(400);
      expect(await noMember.text()).toMatch(/^member is required/);
      const badFrom = await fetch(`${base}/intervals?member=h2&from=monday`);
      expect(badFrom.status).toBe(400);
      expect(await badFrom.text()).toMatch(/^from must be an ISO 8601 time/);
      const page = await fetch(`http://127.0.0.1:${port}/statement?member=h2`);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(await page.text()).toContain('href="api/statements/intervals?member=h2&amp;format=csv"');
    } finally {
      await api.close();
      ledger.close();
    }
  });

  it('refuses to listen beyond loopback without a token', () => {
    const ledger = Ledger.open(join(tmp.dir, 'api2.db'));
    expect(() => new PlatformApiServer({ ledger, host: '0.0.0.0', port: 0 })).toThrow(/needs a token/);
    ledger.close();
  });
});
