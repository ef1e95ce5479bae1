import { describe, expect, it } from 'vitest';
import { type MachineSample, MachineWatch, overloadReasons } from '../../src/bench/keeping-up.js';
import { parsePrometheus } from '../../src/bench/prometheus.js';
import { machineSample } from '../../src/bench/sampling.js';

/** The bench's control step at 600× (250 ms): an event-loop lag above 125 ms is too late. */
const PRIMARY_MS = 250;

const at = (tS: number, cpuBusyPct: number | null, cycleOverruns: number, eventLoopLagP99Ms: number | null = 20) =>
  ({ tMs: tS * 1000, cpuBusyPct, cycleOverruns, eventLoopLagP99Ms }) satisfies MachineSample;

describe('overloadReasons', () => {
  it('names each reason the machine could not keep up, with its figures', () => {
    expect(overloadReasons(at(0, 40, 3), at(2, 40, 3), PRIMARY_MS)).toEqual([]);
    expect(overloadReasons(at(0, 40, 3), at(2, 40, 5), PRIMARY_MS)).toEqual(['2 control cycles overran in 2 s']);
    expect(overloadReasons(at(0, 40, 3), at(2, 40, 3, 126), PRIMARY_MS)).toEqual([
      'event-loop lag p99 126 ms, above 125 ms (half the 250 ms control cycle)',
    ]);
    expect(overloadReasons(at(0, 40, 3), at(2, 90, 3), PRIMARY_MS)).toEqual(['CPU 90 % busy (90 % or more)']);
    expect(overloadReasons(at(0, 40, 3), at(2, 89.9, 4, 125), PRIMARY_MS)).toEqual(['1 control cycle overran in 2 s']);
  });

  it('counts no overrun at the first sample nor when the count went down (a gateway process restarted)', () => {
    expect(overloadReasons(undefined, at(0, 40, 500), PRIMARY_MS)).toEqual([]);
    expect(overloadReasons(at(0, 40, 500), at(2, 40, 10), PRIMARY_MS)).toEqual([]);
  });

  it('does without what is not measured', () => {
    expect(overloadReasons(at(0, null, 0, null), at(2, null, 0, null), PRIMARY_MS)).toEqual([]);
  });
});

describe('MachineWatch', () => {
  // A recorded day in 2 s samples: 6 s of a CPU taken by another program (95 %), a recovery with one
  // good sample and a relapse (overruns), then three good samples in a row.
  const day: MachineSample[] = [
    at(0, 35, 0),
    at(2, 40, 0),
    at(4, 95, 0), // begins
    at(6, 96, 0),
    at(8, 97, 0),
    at(10, 50, 0), // keeping up...
    at(12, 50, 2), // ...not yet: two cycles overran
    at(14, 45, 2), // keeping up from here
    at(16, 45, 2),
    at(18, 45, 2), // third in a row: ended, at 14 s
    at(20, 40, 2),
  ];

  it('says when an overload begins and when it ends, and how long the machine could not keep up', () => {
    const watch = new MachineWatch(PRIMARY_MS);
    const news = day.map((s) => watch.add(s));
    expect(news).toEqual([
      undefined,
      undefined,
      'began',
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      'ended',
      undefined,
    ]);
    // From 4 s to 14 s.
    expect(watch.result(20_000)).toEqual({ notKeepingUpS: 10, overloads: 1, violationsWhileOverloaded: 0 });
    const [alarm] = watch.alarmList();
    expect(alarm).toMatchObject({
      id: 'machine-overloaded:bench',
      kind: 'machine-overloaded',
      source: 'bench',
      since: 4000,
      clearedAt: 14_000,
    });
    // The text follows the latest figures while it lasts: the overruns that delayed the end.
    expect(alarm?.text).toContain('2 control cycles overran in 2 s');
    expect(watch.status()).toMatchObject({ keepingUp: true, cpuBusyPct: 40, cycleOverruns: 2, eventLoopLagP99Ms: 20 });
  });

  it('counts the voltage violations that began while the machine could not keep up', () => {
    const watch = new MachineWatch(PRIMARY_MS);
    watch.add(day[0]!);
    watch.noteViolations(1);
    watch.add(day[1]!);
    watch.add(day[2]!);
    expect(watch.status().keepingUp).toBe(false);
    expect(watch.status().text).toContain('CPU 95 % busy');
    expect(watch.alarmList()[0]?.clearedAt).toBeUndefined();
    watch.noteViolations(2);
    watch.noteViolations(0);
    // Still in the overload at the end of the day: counted up to the end.
    expect(watch.result(7000)).toEqual({ notKeepingUpS: 3, overloads: 1, violationsWhileOverloaded: 2 });
  });

  it('reads the overruns and the worst event-loop lag from the gateways’ metrics', () => {
    const a = parsePrometheus(
      [
        'p2p_cycle_overruns_total{scale="primary",gateway="inv1"} 3',
        'p2p_cycle_overruns_total{scale="secondary",gateway="inv1"} 1',
        'nodejs_eventloop_lag_p99_seconds{gateway="inv1"} 0.0421',
      ].join('\n'),
    );
    const b = parsePrometheus(
      [
        'p2p_cycle_overruns_total{scale="primary",gateway="inv2"} 2',
        'nodejs_eventloop_lag_p99_seconds{gateway="inv2"} 0.19',
      ].join('\n'),
    );
    expect(machineSample(1000, 55, [a, undefined, b])).toEqual({
      tMs: 1000,
      cpuBusyPct: 55,
      cycleOverruns: 6,
      eventLoopLagP99Ms: 190,
    });
    expect(machineSample(1000, null, [parsePrometheus('p2p_cycle_overruns_total 0')]).eventLoopLagP99Ms).toBeNull();
  });
});
