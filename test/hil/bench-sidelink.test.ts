import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/net.js';
import { requireTool } from '../helpers/system-tools.js';

// Each gateway of the cell in a network namespace of its own: root and iproute2, and Mosquitto as
// the field's broker (the bench says so and exits 2 without root).
beforeAll(() => {
  requireTool('ip');
  requireTool('mosquitto');
});

describe('p2p-edge bench with a D2D sidelink per cell', () => {
  it("carries a cut-off house's readings and bids through a neighbour's relay, and keeps the voltage control distributed through a broker restart", async () => {
    const scenario = join(import.meta.dirname, '..', 'fixtures', 'bench', 'short-sidelink.yaml');
    const r = await runCli(['bench', '--scenario', scenario, '--json'], { timeoutMs: 170_000 });
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.faults.map((f: { kind: string }) => f.kind)).toEqual(['uplink-cut', 'broker-restart']);
    const [cut, restart] = report.faults;
    const figures = JSON.stringify(cut);
    // The house cut off handed its messages to a neighbour over D2D, which published them on the
    // broker; acknowledgements came back the same way before its uplink returned.
    expect(cut.recoveredS, figures).not.toBeNull();
    expect(Object.keys(cut.throughRelay.relayedBy).length, figures).toBeGreaterThan(0);
    expect(cut.throughRelay.handedUp, figures).toBeGreaterThan(0);
    expect(cut.throughRelay.receivedDown, figures).toBeGreaterThan(0);
    for (const cls of ['meter', 'mkt']) {
      expect(cut.throughRelay.delivery[cls].sent, `${cls}: ${figures}`).toBeGreaterThan(0);
      expect(cut.throughRelay.delivery[cls].delivered, `${cls}: ${figures}`).toBeGreaterThan(0);
    }
    expect(cut.throughRelay.readingsAtPlatform.sent, figures).toBeGreaterThan(0);
    expect(cut.throughRelay.readingsAtPlatform.stored, figures).toBeGreaterThan(0);
    // Every reading the houses sent is in the platform's database once, the relayed ones among them.
    expect(report.ledger.meterIntervalsMissing).toBe(0);
    expect(report.ledger.meterIntervalsDuplicated).toBe(0);
    // With every broker down for 6 s (beyond the agents' 5 s fallback), each voltage agent still heard
    // its peers over the sidelink: none went back to its local curves.
    expect(restart.recoveredS).not.toBeNull();
    expect(restart.whileDown.agents).toBe(3);
    expect(restart.whileDown.reads).toBeGreaterThan(3);
    expect(restart.whileDown.fewestDistributed, JSON.stringify(restart)).toBe(3);
    expect(report.voltage.violations, JSON.stringify(report.voltage)).toBe(0);
  }, 180_000);
});
