import { brokerAcl } from '../comms/broker-acl.js';
import { writeFileAtomic } from '../core/atomic-file.js';
import { ErrorCode, P2PError } from '../core/errors.js';
import { MembersList, verifyMembersList } from '../core/members.js';
import { printJson } from '../core/output.js';
import { loadDataFile } from '../core/validate.js';

const PUBLIC_KEY = /^[A-Za-z0-9_-]{43}$/;

/**
 * `p2p-edge platform broker-acl --members FILE --operator-public-key KEY [--out FILE]`: the brokers'
 * Mosquitto ACL from the operator-signed members list (`src/comms/broker-acl.ts`), printed, or written
 * atomically to `--out` (0644: Mosquitto reads it as its own user; it holds no secret).
 */
export function brokerAclCommand(o: { members: string; operatorPublicKey: string; out?: string }): void {
  if (!PUBLIC_KEY.test(o.operatorPublicKey)) {
    throw new P2PError(ErrorCode.input, '--operator-public-key: expected a 32-byte key in base64url without padding', {
      field: '--operator-public-key',
    });
  }
  const list = loadDataFile(o.members, MembersList, ErrorCode.input);
  if (!verifyMembersList(list, o.operatorPublicKey)) {
    throw new P2PError(
      ErrorCode.input,
      `${o.members}: sig: the members list is not signed by the operator key given with --operator-public-key`,
      {
        field: 'sig',
        file: o.members,
        hint: "the list as the operator issued it (platform members admit … --members-out), and the operator's public key",
      },
    );
  }
  const acl = brokerAcl(list, o.members);
  if (!o.out) {
    process.stdout.write(acl);
    return;
  }
  writeFileAtomic(o.out, acl, 0o644);
  const active = list.members.filter((m) => m.status === 'active');
  printJson({
    file: o.out,
    serial: list.serial,
    members: active.length,
    inactive: list.members.length - active.length,
    bridges: new Set(active.map((m) => m.cell)).size,
  });
}
