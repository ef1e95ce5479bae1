import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  type GatewayIdentity,
  generateGatewayKeys,
  memberRoleOf,
  type ProvisionedIdentities,
  writeIdentities,
} from '../comms/provision.js';
import { ErrorCode, errorMessage, isP2PError, P2PError } from '../core/errors.js';
import type { MembersList } from '../core/members.js';
import { generateKeyPair } from '../core/signing.js';
import { Ledger } from './ledger/ledger.js';
import { Membership } from './membership.js';
import { decideMembership, type OperatorKey } from './membership-decision.js';

/** The id the operator signs the members list and its ledger entries with. */
export const PROVISIONING_OPERATOR_ID = 'operator';

/**
 * Provisions gateways as a pilot does, through the platform: a key pair per gateway and a fresh
 * operator key; each gateway registered and admitted on the platform database `platformDb` (a
 * `membership` ledger entry per admission, signed by the operator); then every key file (0600) and
 * the members list the last admission issued (`members.json`, atomically) written under `dir`. All
 * or nothing: if one gateway cannot be registered or admitted, the database is left as it was,
 * nothing is written and the error names the gateway. The operator's private key stays in memory.
 */
export function provisionThroughPlatform(
  gateways: readonly GatewayIdentity[],
  dir: string,
  platformDb: string,
  nowMs: number,
): ProvisionedIdentities {
  const pair = generateKeyPair();
  const operator: OperatorKey = { id: PROVISIONING_OPERATOR_ID, ...pair };
  const keys = generateGatewayKeys(gateways);
  mkdirSync(dirname(platformDb), { recursive: true });
  const ledger = Ledger.open(platformDb);
  let issued: MembersList | undefined;
  try {
    const members = new Membership(ledger.db, operator, () => nowMs);
    ledger.db.transaction(() => {
      for (const g of gateways) {
        try {
          members.register({
            id: g.id,
            publicKey: keys.get(g.id)!.publicKey,
            role: memberRoleOf(g.kind),
            cell: g.cell,
          });
          issued = decideMembership(ledger, members, operator, 'admit', g.id, nowMs);
        } catch (err) {
          throw new P2PError(
            isP2PError(err) ? err.code : ErrorCode.storage,
            `gateway ${g.id} could not be admitted on the platform ${platformDb}: ${errorMessage(err)}`,
            {
              component: 'provision',
              file: platformDb,
              cause: err,
              ...(isP2PError(err) && err.field ? { field: err.field } : {}),
            },
          );
        }
      }
    })();
  } finally {
    ledger.close();
  }
  if (!issued)
    throw new P2PError(ErrorCode.input, 'no gateway to provision', { component: 'provision', file: platformDb });
  return writeIdentities(dir, keys, pair, issued);
}
