import { StatusServer } from '../agent/status-server.js';
import { reply } from '../core/http-server.js';
import { componentLogger } from '../core/log.js';
import type { CompressedDay } from '../sim/profiles.js';
import type { MachineWatch } from './keeping-up.js';
import type { BenchRecorder } from './recorder.js';
import { PLOT_NAMES, type PlotName, renderPlots } from './report-plots.js';
import type { LiveBench } from './sampling.js';
import type { Scenario } from './scenario.js';

/**
 * The whole bench on one status page (loopback only): the simulation with the bench's own alarms,
 * whether the machine keeps up, every gateway's state and metrics as last sampled (`live`), and the report's charts (`/plots/<name>.svg`) drawn from what
 * has been recorded so far.
 */
export function benchStatusPage(o: {
  port: number;
  scenario: Scenario;
  day: CompressedDay;
  brokerUrl: string;
  dir: string;
  recorder: BenchRecorder;
  live: () => LiveBench;
  /** Whether the machine keeps up (`machine`), and its `machine-overloaded` alarms (`simulation.alarms`). */
  watch?: MachineWatch;
}): StatusServer {
  const s = o.scenario;
  return new StatusServer({
    host: '127.0.0.1',
    port: o.port,
    state: () => ({
      simulation: {
        scenario: s.name,
        hourOfDay: o.day.hourAt(Date.now()),
        speedup: s.speedup,
        broker: o.brokerUrl,
        cells: s.cells.map((c) => c.id),
        run: o.dir,
        plots: PLOT_NAMES,
        alarms: o.watch?.alarmList() ?? [],
      },
      ...(o.watch ? { machine: o.watch.status() } : {}),
      gateways: o.live().gateways,
    }),
    metrics: async () => o.live().metrics,
    routes: (url) => {
      const name = /^\/plots\/([a-z-]+\.svg)$/.exec(url.pathname)?.[1] as PlotName | undefined;
      const plot = name && PLOT_NAMES.includes(name) ? renderPlots(s, o.recorder, name)[0] : undefined;
      return plot ? reply(200, 'image/svg+xml', plot[1]) : undefined;
    },
    log: componentLogger('status'),
  });
}
