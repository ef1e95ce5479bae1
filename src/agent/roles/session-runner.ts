import type { PriceBody } from '../../comms/messages/market.js';
import type { Message } from '../../comms/transport.js';
import { type MarketSession, rolledPrices } from '../../trading/session.js';
import type { RoleContext } from './role.js';

/** Copies of the final price sent in the last round before a session's deadline (a tenth lost: one in a thousand misses all). */
const FINAL_COPIES = 3;
/**
 * A finished trader repeats its final price while a neighbour was heard within this many rounds: that
 * one is still stepping (it has not heard the trader settled). Several rounds, so that a few of its
 * messages lost in a row do not stop the repeats (a third lost: one in 240 loses five in a row).
 */
const HEARD_WITHIN_ROUNDS = 5;
/** Messages kept for sessions not started yet (a few rounds of a few neighbours). */
const MAX_EARLY_MESSAGES = 64;

/** The market's price rounds: `price` in a cell's market, `price-up` one level up. */
export type PriceMessageType = 'price' | 'price-up';

/**
 * Runs market sessions (Algorithm 1) of one trader with its neighbours over the transport: sends the
 * round's prices, waits until every neighbour's price of the round is in (or `roundMs`), steps. The
 * MG trader uses it for its cell's market (message type `price`), the coupling agent for the level
 * above (type `price-up`), so the two never take each other's messages.
 */
export class SessionRunner {
  private session: MarketSession | undefined;
  private wakeRound: (() => void) | undefined;
  private stopped = false;
  /** When a neighbour's price of a session last came in: a neighbour still sending has not finished. */
  private lastHeard: { session: string; atMs: number } | undefined;
  /**
   * Messages of a session this trader has not started yet: a neighbour whose own market cleared a
   * little earlier opens the session first. Bounded; the oldest go first.
   */
  private readonly early: PriceBody[] = [];

  constructor(
    private readonly ctx: RoleContext,
    private readonly messageType: PriceMessageType,
  ) {
    // The catalogue takes only a price whose `from` and `to` are the topic's sender and target.
    ctx.transport?.on({ cell: '+', cls: 'mkt', type: messageType, target: ctx.config.gateway.id }, (m) =>
      this.onPrice(m),
    );
  }

  private onPrice({ envelope }: Message<'mkt', PriceMessageType>): void {
    const body = envelope.body;
    this.lastHeard = { session: body.session, atMs: this.ctx.clock.now() };
    if (this.session?.sessionId !== body.session) {
      this.early.push(body);
      if (this.early.length > MAX_EARLY_MESSAGES) this.early.shift();
      return;
    }
    this.session.receive(body);
    if (this.session.roundComplete()) this.wakeRound?.();
  }

  /**
   * Runs the session to its end: settled with every neighbour, out of rounds, stopped, or at
   * `deadlineMs` (clock time), so that a session never runs into the next market interval.
   *
   * A trader acts on the session only where each neighbour's last message said it had settled too
   * (`MarketSession.outcome()`), so both ends of a link must see each other's last word:
   * - Still stepping one round before the deadline, it stops stepping and spends that round repeating
   *   its final price and flag (FINAL_COPIES times), taking the neighbours' own final ones; both ends
   *   then decide on the same pair of flags unless every copy of one was lost.
   * - Finished early (it and its neighbours settled), it returns at once and keeps repeating its final
   *   message each round in the background while a neighbour is still sending (that one has not yet
   *   heard it has settled), up to the deadline.
   */
  async run(session: MarketSession, roundMs: number, deadlineMs = Number.POSITIVE_INFINITY): Promise<void> {
    const transport = this.ctx.transport;
    if (!transport) return;
    this.session = session;
    for (const m of this.early) if (m.session === session.sessionId) session.receive(m);
    this.early.length = 0;
    // A round's price means nothing after a restart (the session ends with the process): not on disk.
    const sendPrices = () =>
      Promise.all(
        session.outbox().map((m) => transport.publish('mkt', this.messageType, m, { target: m.to, persist: false })),
      );
    const clock = this.ctx.clock;
    const closingAtMs = deadlineMs - roundMs;
    while (!session.done() && !this.stopped && clock.now() < closingAtMs) {
      await sendPrices();
      await this.waitForRound(session, Math.max(0, Math.min(roundMs, closingAtMs - clock.now())));
      session.step();
    }
    if (session.neighbours.length === 0) return;
    if (session.done() || this.stopped) {
      session.close();
      await sendPrices();
      void this.repeatWhileHeard(session.sessionId, sendPrices, roundMs, deadlineMs);
      return;
    }
    const gapMs = Math.max(0, deadlineMs - clock.now()) / FINAL_COPIES;
    for (let copy = 0; copy < FINAL_COPIES && !this.stopped; copy++) {
      await sendPrices();
      await this.pause(gapMs);
    }
    session.close();
  }

  /** The final message again each round while a neighbour of `session` still sends, until the deadline. */
  private async repeatWhileHeard(
    session: string,
    sendPrices: () => Promise<unknown>,
    roundMs: number,
    deadlineMs: number,
  ): Promise<void> {
    const clock = this.ctx.clock;
    try {
      // Up to the deadline itself: a neighbour still stepping spends the last round taking final words.
      while (!this.stopped && clock.now() < deadlineMs) {
        await this.pause(Math.min(roundMs, deadlineMs - clock.now()));
        const heard = this.lastHeard;
        if (heard?.session !== session || clock.now() - heard.atMs > HEARD_WITHIN_ROUNDS * roundMs) return;
        await sendPrices();
      }
    } catch (err) {
      this.ctx.log.warn({ session, err: (err as Error).message }, 'market session: repeating the final price failed');
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => this.ctx.clock.setTimeout(resolve, ms));
  }

  /** Resolves when every neighbour's price of this round is in, or after `roundMs`. */
  private waitForRound(session: MarketSession, roundMs: number): Promise<void> {
    if (session.roundComplete()) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.ctx.clock.setTimeout(() => {
        this.wakeRound = undefined;
        resolve();
      }, roundMs);
      this.wakeRound = () => {
        this.ctx.clock.clearTimeout(timer);
        this.wakeRound = undefined;
        resolve();
      };
    });
  }

  stop(): void {
    this.stopped = true;
    this.wakeRound?.();
  }
}

/**
 * Where a session of interval `session` starts its prices: where the last session's got to, moved on
 * by the intervals between the two (`rolledPrices`). Sessions are named by their interval's start (ms).
 */
export function warmStart(
  last: { session: string; reachedPrices: readonly number[] } | undefined,
  session: string,
  intervalMs: number,
): number[] | undefined {
  if (!last) return undefined;
  return rolledPrices(last.reachedPrices, Math.round((Number(session) - Number(last.session)) / intervalMs));
}

/** Sessions a trader's state shows in full: enough for a reader polling every few intervals. */
export const RECENT_SESSIONS = 8;
