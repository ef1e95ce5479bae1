import { join } from 'node:path';
import { BaseTransport } from '../comms/base-transport.js';
import { D2DTransport } from '../comms/d2d-transport.js';
import { LteService } from '../comms/lte/lte-service.js';
import { radioFields } from '../comms/lte/modem.js';
import { MqttTransport } from '../comms/mqtt-transport.js';
import { EnvelopeSigner, MembersDirectory, MessageSecurity } from '../comms/security.js';
import type { Transport } from '../comms/transport.js';
import type { Clock } from '../core/clock.js';
import { ErrorCode, P2PError } from '../core/errors.js';
import { componentLogger } from '../core/log.js';
import type { GatewayMetrics } from '../core/metrics.js';
import { FIRMWARE_VERSION } from '../core/version.js';
import type { Device } from '../drivers/device.js';
import { GpioDevice } from '../drivers/gpio.js';
import { PylontechBattery } from '../drivers/pylontech-bms.js';
import { loadRegisterMap, RegisterMapDevice } from '../drivers/register-map.js';
import { Sdm630Meter } from '../drivers/sdm630.js';
import { SimulatedDevice } from '../drivers/simulated.js';
import { SunSpecInverter } from '../drivers/sunspec/inverter.js';
import { buildRadialFeeder } from '../grid/feeder.js';
import { DeferredCanBus, MockCanBus } from '../hal/can/can-bus.js';
import { openGpio } from '../hal/gpio.js';
import { ModbusBusRegistry } from '../hal/modbus/bus.js';
import { parseModbusUrl } from '../hal/modbus/url.js';
import { CompressedDay } from '../sim/profiles.js';
import { SimulatedCell } from '../sim/simulated-cell.js';
import type { GatewayConfig } from './config.js';

/**
 * A simulated cell for the simulated devices of one gateway run on its own (a bench rig without
 * hardware): each device bus hangs off the transformer through one LV cable segment, and the day
 * runs in real time starting at the current wall-clock hour.
 */
export function standaloneCell(config: GatewayConfig, clock: Clock): SimulatedCell {
  const simulated = config.devices.filter((d) => d.driver === 'simulated');
  const buses = [...new Set(simulated.map((d) => d.bus))];
  const now = clock.now();
  const startHour = new Date(now).getHours() + new Date(now).getMinutes() / 60;
  const cell = new SimulatedCell(
    buildRadialFeeder({
      name: 'standalone',
      baseKV: 0.4,
      slack: 'tx',
      vSlackPu: 1.0,
      buses: [],
      lines: buses.map((bus) => ({ from: 'tx', to: bus, rOhm: 0.1, xOhm: 0.04 })),
    }),
    new CompressedDay(now, 1, startHour),
  );
  for (const d of simulated) cell.addDevice({ id: d.id, kind: d.kind, bus: d.bus, ratedW: d.ratedW }, now);
  return cell;
}

/**
 * The gateway's devices from its config. Modbus devices on the same port or host:port share one bus
 * (one request in flight), released when the last of them closes.
 */
