import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BenchBroker, describeBrokers } from '../../src/bench/broker.js';
import { runProcess, tempDir } from '../helpers/net.js';
import { findTool, packageOf, SYSTEM_PACKAGES } from '../helpers/system-tools.js';

// scripts/system-packages.mjs, which `npm test` runs first (pretest) and .ci/run before `npm ci`:
// its list against what the tests and the program start, checked with dpkg's own database; and what
// it does for a user who is not root.
const REPO = join(import.meta.dirname, '..', '..');
const SCRIPT = join(REPO, 'scripts', 'system-packages.mjs');
const tmp = tempDir('p2p-system-packages-');
afterAll(() => tmp.remove());

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}
const SOURCES = [...sourceFiles(join(REPO, 'src')), ...sourceFiles(join(REPO, 'test'))]
  .filter((f) => !f.endsWith('system-packages.test.ts'))
  .map((f) => ({ file: relative(REPO, f), text: readFileSync(f, 'utf8') }));

/** Every first argument matched by one of `patterns` across src/ and test/, with the files it is in. */
function scan(patterns: RegExp[]): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const { file, text } of SOURCES)
    for (const pattern of patterns)
      for (const m of text.matchAll(pattern)) found.set(m[1]!, [...(found.get(m[1]!) ?? []), file]);
  return found;
}
/** Tools the tests declare: `requireTool('x')`. */
const REQUIRED = scan([/\brequireTool\(\s*'([^']+)'/g]);
/** Commands started by name: spawned directly, or run inside a network namespace. */
const SPAWNED = scan([
  /\b(?:spawn|spawnSync|spawnOwned|execFile|execFileSync|execSync|runProcess)\(\s*'([^'\s]+)'/g,
  /\binNs\(\s*\[\s*'([^']+)'/g,
  /\.run\(\s*\[\s*'([^']+)'/g,
  /'netns',\s*'exec',\s*[\w.]+,\s*'([^']+)'/g,
]);

const dpkgQuery = (args: string[]) => spawnSync('dpkg-query', args, { encoding: 'utf8' });

/** Where a tool is in the system's own directories (not a user's PATH, e.g. a pyenv shim). */
function systemPath(tool: string): string | undefined {
  if (tool.includes('/')) return findTool(tool);
  return ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].map((d) => join(d, tool)).find((f) => existsSync(f));
}

/**
 * The packages dpkg says each file belongs to, trying the /usr-merged alias and a link's target too
 * (one dpkg-query for all: each call reads the whole file database).
 */
function owningPackages(paths: string[]): Map<string, string[]> {
  const aliasesOf = (p: string) => [p, p.startsWith('/usr/') ? p.slice(4) : `/usr${p}`, realpathSync(p)];
  const owners = new Map<string, string[]>();
  for (const line of dpkgQuery(['-S', ...new Set(paths.flatMap(aliasesOf))]).stdout.split('\n')) {
    const at = line.lastIndexOf(': ');
    if (at < 0 || line.startsWith('diversion')) continue;
    const pkgs = line.slice(0, at).split(', ');
    owners.set(
      line.slice(at + 2),
      pkgs.map((p) => p.replace(/:[a-z0-9]+$/, '')),
    );
  }
  return new Map(
    paths.map((p) => [
      p,
      aliasesOf(p)
        .map((a) => owners.get(a))
        .find(Boolean) ?? [],
    ]),
  );
}

