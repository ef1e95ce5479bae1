import { stoppingTolerances } from './market.js';
import type { AgentModel, LinkModel, TradeModel, TraderAgent } from './model.js';
import { MgTrader, type PriceMessage, type TraderDecision, type TradingAlgorithm } from './trader.js';

/** A neighbour MG trader and the links to and from it, as a gateway's config describes them. */
export interface NeighbourLink {
  peer: string;
  /** Energy this MG may send to / receive from the peer per slot (kWh); 0 = no link that way. */
  sendCapacityKWh: number;
  receiveCapacityKWh: number;
  a: number;
  b: number;
  efficiency: number;
}

/**
 * The market as one gateway sees it: its own agent with full data, its neighbours as bare ids, and
 * the links between them. This is all an MgTrader needs; other traders' costs never leave their gateway.
 */
export function localTradeModel(
  own: TraderAgent,
  neighbours: NeighbourLink[],
  horizon: number,
  slotHours: number,
): TradeModel {
  const agents: AgentModel[] = [
    { ...own, index: 0, linksIn: [], linksOut: [], neighbours: [] },
    ...neighbours.map((n, i) => ({
      id: n.peer,
      index: i + 1,
      demand: Array(horizon).fill(0),
      generators: [],
      flexibleLoads: [],
      storage: [],
      gridImport: undefined,
      gridExport: undefined,
      linksIn: [],
      linksOut: [],
      neighbours: [0],
    })),
  ];
  const links: LinkModel[] = [];
  const series = (v: number) => Array(horizon).fill(v);
  neighbours.forEach((n, i) => {
    const peer = i + 1;
    const add = (from: number, to: number, capacity: number) => {
      if (capacity <= 0) return;
      const index = links.length;
      links.push({
        index,
        from,
        to,
        a: series(n.a),
        b: series(n.b),
        capacity: series(capacity),
        efficiency: n.efficiency,
      });
      agents[from]!.linksOut.push(index);
      agents[to]!.linksIn.push(index);
    };
    add(0, peer, n.sendCapacityKWh);
    add(peer, 0, n.receiveCapacityKWh);
    agents[0]!.neighbours.push(peer);
  });
  return { horizon, slotHours, agents, links };
}

/**
 * A warm start for a session from the last one's prices: the horizon has moved on by
 * `intervalsElapsed` slots since (one slot per market interval), so the price of slot t now is
 * what was the price of slot t + intervalsElapsed then; the slots new to the horizon take the last
 * price known. Undefined when there is nothing to start from.
 */
export function rolledPrices(last: readonly number[] | undefined, intervalsElapsed: number): number[] | undefined {
  if (!last?.length || !Number.isInteger(intervalsElapsed) || intervalsElapsed < 0) return undefined;
  return last.map((_, t) => last[Math.min(t + intervalsElapsed, last.length - 1)]!);
}

/** Rounds without a message after which a neighbour is taken as gone for the rest of the session. */
export const SILENT_ROUNDS_GONE = 10;

/**
 * What a trader may send to and receive from the neighbour it writes to, kWh per slot, as its own
 * configuration and limits allow. Each end clips a link to the smaller of the two, so that both
 * compute the same flow.
 */
export interface LinkCapacity {
  send: number;
  receive: number;
}

/** A round's message between MG traders of one session. */
export type SessionMessage = PriceMessage & { session: string; settled: boolean; link?: LinkCapacity };

export interface SessionStatus {
  round: number;
  settled: boolean;
  prices: number[];
  maxImbalanceKWh: number;
}

/**
 * One market interval of one MG trader over a real transport. Rounds are paced by the runtime: each
 * round the trader sends its price (and whether it has settled) to every neighbour, waits for their
 * prices of that round or the round time, and steps on whatever arrived (a missing neighbour counts
 * with the last price it sent). The session ends when the trader and all its neighbours report
 * settled, or after `maxRounds`.
 */
export class MarketSession {
  private readonly trader: MgTrader;
  private readonly tol: { imbalanceKWh: number; priceChange: number };
  private readonly inbox = new Map<string, SessionMessage>();
  /**
   * Per neighbour: this trader's own capacities toward it (before agreeing with the neighbour's) and
   * the links of the local model both ways, which take the agreed capacities.
   */
  private readonly ownLinks = new Map<string, LinkCapacity & { out?: LinkModel; back?: LinkModel }>();
  private round = 0;
  private settledRounds = 0;
  /** Consecutive rounds in which a neighbour sent nothing new. */
  private readonly silentRounds = new Map<string, number>();
  private last: TraderDecision | undefined;
  /** Closed: what the neighbours said is fixed; later messages no longer change what the trader acts on. */
  private closed = false;

