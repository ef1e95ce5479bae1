// The Debian packages the tests run for real (listed, with what each is for, in system-packages.json),
// checked before every `npm test` (pretest) and by .ci/run before `npm ci` (node-gyp needs python3,
// make and g++). Present: one line. Missing: as root, installed with apt; otherwise it stops with
// the `sudo apt-get install` line to run. Plain Node without dependencies: it runs before `npm ci`.
//
//   node scripts/system-packages.mjs [--list FILE]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;

function fail(lines) {
  process.stderr.write(`${lines.join('\n')}\n`);
  process.exit(1);
}

function readList(file) {
  let list;
  try {
    list = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    fail([`system packages: cannot read ${file}: ${err.message}`]);
  }
  const packages = Array.isArray(list?.packages) ? list.packages : [];
  if (packages.length === 0) fail([`system packages: ${file}: no "packages" array`]);
  for (const [i, p] of packages.entries())
    if (typeof p?.package !== 'string' || !PACKAGE_NAME.test(p.package) || typeof p.for !== 'string')
      fail([`system packages: ${file}: packages[${i}] needs a Debian package name in "package" and a "for"`]);
  return packages;
}

/** Names of the packages that dpkg does not list as installed; undefined where there is no dpkg. */
function missingPackages(names) {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format fields
  const query = spawnSync('dpkg-query', ['-W', '-f=${Package}\\t${db:Status-Status}\\n', ...names], {
    encoding: 'utf8',
  });
  if (query.error) return undefined;
  const installed = new Set(
    query.stdout
      .split('\n')
      .map((line) => line.split('\t'))
      .filter(([, status]) => status === 'installed')
      .map(([name]) => name),
  );
  return names.filter((name) => !installed.has(name));
}

function apt(args) {
  const r = spawnSync('apt-get', args, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0)
    fail([`system packages: apt-get ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})`]);
}

const listArg = process.argv.indexOf('--list');
const listFile = listArg > 0 ? process.argv[listArg + 1] : new URL('system-packages.json', import.meta.url);
if (listArg > 0 && !listFile) fail(['usage: node scripts/system-packages.mjs [--list FILE]']);
const packages = readList(listFile);
const names = packages.map((p) => p.package);

const missing = missingPackages(names);
if (missing === undefined) {
  // Not Debian: the tests themselves say which tool is missing.
  process.stderr.write(`system packages: no dpkg-query here; the tests need the equivalents of: ${names.join(' ')}\n`);
  process.exit(0);
}
if (missing.length === 0) {
  process.stdout.write(`system packages: all ${names.length} installed\n`);
  process.exit(0);
}
const installLine = `apt-get install --no-install-recommends ${missing.join(' ')}`;
if (process.getuid?.() !== 0) {
  const why = packages.filter((p) => missing.includes(p.package)).map((p) => `  ${p.package}: ${p.for}`);
  fail([
    'system packages: the tests need Debian packages that are not installed:',
    ...why,
    'Install them (or run npm test as root, which installs them), then run npm test again:',
    `  sudo ${installLine}`,
  ]);
}
process.stdout.write(`system packages: installing ${missing.join(' ')}\n`);
apt(['update', '-qq']);
apt(['install', '-y', '-q', '--no-install-recommends', ...missing]);
const stillMissing = missingPackages(names) ?? [];
if (stillMissing.length > 0) fail([`system packages: still not installed after apt-get: ${stillMissing.join(' ')}`]);
process.stdout.write(`system packages: all ${names.length} installed\n`);
