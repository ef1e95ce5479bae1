#!/usr/bin/env node
// Entry point of the `p2p-edge` command: runs the compiled JavaScript in dist/.
//
// A release (`npm run release`) holds dist/ and no sources, so that is all it ever runs. In a source
// checkout (src/ next to dist/), `npm ci` builds dist/ (the `prepare` script) and stamps it; while
// that build is older than a file under src/, or absent, or P2P_EDGE_FROM_SOURCE=1, the sources run
// through tsx (a dev dependency) instead, so an edit takes effect without a rebuild.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiledMain = join(root, 'dist', 'main.js');
const sourceMain = join(root, 'src', 'main.ts');

function newestFileMs(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestFileMs(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function sourcesWanted() {
  if (!existsSync(sourceMain)) return false;
  if (process.env.P2P_EDGE_FROM_SOURCE === '1') return true;
  const stamp = join(root, 'dist', '.built');
  return !existsSync(stamp) || statSync(stamp).mtimeMs < newestFileMs(join(root, 'src'));
}

async function registerTsx() {
  try {
    const { register } = await import('tsx/esm/api');
    register();
    return true;
  } catch {
    return false;
  }
}

const fromSource = sourcesWanted();
if (fromSource && (await registerTsx())) {
  await import('../src/main.ts');
} else if (existsSync(compiledMain)) {
  if (fromSource) process.stderr.write('p2p-edge: src/ is newer than dist/, but tsx is not installed: running dist/\n');
  await import('../dist/main.js');
} else {
  process.stderr.write(
    `p2p-edge: no build in ${join(root, 'dist')} and no tsx to run the sources: ` +
      'run `npm ci` (installs tsx and builds), or `npm run build`\n',
  );
  process.exit(1);
}
