import { z } from 'zod';
import { LINK_NAMES, type LinkName, routeProblems } from '../comms/link-routes.js';
import { GATEWAY_ASCENT } from '../control/voltage/dual-agent.js';
import { ErrorCode } from '../core/errors.js';
import { loadDataFile, parseWith } from '../core/validate.js';
import { deviceConfigSchema, FIELD_DRIVERS } from '../drivers/registry.js';
import { SettlementSchedule } from '../platform/settlement-content.js';
import { simulatedDriver } from '../sim/simulated-device.js';

const AscentMethodSchema = z.enum(['accelerated', 'plain']);

/**
 * The configuration of one gateway: one zod schema, defaults written here. The commented examples in
 * `config/*.example.yaml` follow this file field by field.
 */

const id = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/,
    'expected 1-64 letters, digits, "-" or "_", starting with a letter or digit',
  );

export const GatewayKind = z.enum(['inverter', 'transformer', 'aggregator', 'dso', 'platform']);
export type GatewayKind = z.infer<typeof GatewayKind>;

export const RoleName = z.enum([
  'prosumer',
  'voltage-agent',
  'mg-trader',
  'coupling-agent',
  'dr-aggregator',
  'dso',
  'platform',
]);
export type RoleName = z.infer<typeof RoleName>;

/** The roles each kind of gateway runs when the config does not list them. */
export const DEFAULT_ROLES: Record<GatewayKind, RoleName[]> = {
  inverter: ['prosumer', 'voltage-agent'],
  transformer: ['mg-trader', 'coupling-agent'],
  aggregator: ['dr-aggregator'],
  dso: ['dso'],
  platform: ['platform'],
};

const SchedulerConfig = z
  .object({
    /** Device cycle: read devices into the process image, apply local (primary) control. */
    primaryMs: z.number().int().min(10).default(1000),
    /** Gossip voltage control. */
    secondaryMs: z.number().int().min(100).default(5000),
    /** Trading, demand response, settlement. */
    tertiaryMs: z.number().int().min(1000).default(900_000),
  })
  .strict()
  .refine((s) => s.primaryMs <= s.secondaryMs && s.secondaryMs <= s.tertiaryMs, {
    message: 'expected primaryMs <= secondaryMs <= tertiaryMs',
  });

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

const StatusConfig = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    /** 0 turns the status page off. */
    port: z.number().int().min(0).max(65535).default(8080),
    /** Required when `host` is not a loopback address: clients send `Authorization: Bearer <token>`. */
    token: z.string().min(16, 'expected at least 16 characters').optional(),
  })
  .strict()
  .refine((s) => s.port === 0 || LOOPBACK.test(s.host) || s.token !== undefined, {
    message: 'a status page exposed beyond loopback needs a token (status.token)',
    path: ['token'],
  });

