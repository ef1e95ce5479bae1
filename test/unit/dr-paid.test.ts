import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AlarmBook } from '../../src/agent/alarms.js';
import { SIMULATED_SETTLEMENT_SCHEDULE } from '../../src/agent/demo.js';
import { SettlementParty } from '../../src/agent/settlement/party.js';
import { SettlementRecords } from '../../src/agent/settlement/records.js';
import type { DisputedLine, SignedContent } from '../../src/comms/messages/settle.js';
import type { Transport } from '../../src/comms/transport.js';
import { VirtualClock } from '../../src/core/clock.js';
import { componentLogger } from '../../src/core/log.js';
import { generateKeyPair, type KeyPair, signCanonical } from '../../src/core/signing.js';
import { Contracts } from '../../src/platform/contracts.js';
import { DrEvents } from '../../src/platform/dr-events.js';
import {
  checkDrPayment,
  type DrPaymentCheck,
  type DrPaymentPayload,
  draftDrPayment,
  drPaymentEvent,
} from '../../src/platform/dr-payment.js';
import { DrSettlement } from '../../src/platform/dr-settlement.js';
import { Ledger } from '../../src/platform/ledger/ledger.js';
import { LiveSettlement } from '../../src/platform/live-settlement.js';
import { Membership } from '../../src/platform/membership.js';
import { MeterIntervals } from '../../src/platform/meter-intervals.js';
import { registerDrContracts } from '../../src/platform/provision.js';
import { Readings } from '../../src/platform/readings.js';
import { SettlementSchedule } from '../../src/platform/settlement-content.js';
import { buildStatement } from '../../src/platform/statement.js';
import { buildIntervalStatement } from '../../src/platform/statement-intervals.js';
import { TradeReports } from '../../src/platform/trades.js';

/** A 15-minute metering and trading interval, as in the field. */
const Q = 900_000;
const T = Date.UTC(2026, 11, 7, 12);
const iso = (ms: number) => new Date(ms).toISOString();

/** The lines of a check that must have refused the draft. */
function disputed(check: DrPaymentCheck): DisputedLine[] {
  expect(check.ok).toBe(false);
  return check.ok ? [] : check.lines;
}

describe('a DR payment line', () => {
  it('pays the delivered energy (baseline minus metered) at the dispatch price, capped at the dispatch, never below zero', () => {
    // Baseline 1.0 kWh, metered 0.4 kWh: 0.6 kWh delivered; 0.5 kWh dispatched at 0.2/kWh → 0.5 kWh paid, 0.10.
    expect(
      drPaymentEvent({
        event: 1,
        contract: 1,
        provider: 'inv-1',
        baselineKWh: 1,
        meteredKWh: 0.4,
        dispatchedKWh: 0.5,
        pricePerKWh: 0.2,
      }),
    ).toMatchObject({ deliveredKWh: 0.6, paidKWh: 0.5, amount: 0.1 });
    // 0.05 kWh delivered of 1 kWh dispatched → 0.05 kWh paid, 0.01.
    expect(
      drPaymentEvent({
        event: 2,
        contract: 2,
        provider: 'inv-2',
        baselineKWh: 0.5,
        meteredKWh: 0.45,
        dispatchedKWh: 1,
        pricePerKWh: 0.2,
      }),
    ).toMatchObject({ deliveredKWh: 0.05, paidKWh: 0.05, amount: 0.01 });
    // Consumption above the baseline: nothing delivered, nothing paid (and nothing charged).
    expect(
      drPaymentEvent({
        event: 3,
        contract: 1,
        provider: 'inv-1',
        baselineKWh: 1,
        meteredKWh: 1.3,
        dispatchedKWh: 0.5,
        pricePerKWh: 0.2,
      }),
    ).toMatchObject({ deliveredKWh: -0.3, paidKWh: 0, amount: 0 });
  });
});

const keys = { 'agg-1': generateKeyPair(), 'inv-1': generateKeyPair(), 'inv-2': generateKeyPair() };
const publicKey = (id: string) => keys[id as keyof typeof keys]?.publicKey;

