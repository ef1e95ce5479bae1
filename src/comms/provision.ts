import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.js';
import { type MemberRole, type MembersList, signMembersList } from '../core/members.js';
import { generateKeyPair, type KeyPair } from '../core/signing.js';
import { generateEncryptionKeyPair } from './sealed-body.js';

/** A member's keys as its key file holds them: Ed25519 to sign, X25519 to open what is sealed to it. */
export interface MemberKeys extends KeyPair {
  encryptionPublicKey: string;
  encryptionPrivateKey: string;
}

/** A fresh pair of each. */
export function generateMemberKeys(): MemberKeys {
  const encryption = generateEncryptionKeyPair();
  return {
    ...generateKeyPair(),
    encryptionPublicKey: encryption.publicKey,
    encryptionPrivateKey: encryption.privateKey,
  };
}

/** The members-list role of each kind of gateway. */
export const ROLE_OF_KIND: Record<string, MemberRole> = {
  inverter: 'prosumer',
  transformer: 'mg-trader',
  aggregator: 'aggregator',
  dso: 'dso',
  platform: 'platform',
};

/** The members-list role of a gateway of this kind (`prosumer` for a kind the list has no role for). */
export const memberRoleOf = (kind: string): MemberRole => ROLE_OF_KIND[kind] ?? 'prosumer';

/** A gateway as provisioning sees it. */
export interface GatewayIdentity {
  id: string;
  cell: string;
  kind: string;
}

export interface ProvisionedIdentities {
  operatorPublicKey: string;
  /** Kept in memory only (for re-issuing the list in tests); never written. */
  operator: KeyPair;
  membersFile: string;
  members: MembersList;
  keys: Map<string, MemberKeys>;
  keyFile(id: string): string;
}

/** Fresh keys per gateway, kept in memory until `writeIdentities` writes them. */
export function generateGatewayKeys(gateways: readonly GatewayIdentity[]): Map<string, MemberKeys> {
  return new Map(gateways.map((g) => [g.id, generateMemberKeys()]));
}

/**
 * Writes each gateway's key file (`<id>.key.json`, 0600, as `p2p-edge platform keygen` does) under
 * `dir` and the members list to `dir/members.json` (atomically); returns what a gateway's
 * `comms.security` is made from.
 */
export function writeIdentities(
  dir: string,
  keys: ReadonlyMap<string, MemberKeys>,
  operator: KeyPair,
  members: MembersList,
): ProvisionedIdentities {
  mkdirSync(dir, { recursive: true });
  const keyFile = (id: string) => join(dir, `${id}.key.json`);
  for (const [id, pair] of keys)
    writeFileSync(keyFile(id), `${JSON.stringify({ id, ...pair }, null, 2)}\n`, { mode: 0o600 });
  const membersFile = join(dir, 'members.json');
  writeFileAtomic(membersFile, `${JSON.stringify(members, null, 2)}\n`);
  return { operatorPublicKey: operator.publicKey, operator, membersFile, members, keys: new Map(keys), keyFile };
}

/**
 * Makes what a real deployment gets from `p2p-edge platform keygen` and the cell operator: a key
 * file per gateway (0600) and a members list signed by a fresh operator key, all under `dir`. For
 * tests of comms without a platform; the operator's private key is not written. The demo and the
 * benchmark admit their gateways through the platform instead (`provisionThroughPlatform`,
 * `src/platform/provision.ts`).
 */
export function provisionIdentities(gateways: GatewayIdentity[], dir: string, nowMs: number): ProvisionedIdentities {
  const operator = generateKeyPair();
  const keys = generateGatewayKeys(gateways);
  const members = signMembersList(
    {
      v: 1,
      operator: 'operator',
      serial: 1,
      issuedAt: nowMs,
      members: gateways.map((g) => ({
        id: g.id,
        publicKey: keys.get(g.id)!.publicKey,
        role: memberRoleOf(g.kind),
        cell: g.cell,
        status: 'active' as const,
        encryptionKey: keys.get(g.id)!.encryptionPublicKey,
      })),
    },
    operator.privateKey,
  );
  return writeIdentities(dir, keys, operator, members);
}
