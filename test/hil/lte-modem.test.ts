import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { gatewayConfig } from '../../src/agent/config.js';
import { buildLteService } from '../../src/agent/wiring.js';
import { AtChannel, AtCommandError } from '../../src/comms/lte/at-channel.js';
import { LteModem, parseCereg, parseCsq, parseQcsq } from '../../src/comms/lte/modem.js';
import { MemoryBus, MemoryTransport } from '../../src/comms/memory-transport.js';
import { systemClock } from '../../src/core/clock.js';
import { GatewayMetrics } from '../../src/core/metrics.js';
import { MockModem } from '../helpers/mock-modem.js';
import { eventually, tempDir } from '../helpers/net.js';
import { metricValue, silentLog } from '../helpers/signed-cell.js';
import { requireTool } from '../helpers/system-tools.js';

describe('AT response parsers (Quectel EC25 AT manual, 3GPP TS 27.007)', () => {
  it('CSQ: rssi n → −113 + 2n dBm, 99 unknown', () => {
    expect(parseCsq('+CSQ: 20,99')).toEqual({ rssiDbm: -73 });
    expect(parseCsq('+CSQ: 0,3')).toEqual({ rssiDbm: -113, ber: 3 });
    expect(parseCsq('+CSQ: 99,99')).toEqual({});
  });
  it('CEREG: <stat> 1 home, 5 roaming, 3 denied, as query answer and as URC', () => {
    expect(parseCereg('+CEREG: 2,1,"1A2B","01A2D001",7', false)).toBe('home');
    expect(parseCereg('+CEREG: 5', true)).toBe('roaming');
    expect(parseCereg('+CEREG: 2,3', false)).toBe('denied');
  });
  it('QCSQ: SINR in 1/5 dB from −20 dB', () => {
    expect(parseQcsq('+QCSQ: "LTE",-65,-95,150,-9')).toEqual({
      rat: 'LTE',
      rssiDbm: -65,
      rsrpDbm: -95,
      sinrDb: 10,
      rsrqDb: -9,
    });
    expect(parseQcsq('+QCSQ: "NOSERVICE"')).toEqual({ rat: 'NOSERVICE' });
  });
});

