import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { GatewayConfig, gatewayConfig } from '../../src/agent/config.js';
import { SCENARIO_DIR, ScenarioSchema } from '../../src/bench/scenario.js';
import { ErrorCode } from '../../src/core/errors.js';
import { parseDataText, parseWith, readDataFile } from '../../src/core/validate.js';
import { RegisterMapSchema } from '../../src/drivers/register-map.js';
import { SettlementConfig, settleInterval } from '../../src/platform/settlement.js';
import { assertNamesField, fuzz, mutated, mutatedOneOf, outcome } from '../helpers/fuzz.js';

/**
 * Fuzzing of the configuration files (docs/fuzzing.md): the gateway config (every kind, the platform's
 * included), bench scenarios, register-map device files and the settlement config. Arbitrary text,
 * and valid files with fields mutated (wrong types, NaN, negative, huge, missing, extra keys): the
 * loader returns a config or throws a `config`/`input` P2PError naming the field, nothing else.
 */

// Generated YAML is full of unknown tags and directives; the yaml package warns about each through
// process.emitWarning. Expected here, so kept out of the test output.
const quietWarnings = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
afterAll(() => quietWarnings.mockRestore());

const CONFIG_DIR = join(import.meta.dirname, '..', '..', 'config');
const examples = readdirSync(CONFIG_DIR)
  .filter((f) => f.endsWith('.example.yaml'))
  .map((f) => readDataFile(join(CONFIG_DIR, f), ErrorCode.config));
const scenarios = readdirSync(SCENARIO_DIR).map((f) => readDataFile(join(SCENARIO_DIR, f), ErrorCode.input));
const registerMap = readDataFile(join(CONFIG_DIR, 'devices', 'sdm630.register-map.yaml'), ErrorCode.config);

const settlementConfig = {
  networkOperator: 'dso',
  networkFeePerKWh: 0.02,
  platform: 'platform-1',
  platformFeePerKWh: 0.004,
  levelAbove: { id: 'grid', importPricePerKWh: 0.3, exportPricePerKWh: 0.05 },
};

/** Text that looks a little like YAML or JSON: keys, values, brackets, anchors, tags, indentation. */
const dataText = fc
  .tuple(
    fc.array(
      fc.oneof(
        fc.constantFrom(
          'gateway:',
          '  id: gw-1',
          '  kind: inverter',
          '  cell: c1',
          'devices:',
          '  - driver: sunspec',
          '    modbus: tcp://127.0.0.1:502',
          'points: [',
          '{',
          '}',
          ']',
          ': ',
          '- ',
          '&a [1, 2]',
          '*a',
          '!!binary aGk=',
          '!!set {a, b}',
          '!custom x',
          '<<: *a',
          '---',
          '...',
          '"',
          "'",
          '\t',
          '#',
          '%YAML 1.2',
          '0x10',
          '.nan',
          '-.inf',
          '1e400',
          'null',
          '~',
        ),
        fc.string({ maxLength: 12 }),
        fc.string({ unit: 'binary', maxLength: 6 }),
      ),
      { maxLength: 12 },
    ),
    fc.constantFrom('\n', ' ', '\n  ', ''),
  )
  .map(([parts, separator]) => parts.join(separator));

function checkSchemaOutcome<T>(run: () => T, code: ErrorCode): T | undefined {
  const r = outcome(run, [code]);
  if (r.ok) return r.value;
  assertNamesField(r.error);
  return undefined;
}

describe('fuzz: gateway config (src/agent/config.ts), platform config included', () => {
  it('the examples are valid and parsing is idempotent', () => {
    expect(examples.length).toBeGreaterThanOrEqual(5);
    for (const e of examples) {
      const cfg = gatewayConfig(e as never);
      expect(gatewayConfig(cfg as never)).toEqual(cfg);
    }
  });

  it('mutated configs: a config (parsing its own output again gives the same) or a config error naming the field', () => {
    fc.assert(
      fc.property(mutatedOneOf(examples), (input) => {
        const cfg = checkSchemaOutcome(() => gatewayConfig(input as never, 'gw.yaml'), ErrorCode.config);
        if (cfg) expect(parseWith(GatewayConfig, cfg, { code: ErrorCode.config })).toEqual(cfg);
      }),
      fuzz(),
    );
  });

  it('round trip through YAML text: the file gives what the object gives', () => {
    fc.assert(
      fc.property(mutatedOneOf(examples), (input) => {
        const fromText = parseDataText(toYaml(input), 'gw.yaml', ErrorCode.config);
        expect(fromText).toEqual(input);
        const a = outcome(() => gatewayConfig(input as never, 'gw.yaml'), [ErrorCode.config]);
        const b = outcome(() => gatewayConfig(fromText as never, 'gw.yaml'), [ErrorCode.config]);
        expect(b.ok ? b.value : b.error.message).toEqual(a.ok ? a.value : a.error.message);
      }),
      fuzz(0.02),
    );
  });

  it('arbitrary YAML and JSON text: a config, or a config error', () => {
    fc.assert(
      fc.property(dataText, fc.constantFrom('gw.yaml', 'gw.json'), (text, file) => {
        const data = outcome(() => parseDataText(text, file, ErrorCode.config), [ErrorCode.config]);
        if (data.ok) checkSchemaOutcome(() => gatewayConfig(data.value as never, file), ErrorCode.config);
        else expect(data.error.message).toContain(file);
      }),
      fuzz(),
    );
  });
});

