import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ErrorCode, P2PError } from '../../core/errors.js';
import { loadDataFile, parseWith } from '../../core/validate.js';
import { deviceConfigSchema, FIELD_DRIVERS } from '../registry.js';

/**
 * A device template: how to connect one product family and the device entry to paste into a gateway
 * config (after evcc's and OpenEMS's templates), with the vendor document the registers follow.
 * Files: `config/devices/<family>.template.yaml`.
 */
const DeviceEntry = z.record(z.string(), z.unknown()).superRefine((entry, ctx) => {
  const result = deviceConfigSchema(FIELD_DRIVERS).safeParse(entry);
  if (!result.success)
    for (const issue of result.error.issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
});

export const DeviceTemplateSchema = z
  .object({
    /** File stem, e.g. `huawei-sun2000`. */
    template: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
    brand: z.string().min(1),
    products: z.array(z.string().min(1)).min(1),
    /** The vendor document the registers follow, and where they were read from. */
    source: z
      .object({
        document: z.string().min(1),
        version: z.string().min(1),
        /** Public transcriptions the map was checked against (repository and path). */
        via: z.array(z.string().min(1)).default([]),
      })
      .strict(),
    connection: z
      .object({
        transport: z.enum(['modbus-tcp', 'modbus-rtu', 'can']),
        protocol: z.enum(['sunspec', 'register-map', 'sdm630', 'pylontech-can']),
        port: z.number().int().min(1).max(65535).optional(),
        unit: z.number().int().min(0).max(247).optional(),
        serial: z
          .object({
            baud: z.number().int().positive(),
            parity: z.enum(['none', 'even', 'odd']),
            dataBits: z.number().int().default(8),
            stopBits: z.number().int().min(1).max(2),
          })
          .strict()
          .optional(),
        bitrate: z.number().int().positive().optional(),
      })
      .strict(),
    /** What a user does on the device before the gateway can read it. */
    notes: z.array(z.string().min(1)).min(1),
    /** Device entries for the gateway config's `devices` list (the host or port to edit). */
    devices: z
      .array(
        z
          .object({
            /** What this entry reads (`inverter`, `grid meter`, ...). */
            role: z.string().min(1),
            entry: DeviceEntry,
          })
          .strict(),
      )
      .min(1),
  })
  .strict();
export type DeviceTemplate = z.infer<typeof DeviceTemplateSchema>;

/** Where the shipped templates are. */
export const TEMPLATE_DIR = fileURLToPath(new URL('../../../config/devices/', import.meta.url));

/** Reads one template file; a bad field is a config error naming the file and the field. */
export function loadDeviceTemplate(file: string): DeviceTemplate {
  const template = loadDataFile(file, DeviceTemplateSchema, ErrorCode.config);
  const stem = file.replace(/^.*\//, '').replace(/\.template\.ya?ml$/, '');
  if (stem !== template.template)
    throw new P2PError(ErrorCode.config, `${file}: template: "${template.template}" differs from the file name`, {
      field: 'template',
      file,
    });
  return template;
}

/** Parses template data that did not come from a file (tests, other tools). */
export function parseDeviceTemplate(data: unknown, file?: string): DeviceTemplate {
  return parseWith(DeviceTemplateSchema, data, { file, code: ErrorCode.config });
}

/** Every `*.template.yaml` of a folder, by file name. */
export function loadDeviceTemplates(dir = TEMPLATE_DIR): DeviceTemplate[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.template.yaml'))
    .sort()
    .map((f) => loadDeviceTemplate(join(dir, f)));
}
