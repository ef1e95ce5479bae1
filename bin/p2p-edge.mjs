#!/usr/bin/env node
// Entry point of the `p2p-edge` command. The sources are TypeScript, loaded through tsx's ESM hook, so
// a fresh `npm ci` is all a machine needs (no build step).
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
