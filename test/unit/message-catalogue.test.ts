import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { purchasesFromNeighbours, tradesWithProsumers } from '../../src/agent/roles/trade-reporter.js';
import { MemoryBus, MemoryTransport } from '../../src/comms/memory-transport.js';
import { catalogueKinds, checkBody } from '../../src/comms/messages/catalogue.js';
import type { TopicParts } from '../../src/comms/topics.js';
import type { Delivery } from '../../src/comms/transport.js';
import { VirtualClock } from '../../src/core/clock.js';
import { GatewayMetrics } from '../../src/core/metrics.js';
import { generateKeyPair } from '../../src/core/signing.js';
import { contentHash, Ledger, signContent } from '../../src/platform/ledger/ledger.js';
import { checkDraft } from '../../src/platform/settlement-check.js';
import {
  draftUnit,
  evidenceHash,
  SettlementSchedule,
  unitConfig,
  unitId,
} from '../../src/platform/settlement-content.js';
import { compileModel, TradeInputSchema } from '../../src/trading/model.js';
import { localTradeModel, MarketSession } from '../../src/trading/session.js';
import { metricValue } from '../helpers/signed-cell.js';

const T0 = 1_800_000_000_000;

/** Two rounds' prices of a real market session between traders tx-a and tx-b. */
function realPrices() {
  const agent = compileModel(
    TradeInputSchema.parse({
      horizon: 2,
      agents: [{ id: 'tx-a', demand: [10, 12], generators: [{ a: 0.002, b: 0.05, max: 60 }] }],
    }),
    undefined,
    false,
  ).agents[0]!;
  const link = { peer: 'tx-b', sendCapacityKWh: 30, receiveCapacityKWh: 30, a: 0.001, b: 0.005, efficiency: 0.98 };
  const session = new MarketSession(String(T0), localTradeModel(agent, [link], 2, 1), 'accelerated', 200);
  const first = session.outbox();
  session.step();
  return [...first, ...session.outbox()];
}

/**
 * A body of every kind as the gateways send it: from the code that makes it where that is at hand
 * (the market session's prices, the trade lists), else written as the role builds it (file named).
 */
