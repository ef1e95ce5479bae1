/**
 * Regenerates test/fixtures/ieee-european-lv-pandapower-<minute>.json: the three-phase power flow
 * result (res_bus_3ph, from pandapower's runpp_3ph) stored in pandapower's copy of the IEEE European LV
 * Test Feeder at a snapshot minute (IEEE_European_LV_Off_Peak_1, On_Peak_566, Off_Peak_1440), with the model parameters and load powers of that copy, so that
 * the project's three-phase sweep can be checked against an independent solver on the same feeder.
 *
 *   npx tsx bench/extract-pandapower-eulv-reference.ts <pandapower/networks/IEEE_European_LV_On_Peak_566.json> [out.json]
 *   (likewise IEEE_European_LV_Off_Peak_1.json and IEEE_European_LV_Off_Peak_1440.json)
 *
 * pandapower is BSD-3-Clause licensed; only numbers are extracted. Deterministic.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface Frame {
  columns: string[];
  index: number[];
  data: unknown[][];
}

export function extract(file: string): unknown {
  const net = JSON.parse(readFileSync(file, 'utf8'))._object as Record<string, { _object: string } | unknown>;
  const frame = (name: string): Frame => JSON.parse((net[name] as { _object: string })._object) as Frame;
  const rows = (f: Frame) =>
    f.data.map((row, k) => ({ index: f.index[k]!, ...Object.fromEntries(f.columns.map((c, i) => [c, row[i]])) })) as ({
      index: number;
    } & Record<string, unknown>)[];
  const busName = new Map(rows(frame('bus')).map((b) => [b.index, String(b.name)]));
  const [ext] = rows(frame('ext_grid'));
  const [trafo] = rows(frame('trafo'));
  const loads = rows(frame('asymmetric_load')).map((l) => {
    const phase = (['a', 'b', 'c'] as const).find((p) => Number(l[`p_${p}_mw`]) !== 0)!;
    return {
      id: String(l.name),
      bus: busName.get(Number(l.bus))!,
      phase,
      pKW: Number((Number(l[`p_${phase}_mw`]) * 1000).toPrecision(9)),
      qKVAr: Number((Number(l[`q_${phase}_mvar`]) * 1000).toPrecision(9)),
    };
  });
  const voltagesPu: Record<string, [number, number, number]> = {};
  for (const r of rows(frame('res_bus_3ph'))) {
    const name = busName.get(r.index)!;
    if (name.toUpperCase() === 'SOURCEBUS') continue;
    voltagesPu[name] = [r.vm_a_pu, r.vm_b_pu, r.vm_c_pu].map((v) => Number(Number(v).toFixed(8))) as [
      number,
      number,
      number,
    ];
  }
  return {
    source: `pandapower networks/${file.split('/').pop()}, stored res_bus_3ph of runpp_3ph`,
    licence:
      'pandapower: Copyright (c) 2016-2026 by University of Kassel and Fraunhofer IEE Kassel and individual contributors; BSD-3-Clause',
    model: {
      extGrid: { vmPu: ext!.vm_pu, sScMaxMVA: ext!.s_sc_max_mva, rxMax: ext!.rx_max },
      trafo: {
        snMVA: trafo!.sn_mva,
        vnHvKV: trafo!.vn_hv_kv,
        vnLvKV: trafo!.vn_lv_kv,
        vkPercent: trafo!.vk_percent,
        vkrPercent: trafo!.vkr_percent,
        vectorGroup: trafo!.vector_group,
        vk0Percent: trafo!.vk0_percent,
        vkr0Percent: trafo!.vkr0_percent,
        mag0Percent: trafo!.mag0_percent,
        mag0Rx: trafo!.mag0_rx,
        si0HvPartial: trafo!.si0_hv_partial,
      },
    },
    loads,
    voltagesPu,
  };
}

if (process.argv[1]?.endsWith('extract-pandapower-eulv-reference.ts')) {
  const [file, out] = process.argv.slice(2);
  if (!file) {
    process.stderr.write(
      'usage: npx tsx bench/extract-pandapower-eulv-reference.ts <IEEE_European_LV_On_Peak_566.json> [out.json]\n',
    );
    process.exit(2);
  }
  const minute = /_(\d+)\.json$/.exec(file)?.[1] ?? '566';
  const target =
    out ?? join(import.meta.dirname, '..', 'test', 'fixtures', `ieee-european-lv-pandapower-${minute}.json`);
  const data = extract(file) as { voltagesPu: Record<string, number[]> };
  // One bus per line keeps the fixture diffable.
  const text = JSON.stringify(data, null, 2).replace(
    /\[\n\s+([-\d.e]+),\n\s+([-\d.e]+),\n\s+([-\d.e]+)\n\s+\]/g,
    '[$1, $2, $3]',
  );
  writeFileSync(target, `${text}\n`);
  process.stderr.write(`wrote ${target}\n`);
}
