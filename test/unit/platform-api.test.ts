import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/core/signing.js';
import { PlatformApiServer } from '../../src/platform/api-server.js';
import { Ledger } from '../../src/platform/ledger/ledger.js';
import { Membership } from '../../src/platform/membership.js';
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

  it('refuses to listen beyond loopback without a token', () => {
    const ledger = Ledger.open(join(tmp.dir, 'api2.db'));
    expect(() => new PlatformApiServer({ ledger, host: '0.0.0.0', port: 0 })).toThrow(/needs a token/);
    ledger.close();
  });
});