const REAL: Record<string, { topic?: Partial<TopicParts>; bodies: unknown[] }> = {
  // BaseTransport.onlinePayload; D2DTransport.closeBackend
  'life/online': { bodies: [{ online: true, role: 'inverter', publicKey: 'q9fQ0K2x', version: '0.1.0' }] },
  'life/offline': { bodies: [{}] },
  // D2DRelay.tick: an offer to the cell, a request to the relay
  'life/relay': { bodies: [{ request: true }, { offer: true }, { request: false }] },
  // ProsumerRole.offer (flexibility from the config)
  'mkt/offer': {
    bodies: [
      { loadW: 850.5, pvW: 3200, flexibility: [] },
      { loadW: 0, pvW: 0, flexibility: [{ a: 0.004, b: 0.12, maxKW: 2 }] },
    ],
  },
  // MgTraderRole.dispatch
  'mkt/dispatch': {
    bodies: [
      {
        session: String(T0),
        prices: [0.071, 0.08],
        pvKWh: [0.8, 0.75],
        curtailKWh: [0, 0],
        netKWh: [-0.6, -0.5],
        paymentTotal: -0.09,
      },
    ],
  },
  // MgTraderRole.runSession
  'mkt/result': { bodies: [{ session: String(T0), prices: [0.071, 0.08], converged: true }] },
  // SessionRunner.run: MarketSession.outbox()
  'mkt/price': { topic: { sender: 'tx-a', target: 'tx-b' }, bodies: realPrices() },
  'mkt/price-up': {
    topic: { sender: 'tx-a', target: 'tx-b' },
    bodies: realPrices().map((m) => ({ ...m, session: `up-${m.session}` })),
  },
  // TradeReporter.report from MgTraderRole
  'mkt/trades': {
    bodies: [
      {
        session: String(T0),
        interval: T0,
        market: 'cell',
        converged: true,
        trades: [
          ...purchasesFromNeighbours('tx-a', { 'tx-b': -1.25, 'tx-c': 0.5 }, 0.07),
          ...tradesWithProsumers('tx-a', { 'inv-1': 0.4, 'inv-2': -0.3 }, 0.07),
        ],
      },
      { session: `up-${T0}`, interval: T0, market: 'upper', converged: false, trades: [] },
    ],
  },
  // ReliableDelivery.acknowledge
  'mkt/ack': { bodies: [{ epoch: 1_800_000_000, seq: 87, type: 'dispatch' }] },
  'dr/ack': { bodies: [{ epoch: 1_800_000_000, seq: 15, type: 'dispatch' }] },
  'meter/ack': { bodies: [{ epoch: 1_800_000_000, seq: 44, type: 'reading' }] },
  // DrAggregatorRole.tick
  'dr/dispatch': { bodies: [{ interval: String(T0), curtailKWh: 1.5, price: 0.18, paid: 0.27 }] },
  // DrAggregatorRole.tick, to the platform
  'dr/event': { bodies: [{ interval: T0, provider: 'inv-1', curtailKWh: 1.5, pricePerKWh: 0.18 }] },
  // VoltageAgentRole.dualStep (with the multiplier while on the distributed control) and gossipRound
  'gossip/hello': {
    bodies: [
      { bus: 'b7', epoch: T0 },
      { bus: 'b7', epoch: T0, multiplier: 0.012 },
    ],
  },
  // VoltageAgentRole.tellBusLimit: the primary cycle the bus goes beyond a limit (the multiplier on the distributed control)
  'gossip/bus-limit': {
    bodies: [
      { bus: 'b3', voltagePu: 1.07, limit: 'max', limitPu: 1.05, multiplier: 0.004 },
      { bus: 'b3', voltagePu: 0.93, limit: 'min', limitPu: 0.95 },
    ],
  },
  // VoltageAgentRole.tellTransition: the primary cycle one of its inverters stops producing / produces again
  'gossip/inverter-trip': {
    bodies: [
      { inverter: 'pv-a', bus: 'b3', pW: 4000, qVAr: -1200, voltagePu: 1.046, multiplier: 0.004 },
      { inverter: 'pv-a', bus: 'b3', pW: 4000, qVAr: 0, voltagePu: 0.96 },
    ],
  },
  'gossip/inverter-reconnect': {
    bodies: [{ inverter: 'pv-a', bus: 'b3', pW: 3500, qVAr: -1200, voltagePu: 1.04, multiplier: 0.004 }],
  },
  'gossip/pushsum': {
    bodies: [
      { bus: 'b7', epoch: T0, seq: 3, slot: 1_234, s: { 'inv-1': 0.5, 'inv-2': -0.25 }, w: 0.5 },
      { bus: 'b7', epoch: T0, toEpoch: T0 - 5000, seq: 4, slot: 1_234, s: {}, w: 0 },
    ],
  },
  // ProsumerRole.publishInterval: a quarter hour's energy, a partial one after a restart
  'meter/energy': {
    bodies: [
      { fromMs: 1_800_000_000_000, toMs: 1_800_000_900_000, netKWh: -0.42, coveredMs: 900_000 },
      { fromMs: 1_800_000_000_000, toMs: 1_800_000_900_000, netKWh: 0.1, coveredMs: 300_000 },
    ],
  },
  // ProsumerRole.measure (no voltage point: null)
  'meter/reading': {
    bodies: [
      { netW: -5400, pvW: 6200, loadW: 800, voltagePu: 1.031 },
      { netW: 300, pvW: 0, loadW: 300, voltagePu: null },
    ],
  },
};

