import { appendFileSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DisputedLine, SettleDraftBody, SettleHeadBody } from '../../comms/messages/settle.js';
import { DEFAULT_TTL_MS, type Transport } from '../../comms/transport.js';
import { readJsonIfPresent, writeFileAtomic } from '../../core/atomic-file.js';
import type { Clock } from '../../core/clock.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { OngoingProblems } from '../../core/ongoing-problems.js';
import { checkDrPayment, DR_MARKET } from '../../platform/dr-payment.js';
import { followHead, type KnownHead } from '../../platform/ledger/head-follower.js';
import { contentHash } from '../../platform/ledger/ledger.js';
import { checkDraft, type PartyRecords } from '../../platform/settlement-check.js';
import { type SettlementSchedule, UnitPayload } from '../../platform/settlement-content.js';
import type { AlarmBook } from '../alarms.js';
import type { SettlementRecords } from './records.js';

/**
 * A gateway as a party to settlements: it checks each draft the platform sends it against its own
 * records (`settlement-check.ts`) and answers with its signature or a dispute naming the lines; it
 * keeps what it signed (`stateDir/<id>/settlement-signed.jsonl`, one line per draft signed); and it
 * follows the ledger heads the platform publishes, so that a rewrite or truncation of the ledger
 * is seen (`ledger-head.json`: the last head it checked).
 */

/**
 * A draft naming a trade of this gateway it has no record of is not disputed while the market's
 * dispatch of that trade may still be on its way (resent from the trader's outbox to a gateway that
 * was away): until the dispatch of the interval has expired. In the field a draft comes long after
 * that; a bench's short intervals draft while dispatches are still resent.
 */
const RECORDS_MAY_ARRIVE_MS = DEFAULT_TTL_MS.mkt;

/** One line of the signed log: what the gateway agreed to, and where the ledger put it once seen. */
interface SignedRecord {
  unit: string;
  contentHash: string;
  signedAtMs: number;
  amount: number;
  /** Filled when a checked ledger head lists the entry. */
  ledgerIndex?: number;
  /** A cell settlement whose level above this trader is: its interval and its prosumers' metered sum. */
  cell?: { interval: number; prosumersKWh: number };
}

export interface SettlementPartyState {
  signed: number;
  disputed: number;
  /** Entries it signed that a checked ledger head lists. */
  signedInLedger: number;
  /** The last ledger head checked, and what was wrong with the platform's ledger, if anything. */
  ledgerHead: KnownHead | null;
  ledgerProblem: string | null;
  lastDispute: { unit: string; lines: string[] } | null;
}

export interface SettlementPartyDeps {
  gatewayId: string;
  /** The platform whose drafts and heads it takes. */
  platform: string;
  schedule: SettlementSchedule;
  records: SettlementRecords;
  transport: Transport;
  clock: Clock;
  log: Logger;
  stateDir: string;
  keepSignedDays: number;
  /** Signs a document with the gateway's key. */
  sign(document: unknown): string;
  /** Where a dispute is raised as an alarm (cleared when a later draft of the unit is signed). */
  alarms?: AlarmBook;
  /** An active member's public key from the operator-signed members list the gateway holds. */
  memberKey?(id: string): string | undefined;
}

export class SettlementParty {
  private readonly signedFile: string;
  private readonly headFile: string;
  /** Answers given, by unit: the content signed or disputed (a unit is signed in one version only). */
  private readonly answered = new Map<string, { contentHash: string; signed: boolean }>();
  private readonly signedRecords = new Map<string, SignedRecord>();
  private head: KnownHead | undefined;
  private ledgerProblem: string | null = null;
  private counts = { signed: 0, disputed: 0 };
  private lastDispute: SettlementPartyState['lastDispute'] = null;
  private readonly problems = new OngoingProblems<'signed-log'>();
  /** Drafts waiting for this gateway's record of a trade they name, by unit. */
  private readonly held = new Map<string, SettleDraftBody>();

  constructor(private readonly deps: SettlementPartyDeps) {
    const dir = join(deps.stateDir, deps.gatewayId);
    this.signedFile = join(dir, 'settlement-signed.jsonl');
    this.headFile = join(dir, 'ledger-head.json');
    this.loadSigned();
    try {
      const head = readJsonIfPresent(this.headFile) as KnownHead | undefined;
      if (head && typeof head.entries === 'number' && typeof head.hash === 'string') this.head = head;
    } catch (err) {
      // The next head is then taken as it is, as on a gateway's first start.
      deps.log.warn({ file: this.headFile, err: errorMessage(err) }, 'last ledger head checked not readable');
    }
  }

  start(): void {
    const { transport, gatewayId, platform } = this.deps;
    transport.on({ cell: '+', cls: 'settle', type: 'draft', target: gatewayId }, ({ envelope }) => {
      if (envelope.sender !== platform) return;
      return this.onDraft(envelope.body);
    });
    const onHead = ({ envelope }: { envelope: { sender: string; body: SettleHeadBody } }) => {
      if (envelope.sender !== platform) return;
      return this.onHead(envelope.body);
    };
    transport.on({ cell: '+', cls: 'settle', type: 'head' }, onHead);
    transport.on({ cell: '+', cls: 'settle', type: 'head', target: gatewayId }, onHead);
  }

