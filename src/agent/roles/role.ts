import type { Transport } from '../../comms/transport.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/log.js';
import type { GatewayMetrics } from '../../core/metrics.js';
import type { Device } from '../../drivers/device.js';
import type { AlarmBook } from '../alarms.js';
import type { GatewayConfig, RoleName } from '../config.js';
import type { ProcessImageSnapshot } from '../process-image.js';
import type { TimeScale } from '../scheduler.js';
import type { SettlementRecorder } from '../settlement/records.js';
import type { HandOverView } from './hand-over.js';

/** What a role may use: everything is handed in, so roles run the same on a gateway and in simulation. */
export interface RoleContext {
  readonly config: GatewayConfig;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: GatewayMetrics;
  /** Absent when the gateway runs without comms (`comms.transport: none`). */
  readonly transport: Transport | undefined;
  /** The process image frozen at the start of the current primary cycle. */
  image(): ProcessImageSnapshot;
  /** The gateway's devices, for roles that write setpoints through their capabilities. */
  readonly devices?: readonly Device[];
  /**
   * What roles of the same gateway hand each other, read-only (the coupling agent's limits to the MG
   * trader, the cell's leftover back); each slot's one writer holds it from `createRole`.
   */
  readonly shared: HandOverView;
  /** Where roles record what they measured and agreed, for the gateway's check of its settlements (with `settlement` configured). */
  readonly settlement?: SettlementRecorder | undefined;
  /** The gateway's alarms, which roles raise and clear where they see a condition begin and end. */
  readonly alarms?: AlarmBook;
}

/**
 * One job of a gateway (prosumer, voltage agent, MG trader, ...). The runtime calls `tick` on each
 * time scale; a role ignores the scales it has no work on.
 */
export interface Role<State extends Record<string, unknown> = Record<string, unknown>> {
  readonly name: RoleName;
  start?(ctx: RoleContext): Promise<void> | void;
  tick(scale: TimeScale, ctx: RoleContext): Promise<void> | void;
  stop?(ctx: RoleContext): Promise<void> | void;
  /** For the status page: plain JSON. */
  state(): State;
  /** State that must survive a restart (written atomically at stop). */
  persist?(): unknown;
  restore?(saved: unknown): void;
}
