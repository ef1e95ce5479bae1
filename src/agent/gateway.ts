import { join } from 'node:path';
import { z } from 'zod';
import { EnvelopeSigner, MembersDirectory } from '../comms/security.js';
import type { Transport } from '../comms/transport.js';
import { readJsonIfPresent, writeFileAtomic } from '../core/atomic-file.js';
import { type Clock, ClockJumpDetector, systemClock } from '../core/clock.js';
import { ErrorCode, errorMessage, P2PError } from '../core/errors.js';
import { componentLogger, type Logger } from '../core/log.js';
import { LogThrottle } from '../core/log-throttle.js';
import { GatewayMetrics } from '../core/metrics.js';
import { OngoingProblems } from '../core/ongoing-problems.js';
import { formatPath } from '../core/validate.js';
import type { Device } from '../drivers/device.js';
import { checkPlausible } from '../drivers/plausibility.js';
import { type Alarm, AlarmBook } from './alarms.js';
import { type GatewayConfig, meteringIntervalMs, rolesOf } from './config.js';
import { exportDeviceReadings } from './device-metrics.js';
import { type PointValue, ProcessImage } from './process-image.js';
import { RoleHandOver } from './roles/hand-over.js';
import { createRole, type RoleStates } from './roles/index.js';
import type { Role, RoleContext } from './roles/role.js';
import { Scheduler, type TimeScale } from './scheduler.js';
import { SettlementParty, type SettlementPartyState } from './settlement/party.js';
import { SettlementRecords } from './settlement/records.js';

export interface GatewayDeps {
  clock?: Clock;
  devices?: Device[];
  transport?: Transport;
  log?: Logger;
  /** Shared with the transport so that its message counters land on the same `/metrics` page. */
  metrics?: GatewayMetrics;
}

export interface GatewayState {
  id: string;
  kind: string;
  cell: string;
  startedAt: number | null;
  /** Each role's status, by role name (only the roles this gateway plays). */
  roles: Partial<RoleStates>;
  devices: Record<
    string,
    { kind: string; backend: string; up: boolean; lastError: string | null; points: Record<string, PointValue> }
  >;
  peers: ReturnType<Transport['peers']>;
  comms: ReturnType<Transport['status']> | null;
  cycles: Record<TimeScale, number>;
  /** As a party to settlements: what it signed and disputed, and the ledger head it checked. */
  settlement?: SettlementPartyState;
  /** What an operator should look at: active alarms first (newest first), then the last cleared ones. */
  alarms: Alarm[];
}

const STATE_FILE = 'gateway-state.json';
/** The state file: each role's saved state by role name; each role checks its own part on restore. */
const SavedGatewayState = z.object({ roles: z.record(z.string(), z.unknown()).optional() });
/** Skipped cycles of one time scale are logged at most this often (the metric counts every one). */
const SKIP_LOG_EVERY_MS = 60_000;

/**
 * One gateway: config → roles → devices and comms → a scheduler with three time scales. `stop()`
 * finishes the cycle in progress, stops the roles, writes what must survive, and closes connections.
 */
export class Gateway {
  readonly metrics: GatewayMetrics;
  /** Raised and cleared by the gateway (devices, peers) and its roles (voltage, market, settlement). */
  readonly alarms = new AlarmBook();
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly roles: Role[];
  private readonly devices: Device[];
  private readonly deviceErrors = new Map<string, string | null>();
  /** Devices failing now, by device id (logged when the outage starts and when it ends). */
  private readonly outages = new OngoingProblems();
  private readonly clockJumps = new ClockJumpDetector();
  /** Per role and time scale, the error its last tick failed with. */
  private readonly tickProblems = new OngoingProblems();
  private readonly skipLog = new LogThrottle(SKIP_LOG_EVERY_MS);
  private readonly persistProblem = new OngoingProblems<'state'>();
  private readonly image: ProcessImage;
  private readonly scheduler: Scheduler;
  private readonly ctx: RoleContext;
  private startedAt: number | null = null;
  private stopping: Promise<void> | undefined;
  private readonly settlementRecords: SettlementRecords | undefined;
  private settlementParty: SettlementParty | undefined;

