import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gatewayConfig } from '../../src/agent/config.js';
import { buildTransport } from '../../src/agent/wiring.js';
import { provisionIdentities } from '../../src/comms/provision.js';
import { systemClock } from '../../src/core/clock.js';
import { P2PError } from '../../src/core/errors.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir('p2p-comms-wiring-');
afterAll(() => tmp.remove());

const base = (security: Record<string, unknown> | undefined) =>
  gatewayConfig({
    gateway: { id: 'inv-1', kind: 'inverter', cell: 'c1' },
    stateDir: join(tmp.dir, 'var'),
    comms: { transport: 'mqtt', mqtt: { url: 'mqtt://127.0.0.1:1' }, ...(security ? { security } : {}) },
  });

describe('comms.security in the gateway config', () => {
  it('existing configs without a security section still validate; starting them asks for the keys', () => {
    const config = base(undefined);
    expect(config.comms.security).toEqual({ unsigned: false, replayWindow: 512 });
    const err = (() => {
      try {
        buildTransport(config, systemClock);
      } catch (e) {
        return e as P2PError;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(P2PError);
    expect(err?.code).toBe('config');
    expect(err?.message).toMatch(/comms\.security\.keyFile/);
  });

  it('runs unsigned only when told so', () => {
    expect(buildTransport(base({ unsigned: true }), systemClock)?.status().backend).toBe('mqtt');
  });

  it('loads the key file and the operator-signed members list; a key of another gateway is refused', () => {
    const ids = provisionIdentities(
      [
        { id: 'inv-1', cell: 'c1', kind: 'inverter' },
        { id: 'inv-2', cell: 'c1', kind: 'inverter' },
      ],
      join(tmp.dir, 'ids'),
      Date.now(),
    );
    const security = { membersFile: ids.membersFile, operatorPublicKey: ids.operatorPublicKey };
    expect(buildTransport(base({ ...security, keyFile: ids.keyFile('inv-1') }), systemClock)).toBeDefined();
    expect(() => buildTransport(base({ ...security, keyFile: ids.keyFile('inv-2') }), systemClock)).toThrow(
      /belongs to "inv-2"/,
    );
    const wrongOperator = {
      ...security,
      keyFile: ids.keyFile('inv-1'),
      operatorPublicKey: ids.keys.get('inv-2')!.publicKey,
    };
    expect(() => buildTransport(base(wrongOperator), systemClock)).toThrow(/not signed by the configured operator/);
  });
});

describe('comms.transport d2d', () => {
  it('builds the sidelink transport from its section; the section is required', () => {
    const config = gatewayConfig({
      gateway: { id: 'inv-1', kind: 'inverter', cell: 'c1' },
      stateDir: join(tmp.dir, 'var'),
      comms: { transport: 'd2d', d2d: { interface: 'rmnet_data0' }, security: { unsigned: true } },
    });
    expect(config.comms.d2d).toMatchObject({ group: 'ff02::7032', port: 47_000, mtu: 1280, copies: 2 });
    expect(buildTransport(config, systemClock)?.status()).toEqual({
      backend: 'd2d',
      connected: false,
      endpoint: '[ff02::7032%rmnet_data0]:47000',
    });
    expect(() =>
      gatewayConfig({ gateway: { id: 'inv-1', kind: 'inverter', cell: 'c1' }, comms: { transport: 'd2d' } }),
    ).toThrow(/comms\.d2d/);
  });
});