const MqttConfig = z
  .object({
    url: z.string().regex(/^(mqtts?|wss?|tcp):\/\//, 'expected an mqtt://, mqtts://, tcp://, ws:// or wss:// URL'),
    keepaliveS: z.number().int().min(1).max(600).default(15),
    username: z.string().optional(),
    password: z.string().optional(),
    /** PEM files for TLS client authentication (the broker maps the certificate CN to the user). */
    caFile: z.string().optional(),
    certFile: z.string().optional(),
    keyFile: z.string().optional(),
    /** Reconnect back-off after a lost link: first delay and ceiling (jittered, doubling). */
    reconnectInitialMs: z.number().int().min(50).default(500),
    reconnectMaxMs: z.number().int().min(100).default(30_000),
  })
  .strict();

/**
 * End-to-end message signing (docs/interfaces.md, "Messages on the wire"). A gateway with comms needs its
 * key file (`p2p-edge platform keygen`), the operator-signed members list and the operator's public
 * key; `unsigned: true` turns signing off, for a lab bench only.
 */
const SecurityConfig = z
  .object({
    keyFile: z.string().min(1).optional(),
    membersFile: z.string().min(1).optional(),
    operatorPublicKey: z
      .string()
      .regex(/^[A-Za-z0-9_-]{43}$/, 'expected a 32-byte key in base64url without padding')
      .optional(),
    unsigned: z.boolean().default(false),
    /** Per-sender, per-stream window of sequence numbers kept for replay and duplicate checks. */
    replayWindow: z.number().int().min(16).max(65_536).default(512),
  })
  .strict();

/** The outbox of the classes that must arrive (market, demand response, meter readings). */
const ReliabilityConfig = z
  .object({
    outboxMax: z.number().int().min(10).max(100_000).default(2000),
    retryInitialMs: z.number().int().min(50).default(1000),
    retryMaxMs: z.number().int().min(100).default(8000),
    /**
     * The platform that settles this gateway's meter readings and trades: each reading waits for its
     * acknowledgement even before it has been heard from (a house starting before it); MG traders and
     * coupling agents report each cleared interval's trades to it.
     */
    platform: id.optional(),
  })
  .strict();

/** D2D sidelink: UDP over IPv6 link-local multicast on the sidelink module's interface. */
const D2DConfig = z
  .object({
    interface: z.string().min(1),
    group: z
      .string()
      .regex(/^ff02:[0-9a-f:]+$/i, 'expected an IPv6 link-local multicast group (ff02::...)')
      .default('ff02::7032'),
    /** Base UDP port; priority p (0 urgent … 7 background) is sent to port + p. */
    port: z.number().int().min(1024).max(65_527).default(47_000),
    mtu: z.number().int().min(1280).max(65_535).default(1280),
    copies: z.number().int().min(1).max(5).default(2),
    copyGapMs: z.number().int().min(0).max(100).default(2),
    heartbeatMs: z.number().int().min(100).max(60_000).default(1000),
  })
  .strict();

/** The LTE modem of the gateway's uplink (AT port), supervised by the modem manager. */
const LteConfig = z
  .object({
    port: z.string().min(1),
    baudRate: z.number().int().positive().default(115_200),
    apn: z.string().min(1).optional(),
    pollMs: z.number().int().min(1000).default(10_000),
    /** Polls in a row with the data link down before the next recovery step. */
    failuresBeforeRecovery: z.number().int().min(1).max(100).default(3),
    /** Cuts and restores the modem's power (GPIO, USB hub): the last recovery step, e.g. ["/usr/local/bin/modem-power-cycle"]. */
    powerCycleCommand: z.array(z.string().min(1)).min(1).optional(),
  })
  .strict();

/**
 * An MQTT broker hosted in the gateway's own process (aedes): for a lab cell, or a first gateway tried
 * on its own, without Mosquitto. It has no TLS and no ACLs; a field cell runs Mosquitto (deploy/mosquitto).
 */
const HostedBrokerConfig = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(1).max(65_535),
  })
  .strict();

/**
 * D2D relay (transport `hybrid` with both links): a gateway whose broker link is up relays, over the
 * sidelink, for the members of its cell whose broker link is down, at most `ratePerS` messages a
 * second each way per gateway with `queueMax` waiting; a gateway cut off asks for it whatever this says.
 */
const RelayConfig = z
  .object({
    offer: z.boolean().default(true),
    ratePerS: z.number().int().min(1).max(10_000).default(50),
    queueMax: z.number().int().min(1).max(100_000).default(200),
  })
  .strict();

const CommsConfig = z
  .object({
    lte: LteConfig.optional(),
    broker: HostedBrokerConfig.optional(),
    /** `hybrid`: the mqtt and d2d links side by side, each message class over the links `routes` names. */
    transport: z.enum(['mqtt', 'd2d', 'hybrid', 'none']).default('none'),
    mqtt: MqttConfig.optional(),
    d2d: D2DConfig.optional(),
    /**
     * With `transport: hybrid`: message class → link (`mqtt`, `d2d`) or list of links (sent over each,
     * taken once); `default` for the classes not named (mqtt when configured). Presence goes on every link.
     */
    routes: z.record(z.string(), z.union([z.string(), z.array(z.string())])).optional(),
    relay: RelayConfig.default({ offer: true, ratePerS: 50, queueMax: 200 }),
    security: SecurityConfig.default({ unsigned: false, replayWindow: 512 }),
    reliability: ReliabilityConfig.default({ outboxMax: 2000, retryInitialMs: 1000, retryMaxMs: 8000 }),
  })
  .strict()
  .refine((c) => c.transport !== 'mqtt' || c.mqtt !== undefined, {
    message: 'transport "mqtt" needs an mqtt section with a url',
    path: ['mqtt'],
  })
  .refine((c) => c.transport !== 'd2d' || c.d2d !== undefined, {
    message: 'transport "d2d" needs a d2d section with the interface',
    path: ['d2d'],
  })
  .superRefine((c, ctx) => {
    if (c.routes !== undefined && c.transport !== 'hybrid') {
      ctx.addIssue({ code: 'custom', path: ['routes'], message: 'routes are read only with transport "hybrid"' });
      return;
    }
    if (c.transport !== 'hybrid') return;
    const configured = configuredLinks(c);
    if (configured.length === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['transport'],
        message: 'transport "hybrid" needs its links: an mqtt section, a d2d section or both',
      });
    for (const problem of routeProblems(c.routes ?? {}, configured))
      ctx.addIssue({ code: 'custom', path: problem.field.split('.').slice(1), message: problem.message });
  });

