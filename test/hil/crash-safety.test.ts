import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { MqttTransport } from '../../src/comms/mqtt-transport.js';
import { systemClock } from '../../src/core/clock.js';
import { GatewayMetrics } from '../../src/core/metrics.js';
import { seededRandom } from '../../src/core/prng.js';
import { Ledger } from '../../src/platform/ledger/ledger.js';
import { Membership } from '../../src/platform/membership.js';
import { BROKERS } from '../helpers/brokers.js';
import { eventually, freePort, startCli, tempDir } from '../helpers/net.js';
import { securityFor, signedCell, silentLog } from '../helpers/signed-cell.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const KILLS = 50;

/**
 * The platform gateway (`p2p-edge run`, role `platform`) is killed with SIGKILL 50 times at random
 * points (while starting, while storing intervals, while writing readings) as a house gateway sends
 * it a metering interval's energy every 40 ms through the broker. Every interval the house sent must
 * end up in the platform's database exactly once, and in its readings once: the platform stores an
 * interval before it acknowledges it, and the house resends what was not acknowledged.
 */
describe('crash safety: the platform killed with SIGKILL 50 times', () => {
  it('loses no acknowledged reading and stores none twice', async () => {
    const broker = await BROKERS[0]!.start();
    const ids = signedCell(['platform-1', 'inv-1'], join(tmp.dir, 'ids'), Date.now(), 'c1', {
      'platform-1': 'platform',
    });
    const db = join(tmp.dir, 'platform.db');
    {
      const ledger = Ledger.open(db);
      const members = new Membership(ledger.db, { id: 'operator', privateKey: ids.operator.privateKey }, () => 0);
      members.register({ id: 'inv-1', publicKey: ids.keys.get('inv-1')!.publicKey, role: 'prosumer', cell: 'c1' });
      members.admit('inv-1');
      ledger.close();
    }
    const statusPort = await freePort();
    const config = join(tmp.dir, 'platform.yaml');
    writeFileSync(
      config,
      stringify({
        gateway: { id: 'platform-1', kind: 'platform', cell: 'c1' },
        platform: { db, cells: ['c1'], meteringIntervalS: 1 },
        scheduler: { primaryMs: 100, secondaryMs: 100, tertiaryMs: 60_000 },
        stateDir: join(tmp.dir, 'state'),
        status: { host: '127.0.0.1', port: statusPort },
        log: { level: 'warn' },
        comms: {
          transport: 'mqtt',
          mqtt: { url: broker.url, keepaliveS: 5 },
          security: {
            keyFile: ids.keyFile('platform-1'),
            membersFile: ids.membersFile,
            operatorPublicKey: ids.operatorPublicKey,
          },
        },
      }),
    );
    const metrics = new GatewayMetrics({ gateway: 'inv-1' });
    const house = new MqttTransport(
      { url: broker.url, keepaliveS: 5 },
      {
        gatewayId: 'inv-1',
        cell: 'c1',
        role: 'inverter',
        version: 'test',
        publicKey: ids.keys.get('inv-1')!.publicKey,
      },
      {
        clock: systemClock,
        log: silentLog,
        metrics,
        security: securityFor(ids, 'inv-1'),
        stateDir: join(tmp.dir, 'house'),
      },
    );
    await house.start();
    // A metering interval of the house's meter every 40 ms, each 40 ms long, from now on.
    const start = Date.now();
    let sent = 0;
    const send = () => {
      const fromMs = start + sent * 40;
      sent++;
      house
        .publish(
          'meter',
          'energy',
          { fromMs, toMs: fromMs + 40, netKWh: 0.001 * sent, coveredMs: 40 },
          { target: 'platform-1' },
        )
        .catch(() => {});
    };
    // `eventually` waits for a value other than undefined.
    const platformUp = async () =>
      fetch(`http://127.0.0.1:${statusPort}/healthz`)
        .then((r) => r.ok || undefined)
        .catch(() => undefined);
    const outboxEmpty = () => house.linkQuality().outboxPending === 0 || undefined;
    const first = startCli(['run', '--config', config]);
    await eventually(platformUp, 20_000);
    send();
    await eventually(outboxEmpty, 20_000);
    first.child.kill('SIGKILL');
    await first.exited;
    const sender = setInterval(send, 40);
    const random = seededRandom(2026);
    try {
      for (let k = 0; k < KILLS; k++) {
        const p = startCli(['run', '--config', config]);
        // Half the kills while the process starts, half while it runs.
        if (k % 2 === 1) await eventually(platformUp, 20_000);
        await new Promise((r) => setTimeout(r, 50 + random() * 700));
        p.child.kill('SIGKILL');
        await p.exited;
      }
      const last = startCli(['run', '--config', config]);
      await eventually(platformUp, 20_000);
      clearInterval(sender);
      // Everything the house sent is acknowledged once the platform has it all.
      await eventually(outboxEmpty, 60_000);
      // One more metering interval, so that the last interval is written to the readings too.
      await new Promise((r) => setTimeout(r, 2500));
      last.child.kill('SIGTERM');
      expect(await last.exited).toBe(0);
    } finally {
      clearInterval(sender);
      await house.close();
      await broker.close();
    }
    const ledger = Ledger.open(db, { mustExist: true });
    const stored = ledger.db
      .prepare(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT seq) AS distinct_seq FROM platform_meter_intervals WHERE member = 'inv-1'",
      )
      .get() as { n: number; distinct_seq: number };
    const intervals = ledger.db
      .prepare(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT time_ms) AS distinct_time FROM platform_readings WHERE member = 'inv-1'",
      )
      .get() as { n: number; distinct_time: number };
    ledger.close();
    expect(stored.n).toBe(sent);
    expect(stored.distinct_seq).toBe(sent);
    // Readings are written once each, in order (an interval resent after its reading was due stays
    // out of the readings, counted late; settlement reads the intervals themselves).
    expect(intervals.n).toBe(intervals.distinct_time);
    expect(intervals.n).toBeGreaterThan(20);
  }, 400_000);
});