  constructor(
    readonly config: GatewayConfig,
    private readonly deps: GatewayDeps = {},
  ) {
    this.clock = deps.clock ?? systemClock;
    this.log = deps.log ?? componentLogger('gateway', { gateway: config.gateway.id });
    this.metrics = deps.metrics ?? new GatewayMetrics({ gateway: config.gateway.id });
    this.metrics.addAlarmsMetric(() => this.alarms.activeCounts());
    const handOver = new RoleHandOver();
    this.roles = rolesOf(config).map((name) => createRole(name, handOver));
    this.devices = deps.devices ?? [];
    this.image = new ProcessImage(config.staleAfterCycles * config.scheduler.primaryMs);
    if (config.settlement && !rolesOf(config).includes('platform')) {
      const intervalMs = meteringIntervalMs(config);
      const { slotMinutes } = config.settlement.schedule;
      this.settlementRecords = new SettlementRecords(
        config.stateDir,
        config.gateway.id,
        intervalMs,
        slotMinutes === undefined ? 1 : (slotMinutes * 60_000) / intervalMs,
        this.log.child({ component: 'settlement' }),
        this.clock.now(),
      );
    }
    this.ctx = {
      config,
      clock: this.clock,
      log: this.log,
      metrics: this.metrics,
      transport: deps.transport,
      image: () => this.image.snapshot(),
      devices: this.devices,
      shared: handOver.view,
      settlement: this.settlementRecords,
      alarms: this.alarms,
    };
    this.scheduler = new Scheduler(this.clock, config.scheduler, {
      runCycle: (scale) => this.runCycle(scale),
      onCycleDone: (scale, ms) => this.metrics.cycleDuration.observe({ scale }, ms / 1000),
      onOverrun: (scale) => this.cycleSkipped(scale),
      onError: (scale, err) => this.log.error({ scale, err: errorMessage(err) }, 'cycle failed'),
    });
  }

  /**
   * Counts a skipped cycle, and logs it at most once a minute per time scale with how many were
   * skipped since the last line: a machine that cannot keep up skips cycles by the thousand, and a
   * line each would bury every other event in the log.
   */
  private cycleSkipped(scale: TimeScale): void {
    this.metrics.cycleOverruns.inc({ scale });
    const skipped = this.skipLog.take(scale, this.clock.now());
    if (skipped > 0) this.log.warn({ scale, skipped }, 'cycle skipped: the previous one is still running');
  }

  private get stateFile(): string {
    return join(this.config.stateDir, this.config.gateway.id, STATE_FILE);
  }

  private readSavedState(): z.infer<typeof SavedGatewayState> | undefined {
    const data = readJsonIfPresent(this.stateFile);
    if (data === undefined) return undefined;
    const parsed = SavedGatewayState.safeParse(data);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    throw new P2PError(
      ErrorCode.storage,
      `${this.stateFile}: ${formatPath(issue?.path ?? [])}: ${issue?.message ?? 'not a gateway state'}`,
      {
        component: 'gateway',
        file: this.stateFile,
        hint: 'the file was changed by hand or by another program; move it away to start with fresh state',
      },
    );
  }

  async start(): Promise<void> {
    const saved = this.readSavedState();
    for (const role of this.roles) {
      const data = saved?.roles?.[role.name];
      if (data !== undefined) role.restore?.(data);
    }
    if (this.deps.transport) await this.deps.transport.start();
    this.startSettlementParty();
    for (const role of this.roles) await role.start?.(this.ctx);
    this.startedAt = this.clock.now();
    this.log.info(
      {
        roles: this.roles.map((r) => r.name),
        devices: this.devices.map((d) => `${d.id} (${d.kind} via ${d.backend})`),
        comms: this.deps.transport?.status() ?? 'none',
      },
      'gateway started',
    );
    await this.scheduler.runNow('primary');
    this.scheduler.start();
  }

