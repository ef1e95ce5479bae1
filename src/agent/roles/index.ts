import type { RoleName } from '../config.js';
import { CouplingAgentRole } from './coupling-agent.js';
import { DrAggregatorRole } from './dr-aggregator.js';
import type { RoleHandOver } from './hand-over.js';
import { MgTraderRole } from './mg-trader.js';
import { PlatformRole } from './platform.js';
import { ProsumerRole } from './prosumer.js';
import type { Role } from './role.js';
import { VoltageAgentRole } from './voltage-agent.js';

/** A role with no work in this build yet: it takes part in the lifecycle and says so on the status page. */
class IdleRole implements Role {
  constructor(
    readonly name: RoleName,
    private readonly what: string,
  ) {}
  tick(): void {}
  state(): Record<string, unknown> {
    return { status: 'idle', what: this.what };
  }
}

/** Builds a role; the role that writes a slot of the gateway's `handOver` is given that slot (its only writer). */
export function createRole(name: RoleName, handOver: RoleHandOver): Role {
  switch (name) {
    case 'prosumer':
      return new ProsumerRole();
    case 'voltage-agent':
      return new VoltageAgentRole();
    case 'mg-trader':
      return new MgTraderRole(handOver.cellImbalance);
    case 'coupling-agent':
      return new CouplingAgentRole(handOver.cellLimits);
    case 'dr-aggregator':
      return new DrAggregatorRole();
    case 'dso':
      return new IdleRole(name, 'sets congestion limits per cell');
    case 'platform':
      return new PlatformRole();
  }
}
