/** Something an operator should look at, while it lasts (and a while after it cleared). */
export interface Alarm {
  /** Stable per condition, e.g. `device-down:pv-1`, `voltage-high:b3`, `peer-lost:tx-cell-b`. */
  id: string;
  kind:
    | 'voltage-violation'
    | 'device-down'
    | 'peer-lost'
    | 'market-not-converged'
    | 'settlement-dispute'
    | 'machine-overloaded';
  severity: 'critical' | 'warning';
  /** The gateway, device, bus or peer it concerns. */
  source: string;
  /** One sentence for a person, with the figures (e.g. "bus b3 at 1.062 pu, above 1.05 pu"). */
  text: string;
  /** When it began (ms since the epoch). */
  since: number;
  /** When it ended; absent while it lasts. */
  clearedAt?: number;
}

export const ALARM_KINDS: readonly Alarm['kind'][] = [
  'voltage-violation',
  'device-down',
  'peer-lost',
  'market-not-converged',
  'settlement-dispute',
  'machine-overloaded',
];
export const ALARM_SEVERITIES: readonly Alarm['severity'][] = ['critical', 'warning'];

/** How many cleared alarms a book keeps after the active ones by default. */
export const CLEARED_ALARMS_KEPT = 20;

/**
 * The alarms of one gateway (or of the bench): `raise` when a condition begins (again: the text and
 * severity follow the latest figures, `since` stays), `clear` when it ends. Lists the active alarms
 * first, newest first, then the last `keepCleared` cleared ones, most recently cleared first. Pure:
 * the caller passes the time.
 */
export class AlarmBook {
  private readonly active = new Map<string, Alarm>();
  private readonly cleared: Alarm[] = [];

  constructor(private readonly keepCleared = CLEARED_ALARMS_KEPT) {}

  /** `raised` when the alarm was not active, undefined when it was (its text and severity are updated). */
  raise(id: string, what: Pick<Alarm, 'kind' | 'severity' | 'source' | 'text'>, nowMs: number): 'raised' | undefined {
    const current = this.active.get(id);
    if (current) {
      Object.assign(current, { kind: what.kind, severity: what.severity, source: what.source, text: what.text });
      return undefined;
    }
    this.active.set(id, { id, ...what, since: nowMs });
    return 'raised';
  }

  /** Ends the alarm `id` if it is active: the cleared alarm, else undefined. */
  clear(id: string, nowMs: number): Alarm | undefined {
    const current = this.active.get(id);
    if (!current) return undefined;
    this.active.delete(id);
    const ended: Alarm = { ...current, clearedAt: nowMs };
    this.cleared.unshift(ended);
    if (this.cleared.length > this.keepCleared) this.cleared.length = this.keepCleared;
    return ended;
  }

  /** Clears every active alarm `matches` picks (e.g. all disputes of one settlement). */
  clearWhere(matches: (alarm: Alarm) => boolean, nowMs: number): Alarm[] {
    return [...this.active.values()].filter(matches).flatMap((a) => this.clear(a.id, nowMs) ?? []);
  }

  isActive(id: string): boolean {
    return this.active.has(id);
  }

  /** Active alarms (newest first), then the last cleared ones (most recently cleared first): copies. */
  list(): Alarm[] {
    const active = [...this.active.values()].sort((a, b) => b.since - a.since);
    return [...active, ...this.cleared].map((a) => ({ ...a }));
  }

  /** Active alarms by kind and severity, every pair present (zero when none), for `p2p_alarms_active`. */
  activeCounts(): { kind: Alarm['kind']; severity: Alarm['severity']; count: number }[] {
    return ALARM_KINDS.flatMap((kind) =>
      ALARM_SEVERITIES.map((severity) => ({
        kind,
        severity,
        count: [...this.active.values()].filter((a) => a.kind === kind && a.severity === severity).length,
      })),
    );
  }
}
