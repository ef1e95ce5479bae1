import type { SettleSignatureBody, SignedContent } from '../../comms/messages/settle.js';
import { EnvelopeSigner } from '../../comms/security.js';
import type { Message } from '../../comms/transport.js';
import { errorMessage } from '../../core/errors.js';
import { GroupCommit } from '../../core/group-commit.js';
import { OngoingProblems } from '../../core/ongoing-problems.js';
import { Contracts } from '../../platform/contracts.js';
import { DrEvents } from '../../platform/dr-events.js';
import { DrSettlement } from '../../platform/dr-settlement.js';
import { Ledger } from '../../platform/ledger/ledger.js';
import { LiveSettlement } from '../../platform/live-settlement.js';
import { Membership } from '../../platform/membership.js';
import { type MeterInterval, MeterIntervals } from '../../platform/meter-intervals.js';
import { Readings } from '../../platform/readings.js';
import { TradeReports } from '../../platform/trades.js';
import type { TimeScale } from '../scheduler.js';
import type { Role, RoleContext } from './role.js';

/** Intervals closed per member in one tick at most (a platform back after a long stop catches up over a few). */
const MAX_CLOSES_PER_TICK = 96;

/**
 * The trading platform as a role of the runtime (on a transformer gateway or a server): it takes the
 * `meter/energy` messages addressed to it (each member's energy of a metering interval, sealed to it:
 * it gets nothing finer) and stores each one as it arrives, before the transport acknowledges it
 * (`MeterIntervals`; those that arrive together in one transaction). One metering interval after an
 * interval ends, it writes each member's interval to the platform's readings, where measurement and
 * verification read it; settlement reads the stored intervals. Nothing is kept only in memory: a
 * platform killed at any point resumes from its database. Intervals of senders that are not active
 * members are counted and dropped.
 */
/** The platform role's status: what it stored and refused. */
export type PlatformRoleState = {
  metersHeard: number;
  /** Metering intervals stored, resent ones (stored before), late ones (after their reading was due). */
  intervalsStored: number;
  resentIntervals: number;
  lateIntervals: number;
  readingsStored: number;
  fromNonMembers: number;
  refused: number;
  trades: { reports: number; tradesStored: number; resentReports: number; conflicts: number; refusedReports: number };
  /** Settlement at run time (with `settlement` configured): drafts, signatures, disputes, commits. */
  settlement: {
    drafted: number;
    committed: number;
    disputes: number;
    signatures: number;
    refusedSignatures: number;
    refusedDisputes: number;
    /** Units waiting to be drafted, and for what. */
    waiting: Record<string, string>;
    ledgerEntries: number;
    /**
     * DR dispatches the aggregators reported: made events, resent, unmeasurable (a trading interval
     * holding no start of a metering interval), refused (no contract, a price above it, an overlap).
     */
    drEvents: { stored: number; resent: number; unmeasurable: number; refused: number };
  } | null;
};

export class PlatformRole implements Role<PlatformRoleState> {
  readonly name = 'platform' as const;
  private ledger: Ledger | undefined;
  private readings: Readings | undefined;
  private intervals: MeterIntervals | undefined;
  private intervalWriter: GroupCommit<MeterInterval, boolean> | undefined;
  private members: Membership | undefined;
  private trades: TradeReports | undefined;
  private readonly tradeCounts = { reports: 0, tradesStored: 0, resentReports: 0, conflicts: 0, refusedReports: 0 };
  /** Per member: the end (ms) of the last interval written to the readings. */
  private readonly closedUpTo = new Map<string, number>();
  private intervalMs = 900_000;
  private nextPruneMs = 0;
  private intervalsStored = 0;
  private resent = 0;
  private late = 0;
  private stored = 0;
  private notMember = 0;
  private refused = 0;
  /** Trade reports refused and readings not stored, each logged when it begins and when it ends. */
  private readonly problems = new OngoingProblems<'trade-report' | 'meter-reading' | 'settlement' | 'dr-event'>();
  private live: LiveSettlement | undefined;
  private dr: DrSettlement | undefined;
  private readonly drCounts = { stored: 0, resent: 0, unmeasurable: 0, refused: 0 };
  private signer: EnvelopeSigner | undefined;
  private readonly settleCounts = {
    drafted: 0,
    committed: 0,
    disputes: 0,
    signatures: 0,
    refusedSignatures: 0,
    refusedDisputes: 0,
  };
  private settlementIntervalMs = 900_000;
  private nextHeadMs = 0;
  private nextAskAgainMs = 0;
  /** Entries the last published head had: the next one lists those after. */
  private publishedEntries: number | undefined;

