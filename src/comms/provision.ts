import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic-file.js';
import { type MemberRole, type MembersList, signMembersList } from '../core/members.js';
import { generateKeyPair, type KeyPair } from '../core/signing.js';

/** The members-list role of each kind of gateway. */
export const ROLE_OF_KIND: Record<string, MemberRole> = {
  inverter: 'prosumer',
  transformer: 'mg-trader',
  aggregator: 'aggregator',
  dso: 'dso',
};

export interface ProvisionedIdentities {
  operatorPublicKey: string;
  /** Kept in memory only (for re-issuing the list in tests); never written. */
  operator: KeyPair;
  membersFile: string;
  members: MembersList;
  keys: Map<string, KeyPair>;
  keyFile(id: string): string;
}

/**
 * Makes what a real deployment gets from `p2p-edge platform keygen` and the cell operator: a key
 * file per gateway (0600) and a members list signed by a fresh operator key, all under `dir`. For
 * the in-process demo, the benchmark and tests; the operator's private key is not written.
 */
export function provisionIdentities(
  gateways: { id: string; cell: string; kind: string }[],
  dir: string,
  nowMs: number,
): ProvisionedIdentities {
  mkdirSync(dir, { recursive: true });
  const operator = generateKeyPair();
  const keys = new Map<string, KeyPair>();
  const keyFile = (id: string) => join(dir, `${id}.key.json`);
  for (const g of gateways) {
    const pair = generateKeyPair();
    keys.set(g.id, pair);
    writeFileSync(keyFile(g.id), `${JSON.stringify({ id: g.id, ...pair }, null, 2)}\n`, { mode: 0o600 });
  }
  const members = signMembersList(
    {
      v: 1,
      operator: 'operator',
      serial: 1,
      issuedAt: nowMs,
      members: gateways.map((g) => ({
        id: g.id,
        publicKey: keys.get(g.id)!.publicKey,
        role: ROLE_OF_KIND[g.kind] ?? 'prosumer',
        cell: g.cell,
        status: 'active' as const,
      })),
    },
    operator.privateKey,
  );
  const membersFile = join(dir, 'members.json');
  writeFileAtomic(membersFile, `${JSON.stringify(members, null, 2)}\n`);
  return { operatorPublicKey: operator.publicKey, operator, membersFile, members, keys, keyFile };
}