  /**
   * Answers the platform's settlement drafts when the gateway has a schedule to check them against,
   * a platform to answer and a key to sign with.
   */
  private startSettlementParty(): void {
    const { settlement, comms, gateway, stateDir } = this.config;
    const platform = comms.reliability.platform;
    const keyFile = comms.security.keyFile;
    if (!settlement || !this.settlementRecords) return;
    if (!this.deps.transport || !platform || !keyFile) {
      const missing = !this.deps.transport
        ? 'comms'
        : !platform
          ? 'comms.reliability.platform'
          : 'comms.security.keyFile';
      this.log.warn({ missing }, 'settlement configured, but this gateway cannot answer drafts without it');
      return;
    }
    const signer = EnvelopeSigner.fromKeyFile(keyFile, gateway.id);
    const { membersFile, operatorPublicKey } = comms.security;
    const members =
      membersFile && operatorPublicKey ? MembersDirectory.load(membersFile, operatorPublicKey) : undefined;
    this.settlementParty = new SettlementParty({
      gatewayId: gateway.id,
      platform,
      schedule: settlement.schedule,
      records: this.settlementRecords,
      transport: this.deps.transport,
      clock: this.clock,
      log: this.log.child({ component: 'settlement' }),
      stateDir,
      alarms: this.alarms,
      keepSignedDays: settlement.keepSignedDays,
      sign: (document) => signer.signDocument(document),
      ...(members
        ? {
            memberKey: (id: string) => {
              members.reloadIfChanged();
              return members.active(id)?.member.publicKey;
            },
          }
        : {}),
    });
    this.settlementParty.start();
  }

  /** Idempotent: a second signal during shutdown waits for the same stop. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.log.info('gateway stopping');
    await this.scheduler.stop();
    for (const role of this.roles) {
      try {
        await role.stop?.(this.ctx);
      } catch (err) {
        this.log.error({ role: role.name, err: errorMessage(err) }, 'role failed to stop');
      }
    }
    this.persist();
    await this.deps.transport?.close().catch((err) => this.log.warn({ err: errorMessage(err) }, 'comms close failed'));
    await Promise.allSettled(this.devices.map((d) => d.close()));
    this.log.info({ cycles: this.scheduler.cycles }, 'gateway stopped');
  }

  /** Saves the roles' state (a full disk is logged once, and its end once). */
  private persist(): void {
    const roles: Record<string, unknown> = {};
    for (const role of this.roles) if (role.persist) roles[role.name] = role.persist();
    try {
      writeFileAtomic(this.stateFile, `${JSON.stringify({ savedAt: this.clock.now(), roles }, null, 2)}\n`);
      if (this.persistProblem.ended('state')) this.log.info('state saved again');
    } catch (err) {
      const message = errorMessage(err);
      if (this.persistProblem.failed('state', message)) this.log.error({ err: message }, 'state not saved');
    }
  }

  private async runCycle(scale: TimeScale): Promise<void> {
    if (scale === 'primary') {
      this.watchClock();
      await this.pollDevices();
      this.watchPeers();
    }
    for (const role of this.roles) {
      const key = `${role.name}/${scale}`;
      try {
        await role.tick(scale, this.ctx);
        if (this.tickProblems.ended(key)) this.log.info({ role: role.name, scale }, 'role ticks again');
      } catch (err) {
        // Once per problem: a full disk or a lost device would otherwise log every cycle.
        const message = errorMessage(err);
        if (this.tickProblems.failed(key, message))
          this.log.error({ role: role.name, scale, err: message }, 'role tick failed');
      }
    }
    // A checkpoint every market interval: a gateway killed (SIGKILL, power cut) restarts from at most
    // one interval ago, and its voltage agent knows it ran before (push-sum must not count it twice).
    if (scale === 'tertiary' && this.roles.some((r) => r.persist)) this.persist();
  }

  /**
   * Logs a step of the wall clock once, when it happens. The scheduler's timers run on the monotonic
   * clock and go on; what the wall clock stamps (messages, readings, market intervals) follows it:
   * peers refuse messages stamped outside their time window until the clocks agree again.
   */
  private watchClock(): void {
    const mono = this.clock.monotonicMs?.();
    if (mono === undefined) return;
    const jumpMs = this.clockJumps.observe(this.clock.now(), mono);
    if (jumpMs === 0) return;
    this.metrics.clockJumps.inc();
    this.log.warn({ jumpS: Math.round(jumpMs / 100) / 10 }, 'wall clock jumped');
  }