/** One cell settlement drafted, signed, disputed and chained by the platform's own code. */
function realSettlement() {
  const dir = mkdtempSync(join(tmpdir(), 'catalogue-'));
  const keys = new Map(['tx-a', 'inv-1', 'dso-1', 'platform-1'].map((id) => [id, generateKeyPair()]));
  const schedule = SettlementSchedule.parse({
    networkOperator: 'dso-1',
    networkFeePerKWh: 0.02,
    platform: 'platform-1',
    platformFeePerKWh: 0.004,
    importPricePerKWh: 0.3,
    exportPricePerKWh: 0.04,
    upperLevel: 'dso-1',
  });
  const { content } = draftUnit(
    {
      interval: T0,
      intervalMs: 900_000,
      market: 'cell',
      cell: 'c1',
      trades: tradesWithProsumers('tx-a', { 'inv-1': -0.8 }, 0.07),
      meteredNetExportKWh: { 'inv-1': 0.75, 'tx-a': -0.8 },
      config: unitConfig(schedule, 'cell', 'tx-a'),
      evidence: { trades: evidenceHash([]), samples: evidenceHash([]) },
    },
    (id) => keys.get(id)?.publicKey,
  );
  const unit = unitId(T0, 'cell', 'c1');
  const hash = contentHash(content);
  // LiveSettlement.draftDue → PlatformRole.settle
  const draft = { unit, content };
  // SettlementParty.onDraft
  const signature = { unit, contentHash: hash, signature: signContent(content, keys.get('inv-1')!.privateKey) };
  const check = checkDraft(content, 'inv-1', { metered: { kWh: 0.6, coverage: 1 } }, schedule);
  const dispute = { unit, contentHash: hash, lines: check.ok ? [] : check.lines };
  // PlatformRole.publishHead → LiveSettlement.headEntries
  const ledger = Ledger.open(join(dir, 'ledger.db'));
  const signatures = Object.fromEntries([...keys].map(([id, k]) => [id, signContent(content, k.privateKey)]));
  const entry = ledger.appendContent(content, signatures, new Date(T0).toISOString());
  ledger.close();
  rmSync(dir, { recursive: true, force: true });
  const head = {
    entries: 1,
    hash: entry.hash,
    from: 0,
    recent: [{ index: 0, time: entry.time, form: 2, contentHash: hash, hash: entry.hash }],
  };
  return { draft, signature, dispute, head };
}
const SETTLEMENT = realSettlement();
REAL['settle/draft'] = { topic: { sender: 'platform-1', target: 'inv-1' }, bodies: [SETTLEMENT.draft] };
REAL['settle/signature'] = { bodies: [SETTLEMENT.signature] };
REAL['settle/dispute'] = { bodies: [SETTLEMENT.dispute] };
REAL['settle/head'] = { bodies: [SETTLEMENT.head, { entries: 0, hash: '0'.repeat(64), from: 0, recent: [] }] };
REAL['settle/head-request'] = { bodies: [{ from: 17 }] };
REAL['settle/ack'] = { bodies: [{ epoch: 1_800_000_000, seq: 23, type: 'draft' }] };

const topicOf = (kind: string, extra: Partial<TopicParts> = {}): TopicParts => {
  const [cls, type] = kind.split('/') as [TopicParts['cls'], string];
  return { cell: 'c1', sender: 'tx-a', cls, type, target: 'tx-b', ...extra };
};

