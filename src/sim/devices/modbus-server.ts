import type { AddressInfo } from 'node:net';
import { type Clock, systemClock } from '../../core/clock.js';
import { ErrorCode, P2PError } from '../../core/errors.js';
import { freePort } from '../../core/net.js';
import { seededRandom } from '../../core/prng.js';
import { ModbusServerSerial, ModbusServerTCP } from '../../hal/modbus/client.js';
import { type ModbusEndpoint, rtuSilenceMs } from '../../hal/modbus/url.js';
import { ModbusException, type RegisterDevice } from './register-device.js';

type Callback = (err: unknown, value?: unknown) => void;

/** A device that can be made to fail (tests, bench fault scenarios). */
interface Faulty {
  silent?: boolean;
  forcedException?: number | undefined;
  /** Answers every read with random words (a device whose firmware or memory went wrong); writes go on. */
  garbage?: boolean;
}

/**
 * Serves simulated devices as a real Modbus server: TCP on host:port, or RTU on a serial line (a pty
 * made by socat on the bench). Several devices share one server by unit id, as behind an RS485
 * gateway; a request for a unit that is not there gets no answer, as on a real bus.
 */
export class SimulatedModbusServer {
  private server: { close(cb: () => void): void } | undefined;
  url = '';
  /**
   * A pty carries bytes at once; with `wireBaud` set, each answer waits the time the request and the
   * reply would take on an RS485 line at that rate (8N2, 11 bits a character), so that the bench
   * measures the bus manager against real wire time.
   */
  wireBaud: number | undefined;
  /** The last error of the serial port under an RTU server (kept, not thrown: the pty may vanish first at shutdown). */
  lastPortError: string | undefined;

  constructor(
    readonly devices: Map<number, RegisterDevice & Faulty>,
    private readonly clock: Clock = systemClock,
  ) {}

  private handle<T>(unit: number, cb: Callback, op: (d: RegisterDevice) => T, bytes?: [number, number]): void {
    const device = this.devices.get(unit);
    if (!device || device.silent) return; // no answer: the master times out
    let reply: [unknown, unknown?];
    if (device.forcedException !== undefined) reply = [{ modbusErrorCode: device.forcedException, msg: 'forced' }];
    else {
      try {
        const value = op(device);
        reply = [null, device.garbage ? this.scramble(value) : value];
      } catch (err) {
        if (err instanceof ModbusException) reply = [{ modbusErrorCode: err.modbusErrorCode, msg: err.message }];
        else reply = [{ modbusErrorCode: 4, msg: String(err) }];
      }
    }
    if (this.wireBaud && bytes) setTimeout(() => cb(...reply), ((bytes[0] + bytes[1]) * 11 * 1000) / this.wireBaud);
    else cb(...reply);
  }

  private readonly random = seededRandom(0x5eed);

  /** Random words in the shape of a read's answer; a write's answer (none) stays as it is. */
  private scramble(value: unknown): unknown {
    const word = () => Math.floor(this.random() * 0x10000);
    if (Array.isArray(value)) return value.map(word);
    return typeof value === 'number' ? word() : value;
  }

  private vector(): never {
    const now = () => this.clock.now();
    return {
      getHoldingRegister: (addr: number, unit: number, cb: Callback) =>
        this.handle(unit, cb, (d) => d.readHolding(addr, 1, now())[0], [8, 7]),
      getMultipleHoldingRegisters: (addr: number, length: number, unit: number, cb: Callback) =>
        this.handle(unit, cb, (d) => d.readHolding(addr, length, now()), [8, 5 + 2 * length]),
      getInputRegister: (addr: number, unit: number, cb: Callback) =>
        this.handle(unit, cb, (d) => d.readInput(addr, 1, now())[0], [8, 7]),
      getMultipleInputRegisters: (addr: number, length: number, unit: number, cb: Callback) =>
        this.handle(unit, cb, (d) => d.readInput(addr, length, now()), [8, 5 + 2 * length]),
      setRegister: (addr: number, value: number, unit: number, cb: Callback) =>
        this.handle(unit, cb, (d) => d.writeHolding(addr, [value], now()), [11, 8]),
      setRegisterArray: (addr: number, values: number[], unit: number, cb: Callback) =>
        this.handle(unit, cb, (d) => d.writeHolding(addr, values, now()), [9 + 2 * values.length, 8]),
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
      // modbus-serial takes port 0 for "none given" and listens on 502: pick a free port here instead.
      const port = endpoint.port === 0 ? await freePort(endpoint.host) : endpoint.port;
      const server = new ModbusServerTCP(this.vector(), { host: endpoint.host, port, unitID: 255 });
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
      // A frame ends after this much silence: 3.5 characters as in the RTU specification (30 ms by default).
      interval: Math.max(1, Math.ceil(rtuSilenceMs(endpoint))),
    } as never);
    await new Promise<void>((resolve, reject) => {
      server.on('initialized', () => resolve());
      server.on('error', reject);
      setTimeout(resolve, 300); // some versions emit nothing once the port is open
    });
    // The pty can vanish under the server (its socat ended first at shutdown): a write error then is
    // not the server's to throw, and an unhandled 'error' would end the whole process.
    (server as unknown as { _serverPath?: NodeJS.EventEmitter })._serverPath?.on('error', (err: Error) => {
      this.lastPortError = err.message;
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
