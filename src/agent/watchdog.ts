import { spawn } from 'node:child_process';
import type { Clock, TimerHandle } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { OngoingProblems } from '../core/ongoing-problems.js';
import type { GatewayState } from './gateway.js';

/**
 * The service-manager side of a gateway under systemd (`Type=notify`, `WatchdogSec=`): READY=1 once
 * the gateway has started, WATCHDOG=1 every half watchdog period while the control loop completes
 * cycles, a short STATUS= line, and STOPPING=1 on shutdown (sd_notify(3)).
 *
 * Heartbeats come from a timer on the event loop and only while the scheduler's last completed cycle
 * is recent, so a blocked event loop and a control cycle that never finishes both stop them, and
 * systemd kills and restarts the service one watchdog period later (`Restart=on-watchdog`).
 *
 * Without NOTIFY_SOCKET (not under systemd, or `Type=simple`) nothing is built and nothing runs.
 */

/** Assignments of the notify protocol that the gateway sends. */
export type NotifyFields = Partial<Record<'READY' | 'WATCHDOG' | 'STATUS' | 'STOPPING', string>>;

/** Delivers one notify datagram; resolves when it has been handed over (never rejects). */
export type NotifySend = (fields: NotifyFields) => Promise<void>;

export interface SystemdEnv {
  /** NOTIFY_SOCKET: a path or an abstract socket (`@name`). */
  socket: string;
  /** WatchdogSec in ms, when the watchdog is on and meant for this process (WATCHDOG_PID). */
  watchdogMs: number | undefined;
}

/** Reads what systemd passes to a notify service, as sd_watchdog_enabled(3) does; undefined when not under it. */
export function systemdEnv(env: NodeJS.ProcessEnv, pid: number): SystemdEnv | undefined {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return undefined;
  const usec = Number(env.WATCHDOG_USEC);
  const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === pid;
  const watchdogMs = Number.isSafeInteger(usec) && usec > 0 && forUs ? usec / 1000 : undefined;
  return { socket, watchdogMs };
}

/** Each notification as `systemd-notify KEY=VALUE...`: one short-lived process per message. */
export function notifyArgs(fields: NotifyFields): string[] {
  return Object.entries(fields).map(([k, v]) => `${k}=${String(v).replace(/\n/g, ' ')}`);
}

/**
 * Sends through `systemd-notify` (package systemd, on every systemd system): Node has no unix
 * datagram sockets without a native module. systemd-notify waits for the manager to have read the
 * message (sd_notify_barrier), so the message is attributed to the service; the unit needs
 * `NotifyAccess=all` because the sender is a child, not the main process. About 10 ms per message.
 * A notification still on its way when the next heartbeat falls due makes the heartbeat wait.
 */
