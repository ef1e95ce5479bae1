#!/usr/bin/env node
// Entry point of the `p2p-edge` command. `npm ci` compiles the TypeScript sources to dist/ (the
// `prepare` script); that build runs when it is newer than every source file. Otherwise (sources
// edited since) the sources run through tsx's ESM hook, slower to start and larger in memory.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.built');

function newestSourceMs(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSourceMs(path) : statSync(path).mtimeMs);
  }
  return newest;
}

const built = existsSync(stamp) && statSync(stamp).mtimeMs >= newestSourceMs(join(root, 'src'));
if (built && process.env.P2P_EDGE_FROM_SOURCE !== '1') {
  await import('../dist/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
