import { ErrorCode, P2PError } from '../core/errors.js';

/**
 * A radial feeder solved with the linearised DistFlow equations (Baran & Wu 1989, without the loss
 * terms): V_child ≈ V_parent − (r·P + x·Q) / V_nom, with P, Q the power flowing down the segment.
 * Accurate to a few tenths of a percent on LV feeders at normal loading; the in-process demo uses it
 * to give every simulated meter a voltage that reacts to the injections of all others.
 */
export interface FeederSegment {
  bus: string;
  parent: string;
  rOhm: number;
  xOhm: number;
}

export interface RadialFeeder {
  slack: string;
  baseKV: number;
  vSlackPu: number;
  segments: FeederSegment[];
}

export class LinDistFlowFeeder {
  /** Buses in an order where every parent comes before its children. */
  private readonly order: FeederSegment[];

  constructor(private readonly feeder: RadialFeeder) {
    const known = new Set([feeder.slack]);
    const pending = [...feeder.segments];
    this.order = [];
    while (pending.length > 0) {
      const i = pending.findIndex((s) => known.has(s.parent));
      if (i < 0) {
        throw new P2PError(ErrorCode.input, `feeder segment to bus ${pending[0]?.bus} is not connected to the slack`, {
          component: 'sim',
        });
      }
      const [seg] = pending.splice(i, 1) as [FeederSegment];
      if (known.has(seg.bus))
        throw new P2PError(ErrorCode.input, `bus ${seg.bus} is fed twice (loop)`, { component: 'sim' });
      known.add(seg.bus);
      this.order.push(seg);
    }
  }

  get buses(): string[] {
    return [this.feeder.slack, ...this.order.map((s) => s.bus)];
  }

  /** Voltages (pu) for net consumption per bus in W and VAr (negative = injection). */
  solve(loadW: ReadonlyMap<string, number>, loadVAr: ReadonlyMap<string, number> = new Map()): Map<string, number> {
    // Power entering each segment = its bus's own load + what its children's segments carry.
    const downstreamP = new Map<string, number>();
    const downstreamQ = new Map<string, number>();
    const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
    for (const seg of [...this.order].reverse()) {
      add(downstreamP, seg.bus, loadW.get(seg.bus) ?? 0);
      add(downstreamQ, seg.bus, loadVAr.get(seg.bus) ?? 0);
      add(downstreamP, seg.parent, downstreamP.get(seg.bus) ?? 0);
      add(downstreamQ, seg.parent, downstreamQ.get(seg.bus) ?? 0);
    }
    const vPhaseV = (this.feeder.baseKV * 1000) / Math.sqrt(3);
    const volts = new Map<string, number>([[this.feeder.slack, this.feeder.vSlackPu]]);
    for (const seg of this.order) {
      // Per phase of a balanced flow: (r·P/3 + x·Q/3) / V_phase volts, in pu of V_phase.
      const p = downstreamP.get(seg.bus) ?? 0;
      const q = downstreamQ.get(seg.bus) ?? 0;
      const dropPu = (seg.rOhm * p + seg.xOhm * q) / 3 / vPhaseV ** 2;
      volts.set(seg.bus, (volts.get(seg.parent) ?? this.feeder.vSlackPu) - dropPu);
    }
    return volts;
  }
}
