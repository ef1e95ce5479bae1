import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { GatewayKeyFile } from '../../src/comms/security.js';
import { activeMember, type MembersList, verifyMembersList } from '../../src/core/members.js';
import { runCli, tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const file = (name: string) => join(tmp.dir, name);
const json = <T>(name: string) => JSON.parse(readFileSync(file(name), 'utf8')) as T;
/** `platform members <action> --db DB --id ID …` */
const members = (action: string, db: string, id: string, ...rest: string[]) =>
  runCli(['platform', 'members', action, '--db', db, '--id', id, ...rest]);
/** admit / suspend / revoke with the operator's key, writing the signed list to members.json. */
const operatorAction = (action: string, db: string, id: string) =>
  members(action, db, id, '--operator-key', file('op.json'), '--members-out', file('members.json'));

describe('platform operator commands', () => {
  it('keygen → register → admit issues a members list the operator key verifies; revoke removes the member', async () => {
    expect((await runCli(['platform', 'keygen', '--id', 'op-1', '--out', file('op.json')])).code).toBe(0);
    expect(statSync(file('op.json')).mode & 0o777).toBe(0o600);
    expect((await runCli(['platform', 'keygen', '--id', 'op-1', '--out', file('op.json')])).code).toBe(2); // never overwritten
    await runCli(['platform', 'keygen', '--id', 'inv-1', '--out', file('inv1.json')]);
    const operator = json<{ publicKey: string }>('op.json');
    const member = json<{ publicKey: string }>('inv1.json');
    const db = file('platform.db');

    const reg = await members(
      'register',
      db,
      'inv-1',
      '--public-key',
      member.publicKey,
      '--role',
      'prosumer',
      '--cell',
      'cell-a',
    );
    expect(reg.code).toBe(0);
    expect(JSON.parse(reg.stdout)).toMatchObject({ id: 'inv-1', status: 'pending' });

    const admit = await operatorAction('admit', db, 'inv-1');
    expect(admit.code).toBe(0);
    const list = json<MembersList>('members.json');
    expect(verifyMembersList(list, operator.publicKey)).toBe(true);
    expect(activeMember(list, 'inv-1')?.publicKey).toBe(member.publicKey);

    await operatorAction('revoke', db, 'inv-1');
    const after = json<MembersList>('members.json');
    expect(after.serial).toBeGreaterThan(list.serial);
    expect(verifyMembersList(after, operator.publicKey)).toBe(true);
    expect(activeMember(after, 'inv-1')).toBeUndefined();
  });

  it('contracts add stores a contract between active members and refuses an overlapping one', async () => {
    const db = file('platform.db'); // inv-1 was revoked above: register two fresh members
    for (const id of ['mg-a', 'mg-b']) {
      await runCli(['platform', 'keygen', '--id', id, '--out', file(`${id}.json`)]);
      const key = json<{ publicKey: string }>(`${id}.json`).publicKey;
      await members('register', db, id, '--public-key', key, '--role', 'mg-trader', '--cell', 'cell-a');
      await operatorAction('admit', db, id);
    }
    const contract = {
      kind: 'bilateral-energy',
      provider: 'mg-a',
      buyer: 'mg-b',
      from: '2026-12-01T00:00:00Z',
      to: '2026-12-31T00:00:00Z',
      energyKWhPerInterval: 5,
      intervalS: 900,
      pricePerKWh: 0.2,
    };
    writeFileSync(file('c1.json'), JSON.stringify(contract));
    const add = [
      'platform',
      'contracts',
      'add',
      '--db',
      db,
      '--file',
      file('c1.json'),
      '--operator-key',
      file('op.json'),
    ];
    const added = await runCli(add);
    expect(added.code, added.stderr).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({ kind: 'bilateral-energy', provider: 'mg-a' });
    const again = await runCli(add);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/overlap/);
    const listed = await runCli(['platform', 'contracts', 'list', '--db', db]);
    expect(JSON.parse(listed.stdout)).toHaveLength(1);
    // Every admission, revocation and contract is in the ledger, signed by the operator.
    const ledger = JSON.parse((await runCli(['ledger', 'export', '--db', db, '--format', 'json'])).stdout) as {
      kind: string;
    }[];
    expect(ledger.map((e) => e.kind)).toEqual(['membership', 'membership', 'membership', 'membership', 'contract']);
  });

  it('an encryption key is registered, published in the list, rotated in its key file and rekeyed on the platform', async () => {
    const db = file('platform-keys.db');
    const made = await runCli(['platform', 'keygen', '--id', 'inv-5', '--out', file('inv5.json')]);
    const printed = JSON.parse(made.stdout) as { publicKey: string; encryptionKey: string };
    const first = json<GatewayKeyFile>('inv5.json');
    expect(printed).toMatchObject({ publicKey: first.publicKey, encryptionKey: first.encryptionPublicKey });
    await members(
      'register',
      db,
      'inv-5',
      '--public-key',
      first.publicKey,
      '--encryption-key',
      first.encryptionPublicKey!,
      '--role',
      'prosumer',
      '--cell',
      'cell-a',
    );
    await operatorAction('admit', db, 'inv-5');
    expect(activeMember(json<MembersList>('members.json'), 'inv-5')?.encryptionKey).toBe(first.encryptionPublicKey);

    // The gateway rotates: a new encryption pair, the old one retired, the signing key and the file's mode kept.
    const rotated = await runCli(['platform', 'keygen', '--id', 'inv-5', '--out', file('inv5.json'), '--rotate']);
    expect(rotated.code).toBe(0);
    const after = json<GatewayKeyFile>('inv5.json');
    expect(after.publicKey).toBe(first.publicKey);
    expect(after.encryptionPublicKey).not.toBe(first.encryptionPublicKey);
    expect(after.retiredEncryptionKeys?.map((k) => k.publicKey)).toEqual([first.encryptionPublicKey]);
    expect(statSync(file('inv5.json')).mode & 0o777).toBe(0o600);
    expect((await runCli(['platform', 'keygen', '--id', 'inv-6', '--out', file('inv5.json'), '--rotate'])).code).toBe(
      2,
    );

    // The operator publishes it: a higher serial, the new key; the old one cannot be registered again.
    const before = json<MembersList>('members.json').serial;
    const rekey = await members(
      'rekey',
      db,
      'inv-5',
      '--encryption-key',
      after.encryptionPublicKey!,
      '--operator-key',
      file('op.json'),
      '--members-out',
      file('members.json'),
    );
    expect(rekey.code).toBe(0);
    const list = json<MembersList>('members.json');
    expect(list.serial).toBe(before + 1);
    expect(verifyMembersList(list, json<{ publicKey: string }>('op.json').publicKey)).toBe(true);
    expect(activeMember(list, 'inv-5')?.encryptionKey).toBe(after.encryptionPublicKey);
    const again = await members(
      'rekey',
      db,
      'inv-5',
      '--encryption-key',
      first.encryptionPublicKey!,
      '--operator-key',
      file('op.json'),
    );
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/encryption key already used/);
  });

  it('bad input exits 2 and names what is wrong', async () => {
    const db = file('platform2.db');
    const unknown = await operatorAction('admit', db, 'ghost');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no member "ghost"/);
    const badKey = await members('register', db, 'x', '--public-key', 'short', '--role', 'dso', '--cell', 'c');
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toMatch(/publicKey/);
  });
});
