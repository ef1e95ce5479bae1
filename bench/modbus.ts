/**
 * npm run bench:modbus — Modbus RTU polling over a socat pty pair at 9600 and 19200 baud: four
 * SunSpec inverters on one line, the bus manager reading each one's measurement model (model 103,
 * 52 registers) as fast as it can while a controller writes a power limit every 250 ms. A pty moves
 * bytes at once, so the simulated devices answer after the wire time the request and the reply would
 * take on a real line (8N2); the bench compares the achieved request rate with that wire-time limit
 * (target ≥ 90 %) and measures the latency from a control decision to the acknowledged write (target
 * p99 ≤ 2 frame times + device turnaround). Writes bench/results/modbus.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { percentile } from '../src/bench/kpi.js';
import { discoverSunSpec } from '../src/drivers/sunspec/discovery.js';
import { ModbusBus } from '../src/hal/modbus/bus.js';
import { parseModbusUrl, rtuFrameMs, rtuSilenceMs } from '../src/hal/modbus/url.js';
import { SimulatedModbusServer } from '../src/sim/devices/modbus-server.js';
import { PtyPair } from '../src/sim/devices/pty-pair.js';
import { FixedInverterPlant } from '../src/sim/devices/register-device.js';
import { SimulatedSunSpecInverter } from '../src/sim/devices/sunspec-inverter.js';

const UNITS = [1, 2, 3, 4];
const REGISTERS = 52; // model 103 with its header
const RUN_MS = 6000;

async function run(baud: number) {
  const pty = await PtyPair.open();
  const server = new SimulatedModbusServer(
    new Map(UNITS.map((u) => [u, new SimulatedSunSpecInverter({ ratedW: 5000 }, new FixedInverterPlant(5000, 4000))])),
  );
  await server.listen(parseModbusUrl(`rtu://${pty.a}?baud=${baud}`));
  const endpoint = parseModbusUrl(`rtu://${pty.b}?baud=${baud}`);
  const bus = new ModbusBus(endpoint, { timeoutMs: 1000 });
  const maps = new Map<number, NonNullable<Awaited<ReturnType<typeof discoverSunSpec>>>>();
  for (const u of UNITS) maps.set(u, (await discoverSunSpec(bus, u))!);
  server.wireBaud = baud;
  const address = maps.get(1)!.models.find((m) => m.id === 103)!.address;

  if (endpoint.kind !== 'rtu') throw new Error('RTU expected');
  const silence = rtuSilenceMs(endpoint);
  const readMs = rtuFrameMs(endpoint, 8) + rtuFrameMs(endpoint, 5 + 2 * REGISTERS) + 2 * silence;
  const writeMs = rtuFrameMs(endpoint, 9 + 2) + rtuFrameMs(endpoint, 8) + 2 * silence;

  let reads = 0;
  let stop = false;
  const poller = (async () => {
    for (let i = 0; !stop; i++) {
      await bus.readHolding(UNITS[i % UNITS.length]!, address, REGISTERS, 'fast');
      reads++;
    }
  })();
  const latencies: number[] = [];
  let writes = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < RUN_MS) {
    await new Promise((r) => setTimeout(r, 200 + Math.random() * 100));
    const unit = UNITS[writes % UNITS.length]!;
    const loc = maps.get(unit)!.models.find((m) => m.id === 123)!;
    const start = performance.now();
    // The decision's single register write (WMaxLimPct at offset 5 of model 123), as the driver sends it.
    await bus.writeRegisters(unit, loc.address + 5, [500 + (writes % 400)]);
    latencies.push(performance.now() - start);
    writes++;
  }
  const elapsed = performance.now() - t0;
  stop = true;
  await poller;
  await bus.close();
  await server.close();
  await pty.close();
  // Wire time spent on writes comes out of the reads' share of the line.
  const busyMs = writes * writeMs;
  const limitPerS = ((elapsed - busyMs) / readMs) * (1000 / elapsed);
  const achievedPerS = (reads * 1000) / elapsed;
  const bound = 2 * readMs + 5;
  return {
    baud,
    readFrameMs: Number(readMs.toFixed(2)),
    achievedReadsPerS: Number(achievedPerS.toFixed(2)),
    wireLimitReadsPerS: Number(limitPerS.toFixed(2)),
    ofLimit: Number((achievedPerS / limitPerS).toFixed(3)),
    writes,
    writeLatencyP50Ms: Number(percentile(latencies, 50).toFixed(1)),
    writeLatencyP99Ms: Number(percentile(latencies, 99).toFixed(1)),
    latencyBoundMs: Number(bound.toFixed(1)),
    withinBound: percentile(latencies, 99) <= bound,
  };
}

const rows = [];
for (const baud of [9600, 19_200]) rows.push(await run(baud));
console.table(rows);
const out = join(import.meta.dirname, 'results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'modbus.json'), `${JSON.stringify({ date: new Date().toISOString(), rows }, null, 2)}\n`);