  start(ctx: RoleContext): void {
    const config = ctx.config.platform!;
    this.ledger = Ledger.open(config.db, { pageCacheKiB: config.pageCacheMB * 1024 });
    this.members = new Membership(this.ledger.db, undefined, () => ctx.clock.now());
    this.readings = new Readings(this.ledger.db, this.members);
    this.intervals = new MeterIntervals(this.ledger.db);
    const intervals = this.intervals;
    this.intervalWriter = new GroupCommit((group: MeterInterval[]) => intervals.addAll(group));
    this.trades = new TradeReports(this.ledger.db);
    this.intervalMs = config.meteringIntervalS * 1000;
    // Members with intervals still to write to the readings (the platform stopped before it did).
    const since = ctx.clock.now() - config.sampleRetentionH * 3_600_000;
    for (const member of this.intervals.membersSince(since)) this.track(member);
    this.startSettlement(ctx);
    const self = ctx.config.gateway.id;
    // Each interval is stored once by (member, epoch, seq) and by (member, start), so this handler
    // may take messages too old for the replay window: a house resends them after a long outage.
    ctx.transport?.on(
      { cell: '+', cls: 'meter', type: 'energy', target: self },
      ({ envelope, topic }) => {
        if (!config.cells.includes(topic.cell) || this.members?.get(envelope.sender)?.status !== 'active') {
          this.notMember++;
          return;
        }
        const interval: MeterInterval = {
          member: envelope.sender,
          epoch: envelope.epoch,
          seq: envelope.seq,
          fromMs: envelope.body.fromMs,
          toMs: envelope.body.toMs,
          netKWh: envelope.body.netKWh,
          coveredMs: envelope.body.coveredMs,
        };
        // Acknowledged once stored: the intervals of one turn share one transaction (one fsync).
        return this.intervalWriter!.add(interval).then((isNew) => {
          if (!isNew) {
            this.resent++;
            return;
          }
          this.intervalsStored++;
          if (interval.toMs <= (this.closedUpTo.get(interval.member) ?? Number.NEGATIVE_INFINITY)) this.late++;
          this.track(interval.member);
        });
      },
      { idempotent: true },
    );
    for (const cell of config.cells) {
      // A report stored before is taken as a resend (or, with other figures, a conflict that keeps the
      // first), so this handler may take reports too old for the replay window as well: a trader's
      // addressed messages count on through every market round while the platform is away.
      ctx.transport?.on(
        { cell, cls: 'mkt', type: 'trades', target: ctx.config.gateway.id },
        (report) => this.onTradeReport(ctx, report),
        { idempotent: true },
      );
    }
  }

  /**
   * Stores a trader's report of a cleared interval before it is acknowledged. A storage error is
   * thrown, so the report is not taken and its sender sends it again.
   */
  private onTradeReport(ctx: RoleContext, { envelope }: Message<'mkt', 'trades'>): void {
    const report = envelope.body;
    if (this.members?.get(envelope.sender)?.status !== 'active') {
      this.notMember++;
      return;
    }
    const result = this.trades!.add(envelope.sender, report, ctx.clock.now());
    switch (result.outcome) {
      case 'stored':
        this.tradeCounts.reports++;
        this.tradeCounts.tradesStored += result.trades;
        if (this.problems.ended('trade-report', ctx.clock.now())) ctx.log.info('trade reports stored again');
        break;
      case 'resent':
        this.tradeCounts.resentReports++;
        break;
      case 'conflict':
        this.tradeCounts.conflicts++;
        ctx.log.warn(
          { reporter: envelope.sender, interval: report.interval, market: report.market, ...result.trade },
          'a trade reported again with other figures: the first report is kept',
        );
        break;
      case 'refused':
        this.refuseTradeReport(ctx, envelope.sender, result.reason);
        break;
    }
  }

