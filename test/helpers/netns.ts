import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { runProcess, tempDir } from './net.js';
import { findTool, requireTool } from './system-tools.js';

export interface Netns {
  name: string;
  /** The interface inside the namespace that carries multicast (one end of a veth pair). */
  iface: string;
  run(args: string[]): string;
  /** Runs a command inside the namespace to completion; its stdout. */
  exec(
    command: string,
    args: string[],
    timeoutMs?: number,
  ): Promise<{ code: number | null; stdout: string; stderr: string }>;
  remove(): void;
}

/**
 * A network namespace with a veth pair whose end `d2d0` carries IPv6 link-local multicast (the host's
 * `lo` has no MULTICAST flag). Undefined, with the reason, where namespaces cannot be made (no root,
 * no iproute2, a container without CAP_SYS_ADMIN).
 */
export function createNetns(): Netns | string {
  const name = `p2p-${randomBytes(4).toString('hex')}`;
  const ip = (args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  try {
    ip(['netns', 'add', name]);
  } catch (err) {
    return `cannot create a network namespace: ${(err as Error).message.split('\n')[0]}`;
  }
  const inNs = (args: string[]) => ip(['netns', 'exec', name, ...args]);
  try {
    inNs(['sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
    inNs(['ip', 'link', 'set', 'lo', 'up']);
    inNs(['ip', 'link', 'add', 'd2d0', 'type', 'veth', 'peer', 'name', 'd2d1']);
    inNs(['ip', 'link', 'set', 'd2d0', 'up']);
    inNs(['ip', 'link', 'set', 'd2d1', 'up']);
  } catch (err) {
    ip(['netns', 'del', name]);
    return `cannot set up the namespace's links: ${(err as Error).message.split('\n')[0]}`;
  }
  return {
    name,
    iface: 'd2d0',
    run: inNs,
    exec: (command, args, timeoutMs = 30_000) =>
      runProcess('ip', ['netns', 'exec', name, command, ...args], { timeoutMs, label: `${command} in ${name}` }),
    remove: () => {
      try {
        ip(['netns', 'del', name]);
      } catch {
        // already gone
      }
    },
  };
}

/**
 * Two network namespaces joined by one veth link, each end named `d2d0` and carrying IPv6 link-local
 * multicast: two gateways in two "houses" within radio range of each other. Undefined, with the
 * reason, where namespaces cannot be made.
 */
export function createD2dNetnsPair(): [Netns, Netns] | string {
  const a = createNetns();
  if (typeof a === 'string') return a;
  const b = createNetns();
  if (typeof b === 'string') {
    a.remove();
    return b;
  }
  try {
    // a's veth pair is d2d0 ↔ d2d1; d2d1 moves to b as its d2d0 (b's own pair is dropped).
    b.run(['ip', 'link', 'del', 'd2d0']);
    a.run(['ip', 'link', 'set', 'd2d1', 'netns', b.name]);
    b.run(['ip', 'link', 'set', 'd2d1', 'name', 'd2d0']);
    b.run(['ip', 'link', 'set', 'd2d0', 'up']);
  } catch (err) {
    a.remove();
    b.remove();
    return `cannot join two namespaces with a veth link: ${(err as Error).message.split('\n')[0]}`;
  }
  return [a, b];
}

export interface NetnsPair {
  a: Netns;
  b: Netns;
  /** The D2D veth link: `d2d0` in each namespace. */
  d2dIface: string;
  /** The uplink veth pair (IPv4): a has `10.77.0.1`, b `10.77.0.2`. */
  uplinkA: string;
  uplinkB: string;
}

/**
 * Two namespaces joined by two veth pairs: `d2d0`↔`d2d0` for the sidelink (IPv6 link-local
 * multicast) and `up0`↔`up0` (10.77.0.1/24 ↔ 10.77.0.2/24) standing for the uplink to a broker.
 * A string with the reason where namespaces cannot be made.
 */
export function createNetnsPair(): NetnsPair | string {
  const ip = (args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  const names = [`p2p-${randomBytes(4).toString('hex')}`, `p2p-${randomBytes(4).toString('hex')}`] as const;
  try {
    for (const n of names) ip(['netns', 'add', n]);
  } catch (err) {
    for (const n of names) spare(() => ip(['netns', 'del', n]));
    return `cannot create a network namespace: ${(err as Error).message.split('\n')[0]}`;
  }
  const [na, nb] = names;
  const suffix = randomBytes(3).toString('hex');
  try {
    for (const n of names) {
      ip(['netns', 'exec', n, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
      ip(['netns', 'exec', n, 'ip', 'link', 'set', 'lo', 'up']);
    }
    for (const [link, peer] of [
      [`d2d${suffix}`, `d2e${suffix}`],
      [`upa${suffix}`, `upb${suffix}`],
    ] as const) {
      ip(['link', 'add', link, 'type', 'veth', 'peer', 'name', peer]);
      ip(['link', 'set', link, 'netns', na]);
      ip(['link', 'set', peer, 'netns', nb]);
    }
    const rename = (n: string, from: string, to: string) =>
      ip(['netns', 'exec', n, 'ip', 'link', 'set', from, 'name', to]);
    rename(na, `d2d${suffix}`, 'd2d0');
    rename(nb, `d2e${suffix}`, 'd2d0');
    rename(na, `upa${suffix}`, 'up0');
    rename(nb, `upb${suffix}`, 'up0');
    ip(['netns', 'exec', na, 'ip', 'addr', 'add', '10.77.0.1/24', 'dev', 'up0']);
    ip(['netns', 'exec', nb, 'ip', 'addr', 'add', '10.77.0.2/24', 'dev', 'up0']);
    for (const n of names) for (const l of ['d2d0', 'up0']) ip(['netns', 'exec', n, 'ip', 'link', 'set', l, 'up']);
  } catch (err) {
    for (const n of names) spare(() => ip(['netns', 'del', n]));
    return `cannot set up the namespaces' links: ${(err as Error).message.split('\n')[0]}`;
  }
  const wrap = (name: string): Netns => ({
    name,
    iface: 'd2d0',
    run: (args) => ip(['netns', 'exec', name, ...args]),
    exec: (command, args, timeoutMs = 30_000) =>
      runProcess('ip', ['netns', 'exec', name, command, ...args], { timeoutMs, label: `${command} in ${name}` }),
    remove: () => spare(() => ip(['netns', 'del', name])),
  });
  return { a: wrap(na), b: wrap(nb), d2dIface: 'd2d0', uplinkA: '10.77.0.1', uplinkB: '10.77.0.2' };
}

/**
 * Fails, with the reason, where namespaces could not be made (`made` is the string a `create…` function
 * returns then): a test that needs them does not pass by skipping. `npm test` in CI runs as root.
 */
export function requireNamespaces(made: unknown): void {
  if (typeof made === 'string')
    throw new Error(`${made}: these tests make network namespaces, which needs root (or CAP_SYS_ADMIN)`);
}

function spare(fn: () => void): void {
  try {
    fn();
  } catch {
    // already gone
  }
}

/**
 * Mosquitto (anonymous, no persistence) in namespace `a` of a pair, listening on a's end of the
 * uplink veth, once it says it listens. Fails, naming the package, where mosquitto is missing.
 */
async function startPairBroker(p: NetnsPair, dir: string): Promise<ChildProcess> {
  const mosquitto = requireTool('mosquitto');
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `listener 1883 ${p.uplinkA}\nallow_anonymous true\npersistence false\nlog_dest stderr\n`);
  const broker = spawn('ip', ['netns', 'exec', p.a.name, mosquitto, '-c', conf], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mosquitto did not start: ${log}`)), 10_000);
    broker.stderr!.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      if (/listen socket on port 1883/.test(log)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return broker;
}

/**
 * A test file's namespace pair with Mosquitto in namespace `a` (the hybrid and relay tests): the pair
 * made at once where its tools are (a string with the reason where namespaces cannot be made), the
 * broker started on the first `broker()`, and all of it removed after the file's tests.
 */
export function pairWithBroker(tmpPrefix: string): {
  pair: NetnsPair | string | undefined;
  tmp: { dir: string };
  broker(): Promise<ChildProcess>;
} {
  const pair = ['ip', 'sysctl', 'mosquitto'].every((t) => findTool(t) !== undefined) ? createNetnsPair() : undefined;
  const tmp = tempDir(tmpPrefix);
  let started: ChildProcess | undefined;
  afterAll(async () => {
    if (started && started.exitCode === null) {
      started.kill('SIGTERM');
      await new Promise((r) => started!.once('exit', r));
    }
    if (typeof pair === 'object') {
      pair.a.remove();
      pair.b.remove();
    }
    tmp.remove();
  });
  return {
    pair,
    tmp,
    broker: async () => {
      started ??= await startPairBroker(pair as NetnsPair, tmp.dir);
      return started;
    },
  };
}
