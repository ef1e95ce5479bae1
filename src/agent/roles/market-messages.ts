/**
 * How the MG trader prices the PV its prosumers offer (`mkt/offer`, whose body is in
 * `src/comms/messages/market.ts`): no fuel cost, curved like a small generator so that curtailment is
 * shared between prosumers and the trader's price step stays well conditioned.
 */
export const PV_OFFER_COST = { a: 0.002, b: 0 };