  private refuseTradeReport(ctx: RoleContext, reporter: string, reason: string): void {
    this.tradeCounts.refusedReports++;
    if (this.problems.failed('trade-report', reason, ctx.clock.now()))
      ctx.log.warn({ reporter, reason }, 'trade report refused');
  }

  /** Starts writing a member's intervals to the readings, after its last stored reading. */
  private track(member: string): void {
    if (this.closedUpTo.has(member)) return;
    this.closedUpTo.set(member, this.readings!.lastTime(member, 'net') ?? Number.NEGATIVE_INFINITY);
  }

  tick(scale: TimeScale, ctx: RoleContext): Promise<void> | undefined {
    if (scale !== 'secondary' || !this.intervals) return undefined;
    const now = ctx.clock.now();
    // An interval is written one metering interval after its end: late ones (resends) are in by then.
    const closeUpTo = now - this.intervalMs;
    for (const [member, after] of this.closedUpTo) {
      let last = after;
      for (const row of this.intervals.endedBetween(member, after, closeUpTo, MAX_CLOSES_PER_TICK)) {
        this.store(ctx, member, row.to_ms, row.net_kwh);
        last = row.to_ms;
      }
      this.closedUpTo.set(member, last);
    }
    if (now >= this.nextPruneMs) {
      const platform = ctx.config.platform!;
      this.intervals.prune(now - platform.sampleRetentionH * 3_600_000);
      this.readings!.prune(now - platform.readingRetentionDays * 86_400_000);
      this.nextPruneMs = now + this.intervalMs;
    }
    return this.settle(ctx, now);
  }