  private recordsFor(p: UnitPayload): PartyRecords {
    const { records, memberKey } = this.deps;
    const own: PartyRecords = memberKey ? { memberKey } : {};
    const trades = records.trades(p.interval, p.market);
    if (trades) own.trades = trades;
    if (p.market === 'cell') {
      const metered = records.metered(p.interval);
      if (metered) own.metered = metered;
    } else {
      // One level up a trader's metered energy is its cell's: the sum its cell's settlement, which it
      // signed, gave its prosumers.
      const cell = [...this.signedRecords.values()].find((r) => r.cell?.interval === p.interval)?.cell;
      if (cell) own.metered = { kWh: cell.prosumersKWh, coverage: 1 };
    }
    return own;
  }

  private async onDraft(draft: SettleDraftBody): Promise<void> {
    const { gatewayId, schedule } = this.deps;
    const hash = contentHash(draft.content);
    const before = this.answered.get(draft.unit);
    if (before && before.contentHash !== hash && before.signed) {
      // A second, different draft of a unit it signed already: never sign two versions of one settlement.
      await this.dispute(draft.unit, hash, [
        { line: 'unit', draft: hash, own: before.contentHash, reason: 'another draft of this settlement was signed' },
      ]);
      return;
    }
    if ((draft.content.payload as { market?: unknown } | null)?.market === DR_MARKET)
      return this.onDrPayment(draft, hash, before?.signed === true);
    const payload = UnitPayload.safeParse(draft.content.payload);
    const records = payload.success ? this.recordsFor(payload.data) : {};
    const check = checkDraft(draft.content, gatewayId, records, schedule);
    if (!check.ok && payload.success && this.recordsMayArrive(check.lines, payload.data)) {
      this.held.set(draft.unit, draft);
      return;
    }
    this.held.delete(draft.unit);
    if (!check.ok) return this.disputeLogged(draft.unit, hash, check.lines, 'settlement draft disputed');
    const p = check.payload;
    const leadsCell = p.market === 'cell' && p.config.levelAbove.id === gatewayId;
    const prosumersKWh = Object.entries(p.meteredNetExportKWh)
      .filter(([id]) => id !== gatewayId)
      .reduce((a, [, v]) => a + v, 0);
    await this.signAndSend(
      draft,
      hash,
      before?.signed === true,
      leadsCell ? { cell: { interval: p.interval, prosumersKWh: Number(prosumersKWh.toFixed(9)) } } : {},
    );
  }

  private async disputeLogged(unit: string, hash: string, lines: DisputedLine[], message: string): Promise<void> {
    this.deps.log.warn(
      { unit, lines: lines.map((l) => `${l.line}: draft ${l.draft}, own ${l.own} (${l.reason})`) },
      message,
    );
    await this.dispute(unit, hash, lines);
  }

  /**
   * Signs a draft that checked and answers the platform. What it signed is kept once: a resent draft
   * signed before is answered again, and a draft signed after it was disputed (its records came) is kept.
   */
  private async signAndSend(
    draft: SettleDraftBody,
    hash: string,
    signedBefore: boolean,
    extra: Pick<SignedRecord, 'cell'>,
  ): Promise<void> {
    const { gatewayId, platform, transport, clock } = this.deps;
    const signature = this.deps.sign(draft.content);
    this.deps.alarms?.clear(`settlement-dispute:${draft.unit}`, clock.now());
    if (!signedBefore) {
      this.keepSigned({
        unit: draft.unit,
        contentHash: hash,
        signedAtMs: clock.now(),
        amount: draft.content.amounts[gatewayId] ?? 0,
        ...extra,
      });
      this.counts.signed++;
    }
    this.answered.set(draft.unit, { contentHash: hash, signed: true });
    await transport.publish(
      'settle',
      'signature',
      { unit: draft.unit, contentHash: hash, signature },
      { target: platform },
    );
  }

  /** A DR payment: checked against the DR dispatches its roles recorded for the interval. */
  private async onDrPayment(draft: SettleDraftBody, hash: string, signedBefore: boolean): Promise<void> {
    const { gatewayId, records, memberKey } = this.deps;
    const interval = (draft.content.payload as { interval?: unknown }).interval;
    const dispatches = typeof interval === 'number' ? records.trades(interval, DR_MARKET) : undefined;
    const check = checkDrPayment(draft.content, gatewayId, dispatches, memberKey);
    if (!check.ok) return this.disputeLogged(draft.unit, hash, check.lines, 'DR payment draft disputed');
    await this.signAndSend(draft, hash, signedBefore, {});
  }

  /** Every line is a trade of this gateway it has no record of, and the interval's dispatch may still come. */
  private recordsMayArrive(lines: readonly DisputedLine[], p: UnitPayload): boolean {
    return (
      this.deps.clock.now() < p.interval + RECORDS_MAY_ARRIVE_MS &&
      lines.every((l) => l.line.startsWith('trades.') && l.own === null)
    );
  }

