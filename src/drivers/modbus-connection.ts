import { z } from 'zod';
import type { ModbusBus } from '../hal/modbus/bus.js';
import { parseModbusUrl } from '../hal/modbus/url.js';
import type { DriverContext } from './driver.js';

const modbusUrl = z.string().superRefine((url, ctx) => {
  try {
    parseModbusUrl(url);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message.replace(/^modbus: /, '') });
  }
});

/** Where a Modbus device is: `tcp://host:port` or `rtu:///dev/ttyUSB0?baud=9600&parity=none`, and its unit id. */
export const modbusConnectionFields = {
  modbus: modbusUrl,
  unit: z.number().int().min(1).max(247).default(1),
  /** Feeder bus of the device (optional; the gateway's bus otherwise). */
  bus: z.string().min(1).optional(),
  timeoutMs: z.number().int().min(50).max(10_000).default(1000),
};

/** The shared bus of the device's port or host:port, and how to let go of it when the device closes. */
export function acquireModbusBus(
  config: { modbus: string; timeoutMs: number },
  ctx: DriverContext,
): { bus: ModbusBus; release: () => Promise<void> } {
  const bus = ctx.modbus.acquire(parseModbusUrl(config.modbus, `${ctx.field}.modbus`), config.timeoutMs);
  return { bus, release: () => ctx.modbus.release(bus) };
}
