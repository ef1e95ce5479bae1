/**
 * The retransmission timeout of the reliable classes, from the measured round trip to the
 * application-level acknowledgement, as TCP computes it (RFC 6298, Jacobson/Karels):
 *
 *   first sample R:  SRTT = R, RTTVAR = R/2
 *   each next R':    RTTVAR = (1 − β)·RTTVAR + β·|SRTT − R'|,  SRTT = (1 − α)·SRTT + α·R'   (α = 1/8, β = 1/4)
 *   RTO = SRTT + max(G, K·RTTVAR), K = 4, clamped to [floor, ceiling]; before any sample RTO = the initial one.
 *
 * Karn's rule: a message that was sent more than once gives no sample (which send an acknowledgement
 * answers is not known). Back-off: each send of a message waits twice as long as the one before, up
 * to the ceiling, with "equal jitter" so that the gateways of a cell do not resend in lockstep (see
 * `timeoutMs`); and, as RFC 6298 (5.5) backs off its timer, a timeout doubles the shared RTO too (at
 * most once per RTO, however many messages timed out together) until a message sent once is
 * acknowledged and gives a sample again. Without that, a receiver slowed down (a loaded platform)
 * would have every new message resent at the old, short RTO, and the resends load it further.
 * Pure: numbers and a `random` in, numbers out.
 */

export interface RetransmitTimerOptions {
  /** RTO before any round trip was measured (`comms.reliability.retryInitialMs`; RFC 6298 says 1 s). */
  initialRtoMs: number;
  /** No message waits longer than this for its acknowledgement before a resend (`retryMaxMs`). */
  maxRtoMs: number;
  /**
   * Lowest RTO, whatever the measurements: see `RTO_FLOOR_MS`. Lowered to `initialRtoMs` when that
   * is smaller (a lab bench asking for faster resends), never above `maxRtoMs`.
   */
  minRtoMs?: number;
  /** G of RFC 6298: how late a timer may fire (the outbox is looked at every this many ms). */
  granularityMs: number;
}

/**
 * The floor of the RTO. RFC 6298 asks 1 s for the open Internet; an acknowledgement here crosses a
 * known path: sender → broker → receiver, the receiver's handlers (the platform stores meter
 * intervals in groups, one SQLite transaction with its fsync per event-loop turn: tens of ms), then
 * receiver → broker → sender. With both ends on LTE that is two LTE round trips (40–100 ms each when
 * the radio is connected, a few hundred more when one has to leave idle first). 300 ms lies above a
 * quiet path's round trip, so that a link measured as fast and steady (RTTVAR near 0) does not
 * resend what is merely in a group commit or waking a radio, and is three times faster to repair a
 * loss than RFC 6298's 1 s; a slow or jittery link raises the RTO above it by itself.
 */
export const RTO_FLOOR_MS = 300;

const ALPHA = 1 / 8;
const BETA = 1 / 4;
const K = 4;

export class RetransmitTimer {
  /** Smoothed round trip (undefined before the first sample). */
  private srtt: number | undefined;
  private rttvar: number | undefined;
  private rto: number;
  private readonly floorMs: number;
  private lastBackOffAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly options: RetransmitTimerOptions,
    private readonly random: () => number = Math.random,
  ) {
    this.floorMs = Math.min(options.minRtoMs ?? RTO_FLOOR_MS, options.initialRtoMs, options.maxRtoMs);
    this.rto = this.clamp(options.initialRtoMs);
  }

  get rtoMs(): number {
    return this.rto;
  }

  get srttMs(): number | undefined {
    return this.srtt;
  }

  get rttvarMs(): number | undefined {
    return this.rttvar;
  }

  /**
   * The round trip of a message, from its send to the acknowledgement that completed it. `resent`:
   * it went out more than once, so Karn's rule leaves the estimate alone. True when it was taken.
   */
  observe(rttMs: number, resent: boolean): boolean {
    if (resent || !Number.isFinite(rttMs) || rttMs < 0) return false;
    if (this.srtt === undefined || this.rttvar === undefined) {
      this.srtt = rttMs;
      this.rttvar = rttMs / 2;
    } else {
      this.rttvar = (1 - BETA) * this.rttvar + BETA * Math.abs(this.srtt - rttMs);
      this.srtt = (1 - ALPHA) * this.srtt + ALPHA * rttMs;
    }
    this.rto = this.clamp(this.srtt + Math.max(this.options.granularityMs, K * this.rttvar));
    return true;
  }

  /**
   * Some message waited its timeout out at `nowMs` (it is resent): the RTO doubles, up to the
   * ceiling, at most once per RTO. The next sample sets it from the measurements again.
   */
  timedOut(nowMs: number): void {
    if (nowMs - this.lastBackOffAt < this.rto) return;
    this.lastBackOffAt = nowMs;
    this.rto = this.clamp(this.rto * 2);
  }

  /**
   * How long the `attempt`-th send of a message (1 = the first) waits for its acknowledgement: equal
   * jitter (as `Backoff`) over the window w = min(ceiling, RTO·2^attempt), i.e. uniform in [w/2, w]:
   * [RTO, 2·RTO] after the first send, doubling with each resend, [ceiling/2, ceiling] once the
   * ceiling is reached; never less than the RTO itself.
   */
  timeoutMs(attempt: number): number {
    const window = Math.min(this.options.maxRtoMs, this.rto * 2 ** Math.min(Math.max(attempt, 1), 30));
    return Math.max(this.rto, Math.round(window / 2 + (this.random() * window) / 2));
  }

  /**
   * Within how long everything pending goes out again after a reconnection: each message at a
   * random instant of [0, min(RTO, 1 s)], so that the gateways of a cell back from a broker restart
   * do not all send their backlog in the same instant.
   */
  spreadMs(): number {
    return Math.round(this.random() * Math.min(this.rto, 1000));
  }

  private clamp(ms: number): number {
    return Math.min(this.options.maxRtoMs, Math.max(this.floorMs, ms));
  }
}