  private startSettlement(ctx: RoleContext): void {
    const settlement = ctx.config.settlement;
    const platform = ctx.config.platform!;
    const keyFile = ctx.config.comms.security.keyFile;
    if (!settlement || !ctx.transport) return;
    if (!keyFile) {
      ctx.log.warn(
        'settlement configured but the platform has no key to sign with (comms.security.keyFile): not settling',
      );
      return;
    }
    this.signer = EnvelopeSigner.fromKeyFile(keyFile, ctx.config.gateway.id);
    this.settlementIntervalMs = settlement.intervalMs ?? ctx.config.scheduler.tertiaryMs;
    this.live = new LiveSettlement(this.ledger!, this.members!, this.intervals!, this.trades!, {
      schedule: settlement.schedule,
      intervalMs: this.settlementIntervalMs,
      waitAfterEndMs: (platform.meteringIntervalS + settlement.graceS) * 1000,
      maxReadingWaitMs: settlement.maxReadingWaitS * 1000,
      lookBackMs: platform.sampleRetentionH * 3_600_000,
    });
    const readings = this.readings!;
    const contracts = new Contracts(this.ledger!.db, this.members!);
    this.dr = new DrSettlement(
      this.ledger!,
      this.members!,
      contracts,
      new DrEvents(this.ledger!, contracts, readings),
      this.live,
      {
        intervalMs: this.settlementIntervalMs,
        waitAfterEndMs: (platform.meteringIntervalS + settlement.graceS) * 1000,
        maxReadingWaitMs: settlement.maxReadingWaitS * 1000,
        energyScale:
          settlement.schedule.slotMinutes === undefined
            ? 1
            : (settlement.schedule.slotMinutes * 60_000) / this.settlementIntervalMs,
        lookBackMs: platform.sampleRetentionH * 3_600_000,
      },
    );
    const self = ctx.config.gateway.id;
    // A resent report is recognised by (aggregator, provider, interval), so reports too old for the
    // replay window are taken too (an aggregator's outbox resends them after the platform was away).
    ctx.transport.on(
      { cell: '+', cls: 'dr', type: 'event', target: self },
      ({ envelope }) => {
        const r = this.dr!.report(envelope.sender, envelope.body, ctx.clock.now());
        if (r.outcome === 'resent') this.drCounts.resent++;
        else if (r.outcome === 'unmeasurable') this.drCounts.unmeasurable++;
        else if (r.outcome === 'stored') {
          this.drCounts.stored++;
          if (this.problems.ended('dr-event', ctx.clock.now())) ctx.log.info('DR events stored again');
        } else {
          this.drCounts.refused++;
          if (this.problems.failed('dr-event', r.reason, ctx.clock.now()))
            ctx.log.warn({ aggregator: envelope.sender, ...envelope.body, reason: r.reason }, 'DR event refused');
        }
      },
      { idempotent: true },
    );
    // The signatures of one turn share one transaction (one fsync), like the readings.
    const live = this.live;
    const signatureWriter = new GroupCommit((received: { party: string; body: SettleSignatureBody }[]) =>
      live.signaturesReceived(received, ctx.clock.now()),
    );
    ctx.transport.on({ cell: '+', cls: 'settle', type: 'signature', target: self }, async ({ envelope }) => {
      const r = await signatureWriter.add({ party: envelope.sender, body: envelope.body });
      if (r.outcome === 'refused') {
        this.settleCounts.refusedSignatures++;
        ctx.log.warn(
          { party: envelope.sender, unit: envelope.body.unit, reason: r.reason },
          'settlement signature refused',
        );
        return;
      }
      if (r.outcome === 'resent') return;
      this.settleCounts.signatures++;
      // The party signed this unit after all (a later draft): its dispute is over.
      ctx.alarms?.clear(`settlement-dispute:${envelope.body.unit}:${envelope.sender}`, ctx.clock.now());
      if (r.outcome === 'committed') {
        this.settleCounts.committed++;
        ctx.log.info({ unit: r.unit, ledgerIndex: r.entry.index }, 'settlement committed: signed by every party');
      }
    });
    ctx.transport.on({ cell: '+', cls: 'settle', type: 'dispute', target: self }, ({ envelope }) => {
      const r = this.live!.disputeReceived(envelope.sender, envelope.body, JSON.stringify(envelope), ctx.clock.now());
      if (r.outcome === 'refused') {
        this.settleCounts.refusedDisputes++;
        ctx.log.warn(
          { party: envelope.sender, unit: envelope.body.unit, reason: r.reason },
          'settlement dispute refused',
        );
      } else if (r.outcome === 'stored') {
        this.settleCounts.disputes++;
        ctx.log.warn({ party: envelope.sender, unit: r.unit, lines: envelope.body.lines }, 'settlement disputed');
        const lines = envelope.body.lines;
        ctx.alarms?.raise(
          `settlement-dispute:${r.unit}:${envelope.sender}`,
          {
            kind: 'settlement-dispute',
            severity: 'warning',
            source: envelope.sender,
            text: `${envelope.sender} disputes settlement ${r.unit}: ${lines
              .slice(0, 3)
              .map((l) => `${l.line} draft ${l.draft} against its ${l.own} (${l.reason})`)
              .join('; ')}${lines.length > 3 ? ` and ${lines.length - 3} more lines` : ''}`,
          },
          ctx.clock.now(),
        );
      }
    });
    ctx.transport.on({ cell: '+', cls: 'settle', type: 'head-request', target: self }, ({ envelope }) =>
      this.publishHead(ctx, envelope.body.from, envelope.sender),
    );
  }

