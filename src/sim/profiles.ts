/**
 * Daily shapes for simulated devices, as fractions of a device's rating by hour of day (0-24).
 * PV: a clear-sky half-sine between sunrise and sunset. Household load: a base with morning and
 * evening peaks (the shape of a standard residential profile such as BDEW H0, not its data).
 */
export function pvShape(hour: number, sunrise = 6, sunset = 20): number {
  if (hour <= sunrise || hour >= sunset) return 0;
  return Math.sin((Math.PI * (hour - sunrise)) / (sunset - sunrise));
}

export function householdShape(hour: number): number {
  const bump = (centre: number, width: number, height: number) => height * Math.exp(-(((hour - centre) / width) ** 2));
  return Math.min(1, 0.18 + bump(7.5, 1.2, 0.35) + bump(13, 1.5, 0.15) + bump(19.5, 1.8, 0.8));
}

/**
 * Simulated time of day for a day compressed `speedup` times: at `startMs` of real (or virtual) time
 * the simulated day stands at `startHour`.
 */
export class CompressedDay {
  constructor(
    private startMs: number,
    private readonly speedup: number,
    private readonly startHour = 0,
  ) {}

  private held = false;

  /** Stands still at `startHour` until `restartAt` (while a bench's processes start). */
  hold(): void {
    this.held = true;
  }

  /** The simulated day starts over at `startHour` from `nowMs` (a bench whose processes took a while to start). */
  restartAt(nowMs: number): void {
    this.startMs = nowMs;
    this.held = false;
  }

  hourAt(nowMs: number): number {
    if (this.held) return this.startHour;
    const hours = this.startHour + ((nowMs - this.startMs) * this.speedup) / 3_600_000;
    return ((hours % 24) + 24) % 24;
  }
}
