import { ErrorCode, isP2PError, P2PError } from '../core/errors.js';
import { type HttpReply, reply } from '../core/http-server.js';
import type { Ledger } from './ledger/ledger.js';
import { Membership } from './membership.js';
import { ledgerStatement, rowsToCsv } from './platform-tables.js';
import { parseIsoOption } from './statement.js';
import { buildIntervalStatement, type IntervalStatement, intervalStatementCsv } from './statement-intervals.js';
import { statementPageHtml } from './statement-page.js';

/**
 * The statement's read-only routes, for any `ReadOnlyHttpServer` that holds a ledger (the platform API
 * today; the gateway's status server takes the same function as its `routes`):
 * - `/api/statements?member=&from=&to=`: the `platform statement` document (`&format=csv`: its accounts);
 * - `/api/statements/intervals?member=&from=&to=`: a member's rows per interval (`&format=csv`);
 * - `/statement?member=&from=&to=`: the member's day as an HTML page.
 * A bad time, a missing or unknown member: 400, the message naming the parameter.
 */
export function statementRoutes(ledger: Ledger, nowMs: () => number = Date.now): (url: URL) => HttpReply | undefined {
  return (url) => {
    const route = ROUTES[url.pathname];
    if (!route) return undefined;
    const param = (name: string) => url.searchParams.get(name) || undefined;
    const query = { member: param('member'), from: param('from'), to: param('to') };
    try {
      return route(ledger, query, url, nowMs());
    } catch (err) {
      if (isP2PError(err, ErrorCode.input)) return reply(400, 'text/plain', `${err.message.replace(/^--/, '')}\n`);
      throw err;
    }
  };
}

interface StatementParams {
  member?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
}

type Route = (ledger: Ledger, query: StatementParams, url: URL, nowMs: number) => HttpReply;

const ROUTES: Record<string, Route> = {
  '/api/statements': (ledger, query, url, nowMs) => {
    const statement = ledgerStatement(ledger, query, nowMs);
    if (url.searchParams.get('format') !== 'csv') return reply(200, 'application/json', JSON.stringify(statement));
    return reply(200, 'text/csv', rowsToCsv(statement.accounts as unknown as Record<string, unknown>[]));
  },
  '/api/statements/intervals': (ledger, query, url, nowMs) => {
    const days = ledgerIntervalStatement(ledger, query, nowMs);
    if (url.searchParams.get('format') !== 'csv') return reply(200, 'application/json', JSON.stringify(days));
    return reply(200, 'text/csv; charset=utf-8', intervalStatementCsv(days));
  },
  '/statement': (ledger, query, url, nowMs) => {
    const days = ledgerIntervalStatement(ledger, query, nowMs);
    const statement = ledgerStatement(ledger, { ...query, member: days.member }, nowMs);
    const account = statement.accounts[0];
    if (!account) throw new Error(`the statement of ${days.member} has no account`);
    const csv = new URLSearchParams({ member: days.member });
    for (const name of ['from', 'to', 'token'] as const) {
      const value = url.searchParams.get(name);
      if (value) csv.set(name, value);
    }
    csv.set('format', 'csv');
    const html = statementPageHtml({
      account,
      days,
      settledIntervals: statement.settledIntervals,
      csvHref: `api/statements/intervals?${csv}`,
    });
    return reply(200, 'text/html; charset=utf-8', html);
  },
};

/** A member's rows per interval from the ledger, the period parsed as `platform statement` parses it. */
export function ledgerIntervalStatement(ledger: Ledger, query: StatementParams, nowMs: number): IntervalStatement {
  if (query.member === undefined) {
    throw new P2PError(ErrorCode.input, 'member is required: the id of the member whose intervals to show', {
      component: 'statement',
      field: 'member',
    });
  }
  const fromMs = query.from === undefined ? undefined : parseIsoOption(query.from, '--from');
  const toMs = query.to === undefined ? undefined : parseIsoOption(query.to, '--to');
  const knownIds = new Membership(ledger.db, undefined, () => nowMs).list().map((m) => m.id);
  return buildIntervalStatement(ledger.entries(), { fromMs, toMs, member: query.member, knownIds }, nowMs);
}
