/**
 * npm run bench:platform-store — what storing the houses' metering intervals costs the platform: each
 * one committed on its own (one fsync each, as without group commit) against those that arrive in
 * one turn committed together (`GroupCommit` over `MeterIntervals.addAll`), in the platform's
 * SQLite database (WAL, synchronous=FULL) on this machine's disk, side by side in one run. The ratio
 * is the point: the disk's fsync time sets the absolute figures. Then `ledger verify` over everything
 * stored (the ledger and every table's hash chain), per row. Writes bench/results/platform-store.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { table } from '../src/bench/report-table.js';
import { GroupCommit } from '../src/core/group-commit.js';
import { Ledger } from '../src/platform/ledger/ledger.js';
import { type MeterInterval, MeterIntervals } from '../src/platform/meter-intervals.js';

const READINGS = 2000;
const GROUP_SIZES = [1, 4, 16, 64];
const dir = mkdtempSync(join(tmpdir(), 'p2p-bench-platform-'));
const ledger = Ledger.open(join(dir, 'ledger.db'));
const intervals = new MeterIntervals(ledger.db);
let seq = 0;
const sample = (): MeterInterval => {
  const k = seq++;
  return {
    member: `inv-${k % 16}`,
    epoch: 1,
    seq: k,
    fromMs: k * 1000,
    toMs: (k + 1) * 1000,
    netKWh: 0.3,
    coveredMs: 1000,
  };
};

const rows: { groupSize: number; msPerReading: number; readingsPerS: number }[] = [];
for (const groupSize of GROUP_SIZES) {
  const writer = new GroupCommit((group: MeterInterval[]) => intervals.addAll(group));
  const t = performance.now();
  for (let i = 0; i < READINGS / groupSize; i++) {
    // One turn's arrivals, then the turn ends and the group is written.
    await Promise.all(Array.from({ length: groupSize }, () => writer.add(sample())));
  }
  const msPerReading = (performance.now() - t) / READINGS;
  rows.push({ groupSize, msPerReading, readingsPerS: 1000 / msPerReading });
}
const verifyStart = performance.now();
const verified = ledger.verify();
const verifyMsPerRow = (performance.now() - verifyStart) / seq;
if (!verified.ok) throw new Error(`ledger verify failed on the benchmark's own database: ${JSON.stringify(verified)}`);
ledger.close();
rmSync(dir, { recursive: true, force: true });

const single = rows[0]!.msPerReading;
process.stdout.write(
  `${table([
    ['readings per transaction', 'ms per reading', 'readings/s', 'speed-up'],
    ...rows.map((r) => [
      String(r.groupSize),
      r.msPerReading.toFixed(3),
      r.readingsPerS.toFixed(0),
      `${(single / r.msPerReading).toFixed(1)}×`,
    ]),
  ]).join('\n')}\nledger verify of ${seq} stored intervals: ${(verifyMsPerRow * 1000).toFixed(1)} µs per row\n`,
);
const out = join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, 'platform-store.json'),
  `${JSON.stringify({ date: new Date().toISOString(), readings: READINGS, rows, verifyMsPerRow }, null, 2)}\n`,
);
