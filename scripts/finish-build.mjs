// After `tsc -p tsconfig.build.json`: copies the data files the code reads at run time (feeders,
// SunSpec models) next to the compiled modules, and stamps the build so that `bin/p2p-edge.mjs` can
// tell a fresh build from sources changed since.
import { cpSync, writeFileSync } from 'node:fs';

cpSync('src', 'dist', { recursive: true, filter: (f) => !f.endsWith('.ts') });
writeFileSync('dist/.built', `${new Date().toISOString()}\n`);
