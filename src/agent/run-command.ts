import { systemClock } from '../core/clock.js';
import { componentLogger, setLogLevel } from '../core/log.js';
import { GatewayMetrics } from '../core/metrics.js';
import { untilSignal } from '../core/signals.js';
import { Ledger } from '../platform/ledger/ledger.js';
import { statementRoutes } from '../platform/statement-routes.js';
import { loadGatewayConfig } from './config.js';
import { Gateway } from './gateway.js';
import { StatusServer } from './status-server.js';
import { controlLoopHealth, gatewayWatchdog, stallAfterMs } from './watchdog.js';
import { buildDevices, buildLteService, buildTransport } from './wiring.js';

/** `p2p-edge run --config FILE`: one gateway until SIGINT/SIGTERM. */
export async function runGateway(configFile: string): Promise<void> {
  const config = loadGatewayConfig(configFile);
  setLogLevel(config.log.level);
  const log = componentLogger('runtime', { gateway: config.gateway.id });
  const clock = systemClock;
  const metrics = new GatewayMetrics({ gateway: config.gateway.id });
  metrics.addProcessMetrics();
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
  try {
    await status?.listen();
  } catch (err) {
    statements?.close();
    await gateway.stop();
    await lte?.stop();
    throw err;
  }
  // Under systemd (Type=notify): READY=1 now, heartbeats while the control loop runs, STOPPING=1 at the end.
  const watchdog = gatewayWatchdog(gateway, {
    clock,
    log: componentLogger('watchdog', { gateway: config.gateway.id }),
  });
  await watchdog?.ready();
  await untilSignal(async () => {
    await watchdog?.stopping();
    await status?.close();
    statements?.close();
    await gateway.stop();
    await lte?.stop();
  }, log);
}
