import { type EmbeddedBroker, startEmbeddedBroker } from '../comms/embedded-broker.js';
import { shareSignatureChecks } from '../comms/shared-signature-checks.js';
import { systemClock } from '../core/clock.js';
import { ErrorCode, errorMessage, P2PError } from '../core/errors.js';
import { componentLogger, setLogLevel } from '../core/log.js';
import { GatewayMetrics } from '../core/metrics.js';
import { untilSignal } from '../core/signals.js';
import { Ledger } from '../platform/ledger/ledger.js';
import { statementRoutes } from '../platform/statement-routes.js';
import { type GatewayConfig, loadGatewayConfig } from './config.js';
import { Gateway } from './gateway.js';
import { StatusServer } from './status-server.js';
import { controlLoopHealth, gatewayWatchdog, stallAfterMs } from './watchdog.js';
import { buildDevices, buildLteService, buildTransport } from './wiring.js';

/** A gateway started from its config file, with what runs beside it (LTE uplink, status page). */
interface RunningGateway {
  gateway: Gateway;
  stop(): Promise<void>;
}

/**
 * Starts one gateway from its config file: its own metrics, transport (and LTE uplink), devices,
 * state directory and status page. The process's own metrics (memory, event loop) go on the page
 * of the gateway given `processMetrics`, so that a process hosting several is counted once.
 */
async function startGateway(
  configFile: string,
  config: GatewayConfig,
  processMetrics: boolean,
): Promise<RunningGateway> {
  setLogLevel(config.log.level);
  const log = componentLogger('runtime', { gateway: config.gateway.id });
  const clock = systemClock;
  const metrics = new GatewayMetrics({ gateway: config.gateway.id });
  if (processMetrics) metrics.addProcessMetrics();
  // Hosted before the transport connects to it, closed after the gateway has said goodbye on it.
  const broker = config.comms.broker && (await hostBroker(config.comms.broker, log));
  const transport = buildTransport(config, clock, metrics);
  const gateway = new Gateway(config, {
    clock,
    metrics,
    devices: buildDevices(config, clock),
    ...(transport ? { transport } : {}),
  });
  const lte = buildLteService(config, metrics, transport);
  log.info({ config: configFile }, 'starting gateway');
  // The uplink first: the transport's reconnects succeed once the modem has its data link.
  await lte?.start();
  try {
    await gateway.start();
  } catch (err) {
    await lte?.stop();
    await broker?.close();
    throw err;
  }
  // A platform gateway's page also serves its members' statements, from its database (read side).
  const statements =
    config.platform && config.status.port !== 0
      ? Ledger.open(config.platform.db, { mustExist: true, pageCacheKiB: 1024 })
      : undefined;
  const status =
    config.status.port === 0
      ? undefined
      : new StatusServer({
          host: config.status.host,
          port: config.status.port,
          token: config.status.token,
          state: () => gateway.state(),
          metrics: () => metrics.text(),
          health: () =>
            controlLoopHealth(
              gateway.lastCycleAt(),
              clock.now(),
              stallAfterMs(config.scheduler.primaryMs, 0),
              config.gateway.id,
            ),
          ...(statements ? { routes: statementRoutes(statements, () => clock.now()) } : {}),
          log: componentLogger('status', { gateway: config.gateway.id }),
        });
  const stop = async () => {
    await status?.close();
    statements?.close();
    await gateway.stop();
    await lte?.stop();
    await broker?.close();
  };
  try {
    await status?.listen();
  } catch (err) {
    await stop();
    throw err;
  }
  return { gateway, stop };
}

/** The broker of `comms.broker`; a port already taken stops the gateway with a config error naming it. */
async function hostBroker(
  { host, port }: { host: string; port: number },
  log: ReturnType<typeof componentLogger>,
): Promise<EmbeddedBroker> {
  try {
    const broker = await startEmbeddedBroker(host, port);
    log.info({ url: broker.url }, 'hosting an MQTT broker in the process (no TLS, no ACLs: lab use)');
    return broker;
  } catch (err) {
    throw new P2PError(ErrorCode.config, `comms.broker: cannot listen on ${host}:${port}: ${errorMessage(err)}`);
  }
}

/**
 * `p2p-edge run --config FILE`: one gateway until SIGINT/SIGTERM, as on its own device. Given several
 * files, the process hosts several gateways side by side (the bench packs gateways that way onto a
 * small machine): each keeps its own identity, keys, state directory, connection and status page, and
 * does what it would do alone; only the process, its event loop and its memory are shared.
 */
export async function runGateways(configFiles: readonly string[]): Promise<void> {
  const log = componentLogger('runtime');
  // Every config checked before any gateway starts; two gateways of one id would be one member twice.
  const configs = configFiles.map((file) => ({ file, config: loadGatewayConfig(file) }));
  const seen = new Map<string, string>();
  for (const { file, config } of configs) {
    const other = seen.get(config.gateway.id);
    if (other)
      throw new P2PError(ErrorCode.config, `${file}: gateway.id "${config.gateway.id}" is also the id in ${other}`);
    seen.set(config.gateway.id, file);
  }
  // Gateways of one process that receive the same message verify its signature once between them.
  if (configs.length > 1) shareSignatureChecks();
  const started: RunningGateway[] = [];
  const stopAll = () => Promise.all(started.map((g) => g.stop()));
  try {
    for (const [i, { file, config }] of configs.entries()) started.push(await startGateway(file, config, i === 0));
  } catch (err) {
    await stopAll();
    throw err;
  }
  if (started.length > 1)
    log.info({ gateways: started.map((g) => g.gateway.config.gateway.id) }, 'hosting several gateways');
  // Under systemd (Type=notify): READY=1 now, heartbeats while the control loop runs, STOPPING=1 at the
  // end. A unit supervises one gateway: a process hosting several is not one.
  const watchdog =
    started.length === 1
      ? gatewayWatchdog(started[0]!.gateway, {
          clock: systemClock,
          log: componentLogger('watchdog', { gateway: started[0]!.gateway.config.gateway.id }),
        })
      : undefined;
  await watchdog?.ready();
  await untilSignal(async () => {
    await watchdog?.stopping();
    await stopAll();
  }, log);
}
