import { z } from 'zod';
import type { Delivery } from '../../comms/transport.js';
import type { MarketSession } from '../../trading/session.js';
import type { RoleContext } from './role.js';

const PriceBody = z.object({
  from: z.string(),
  to: z.string(),
  round: z.number().int().nonnegative(),
  price: z.array(z.number()),
  session: z.string(),
  settled: z.boolean(),
});

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

  constructor(
    private readonly ctx: RoleContext,
    private readonly messageType: string,
  ) {
    ctx.transport?.subscribe({ cell: '+', cls: 'mkt', type: messageType, target: ctx.config.gateway.id }, (d) =>
      this.onPrice(d),
    );
  }

  private onPrice({ envelope }: Delivery): void {
    const body = PriceBody.safeParse(envelope.body);
    if (!body.success || body.data.from !== envelope.sender || body.data.to !== this.ctx.config.gateway.id) {
      this.ctx.metrics.messagesRejected.inc({ reason: 'schema' });
      return;
    }
    this.session?.receive(body.data);
    if (this.session?.roundComplete()) this.wakeRound?.();
  }

  /** Runs the session to its end (settled with every neighbour, out of rounds, or stopped). */
  async run(session: MarketSession, roundMs: number): Promise<void> {
    const transport = this.ctx.transport;
    if (!transport) return;
    this.session = session;
    const sendPrices = () =>
      Promise.all(session.outbox().map((m) => transport.publish('mkt', this.messageType, m, { target: m.to })));
    while (!session.done() && !this.stopped) {
      await sendPrices();
      await this.waitForRound(session, roundMs);
      session.step();
    }
    // A last message tells the neighbours this trader has settled, so they need not wait for it.
    await sendPrices();
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

/** Energy exchanged with each neighbour in the first slot: sent (+) or received (−). */
export function exchangeWithNeighbours(session: MarketSession): Record<string, number> {
  const decision = session.decision;
  const model = session.model;
  const exchangeKWh: Record<string, number> = {};
  if (!decision) return exchangeKWh;
  for (const [k, sent] of decision.sent) exchangeKWh[model.agents[model.links[k]!.to]!.id] = sent[0] ?? 0;
  for (const [k, bought] of decision.bought) {
    const peer = model.agents[model.links[k]!.from]!.id;
    exchangeKWh[peer] = (exchangeKWh[peer] ?? 0) - (bought[0] ?? 0);
  }
  return exchangeKWh;
}