describe('the message catalogue', () => {
  it('has a schema for every kind of message the gateways send, and each takes what they send', () => {
    expect(Object.keys(REAL).sort()).toEqual(catalogueKinds().sort());
    for (const [kind, { topic, bodies }] of Object.entries(REAL)) {
      for (const body of bodies) expect(checkBody(topicOf(kind, topic), body), kind).toMatchObject({ ok: true });
    }
  });

  it('refuses a body of another shape for every kind', () => {
    for (const [kind, { topic, bodies }] of Object.entries(REAL)) {
      const t = topicOf(kind, topic);
      expect(checkBody(t, null), kind).toMatchObject({ ok: false, problem: 'invalid body' });
      expect(checkBody(t, 'text'), kind).toMatchObject({ ok: false, problem: 'invalid body' });
      // An acknowledgement's type only teaches who reads a type: one of another type is left out, not refused.
      const fields = Object.keys(bodies[0] as object).filter((f) => !(kind.endsWith('/ack') && f === 'type'));
      // Each field given a value of another type is refused.
      for (const field of fields) {
        const wrongType = { ...(bodies[0] as object), [field]: { nested: true } };
        expect(checkBody(t, wrongType), `${kind}.${field}`).toMatchObject({ ok: false });
      }
    }
    expect(checkBody(topicOf('meter/reading'), { netW: 1, pvW: 0, loadW: 1 })).toMatchObject({ ok: false });
    expect(checkBody(topicOf('mkt/offer'), { loadW: -1, pvW: 0, flexibility: [] })).toMatchObject({ ok: false });
    // A bus-limit whose voltage is within the limit it names tells of no event.
    const within = { bus: 'b3', voltagePu: 1.04, limit: 'max', limitPu: 1.05 };
    expect(checkBody(topicOf('gossip/bus-limit'), within)).toMatchObject({ ok: false, problem: 'invalid body' });
    // A trip loses produced power: a negative `pW` is not one.
    const gained = { inverter: 'pv-a', bus: 'b3', pW: -4000, qVAr: 0, voltagePu: 1 };
    expect(checkBody(topicOf('gossip/inverter-trip'), gained)).toMatchObject({ ok: false, problem: 'invalid body' });
    const trade = { seller: 'tx-a', buyer: 'tx-a', kWh: 1, pricePerKWh: 0.1 };
    const report = { session: 's', interval: T0, market: 'cell', converged: true, trades: [trade] };
    expect(checkBody(topicOf('mkt/trades'), report)).toMatchObject({ ok: false, problem: 'invalid body' });
  });

  it('keeps the strictness each receiver had: extra fields refused where they were, dropped where they were taken', () => {
    // Readings and prices were always taken with fields their receivers did not know (dropped).
    const reading = checkBody(topicOf('meter/reading'), { netW: 1, pvW: 0, loadW: 1, voltagePu: null, phase: 'L1' });
    expect(reading).toEqual({ ok: true, body: { netW: 1, pvW: 0, loadW: 1, voltagePu: null } });
    const price = realPrices()[0]!;
    expect(checkBody(topicOf('mkt/price'), { ...price, hint: 1 })).toMatchObject({ ok: true });
    expect(checkBody(topicOf('mkt/ack'), { epoch: 1, seq: 2, type: 3 })).toEqual({
      ok: true,
      body: { epoch: 1, seq: 2, type: undefined },
    });
    // The market's and gossip bodies were strict, and stay so.
    for (const kind of [
      'mkt/offer',
      'mkt/dispatch',
      'mkt/trades',
      'dr/dispatch',
      'gossip/hello',
      'gossip/pushsum',
      'gossip/bus-limit',
      'gossip/inverter-trip',
      'gossip/inverter-reconnect',
    ]) {
      const body = REAL[kind]!.bodies[0] as object;
      expect(checkBody(topicOf(kind), { ...body, extra: 1 }), kind).toMatchObject({ ok: false });
    }
  });

  it('refuses a price that is not its sender own, or not for its target', () => {
    const price = realPrices()[0]!;
    expect(checkBody(topicOf('mkt/price', { sender: 'tx-c' }), price)).toMatchObject({
      ok: false,
      problem: 'not its topic',
    });
    expect(checkBody(topicOf('mkt/price', { target: 'tx-c' }), price)).toMatchObject({
      ok: false,
      problem: 'not its topic',
    });
  });

  it('knows no type it has no schema for', () => {
    expect(checkBody(topicOf('mkt/bid'), {})).toEqual({ ok: false, problem: 'unknown type' });
    expect(checkBody(topicOf('cmd/reboot'), {})).toEqual({ ok: false, problem: 'unknown type' });
    expect(checkBody(topicOf('mkt/toString'), {})).toEqual({ ok: false, problem: 'unknown type' });
  });
});