/** The links a comms section configures, in the order a hybrid transport starts them. */
export function configuredLinks(c: { mqtt?: unknown; d2d?: unknown }): LinkName[] {
  return LINK_NAMES.filter((name) => c[name] !== undefined);
}

/** An offer in the market's quadratic form: energy per slot at a·v² + b·v. */
const QuadraticOffer = z.object({ a: z.number().positive(), b: z.number(), maxKWh: z.number().nonnegative() }).strict();

/** The MG trader's market (transformer gateways): its own resources and its links to neighbouring MG traders. */
const MarketConfig = z
  .object({
    algorithm: z.enum(['accelerated', 'subgradient']).default('accelerated'),
    /** Slots in each market's horizon (one slot per tertiary interval). */
    horizonSlots: z.number().int().min(1).max(96).default(4),
    /** Length of a slot in (simulated) minutes; the tertiary period when absent. */
    slotMinutes: z.number().positive().optional(),
    /** Longest wait for the neighbours' prices of a round before stepping with the last ones known. */
    roundMs: z.number().int().min(5).max(60_000).default(200),
    maxRounds: z.number().int().min(1).max(100_000).default(500),
    /** Scales the default stopping tolerances. */
    tolerance: z.number().positive().default(1),
    generators: z.array(QuadraticOffer).default([]),
    flexibleLoads: z.array(QuadraticOffer).default([]),
    gridImport: QuadraticOffer.optional(),
    gridExport: QuadraticOffer.optional(),
    neighbours: z
      .array(
        z
          .object({
            peer: id,
            sendCapacityKWh: z.number().nonnegative(),
            receiveCapacityKWh: z.number().nonnegative(),
            a: z.number().positive(),
            b: z.number().nonnegative().default(0),
            efficiency: z.number().gt(0).max(1).default(1),
          })
          .strict(),
      )
      .default([]),
  })
  .strict();
export type MarketConfig = z.infer<typeof MarketConfig>;

/**
 * The level above the cell (coupling agents, transformer gateways): the cell's coupling agent trades
 * what the cell's market left over with the coupling agents of neighbouring cells (`neighbours`,
 * over the MV network) and the upstream connection (`gridImport` / `gridExport`: the DSO or the
 * wholesale market), by the same algorithm.
 */
const UpperMarketConfig = MarketConfig.pick({
  algorithm: true,
  roundMs: true,
  maxRounds: true,
  tolerance: true,
  gridImport: true,
  gridExport: true,
  neighbours: true,
});
export type UpperMarketConfig = z.infer<typeof UpperMarketConfig>;

/**
 * Every driver a device config may name: the drivers of real devices and the simulated one. Each
 * brings its config fields and its default `usage` (`src/drivers/registry.ts`).
 */
export const DEVICE_DRIVERS = [...FIELD_DRIVERS, simulatedDriver] as const;

export const DeviceConfig = deviceConfigSchema(DEVICE_DRIVERS);
export type DeviceConfig = z.infer<typeof DeviceConfig>;

