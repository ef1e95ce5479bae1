import type { MembersList } from '../core/members.js';
import type { Ledger } from './ledger/ledger.js';
import type { Membership } from './membership.js';

/** The operator whose key signs the members list and the ledger entries of its decisions. */
export interface OperatorKey {
  id: string;
  publicKey: string;
  privateKey: string;
}

export type MembershipAction = 'admit' | 'suspend' | 'revoke';

/** Records an operator's decision in the ledger, signed by the operator, so that `ledger verify` covers it. */
export function recordDecision(
  ledger: Ledger,
  operator: OperatorKey,
  kind: string,
  payload: unknown,
  timeMs: number,
): number {
  return ledger.append(
    {
      time: new Date(timeMs).toISOString(),
      kind,
      parties: [{ id: operator.id, publicKey: operator.publicKey }],
      payload,
    },
    { [operator.id]: operator.privateKey },
  ).index;
}

/**
 * Changes one member's status and records the decision in the ledger (`membership`, signed by the
 * operator), in one transaction: both happen or neither. Returns the members list it issued.
 */
export function decideMembership(
  ledger: Ledger,
  members: Membership,
  operator: OperatorKey,
  action: MembershipAction,
  id: string,
  timeMs: number,
): MembersList {
  return ledger.db.transaction(() => {
    const issued = members[action](id);
    const member = members.get(id)!;
    recordDecision(
      ledger,
      operator,
      'membership',
      {
        action,
        member: member.id,
        status: member.status,
        role: member.role,
        cell: member.cell,
        publicKey: member.publicKey,
        serial: issued.serial,
      },
      timeMs,
    );
    return issued;
  })();
}

/**
 * A member's new encryption key, recorded in the ledger (`membership`, action `rekey`, signed by the
 * operator) in the same transaction. Returns the members list that publishes it.
 */
export function rekeyMember(
  ledger: Ledger,
  members: Membership,
  operator: OperatorKey,
  id: string,
  encryptionKey: string,
  timeMs: number,
): MembersList {
  return ledger.db.transaction(() => {
    const issued = members.rekey(id, encryptionKey);
    recordDecision(
      ledger,
      operator,
      'membership',
      { action: 'rekey', member: id, encryptionKey, serial: issued.serial },
      timeMs,
    );
    return issued;
  })();
}