  /**
   * Polls every device into the process image. A reply that fails, or that holds a value no device
   * could report (`checkPlausible`), marks the device's points bad: nothing acts on them. An outage
   * is logged once, when it starts (a device sending changing garbage fails with changing messages),
   * and once when it ends; every failed poll counts in `p2p_device_errors_total`.
   */
  private async pollDevices(): Promise<void> {
    const now = this.clock.now();
    const results = await Promise.allSettled(
      this.devices.map(async (d) => {
        const reading = await d.poll(now);
        checkPlausible(d.id, reading, d.inverter?.ratedW);
        return reading;
      }),
    );
    results.forEach((result, i) => {
      const device = this.devices[i] as Device;
      if (result.status === 'fulfilled') {
        for (const [point, value] of Object.entries(result.value))
          this.image.write(`${device.id}.${point}`, value, now);
        const outage = this.outages.ended(device.id, now);
        this.alarms.clear(`device-down:${device.id}`, now);
        if (outage)
          this.log.info(
            { device: device.id, downS: outage.durationMs / 1000, failedPolls: outage.failures },
            'device answers again',
          );
        this.deviceErrors.set(device.id, null);
      } else {
        const message = errorMessage(result.reason);
        this.image.markDeviceBad(device.id);
        const news = this.outages.failed(device.id, message, now);
        if (news) this.raiseDeviceDown(device, message, now);
        if (news === 'began')
          this.log.warn({ device: device.id, err: message }, 'device not answering: its values are not used');
        else if (news === 'changed') this.log.debug({ device: device.id, err: message }, 'device fault changed');
        this.deviceErrors.set(device.id, message);
        this.metrics.deviceErrors.inc({ device: device.id });
      }
      this.metrics.deviceUp.set({ device: device.id }, result.status === 'fulfilled' ? 1 : 0);
    });
    exportDeviceReadings(this.metrics, this.config.devices, this.image.freeze(now));
  }

  private raiseDeviceDown(device: Device, message: string, now: number): void {
    this.alarms.raise(
      `device-down:${device.id}`,
      {
        kind: 'device-down',
        severity: 'warning',
        source: device.id,
        text: `${device.kind} ${device.id} (${device.backend}) not answering: ${message}; its values are not used`,
      },
      now,
    );
  }

  /**
   * Raises `peer-lost` for a peer this gateway needs (its cell's transformer gateway, the market
   * neighbours of its traders, the platform) while presence says it is offline; clears it when the
   * peer is back. A peer never seen is not lost: presence only knows peers that announced themselves.
   */
  private watchPeers(): void {
    const transport = this.deps.transport;
    if (!transport) return;
    const now = this.clock.now();
    for (const peer of transport.peers()) {
      const id = `peer-lost:${peer.id}`;
      const why = this.needs(peer);
      if (!peer.online && why)
        this.alarms.raise(
          id,
          {
            kind: 'peer-lost',
            severity: 'warning',
            source: peer.id,
            text: `${why} ${peer.id} offline for ${Math.round((now - peer.since) / 1000)} s (since ${new Date(peer.since).toISOString()})`,
          },
          now,
        );
      else this.alarms.clear(id, now);
    }
  }

  /** Why this gateway needs `peer` (a phrase naming its part), or undefined when it does not. */
  private needs(peer: { id: string; cell: string; role?: string }): string | undefined {
    const { gateway, market, upperMarket, comms } = this.config;
    if (peer.id === comms.reliability.platform) return 'platform';
    if (market?.neighbours.some((n) => n.peer === peer.id)) return "the cell market's neighbour";
    if (upperMarket?.neighbours.some((n) => n.peer === peer.id)) return 'the upper market neighbour';
    if (gateway.kind !== 'transformer' && peer.cell === gateway.cell && peer.role === 'transformer')
      return "the cell's transformer gateway (its MG trader)";
    return undefined;
  }

  /** When the control loop last completed a cycle (null before the first); see watchdog.ts. */
  lastCycleAt(): number | null {
    return this.scheduler.lastCycleAt;
  }

  state(): GatewayState {
    const byDevice = this.image.snapshot().byDevice();
    return {
      id: this.config.gateway.id,
      kind: this.config.gateway.kind,
      cell: this.config.gateway.cell,
      startedAt: this.startedAt,
      // createRole builds each role under its own name, so a name's state is that role's type.
      roles: Object.fromEntries(this.roles.map((r) => [r.name, r.state()])) as Partial<RoleStates>,
      devices: Object.fromEntries(
        this.devices.map((d) => [
          d.id,
          {
            kind: d.kind,
            backend: d.backend,
            up: this.deviceErrors.get(d.id) === null,
            lastError: this.deviceErrors.get(d.id) ?? null,
            points: byDevice[d.id] ?? {},
          },
        ]),
      ),
      peers: this.deps.transport?.peers() ?? [],
      comms: this.deps.transport?.status() ?? null,
      cycles: { ...this.scheduler.cycles },
      ...(this.settlementParty ? { settlement: this.settlementParty.state() } : {}),
      alarms: this.alarms.list(),
    };
  }
}