export function systemdNotifySender(
  socket: string,
  log: Logger,
  options: { command?: string; timeoutMs?: number } = {},
): NotifySend {
  const command = options.command ?? 'systemd-notify';
  const timeoutMs = options.timeoutMs ?? 5000;
  let broken = false;
  return (fields) =>
    new Promise<void>((resolve) => {
      if (broken) return resolve();
      const child = spawn(command, notifyArgs(fields), {
        env: { ...process.env, NOTIFY_SOCKET: socket },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr?.on('data', (d) => {
        stderr += d;
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        broken = true;
        log.error({ err: errorMessage(err), command }, 'cannot notify systemd: is the systemd package installed?');
        resolve();
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (code !== 0) log.warn({ code, signal, stderr: stderr.trim(), fields }, 'systemd notification failed');
        resolve();
      });
    });
}

export interface Health {
  /** The control loop completes cycles: heartbeats go on. */
  ok: boolean;
  /** One short line for `systemctl status` (STATUS=). */
  status: string;
}

/** Healthy while the last completed control cycle is at most `stallAfterMs` old. */
export function controlLoopHealth(
  lastCycleAt: number | null,
  now: number,
  stallAfterMs: number,
  summary: string,
): Health {
  if (lastCycleAt === null) return { ok: false, status: `starting: no control cycle yet; ${summary}` };
  const ageMs = now - lastCycleAt;
  if (ageMs > stallAfterMs)
    return { ok: false, status: `stalled: no control cycle for ${Math.round(ageMs / 1000)} s; ${summary}` };
  return { ok: true, status: `running; ${summary}` };
}

/**
 * How long the control loop may go without completing a cycle before the heartbeats stop: five
 * primary periods, and never less than the watchdog period itself (so a slow Modbus poll does not
 * cost a restart). A stalled gateway is restarted at most `stallAfterMs + watchdogMs` after its last cycle.
 */
export function stallAfterMs(primaryMs: number, watchdogMs: number): number {
  return Math.max(5 * primaryMs, watchdogMs);
}

export interface ServiceWatchdogOptions {
  clock: Clock;
  send: NotifySend;
  /** WatchdogSec in ms; heartbeats every half of it. Undefined: READY, STATUS and STOPPING only. */
  watchdogMs?: number | undefined;
  health(): Health;
  log: Logger;
}

export class ServiceWatchdog {
  private timer: TimerHandle | undefined;
  private lastStatus = '';
  /** A stalled control loop, logged when it stalls and when it runs again. */
  private readonly stall = new OngoingProblems<'control loop'>();
  private stopped = false;
  /** The notification in flight; the next waits for it, so they arrive in order. */
  private sending: Promise<void> = Promise.resolve();

  constructor(private readonly options: ServiceWatchdogOptions) {}

  /** READY=1 with the first status line, then heartbeats every half watchdog period. */
  ready(): Promise<void> {
    const health = this.options.health();
    this.lastStatus = health.status;
    const sent = this.send({ READY: '1', STATUS: health.status });
    if (this.options.watchdogMs !== undefined) {
      this.options.log.info({ watchdogMs: this.options.watchdogMs }, 'systemd watchdog on');
      this.arm();
    }
    return sent;
  }

  /** STOPPING=1: systemd shows "deactivating" and no longer expects heartbeats. */
  stopping(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    return this.send({ STOPPING: '1', STATUS: 'stopping: finishing the cycle, saving state' });
  }

  private arm(): void {
    const intervalMs = Math.max(1, Math.floor((this.options.watchdogMs ?? 0) / 2));
    this.timer = this.options.clock.setTimeout(() => {
      if (this.stopped) return;
      this.beat();
      this.arm();
    }, intervalMs);
  }

  private beat(): void {
    const health = this.options.health();
    const fields: NotifyFields = {};
    if (health.ok) {
      fields.WATCHDOG = '1';
      if (this.stall.ended('control loop'))
        this.options.log.info({ status: health.status }, 'control loop running again');
    } else if (this.stall.failed('control loop', health.status) === 'began') {
      this.options.log.error({ status: health.status }, 'control loop stalled: watchdog heartbeats stop');
    }
    if (health.status !== this.lastStatus) fields.STATUS = health.status;
    this.lastStatus = health.status;
    if (Object.keys(fields).length > 0) void this.send(fields);
  }

  private send(fields: NotifyFields): Promise<void> {
    this.sending = this.sending.then(() => this.options.send(fields));
    return this.sending;
  }
}

/** The part of a gateway the watchdog reads. */
export interface WatchedGateway {
  readonly config: { scheduler: { primaryMs: number } };
  lastCycleAt(): number | null;
  state(): Pick<GatewayState, 'devices' | 'comms'>;
}

/** `2/3 devices up, comms connected`: what `systemctl status` shows after "running;". */
export function gatewaySummary(state: Pick<GatewayState, 'devices' | 'comms'>): string {
  const devices = Object.values(state.devices);
  const up = devices.filter((d) => d.up).length;
  const comms = state.comms === null ? 'no comms' : `comms ${state.comms.connected ? 'connected' : 'down'}`;
  return `${up}/${devices.length} devices up, ${comms}`;
}

/**
 * The watchdog of a gateway run by `p2p-edge run` under systemd, or undefined (nothing to do) when
 * NOTIFY_SOCKET is unset. `send` is for tests; the default spawns `systemd-notify`.
 */
export function gatewayWatchdog(
  gateway: WatchedGateway,
  deps: { clock: Clock; log: Logger; env?: NodeJS.ProcessEnv; pid?: number; send?: NotifySend },
): ServiceWatchdog | undefined {
  const sd = systemdEnv(deps.env ?? process.env, deps.pid ?? process.pid);
  if (!sd) return undefined;
  const stallMs = stallAfterMs(gateway.config.scheduler.primaryMs, sd.watchdogMs ?? 0);
  return new ServiceWatchdog({
    clock: deps.clock,
    log: deps.log,
    watchdogMs: sd.watchdogMs,
    send: deps.send ?? systemdNotifySender(sd.socket, deps.log),
    health: () => controlLoopHealth(gateway.lastCycleAt(), deps.clock.now(), stallMs, gatewaySummary(gateway.state())),
  });
}