  /** Checks the held drafts again (the records may have come, or the wait ended). */
  private async recheckHeld(): Promise<void> {
    for (const draft of [...this.held.values()]) await this.onDraft(draft);
  }

  private async dispute(unit: string, hash: string, lines: DisputedLine[]): Promise<void> {
    const { transport, platform } = this.deps;
    const before = this.answered.get(unit);
    if (before?.contentHash !== hash) this.counts.disputed++;
    if (!before) this.answered.set(unit, { contentHash: hash, signed: false });
    this.lastDispute = { unit, lines: lines.map((l) => l.line) };
    this.deps.alarms?.raise(
      `settlement-dispute:${unit}`,
      {
        kind: 'settlement-dispute',
        severity: 'warning',
        source: unit,
        text: `settlement ${unit} disputed: ${lines
          .slice(0, 3)
          .map((l) => `${l.line} draft ${l.draft} against own ${l.own} (${l.reason})`)
          .join('; ')}${lines.length > 3 ? ` and ${lines.length - 3} more lines` : ''}`,
      },
      this.deps.clock.now(),
    );
    await transport.publish('settle', 'dispute', { unit, contentHash: hash, lines }, { target: platform });
  }

  private async onHead(head: SettleHeadBody): Promise<void> {
    // The platform publishes a head every interval: the held drafts are checked again as often.
    if (this.held.size > 0) await this.recheckHeld();
    return this.checkHead(head);
  }

  private checkHead(head: SettleHeadBody): Promise<void> | undefined {
    const { log, transport, platform } = this.deps;
    const check = followHead(this.head, head);
    if (check.outcome === 'gap')
      return transport.publish('settle', 'head-request', { from: check.from }, { target: platform });
    if (check.outcome === 'mismatch') {
      if (this.ledgerProblem !== check.reason)
        log.error(
          { reason: check.reason, known: this.head, head: { entries: head.entries, hash: head.hash } },
          "the platform's ledger does not extend what this gateway saw: it was rewritten or truncated",
        );
      this.ledgerProblem = check.reason;
      return undefined;
    }
    let found = false;
    for (const e of check.entries) {
      if (!e.contentHash) continue;
      const record = this.signedRecords.get(e.contentHash);
      if (record && record.ledgerIndex === undefined) {
        record.ledgerIndex = e.index;
        found = true;
      }
    }
    if (found) this.rewriteSigned();
    this.head = check.head;
    try {
      writeFileAtomic(this.headFile, `${JSON.stringify(this.head)}\n`);
    } catch (err) {
      log.warn({ file: this.headFile, err: errorMessage(err) }, 'ledger head not written');
    }
    if (check.more !== undefined)
      return transport.publish('settle', 'head-request', { from: check.more }, { target: platform });
    return undefined;
  }

  private loadSigned(): void {
    let text = '';
    try {
      text = readFileSync(this.signedFile, 'utf8');
    } catch {
      return;
    }
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const r = JSON.parse(line) as SignedRecord;
        this.signedRecords.set(r.contentHash, r);
        this.answered.set(r.unit, { contentHash: r.contentHash, signed: true });
      } catch {
        // A line cut by a power loss while it was written: the ones before it stand.
      }
    }
    this.counts.signed = this.signedRecords.size;
  }

  private keepSigned(record: SignedRecord): void {
    this.signedRecords.set(record.contentHash, record);
    try {
      mkdirSync(dirname(this.signedFile), { recursive: true });
      appendFileSync(this.signedFile, `${JSON.stringify(record)}\n`);
      if (this.problems.ended('signed-log', this.deps.clock.now()))
        this.deps.log.info({ file: this.signedFile }, 'signed settlements written again');
    } catch (err) {
      if (this.problems.failed('signed-log', errorMessage(err), this.deps.clock.now()))
        this.deps.log.warn({ file: this.signedFile, err: errorMessage(err) }, 'signed settlement not written');
    }
  }

  /** Rewrites the log with the ledger places found and without records older than kept. */
  private rewriteSigned(): void {
    const oldest = this.deps.clock.now() - this.deps.keepSignedDays * 86_400_000;
    for (const [hash, r] of this.signedRecords) if (r.signedAtMs < oldest) this.signedRecords.delete(hash);
    // Units are named by their interval's start: answers older than what is kept are forgotten with it.
    for (const unit of this.answered.keys()) if (Number.parseInt(unit, 10) < oldest) this.answered.delete(unit);
    const text = [...this.signedRecords.values()].map((r) => JSON.stringify(r)).join('\n');
    try {
      writeFileAtomic(`${this.signedFile}.new`, text ? `${text}\n` : '');
      renameSync(`${this.signedFile}.new`, this.signedFile);
    } catch (err) {
      this.deps.log.warn({ file: this.signedFile, err: errorMessage(err) }, 'signed settlements not rewritten');
    }
  }

  state(): SettlementPartyState {
    return {
      signed: this.counts.signed,
      disputed: this.counts.disputed,
      signedInLedger: [...this.signedRecords.values()].filter((r) => r.ledgerIndex !== undefined).length,
      ledgerHead: this.head ?? null,
      ledgerProblem: this.ledgerProblem,
      lastDispute: this.lastDispute,
    };
  }
}
