import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { errorMessage, exitCodeFor } from './core/errors.js';
import { rootLogger } from './core/log.js';
import { FIRMWARE_VERSION } from './core/version.js';
import type { ControlOptions } from './drivers/device-commands.js';

/**
 * The `p2p-edge` command line (docs/interfaces.md). Each command loads its implementation lazily, so that
 * `--help` and commands that need no hardware start fast and never load a native backend.
 * Exit codes: 0 ok, 2 bad input or config, 3 not available on this machine or build, 1 anything else.
 */

function number(name: string, check: (n: number) => boolean = Number.isFinite) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !check(n)) throw new InvalidArgumentError(`${name} must be a number, got "${value}"`);
    return n;
  };
}
const integer = (name: string) => number(name, (n) => Number.isInteger(n));
const nonNegative = (name: string) => number(name, (n) => Number.isFinite(n) && n >= 0);

export function buildProgram(): Command {
  const program = new Command('p2p-edge')
    .description('Edge-gateway firmware for a peer-to-peer local smart grid: trading, voltage control, device drivers.')
    .version(FIRMWARE_VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      '\nThe command-line, JSON, bench report, wire and metrics contract: docs/interfaces.md.\n' +
        'JSON Schemas of the config and of the trade, powerflow and voltage inputs: schemas/.',
    )
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('run')
    .description(
      'run one gateway from its config file until SIGINT/SIGTERM (several files: one process hosts them all)',
    )
    .requiredOption(
      '--config <file>',
      'gateway config (YAML or JSON), see config/*.example.yaml; repeat it to host several gateways in one process',
      (file: string, files: string[] | undefined) => [...(files ?? []), file],
    )
    .option('--check', 'only validate the config and exit (0 valid, 2 not); deploy/install.sh runs it before an update')
    .action(async (o: { config: string[]; check?: boolean }) => {
      if (o.check) {
        const { loadGatewayConfig } = await import('./agent/config.js');
        for (const file of o.config) {
          loadGatewayConfig(file);
          process.stdout.write(`${file}: valid\n`);
        }
        return;
      }
      const { runGateways } = await import('./agent/run-command.js');
      await runGateways(o.config);
    });

  program
    .command('start')
    .description('run the demo: two simulated cells with their gateways, an embedded MQTT broker and the status page')
    .option('--host <addr>', 'status page address', '127.0.0.1')
    .option('--port <n>', 'status page port (0 = off)', integer('--port'), 8080)
    .option(
      '--speedup <x>',
      'how many times faster than real time the simulated day runs',
      number('--speedup', (n) => n > 0),
      120,
    )
    .option('--houses <n>', 'inverter gateways on each of the two cells', integer('--houses'), 4)
    .option(
      '--start-hour <h>',
      'simulated hour of day at start',
      number('--start-hour', (n) => n >= 0 && n < 24),
      10,
    )
    .action(async (o: { host: string; port: number; speedup: number; houses: number; startHour: number }) => {
      const { runDemo } = await import('./agent/demo.js');
      await runDemo(o);
    });

  program
    .command('trade')
    .description('run the distributed trading algorithm (MG traders exchanging messages) on an instance')
    .requiredOption('--input <file>', 'trading instance (JSON, see docs/interfaces.md)')
    .option('--json', 'print the result as one JSON document')
    .option('--algorithm <name>', 'accelerated (default: fast dual gradient) or subgradient (plain Algorithm 1)')
    .option('--tolerance <x>', 'scales the default stopping tolerances', nonNegative('--tolerance'))
    .option('--max-iterations <n>', 'stop after this many rounds', integer('--max-iterations'))
    .action(
      async (o: { input: string; json?: boolean; algorithm?: string; tolerance?: number; maxIterations?: number }) => {
        const { tradeCommand } = await import('./trading/trade-command.js');
        await tradeCommand(o);
      },
    );

  program
    .command('powerflow')
    .description('radial power flow of a feeder: balanced, or three-phase unbalanced ("phases": 3)')
    .requiredOption('--feeder <file>', 'feeder (JSON, see docs/interfaces.md and docs/lv-feeder.md)')
    .option('--json', 'print the result as one JSON document')
    .option(
      '--minute <m>',
      'three-phase feeder with load profiles: solve at this minute of the day',
      integer('--minute'),
    )
    .option('--day', 'three-phase feeder with load profiles: every profile step of the day, summarised')
    .action(async (o: { feeder: string; json?: boolean; minute?: number; day?: boolean }) => {
      const { powerflowCommand } = await import('./grid/powerflow-command.js');
      await powerflowCommand(o);
    });

  program
    .command('voltage')
    .description('distributed voltage control closed in a loop with the power flow')
    .requiredOption('--input <file>', 'feeder, limits and inverters (JSON, see docs/interfaces.md)')
    .option('--json', 'print the result as one JSON document')
    .addOption(
      new Option(
        '--method <name>',
        'control method (dual: accelerated dual ascent; dual-plain: without acceleration, to compare)',
      )
        .choices(['dual', 'dual-plain', 'gradient', 'volt-var'])
        .default('dual'),
    )
    .option('--rounds <n>', 'cap on gossip rounds', integer('--rounds'))
    .option('--seed <s>', 'random seed', integer('--seed'))
    .action(async (o: { input: string; json?: boolean; method?: string; rounds?: number; seed?: number }) => {
      const { voltageCommand } = await import('./control/voltage/voltage-command.js');
      await voltageCommand(o);
    });

  program
    .command('scan')
    .description('find SunSpec inverters and known meters on a Modbus link and read each once')
    .requiredOption('--modbus <url>', 'tcp://host:port or rtu:///dev/ttyUSB0?baud=9600&parity=none')
    .option(
      '--unit <n>',
      'unit id to try (repeatable; default 1, 2, 3, 126)',
      (v, acc: number[]) => [...acc, integer('--unit')(v)],
      [],
    )
    .option('--json', 'print the result as one JSON document')
    .option('--config', "print what was found as a gateway config's devices: list (YAML) instead")
    .action(async (o: { modbus: string; unit: number[]; config?: boolean }) => {
      const { scanCommand } = await import('./drivers/device-commands.js');
      await scanCommand(o);
    });

  program
    .command('control')
    .description('write an inverter power limit / reactive setpoint through SunSpec and read it back')
    .requiredOption('--modbus <url>', 'tcp://host:port or rtu:///dev/ttyUSB0?baud=9600&parity=none')
    .requiredOption('--unit <n>', 'unit id', integer('--unit'))
    .option('--limit-pct <p>', 'active power limit, % of WMax', number('--limit-pct'))
    .option('--var-pct <q>', 'reactive setpoint, % of WMax (positive = injecting)', number('--var-pct'))
    .option('--revert-s <s>', 'revert timer in seconds (0 = none)', nonNegative('--revert-s'))
    .option('--volt-var <points>', 'volt-var curve V:Q,... (V % of VRef, Q % of WMax) into model 705, else 126')
    .option('--volt-watt <points>', 'volt-watt curve V:P,... (V % of VRef, P % of WMax) into model 132')
    .option('--json', 'print the result as one JSON document')
    .action(async (o: ControlOptions) => {
      const { controlCommand } = await import('./drivers/device-commands.js');
      await controlCommand(o);
    });

  program
    .command('simulate')
    .description('serve one simulated device as a Modbus server until SIGINT/SIGTERM')
    .addOption(
      new Option('--device <kind>', 'device to simulate')
        .choices(['sunspec-inverter', 'sunspec-meter', 'sdm630'])
        .makeOptionMandatory(),
    )
    .requiredOption('--modbus <url>', 'tcp://host:port or rtu:///dev/pts/3?baud=9600&parity=none')
    .option('--unit <n>', 'unit id', integer('--unit'))
    .option('--rated-w <w>', 'inverter rating (W)', nonNegative('--rated-w'))
    .option('--available-w <w>', 'available PV power (W); for a meter the household load', nonNegative('--available-w'))
    .option('--float', 'SunSpec float models (inverter 111/113, meter 211/213) instead of the integer ones')
    .option('--curves', 'the inverter also serves volt-var (126), volt-watt (132) and IEEE 1547 volt-var (705)')
    .action(
      async (o: {
        device: 'sunspec-inverter' | 'sunspec-meter' | 'sdm630';
        modbus: string;
        unit?: number;
        ratedW?: number;
        availableW?: number;
        float?: boolean;
        curves?: boolean;
      }) => {
        const { simulateCommand } = await import('./sim/simulate-command.js');
        await simulateCommand(o);
      },
    );

  const ledger = program.command('ledger').description("the trading platform's append-only ledger");
  ledger
    .command('verify')
    .description('re-check the hash chain and every signature')
    .requiredOption('--db <file>', 'ledger database (SQLite)')
    .option('--json', 'print the result as one JSON document')
    .action(async (o) => (await import('./platform/ledger/ledger-command.js')).ledgerVerifyCommand(o));
  ledger
    .command('export')
    .description('write every entry to stdout')
    .requiredOption('--db <file>', 'ledger database (SQLite)')
    .addOption(new Option('--format <f>', 'output format').choices(['csv', 'json']).default('json'))
    .action(async (o) => (await import('./platform/ledger/ledger-command.js')).ledgerExportCommand(o));

  const platform = program.command('platform').description('the trading platform: members, contracts, settlements');
  for (const table of ['members', 'contracts', 'settlements', 'readings', 'events', 'trades'] as const) {
    platform
      .command(table)
      .description(`the platform's ${table}`)
      .command('list')
      .description(`list every one of the platform's ${table}`)
      .requiredOption('--db <file>', 'platform database (SQLite, the same file as the ledger)')
      .option('--json', 'print JSON (the default format)')
      .addOption(new Option('--format <f>', 'output format').choices(['csv', 'json']).default('json'))
      .action(async (o) => (await import('./platform/platform-command.js')).platformListCommand(table, o));
  }

  platform
    .command('keygen')
    .description('make signing and encryption key pairs for a member or the operator (written 0600, never overwritten)')
    .requiredOption('--id <id>', 'member or operator id')
    .requiredOption('--out <file>', 'key file to create')
    .option('--rotate', 'give the existing key file a new encryption key pair (the old one kept a day as retired)')
    .action(async (o) => (await import('./platform/members-command.js')).keygenCommand(o));
  const members = platform.commands.find((c) => c.name() === 'members')!;
  members
    .command('register')
    .description('register a peer (pending until the operator admits it)')
    .requiredOption('--db <file>', 'platform database (SQLite, created if absent)')
    .requiredOption('--id <id>', 'member id (the gateway id)')
    .requiredOption('--public-key <key>', 'Ed25519 public key, raw 32 bytes base64url')
    .option('--encryption-key <key>', 'X25519 public key confidential messages are sealed to (keygen prints it)')
    .addOption(
      new Option('--role <role>', 'role')
        .choices(['prosumer', 'mg-trader', 'aggregator', 'dso', 'platform'])
        .makeOptionMandatory(),
    )
    .requiredOption('--cell <cell>', 'cell the member belongs to')
    .action(async (o) => (await import('./platform/members-command.js')).registerCommand(o));
  members
    .command('rekey')
    .description("record a member's new encryption key and issue the operator-signed members list")
    .requiredOption('--db <file>', 'platform database (SQLite)')
    .requiredOption('--id <id>', 'member id')
    .requiredOption('--encryption-key <key>', 'the new X25519 public key (keygen --rotate prints it)')
    .requiredOption('--operator-key <file>', "the operator's key file (platform keygen)")
    .option('--members-out <file>', 'also write the signed members list here (atomically)')
    .action(async (o) => (await import('./platform/members-command.js')).rekeyCommand(o));
  for (const action of ['admit', 'suspend', 'revoke'] as const) {
    members
      .command(action)
      .description(`${action} a member and issue the operator-signed members list`)
      .requiredOption('--db <file>', 'platform database (SQLite)')
      .requiredOption('--id <id>', 'member id')
      .requiredOption('--operator-key <file>', "the operator's key file (platform keygen)")
      .option('--members-out <file>', 'also write the signed members list here (atomically)')
      .action(async (o) => (await import('./platform/members-command.js')).changeMemberCommand(action, o));
  }
  platform
    .command('broker-acl')
    .description("the brokers' Mosquitto ACL from the signed members list: each gateway reads only what its roles need")
    .requiredOption('--members <file>', 'the operator-signed members list (platform members admit --members-out)')
    .requiredOption('--operator-public-key <key>', "the operator's Ed25519 public key (raw 32 bytes, base64url)")
    .option('--out <file>', 'write the ACL here (atomically) instead of printing it')
    .action(async (o) => (await import('./platform/broker-acl-command.js')).brokerAclCommand(o));

  platform.commands
    .find((c) => c.name() === 'contracts')!
    .command('add')
    .description('add a contract between two active members (JSON or YAML file; overlaps are refused)')
    .requiredOption('--db <file>', 'platform database (SQLite)')
    .requiredOption('--file <file>', 'the contract')
    .requiredOption('--operator-key <file>', "the operator's key file: the contract is recorded in the ledger")
    .action(async (o) => (await import('./platform/members-command.js')).addContractCommand(o));

  platform.commands
    .find((c) => c.name() === 'readings')!
    .command('add')
    .description('store a batch of meter readings (whole or not at all; duplicates and out-of-order ones refused)')
    .requiredOption('--db <file>', 'platform database (SQLite)')
    .requiredOption('--file <file>', '{ "readings": [{ member, meter, time, energyKWh }] }')
    .action(async (o) => (await import('./platform/operations-command.js')).readingsAddCommand(o));
  const events = platform.commands.find((c) => c.name() === 'events')!;
  events
    .command('add')
    .description('record a DR event under a dr-service contract')
    .requiredOption('--db <file>', 'platform database (SQLite)')
    .requiredOption('--file <file>', '{ "contract": N, "start": ISO, "end": ISO }')
    .action(async (o) => (await import('./platform/operations-command.js')).eventsAddCommand(o));
  events
    .command('evaluate')
    .description('measure and verify a DR event: baseline, delivered flexibility, met or not (attested in the ledger)')
    .requiredOption('--db <file>', 'platform database (SQLite)')
    .requiredOption('--id <n>', 'event id', integer('--id'))
    .requiredOption('--operator-key <file>', "the operator's key file")
    .action(async (o) => (await import('./platform/operations-command.js')).eventsEvaluateCommand(o));
  const settle = platform.command('settle').description('settle a trading interval: draft, every party signs, commit');
  settle
    .command('draft')
    .description("print the ledger body of an interval's settlement for the parties to sign")
    .requiredOption('--db <file>', 'platform database (SQLite)')
    .requiredOption('--interval <n>', 'interval number', integer('--interval'))
    .option(
      '--trades <file>',
      '{ "trades": [...] } or the output of p2p-edge trade --json (default: the trades the traders reported for the interval)',
    )
    .option('--slot <t>', 'slot of the trade output to settle', integer('--slot'))
    .requiredOption('--config <file>', 'settlement config (fees, accounts, the level above)')
    .requiredOption('--metered <file>', '{ "peer": metered net export kWh, ... }')
    .action(async (o) => (await import('./platform/operations-command.js')).settleDraftCommand(o));
  settle
    .command('commit')
    .description('append a drafted settlement signed by every party (refused if anything changed)')
    .requiredOption('--db <file>', 'platform database (SQLite)')
    .requiredOption('--body <file>', 'the draft (output of settle draft)')
    .requiredOption('--signatures <file...>', 'signature files (output of platform sign)')
    .action(async (o) => (await import('./platform/operations-command.js')).settleCommitCommand(o));
  platform
    .command('sign')
    .description("sign a drafted ledger entry with one party's key (on that party's own machine)")
    .requiredOption('--key <file>', 'key file (platform keygen)')
    .requiredOption('--body <file>', 'the draft')
    .action(async (o) => (await import('./platform/operations-command.js')).signCommand(o));

  platform
    .command('statement')
    .description('what each account is owed over a period, from the settlements in the ledger')
    .requiredOption('--db <file>', 'platform database (SQLite)')
    .option('--member <id>', 'only this account (the balance stays over all accounts)')
    .option('--from <iso>', 'first interval start included (ISO 8601)')
    .option('--to <iso>', 'interval starts before this time (ISO 8601; default: now)')
    .option('--json', 'print the statement as one JSON document')
    .action(async (o) => (await import('./platform/platform-command.js')).statementCommand(o));

  platform
    .command('serve')
    .description('the read-only platform HTTP JSON API (loopback unless a token is set)')
    .requiredOption('--db <file>', 'platform database (SQLite)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'TCP port (0: any free one)', '0')
    .option('--token <token>', 'bearer token required on every request (or P2P_EDGE_PLATFORM_TOKEN)')
    .action(async (o) => (await import('./platform/platform-command.js')).platformServeCommand(o));

  program
    .command('bench')
    .description('a whole hardware-in-the-loop bench on this machine, with a KPI report')
    .option('--scenario <name|file>', 'scenario name or file', 'default')
    .option('--duration <s>', 'seconds to run', nonNegative('--duration'))
    .option(
      '--speedup <x>',
      'simulated time speed-up',
      number('--speedup', (n) => n > 0),
    )
    .option('--broker <url>', 'use this MQTT broker instead of starting one')
    .option(
      '--loss <p>',
      'fraction of messages dropped between gateways',
      number('--loss', (n) => n >= 0 && n < 1),
    )
    .option('--seed <s>', 'random seed', integer('--seed'))
    .option('--json', 'print the KPI report as one JSON document')
    .option(
      '--status-port <n>',
      'serve the live status page of the whole bench on this loopback port',
      integer('--status-port'),
    )
    .option('--live', 'run until Ctrl-C (the day repeats), with a line of progress every 5 s; then the report')
    .addOption(
      new Option(
        '--voltage-ascent <how>',
        "how the voltage agents move their multipliers (the scenario's voltageAscent)",
      ).choices(['accelerated', 'plain']),
    )
    .option(
      '--voltage-margin <pu>',
      "how far inside the limits the voltage agents aim (the scenario's voltageMarginPu)",
      number('--voltage-margin', (n) => n >= 0 && n <= 0.02),
    )
    .action(async (o) => (await import('./bench/bench-command.js')).benchCommand(o));

  return program;
}

/** Parses argv and runs the command; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const overrideExit = (cmd: Command): void => {
    cmd.exitOverride();
    for (const sub of cmd.commands) overrideExit(sub);
  };
  overrideExit(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
    // A command that completes but reports a failed check (ledger verify) sets process.exitCode.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are not errors; every other usage error is bad input.
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help'
        ? 0
        : 2;
    }
    process.stderr.write(`p2p-edge: ${errorMessage(err)}\n`);
    const code = exitCodeFor(err);
    if (code === 1) rootLogger().error({ err }, 'command failed');
    return code;
  }
}
