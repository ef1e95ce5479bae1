import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GATEWAY_NODE_ENV, GATEWAY_NODE_FLAGS } from '../../src/bench/processes.js';

const UNIT = readFileSync(join(import.meta.dirname, '..', '..', 'deploy', 'systemd', 'p2p-edge.service'), 'utf8');

describe('node settings of a gateway', () => {
  it('the bench starts its gateways with the flags and environment of the systemd unit', () => {
    const exec = /^ExecStart=\/usr\/bin\/node (.*) \/opt\/p2p-edge\/current\/bin\/p2p-edge\.mjs run /m.exec(UNIT);
    expect(exec, 'ExecStart line').not.toBeNull();
    expect(exec![1]!.split(' ')).toEqual(GATEWAY_NODE_FLAGS);
    const env = Object.fromEntries([...UNIT.matchAll(/^Environment=(\w+)=(\S+)$/gm)].map((m) => [m[1], m[2]]));
    expect(env).toMatchObject(GATEWAY_NODE_ENV);
  });
});
