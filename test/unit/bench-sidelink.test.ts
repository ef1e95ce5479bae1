import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gatewayConfig } from '../../src/agent/config.js';
import { benchConfigs } from '../../src/bench/configs.js';
import { BenchGrid } from '../../src/bench/grid.js';
import { hostGroups } from '../../src/bench/hosting.js';
import { cellGateways } from '../../src/bench/provision.js';
import { loadScenario } from '../../src/bench/scenario.js';
import { deliveredWhileCut } from '../../src/bench/uplink-cut.js';
import { CompressedDay } from '../../src/sim/profiles.js';
import { tempDir } from '../helpers/net.js';

const tmp = tempDir('p2p-bench-sidelink-');

describe('the sidelink scenario', () => {
  const scenario = loadScenario('sidelink');
  const now = Date.parse('2026-06-21T11:00:00Z');
  const grid = new BenchGrid(scenario, new CompressedDay(now, scenario.speedup, 11), now);
  const cells = cellGateways(scenario, grid);

  it("puts each cell's transformer gateway and houses on its segment, and nothing else", () => {
    expect([...cells.keys()]).toEqual(['cell-a', 'cell-b']);
    expect(cells.get('cell-a')).toEqual(['tx-cell-a', 'inv-1', 'inv-2', 'inv-3', 'inv-4', 'inv-5']);
    expect(cells.get('cell-b')).toEqual(['tx-cell-b', 'inv-6', 'inv-7', 'inv-8', 'inv-9', 'inv-10']);
  });

  it('gives the gateways on a sidelink a hybrid transport (gossip over D2D, the rest over the broker) and a status token; the others MQTT on loopback', () => {
    const addresses = new Map([...cells.values()].flat().map((id, i) => [id, `10.200.1.${i + 1}`]));
    const configs = benchConfigs(scenario, grid.devices, {
      brokerUrls: {
        '*': 'mqtt://10.200.0.2:1883',
        'cell-a': 'mqtt://10.200.0.2:1884',
        'cell-b': 'mqtt://10.200.0.2:1885',
      },
      stateDir: tmp.dir,
      feederFiles: Object.fromEntries(scenario.cells.map((c) => [c.id, join(tmp.dir, `${c.id}.json`)])),
      endpoints: Object.fromEntries(
        grid.devices.map((d, i) => [d.id, { url: `tcp://10.200.0.1:${20_000 + i}`, unit: 1 }]),
      ),
      statusPorts: {},
      speedup: scenario.speedup,
      sidelinkAddresses: addresses,
      statusToken: 'a'.repeat(32),
    }).map((c) => gatewayConfig(c));
    for (const c of configs) {
      const onSidelink = addresses.has(c.gateway.id);
      expect(c.comms.transport, c.gateway.id).toBe(onSidelink ? 'hybrid' : 'mqtt');
      if (!onSidelink) {
        expect(c.status.host).toBe('127.0.0.1');
        continue;
      }
      expect(c.comms.d2d?.interface).toBe('d2d0');
      expect(c.comms.routes).toEqual({ gossip: 'd2d', default: 'mqtt' });
      expect(c.comms.relay.offer).toBe(true);
      expect(c.comms.mqtt?.url).toBe(c.gateway.cell === 'cell-a' ? 'mqtt://10.200.0.2:1884' : 'mqtt://10.200.0.2:1885');
      expect([c.status.host, c.status.token]).toEqual([addresses.get(c.gateway.id), 'a'.repeat(32)]);
    }
    expect(configs.filter((c) => c.comms.transport === 'hybrid')).toHaveLength(12);
  });

  it('runs every gateway in a namespace alone in its process', () => {
    const gateways = ['tx-cell-a', 'inv-1', 'inv-2', 'agg-1', 'dso-1'].map((id) => ({
      id,
      configFile: `${id}.yaml`,
      statusPort: 1,
      ...(id.startsWith('agg') || id.startsWith('dso') ? {} : { prefix: ['ip', 'netns', 'exec', `ns-${id}`] }),
    }));
    const cellOf = new Map(gateways.map((g) => [g.id, 'cell-a']));
    const groups = hostGroups(gateways, { perProcess: 8, alone: new Set(), cellOf });
    expect(groups.map((g) => g.gateways.map((x) => x.id))).toEqual([
      ['tx-cell-a'],
      ['inv-1'],
      ['inv-2'],
      ['agg-1', 'dso-1'],
    ]);
  });

  it('refuses an uplink cut without sidelinks, naming the field', () => {
    const file = join(tmp.dir, 'cut.yaml');
    writeFileSync(
      file,
      'name: x\ncells: [{ id: a, houses: 2 }]\nfaults: [{ kind: uplink-cut, atS: 3, target: inv-1, durationS: 5 }]\n',
    );
    expect(() => loadScenario(file)).toThrow(/faults\[0\]\.kind: an uplink-cut fault needs `sidelink: true`/);
    writeFileSync(
      file,
      'name: x\nsidelink: true\ncells: [{ id: a, houses: 2 }]\nfaults: [{ kind: uplink-cut, atS: 3 }]\n',
    );
    expect(() => loadScenario(file)).toThrow(/faults\[0\]\.target: an uplink-cut fault needs a target/);
  });
});

describe('what a gateway cut off from the broker got through the relay', () => {
  it('counts the messages sent while cut off and acknowledged before the uplink came back', () => {
    // 100 sent before the cut, 98 acknowledged, none given up: 2 still waiting.
    const atCut = { sent: 100, delivered: 98, dropped: 0 };
    // 40 more sent by the last count, 5 more in the last seconds; 44 acknowledged by the end of the cut.
    const r = deliveredWhileCut(
      atCut,
      { sent: 140, delivered: 120, dropped: 0 },
      { sent: 145, delivered: 142, dropped: 0 },
    );
    // 44 acknowledgements: 2 go to the messages waiting at the cut, 5 to those of the last seconds.
    expect(r).toEqual({ sent: 40, delivered: 37, ratio: 0.925 });
  });

  it('never counts more than was sent, nor below zero, and has no ratio without messages', () => {
    const atCut = { sent: 10, delivered: 10, dropped: 0 };
    expect(
      deliveredWhileCut(atCut, { sent: 20, delivered: 20, dropped: 0 }, { sent: 20, delivered: 20, dropped: 0 }),
    ).toEqual({
      sent: 10,
      delivered: 10,
      ratio: 1,
    });
    expect(
      deliveredWhileCut(atCut, { sent: 20, delivered: 10, dropped: 0 }, { sent: 30, delivered: 12, dropped: 0 }),
    ).toEqual({
      sent: 10,
      delivered: 0,
      ratio: 0,
    });
    expect(deliveredWhileCut(atCut, atCut, atCut)).toEqual({ sent: 0, delivered: 0, ratio: null });
    // A message given up before the cut is no longer waiting for an acknowledgement.
    const withDrop = { sent: 10, delivered: 8, dropped: 2 };
    expect(
      deliveredWhileCut(withDrop, { sent: 14, delivered: 8, dropped: 2 }, { sent: 14, delivered: 12, dropped: 2 })
        .delivered,
    ).toBe(4);
  });
});
