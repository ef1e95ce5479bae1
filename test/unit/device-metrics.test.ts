import { describe, expect, it } from 'vitest';
import { gatewayConfig } from '../../src/agent/config.js';
import { exportDeviceReadings } from '../../src/agent/device-metrics.js';
import { ProcessImage } from '../../src/agent/process-image.js';
import { GatewayMetrics } from '../../src/core/metrics.js';

const config = gatewayConfig({
  gateway: { id: 'house-7', kind: 'inverter', cell: 'c1' },
  devices: [
    { id: 'pv-1', driver: 'simulated', kind: 'pv-inverter', bus: 'b1' },
    { id: 'grid-1', driver: 'sdm630', modbus: 'tcp://127.0.0.1:1502', unit: 2, usage: 'grid' },
    { id: 'bat-1', driver: 'pylontech-can', interface: 'mock:metrics' },
  ],
});

/** The samples of one metric as `labels → value`, labels without the gateway's, sorted by name. */
async function samples(metrics: GatewayMetrics, name: string): Promise<Record<string, number>> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const out: Record<string, number> = {};
  for (const v of metric?.values ?? []) {
    const { gateway, ...labels } = v.labels;
    expect(gateway).toBe('house-7');
    const key = Object.entries(labels)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, l]) => `${k}=${l}`)
      .join(',');
    out[key] = v.value;
  }
  return out;
}

describe('device readings as metrics', () => {
  const t0 = 1_700_000_000_000;

  function cycle(image: ProcessImage, now: number) {
    const metrics = new GatewayMetrics({ gateway: 'house-7' });
    exportDeviceReadings(metrics, config.devices, image.freeze(now));
    return metrics;
  }

  it('one sign for power (positive = drawn from the grid), base units, one series per phase', async () => {
    const image = new ProcessImage(5_000);
    // The inverter reports what it produces as positive, the meter what it imports as positive.
    image.write('pv-1.acPowerW', 3200, t0);
    image.write('pv-1.acVoltageV', [231.5], t0);
    image.write('pv-1.energyWh', 12_345, t0);
    image.write('pv-1.limitPct', 60, t0);
    image.write('pv-1.availablePowerW', 4100, t0);
    image.write('grid-1.acPowerW', -1500, t0);
    image.write('grid-1.acVoltageV', [229.1, null, 233.4], t0);
    image.write('grid-1.frequencyHz', 50.02, t0);
    image.write('grid-1.energyWh', 800_000, t0);
    image.write('grid-1.energyExportWh', 2_000_000, t0);
    image.write('bat-1.socPct', 85, t0);
    image.write('bat-1.batteryPowerW', -640, t0);
    image.write('bat-1.voltageV', 51.2, t0);
    image.write('bat-1.temperatureC', 24, t0);
    const metrics = cycle(image, t0 + 100);

    expect(await samples(metrics, 'p2p_device_power_watts')).toEqual({
      'device=pv-1,usage=pv': -3200,
      'device=grid-1,usage=grid': -1500,
      'device=bat-1,usage=battery': -640,
    });
    expect(await samples(metrics, 'p2p_device_voltage_volts')).toEqual({
      'device=pv-1,phase=1': 231.5,
      'device=grid-1,phase=1': 229.1,
      'device=grid-1,phase=3': 233.4,
    });
    expect(await samples(metrics, 'p2p_device_frequency_hertz')).toEqual({ 'device=grid-1': 50.02 });
    expect(await samples(metrics, 'p2p_device_energy_import_watt_hours_total')).toEqual({
      'device=grid-1,usage=grid': 800_000,
    });
    expect(await samples(metrics, 'p2p_device_energy_export_watt_hours_total')).toEqual({
      'device=pv-1,usage=pv': 12_345,
      'device=grid-1,usage=grid': 2_000_000,
    });
    expect(await samples(metrics, 'p2p_device_state_of_charge_ratio')).toEqual({ 'device=bat-1': 0.85 });
    expect(await samples(metrics, 'p2p_device_dc_voltage_volts')).toEqual({ 'device=bat-1': 51.2 });
    expect(await samples(metrics, 'p2p_device_temperature_celsius')).toEqual({ 'device=bat-1': 24 });
    expect(await samples(metrics, 'p2p_device_power_limit_ratio')).toEqual({ 'device=pv-1': 0.6 });
    expect(await samples(metrics, 'p2p_device_available_power_watts')).toEqual({ 'device=pv-1': 4100 });
    const text = await metrics.text();
    expect(text).toMatch(/# TYPE p2p_device_energy_import_watt_hours_total counter/);
  });

  it('the next cycle replaces the values; a device that stops answering or goes stale loses its series', async () => {
    const image = new ProcessImage(5_000);
    const metrics = new GatewayMetrics({ gateway: 'house-7' });
    image.write('pv-1.acPowerW', 3200, t0);
    image.write('grid-1.acPowerW', 400, t0);
    image.write('grid-1.energyWh', 1000, t0);
    exportDeviceReadings(metrics, config.devices, image.freeze(t0));
    // The meter's register counts on; the inverter stops answering.
    image.write('grid-1.acPowerW', 500, t0 + 1000);
    image.write('grid-1.energyWh', 1001.5, t0 + 1000);
    image.markDeviceBad('pv-1');
    exportDeviceReadings(metrics, config.devices, image.freeze(t0 + 1000));
    expect(await samples(metrics, 'p2p_device_power_watts')).toEqual({ 'device=grid-1,usage=grid': 500 });
    expect(await samples(metrics, 'p2p_device_energy_import_watt_hours_total')).toEqual({
      'device=grid-1,usage=grid': 1001.5,
    });
    // 10 s later without a new reading the meter's values are stale: no series at all.
    exportDeviceReadings(metrics, config.devices, image.freeze(t0 + 11_000));
    expect(await samples(metrics, 'p2p_device_power_watts')).toEqual({});
  });

  it('every gateway says its build: version and Node.js', async () => {
    const metrics = new GatewayMetrics({ gateway: 'house-7' });
    const version = JSON.parse(
      await import('node:fs').then((fs) => fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')),
    ).version;
    expect(await samples(metrics, 'p2p_build_info')).toEqual({
      [`node=${process.versions.node},version=${version}`]: 1,
    });
  });

  it("the process's event loop delay, in seconds, on the page of the gateway that carries the process metrics", async () => {
    const metrics = new GatewayMetrics({ gateway: 'house-7' });
    metrics.addProcessMetrics();
    // Block the loop for 60 ms: the largest delay recorded is at least that.
    await new Promise((r) => setTimeout(r, 30));
    const until = Date.now() + 60;
    while (Date.now() < until);
    await new Promise((r) => setTimeout(r, 30));
    const max = await samples(metrics, 'nodejs_eventloop_lag_max_seconds');
    expect(max['']).toBeGreaterThanOrEqual(0.05);
    expect(max['']).toBeLessThan(5);
    const p99 = await samples(metrics, 'nodejs_eventloop_lag_p99_seconds');
    expect(p99['']).toBeGreaterThan(0);
    expect(p99['']).toBeLessThanOrEqual(max[''] as number);
    expect(await samples(new GatewayMetrics({ gateway: 'house-7' }), 'nodejs_eventloop_lag_p99_seconds')).toEqual({});
  });
});