describe('fuzz: bench scenario files (src/bench/scenario.ts)', () => {
  it('mutated scenarios: a scenario or an input error naming the field', () => {
    fc.assert(
      fc.property(mutatedOneOf(scenarios), (input) => {
        const s = checkSchemaOutcome(
          () => parseWith(ScenarioSchema, input, { file: 's.yaml', code: ErrorCode.input }),
          ErrorCode.input,
        );
        if (s) expect(parseWith(ScenarioSchema, s, { code: ErrorCode.input })).toEqual(s);
      }),
      fuzz(),
    );
  });

  it('arbitrary text: a scenario or an input error', () => {
    fc.assert(
      fc.property(dataText, (text) => {
        const data = outcome(() => parseDataText(text, 's.yaml', ErrorCode.input), [ErrorCode.input]);
        if (data.ok)
          checkSchemaOutcome(
            () => parseWith(ScenarioSchema, data.value, { file: 's.yaml', code: ErrorCode.input }),
            ErrorCode.input,
          );
      }),
      fuzz(0.3),
    );
  });
});

describe('fuzz: register-map device files (src/drivers/register-map.ts)', () => {
  const validPoint = fc.record(
    {
      point: fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,15}$/),
      address: fc.integer({ min: 0, max: 0xffff }),
      type: fc.constantFrom(
        'uint16' as const,
        'int16' as const,
        'uint32' as const,
        'int32' as const,
        'float32' as const,
      ),
      wordOrder: fc.constantFrom('big' as const, 'little' as const),
      scale: fc.double({ noNaN: true, noDefaultInfinity: true }),
      offset: fc.double({ noNaN: true, noDefaultInfinity: true }),
    },
    { requiredKeys: ['point', 'address', 'type'] },
  );
  const validMap = fc.record({
    name: fc.string({ minLength: 1, maxLength: 20 }),
    function: fc.constantFrom('holding' as const, 'input' as const),
    points: fc.array(validPoint, { minLength: 1, maxLength: 6 }),
  });

  it('valid maps parse to themselves with the defaults filled in, also through YAML text', () => {
    fc.assert(
      fc.property(validMap, (map) => {
        const parsed = parseWith(RegisterMapSchema, map, { code: ErrorCode.config });
        expect(parsed).toEqual({
          ...map,
          points: map.points.map((p) => ({ wordOrder: 'big', scale: 1, offset: 0, ...p })),
        });
        const text = parseDataText(toYaml(map), 'm.register-map.yaml', ErrorCode.config);
        expect(parseWith(RegisterMapSchema, text, { code: ErrorCode.config })).toEqual(parsed);
      }),
      fuzz(0.05),
    );
  });

  it('mutated maps: a map or a config error naming the field', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          mutated(registerMap),
          validMap.chain((m) => mutated(m)),
        ),
        (input) => {
          checkSchemaOutcome(
            () => parseWith(RegisterMapSchema, input, { file: 'm.yaml', code: ErrorCode.config }),
            ErrorCode.config,
          );
        },
      ),
      fuzz(),
    );
  });
});

describe('fuzz: settlement config (src/platform/settlement.ts, `platform settle draft --config`)', () => {
  it('the valid config settles to amounts summing to zero', () => {
    const s = settleInterval(
      1,
      [{ interval: 1, seller: 'a', buyer: 'b', kWh: 2, pricePerKWh: 0.1 }],
      { a: 2, b: -2 },
      settlementConfig,
    );
    expect(Object.values(s.amounts).reduce((x, y) => x + y, 0)).toBeCloseTo(0, 9);
  });

  it('mutated configs: a settlement or an input error naming the field', () => {
    fc.assert(
      fc.property(mutated(settlementConfig), (config) => {
        const r = checkSchemaOutcome(
          () =>
            settleInterval(
              1,
              [{ interval: 1, seller: 'a', buyer: 'b', kWh: 2, pricePerKWh: 0.1 }],
              { a: 2, b: -2 },
              config,
            ),
          ErrorCode.input,
        );
        if (r) expect(SettlementConfig.safeParse(config).success).toBe(true);
      }),
      fuzz(),
    );
  });
});
