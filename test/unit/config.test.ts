import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadGatewayConfig, rolesOf } from '../../src/agent/config.js';
import { exitCodeFor, type P2PError } from '../../src/core/errors.js';
import { tempDir } from '../helpers/net.js';

const CONFIG_DIR = join(import.meta.dirname, '..', '..', 'config');
const tmp = tempDir();
afterAll(() => tmp.remove());

function loadError(yaml: string): P2PError {
  const file = join(tmp.dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  try {
    loadGatewayConfig(file);
  } catch (err) {
    expect((err as P2PError).message).toContain(file);
    expect(exitCodeFor(err)).toBe(2);
    return err as P2PError;
  }
  throw new Error('config was accepted');
}

const base = 'gateway: { id: g1, kind: inverter, cell: c1 }\n';

describe('gateway config', () => {
  it('accepts every shipped example', () => {
    const examples = readdirSync(CONFIG_DIR).filter((f) => f.endsWith('.example.yaml'));
    expect(examples.length).toBeGreaterThanOrEqual(4);
    for (const f of examples) expect(() => loadGatewayConfig(join(CONFIG_DIR, f)), f).not.toThrow();
  });

  it('fills in defaults and the roles of the kind', () => {
    const file = join(tmp.dir, 'min.yaml');
    writeFileSync(file, base);
    const c = loadGatewayConfig(file);
    expect(c.scheduler).toEqual({ primaryMs: 1000, secondaryMs: 5000, tertiaryMs: 900_000 });
    expect(c.status).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(rolesOf(c)).toEqual(['prosumer', 'voltage-agent']);
  });

  it('names the field of an unknown kind', () => {
    expect(loadError('gateway: { id: g1, kind: toaster, cell: c1 }\n').field).toBe('gateway.kind');
  });

  it('rejects unknown keys (a typo must not be silently ignored)', () => {
    expect(loadError(`${base}schedular: { primaryMs: 10 }\n`).message).toMatch(/schedular/);
  });

  it('rejects inconsistent time scales', () => {
    expect(loadError(`${base}scheduler: { primaryMs: 5000, secondaryMs: 1000 }\n`).message).toMatch(
      /primaryMs <= secondaryMs/,
    );
  });

  it("distributed voltage control needs the feeder and the gateway's bus", () => {
    expect(loadError(`${base}voltageControl: { method: dual }\n`).message).toMatch(
      /voltageControl\.feederFile: method "dual" needs the cell's feeder/,
    );
    expect(loadError(`${base}voltageControl: { method: dual, feederFile: f.json }\n`).message).toMatch(
      /gateway\.bus: method "dual" needs the feeder bus/,
    );
  });

  it('voltage ascent: one method for both limits, or one per limit, else plain over and accelerated under', () => {
    const ascentOf = (yaml: string) => {
      const file = join(tmp.dir, `a${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(file, `${base}${yaml}`);
      return loadGatewayConfig(file).voltageControl.ascent;
    };
    expect(ascentOf('')).toEqual({ overvoltage: 'plain', undervoltage: 'accelerated' });
    expect(ascentOf('voltageControl: { ascent: accelerated }\n')).toEqual({
      overvoltage: 'accelerated',
      undervoltage: 'accelerated',
    });
    expect(ascentOf('voltageControl: { ascent: { undervoltage: plain } }\n')).toEqual({
      overvoltage: 'plain',
      undervoltage: 'plain',
    });
    expect(loadError(`${base}voltageControl: { ascent: nesterov }\n`).message).toMatch(/voltageControl\.ascent/);
  });

  it('refuses a status page beyond loopback without a token', () => {
    expect(loadError(`${base}status: { host: 0.0.0.0 }\n`).field).toBe('status.token');
  });

  it('needs an MQTT url for the mqtt transport', () => {
    expect(loadError(`${base}comms: { transport: mqtt }\n`).field).toBe('comms.mqtt');
  });

  it('rejects duplicate device ids', () => {
    const dev = '{ id: d1, driver: simulated, kind: pv-inverter, bus: b1 }';
    expect(loadError(`${base}devices: [${dev}, ${dev}]\n`).field).toBe('devices[1].id');
  });

  it('names a bad device field by index', () => {
    expect(
      loadError(`${base}devices: [{ id: d1, driver: simulated, kind: pv-inverter, bus: b1, ratedW: -5 }]\n`).field,
    ).toBe('devices[0].ratedW');
  });
});
