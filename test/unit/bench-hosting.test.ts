import { describe, expect, it } from 'vitest';
import { auditMeterIntervals } from '../../src/bench/audit.js';
import { DeliveryTally } from '../../src/bench/delivery.js';
import { gatewaysAlone, hostGroups } from '../../src/bench/hosting.js';
import { parsePrometheus } from '../../src/bench/prometheus.js';
import { loadScenario } from '../../src/bench/scenario.js';
import { Ledger } from '../../src/platform/ledger/ledger.js';
import { MeterIntervals } from '../../src/platform/meter-intervals.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir('p2p-bench-hosting-');

const files = (ids: string[]) => ids.map((id) => ({ id, configFile: `${id}.yaml`, statusPort: 1 }));

describe('which gateways share a bench process', () => {
  const cellOf = new Map([
    ['tx-a', 'a'],
    ['tx-b', 'b'],
    ...['inv-1', 'inv-2', 'inv-3', 'inv-4', 'inv-5'].map((id) => [id, 'a'] as [string, string]),
    ['inv-6', 'b'],
    ['platform-1', 'a'],
  ]);
  const gateways = files(['tx-a', 'tx-b', 'inv-1', 'inv-2', 'inv-3', 'inv-4', 'inv-5', 'inv-6', 'platform-1']);

  it('packs a cell at most perProcess to a process, never mixing cells, and leaves the fault targets alone', () => {
    const groups = hostGroups(gateways, { perProcess: 3, alone: new Set(['platform-1', 'inv-4']), cellOf });
    const ids = groups.map((g) => g.gateways.map((x) => x.id));
    expect(ids).toEqual([['tx-a', 'inv-1', 'inv-2'], ['inv-4'], ['platform-1'], ['tx-b', 'inv-6'], ['inv-3', 'inv-5']]);
    // A process of one gateway is named after it (the fault's target), the others after their cell.
    expect(groups.map((g) => g.id)).toEqual(['host-a-1', 'inv-4', 'platform-1', 'host-b-4', 'host-a-5']);
    expect(ids.flat().sort()).toEqual(gateways.map((g) => g.id).sort());
  });

  it('runs each gateway alone with perProcess 1', () => {
    const groups = hostGroups(gateways, { perProcess: 1, alone: new Set(), cellOf });
    expect(groups.map((g) => g.id)).toEqual(gateways.map((g) => g.id));
  });

  it("names the platform and every sigkill target of a scenario as alone, the scenario's other gateways not", () => {
    const s = loadScenario('sigkill');
    const alone = gatewaysAlone(s);
    expect(alone.has('platform-1')).toBe(true);
    for (const f of s.faults.filter((x) => x.kind === 'sigkill')) expect(alone.has(f.target!)).toBe(true);
    const targets = s.faults.filter((x) => x.kind === 'sigkill').map((f) => f.target!);
    expect([...alone].sort()).toEqual([...new Set(['platform-1', ...targets])].sort());
  });
});

const metrics = (lines: string[]) => parsePrometheus(lines.join('\n'));

