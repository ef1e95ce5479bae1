import type { z } from 'zod';
import type { MemberRole } from '../../core/members.js';
import type { MessageClass, TopicParts } from '../topics.js';
import { AckBody } from './ack.js';
import { DrDispatchBody, DrEventBody } from './dr.js';
import { BusLimitBody, HelloBody, InverterReconnectBody, InverterTripBody, PushSumBody } from './gossip.js';
import { OfflineBody, OnlineBody, RelayBody } from './life.js';
import { DispatchBody, OfferBody, PriceBody, priceAddressed, ResultBody, TradeReportBody } from './market.js';
import { MeterEnergyBody, MeterReadingBody } from './meter.js';
import {
  SettleDisputeBody,
  SettleDraftBody,
  SettleHeadBody,
  SettleHeadRequestBody,
  SettleSignatureBody,
} from './settle.js';

/**
 * Who may read a body (docs/interfaces.md, confidential bodies): `public` (whoever the broker lets
 * read it: presence, a cell's market result, price rounds, gossip), `target` (the member a message is
 * addressed to), or members by role: of the sender's cell (`cell`) or of any cell (`anyCell`). Every
 * body not public is sealed end to end to its readers' encryption keys (`src/comms/sealed-body.ts`).
 */
export type Readers = 'public' | 'target' | { cell: readonly MemberRole[]; anyCell: readonly MemberRole[] };

/**
 * One kind of message: the zod schema of its body, where the body names the sender or target of its
 * own topic the check that they agree, and who reads it (`readers`; when absent, the target of an
 * addressed message and everyone of one to the cell).
 */
export interface MessageSpec<S extends z.ZodType = z.ZodType> {
  readonly body: S;
  agreesWithTopic?(body: z.infer<S>, topic: TopicParts): boolean;
  readonly readers?: Readers;
  /**
   * The sender's next message of this kind replaces it (a reading of every cycle): in a reliable
   * class it is still sent at once, but neither kept in an outbox, resent nor acknowledged, since a
   * lost one is made good by the next sooner than a resend could be.
   */
  readonly superseded?: boolean;
  /**
   * An event on the primary time scale (a bus beyond its voltage limit, an inverter tripping or
   * reconnecting): it goes out the moment it is
   * seen, and over the sidelink at the most urgent priority (`URGENT_PRIORITY`), above its class's.
   */
  readonly urgent?: boolean;
}

/** The sidelink priority of an urgent message (0, the most urgent of the module's eight). */
export const URGENT_PRIORITY = 0;

const spec = <S extends z.ZodType>(
  body: S,
  options: {
    agreesWithTopic?: (body: z.infer<S>, topic: TopicParts) => boolean;
    readers?: Readers;
    superseded?: boolean;
    urgent?: boolean;
  } = {},
): MessageSpec<S> => ({ body, ...options });

/**
 * The cell's MG trader (and its coupling agent) balance the cell from the readings of every cycle;
 * the platform gets each metering interval's energy (`meter/energy`, addressed to it), nothing finer.
 */
const METER_READERS: Readers = { cell: ['mg-trader'], anyCell: [] };

/**
 * Every message body the gateways send, by class and type (the wire format is docs/interfaces.md,
 * "Messages on the wire"; the tables are in docs/architecture.md). A received message is handed to
 * an application handler only when its body matches the schema here (`checkBody`), and `publish`
 * takes only these bodies.
 */
