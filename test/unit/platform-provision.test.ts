import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MembersDirectory } from '../../src/comms/security.js';
import { isP2PError } from '../../src/core/errors.js';
import { MembersList, verifyMembersList } from '../../src/core/members.js';
import { Ledger } from '../../src/platform/ledger/ledger.js';
import { Membership } from '../../src/platform/membership.js';
import { provisionThroughPlatform } from '../../src/platform/provision.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir('p2p-platform-provision-');
afterAll(() => tmp.remove());

const NOW_MS = Date.parse('2026-12-07T10:00:00Z');
const GATEWAYS = [
  { id: 'tx-1', cell: 'cell-a', kind: 'transformer' },
  { id: 'inv-1', cell: 'cell-a', kind: 'inverter' },
  { id: 'inv-2', cell: 'cell-b', kind: 'inverter' },
  { id: 'agg-1', cell: 'cell-a', kind: 'aggregator' },
  { id: 'dso-1', cell: 'cell-a', kind: 'dso' },
  { id: 'platform-1', cell: 'cell-a', kind: 'platform' },
];

describe('provisioning through the platform', () => {
  it('gives the gateways the members list the platform issued after admitting every one of them, with a membership ledger entry each', () => {
    const dir = join(tmp.dir, 'ok');
    const db = join(dir, 'platform', 'ledger.db');
    const ids = provisionThroughPlatform(GATEWAYS, join(dir, 'identities'), db, NOW_MS);

    // What a gateway loads: the file, checked against the operator key in its config.
    const file = MembersList.parse(JSON.parse(readFileSync(ids.membersFile, 'utf8')));
    const directory = MembersDirectory.load(ids.membersFile, ids.operatorPublicKey);
    for (const g of GATEWAYS)
      expect(directory.active(g.id)?.member.publicKey, g.id).toBe(ids.keys.get(g.id)!.publicKey);

    const ledger = Ledger.open(db, { mustExist: true });
    try {
      // The platform's own view: one admission per gateway, the list re-issued from its tables the same.
      const platform = new Membership(
        ledger.db,
        { id: file.operator, privateKey: ids.operator.privateKey },
        () => NOW_MS,
      );
      expect(platform.serial()).toBe(GATEWAYS.length);
      expect(file.serial).toBe(platform.serial());
      expect(file).toEqual(platform.membersList());
      expect(ids.members).toEqual(file);
      expect(verifyMembersList(file, ids.operatorPublicKey)).toBe(true);
      expect(Object.fromEntries(file.members.map((m) => [m.id, m.role]))).toEqual({
        'tx-1': 'mg-trader',
        'inv-1': 'prosumer',
        'inv-2': 'prosumer',
        'agg-1': 'aggregator',
        'dso-1': 'dso',
        'platform-1': 'platform',
      });
      expect(file.members.find((m) => m.id === 'inv-2')?.cell).toBe('cell-b');

      const entries = ledger.entries();
      expect(entries.map((e) => e.kind)).toEqual(GATEWAYS.map(() => 'membership'));
      expect(entries.map((e) => (e.payload as { member: string }).member)).toEqual(GATEWAYS.map((g) => g.id));
      expect(entries.map((e) => (e.payload as { serial: number }).serial)).toEqual(GATEWAYS.map((_, i) => i + 1));
      expect(entries.every((e) => e.parties[0]?.publicKey === ids.operatorPublicKey)).toBe(true);
      expect(ledger.verify()).toEqual({ entries: GATEWAYS.length, ok: true, firstBad: null });
    } finally {
      ledger.close();
    }

    for (const g of GATEWAYS) {
      const key = JSON.parse(readFileSync(ids.keyFile(g.id), 'utf8'));
      expect(key).toEqual({ id: g.id, ...ids.keys.get(g.id) });
      expect(statSync(ids.keyFile(g.id)).mode & 0o777).toBe(0o600);
    }
    // The operator's private key is never written.
    expect(readFileSync(ids.membersFile, 'utf8')).not.toContain(ids.operator.privateKey);
  });

  it('fails as a whole, naming the gateway, when one cannot be registered: nothing admitted, nothing written', () => {
    const dir = join(tmp.dir, 'clash');
    const db = join(dir, 'platform', 'ledger.db');
    const gateways = [...GATEWAYS, { id: 'inv-1', cell: 'cell-b', kind: 'inverter' }];
    let caught: unknown;
    try {
      provisionThroughPlatform(gateways, join(dir, 'identities'), db, NOW_MS);
    } catch (err) {
      caught = err;
    }
    expect(isP2PError(caught, 'input')).toBe(true);
    expect((caught as Error).message).toMatch(
      /^gateway inv-1 could not be admitted on the platform .*ledger\.db: member inv-1 is already registered$/,
    );
    expect(existsSync(join(dir, 'identities', 'members.json'))).toBe(false);
    expect(existsSync(join(dir, 'identities', 'tx-1.key.json'))).toBe(false);
    const ledger = Ledger.open(db, { mustExist: true });
    try {
      expect(new Membership(ledger.db, undefined, () => NOW_MS).list()).toEqual([]);
      expect(ledger.entries()).toEqual([]);
    } finally {
      ledger.close();
    }
  });

  it('refuses a gateway id the members list cannot carry, naming the gateway and the field', () => {
    const dir = join(tmp.dir, 'bad-id');
    expect(() =>
      provisionThroughPlatform(
        [...GATEWAYS, { id: 'house 7', cell: 'cell-a', kind: 'inverter' }],
        join(dir, 'identities'),
        join(dir, 'platform', 'ledger.db'),
        NOW_MS,
      ),
    ).toThrow(/^gateway house 7 could not be admitted on the platform .*: registration id: /);
  });
});