  constructor(
    readonly sessionId: string,
    readonly model: TradeModel,
    private readonly algorithm: TradingAlgorithm,
    readonly maxRounds: number,
    private readonly tolerance = 1,
    /** The last interval's prices: consecutive intervals clear near each other, so far fewer rounds are needed. */
    startPrices?: readonly number[],
  ) {
    this.trader = new MgTrader(model.agents[0]!, model, algorithm, undefined, startPrices);
    this.tol = stoppingTolerances(model, tolerance);
    model.agents.slice(1).forEach((peer, i) => {
      const out = model.links.find((l) => l.from === 0 && l.to === i + 1);
      const back = model.links.find((l) => l.from === i + 1 && l.to === 0);
      this.ownLinks.set(peer.id, {
        send: out?.capacity[0] ?? 0,
        receive: back?.capacity[0] ?? 0,
        ...(out ? { out } : {}),
        ...(back ? { back } : {}),
      });
    });
  }

  get neighbours(): string[] {
    return this.model.agents.slice(1).map((a) => a.id);
  }

  /** The messages that open the current round. */
  outbox(): SessionMessage[] {
    return this.trader.outbox().map((m) => ({
      ...m,
      round: this.round,
      session: this.sessionId,
      settled: this.settledRounds >= 2,
      link: { send: this.ownLinks.get(m.to)!.send, receive: this.ownLinks.get(m.to)!.receive },
    }));
  }

  receive(m: SessionMessage): void {
    if (m.session !== this.sessionId || this.closed) return;
    const known = this.inbox.get(m.from);
    if (!known || m.round >= known.round) this.inbox.set(m.from, m);
    const own = this.ownLinks.get(m.from);
    if (m.link && own) {
      own.out?.capacity.fill(Math.min(own.send, m.link.receive));
      own.back?.capacity.fill(Math.min(own.receive, m.link.send));
    }
  }

  /** True when every neighbour's message of the current round is in. */
  roundComplete(): boolean {
    return this.neighbours.every((n) => (this.inbox.get(n)?.round ?? -1) >= this.round);
  }

  step(): SessionStatus {
    for (const n of this.neighbours) {
      const fresh = (this.inbox.get(n)?.round ?? -1) >= this.round;
      this.silentRounds.set(n, fresh ? 0 : (this.silentRounds.get(n) ?? 0) + 1);
    }
    this.last = this.trader.stepRound([...this.inbox.values()]);
    this.round++;
    const imbalance = Math.max(...this.last.imbalance.map(Math.abs));
    const ownSettled = imbalance <= this.tol.imbalanceKWh && this.trader.priceChange <= this.tol.priceChange;
    this.settledRounds = ownSettled ? this.settledRounds + 1 : 0;
    return this.status();
  }

  status(): SessionStatus {
    const maxImbalanceKWh = this.last ? Math.max(...this.last.imbalance.map(Math.abs)) : Number.POSITIVE_INFINITY;
    return { round: this.round, settled: this.settledRounds >= 2, prices: this.trader.prices, maxImbalanceKWh };
  }

  /**
   * Done when settled together with every neighbour, or out of rounds. A neighbour that has said it
   * settled, or has been silent for SILENT_ROUNDS_GONE rounds (it finished, crashed or lost its link),
   * no longer holds this trader back: its last price stands.
   */
  done(): boolean {
    if (this.round >= this.maxRounds) return true;
    return (
      this.settledRounds >= 2 &&
      this.neighbours.every(
        (n) => this.inbox.get(n)?.settled === true || (this.silentRounds.get(n) ?? 0) >= SILENT_ROUNDS_GONE,
      )
    );
  }

  get decision(): TraderDecision | undefined {
    return this.last;
  }

  /**
   * Fixes what the neighbours said as the trader ends the session: a neighbour that moves on after
   * this trader has finished (its own flag may drop for a round as this trader's final price reaches
   * it) does not undo an agreement this trader already acts on.
   */
  close(): void {
    this.closed = true;
  }

  /**
   * What the trader acts on once the session has ended: the session itself when it settled and every
   * neighbour's last message said it had settled too, so that both ends of a link act on its flow.
   * Otherwise (out of rounds or time, or a neighbour that did not confirm, e.g. cut off or one round
   * behind at the deadline) nothing is traded with the neighbours: the trader's own devices and grid
   * connection balance its own demand, cleared here to the end from the prices reached. A session
   * without neighbours that was cut short is cleared to the end the same way, so that no demand is
   * left unmet. Neither end knows whether its own last messages arrived, so at the boundary one end
   * may still act on a link the other drops (docs/trading.md).
   */
  outcome(): MarketSession {
    const agreed = this.neighbours.every((n) => this.inbox.get(n)?.settled === true);
    if (this.status().settled && agreed) return this;
    if (this.neighbours.length === 0) {
      // Alone from the start: the same session stepped on to its end needs no message.
      while (!this.done()) this.step();
      return this;
    }
    const own = this.model.agents[0]!;
    const alone = new MarketSession(
      this.sessionId,
      localTradeModel(own, [], this.model.horizon, this.model.slotHours),
      this.algorithm,
      this.maxRounds,
      this.tolerance,
      this.trader.prices,
    );
    while (!alone.done()) alone.step();
    return alone;
  }
}
