import type { RoleName } from '../config.js';
import { CouplingAgentRole, type CouplingAgentState } from './coupling-agent.js';
import { DrAggregatorRole, type DrAggregatorState } from './dr-aggregator.js';
import type { RoleHandOver } from './hand-over.js';
import { MgTraderRole, type MgTraderState } from './mg-trader.js';
import { PlatformRole, type PlatformRoleState } from './platform.js';
import { ProsumerRole, type ProsumerState } from './prosumer.js';
import type { Role } from './role.js';
import { VoltageAgentRole, type VoltageAgentState } from './voltage-agent.js';

export type IdleRoleState = { status: 'idle'; what: string };

/** What each role's `state()` gives: the status page's and the bench's view of a gateway's roles. */
export interface RoleStates {
  prosumer: ProsumerState;
  'voltage-agent': VoltageAgentState;
  'mg-trader': MgTraderState;
  'coupling-agent': CouplingAgentState;
  'dr-aggregator': DrAggregatorState;
  dso: IdleRoleState;
  platform: PlatformRoleState;
}

/** A role with no work in this build yet: it takes part in the lifecycle and says so on the status page. */
class IdleRole implements Role<IdleRoleState> {
  constructor(
    readonly name: RoleName,
    private readonly what: string,
  ) {}
  tick(): void {}
  state(): IdleRoleState {
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