describe('delivery as the senders count it', () => {
  it('adds up the last sample of every run of every gateway, first attempts apart', () => {
    const tally = new DeliveryTally();
    // inv-1's first run: 10 meter messages sent, 9 acknowledged (8 at once), then killed.
    tally.add(
      'inv-1',
      1,
      metrics([
        'p2p_reliable_sent_total{class="meter",type="energy"} 4',
        'p2p_reliable_sent_total{class="meter",type="energy"} 6',
        'p2p_reliable_delivered_total{class="meter",type="energy",attempt="first"} 8',
        'p2p_reliable_delivered_total{class="meter",type="energy",attempt="retried"} 1',
      ]),
    );
    // A later sample of the same run replaces the earlier one.
    tally.add(
      'inv-1',
      1,
      metrics([
        'p2p_reliable_sent_total{class="meter",type="energy"} 10',
        'p2p_reliable_delivered_total{class="meter",type="energy",attempt="first"} 8',
        'p2p_reliable_delivered_total{class="meter",type="energy",attempt="retried"} 1',
      ]),
    );
    // Its second run starts its counters again: 10 more, all at once; one message of the first run,
    // reloaded from its outbox, acknowledged after a resend.
    tally.add(
      'inv-1',
      2,
      metrics([
        'p2p_reliable_sent_total{class="meter",type="energy"} 10',
        'p2p_reliable_delivered_total{class="meter",type="energy",attempt="first"} 10',
        'p2p_reliable_delivered_total{class="meter",type="energy",attempt="retried"} 1',
        'p2p_outbox_dropped_total{class="mkt",reason="expired"} 2',
        'p2p_reliable_sent_total{class="mkt",type="price"} 4',
        'p2p_reliable_delivered_total{class="mkt",type="price",attempt="first"} 2',
      ]),
    );
    const r = tally.result();
    expect(r.sent).toMatchObject({ meter: 20, mkt: 4, dr: 0 });
    expect(r.ratio).toMatchObject({ meter: 1, mkt: 0.5, dr: null });
    expect(r.firstAttempt).toMatchObject({ meter: 0.9, mkt: 0.5 });
    expect(r.givenUp.mkt).toEqual({ expired: 2 });
    expect(r.byKind['meter/energy']).toEqual({ sent: 20, delivered: 20, firstAttempt: 18 });
  });

  it('tells, per run of each gateway and class, how many it sent and how many are acknowledged or given up', () => {
    const tally = new DeliveryTally();
    tally.add(
      'inv-1',
      1,
      metrics([
        'p2p_reliable_sent_total{class="meter",type="energy"} 10',
        'p2p_reliable_delivered_total{class="meter",type="energy",attempt="first"} 7',
        'p2p_outbox_dropped_total{class="meter",reason="overflow"} 1',
      ]),
    );
    tally.add('tx-a', 1, metrics(['p2p_reliable_sent_total{class="mkt",type="dispatch"} 4']));
    expect(tally.progress()).toEqual(
      new Map([
        ['inv-1#1/meter', { sent: 10, resolved: 8 }],
        ['tx-a#1/mkt', { sent: 4, resolved: 0 }],
      ]),
    );
  });

  it('counts the messages sent by the end of the day, the later ones taken as delivered first', () => {
    const tally = new DeliveryTally();
    const at = (sent: number, first: number, retried: number) =>
      metrics([
        `p2p_reliable_sent_total{class="mkt",type="dispatch"} ${sent}`,
        `p2p_reliable_delivered_total{class="mkt",type="dispatch",attempt="first"} ${first}`,
        `p2p_reliable_delivered_total{class="mkt",type="dispatch",attempt="retried"} ${retried}`,
      ]);
    tally.add('tx-a', 1, at(100, 90, 5)); // 5 still waiting when the day ends
    tally.endOfRun();
    // During the wait: 10 more sent and 10 more acknowledged, 3 of the day's among them, 2 still waiting.
    tally.add('tx-a', 1, at(110, 99, 9));
    const r = tally.result();
    expect(r.ratio.mkt).toBe(0.98); // (108 − 10) / 100
    expect(r.firstAttempt.mkt).toBe(0.89); // (99 − 10) / 100: never more than the day's own
    expect(r.sent.mkt).toBe(110);
  });

  it('takes latency percentiles of first and retried deliveries from the histograms of every run', () => {
    const tally = new DeliveryTally();
    const histogram = (attempt: string, le10: number, le100: number, inf: number) => [
      `p2p_delivery_seconds_bucket{class="mkt",attempt="${attempt}",le="0.01"} ${le10}`,
      `p2p_delivery_seconds_bucket{class="mkt",attempt="${attempt}",le="0.1"} ${le100}`,
      `p2p_delivery_seconds_bucket{class="mkt",attempt="${attempt}",le="+Inf"} ${inf}`,
    ];
    tally.add('a', 1, metrics([...histogram('first', 100, 100, 100), ...histogram('retried', 0, 0, 0)]));
    tally.add('b', 1, metrics([...histogram('first', 100, 100, 100), ...histogram('retried', 0, 10, 10)]));
    const { latencyMs } = tally.result();
    expect(latencyMs.first).toEqual({ p50: 5, p99: 9.9, count: 200 });
    expect(latencyMs.retried.count).toBe(10);
    expect(latencyMs.retried.p50).toBeCloseTo(55, 6);
  });

  it('keeps every metering interval a house listed, over samples that each list the last few', () => {
    const tally = new DeliveryTally();
    const state = (intervalsSent: number[]) => ({ roles: { prosumer: { intervalsSent } } }) as never;
    tally.add('inv-1', 1, undefined, state([1000, 2000, 3000]));
    tally.add('inv-1', 1, undefined, state([3000, 4000]));
    tally.add('inv-1', 2, undefined, state([6000]));
    expect([...tally.intervalsSent().get('inv-1')!]).toEqual([1000, 2000, 3000, 4000, 6000]);
  });
});

describe('the meter audit, from what each house sent', () => {
  it('counts as missing what a house sent that the platform never stored, first and last included, less what waits in its outbox', () => {
    const ledger = Ledger.open(`${tmp.dir}/audit.db`);
    try {
      const stored = new MeterIntervals(ledger.db);
      const interval = (member: string, seq: number, fromMs: number) => ({
        member,
        epoch: 1,
        seq,
        fromMs,
        toMs: fromMs + 1000,
        netKWh: 0.1,
        coveredMs: 1000,
      });
      // inv-1 sent 1000..5000; the platform has 2000..4000 (its first and last are gone).
      stored.addAll([interval('inv-1', 2, 2000), interval('inv-1', 3, 3000), interval('inv-1', 4, 4000)]);
      // inv-2 sent 1000 and 2000, the platform has both; the platform also has one it sent after the last sample.
      stored.addAll([interval('inv-2', 1, 1000), interval('inv-2', 2, 2000), interval('inv-2', 3, 3000)]);
      const sent = new Map([
        ['inv-1', new Set([1000, 2000, 3000, 4000, 5000])],
        ['inv-2', new Set([1000, 2000])],
      ]);
      expect(auditMeterIntervals(ledger.db, sent)).toEqual(
        new Map([
          ['inv-1', { missing: 2, duplicated: 0 }],
          ['inv-2', { missing: 0, duplicated: 0 }],
        ]),
      );
      // One of inv-1's still waits in its outbox: late, not lost.
      expect(auditMeterIntervals(ledger.db, sent, new Map([['inv-1', 1]])).get('inv-1')).toEqual({
        missing: 1,
        duplicated: 0,
      });
    } finally {
      ledger.close();
    }
  });
});
