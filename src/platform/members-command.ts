import { existsSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { writeFileAtomic } from '../core/atomic-file.js';
import { ErrorCode, P2PError } from '../core/errors.js';
import type { MembersList } from '../core/members.js';
import { printJson } from '../core/output.js';
import { generateKeyPair } from '../core/signing.js';
import { loadDataFile, readDataFile } from '../core/validate.js';
import { Contracts } from './contracts.js';
import { Ledger } from './ledger/ledger.js';
import { Membership } from './membership.js';
import { decideMembership, recordDecision } from './membership-decision.js';

/** A key file: a member's or the operator's id and Ed25519 key pair (raw 32 bytes, base64url). */
export const KeyFile = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/),
    publicKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
    privateKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  })
  .strict();

/** `p2p-edge platform keygen --id ID --out FILE`: a new key pair, written 0600; never overwrites. */
export function keygenCommand(o: { id: string; out: string }): void {
  const key = KeyFile.shape.id.safeParse(o.id);
  if (!key.success) throw new P2PError(ErrorCode.input, `--id: ${key.error.issues[0]?.message}`, { field: '--id' });
  if (existsSync(o.out)) {
    throw new P2PError(ErrorCode.input, `${o.out} exists: a key file is never overwritten`, {
      field: '--out',
      file: o.out,
    });
  }
  const pair = generateKeyPair();
  writeFileSync(o.out, `${JSON.stringify({ id: o.id, ...pair }, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  printJson({ id: o.id, publicKey: pair.publicKey, file: o.out });
}

function withMembership<T>(
  db: string,
  operatorKeyFile: string | undefined,
  run: (m: Membership, ledger: Ledger, operator: z.infer<typeof KeyFile> | undefined) => T,
): T {
  const operator = operatorKeyFile ? loadDataFile(operatorKeyFile, KeyFile, 'input') : undefined;
  const ledger = Ledger.open(db);
  try {
    return run(
      new Membership(ledger.db, operator && { id: operator.id, privateKey: operator.privateKey }, () => Date.now()),
      ledger,
      operator,
    );
  } finally {
    ledger.close();
  }
}

/** `p2p-edge platform members register --db FILE --id ID --public-key KEY --role ROLE --cell CELL`: a pending member. */
export function registerCommand(o: { db: string; id: string; publicKey: string; role: string; cell: string }): void {
  printJson(
    withMembership(o.db, undefined, (m) =>
      m.register({ id: o.id, publicKey: o.publicKey, role: o.role, cell: o.cell }),
    ),
  );
}

/**
 * `p2p-edge platform members admit|suspend|revoke --db FILE --id ID --operator-key FILE [--members-out FILE]`:
 * changes one member's status and issues the new operator-signed members list (printed, and written
 * atomically to --members-out for the gateways' comms to load).
 */
export function changeMemberCommand(
  action: 'admit' | 'suspend' | 'revoke',
  o: { db: string; id: string; operatorKey: string; membersOut?: string },
): void {
  const list: MembersList = withMembership(o.db, o.operatorKey, (m, ledger, operator) => {
    if (!m.get(o.id)) throw new P2PError(ErrorCode.input, `--id: no member "${o.id}" is registered`, { field: '--id' });
    return decideMembership(ledger, m, operator!, action, o.id, Date.now());
  });
  if (o.membersOut) writeFileAtomic(o.membersOut, `${JSON.stringify(list, null, 2)}\n`);
  printJson(list);
}

/**
 * `p2p-edge platform contracts add --db FILE --file CONTRACT.json --operator-key FILE`: a contract
 * between two active members, recorded in the ledger by the operator.
 */
export function addContractCommand(o: { db: string; file: string; operatorKey: string }): void {
  const input = readDataFile(o.file, 'input');
  const operator = loadDataFile(o.operatorKey, KeyFile, 'input');
  const ledger = Ledger.open(o.db, { mustExist: true });
  try {
    const members = new Membership(ledger.db, undefined, () => Date.now());
    const contract = ledger.db.transaction(() => {
      const c = new Contracts(ledger.db, members).add(input);
      recordDecision(ledger, operator, 'contract', c, Date.now());
      return c;
    })();
    printJson(contract);
  } finally {
    ledger.close();
  }
}
