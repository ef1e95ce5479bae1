import { describe, expect, it } from 'vitest';
import { inverterReadings } from '../../src/drivers/sunspec/inverter.js';
import { meterReading, meterScanReadings } from '../../src/drivers/sunspec/meter.js';
import { decodeModel, encodePoint, modelDef, pointDef } from '../../src/drivers/sunspec/models.js';

/**
 * Register images written by hand from the official SunSpec model definitions (github.com/sunspec/models,
 * json/model_113.json, model_213.json, model_203.json): offsets counted from the model's ID register,
 * float32 big-endian high word first, NaN (0x7FC00000) where a point is not implemented.
 */
function image(length: number): number[] {
  return Array(length + 2).fill(0xffff);
}

function putFloat(regs: number[], offset: number, value: number): void {
  const b = Buffer.alloc(4);
  b.writeFloatBE(value, 0);
  regs[offset] = b.readUInt16BE(0);
  regs[offset + 1] = b.readUInt16BE(2);
}

describe('SunSpec float inverter model 113', () => {
  // model_113.json: ID, L, then A, AphA, AphB, AphC, PPVphAB, PPVphBC, PPVphCA, PhVphA, PhVphB, PhVphC,
  // W, Hz, VA, VAr, PF, WH, DCA, DCV, DCW, TmpCab, TmpSnk, TmpTrns, TmpOt (float32 each), St, StVnd,
  // Evt1, Evt2, EvtVnd1-4 (bitfield32): L = 23 × 2 + 2 + 6 × 2 = 60.
  const OFFSET = { AphA: 4, PhVphA: 16, PhVphB: 18, PhVphC: 20, W: 22, Hz: 24, VAr: 28, WH: 32, St: 48 };

  it('has the layout of the official definition', () => {
    const def = modelDef(113)!;
    expect(def.fixedLength).toBe(60);
    for (const [name, offset] of Object.entries(OFFSET)) expect(pointDef(def, name).offset).toBe(offset);
  });

  it('decodes float32 points to the contract readings, NaN as not implemented', () => {
    const regs = image(60);
    regs[0] = 113;
    regs[1] = 60;
    for (let o = 2; o < 48; o += 2) putFloat(regs, o, Number.NaN);
    putFloat(regs, OFFSET.AphA, 3.5);
    putFloat(regs, 6, 3.6);
    putFloat(regs, OFFSET.PhVphA, 230.1);
    putFloat(regs, OFFSET.PhVphB, 231);
    // PhVphC left NaN: a phase the device does not measure
    putFloat(regs, OFFSET.W, 2450.5);
    putFloat(regs, OFFSET.Hz, 50.01);
    putFloat(regs, OFFSET.VAr, -120);
    putFloat(regs, OFFSET.WH, 12_345_678); // below 2^24: exact in float32
    regs[OFFSET.St] = 4; // MPPT
    expect(inverterReadings(modelDef(113)!, regs)).toEqual({
      acPowerW: 2450.5,
      acVoltageV: [230.1, 231, null],
      acCurrentA: [3.5, 3.6, null],
      frequencyHz: 50.01,
      energyWh: 12_345_678,
      reactivePowerVAr: -120,
      status: 'MPPT',
    });
  });

  it('encodes a float32 point as two big-endian words and refuses what is no float', () => {
    const p = pointDef(modelDef(113)!, 'W');
    expect(encodePoint(p, 1.5)).toEqual([0x3fc0, 0x0000]); // IEEE 754: 1.5 = 0x3FC00000
    expect(() => encodePoint(p, Number.NaN)).toThrow(/not a float32/);
    const regs = image(60);
    regs.splice(OFFSET.W, 2, ...encodePoint(p, -0.1));
    expect(decodeModel(modelDef(113)!, regs).W).toBe(-0.1);
  });
});

describe('SunSpec meters', () => {
  // model_213.json: A, AphA-C, PhV, PhVphA-C, PPV, PPVphAB-CA, Hz, W, WphA-C, VA, VAphA-C, VAR, VARphA-C,
  // PF, PFphA-C (29 float32), then TotWhExp(+3 phases), TotWhImp(+3), TotVAhExp, TotVAhImp, TotVArhImpQ1,
  // TotVArhImpQ2, TotVArhExpQ3, TotVArhExpQ4 (each with 3 phases: 32 float32), Evt: L = 61 × 2 + 2 = 124.
  it('decodes the float meter 213: power positive = imported, per-phase voltages, both energy counters', () => {
    const def = modelDef(213)!;
    expect(def.fixedLength).toBe(124);
    const regs = image(124);
    regs[0] = 213;
    regs[1] = 124;
    for (let o = 2; o < 124; o += 2) putFloat(regs, o, Number.NaN);
    putFloat(regs, 12, 229.7); // PhVphA
    putFloat(regs, 16, 230.4); // PhVphC; PhVphB NaN
    putFloat(regs, 26, 49.98); // Hz
    putFloat(regs, 28, -1234.5); // W: exporting
    putFloat(regs, 44, 310); // VAR
    putFloat(regs, 60, 12_345); // TotWhExp
    putFloat(regs, 68, 8_765_430); // TotWhImp
    expect(meterScanReadings(def, regs)).toEqual({
      acPowerW: -1234.5,
      acVoltageV: [229.7, null, 230.4],
      frequencyHz: 49.98,
      energyWh: 8_765_430,
      energyExportWh: 12_345,
    });
    const r = meterReading(def, regs);
    expect(r.reactivePowerVAr).toBe(310);
    expect(r.voltagePu).toBeCloseTo((229.7 + 230.4) / 2 / 230, 9);
  });

  // model_203.json: A, AphA-C, A_SF, PhV, PhVphA-C, PPV, PhVphAB-CA, V_SF, Hz, Hz_SF, W, WphA-C, W_SF,
  // VA(4), VA_SF, VAR(4), VAR_SF, PF(4), PF_SF, TotWhExp(+3, acc32), TotWhImp(+3, acc32), TotWh_SF.
  it('decodes the integer meter 203 with its scale factors', () => {
    const def = modelDef(203)!;
    const regs = image(def.fixedLength);
    regs[0] = 203;
    regs[1] = def.fixedLength;
    regs[8] = 2297; // PhVphA
    regs[9] = 2312;
    regs[10] = 2304;
    regs[15] = 0xffff; // V_SF = -1
    regs[16] = 4998; // Hz
    regs[17] = 0xfffe; // Hz_SF = -2
    regs[18] = 346; // W
    regs[22] = 1; // W_SF = 1: 3460 W
    regs.splice(38, 2, 0, 0); // TotWhExp: acc32 0 = not implemented
    regs.splice(46, 2, 0x0085, 0xbff6); // TotWhImp = 8765430
    regs[54] = 0; // TotWh_SF
    expect(meterScanReadings(def, regs)).toEqual({
      acPowerW: 3460,
      acVoltageV: [229.7, 231.2, 230.4],
      frequencyHz: 49.98,
      energyWh: 8_765_430,
    });
  });

  it('reports one phase for the single-phase meters 201 and 211', () => {
    for (const id of [201, 211]) {
      const def = modelDef(id)!;
      const regs = image(def.fixedLength);
      expect((meterScanReadings(def, regs).acVoltageV as unknown[]).length).toBe(1);
    }
  });
});
