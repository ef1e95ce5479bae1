import { ErrorCode, P2PError } from '../core/errors.js';
import { printJson } from '../core/output.js';
import { ModbusBus } from '../hal/modbus/bus.js';
import { parseModbusUrl } from '../hal/modbus/url.js';
import { type ScannedDevice, type ScanResult, scanConfigYaml } from './scan-config.js';
import { readSdm630 } from './sdm630.js';
import { parseCurvePoints } from './sunspec/curve-points.js';
import { discoverSunSpec, readModel } from './sunspec/discovery.js';
import { inverterReadings, SunSpecControls } from './sunspec/inverter.js';
import { isInverterModel, isMeterModel } from './sunspec/measurement-models.js';
import { meterScanReadings } from './sunspec/meter.js';
import { decodeModel, modelDef } from './sunspec/models.js';
import { writeVoltVarCurve } from './sunspec/volt-var-1547.js';
import { writeVoltWatt } from './sunspec/volt-watt.js';

const COMMON_UNITS = [1, 2, 3, 126];
const SCAN_TIMEOUT_MS = 500;

/** Host unreachable or port missing: the whole scan fails (exit 1) with the reason. */
async function openBus(url: string, timeoutMs: number): Promise<ModbusBus> {
  const bus = new ModbusBus(parseModbusUrl(url, '--modbus'), { timeoutMs, backoff: { initialMs: 0, maxMs: 0 } });
  try {
    await bus.open();
  } catch (err) {
    await bus.close();
    throw err;
  }
  return bus;
}

async function scanUnit(bus: ModbusBus, unit: number): Promise<ScannedDevice | undefined> {
  let map: Awaited<ReturnType<typeof discoverSunSpec>>;
  try {
    map = await discoverSunSpec(bus, unit);
  } catch {
    map = undefined;
  }
  if (map) {
    const device: ScannedDevice = {
      unit,
      kind: 'inverter',
      sunspec: { base: map.base, models: map.models.map((m) => m.id) },
    };
    const common = map.models.find((m) => m.id === 1);
    if (common) {
      const v = decodeModel(modelDef(1)!, await readModel(bus, unit, common, 'slow'));
      if (v.Mn !== undefined) device.manufacturer = String(v.Mn);
      if (v.Md !== undefined) device.model = String(v.Md);
      if (v.SN !== undefined) device.serial = String(v.SN);
    }
    const inverter = map.models.find((m) => isInverterModel(m.id));
    const meter = map.models.find((m) => isMeterModel(m.id));
    if (inverter)
      device.readings = inverterReadings(modelDef(inverter.id)!, await readModel(bus, unit, inverter, 'slow'));
    else if (meter) {
      device.kind = 'meter';
      device.readings = meterScanReadings(modelDef(meter.id)!, await readModel(bus, unit, meter, 'slow'));
    }
    return device;
  }
  try {
    const r = await readSdm630(bus, unit, 'slow');
    const plausible = r.voltageV.some((v) => v > 50 && v < 500) && r.frequencyHz > 40 && r.frequencyHz < 70;
    if (!plausible) return undefined;
    return {
      unit,
      kind: 'meter',
      model: 'SDM630',
      readings: {
        acPowerW: r.powerW,
        acVoltageV: r.voltageV,
        frequencyHz: r.frequencyHz,
        energyWh: r.importWh,
        energyExportWh: r.exportWh,
      },
    };
  } catch {
    return undefined;
  }
}

/**
 * `p2p-edge scan --modbus URL [--unit N]... --json`; with `--config`, the devices found as a gateway
 * config's `devices:` list instead (`scanConfigYaml`).
 */
export async function scanCommand(o: { modbus: string; unit: number[]; config?: boolean }): Promise<void> {
  const units = o.unit.length > 0 ? o.unit : COMMON_UNITS;
  for (const u of units) {
    if (u < 1 || u > 247) throw new P2PError(ErrorCode.input, `--unit ${u} is outside 1..247`, { field: '--unit' });
  }
  const bus = await openBus(o.modbus, SCAN_TIMEOUT_MS);
  try {
    const scan: ScanResult = { devices: [], unrecognisedUnits: [], silentUnits: [] };
    for (const unit of units) {
      const { requests, timeouts } = bus.stats;
      const found = await scanUnit(bus, unit);
      if (found) scan.devices.push(found);
      // Silent: every request to the unit timed out. Anything else (an exception, registers) is an answer.
      else if (bus.stats.timeouts - timeouts === bus.stats.requests - requests) scan.silentUnits.push(unit);
      else scan.unrecognisedUnits.push(unit);
    }
    if (o.config) process.stdout.write(scanConfigYaml(scan, o.modbus));
    else printJson(scan);
  } finally {
    await bus.close();
  }
}

/** `p2p-edge control --modbus URL --unit N [--limit-pct P] [--var-pct Q] [--revert-s S] --json` */
export interface ControlOptions {
  modbus: string;
  unit: number;
  limitPct?: number;
  varPct?: number;
  revertS?: number;
  voltVar?: string;
  voltWatt?: string;
}

export async function controlCommand(o: ControlOptions): Promise<void> {
  if (o.unit < 1 || o.unit > 247)
    throw new P2PError(ErrorCode.input, `--unit ${o.unit} is outside 1..247`, { field: '--unit' });
  if (o.limitPct !== undefined && !(o.limitPct >= 0 && o.limitPct <= 100))
    throw new P2PError(ErrorCode.input, `--limit-pct ${o.limitPct} is outside 0..100`, { field: '--limit-pct' });
  if (o.varPct !== undefined && !(o.varPct >= -100 && o.varPct <= 100))
    throw new P2PError(ErrorCode.input, `--var-pct ${o.varPct} is outside −100..100`, { field: '--var-pct' });
  const voltVar = o.voltVar === undefined ? undefined : parseCurvePoints(o.voltVar, '--volt-var');
  const voltWatt = o.voltWatt === undefined ? undefined : parseCurvePoints(o.voltWatt, '--volt-watt');
  const bus = await openBus(o.modbus, 1000);
  try {
    const map = await discoverSunSpec(bus, o.unit);
    if (!map) throw new P2PError(ErrorCode.driver, `unit ${o.unit} has no SunSpec map`, { component: 'control' });
    const controls = new SunSpecControls(bus, o.unit, map);
    if (o.limitPct !== undefined) await controls.setLimit(o.limitPct, o.revertS ?? 0);
    if (o.varPct !== undefined) await controls.setVarPct(o.varPct, o.revertS ?? 0);
    // Curves are written to the device and read back: the device runs them on its own from then on.
    const curves: Record<string, unknown> = {};
    if (voltVar) {
      const { model, settings } = await writeVoltVarCurve(bus, o.unit, map, {
        points: voltVar.map((p) => ({ vPct: p.vPct, varPct: p.yPct })),
      });
      curves.voltVar = { model, ...settings };
    }
    if (voltWatt) {
      const settings = await writeVoltWatt(bus, o.unit, map, {
        points: voltWatt.map((p) => ({ vPct: p.vPct, wPct: p.yPct })),
      });
      curves.voltWatt = { model: 132, ...settings };
    }
    printJson({ ...(await controls.readBack()), ...curves });
  } finally {
    await bus.close();
  }
}
