import { ErrorCode, P2PError } from '../../core/errors.js';

/** Where a Modbus bus is: a TCP host:port or a serial line (RTU). */
export type ModbusEndpoint =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'rtu'; path: string; baudRate: number; parity: 'none' | 'even' | 'odd'; dataBits: 7 | 8; stopBits: 1 | 2 };

const BAUD_RATES = [1200, 2400, 4800, 9600, 19_200, 38_400, 57_600, 115_200];

function bad(url: string, why: string, field: string): P2PError {
  return new P2PError(ErrorCode.input, `${field}: "${url}" ${why}`, {
    component: 'modbus',
    field,
    hint: 'tcp://host:port or rtu:///dev/ttyUSB0?baud=9600&parity=none',
  });
}

/** `tcp://host:port` or `rtu:///dev/ttyUSB0?baud=9600&parity=none[&data=8&stop=1]`. */
export function parseModbusUrl(url: string, field = 'modbus'): ModbusEndpoint {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw bad(url, 'is not a URL', field);
  }
  if (u.protocol === 'tcp:') {
    // The URL parser drops a port of 0 (listen on any free port), so read host and port directly.
    const m = /^tcp:\/\/(\[[^\]]+\]|[^:/?#]+)(?::(\d+))?\/?$/i.exec(url);
    if (!m) throw bad(url, 'has no host', field);
    const port = m[2] === undefined ? 502 : Number(m[2]);
    if (!Number.isInteger(port) || port < 0 || port > 65_535) throw bad(url, 'has no valid port', field);
    return { kind: 'tcp', host: m[1]!.replace(/^\[|\]$/g, ''), port };
  }
  if (u.protocol === 'rtu:') {
    let path: string;
    try {
      path = decodeURIComponent(u.pathname);
    } catch {
      throw bad(url, 'has a malformed %-escape in the device path', field);
    }
    if (!path || path === '/') throw bad(url, 'names no serial device', field);
    const baudRate = Number(u.searchParams.get('baud') ?? 9600);
    if (!BAUD_RATES.includes(baudRate))
      throw bad(url, `has an unsupported baud rate (${BAUD_RATES.join(', ')})`, field);
    const parity = (u.searchParams.get('parity') ?? 'none') as 'none' | 'even' | 'odd';
    if (!['none', 'even', 'odd'].includes(parity)) throw bad(url, 'has a parity other than none, even, odd', field);
    const dataBits = Number(u.searchParams.get('data') ?? 8);
    const stopBits = Number(u.searchParams.get('stop') ?? (parity === 'none' ? 2 : 1));
    if (dataBits !== 7 && dataBits !== 8) throw bad(url, 'has data bits other than 7 or 8', field);
    if (stopBits !== 1 && stopBits !== 2) throw bad(url, 'has stop bits other than 1 or 2', field);
    return { kind: 'rtu', path, baudRate, parity, dataBits, stopBits };
  }
  throw bad(url, 'is neither tcp:// nor rtu://', field);
}

export function endpointKey(e: ModbusEndpoint): string {
  return e.kind === 'tcp' ? `tcp://${e.host}:${e.port}` : `rtu://${e.path}`;
}

/**
 * Time on the wire of an RTU frame of `bytes` bytes, ms: 1 start bit, data bits, parity, stop bits
 * per byte. Modbus RTU also needs 3.5 character times of silence between frames (1.75 ms fixed above
 * 19200 baud).
 */
export function rtuFrameMs(e: Extract<ModbusEndpoint, { kind: 'rtu' }>, bytes: number): number {
  const bitsPerChar = 1 + e.dataBits + (e.parity === 'none' ? 0 : 1) + e.stopBits;
  return (bytes * bitsPerChar * 1000) / e.baudRate;
}

export function rtuSilenceMs(e: Extract<ModbusEndpoint, { kind: 'rtu' }>): number {
  return e.baudRate > 19_200 ? 1.75 : rtuFrameMs(e, 3.5);
}