describe('a handler registered with Transport.on', () => {
  async function pair() {
    const clock = new VirtualClock(T0);
    const bus = new MemoryBus();
    const lines: { msg: string; level: number; [k: string]: unknown }[] = [];
    const log = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const quiet = pino({ level: 'silent' });
    const make = (id: string, logger: typeof log) => {
      const metrics = new GatewayMetrics({ gateway: id });
      const t = new MemoryTransport(
        bus,
        { gatewayId: id, cell: 'c1', role: 'test', version: 'test', publicKey: '' },
        { clock, log: logger, metrics },
      );
      return { t, metrics };
    };
    const house = make('inv-1', quiet);
    const platform = make('platform', log);
    await house.t.start();
    await platform.t.start();
    const settle = () => clock.advance(10);
    return { clock, house, platform, lines, settle };
  }

  it('gets a checked body; a bad one reaches no handler, is counted as schema once, logged, and acknowledged', async () => {
    const { house, platform, lines, settle } = await pair();
    const readings: unknown[] = [];
    const raw: Delivery[] = [];
    platform.t.on({ cell: 'c1', cls: 'meter', type: 'reading' }, ({ envelope }) => {
      readings.push(envelope.body);
    });
    platform.t.on({ cell: 'c1', cls: 'meter', type: 'reading' }, () => undefined, { acknowledge: false });
    platform.t.subscribeUnchecked({ cell: 'c1', cls: 'meter', type: 'reading' }, (d) => raw.push(d));
    await house.t.publish('meter', 'reading', { netW: 300, pvW: 0, loadW: 300, voltagePu: null });
    await house.t.publishUnchecked('meter', 'reading', { netW: 'a lot' });
    await house.t.publishUnchecked('meter', 'reading', { netW: 1, pvW: 0, loadW: 1, voltagePu: 1, phase: 'L2' });
    await settle();

    expect(readings).toEqual([
      { netW: 300, pvW: 0, loadW: 300, voltagePu: null },
      { netW: 1, pvW: 0, loadW: 1, voltagePu: 1 },
    ]);
    expect(raw).toHaveLength(3); // an unchecked tap sees everything, as it arrived
    // Two checked handlers matched the bad reading: it is one message, counted once.
    expect(await metricValue(platform.metrics, 'p2p_messages_rejected_total', { reason: 'schema' })).toBe(1);
    const refused = lines.filter((l) => l.msg === 'message body refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ kind: 'meter/reading', problem: 'invalid body', sender: 'inv-1', messages: 1 });
    expect(refused[0]!.detail).toMatch(/^netW: /);
  });

  it('acknowledges a refused body like a taken one: a resend of the same bytes would be refused again', async () => {
    const { clock, house, platform, settle } = await pair();
    const taken: unknown[] = [];
    platform.t.on({ cell: 'c1', cls: 'dr', type: 'dispatch', target: 'platform' }, ({ envelope }) => {
      taken.push(envelope.body);
    });
    await house.t.publishUnchecked('dr', 'dispatch', { interval: T0, curtailKWh: 1 }, { target: 'platform' });
    expect(house.t.linkQuality().outboxPending).toBe(1);
    await settle();
    expect(taken).toEqual([]);
    expect(await metricValue(platform.metrics, 'p2p_messages_rejected_total', { reason: 'schema' })).toBe(1);
    await clock.advance(200); // the acknowledgement is held up to 150 ms
    expect(house.t.linkQuality().outboxPending).toBe(0);
  });

  it('logs refusals at most once a minute per kind and problem, with how many there were', async () => {
    const { clock, house, platform, lines, settle } = await pair();
    platform.t.on({ cell: 'c1', cls: 'meter', type: 'reading' }, () => undefined);
    for (let k = 0; k < 5; k++) await house.t.publishUnchecked('meter', 'reading', { k });
    await settle();
    await clock.advance(60_000);
    await house.t.publishUnchecked('meter', 'reading', { k: 5 });
    await settle();
    expect(await metricValue(platform.metrics, 'p2p_messages_rejected_total', { reason: 'schema' })).toBe(6);
    expect(lines.filter((l) => l.msg === 'message body refused').map((l) => l.messages)).toEqual([1, 5]);
  });

  it('for a whole class: a type the catalogue does not know is counted as schema and reaches no handler', async () => {
    const { house, platform, lines, settle } = await pair();
    const types: string[] = [];
    platform.t.on({ cell: 'c1', cls: 'mkt', target: 'platform' }, ({ envelope }) => {
      types.push(envelope.type);
      if (envelope.type === 'trades') expect(envelope.body.market).toBe('cell');
    });
    await house.t.publishUnchecked('mkt', 'bid', { kWh: 1 }, { target: 'platform' });
    await house.t.publish(
      'mkt',
      'trades',
      { session: 's', interval: T0, market: 'cell', converged: true, trades: [] },
      { target: 'platform' },
    );
    await settle();
    expect(types).toEqual(['trades']);
    expect(await metricValue(platform.metrics, 'p2p_messages_rejected_total', { reason: 'schema' })).toBe(1);
    expect(lines.filter((l) => l.msg === 'message body refused')).toMatchObject([
      { kind: 'mkt/bid', problem: 'unknown type' },
    ]);
  });

  it('refuses an acknowledgement without a message id (counted, not taken)', async () => {
    const { clock, house, platform, settle } = await pair();
    platform.t.on({ cell: 'c1', cls: 'dr', type: 'dispatch', target: 'platform' }, () => undefined);
    // The platform does not answer for a while: the house keeps its dispatch pending.
    const bus = (house.t as unknown as { bus: MemoryBus }).bus;
    const forged = {
      v: 1,
      sender: 'platform',
      epoch: 1,
      seq: 7,
      ts: T0,
      expires: T0 + 30_000,
      type: 'ack',
      body: { seq: 1 },
    };
    await house.t.publish(
      'dr',
      'dispatch',
      { interval: String(T0), curtailKWh: 1, price: 0.2, paid: 0.2 },
      { target: 'platform' },
    );
    bus.publish('p2p/v1/c1/platform/dr/ack/inv-1', JSON.stringify(forged), false);
    await settle();
    expect(await metricValue(house.metrics, 'p2p_messages_rejected_total', { reason: 'schema' })).toBe(1);
    // The genuine acknowledgement (held up to 150 ms) still completes it.
    await clock.advance(200);
    expect(house.t.linkQuality().outboxPending).toBe(0);
  });
});
