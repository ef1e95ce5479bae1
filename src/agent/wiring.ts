import { join } from 'node:path';
import { BaseTransport } from '../comms/base-transport.js';
import { D2DLink } from '../comms/d2d-link.js';
import { D2DTransport } from '../comms/d2d-transport.js';
import { HybridTransport } from '../comms/hybrid-transport.js';
import { LinkRoutes } from '../comms/link-routes.js';
import { LteService } from '../comms/lte/lte-service.js';
import { radioFields } from '../comms/lte/modem.js';
import { MqttLink } from '../comms/mqtt-link.js';
import { MqttTransport } from '../comms/mqtt-transport.js';
import { EncryptionKeyring, EnvelopeSigner, MembersDirectory, MessageSecurity } from '../comms/security.js';
import type { Transport } from '../comms/transport.js';
import type { Clock } from '../core/clock.js';
import { ErrorCode, P2PError } from '../core/errors.js';
import { componentLogger } from '../core/log.js';
import type { GatewayMetrics } from '../core/metrics.js';
import { FIRMWARE_VERSION } from '../core/version.js';
import type { Device } from '../drivers/device.js';
import type { SharedKey } from '../drivers/driver.js';
import { createDevice } from '../drivers/registry.js';
import { ModbusBusRegistry } from '../hal/modbus/bus.js';
import type { SimulatedCell } from '../sim/simulated-cell.js';
import { SIMULATED_CELL } from '../sim/simulated-device.js';
import { configuredLinks, DEVICE_DRIVERS, type GatewayConfig } from './config.js';

/**
 * The gateway's devices from its config, each built by its driver. Modbus devices on the same port or
 * host:port share one bus (one request in flight), released when the last of them closes; simulated
 * devices share `cell` when given (the demo), else a cell of their own buses.
 */
export function buildDevices(config: GatewayConfig, clock: Clock, cell?: SimulatedCell): Device[] {
  const modbus = new ModbusBusRegistry({ clock });
  const shared = new Map<string, unknown>(cell ? [[SIMULATED_CELL.name, cell]] : []);
  return config.devices.map((d, i) =>
    createDevice(DEVICE_DRIVERS, d, {
      clock,
      modbus,
      field: `devices[${i}]`,
      devices: config.devices,
      shared: <T>(key: SharedKey<T>, make: () => T): T => {
        if (!shared.has(key.name)) shared.set(key.name, make());
        return shared.get(key.name) as T;
      },
    }),
  );
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
  };
  if (comms.transport === 'hybrid') {
    const links = [
      ...(comms.mqtt ? [new MqttLink(comms.mqtt, { clock, log, clientId: gateway.id, cell: gateway.cell })] : []),
      ...(comms.d2d ? [new D2DLink(comms.d2d, { clock, log, metrics })] : []),
    ];
    return new HybridTransport(
      links,
      new LinkRoutes(configuredLinks(comms), comms.routes),
      identity,
      deps,
      comms.relay,
    );
  }
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
    EncryptionKeyring.load(s.keyFile!, config.gateway.id),
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