/** A package and what installing it installs along (Depends, Pre-Depends), by name. */
function withDependencies(pkg: string): string[] {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format fields
  const r = dpkgQuery(['-W', '-f=${Depends}, ${Pre-Depends}', pkg]);
  const deps = r.stdout
    .split(/[,|]/)
    .map((d) => d.trim().split(/[\s:(]/)[0]!)
    .filter(Boolean);
  return [pkg, ...deps];
}

/** On every Debian system: Essential, or of priority required. */
function onEveryDebian(pkg: string): boolean {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format fields
  const [essential, priority] = dpkgQuery(['-W', '-f=${Essential} ${Priority}', pkg]).stdout.split(' ');
  return essential === 'yes' || priority === 'required';
}

describe('the list of Debian packages (scripts/system-packages.json) is what the tests use', () => {
  beforeAll(() => {
    if (findTool('dpkg-query') === undefined) throw new Error("these checks read dpkg's database: Debian only");
  });
  it('finds tools to check (the scan works)', () => {
    expect([...REQUIRED.keys()]).toEqual(expect.arrayContaining(['socat', 'mosquitto', 'openssl', 'nft', 'ip']));
    expect([...SPAWNED.keys()]).toEqual(expect.arrayContaining(['socat', 'ip', 'sysctl', 'tar', 'python3']));
  });

  it('every tool a test requires comes with a listed package, as dpkg knows it', () => {
    const paths = new Map([...REQUIRED.keys()].map((tool) => [tool, systemPath(tool)]));
    const ownersOf = owningPackages([...paths.values()].filter((p) => p !== undefined));
    for (const [tool, files] of REQUIRED) {
      const pkg = packageOf(tool);
      expect(pkg, `${tool} (${files.join(', ')}) is in no package of the list`).toBeDefined();
      const path = paths.get(tool);
      expect(path, `${tool} is not installed (run the pretest script as root)`).toBeDefined();
      const owners = ownersOf.get(path!)!;
      expect(owners.length, `dpkg knows no package with ${path}`).toBeGreaterThan(0);
      const installs = withDependencies(pkg!.package);
      expect(
        owners.some((o) => installs.includes(o)),
        `${path} belongs to ${owners.join(', ')}, which installing ${pkg!.package} does not install`,
      ).toBe(true);
    }
  });

  it('every command started by name is on every Debian, or Node, or required by the tests that start it', () => {
    const unlisted = [...SPAWNED].filter(([tool]) => !REQUIRED.has(tool) && tool !== 'npm' && tool !== 'node');
    const paths = new Map(unlisted.map(([tool]) => [tool, systemPath(tool)]));
    const ownersOf = owningPackages([...paths.values()].filter((p) => p !== undefined));
    for (const [tool, files] of unlisted) {
      const path = paths.get(tool);
      expect(path, `${tool} (${files.join(', ')}) is not installed`).toBeDefined();
      const owners = ownersOf.get(path!)!;
      expect(
        owners.some(onEveryDebian),
        `${tool} (${files.join(', ')}) comes with ${owners.join(', ')}, not on every Debian: add it to the list and requireTool('${tool}')`,
      ).toBe(true);
    }
  });

  it('every listed package is needed: a tool of it is required or started, or it builds native modules', () => {
    const pkgJson = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as Record<
      string,
      Record<string, string>
    >;
    const nativeModules = Object.keys({ ...pkgJson.dependencies, ...pkgJson.optionalDependencies }).filter((d) =>
      existsSync(join(REPO, 'node_modules', d, 'binding.gyp')),
    );
    for (const p of SYSTEM_PACKAGES) {
      const used = [...p.commands, ...p.libraries].filter((t) => REQUIRED.has(t) || SPAWNED.has(t));
      const builds = p.nativeBuild && nativeModules.length > 0;
      expect(used.length > 0 || builds, `${p.package}: nothing uses it`).toBe(true);
      // And no tool named in the list is left unused.
      for (const tool of [...p.commands, ...p.libraries]) expect(used, `${p.package}: ${tool} unused`).toContain(tool);
    }
    expect(nativeModules.length).toBeGreaterThan(0);
  });

  it('npm test runs the script first, and .ci/run runs it before npm ci and then exactly npm test', () => {
    const pkgJson = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkgJson.scripts.pretest).toBe('node scripts/system-packages.mjs');
    const ci = readFileSync(join(REPO, '.ci', 'run'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#') && !l.startsWith('set ') && !l.startsWith('cd '));
    expect(ci).toEqual(['node scripts/system-packages.mjs', 'npm ci', 'npm test']);
  });
});

describe('scripts/system-packages.mjs', () => {
  // As an unprivileged user even when the tests run as root, so that it can never call apt-get here.
  const asUser = (args: string[]) =>
    process.getuid?.() === 0
      ? runProcess('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, SCRIPT, ...args], {
          timeoutMs: 10_000,
        })
      : runProcess(process.execPath, [SCRIPT, ...args], { timeoutMs: 10_000 });

  it('not root, with a package missing: stops within seconds, printing the sudo apt-get line for just that package', async () => {
    chmodSync(tmp.dir, 0o755);
    const list = join(tmp.dir, 'packages.json');
    const absent = 'p2p-edge-test-no-such-package';
    writeFileSync(
      list,
      JSON.stringify({
        packages: [
          { package: 'dpkg', for: 'on every Debian' },
          { package: absent, for: 'a package no archive has' },
        ],
      }),
    );
    const started = Date.now();
    const r = await asUser(['--list', list]);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(r.code).toBe(1);
    const lines = r.stderr.split('\n').map((l) => l.trim());
    expect(lines).toContain(`sudo apt-get install --no-install-recommends ${absent}`);
    expect(r.stderr).toContain(`${absent}: a package no archive has`);
    expect(r.stdout).toBe('');
  });

  it('with every package installed: exits 0 at once, saying so in one line', async () => {
    const started = Date.now();
    const r = await asUser([]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`system packages: all ${SYSTEM_PACKAGES.length} installed\n`);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('a list it cannot read: exits 1 naming the file', async () => {
    const r = await asUser(['--list', join(tmp.dir, 'missing.json')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('missing.json');
  });
});

describe('npm start says which broker it uses', () => {
  const broker = (kind: BenchBroker['kind']): BenchBroker => ({
    kind,
    url: 'mqtt://127.0.0.1:1883',
    port: 1883,
    start: async () => {},
    stop: async () => {},
  });
  it('the embedded one, with how to get Mosquitto; Mosquitto with its bridged cell brokers', () => {
    expect(describeBrokers(broker('embedded'), 0)).toBe(
      'broker embedded on mqtt://127.0.0.1:1883 (Mosquitto is not installed: `sudo apt-get install mosquitto` for a broker per cell, bridged upstream)',
    );
    expect(describeBrokers(broker('mosquitto'), 2)).toBe(
      'broker mosquitto on mqtt://127.0.0.1:1883, a broker per cell bridged to it',
    );
  });
});
