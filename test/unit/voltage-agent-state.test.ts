import { describe, expect, it, vi } from 'vitest';
import { gatewayConfig } from '../../src/agent/config.js';
import type { RoleContext } from '../../src/agent/roles/role.js';
import { VoltageAgentRole, VoltageAgentSavedSchema } from '../../src/agent/roles/voltage-agent.js';
import { VirtualClock } from '../../src/core/clock.js';
import type { Logger } from '../../src/core/log.js';

/** What `start` needs of a gateway for the local curves, with a logger that keeps its warnings. */
function context() {
  const warn = vi.fn();
  const log = { warn, info: vi.fn(), debug: vi.fn(), error: vi.fn() } as unknown as Logger;
  const config = gatewayConfig({
    gateway: { id: 'inv-1', kind: 'inverter', cell: 'c1', bus: 'b1' },
    voltageControl: { method: 'volt-var' },
  });
  return { ctx: { config, clock: new VirtualClock(0), log } as unknown as RoleContext, warn };
}

describe('voltage agent: what it saves and takes back', () => {
  it('takes back what it saved: violations, their duration and the multipliers', () => {
    const saved = { violations: 3, violationMs: 1250, multipliers: { muOver: 12.5, muUnder: 0 } };
    const role = new VoltageAgentRole();
    role.restore(saved);
    const { ctx, warn } = context();
    role.start(ctx);
    expect(warn).not.toHaveBeenCalled();
    expect(role.state()).toMatchObject({ violations: 3, violationSeconds: 1.25 });
    expect(VoltageAgentSavedSchema.parse(role.persist())).toEqual({ violations: 3, violationMs: 1250 });
  });

  it.each([
    ['a count that is not a number', { violations: '3', violationMs: 0 }, 'violations'],
    [
      'a negative multiplier',
      { violations: 1, violationMs: 0, multipliers: { muOver: -5, muUnder: 0 } },
      'multipliers.muOver',
    ],
    [
      'a multiplier that is not finite',
      { violations: 1, violationMs: 0, multipliers: { muOver: null, muUnder: 0 } },
      'multipliers.muOver',
    ],
    ['not an object at all', [1, 2, 3], '(top)'],
  ])('ignores saved state with %s, and says which field at start (no crash)', (_what, saved, field) => {
    const role = new VoltageAgentRole();
    expect(() => role.restore(saved)).not.toThrow();
    const { ctx, warn } = context();
    role.start(ctx);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![0]).toMatchObject({ err: expect.stringContaining(field) });
    expect(warn.mock.calls[0]![1]).toMatch(/saved voltage-agent state ignored/);
    expect(role.state()).toMatchObject({ violations: 0, violationSeconds: 0 });
  });
});