describe('LTE modem manager against a scripted modem on a pty (socat)', () => {
  beforeAll(() => {
    requireTool('socat');
  });
  let socat: ChildProcess;
  let host: SerialPort;
  let far: SerialPort;
  let modem: MockModem;
  let at: AtChannel;
  let hostPath = '';
  let farPath = '';
  /** socat's pty pair and the scripted modem on its far end (again after a simulated USB reset). */
  const startPty = async () => {
    socat = spawn('socat', [`pty,raw,echo=0,link=${farPath}`, `pty,raw,echo=0,link=${hostPath}`], { stdio: 'ignore' });
    await eventually(() => (existsSync(farPath) && existsSync(hostPath) ? true : undefined), 5000, 20);
    far = new SerialPort({ path: farPath, baudRate: 115_200 });
    await new Promise((r) => far.once('open', r));
    modem = new MockModem(far);
  };
  const tmp = tempDir('p2p-lte-');

  beforeEach(async () => {
    const a = join(tmp.dir, `modem-${Date.now()}`);
    const b = `${a}-host`;
    hostPath = b;
    farPath = a;
    await startPty();
    host = new SerialPort({ path: b, baudRate: 115_200 });
    await new Promise((r) => host.once('open', r));
    at = new AtChannel(host);
  });
  afterEach(async () => {
    at.close();
    await Promise.all([far, host].map((p) => new Promise((r) => p.close(() => r(undefined)))));
    socat.kill('SIGTERM');
  });

  it('runs one command at a time from a queue, with a timeout per command and +CME ERROR as a clean failure', async () => {
    modem.hung.add('AT+COPS=?');
    modem.failing.add('AT+CGACT=1,1');
    const results = await Promise.allSettled([
      at.send({ command: 'AT+CSQ', prefix: '+CSQ:' }),
      at.send({ command: 'AT+COPS=?', timeoutMs: 200 }),
      at.send({ command: 'AT+CGACT=1,1' }),
      at.send({ command: 'AT+CEREG?', prefix: '+CEREG:' }),
    ]);
    expect(modem.overlapped).toBe(false);
    expect(modem.received).toEqual(['AT+CSQ', 'AT+COPS=?', 'AT+CGACT=1,1', 'AT+CEREG?']);
    expect(results[0]).toMatchObject({ status: 'fulfilled', value: { lines: ['+CSQ: 20,99'] } });
    expect(results[1]).toMatchObject({
      status: 'rejected',
      reason: { message: 'modem: no answer to AT+COPS=? within 200 ms' },
    });
    const cme = (results[2] as PromiseRejectedResult).reason as AtCommandError;
    expect(cme).toBeInstanceOf(AtCommandError);
    expect(cme.cmeError).toBe(30); // 30: no network service
    expect(results[3]).toMatchObject({ status: 'fulfilled' });
  });

  it('tells URCs interleaved with a response apart, and follows registration from them', async () => {
    const lte = new LteModem(at, {}, { log: silentLog });
    modem.answerDelayMs = 40;
    const pending = at.send({ command: 'AT+CSQ', prefix: '+CSQ:' });
    setTimeout(() => modem.urc('+CEREG: 5,"1A2B","01A2D001",7'), 10);
    expect((await pending).lines).toEqual(['+CSQ: 20,99']);
    expect(lte.status().registration).toBe('roaming');
  });

  it('reads registration and signal into the status and the metrics', async () => {
    const metrics = new GatewayMetrics({ gateway: 'g' });
    const lte = new LteModem(at, { apn: 'iot.example' }, { log: silentLog, metrics });
    await lte.init();
    expect(modem.received).toContain('AT+CGDCONT=1,"IP","iot.example"');
    const status = await lte.poll();
    expect(status).toMatchObject({
      registration: 'home',
      rssiDbm: -73,
      rsrpDbm: -95,
      sinrDb: 10,
      rsrqDb: -9,
      rat: 'LTE',
      dataLink: true,
    });
    // One metric per quantity, each of one unit.
    expect(await metricValue(metrics, 'p2p_lte_rssi_dbm', {})).toBe(-73);
    expect(await metricValue(metrics, 'p2p_lte_rsrp_dbm', {})).toBe(-95);
    expect(await metricValue(metrics, 'p2p_lte_sinr_db', {})).toBe(10);
    expect(await metricValue(metrics, 'p2p_lte_rsrq_db', {})).toBe(-9);
    expect(await metricValue(metrics, 'p2p_lte_registered', {})).toBe(1);
  });

  it('climbs the recovery ladder while the data link stays down and stops once a step restores it', async () => {
    const metrics = new GatewayMetrics({ gateway: 'g' });
    let powerCycles = 0;
    const lte = new LteModem(
      at,
      { failuresBeforeRecovery: 2, powerCycle: async () => void powerCycles++ },
      { log: silentLog, metrics },
    );
    modem.pdpActive = false;
    modem.failing.add('AT+CGACT=1,1'); // re-attaching does not help
    modem.fixedBy = 'AT+CFUN=1,1'; // the modem reset does
    const steps: string[] = [];
    for (let i = 0; i < 8; i++) {
      const before = lte.status().recoveries;
      const s = await lte.supervise();
      if (s.recoveries > before) steps.push(modem.received.filter((c) => /CGACT=1,1|CFUN=0|CFUN=1,1/.test(c)).at(-1)!);
    }
    expect(steps).toEqual(['AT+CGACT=1,1', 'AT+CFUN=0', 'AT+CFUN=1,1']);
    expect(lte.status()).toMatchObject({ dataLink: true, recoveries: 3, nextRecovery: 'power-cycle' });
    expect(powerCycles).toBe(0);
    expect(await metricValue(metrics, 'p2p_lte_recoveries_total', { step: 'reattach' })).toBe(1);
    expect(await metricValue(metrics, 'p2p_lte_recoveries_total', { step: 'modem-reset' })).toBe(1);
    // A modem that does not answer at all (hung firmware) ends at the power-cycle hook.
    modem.fixedBy = undefined;
    modem.pdpActive = false;
    for (const c of ['AT+CSQ', 'AT+CFUN=0', 'AT+CFUN=1,1']) modem.hung.add(c);
    const hung = new LteModem(
      at,
      { failuresBeforeRecovery: 1, powerCycle: async () => void powerCycles++ },
      { log: silentLog },
    );
    (hung as unknown as { step: number }).step = 3;
    await hung.supervise();
    expect(powerCycles).toBe(1);
  });

  it('runs as a gateway service from comms.lte, shows the radio in the link quality, survives the tty vanishing', async () => {
    at.close();
    await new Promise((r) => host.close(() => r(undefined)));
    const config = gatewayConfig({
      gateway: { id: 'inv-1', kind: 'inverter', cell: 'c1' },
      comms: { transport: 'none', lte: { port: hostPath, apn: 'iot.example', pollMs: 1000 } },
    });
    const transport = new MemoryTransport(
      new MemoryBus(),
      { gatewayId: 'inv-1', cell: 'c1', role: 'inverter', version: 't', publicKey: '' },
      { clock: systemClock, log: silentLog },
    );
    const service = buildLteService(config, undefined, transport)!;
    await service.start();
    try {
      await eventually(() => (service.status()?.rsrpDbm === -95 ? true : undefined), 5000, 50);
      expect(transport.linkQuality().radio).toMatchObject({ registration: 'home', rsrpDbm: -95, dataLink: 1 });
      expect(modem.received.slice(0, 4)).toEqual([
        'ATE0',
        'AT+CMEE=1',
        'AT+CEREG=2',
        'AT+CGDCONT=1,"IP","iot.example"',
      ]);
      // The modem resets and its USB tty vanishes and comes back: the service opens it again.
      await new Promise((r) => far.close(() => r(undefined)));
      socat.kill('SIGTERM');
      await new Promise((r) => socat.once('exit', r));
      await startPty();
      modem.csqRssi = 25;
      await eventually(() => (service.status()?.rssiDbm === -63 ? true : undefined), 10_000, 50);
      expect(modem.received[0]).toBe('ATE0'); // initialised again on the new port
    } finally {
      await service.stop();
    }
  });
});