export function buildDevices(config: GatewayConfig, clock: Clock, cell?: SimulatedCell): Device[] {
  const needsCell = config.devices.some((d) => d.driver === 'simulated');
  const sim = cell ?? (needsCell ? standaloneCell(config, clock) : undefined);
  const buses = new ModbusBusRegistry({ clock });
  return config.devices.map((d, i): Device => {
    switch (d.driver) {
      case 'simulated':
        if (sim) return new SimulatedDevice(d.id, d.kind, sim, d.ratedW);
        break;
      case 'sunspec': {
        const bus = buses.acquire(parseModbusUrl(d.modbus, `devices[${i}].modbus`), d.timeoutMs);
        return new SunSpecInverter(d.id, bus, d.unit, { ratedW: d.ratedW, revertS: d.revertS, clock }, () =>
          buses.release(bus),
        );
      }
      case 'register-map': {
        const map = loadRegisterMap(d.map);
        const bus = buses.acquire(parseModbusUrl(d.modbus, `devices[${i}].modbus`), d.timeoutMs);
        return new RegisterMapDevice(d.id, bus, d.unit, map, () => buses.release(bus));
      }
      case 'gpio-relay':
      case 'gpio-input': {
        const direction = d.driver === 'gpio-relay' ? 'out' : 'in';
        return new GpioDevice(
          d.id,
          d.driver === 'gpio-relay' ? 'relay' : 'digital-input',
          () => openGpio(d.chip, d.pin, direction),
          d.activeLow,
        );
      }
      case 'pylontech-can': {
        const can = d.interface.startsWith('mock:')
          ? new MockCanBus(d.interface.slice(5))
          : new DeferredCanBus(d.interface);
        return new PylontechBattery(d.id, can, { clock });
      }
      case 'sdm630': {
        const bus = buses.acquire(parseModbusUrl(d.modbus, `devices[${i}].modbus`), d.timeoutMs);
        return new Sdm630Meter(d.id, bus, d.unit, 230, () => buses.release(bus));
      }
    }
    throw new P2PError(
      ErrorCode.config,
      `devices[${i}]: driver "${d.driver}" of ${d.id} is not available in this build`,
      {
        field: `devices[${i}].driver`,
      },
    );
  });
}

export function buildTransport(config: GatewayConfig, clock: Clock, metrics?: GatewayMetrics): Transport | undefined {
  const { comms, gateway } = config;
  if (comms.transport === 'none') return undefined;
  const log = componentLogger('comms', { gateway: gateway.id });
  const security = buildSecurity(config);
  if (!security) log.warn('comms.security.unsigned is set: messages are neither signed nor checked (lab use only)');
  const identity = {
    gatewayId: gateway.id,
    cell: gateway.cell,
    role: gateway.kind,
    version: FIRMWARE_VERSION,
    publicKey: security?.signer.publicKey ?? '',
  };
  const deps = {
    clock,
    log,
    ...(metrics ? { metrics } : {}),
    ...(security ? { security } : {}),
    stateDir: join(config.stateDir, gateway.id),
    outbox: {
      maxEntries: comms.reliability.outboxMax,
      retryInitialMs: comms.reliability.retryInitialMs,
      retryMaxMs: comms.reliability.retryMaxMs,
    },
    replayWindow: comms.security.replayWindow,
    ...(comms.reliability.platform ? { requiredReceivers: { meter: [comms.reliability.platform] } } : {}),
  };
  if (comms.transport === 'd2d' && comms.d2d) return new D2DTransport(comms.d2d, identity, deps);
  if (comms.transport === 'mqtt' && comms.mqtt) return new MqttTransport(comms.mqtt, identity, deps);
  return undefined;
}

/** The signing layer from `comms.security`; undefined only when `unsigned: true` says so. */
export function buildSecurity(config: GatewayConfig): MessageSecurity | undefined {
  const s = config.comms.security;
  if (s.unsigned) return undefined;
  const missing = (['keyFile', 'membersFile', 'operatorPublicKey'] as const).filter((k) => s[k] === undefined);
  if (missing.length > 0) {
    throw new P2PError(
      ErrorCode.config,
      `comms.security.${missing[0]}: a gateway signs its messages and checks its peers' (missing ${missing.join(', ')})`,
      {
        field: `comms.security.${missing[0]}`,
        hint: 'make a key with `p2p-edge platform keygen`, get the members list from the cell operator, or set comms.security.unsigned: true on a lab bench',
      },
    );
  }
  return new MessageSecurity(
    EnvelopeSigner.fromKeyFile(s.keyFile!, config.gateway.id),
    MembersDirectory.load(s.membersFile!, s.operatorPublicKey!),
  );
}

/** The LTE modem manager when `comms.lte` is configured; its signal shows in the transport's link quality. */
export function buildLteService(
  config: GatewayConfig,
  metrics?: GatewayMetrics,
  transport?: Transport,
): LteService | undefined {
  const lte = config.comms.lte;
  if (!lte) return undefined;
  const service = new LteService(lte, {
    log: componentLogger('lte', { gateway: config.gateway.id }),
    ...(metrics ? { metrics } : {}),
  });
  if (transport instanceof BaseTransport) transport.attachRadio(() => radioFields(service.status()));
  return service;
}
