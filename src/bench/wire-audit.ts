import mqtt, { type MqttClient } from 'mqtt';
import { readersOf } from '../comms/messages/catalogue.js';
import { SEALED_SCHEME } from '../comms/sealed-body.js';
import { parseTopic, TOPIC_ROOT } from '../comms/topics.js';
import { ErrorCode, P2PError } from '../core/errors.js';
import { type MembersList, verifyMembersList } from '../core/members.js';
import { hasValidSignature } from '../core/signing.js';

/**
 * A third party's audit of what crosses the bench's brokers: it holds nothing but what is public (the
 * operator's public key and the members list it signed), and checks every message on its own, without
 * the gateways' `MessageSecurity`: the envelope's Ed25519 signature over its RFC 8785 canonical JSON
 * by the sender's key in the list; whether its kind is confidential (`readersOf`); a confidential
 * body sealed (the scheme named, nothing but the sealed body's fields); and no name of a field that
 * carries power, energy or money anywhere in the payload's text.
 */

/**
 * Field names of the catalogue's bodies that carry power, energy or money: none may be seen in the
 * text of a confidential message (the sealed body is base64url, so none can appear in it by chance).
 */
export const PLAINTEXT_FIELD_NAMES = [
  'netW',
  'pvW',
  'loadW',
  'voltagePu',
  'kWh',
  'netKWh',
  'pvKWh',
  'curtailKWh',
  'importWh',
  'exportWh',
  'energyWh',
  'paymentTotal',
  'paid',
  'price',
  'prices',
  'pricePerKWh',
  'amounts',
  'trades',
  'lines',
  'content',
] as const;

// A key in the text, also inside a JSON string (`\"netW\":`).
const PLAINTEXT_KEY = new RegExp(`\\\\?"(${PLAINTEXT_FIELD_NAMES.join('|')})\\\\?"\\s*:`);
const SEALED_FIELDS = new Set(['enc', 'epk', 'iv', 'ct', 'to']);
const ENTRY_FIELDS = new Set(['id', 'kid', 'n', 'key']);

/** What the audit found in one message. */
export interface WireVerdict {
  /** `<class>/<type>` of its topic; undefined for a topic that is not of the wire format. */
  kind?: string;
  empty: boolean;
  /** The payload is not an envelope (not JSON, or no sender, signature or body). */
  malformed: boolean;
  confidential: boolean;
  sealed: boolean;
  /** The first field name of `PLAINTEXT_FIELD_NAMES` seen in a confidential message's text. */
  plaintextField?: string;
  signature: 'verified' | 'failed' | 'unchecked';
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** A body sealed as the wire format says: the scheme named and no field but the sealed body's own. */
function isSealed(body: unknown): boolean {
  if (!isObject(body) || body.enc !== SEALED_SCHEME) return false;
  if (!Object.keys(body).every((k) => SEALED_FIELDS.has(k))) return false;
  if (typeof body.epk !== 'string' || typeof body.iv !== 'string' || typeof body.ct !== 'string') return false;
  return (
    Array.isArray(body.to) &&
    body.to.length > 0 &&
    body.to.every((e) => isObject(e) && Object.keys(e).every((k) => ENTRY_FIELDS.has(k) && typeof e[k] === 'string'))
  );
}

/** The public signing keys of the active members of a list the operator signed. */
export function memberKeys(list: MembersList, operatorPublicKey: string): Map<string, string> {
  if (!verifyMembersList(list, operatorPublicKey))
    throw new P2PError(ErrorCode.config, 'the members list is not signed by the operator key', {
      component: 'wire-audit',
    });
  return new Map(list.members.filter((m) => m.status === 'active').map((m) => [m.id, m.publicKey]));
}

/** Audits one message as received from a broker (pure: the keys are handed in). */
export function auditWireMessage(
  topic: string,
  payload: Uint8Array | string,
  keys: ReadonlyMap<string, string>,
): WireVerdict {
  const parts = parseTopic(topic);
  const kind = parts && `${parts.cls}/${parts.type}`;
  const text = typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8');
  const verdict: WireVerdict = {
    kind,
    empty: text.length === 0,
    malformed: false,
    confidential: parts !== undefined && readersOf(parts) !== 'public',
    sealed: false,
    signature: 'unchecked',
  };
  if (verdict.empty) return verdict;
  let envelope: unknown;
  try {
    envelope = JSON.parse(text);
  } catch {
    envelope = undefined;
  }
  if (!isObject(envelope) || typeof envelope.sender !== 'string' || !('body' in envelope)) {
    verdict.malformed = true;
    // Unreadable is not authentic either.
    verdict.signature = 'failed';
  } else {
    const key = keys.get(envelope.sender);
    verdict.signature = key !== undefined && hasValidSignature(envelope, key) ? 'verified' : 'failed';
    verdict.sealed = isSealed(envelope.body);
  }
  if (verdict.confidential) verdict.plaintextField = PLAINTEXT_KEY.exec(text)?.[1];
  return verdict;
}

export interface KindTally {
  messages: number;
  confidential: number;
  sealed: number;
  plaintextFindings: number;
  /** A topic where a field was seen in the clear, and which field. */
  plaintextExample?: { topic: string; field: string };
  signaturesVerified: number;
  signatureFailures: number;
}

/** The bench report's `privacy` section. */
export interface PrivacyReport extends Omit<KindTally, 'plaintextExample'> {
  /** Which brokers the observer watched (their URLs). */
  brokers: string[];
  /** Empty payloads (a cleared retained presence), not audited. */
  emptyPayloads: number;
  /** Payloads that are not an envelope (counted as signature failures too). */
  malformed: number;
  byKind: Record<string, KindTally>;
}

const emptyTally = (): KindTally => ({
  messages: 0,
  confidential: 0,
  sealed: 0,
  plaintextFindings: 0,
  signaturesVerified: 0,
  signatureFailures: 0,
});

/** The audit's counts, per `<class>/<type>` as the topics name them (so a new kind shows up on its own). */
export class WireTally {
  private readonly byKind = new Map<string, KindTally>();
  private emptyPayloads = 0;
  private malformed = 0;

