// `npm ci` / `npm install` hook: compiles the sources when the compiler is installed. A production
// install without dev dependencies (`--omit=dev`) has no compiler; the command then runs the
// sources through tsx, which is a runtime dependency.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

if (existsSync('node_modules/typescript/bin/tsc')) {
  execFileSync('npm', ['run', '-s', 'build'], { stdio: 'inherit' });
} else {
  process.stderr.write('p2p-edge: no TypeScript compiler here; the command will run from the sources\n');
}