function twoEventDraft(): SignedContent {
  return draftDrPayment(
    {
      interval: T,
      intervalMs: Q,
      aggregator: 'agg-1',
      events: [
        {
          event: 1,
          contract: 1,
          provider: 'inv-1',
          baselineKWh: 1,
          meteredKWh: 0.4,
          dispatchedKWh: 0.5,
          pricePerKWh: 0.2,
        },
        {
          event: 2,
          contract: 2,
          provider: 'inv-2',
          baselineKWh: 0.5,
          meteredKWh: 0.45,
          dispatchedKWh: 1,
          pricePerKWh: 0.2,
        },
      ],
    },
    publicKey,
  );
}

const dispatched = [
  { seller: 'inv-1', buyer: 'agg-1', kWh: 0.5, pricePerKWh: 0.2 },
  { seller: 'inv-2', buyer: 'agg-1', kWh: 1, pricePerKWh: 0.2 },
];

/** The draft with one event's figures changed and the amounts made to follow, as a platform would. */
function tampered(change: Partial<DrPaymentPayload['events'][number]>): SignedContent {
  const content = twoEventDraft();
  const p = content.payload as DrPaymentPayload;
  const events = p.events.map((e, i) => (i === 0 ? { ...e, ...change } : e));
  const amounts = { 'agg-1': -events.reduce((s, e) => s + e.amount, 0), 'inv-1': events[0]!.amount, 'inv-2': 0.01 };
  return { ...content, amounts, payload: { ...p, events } };
}

describe("the parties' check of a DR payment", () => {
  it('moves 0.10 to inv-1 and 0.01 to inv-2 from agg-1, and each party signs it', () => {
    const content = twoEventDraft();
    expect(content.amounts).toEqual({ 'agg-1': -0.11, 'inv-1': 0.1, 'inv-2': 0.01 });
    expect(content.parties.map((p) => p.id)).toEqual(['agg-1', 'inv-1', 'inv-2']);
    expect(checkDrPayment(content, 'inv-1', [dispatched[0]!]).ok).toBe(true);
    expect(checkDrPayment(content, 'inv-2', [dispatched[1]!]).ok).toBe(true);
    expect(checkDrPayment(content, 'agg-1', dispatched).ok).toBe(true);
  });

  it('disputes a price that is not the one dispatched', () => {
    const content = tampered({ pricePerKWh: 0.3, amount: 0.15 });
    for (const [party, own] of [
      ['inv-1', [dispatched[0]!]],
      ['agg-1', dispatched],
    ] as const) {
      const check = checkDrPayment(content, party, own);
      expect(disputed(check)).toContainEqual({
        line: 'events.0.pricePerKWh',
        draft: 0.3,
        own: 0.2,
        reason: 'not the price dispatched',
      });
    }
  });

  it('disputes energy paid beyond the dispatch, whether the dispatch or the paid kWh is inflated', () => {
    const inflatedDispatch = checkDrPayment(
      tampered({ dispatchedKWh: 0.6, paidKWh: 0.6, amount: 0.12 }),
      'agg-1',
      dispatched,
    );
    expect(disputed(inflatedDispatch).map((l) => l.line)).toEqual(['events.0.dispatchedKWh', 'events.0.paidKWh']);
    const inflatedPaid = checkDrPayment(tampered({ paidKWh: 0.6, amount: 0.12 }), 'agg-1', dispatched);
    expect(disputed(inflatedPaid)).toContainEqual({
      line: 'events.0.paidKWh',
      draft: 0.6,
      own: 0.5,
      reason: 'not the delivered energy capped at the dispatch',
    });
  });

  it('disputes a dispatch it has no record of and amounts that do not follow', () => {
    const none = checkDrPayment(twoEventDraft(), 'inv-1', []);
    expect(disputed(none).map((l) => l.line)).toEqual(['events.0.dispatchedKWh']);
    const content = { ...twoEventDraft(), amounts: { 'agg-1': -0.2, 'inv-1': 0.19, 'inv-2': 0.01 } };
    const check = checkDrPayment(content, 'inv-2', [dispatched[1]!]);
    expect(disputed(check).map((l) => l.line)).toEqual(['amounts.agg-1', 'amounts.inv-1']);
  });
});

