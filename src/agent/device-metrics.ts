import type { GatewayMetrics } from '../core/metrics.js';
import { consumedPowerW, Points } from '../drivers/natures.js';
import { natureOf } from '../drivers/registry.js';
import { DEVICE_DRIVERS, type DeviceConfig } from './config.js';
import type { ProcessImageSnapshot } from './process-image.js';

/**
 * Device readings as metrics with units in their names, from one cycle's process image. Only fresh,
 * good values are exported: the series of a device that does not answer (or a point gone stale)
 * disappear until it answers again, rather than repeating its last value. Power follows one sign for
 * every device (positive = drawn from the grid), whatever the device's own convention.
 */
export function exportDeviceReadings(
  metrics: GatewayMetrics,
  devices: readonly DeviceConfig[],
  image: ProcessImageSnapshot,
): void {
  const perDevice = [
    metrics.devicePower,
    metrics.deviceVoltage,
    metrics.deviceFrequency,
    metrics.deviceEnergyImport,
    metrics.deviceEnergyExport,
    metrics.deviceStateOfCharge,
    metrics.deviceDcVoltage,
    metrics.deviceTemperature,
    metrics.devicePowerLimit,
    metrics.deviceAvailablePower,
  ];
  for (const metric of perDevice) metric.reset();
  for (const config of devices) {
    const { id, usage } = config;
    const nature = natureOf(DEVICE_DRIVERS, config);
    const value = (point: string) => image.number(`${id}.${point}`);
    const device = { device: id };

    const acPowerW = value(Points.acPowerW);
    const batteryPowerW = value(Points.batteryPowerW);
    if (nature && acPowerW !== undefined)
      metrics.devicePower.set({ device: id, usage }, consumedPowerW(nature, acPowerW));
    else if (nature === 'battery' && batteryPowerW !== undefined)
      metrics.devicePower.set({ device: id, usage }, batteryPowerW); // positive = charging = drawn

    const phases = image.get(`${id}.${Points.acVoltageV}`);
    if (phases?.quality === 'good' && Array.isArray(phases.value))
      phases.value.forEach((volts, i) => {
        if (typeof volts === 'number') metrics.deviceVoltage.set({ device: id, phase: String(i + 1) }, volts);
      });

    const frequencyHz = value(Points.frequencyHz);
    if (frequencyHz !== undefined) metrics.deviceFrequency.set(device, frequencyHz);

    // An inverter's energy register counts what it produced: energy fed into the grid.
    const energyWh = value(Points.energyWh);
    if (energyWh !== undefined && energyWh >= 0) {
      if (nature === 'inverter') metrics.deviceEnergyExport.inc({ device: id, usage }, energyWh);
      else if (nature === 'meter') metrics.deviceEnergyImport.inc({ device: id, usage }, energyWh);
    }
    const energyExportWh = value(Points.energyExportWh);
    if (nature === 'meter' && energyExportWh !== undefined && energyExportWh >= 0)
      metrics.deviceEnergyExport.inc({ device: id, usage }, energyExportWh);

    const socPct = value(Points.socPct);
    if (socPct !== undefined) metrics.deviceStateOfCharge.set(device, socPct / 100);
    const voltageV = value(Points.voltageV);
    if (voltageV !== undefined) metrics.deviceDcVoltage.set(device, voltageV);
    const temperatureC = value(Points.temperatureC);
    if (temperatureC !== undefined) metrics.deviceTemperature.set(device, temperatureC);
    const limitPct = value(Points.limitPct);
    if (limitPct !== undefined) metrics.devicePowerLimit.set(device, limitPct / 100);
    const availablePowerW = value(Points.availablePowerW);
    if (availablePowerW !== undefined) metrics.deviceAvailablePower.set(device, availablePowerW);
  }
}
