import { ErrorCode, P2PError } from '../core/errors.js';
import { printJson } from '../core/output.js';
import { runMarket } from './market.js';
import { loadTradeModel } from './model.js';
import { TRADING_ALGORITHMS, type TradingAlgorithm } from './trader.js';

export interface TradeCommandOptions {
  input: string;
  json?: boolean;
  algorithm?: string;
  tolerance?: number;
  maxIterations?: number;
}

/** `p2p-edge trade --input FILE [--json] [--algorithm NAME] [--tolerance X] [--max-iterations N]` */
export async function tradeCommand(o: TradeCommandOptions): Promise<void> {
  const algorithm = (o.algorithm ?? 'accelerated') as TradingAlgorithm;
  if (!TRADING_ALGORITHMS.includes(algorithm)) {
    throw new P2PError(
      ErrorCode.input,
      `--algorithm: expected one of ${TRADING_ALGORITHMS.join(', ')}, got "${o.algorithm}"`,
      {
        field: '--algorithm',
      },
    );
  }
  if (o.tolerance !== undefined && !(o.tolerance > 0))
    throw new P2PError(ErrorCode.input, '--tolerance must be > 0', { field: '--tolerance' });
  if (o.maxIterations !== undefined && !(o.maxIterations >= 1)) {
    throw new P2PError(ErrorCode.input, '--max-iterations must be >= 1', { field: '--max-iterations' });
  }
  const model = loadTradeModel(o.input);
  const result = runMarket(model, {
    algorithm,
    ...(o.tolerance !== undefined ? { tolerance: o.tolerance } : {}),
    ...(o.maxIterations !== undefined ? { maxIterations: o.maxIterations } : {}),
  });
  if (o.json) return printJson(result);
  const lines = [
    `${result.converged ? 'converged' : 'NOT converged'} after ${result.iterations} rounds (${result.algorithm}), ${result.messages} messages`,
    `cost ${result.cost.toFixed(4)}, max imbalance ${result.maxImbalanceKWh.toExponential(2)} kWh`,
    ...Object.entries(result.prices).map(([id, p]) => `  ${id}: price ${p.map((x) => x.toFixed(4)).join(' ')}`),
  ];
  if (!result.converged)
    lines.push(`agents still unbalanced: ${result.unbalancedAgents.join(', ') || '(none above tolerance)'}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
