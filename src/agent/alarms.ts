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
