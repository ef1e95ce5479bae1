/**
 * Push-sum for real links, where messages are lost, duplicated and reordered and nobody learns
 * which: the running-sum variant (Hadjicostis, Domínguez-García & Vaidya, "Resilient average
 * consensus", IEEE TAC 2016). A node sends a peer not the mass it hands over but the running total of
 * all mass it ever handed that peer; the receiver adds the difference to the last total it saw from
 * the sender. A lost message's mass arrives with the next one to the same peer, a duplicate or a late
 * one adds nothing, and no acknowledgements are needed. Values are keyed (one entry per key), so
 * entries of agents that join later simply appear.
 * Pure: the peer list and random source are injected; no clock, no I/O.
 */
export interface RunningSumMessage {
  from: string;
  /** Changes when the sender restarts with fresh totals. */
  epoch: number;
  to: string;
  /** The receiver's epoch the totals were started for; absent while the sender has not heard from it. */
  toEpoch?: number;
  /** Grows by one with every message from `from` to `to`; older or repeated ones are ignored. */
  seq: number;
  /** Running totals of the mass `from` has sent to `to`. */
  s: Record<string, number>;
  w: number;
}

interface Totals {
  epoch: number;
  seq: number;
  s: Map<string, number>;
  w: number;
}

const emptyTotals = (epoch = 0): Totals => ({ epoch, seq: 0, s: new Map(), w: 0 });

export class RunningSumPushSum {
  private readonly s = new Map<string, number>();
  private w: number;
  private readonly sent = new Map<string, Totals>();
  private readonly received = new Map<string, Totals>();
  /** Epochs of the peers as last heard from them. */
  private readonly peerEpochs = new Map<string, number>();

  constructor(
    readonly id: string,
    /** Tells peers that this node's totals start afresh (e.g. the start time of the process). */
    readonly epoch: number,
    weight = 1,
  ) {
    this.w = weight;
  }

  /** Adds to the value this node contributes under `key` (e.g. a new multiplier minus the old one). */
  addValue(key: string, delta: number): void {
    if (delta !== 0) this.s.set(key, (this.s.get(key) ?? 0) + delta);
  }

  /** Keeps half of its mass and adds the other half to its running totals for one random peer. */
  tick(peers: readonly string[], random: () => number): RunningSumMessage | undefined {
    const others = peers.filter((p) => p !== this.id);
    if (others.length === 0) return undefined;
    const to = others[Math.floor(random() * others.length)]!;
    const totals = this.sent.get(to) ?? emptyTotals();
    for (const [key, value] of this.s) {
      const half = value / 2;
      this.s.set(key, half);
      totals.s.set(key, (totals.s.get(key) ?? 0) + half);
    }
    this.w /= 2;
    totals.w += this.w;
    totals.seq++;
    this.sent.set(to, totals);
    const toEpoch = this.peerEpochs.get(to);
    return {
      from: this.id,
      epoch: this.epoch,
      to,
      ...(toEpoch !== undefined ? { toEpoch } : {}),
      seq: totals.seq,
      s: Object.fromEntries(totals.s),
      w: totals.w,
    };
  }

  /**
   * Takes in the mass a message carries beyond the last one from the same sender; repeated or older
   * ones add nothing. A sender with a new epoch restarted: its totals count from zero again. A message
   * whose totals were started for an earlier epoch of this node is ignored, and the sender, hearing
   * this node's new epoch, starts new totals for it (the mass in flight to the old one is gone with it).
   */
  receive(m: RunningSumMessage): boolean {
    if (m.to !== this.id) return false;
    const known = this.peerEpochs.get(m.from);
    if (known !== undefined && known !== m.epoch) {
      // The sender restarted: its totals count from zero, and what was sent to its old self died with it.
      this.received.delete(m.from);
      this.sent.delete(m.from);
    }
    this.peerEpochs.set(m.from, m.epoch);
    if (m.toEpoch !== undefined && m.toEpoch !== this.epoch) return false;
    const last = this.received.get(m.from) ?? emptyTotals(m.epoch);
    if (m.seq <= last.seq) return false;
    for (const [key, total] of Object.entries(m.s)) {
      const delta = total - (last.s.get(key) ?? 0);
      if (delta !== 0) this.s.set(key, (this.s.get(key) ?? 0) + delta);
      last.s.set(key, total);
    }
    this.w += m.w - last.w;
    last.w = m.w;
    last.seq = m.seq;
    this.received.set(m.from, last);
    return true;
  }

  /** Current estimates of the average value per key (s/w). */
  estimate(): Map<string, number> {
    const out = new Map<string, number>();
    if (this.w <= 0) return out;
    for (const [key, value] of this.s) out.set(key, value / this.w);
    return out;
  }

  /** The mass it holds now (for conservation checks; mass in flight is the senders' totals minus the receivers'). */
  mass(): { s: Map<string, number>; w: number } {
    return { s: new Map(this.s), w: this.w };
  }

  /** Running totals it has sent to a peer (for conservation checks in tests). */
  sentTo(peer: string): { s: Map<string, number>; w: number } {
    const t = this.sent.get(peer) ?? emptyTotals();
    return { s: new Map(t.s), w: t.w };
  }

  receivedFrom(peer: string): { s: Map<string, number>; w: number } {
    const t = this.received.get(peer) ?? emptyTotals();
    return { s: new Map(t.s), w: t.w };
  }

  /** Forgets a peer that left: what it sent is already counted, what was sent to it is gone with it. */
  forget(peer: string): void {
    this.sent.delete(peer);
    this.received.delete(peer);
  }
}
