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
import { type Contract, Contracts } from './contracts.js';
import { Ledger } from './ledger/ledger.js';
import { Membership } from './membership.js';
import { decideMembership, type OperatorKey, recordDecision } from './membership-decision.js';

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
            encryptionKey: keys.get(g.id)!.encryptionPublicKey,
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

/** An aggregator's DR providers as its config names them, and the most it pays per kWh (its buyer's price). */
export interface DrAggregatorTerms {
  aggregator: string;
  providers: readonly { provider: string; maxKWh: number }[];
  pricePerKWh: number;
}

/** A DR contract's baseline window: four metering intervals before the event (an hour of 15-minute intervals). */
const BEFORE_EVENT_INTERVALS = 4;
/** The delivered energy may fall short of the contracted capacity by this share. */
const DR_TOLERANCE_PCT = 10;
/** How long the contracts registered at provisioning run. */
const DR_CONTRACT_DAYS = 365;

/**
 * Registers a `dr-service` contract between each aggregator and each of its providers on the
 * platform database, recorded in the ledger by the operator (`contract`): the metered before/after
 * baseline (it works from the same day's readings), the platform's metering interval, the capacity
 * of the provider's offer (its kWh per market slot as kW) and the aggregator's price as the most it
 * pays per kWh. All or nothing.
 */
export function registerDrContracts(
  platformDb: string,
  operator: OperatorKey,
  terms: readonly DrAggregatorTerms[],
  o: { meteringIntervalS: number; slotMinutes: number; nowMs: number },
): Contract[] {
  const ledger = Ledger.open(platformDb, { mustExist: true });
  try {
    const members = new Membership(ledger.db, undefined, () => o.nowMs);
    const contracts = new Contracts(ledger.db, members);
    const fromMs = Math.floor(o.nowMs / 1000) * 1000;
    return ledger.db.transaction(() =>
      terms.flatMap((t) =>
        t.providers.map((p) => {
          const c = contracts.add({
            kind: 'dr-service',
            provider: p.provider,
            buyer: t.aggregator,
            from: new Date(fromMs).toISOString(),
            to: new Date(fromMs + DR_CONTRACT_DAYS * 86_400_000).toISOString(),
            capacityKW: p.maxKWh / (o.slotMinutes / 60),
            pricePerKWh: t.pricePerKWh,
            baseline: {
              method: 'metered-before-after',
              beforeMinutes: (BEFORE_EVENT_INTERVALS * o.meteringIntervalS) / 60,
            },
            meteringIntervalS: o.meteringIntervalS,
            tolerancePct: DR_TOLERANCE_PCT,
          });
          recordDecision(ledger, operator, 'contract', c, o.nowMs);
          return c;
        }),
      ),
    )();
  } finally {
    ledger.close();
  }
}