describe('DR dispatches measured and paid on the platform', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  function platform() {
    dir = mkdtempSync(join(tmpdir(), 'dr-paid-'));
    const file = join(dir, 'ledger.db');
    const operator = { id: 'operator', ...generateKeyPair() };
    const platformKey = generateKeyPair();
    const ids: Record<string, KeyPair> = { ...keys, 'platform-1': platformKey };
    let ledger = Ledger.open(file);
    const roles = {
      'agg-1': 'aggregator',
      'inv-1': 'prosumer',
      'inv-2': 'prosumer',
      'platform-1': 'platform',
    } as const;
    const admit = new Membership(ledger.db, operator, () => T);
    for (const [id, role] of Object.entries(roles)) {
      admit.register({ id, publicKey: ids[id]!.publicKey, role, cell: 'cell-a' });
      admit.admit(id);
    }
    ledger.close();
    const contracts = registerDrContracts(
      file,
      operator,
      [
        {
          aggregator: 'agg-1',
          providers: [
            { provider: 'inv-1', maxKWh: 2 },
            { provider: 'inv-2', maxKWh: 2 },
          ],
          pricePerKWh: 0.25,
        },
      ],
      { meteringIntervalS: 900, slotMinutes: 15, nowMs: T - 5 * Q },
    );
    ledger = Ledger.open(file);
    const members = new Membership(ledger.db, undefined, () => T);
    const readings = new Readings(ledger.db, members);
    const schedule = {
      networkOperator: 'dso-1',
      networkFeePerKWh: 0.02,
      platform: 'platform-1',
      platformFeePerKWh: 0.004,
      importPricePerKWh: 0.3,
      exportPricePerKWh: 0.04,
      upperLevel: 'dso-1',
      toleranceKWh: 0.01,
      tolerancePct: 2,
    };
    const live = new LiveSettlement(ledger, members, new MeterIntervals(ledger.db), new TradeReports(ledger.db), {
      schedule,
      intervalMs: Q,
      waitAfterEndMs: 960_000,
      maxReadingWaitMs: 30_000,
      lookBackMs: 86_400_000,
    });
    const c = new Contracts(ledger.db, members);
    const dr = new DrSettlement(ledger, members, c, new DrEvents(ledger, c, readings), live, {
      intervalMs: Q,
      waitAfterEndMs: 960_000,
      maxReadingWaitMs: 30_000,
      energyScale: 1,
      lookBackMs: 86_400_000,
    });
    const signPlatform = (content: SignedContent) => signCanonical(content, platformKey.privateKey);
    const draftDue = (nowMs: number) =>
      dr.draftDue(nowMs, { id: 'platform-1', publicKey: platformKey.publicKey }, signPlatform, signPlatform);
    /** Consumption per 15 minutes, the intervals ending at T − 3Q … T + Q (the last one the event's). */
    const read = (member: string, kWh: number[]) =>
      readings.add({
        readings: kWh.map((energyKWh, k) => ({ member, meter: 'net', time: iso(T - 3 * Q + k * Q), energyKWh })),
      });
    return { ledger, live, dr, contracts, draftDue, read };
  }

  it('makes the dispatch an event under the contract, measures it with the hour before, and commits the payment once both sign', () => {
    const { ledger, live, dr, contracts, draftDue, read } = platform();
    expect(contracts.map((c) => c.kind === 'dr-service' && [c.provider, c.capacityKW, c.baseline])).toEqual([
      ['inv-1', 8, { method: 'metered-before-after', beforeMinutes: 60 }],
      ['inv-2', 8, { method: 'metered-before-after', beforeMinutes: 60 }],
    ]);
    expect(dr.report('agg-1', { interval: T, provider: 'inv-1', curtailKWh: 0.5, pricePerKWh: 0.2 }, T)).toEqual({
      outcome: 'stored',
      event: 1,
    });
    expect(dr.report('agg-1', { interval: T, provider: 'inv-1', curtailKWh: 0.5, pricePerKWh: 0.2 }, T).outcome).toBe(
      'resent',
    );
    dr.report('agg-1', { interval: T, provider: 'inv-2', curtailKWh: 1, pricePerKWh: 0.2 }, T);
    // Above the contract's price (0.25), or without a contract: refused.
    expect(dr.report('agg-1', { interval: T + Q, provider: 'inv-2', curtailKWh: 1, pricePerKWh: 0.3 }, T).outcome).toBe(
      'refused',
    );
    expect(dr.report('inv-1', { interval: T, provider: 'inv-2', curtailKWh: 1, pricePerKWh: 0.2 }, T).outcome).toBe(
      'refused',
    );
    // The hour before: 1.0, 1.2, 0.8, 1.0 kWh (baseline 1.0); during: 0.4. inv-2: 0.5 each, then 0.45.
    read('inv-1', [1, 1.2, 0.8, 1, 0.4]);
    read('inv-2', [0.5, 0.5, 0.5, 0.5, 0.45]);
    // Due a metering interval and the grace (960 s) after the interval's end.
    expect(draftDue(T + Q + 960_000 - 1)).toEqual([]);
    const [made, ...more] = draftDue(T + Q + 960_000);
    expect(more).toEqual([]);
    expect(made!.unit).toBe(`${T}/dr/agg-1`);
    expect(made!.content.amounts).toEqual({ 'agg-1': -0.11, 'inv-1': 0.1, 'inv-2': 0.01 });
    const events = (made!.content.payload as DrPaymentPayload).events;
    expect(events.map((e) => [e.provider, e.baselineKWh, e.meteredKWh, e.deliveredKWh, e.paidKWh, e.amount])).toEqual([
      ['inv-1', 1, 0.4, 0.6, 0.5, 0.1],
      ['inv-2', 0.5, 0.45, 0.05, 0.05, 0.01],
    ]);
    // Drafted once.
    expect(draftDue(T + Q + 960_000 + 1000)).toEqual([]);
    // The evaluations are attested in the ledger by the platform's key.
    expect(
      ledger
        .entries()
        .filter((e) => e.kind === 'dr-event')
        .map((e) => e.parties[0]!.id),
    ).toEqual(['platform-1', 'platform-1']);
    for (const id of ['inv-1', 'agg-1', 'inv-2'] as const) {
      const r = live.signatureReceived(
        id,
        {
          unit: made!.unit,
          contentHash: made!.contentHash,
          signature: signCanonical(made!.content, keys[id].privateKey),
        },
        T + Q + 961_000,
      );
      expect(r.outcome).toBe(id === 'inv-2' ? 'committed' : 'stored');
    }
    expect(live.summary()).toMatchObject({ balance: 0, units: { committed: 1 } });
    expect(ledger.verify().ok).toBe(true);
    const statement = buildStatement(ledger.entries(), {}, T + 2 * Q);
    expect(statement.balance).toBe(0);
    const account = (id: string) => statement.accounts.find((a) => a.id === id);
    expect(account('inv-1')).toMatchObject({ received: 0.1, paid: 0, net: 0.1 });
    expect(account('inv-2')).toMatchObject({ received: 0.01, net: 0.01 });
    expect(account('agg-1')).toMatchObject({ received: 0, paid: 0.11, net: -0.11 });
    // The member's page per interval reads the same line.
    expect(buildIntervalStatement(ledger.entries(), { member: 'inv-1' }, T + 2 * Q).intervals).toEqual([
      expect.objectContaining({ interval: iso(T).replace('.000Z', 'Z'), received: 0.1, paid: 0, net: 0.1 }),
    ]);
    ledger.close();
  });

  it('waits for missing readings, then pays the events it could measure and leaves the other unpaid', () => {
    const { ledger, dr, draftDue, read } = platform();
    dr.report('agg-1', { interval: T, provider: 'inv-1', curtailKWh: 0.5, pricePerKWh: 0.2 }, T);
    dr.report('agg-1', { interval: T, provider: 'inv-2', curtailKWh: 1, pricePerKWh: 0.2 }, T);
    read('inv-1', [1, 1.2, 0.8, 1, 0.4]);
    read('inv-2', [0.5, 0.5, 0.5, 0.5]);
    const due = T + Q + 960_000;
    expect(draftDue(due)).toEqual([]);
    expect(Object.keys(dr.waitingUnits())).toEqual([`${T}/dr/agg-1`]);
    expect(draftDue(due + 30_000)).toEqual([]);
    const [made] = draftDue(due + 30_001);
    expect(made!.content.amounts).toEqual({ 'agg-1': -0.1, 'inv-1': 0.1 });
    expect(dr.unpaid().map((u) => u.provider)).toEqual(['inv-2']);
    ledger.close();
  });
});

