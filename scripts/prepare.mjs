// `npm ci` / `npm install` hook in a source checkout: compiles the sources to dist/ when the
// compiler is installed. Without dev dependencies there is neither compiler nor tsx: such a checkout
// cannot run; a gateway installs a release (`npm run release`, docs/deploy.md) instead.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

if (existsSync('node_modules/typescript/bin/tsc')) {
  execFileSync('npm', ['run', '-s', 'build'], { stdio: 'inherit' });
} else {
  process.stderr.write('p2p-edge: no TypeScript compiler here (dev dependencies omitted): nothing built\n');
}
