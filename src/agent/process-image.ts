import type { PointData } from '../drivers/natures.js';

/**
 * The process image: drivers write the latest value of each point as it arrives; once per primary
 * cycle the runtime freezes a snapshot that algorithms read, so values never change within a cycle.
 * A value older than `maxAgeMs` at freeze time is `stale` and reads as absent: never silently reused.
 */
export type Quality = 'good' | 'stale' | 'bad';

export interface PointValue {
  readonly value: PointData;
  /** When the value was measured (ms since epoch). */
  readonly ts: number;
  readonly quality: Quality;
}

export class ProcessImageSnapshot {
  constructor(
    readonly takenAt: number,
    private readonly points: ReadonlyMap<string, PointValue>,
  ) {}

  get(point: string): PointValue | undefined {
    return this.points.get(point);
  }

  /** The value if it is fresh and good, else undefined. */
  number(point: string): number | undefined {
    const p = this.points.get(point);
    return p && p.quality === 'good' && typeof p.value === 'number' ? p.value : undefined;
  }

  entries(): IterableIterator<[string, PointValue]> {
    return this.points.entries();
  }

  /** Points grouped by device (`device.point` names), for the status page. */
  byDevice(): Record<string, Record<string, PointValue>> {
    const out: Record<string, Record<string, PointValue>> = {};
    for (const [name, value] of this.points) {
      const dot = name.indexOf('.');
      const device = dot < 0 ? '' : name.slice(0, dot);
      out[device] ??= {};
      out[device][name.slice(dot + 1)] = value;
    }
    return out;
  }
}

export class ProcessImage {
  private readonly latest = new Map<string, PointValue>();
  private frozen = new ProcessImageSnapshot(0, new Map());

  constructor(private readonly maxAgeMs: number) {}

  write(point: string, value: PointData, ts: number): void {
    this.latest.set(point, { value, ts, quality: 'good' });
  }

  /** Marks every point of a device bad (it failed to answer); the last value stays visible for diagnosis. */
  markDeviceBad(deviceId: string): void {
    const prefix = `${deviceId}.`;
    for (const [name, v] of this.latest) if (name.startsWith(prefix)) this.latest.set(name, { ...v, quality: 'bad' });
  }

  freeze(now: number): ProcessImageSnapshot {
    const points = new Map<string, PointValue>();
    for (const [name, v] of this.latest) {
      points.set(name, v.quality === 'good' && now - v.ts > this.maxAgeMs ? { ...v, quality: 'stale' } : v);
    }
    this.frozen = new ProcessImageSnapshot(now, points);
    return this.frozen;
  }

  snapshot(): ProcessImageSnapshot {
    return this.frozen;
  }
}