export const GatewayConfig = z
  .object({
    gateway: z
      .object({
        id,
        kind: GatewayKind,
        /** The microgrid / LV cell this gateway belongs to (topic level `<cell>`). */
        cell: id,
        /** Feeder bus the gateway's point of connection is at (voltage agent, coupling agent). */
        bus: z.string().min(1).optional(),
        /** Rating of the transformer a transformer gateway watches. */
        transformerKVA: z.number().positive().optional(),
      })
      .strict(),
    /** Roles to run; the kind's defaults when absent. */
    roles: z.array(RoleName).min(1).optional(),
    scheduler: SchedulerConfig.default({ primaryMs: 1000, secondaryMs: 5000, tertiaryMs: 900_000 }),
    /** Values older than this many primary cycles are invalid in the process image. */
    staleAfterCycles: z.number().int().min(1).default(3),
    voltageLimitsPu: z
      .object({ min: z.number().min(0.8).max(1), max: z.number().min(1).max(1.2) })
      .strict()
      .default({ min: 0.95, max: 1.05 }),
    status: StatusConfig.default({ host: '127.0.0.1', port: 8080 }),
    comms: CommsConfig.prefault({ transport: 'none' }),
    devices: z.array(DeviceConfig).default([]),
    /**
     * Demand response a prosumer offers its MG trader: loads it can curtail, up to maxKW, at a·e² + b·e
     * for e kWh curtailed in a slot.
     */
    flexibility: z
      .array(
        z.object({ a: z.number().positive(), b: z.number().nonnegative(), maxKW: z.number().nonnegative() }).strict(),
      )
      .default([]),
    /** A DR aggregator's contracts: its providers' curtailment offers and the buyer it sells to. */
    dr: z
      .object({
        buyer: z
          .object({
            buyer: id,
            price: z.number().nonnegative(),
            a: z.number().positive(),
            maxKWh: z.number().nonnegative(),
          })
          .strict(),
        providers: z
          .array(
            z
              .object({
                provider: id,
                a: z.number().positive(),
                b: z.number().nonnegative(),
                maxKWh: z.number().nonnegative(),
              })
              .strict(),
          )
          .min(1),
      })
      .strict()
      .optional(),
    /** The market of an MG trader (transformer gateway); without it the trader only gathers readings. */
    market: MarketConfig.optional(),
    /** The trading platform role: where it keeps its database and which cells' metering intervals it stores. */
    platform: z
      .object({
        db: z.string().min(1),
        cells: z.array(id).min(1),
        /**
         * The houses' metering interval (`meteringIntervalMs` of their configs), the readings' step; a
         * bench running faster than real time may take a fraction of a second.
         */
        meteringIntervalS: z.number().min(0.001).max(86_400).default(900),
        /** Hours the metering intervals received are kept after they are written to the readings (bounds the database). */
        sampleRetentionH: z
          .number()
          .positive()
          .max(24 * 366)
          .default(24),
        /**
         * Days the metered readings are kept (a household's energy per interval: personal data). The
         * default covers a billing year and its disputes; settlements in the ledger stay.
         */
        readingRetentionDays: z
          .number()
          .positive()
          .max(10 * 366)
          .default(400),
        /** SQLite's page cache, MB: bounds the platform's memory as the database grows. */
        pageCacheMB: z.number().min(0.5).max(1024).default(2),
      })
      .strict()
      .optional(),
    /**
     * Settlement at run time (docs/platform.md, "Co-signed settlement"): the published schedule each
     * party checks the platform's drafts against, and on the platform, when it drafts them. Without
     * it a gateway answers no draft and the platform settles nothing by itself.
     */
    settlement: z
      .object({
        schedule: SettlementSchedule,
        /** The trading interval, ms (the traders' and prosumers' `scheduler.tertiaryMs`; the platform's may differ). */
        intervalMs: z.number().int().min(1000).optional(),
        /** Platform: after an interval's metering interval has passed, wait this long for late readings before drafting. */
        graceS: z.number().min(0).max(86_400).default(60),
        /** Platform: a unit waits at most this long for the readings of a member that traded, then is drafted without. */
        maxReadingWaitS: z.number().min(0).default(3600),
        /** What a gateway signed is kept this many days (`stateDir/<id>/settlement-signed.jsonl`). */
        keepSignedDays: z.number().int().min(1).max(3660).default(400),
      })
      .strict()
      .optional(),
    /** The coupling agent's market one level up (transformer gateways); without it the cell's imbalance stays with the grid connection. */
    upperMarket: UpperMarketConfig.optional(),
    /**
     * How the voltage agent acts on the gateway's inverters: `dual` is the distributed control (dual
     * decomposition, multipliers agreed by push-sum gossip with the cell's other voltage agents), with
     * the local curves as fallback while it hears no peer; `volt-var` applies the IEEE 1547-2018
     * Category B volt-var and volt-watt curves locally (primary level, no comms needed); `monitor` only
     * watches.
     */
    voltageControl: z
      .object({
        method: z.enum(['dual', 'volt-var', 'monitor']).default('volt-var'),
        /** The cell's feeder in the `powerflow` format (commissioning data for the sensitivities); `dual` needs it. */
        feederFile: z.string().min(1).optional(),
        /** The agents aim this far inside the voltage limits (pu). */
        marginPu: z.number().min(0).max(0.02).default(0.0003),
        /**
         * How `dual` moves its multipliers: one method for both, or one per limit. Default: the
         * overvoltage one `plain`, the undervoltage one `accelerated` (docs/control.md says why).
         */
        ascent: z
          .union([
            AscentMethodSchema.transform((a) => ({ overvoltage: a, undervoltage: a })),
            z
              .object({
                overvoltage: AscentMethodSchema.default(GATEWAY_ASCENT.overvoltage),
                undervoltage: AscentMethodSchema.default(GATEWAY_ASCENT.undervoltage),
              })
              .strict(),
          ])
          .default(GATEWAY_ASCENT),
        /** Weight of reactive power against curtailment in the cost (kVAr² against kW²). */
        qWeight: z.number().positive().default(0.5),
        /** Period of the push-sum gossip; several rounds per secondary step. */
        gossipMs: z.number().int().min(10).max(60_000).default(200),
        /**
         * Push-sum starts afresh this often, aligned to the clock, so that mass lost with a peer that
         * died heals (default 100 gossip rounds). Gateways of a cell need clocks within a fraction of it.
         */
        gossipSlotMs: z.number().int().min(100).max(3_600_000).optional(),
        /** Without a word from any peer for this long, the agent falls back to the local curves. */
        fallbackAfterMs: z.number().int().min(100).default(10_000),
      })
      .strict()
      .default({
        method: 'volt-var',
        marginPu: 0.0003,
        ascent: GATEWAY_ASCENT,
        qWeight: 0.5,
        gossipMs: 200,
        fallbackAfterMs: 10_000,
      }),
    /** Where state that must survive a restart is kept. */
    stateDir: z.string().min(1).default('./var'),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .strict()
      .default({ level: 'info' }),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const seen = new Set<string>();
    cfg.devices.forEach((d, i) => {
      if (seen.has(d.id))
        ctx.addIssue({ code: 'custom', path: ['devices', i, 'id'], message: `duplicate device id "${d.id}"` });
      seen.add(d.id);
    });
    if (rolesOf(cfg as GatewayConfig).includes('platform') && !cfg.platform)
      ctx.addIssue({
        code: 'custom',
        path: ['platform'],
        message: 'the platform role needs a platform section (db, cells)',
      });
    if (cfg.voltageControl.method === 'dual') {
      if (!cfg.voltageControl.feederFile)
        ctx.addIssue({
          code: 'custom',
          path: ['voltageControl', 'feederFile'],
          message: 'method "dual" needs the cell\'s feeder (feederFile) for its sensitivities',
        });
      if (!cfg.gateway.bus)
        ctx.addIssue({
          code: 'custom',
          path: ['gateway', 'bus'],
          message: 'method "dual" needs the feeder bus the gateway is connected to',
        });
    }
  });

export type GatewayConfig = z.infer<typeof GatewayConfig>;

/**
 * The interval a gateway's meter energy is measured and sent to the platform over (`meter/energy`),
 * and its settlements are checked at: the settlement interval where one is set, else the market's
 * (`scheduler.tertiaryMs`).
 */
export function meteringIntervalMs(config: GatewayConfig): number {
  return config.settlement?.intervalMs ?? config.scheduler.tertiaryMs;
}

export function rolesOf(config: GatewayConfig): RoleName[] {
  return config.roles ?? DEFAULT_ROLES[config.gateway.kind];
}

/** Loads and validates a gateway config file (YAML or JSON); errors name the file and the field. */
export function loadGatewayConfig(file: string): GatewayConfig {
  return loadDataFile(file, GatewayConfig, ErrorCode.config);
}

/** Validates an in-memory config (the demo builds its gateways' configs in code). */
export function gatewayConfig(input: z.input<typeof GatewayConfig>, origin = '(built-in config)'): GatewayConfig {
  return parseWith(GatewayConfig, input, { file: origin, code: ErrorCode.config });
}
