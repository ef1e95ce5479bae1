// `npm run release`: the package a gateway installs, release/p2p-edge-<version>.tgz, and its path on
// stdout. The sources are compiled into a staging folder (the checkout's own dist/, which running
// commands and tests may be using, is not touched), next to the files package.json's `files` names;
// npm-shrinkwrap.json, a copy of package-lock.json, makes an install take the versions this tree was
// tested with. The package holds compiled JavaScript only, and tsx, esbuild and typescript are dev
// dependencies: `npm install --omit=dev` of it brings none of them.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const RELEASE_DIR = resolve('release');
const TSC = 'node_modules/typescript/bin/tsc';

function fail(message) {
  process.stderr.write(`release: ${message}\n`);
  process.exit(1);
}

if (!existsSync(TSC)) fail('no TypeScript compiler: run `npm ci` first');
const manifest = JSON.parse(readFileSync('package.json', 'utf8'));
const stage = mkdtempSync(join(tmpdir(), 'p2p-edge-release-'));
let packed;
try {
  execFileSync(
    process.execPath,
    [TSC, '-p', 'tsconfig.build.json', '--outDir', join(stage, 'dist'), '--sourceMap', 'false'],
    {
      stdio: 'inherit',
    },
  );
  // The data files the code reads at run time (feeders, SunSpec models), as scripts/finish-build.mjs.
  cpSync('src', join(stage, 'dist'), { recursive: true, filter: (f) => !f.endsWith('.ts') });
  for (const entry of manifest.files.filter((f) => !f.startsWith('!') && !f.startsWith('dist')))
    if (existsSync(entry)) cpSync(entry, join(stage, entry), { recursive: true });
  for (const file of ['README.md', 'LICENSE']) if (existsSync(file)) cpSync(file, join(stage, file));
  // The development scripts (prepare builds from sources, benches run through tsx) mean nothing in a
  // release, and `prepare` would run on the gateway's `npm ci`.
  const { scripts: _development, ...releaseManifest } = manifest;
  writeFileSync(join(stage, 'package.json'), `${JSON.stringify(releaseManifest, null, 2)}\n`);
  cpSync('package-lock.json', join(stage, 'npm-shrinkwrap.json'));
  mkdirSync(RELEASE_DIR, { recursive: true });
  // --ignore-scripts: `prepare` would build dist/ again, from sources the stage does not have.
  const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', RELEASE_DIR], {
    cwd: stage,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  packed = JSON.parse(out)[0];
} finally {
  rmSync(stage, { recursive: true, force: true });
}

const paths = new Set(packed.files.map((f) => f.path));
const problems = [];
for (const required of ['bin/p2p-edge.mjs', 'dist/main.js', 'npm-shrinkwrap.json', 'package.json'])
  if (!paths.has(required)) problems.push(`${required} is missing`);
for (const path of paths)
  if (path.startsWith('src/') || path.endsWith('.ts') || path.endsWith('.map'))
    problems.push(`${path} should not be in it`);
if (problems.length > 0) fail(`${packed.filename}: ${problems.join('; ')}`);

const tarball = join(RELEASE_DIR, packed.filename);
process.stderr.write(
  `release: ${tarball} (p2p-edge ${manifest.version}, ${packed.entryCount} files, ` +
    `${(packed.size / 1e6).toFixed(2)} MB packed, ${(packed.unpackedSize / 1e6).toFixed(2)} MB unpacked)\n`,
);
process.stdout.write(`${tarball}\n`);
