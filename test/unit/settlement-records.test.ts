import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SIMULATED_SETTLEMENT_SCHEDULE } from '../../src/agent/demo.js';
import { SettlementParty } from '../../src/agent/settlement/party.js';
import { SettlementRecords } from '../../src/agent/settlement/records.js';
import type { Transport } from '../../src/comms/transport.js';
import { VirtualClock } from '../../src/core/clock.js';
import { componentLogger } from '../../src/core/log.js';
import { IntervalMeter } from '../../src/platform/meter-energy.js';
import { SettlementSchedule } from '../../src/platform/settlement-content.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const log = componentLogger('test');
log.level = 'silent';

/** A 15-minute interval, readings every 5 minutes. */
const T = 900_000;
const START = 1_800_000_000_000 - (1_800_000_000_000 % T);

let n = 0;
/** Records fed as the prosumer feeds them: its meter integrated interval by interval (`IntervalMeter`). */
const open = (now = START - 1, scale = 1) => {
  const dir = join(tmp.dir, `records-${n++}`);
  const records = new SettlementRecords(dir, 'inv-1', T, scale, log, now);
  const meter = new IntervalMeter(T);
  const sample = (timeMs: number, netW: number) => {
    for (const closed of meter.add(timeMs, netW)) records.meteredInterval(closed);
  };
  return { dir, records, sample };
};

describe("a gateway's settlement records", () => {
  it('close an interval at the first reading after it, the energy its gateway sends the platform', () => {
    const { records, sample } = open();
    // 1 kW taken from the last reading before the interval, then 2 kW exported, then 4 kW exported.
    sample(START - 60_000, 1000);
    sample(START + 300_000, -2000);
    sample(START + 600_000, -4000);
    expect(records.metered(START)).toBeUndefined();
    sample(START + T + 1_000, 0);
    // By hand: 5 min at +1 kW, 5 min at -2 kW, 5 min at -4 kW = (1 - 2 - 4) / 12 kWh taken: 5/12 exported.
    expect(records.metered(START)?.kWh).toBeCloseTo(5 / 12, 9);
    expect(records.metered(START)?.coverage).toBe(1);
  });

  it('scale the energy of a bench interval to its market slot, and say how much of it the readings cover', () => {
    // The gateway started mid-interval: its readings cover the second half only.
    const { records, sample } = open(START - 1, 4);
    sample(START + T / 2, -1000);
    sample(START + T, -1000);
    // 7.5 min at 1 kW exported = 0.125 kWh, four times that in the market's slot.
    expect(records.metered(START)).toEqual({ kWh: 0.5, coverage: 0.5 });
  });

  it('keep what was measured and agreed across a restart; before they began, trades are not known', () => {
    const { dir, records, sample } = open();
    sample(START, -3000);
    sample(START + T, -3000);
    records.agreed(START, 'cell', [{ seller: 'inv-1', buyer: 'tx-a', kWh: 0.75, pricePerKWh: 0.08 }]);
    expect(JSON.parse(readFileSync(join(dir, 'inv-1', 'settlement-records.json'), 'utf8')).since).toBe(START);
    const again = new SettlementRecords(dir, 'inv-1', T, 1, log, START + 2 * T);
    expect(again.metered(START)).toEqual({ kWh: 0.75, coverage: 1 });
    expect(again.trades(START, 'cell')).toEqual([{ seller: 'inv-1', buyer: 'tx-a', kWh: 0.75, pricePerKWh: 0.08 }]);
    // An interval since the records began with nothing agreed: no trade. One before: not known.
    expect(again.trades(START + T, 'cell')).toEqual([]);
    expect(again.trades(START - T, 'cell')).toBeUndefined();
  });

  it("keep each aggregator's DR dispatch of an interval; a second from the same one takes its place", () => {
    const { records } = open();
    const fromA = { seller: 'inv-1', buyer: 'agg-a', kWh: 0.5, pricePerKWh: 0.2 };
    const fromB = { seller: 'inv-1', buyer: 'agg-b', kWh: 0.3, pricePerKWh: 0.25 };
    records.agreedWith(START, 'dr', [fromA]);
    records.agreedWith(START, 'dr', [fromB]);
    expect(records.trades(START, 'dr')).toEqual([fromA, fromB]);
    records.agreedWith(START, 'dr', [{ ...fromA, kWh: 0.4 }]);
    expect(records.trades(START, 'dr')).toEqual([fromB, { ...fromA, kWh: 0.4 }]);
  });
});

describe('a gateway as a party, started on damaged files', () => {
  it('takes the next ledger head as it is when the last one it checked cannot be read, and keeps the signed lines before a cut one', () => {
    const dir = join(tmp.dir, `party-${n++}`);
    mkdirSync(join(dir, 'inv-1'), { recursive: true });
    writeFileSync(join(dir, 'inv-1', 'ledger-head.json'), '{"entries": 3, "hash": "ab');
    const signed = { unit: `${START}/cell/cell-a`, contentHash: 'c'.repeat(64), signedAtMs: START, amount: 0.1 };
    // A power loss while the last line was written.
    writeFileSync(join(dir, 'inv-1', 'settlement-signed.jsonl'), `${JSON.stringify(signed)}\n{"unit": "17`);
    const party = new SettlementParty({
      gatewayId: 'inv-1',
      platform: 'platform-1',
      schedule: SettlementSchedule.parse(SIMULATED_SETTLEMENT_SCHEDULE),
      records: new SettlementRecords(dir, 'inv-1', T, 1, log, START),
      transport: {} as Transport,
      clock: new VirtualClock(START),
      log,
      stateDir: dir,
      keepSignedDays: 2,
      sign: () => '',
    });
    expect(party.state()).toMatchObject({ signed: 1, ledgerHead: null, ledgerProblem: null });
  });
});
