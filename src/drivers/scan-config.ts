import { stringify } from 'yaml';
import { type DeviceTemplate, loadDeviceTemplates } from './templates/template.js';

/** What `scan` found on one unit id, as the contract's JSON lists it. */
export interface ScannedDevice {
  unit: number;
  kind: 'inverter' | 'meter';
  sunspec?: { base: number; models: number[] };
  manufacturer?: string;
  model?: string;
  serial?: string;
  readings?: Record<string, unknown>;
}

/** What the unit ids of a scan gave: a device, an answer that is neither SunSpec nor a known meter, or silence. */
export interface ScanResult {
  devices: ScannedDevice[];
  /** Answered (an exception or registers) but no SunSpec marker and no known meter. */
  unrecognisedUnits: number[];
  /** No answer within the scan's timeout. */
  silentUnits: number[];
}

/** The gateway config's device entry for a scanned device, with the driver that reads it. */
export function deviceEntry(device: ScannedDevice, modbusUrl: string): Record<string, unknown> {
  const connection = { modbus: modbusUrl, unit: device.unit };
  if (!device.sunspec) return { id: `meter-${device.unit}`, driver: 'sdm630', ...connection };
  if (device.kind === 'meter')
    return { id: `meter-${device.unit}`, driver: 'sunspec-meter', ...connection, usage: 'grid' };
  return { id: `pv-${device.unit}`, driver: 'sunspec', ...connection, usage: 'pv' };
}

/** The shipped template of the device's brand (SunSpec manufacturer) or product (a meter's model), if any. */
function templateFor(device: ScannedDevice, templates: readonly DeviceTemplate[]): DeviceTemplate | undefined {
  const maker = (device.manufacturer ?? '').toLowerCase();
  const model = (device.model ?? '').toLowerCase();
  return templates.find(
    (t) =>
      (maker !== '' && maker.includes(t.brand.toLowerCase())) ||
      (!device.sunspec && model !== '' && t.products.some((p) => p.toLowerCase().includes(model))),
  );
}

/**
 * The scan as a `devices:` list to paste into a gateway config, each entry under a comment naming what
 * answered and the template with the device's setup notes; the unit ids that were silent or answered
 * without being recognised are listed as comments, so that a wrong unit id or a meter without a
 * template is visible.
 */
export function scanConfigYaml(scan: ScanResult, modbusUrl: string, templates = loadDeviceTemplates()): string {
  const lines = [`# p2p-edge scan of ${modbusUrl}: paste under the gateway config's devices (ids and usage to edit)`];
  if (scan.silentUnits.length > 0) lines.push(`# silent (no answer): unit ${scan.silentUnits.join(', ')}`);
  if (scan.unrecognisedUnits.length > 0)
    lines.push(
      `# answered, but neither SunSpec nor a known meter: unit ${scan.unrecognisedUnits.join(', ')}` +
        ' (a register-map template in config/devices/ may fit)',
    );
  if (scan.devices.length === 0) {
    lines.push('devices: []');
    return `${lines.join('\n')}\n`;
  }
  lines.push('devices:');
  for (const device of scan.devices) {
    const what = [device.manufacturer, device.model, device.serial && `serial ${device.serial}`].filter(Boolean);
    const models = device.sunspec ? `SunSpec models ${device.sunspec.models.join(', ')}` : 'not SunSpec';
    lines.push(`  # unit ${device.unit}: ${device.kind}${what.length ? ` ${what.join(' ')}` : ''} (${models})`);
    const template = templateFor(device, templates);
    if (template) lines.push(`  # setup notes: config/devices/${template.template}.template.yaml`);
    const entry = stringify([deviceEntry(device, modbusUrl)]).trimEnd();
    lines.push(...entry.split('\n').map((l) => `  ${l}`));
  }
  return `${lines.join('\n')}\n`;
}