describe('a gateway as a party to a DR payment', () => {
  it('disputes a draft at another price than dispatched, naming the line, and signs the one that follows its dispatch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dr-party-'));
    try {
      const clock = new VirtualClock(T + 2 * Q);
      const log = componentLogger('test');
      log.level = 'silent';
      const records = new SettlementRecords(dir, 'inv-1', Q, 1, log, T - Q);
      const alarms = new AlarmBook();
      // ProsumerRole: the dr/dispatch it received for interval T.
      records.agreed(T, 'dr', [dispatched[0]!]);
      const handlers = new Map<string, (m: unknown) => unknown>();
      const sent: { type: string; body: { unit: string; lines?: { line: string }[] } }[] = [];
      const transport = {
        on: (p: { cls: string; type: string; target?: string }, h: (m: unknown) => unknown) =>
          handlers.set(`${p.cls}/${p.type}/${p.target ?? ''}`, h),
        publish: async (_cls: string, type: string, body: { unit: string }) => {
          sent.push({ type, body });
        },
      } as unknown as Transport;
      const party = new SettlementParty({
        gatewayId: 'inv-1',
        platform: 'platform-1',
        schedule: SettlementSchedule.parse(SIMULATED_SETTLEMENT_SCHEDULE),
        records,
        transport,
        clock,
        log,
        stateDir: dir,
        keepSignedDays: 2,
        sign: (document) => signCanonical(document, keys['inv-1'].privateKey),
        alarms,
      });
      party.start();
      const onDraft = handlers.get('settle/draft/inv-1')!;
      const deliver = (content: SignedContent) =>
        onDraft({ envelope: { sender: 'platform-1', body: { unit: `${T}/dr/agg-1`, content } } });
      await deliver(tampered({ pricePerKWh: 0.3, amount: 0.15 }));
      expect(sent.at(-1)!.type).toBe('dispute');
      expect(sent.at(-1)!.body.lines!.map((l) => l.line)).toContain('events.0.pricePerKWh');
      const [dispute] = alarms.list();
      expect(dispute).toMatchObject({ id: `settlement-dispute:${T}/dr/agg-1`, kind: 'settlement-dispute' });
      expect(dispute?.text).toContain('events.0.pricePerKWh draft 0.3');
      expect(dispute?.clearedAt).toBeUndefined();
      await deliver(twoEventDraft());
      expect(alarms.list()[0]?.clearedAt).toBe(clock.now());
      expect(sent.at(-1)!.type).toBe('signature');
      expect(party.state()).toMatchObject({ signed: 1, disputed: 1 });
      // Sent again (the platform asks again): signed again, kept once.
      await deliver(twoEventDraft());
      expect(sent.at(-1)!.type).toBe('signature');
      expect(party.state()).toMatchObject({ signed: 1, disputed: 1 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
