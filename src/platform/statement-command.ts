import { existsSync } from 'node:fs';
import { ErrorCode, P2PError } from '../core/errors.js';
import { printJson } from '../core/output.js';
import { Ledger } from './ledger/ledger.js';
import { Membership } from './membership.js';
import { buildStatement, parseIsoOption, type Statement, statementTable } from './statement.js';

export interface StatementOptions {
  member?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
}

/** The statement of a platform database's ledger; bad `from`/`to` or an unknown member are input errors. */
export function ledgerStatement(ledger: Ledger, options: StatementOptions, nowMs: number): Statement {
  const fromMs = options.from === undefined ? undefined : parseIsoOption(options.from, '--from');
  const toMs = options.to === undefined ? undefined : parseIsoOption(options.to, '--to');
  const knownIds = new Membership(ledger.db, undefined, () => nowMs).list().map((m) => m.id);
  return buildStatement(ledger.entries(), { fromMs, toMs, member: options.member, knownIds }, nowMs);
}

/** `p2p-edge platform statement --db FILE [--member ID] [--from ISO] [--to ISO] [--json]`. */
export function statementCommand(options: StatementOptions & { db: string; json?: boolean }): void {
  if (!existsSync(options.db)) {
    throw new P2PError(ErrorCode.input, `platform database ${options.db} does not exist`, {
      component: 'platform',
      file: options.db,
      field: '--db',
    });
  }
  const ledger = Ledger.open(options.db, { mustExist: true });
  try {
    const statement = ledgerStatement(ledger, options, Date.now());
    if (options.json) printJson(statement);
    else process.stdout.write(statementTable(statement));
  } finally {
    ledger.close();
  }
}