export const MESSAGE_CATALOGUE = {
  life: { online: spec(OnlineBody), offline: spec(OfflineBody), relay: spec(RelayBody, { readers: 'public' }) },
  mkt: {
    // A household's expected load and PV: for its MG trader only.
    offer: spec(OfferBody, { readers: { cell: ['mg-trader'], anyCell: [] } }),
    dispatch: spec(DispatchBody),
    // The cell's latest prices for whoever shows them (a DSO's SCADA, a status page): the next
    // interval's replaces it, and the trades that count reach the platform as `mkt/trades`.
    result: spec(ResultBody, { superseded: true }),
    // Price rounds between traders are public within the market (and sent every round: not sealed).
    price: spec(PriceBody, { agreesWithTopic: priceAddressed, readers: 'public' }),
    'price-up': spec(PriceBody, { agreesWithTopic: priceAddressed, readers: 'public' }),
    trades: spec(TradeReportBody),
    ack: spec(AckBody),
  },
  dr: { dispatch: spec(DrDispatchBody), event: spec(DrEventBody), ack: spec(AckBody) },
  // The voltage control's exchange between neighbours, many times a second: not sealed. A bus beyond
  // its limit, and an inverter tripping or reconnecting, are told to the cell at once, ahead of
  // everything else on the sidelink.
  gossip: {
    hello: spec(HelloBody),
    pushsum: spec(PushSumBody, { readers: 'public' }),
    'bus-limit': spec(BusLimitBody, { readers: 'public', urgent: true }),
    'inverter-trip': spec(InverterTripBody, { readers: 'public', urgent: true }),
    'inverter-reconnect': spec(InverterReconnectBody, { readers: 'public', urgent: true }),
  },
  meter: {
    reading: spec(MeterReadingBody, { readers: METER_READERS, superseded: true }),
    energy: spec(MeterEnergyBody),
    ack: spec(AckBody),
  },
  cmd: {},
  settle: {
    draft: spec(SettleDraftBody),
    signature: spec(SettleSignatureBody),
    dispute: spec(SettleDisputeBody),
    head: spec(SettleHeadBody),
    'head-request': spec(SettleHeadRequestBody),
    ack: spec(AckBody),
  },
} as const satisfies Record<MessageClass, Record<string, MessageSpec>>;

type Catalogue = typeof MESSAGE_CATALOGUE;
/** The message types of a class. */
export type MessageType<C extends MessageClass> = keyof Catalogue[C] & string;
/** The body of a class and type, as sent and as a handler receives it. */
export type MessageBody<C extends MessageClass, T extends MessageType<C>> =
  Catalogue[C][T] extends MessageSpec<infer S> ? z.infer<S> : never;

export type BodyCheck =
  | { ok: true; body: unknown }
  | { ok: false; problem: 'unknown type' | 'invalid body' | 'not its topic'; detail?: string };

/**
 * Checks a received body against the catalogue: its class and type must be known, the body must
 * match the schema (what it returns is what a handler gets: fields a lenient schema does not know
 * are dropped), and agree with its topic.
 */
export function checkBody(topic: TopicParts, body: unknown): BodyCheck {
  const kinds: Partial<Record<string, MessageSpec>> = MESSAGE_CATALOGUE[topic.cls];
  const kind = Object.hasOwn(kinds, topic.type) ? kinds[topic.type] : undefined;
  if (!kind) return { ok: false, problem: 'unknown type' };
  const parsed = kind.body.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      ok: false,
      problem: 'invalid body',
      detail: issue && `${issue.path.join('.') || 'body'}: ${issue.message}`,
    };
  }
  if (kind.agreesWithTopic && !kind.agreesWithTopic(parsed.data, topic)) return { ok: false, problem: 'not its topic' };
  return { ok: true, body: parsed.data };
}

/**
 * Who reads a message of this topic: a public kind is public; any other message addressed to a
 * target is for that target alone; one to the cell is for the readers its kind names. A type the
 * catalogue does not know is sealed to its target when addressed (the safe side), public otherwise.
 */
export function readersOf(topic: TopicParts): Readers {
  const kinds: Partial<Record<string, MessageSpec>> = MESSAGE_CATALOGUE[topic.cls];
  const kind = Object.hasOwn(kinds, topic.type) ? kinds[topic.type] : undefined;
  if (kind?.readers === 'public') return 'public';
  if (topic.target !== undefined) return 'target';
  return kind?.readers ?? 'public';
}

/** The sender's next message of this kind replaces it: not acknowledged nor resent (`MessageSpec.superseded`). */
export function isSuperseded(cls: MessageClass, type: string): boolean {
  const kinds: Partial<Record<string, MessageSpec>> = MESSAGE_CATALOGUE[cls];
  return Object.hasOwn(kinds, type) && kinds[type]?.superseded === true;
}

/** An event on the primary time scale, sent at `URGENT_PRIORITY` (`MessageSpec.urgent`). */
export function isUrgent(cls: MessageClass, type: string): boolean {
  const kinds: Partial<Record<string, MessageSpec>> = MESSAGE_CATALOGUE[cls];
  return Object.hasOwn(kinds, type) && kinds[type]?.urgent === true;
}

/** Every `<class>/<type>` of the catalogue (the docs' message tables are checked against it). */
export function catalogueKinds(): string[] {
  return Object.entries(MESSAGE_CATALOGUE).flatMap(([cls, kinds]) =>
    Object.keys(kinds).map((type) => `${cls}/${type}`),
  );
}
