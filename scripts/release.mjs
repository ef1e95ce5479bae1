// `npm run release`: the package a gateway installs, release/p2p-edge-<version>.tgz. A clean build of
// dist/, then `npm pack` of what package.json's `files` names (compiled JavaScript, no TypeScript
// sources, no source maps) with npm-shrinkwrap.json, a copy of package-lock.json, so that an install
// gets the versions this tree was tested with. tsx, esbuild and typescript are dev dependencies:
// `npm install --omit=dev` of the tarball brings none of them. Prints the tarball's path.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const RELEASE_DIR = 'release';
const SHRINKWRAP = 'npm-shrinkwrap.json';

const run = (command, args) => execFileSync(command, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });

function fail(message) {
  process.stderr.write(`release: ${message}\n`);
  process.exit(1);
}

if (!existsSync('node_modules/typescript/bin/tsc')) fail('no TypeScript compiler: run `npm ci` first');
rmSync('dist', { recursive: true, force: true });
run('npm', ['run', '-s', 'build']);

const { version } = JSON.parse(readFileSync('package.json', 'utf8'));
mkdirSync(RELEASE_DIR, { recursive: true });
copyFileSync('package-lock.json', SHRINKWRAP);
let packed;
try {
  // --ignore-scripts: dist/ was just built; `prepare` would build it again.
  packed = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', RELEASE_DIR]))[0];
} finally {
  rmSync(SHRINKWRAP, { force: true });
}

const paths = new Set(packed.files.map((f) => f.path));
const problems = [];
for (const required of ['bin/p2p-edge.mjs', 'dist/main.js', SHRINKWRAP, 'package.json'])
  if (!paths.has(required)) problems.push(`${required} is missing`);
for (const path of paths)
  if (path.startsWith('src/') || path.endsWith('.ts') || path.endsWith('.map'))
    problems.push(`${path} should not be in it`);
if (problems.length > 0) fail(`${packed.filename}: ${problems.join('; ')}`);

const tarball = join(RELEASE_DIR, packed.filename);
process.stderr.write(
  `release: ${tarball} (p2p-edge ${version}, ${packed.entryCount} files, ${(packed.size / 1e6).toFixed(2)} MB packed, ${(packed.unpackedSize / 1e6).toFixed(2)} MB unpacked)\n`,
);
process.stdout.write(`${tarball}\n`);