  /** Drafts what is due, asks again those that have not answered, and publishes the ledger head. */
  private async settle(ctx: RoleContext, now: number): Promise<void> {
    const live = this.live;
    const transport = ctx.transport;
    if (!live || !transport) return;
    const self = ctx.config.gateway.id;
    const sends: Promise<void>[] = [];
    const send = (unit: string, content: SignedContent, parties: readonly string[]) => {
      for (const party of parties)
        if (party !== self) sends.push(transport.publish('settle', 'draft', { unit, content }, { target: party }));
    };
    try {
      const signOwn = (content: SignedContent) => this.signer!.signDocument(content);
      const made = [
        ...live.draftDue(now, signOwn),
        ...(this.dr?.draftDue(now, { id: self, publicKey: this.signer!.publicKey }, signOwn, signOwn) ?? []),
      ];
      this.settleCounts.drafted += made.length;
      for (const d of made)
        send(
          d.unit,
          d.content,
          d.content.parties.map((p) => p.id),
        );
      // A party away longer than the outbox keeps a draft, or a platform restarted, is asked again.
      if (now >= this.nextAskAgainMs) {
        if (this.nextAskAgainMs > 0)
          for (const u of live.unsigned(now - ctx.config.platform!.sampleRetentionH * 3_600_000))
            send(u.unit, u.content, u.missing);
        this.nextAskAgainMs = now + 10 * this.settlementIntervalMs;
      }
      if (this.problems.ended('settlement', now)) ctx.log.info('settlement drafts made again');
    } catch (err) {
      const message = errorMessage(err);
      if (this.problems.failed('settlement', message, now)) ctx.log.warn({ err: message }, 'settlement not drafted');
    }
    if (now >= this.nextHeadMs) {
      this.nextHeadMs = now + this.settlementIntervalMs;
      sends.push(this.publishHead(ctx, this.publishedEntries));
    }
    await Promise.all(sends);
  }

  /** The ledger head with the entries from `from` on (all new ones when broadcast), to the cells or to one gateway. */
  private publishHead(ctx: RoleContext, from: number | undefined, target?: string): Promise<void> {
    const head = this.ledger!.head();
    const start = Math.min(from ?? head.entries, head.entries);
    const recent = this.live!.headEntries(start);
    if (target === undefined) this.publishedEntries = start + recent.length;
    return ctx.transport!.publish(
      'settle',
      'head',
      { entries: head.entries, hash: head.hash, from: start, recent },
      target ? { target } : {},
    );
  }

  private store(ctx: RoleContext, member: string, endMs: number, energyKWh: number): void {
    try {
      this.readings!.add({
        readings: [
          { member, meter: 'net', time: new Date(endMs).toISOString(), energyKWh: Number(energyKWh.toFixed(6)) },
        ],
      });
      this.stored++;
      if (this.problems.ended('meter-reading', ctx.clock.now())) ctx.log.info('meter readings stored again');
    } catch (err) {
      this.refused++;
      const message = errorMessage(err);
      if (this.problems.failed('meter-reading', message, ctx.clock.now()))
        ctx.log.warn({ member, err: message }, 'meter reading not stored');
    }
  }

  stop(): void {
    // Intervals waiting for their group are written before the database closes.
    this.intervalWriter?.flush();
    this.ledger?.close();
    this.ledger = undefined;
  }

  state(): PlatformRoleState {
    return {
      metersHeard: this.closedUpTo.size,
      intervalsStored: this.intervalsStored,
      resentIntervals: this.resent,
      lateIntervals: this.late,
      readingsStored: this.stored,
      fromNonMembers: this.notMember,
      refused: this.refused,
      trades: this.tradeCounts,
      settlement: this.live
        ? {
            ...this.settleCounts,
            waiting: { ...this.live.waitingUnits(), ...this.dr?.waitingUnits() },
            ledgerEntries: this.ledger?.head().entries ?? 0,
            drEvents: { ...this.drCounts },
          }
        : null,
    };
  }
}
