import { z } from 'zod';
import { GatewayConfig } from '../src/agent/config.js';
import { VoltageInputSchema } from '../src/control/voltage/problem.js';
import { FeederSchema } from '../src/grid/feeder.js';
import { TradeInputSchema } from '../src/trading/model.js';

/** File name under schemas/ → the zod schema its JSON Schema is generated from, with a title. */
const SCHEMAS: Record<string, { title: string; schema: z.ZodType }> = {
  'gateway-config.schema.json': { title: 'p2p-edge gateway config (p2p-edge run --config)', schema: GatewayConfig },
  'trade-input.schema.json': { title: 'p2p-edge trade --input', schema: TradeInputSchema },
  'powerflow-input.schema.json': { title: 'p2p-edge powerflow --feeder', schema: FeederSchema },
  'voltage-input.schema.json': { title: 'p2p-edge voltage --input', schema: VoltageInputSchema },
};

/**
 * The schemas as the files hold them. What a JSON Schema cannot say (cross-field rules, e.g. a
 * `dual` voltage control needing its feeder file) the software still checks, naming the field.
 */
export function jsonSchemas(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(SCHEMAS).map(([file, { title, schema }]) => {
      const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
      return [file, `${JSON.stringify({ ...json, title, description: 'docs/interfaces.md' }, null, 2)}\n`];
    }),
  );
}
