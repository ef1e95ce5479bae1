import { chownSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { generateEncryptionKeyPair } from '../comms/sealed-body.js';
import { GatewayKeyFile, rotateEncryptionKey } from '../comms/security.js';
import { writeFileAtomic } from '../core/atomic-file.js';
import { ErrorCode, P2PError } from '../core/errors.js';
import { Member, type MembersList } from '../core/members.js';
import { printJson } from '../core/output.js';
import { generateKeyPair } from '../core/signing.js';
import { loadDataFile, readDataFile } from '../core/validate.js';
import { Contracts } from './contracts.js';
import { Ledger } from './ledger/ledger.js';
import { Membership } from './membership.js';
import { decideMembership, recordDecision, rekeyMember } from './membership-decision.js';

/**
 * `p2p-edge platform keygen --id ID --out FILE`: new signing and encryption key pairs, written 0600;
 * never overwrites. With `--rotate`, FILE exists and gets a new encryption pair; the one it replaces
 * is kept as retired (opened for a day longer: messages sealed to it may still be on their way), and
 * retired pairs older than that are dropped. The signing key stays (it is the member's identity).
 * Prints the public keys to register with the platform (`members register` / `members rekey`).
 */
export function keygenCommand(o: { id: string; out: string; rotate?: boolean }): void {
  const key = Member.shape.id.safeParse(o.id);
  if (!key.success) throw new P2PError(ErrorCode.input, `--id: ${key.error.issues[0]?.message}`, { field: '--id' });
  const encryption = generateEncryptionKeyPair();
  if (o.rotate) {
    const old = loadDataFile(o.out, GatewayKeyFile, 'input');
    if (old.id !== o.id)
      throw new P2PError(ErrorCode.input, `${o.out} is the key file of "${old.id}", not "${o.id}"`, {
        field: '--id',
        file: o.out,
      });
    const next = rotateEncryptionKey(old, encryption, Date.now());
    // The gateway's service reads the file through its group (deploy/install.sh): keep its mode and owner.
    const before = statSync(o.out);
    writeFileAtomic(o.out, `${JSON.stringify(next, null, 2)}\n`, before.mode & 0o777);
    if (process.getuid?.() === 0) chownSync(o.out, before.uid, before.gid);
    printJson({ id: o.id, publicKey: old.publicKey, encryptionKey: encryption.publicKey, file: o.out, rotated: true });
    return;
  }
  if (existsSync(o.out)) {
    throw new P2PError(
      ErrorCode.input,
      `${o.out} exists: a key file is never overwritten (--rotate makes new encryption keys)`,
      {
        field: '--out',
        file: o.out,
      },
    );
  }
  const pair = generateKeyPair();
  const file: GatewayKeyFile = {
    id: o.id,
    ...pair,
    encryptionPublicKey: encryption.publicKey,
    encryptionPrivateKey: encryption.privateKey,
  };
  writeFileSync(o.out, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  printJson({ id: o.id, publicKey: pair.publicKey, encryptionKey: encryption.publicKey, file: o.out });
}

function withMembership<T>(
  db: string,
  operatorKeyFile: string | undefined,
  run: (m: Membership, ledger: Ledger, operator: GatewayKeyFile | undefined) => T,
): T {
  const operator = operatorKeyFile ? loadDataFile(operatorKeyFile, GatewayKeyFile, 'input') : undefined;
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

/**
 * `p2p-edge platform members register --db FILE --id ID --public-key KEY [--encryption-key KEY] --role ROLE
 * --cell CELL`: a pending member.
 */
export function registerCommand(o: {
  db: string;
  id: string;
  publicKey: string;
  encryptionKey?: string;
  role: string;
  cell: string;
}): void {
  printJson(
    withMembership(o.db, undefined, (m) =>
      m.register({
        id: o.id,
        publicKey: o.publicKey,
        ...(o.encryptionKey !== undefined ? { encryptionKey: o.encryptionKey } : {}),
        role: o.role,
        cell: o.cell,
      }),
    ),
  );
}

/**
 * `p2p-edge platform members rekey --db FILE --id ID --encryption-key KEY --operator-key FILE
 * [--members-out FILE]`: the member's new encryption key (after `keygen --rotate` on its gateway),
 * recorded in the ledger, and the members list that publishes it.
 */
export function rekeyCommand(o: {
  db: string;
  id: string;
  encryptionKey: string;
  operatorKey: string;
  membersOut?: string;
}): void {
  const list: MembersList = withMembership(o.db, o.operatorKey, (m, ledger, operator) => {
    if (!m.get(o.id)) throw new P2PError(ErrorCode.input, `--id: no member "${o.id}" is registered`, { field: '--id' });
    return rekeyMember(ledger, m, operator!, o.id, o.encryptionKey, Date.now());
  });
  if (o.membersOut) writeFileAtomic(o.membersOut, `${JSON.stringify(list, null, 2)}\n`);
  printJson(list);
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
  const operator = loadDataFile(o.operatorKey, GatewayKeyFile, 'input');
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
