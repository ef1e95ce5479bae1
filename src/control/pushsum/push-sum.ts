/**
 * Push-sum gossip (Kempe, Dobra & Gehrke, FOCS 2003): every node holds a sum s (a vector here) and a
 * weight w; each tick it keeps half and sends half to one random peer; s/w at every node converges to
 * the average of the initial values. Mass is conserved under loss when the sender learns that a
 * message was lost (no acknowledgement) and takes the mass back: `lost()`.
 * Pure: the random source and peer list are injected; no clock, no I/O.
 */
export interface PushSumMessage {
  from: string;
  to: string;
  seq: number;
  s: number[];
  w: number;
}

export class PushSumNode {
  private s: Float64Array;
  private w: number;
  private seq = 0;
  /** Sent messages not yet acknowledged: their mass returns if they are reported lost. */
  private readonly unacked = new Map<number, { s: Float64Array; w: number }>();

  constructor(
    readonly id: string,
    value: readonly number[],
    weight = 1,
  ) {
    this.s = Float64Array.from(value, (v) => v * weight);
    this.w = weight;
  }

  /** Keeps half of its mass and addresses the other half to a peer chosen with `random`. */
  tick(peers: readonly string[], random: () => number): PushSumMessage | undefined {
    const others = peers.filter((p) => p !== this.id);
    if (others.length === 0) return undefined;
    const to = others[Math.floor(random() * others.length)]!;
    const half = this.s.map((v) => v / 2);
    this.s = half.slice();
    this.w /= 2;
    this.seq++;
    this.unacked.set(this.seq, { s: half, w: this.w });
    return { from: this.id, to, seq: this.seq, s: Array.from(half), w: this.w };
  }

  receive(m: PushSumMessage): void {
    for (let i = 0; i < this.s.length; i++) this.s[i]! += m.s[i] ?? 0;
    this.w += m.w;
  }

  acknowledged(seq: number): void {
    this.unacked.delete(seq);
  }

  /** The sender learned the message never arrived: its mass comes back, so the total is conserved. */
  lost(seq: number): void {
    const m = this.unacked.get(seq);
    if (!m) return;
    this.unacked.delete(seq);
    for (let i = 0; i < this.s.length; i++) this.s[i]! += m.s[i]!;
    this.w += m.w;
  }

  /** Adds to the value this node contributes (e.g. a new local measurement), keeping its weight. */
  addValue(delta: readonly number[]): void {
    for (let i = 0; i < this.s.length; i++) this.s[i]! += delta[i] ?? 0;
  }

  /** Leaving gracefully: hands all its mass to a peer, which `receive`s it, so the average stays exact. */
  leave(to: string): PushSumMessage {
    const m = { from: this.id, to, seq: ++this.seq, s: Array.from(this.s), w: this.w };
    this.s = this.s.map(() => 0);
    this.w = 0;
    return m;
  }

  estimate(): number[] {
    return this.w > 0 ? Array.from(this.s, (v) => v / this.w) : Array.from(this.s, () => Number.NaN);
  }

  /** Its share of the total mass, for conservation checks. */
  mass(): { s: number[]; w: number } {
    return { s: Array.from(this.s), w: this.w };
  }
}

export interface GossipRunOptions {
  loss?: number;
  maxRounds?: number;
  /** Stop when every node's estimate is within this relative error of the true average. */
  epsilon?: number;
  random?: () => number;
}

/**
 * Synchronous rounds of push-sum among `nodes` (every node ticks once per round; a lost message is
 * reported to its sender). Returns the rounds needed to reach `epsilon` at every node, or maxRounds.
 */
export function gossipUntil(
  nodes: PushSumNode[],
  truth: readonly number[],
  options: GossipRunOptions = {},
): { rounds: number; messages: number; maxRelativeError: number } {
  const random = options.random ?? Math.random;
  const loss = options.loss ?? 0;
  const epsilon = options.epsilon ?? 1e-3;
  const maxRounds = options.maxRounds ?? 1000;
  const ids = nodes.map((n) => n.id);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const scale = Math.max(...truth.map(Math.abs), 1e-12);
  let messages = 0;
  const error = () => Math.max(...nodes.flatMap((n) => n.estimate().map((e, i) => Math.abs(e - truth[i]!) / scale)));
  let rounds = 0;
  let err = error();
  while (rounds < maxRounds && !(err <= epsilon)) {
    const sent = nodes.map((n) => n.tick(ids, random)).filter((m): m is PushSumMessage => m !== undefined);
    for (const m of sent) {
      messages++;
      if (loss > 0 && random() < loss) byId.get(m.from)!.lost(m.seq);
      else {
        byId.get(m.to)!.receive(m);
        byId.get(m.from)!.acknowledged(m.seq);
      }
    }
    rounds++;
    err = error();
  }
  return { rounds, messages, maxRelativeError: err };
}
