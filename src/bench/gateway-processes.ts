import { BENCH_CONTROL_STEP_MS } from './configs.js';
import type { BenchGateway, ControllerProcess } from './processes.js';
import { sleep, waitUntil } from './wait.js';

/** How long the bench waits for the voltage agents to find their peers before the day starts. */
const SETTLE_TIMEOUT_MS = 20_000;
/**
 * How long the distributed control runs at the start hour, once every agent is on it, before the day
 * starts: 12 control steps (3 s at 600×, 6 s at 300×), since the multipliers settle step by step.
 */
const CONTROL_SETTLE_STEPS = 12;
export const controlSettleMs = (controlStepMs: number): number => CONTROL_SETTLE_STEPS * controlStepMs;
/** At 600× (the default scenario's speed-up). */
export const CONTROL_SETTLE_MS = controlSettleMs(BENCH_CONTROL_STEP_MS);

/** Gateways started at once: all of them at once on a small machine take longer than in batches. */
const GATEWAYS_PER_BATCH = 8;

/**
 * Starts the gateway processes in batches of about `GATEWAYS_PER_BATCH` gateways (at least one
 * process), each batch waited for until its status pages answer; stops early when `signal` is aborted.
 */
export async function startGateways(processes: readonly ControllerProcess[], signal?: AbortSignal): Promise<void> {
  let i = 0;
  while (i < processes.length && !signal?.aborted) {
    const batch = [processes[i++]!];
    let gateways = batch[0]!.gateways.length;
    while (i < processes.length && gateways + processes[i]!.gateways.length <= GATEWAYS_PER_BATCH) {
      gateways += processes[i]!.gateways.length;
      batch.push(processes[i++]!);
    }
    for (const p of batch) p.start();
    await Promise.all(batch.map((p) => p.ready(120_000)));
  }
}

/**
 * The voltage agents start on their local curves and switch to the distributed control once they
 * hear their peers: a field cell runs that way all the time, so the day waits for it, and then runs
 * a while at the start hour, so that the day begins with the control at work rather than with its
 * multipliers still climbing from where the takeover put them. False when some agents were still on
 * their local curves after the timeout (nothing waited for then).
 */
export async function settleDistributedControl(
  gateways: readonly BenchGateway[],
  settleMs = CONTROL_SETTLE_MS,
): Promise<boolean> {
  const settled = await waitUntil(async () => {
    const states = await Promise.all(gateways.map((g) => g.state()));
    return states.every((st) => {
      const agent = st?.roles['voltage-agent'];
      return agent?.method === undefined || agent.method === 'dual';
    });
  }, SETTLE_TIMEOUT_MS);
  if (settled) await sleep(settleMs);
  return settled;
}

/** No gateway says its transport is disconnected (one that does not answer counts as connected). */
export async function allConnected(gateways: readonly BenchGateway[]): Promise<boolean> {
  const states = await Promise.all(gateways.map((g) => g.state()));
  return states.every((st) => st?.comms?.connected !== false);
}

/**
 * What the gateways of a cell are doing, from one read of their states: the market sessions their MG
 * traders have run so far, and their voltage agents with how many run the distributed (dual) control.
 */
export async function cellActivity(
  gateways: readonly BenchGateway[],
): Promise<{ intervalsCleared: number; agentsDistributed: number; agents: number }> {
  const roles = (await Promise.all(gateways.map((g) => g.state()))).map((st) => st?.roles);
  const methods = roles.flatMap((r) => (r?.['voltage-agent']?.method ? [r['voltage-agent'].method] : []));
  return {
    intervalsCleared: roles.reduce((sum, r) => sum + (r?.['mg-trader']?.sessions ?? 0), 0),
    agentsDistributed: methods.filter((m) => m === 'dual').length,
    agents: methods.length,
  };
}
