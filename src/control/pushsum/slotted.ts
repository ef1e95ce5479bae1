import { type RunningSumMessage, RunningSumPushSum } from './running-sum.js';

/** A running-sum message of one slot's instance. */
export interface SlottedMessage extends RunningSumMessage {
  /** The clock slot (time / slotMs) of the instance it belongs to. */
  slot: number;
}

/**
 * Push-sum that starts afresh every `slotMs` of the (roughly synchronised) clock, so that mass lost
 * for good heals within two slots. Running sums survive lost, duplicated and late messages, but not a
 * node that dies holding mass, or one that restarts and contributes its value again while its old
 * contribution still circulates: the sums stay wrong from then on. Here each slot has an instance of
 * its own, seeded with every node's current contribution; the estimates come from the previous
 * slot's instance, which has had a whole slot to converge, while the current one converges beside it.
 * Messages alternate between the two. Pure: the clock reading is passed in.
 */
export class SlottedPushSum {
  private readonly instances = new Map<number, RunningSumPushSum>();
  /** This node's contribution per key (the sum of its `addValue` deltas). */
  private readonly own = new Map<string, number>();
  private turn = 0;

  /** Slots up to this one only relay mass: this node's value does not enter them. */
  private readonly relayUpTo: number;

  constructor(
    readonly id: string,
    /** Identifies this run of the node (a restart within a slot starts fresh totals). */
    readonly epoch: number,
    readonly slotMs: number,
    /**
     * A node that restarted (its earlier run may have put its value into the instances running now)
     * passes the time it started: it joins the instances of later slots only, and until then relays
     * mass without adding its value a second time.
     */
    restartedAtMs?: number,
  ) {
    this.relayUpTo = restartedAtMs === undefined ? Number.NEGATIVE_INFINITY : Math.floor(restartedAtMs / slotMs);
  }

  private slotOf(now: number): number {
    return Math.floor(now / this.slotMs);
  }

  private instance(slot: number): RunningSumPushSum {
    let inst = this.instances.get(slot);
    if (!inst) {
      const relay = slot <= this.relayUpTo;
      inst = new RunningSumPushSum(this.id, this.epoch, relay ? 0 : 1);
      if (!relay) for (const [key, value] of this.own) inst.addValue(key, value);
      this.instances.set(slot, inst);
    }
    return inst;
  }

  /** Opens the current slot's instance and drops those older than the previous slot. */
  private advance(now: number): number {
    const slot = this.slotOf(now);
    this.instance(slot);
    for (const s of this.instances.keys()) if (s < slot - 1) this.instances.delete(s);
    return slot;
  }

  addValue(key: string, delta: number): void {
    if (delta === 0) return;
    this.own.set(key, (this.own.get(key) ?? 0) + delta);
    for (const [slot, inst] of this.instances) if (slot > this.relayUpTo) inst.addValue(key, delta);
  }

  /** One gossip step: half the mass of one of the live instances (in turn) to one random peer. */
  tick(peers: readonly string[], random: () => number, now: number): SlottedMessage | undefined {
    const slot = this.advance(now);
    const slots = [...this.instances.keys()].filter((s) => s >= slot - 1).sort((a, b) => a - b);
    const chosen = slots[this.turn++ % slots.length]!;
    const m = this.instances.get(chosen)!.tick(peers, random);
    return m ? { ...m, slot: chosen } : undefined;
  }

  /**
   * Takes in a message of the previous, current or next slot (a peer's clock may be a little ahead);
   * older ones are too late to matter.
   */
  receive(m: SlottedMessage, now: number): boolean {
    const slot = this.advance(now);
    if (m.slot < slot - 1 || m.slot > slot + 1) return false;
    return this.instance(m.slot).receive(m);
  }

  /** Estimates of the average value per key, from the oldest live instance (the one that has converged). */
  estimate(now: number): Map<string, number> {
    const slot = this.advance(now);
    const oldest = Math.min(...[...this.instances.keys()].filter((s) => s >= slot - 1));
    return this.instances.get(oldest)!.estimate();
  }

  /** Forgets a peer that left, in every instance. */
  forget(peer: string): void {
    for (const inst of this.instances.values()) inst.forget(peer);
  }
}
