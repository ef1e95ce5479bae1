import { SettlementSchedule } from '../../src/platform/settlement-content.js';

/**
 * The published schedule the settlement tests work their amounts out by hand with: 0.02 per kWh to
 * the network operator `dso`, 0.004 to the platform `platform`, the level above `grid` buying at 0.04
 * and selling at 0.30.
 */
export const HAND_SCHEDULE = SettlementSchedule.parse({
  networkOperator: 'dso',
  networkFeePerKWh: 0.02,
  platform: 'platform',
  platformFeePerKWh: 0.004,
  importPricePerKWh: 0.3,
  exportPricePerKWh: 0.04,
  upperLevel: 'grid',
});