  add(topic: string, v: WireVerdict): void {
    if (v.empty) {
      this.emptyPayloads++;
      return;
    }
    const kind = v.kind ?? 'not the wire format';
    const t = this.byKind.get(kind) ?? emptyTally();
    this.byKind.set(kind, t);
    t.messages++;
    if (v.malformed) this.malformed++;
    if (v.confidential) t.confidential++;
    if (v.confidential && v.sealed) t.sealed++;
    if (v.plaintextField !== undefined) {
      t.plaintextFindings++;
      t.plaintextExample ??= { topic, field: v.plaintextField };
    }
    if (v.signature === 'verified') t.signaturesVerified++;
    if (v.signature === 'failed') t.signatureFailures++;
  }

  report(brokers: string[] = []): PrivacyReport {
    const total = emptyTally();
    const byKind: Record<string, KindTally> = {};
    for (const [kind, t] of [...this.byKind].sort(([a], [b]) => a.localeCompare(b))) {
      byKind[kind] = { ...t };
      total.messages += t.messages;
      total.confidential += t.confidential;
      total.sealed += t.sealed;
      total.plaintextFindings += t.plaintextFindings;
      total.signaturesVerified += t.signaturesVerified;
      total.signatureFailures += t.signatureFailures;
    }
    return { ...total, brokers, emptyPayloads: this.emptyPayloads, malformed: this.malformed, byKind };
  }
}

/**
 * Messages seen lately, so that one relayed by a bridge to several brokers is audited once: by its
 * signature (a resend of the same envelope is the same message), in two generations of `windowMs`.
 */
class RecentlySeen {
  private current = new Set<string>();
  private previous = new Set<string>();
  private rotatedAt: number;

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number,
  ) {
    this.rotatedAt = now();
  }

  /** True the first time `id` is seen within the window. */
  first(id: string): boolean {
    if (this.now() - this.rotatedAt > this.windowMs) {
      this.previous = this.current;
      this.current = new Set();
      this.rotatedAt = this.now();
    }
    if (this.current.has(id) || this.previous.has(id)) return false;
    this.current.add(id);
    return true;
  }
}

function messageId(topic: string, payload: Buffer): string {
  if (payload.length === 0) return `empty ${topic}`;
  // The signature identifies an envelope; anything else by its text.
  const sig = /"sig":"([A-Za-z0-9_-]{86})"/.exec(payload.toString('utf8'))?.[1];
  return sig ?? `${topic} ${payload.toString('base64')}`;
}

/**
 * Subscribes with plain MQTT to every message of the wire format on each of `brokerUrls` (the
 * upstream broker and every cell's: a cell's gossip stays on its own broker) and audits each message
 * once. It only listens: it publishes nothing and takes no part in the gateways' sessions.
 */
export class WireObserver {
  private readonly tally = new WireTally();
  private readonly seen = new RecentlySeen(120_000, Date.now);
  private readonly clients: MqttClient[] = [];

  private constructor(
    private readonly brokerUrls: string[],
    private readonly keys: ReadonlyMap<string, string>,
  ) {}

  static async start(brokerUrls: string[], members: MembersList, operatorPublicKey: string): Promise<WireObserver> {
    const observer = new WireObserver(brokerUrls, memberKeys(members, operatorPublicKey));
    await Promise.all(brokerUrls.map((url) => observer.watch(url)));
    return observer;
  }

  private async watch(url: string): Promise<void> {
    const client = mqtt.connect(url, {
      clientId: `wire-audit-${process.pid}-${this.clients.length}-${Math.random().toString(36).slice(2, 8)}`,
      clean: true,
      reconnectPeriod: 500,
      connectTimeout: 10_000,
    });
    this.clients.push(client);
    client.on('error', () => {});
    client.on('message', (topic, payload) => {
      if (!this.seen.first(messageId(topic, payload))) return;
      this.tally.add(topic, auditWireMessage(topic, payload, this.keys));
    });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      setTimeout(() => reject(new Error(`the wire audit could not reach ${url}`)), 10_000).unref();
    });
    await client.subscribeAsync(`${TOPIC_ROOT}/#`, { qos: 1 });
  }

  report(): PrivacyReport {
    return this.tally.report(this.brokerUrls);
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.endAsync(true)));
  }
}
