import type { AddressInfo } from 'node:net';
import { type Clock, systemClock } from '../../core/clock.js';
import { ErrorCode, P2PError } from '../../core/errors.js';
import { ModbusServerSerial, ModbusServerTCP } from '../../hal/modbus/client.js';
import type { ModbusEndpoint } from '../../hal/modbus/url.js';
import { ModbusException, type RegisterDevice } from './register-device.js';

type Callback = (err: unknown, value?: unknown) => void;

/** A device that can be made to fail (tests, bench fault scenarios). */
interface Faulty {
  silent?: boolean;
  forcedException?: number | undefined;
}

/**
 * Serves simulated devices as a real Modbus server: TCP on host:port, or RTU on a serial line (a pty
 * made by socat on the bench). Several devices share one server by unit id, as behind an RS485
 * gateway; a request for a unit that is not there gets no answer, as on a real bus.
 */
export class SimulatedModbusServer {
  private server: { close(cb: () => void): void } | undefined;
  url = '';

  constructor(
    readonly devices: Map<number, RegisterDevice & Faulty>,
    private readonly clock: Clock = systemClock,
  ) {}

  private handle<T>(unit: number, cb: Callback, op: (d: RegisterDevice) => T): void {
    const device = this.devices.get(unit);
    if (!device || device.silent) return; // no answer: the master times out
    if (device.forcedException !== undefined) {
      cb({ modbusErrorCode: device.forcedException, msg: 'forced' });
      return;
    }
    try {
      cb(null, op(device));
    } catch (err) {
      if (err instanceof ModbusException) cb({ modbusErrorCode: err.modbusErrorCode, msg: err.message });
      else cb({ modbusErrorCode: 4, msg: String(err) });
    }
  }

  private vector(): never {
    const now = () => this.clock.now();
    return {
      getHoldingRegister: (addr: number, unit: number, cb: Callback) =>
        this.handle(unit, cb, (d) => d.readHolding(addr, 1, now())[0]),
      getMultipleHoldingRegisters: (addr: number, length: number, unit: number, cb: Callback) =>
        this.handle(unit, cb, (d) => d.readHolding(addr, length, now())),
      getInputRegister: (addr: number, unit: number, cb: Callback) =>
        this.handle(unit, cb, (d) => d.readInput(addr, 1, now())[0]),
      getMultipleInputRegisters: (addr: number, length: number, unit: number, cb: Callback) =>
        this.handle(unit, cb, (d) => d.readInput(addr, length, now())),
      setRegister: (addr: number, value: number, unit: number, cb: Callback) =>
        this.handle(unit, cb, (d) => d.writeHolding(addr, [value], now())),
      setRegisterArray: (addr: number, values: number[], unit: number, cb: Callback) =>
        this.handle(unit, cb, (d) => d.writeHolding(addr, values, now())),
      getCoil: (_addr: number, unit: number, cb: Callback) =>
        this.handle(unit, cb, () => {
          throw new ModbusException(1);
        }),
      setCoil: (_addr: number, _v: boolean, unit: number, cb: Callback) =>
        this.handle(unit, cb, () => {
          throw new ModbusException(1);
        }),
      // modbus-serial's vector types want Error objects; it only reads `modbusErrorCode` from them.
    } as never;
  }

  async listen(endpoint: ModbusEndpoint): Promise<string> {
    if (endpoint.kind === 'tcp') {
      const server = new ModbusServerTCP(this.vector(), { host: endpoint.host, port: endpoint.port, unitID: 255 });
      await new Promise<void>((resolve, reject) => {
        server.on('initialized', () => resolve());
        server.on('socketError', reject);
        server.on('error', reject);
      });
      const address = (server as unknown as { _server: { address(): AddressInfo } })._server.address();
      this.server = server;
      this.url = `tcp://${endpoint.host}:${address.port}`;
      return this.url;
    }
    try {
      await import('serialport');
    } catch (err) {
      throw new P2PError(ErrorCode.unavailable, 'serving Modbus RTU needs the serialport module', {
        component: 'sim',
        cause: err,
      });
    }
    const server = new ModbusServerSerial(this.vector(), {
      path: endpoint.path,
      baudRate: endpoint.baudRate,
      parity: endpoint.parity,
      dataBits: endpoint.dataBits,
      stopBits: endpoint.stopBits,
      unitID: 255,
    } as never);
    await new Promise<void>((resolve, reject) => {
      server.on('initialized', () => resolve());
      server.on('error', reject);
      setTimeout(resolve, 300); // some versions emit nothing once the port is open
    });
    this.server = server;
    this.url = `rtu://${endpoint.path}?baud=${endpoint.baudRate}&parity=${endpoint.parity}`;
    return this.url;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
