/**
 * Which SunSpec models carry the measurements of an inverter or a meter, and how many phases each
 * has. The integer models (101-103, 201-204) scale their points by scale factors; their float
 * variants (111-113, 211-214: Fronius' default "float" setting) carry float32 points, NaN where not
 * implemented. Both decode through `decodeModel` to the same point names.
 */
export const INVERTER_MODEL_IDS = [101, 102, 103, 111, 112, 113] as const;
export const METER_MODEL_IDS = [201, 202, 203, 204, 211, 212, 213, 214] as const;

const PHASES: Record<number, readonly string[]> = {
  101: ['A'],
  102: ['A', 'B'],
  103: ['A', 'B', 'C'],
  111: ['A'],
  112: ['A', 'B'],
  113: ['A', 'B', 'C'],
  201: ['A'],
  202: ['A', 'B'],
  203: ['A', 'B', 'C'],
  204: ['A', 'B', 'C'],
  211: ['A'],
  212: ['A', 'B'],
  213: ['A', 'B', 'C'],
  214: ['A', 'B', 'C'],
};

/** The phases a measurement model reports (A; A and B for split phase; A, B and C). */
export function phasesOf(modelId: number): readonly string[] {
  return PHASES[modelId] ?? ['A', 'B', 'C'];
}

export function isInverterModel(id: number): boolean {
  return (INVERTER_MODEL_IDS as readonly number[]).includes(id);
}

export function isMeterModel(id: number): boolean {
  return (METER_MODEL_IDS as readonly number[]).includes(id);
}

/** The per-phase values of `prefix` + phase letter, `null` where the device leaves one out. */
export function perPhase(modelId: number, v: Record<string, number | string>, prefix: string): (number | null)[] {
  return phasesOf(modelId).map((p) => {
    const x = v[`${prefix}${p}`];
    return typeof x === 'number' ? x : null;
  });
}
