import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, runProcess, tempDir } from '../helpers/net.js';
import { requireTool } from '../helpers/system-tools.js';

// deploy/install.sh run for real into a --root tree (which implies no user creation and no
// systemctl), from this working tree and from `npm pack` tarballs of it. Dependencies are not
// installed (`--node-modules` links this tree's node_modules): `npm ci --omit=dev` is npm's own
// business and takes minutes. What runs: packing, unpacking, the atomic switch of `current` and
// `previous`, config, signing key (the release's own `platform keygen`), test certificates
// (make-certs.sh), unit and journald files, pruning, rollback, list, uninstall.
const REPO = join(import.meta.dirname, '..', '..');
const SCRIPT = join(REPO, 'deploy', 'install.sh');
const tmp = tempDir('p2p-edge-deploy-');
afterAll(() => tmp.remove());
const root = join(tmp.dir, 'root');
const opt = join(root, 'opt', 'p2p-edge');
const etc = join(root, 'etc', 'p2p-edge');

function install(args: string[]) {
  return runProcess('bash', [SCRIPT, ...args, '--root', root], { timeoutMs: 40_000, label: 'install.sh' });
}
const mode = (path: string) => (statSync(path).mode & 0o7777).toString(8).padStart(4, '0');
const link = (name: string) => readlinkSync(join(opt, name));

const CONFIG = [
  'gateway: { id: inv-07, kind: inverter, cell: cell-a, bus: b1 }',
  'comms:',
  '  transport: mqtt',
  '  mqtt:',
  '    url: mqtts://broker.cell-a.example:8883',
  '    caFile: /etc/p2p-edge/tls/ca.pem',
  '    certFile: /etc/p2p-edge/tls/inv-07.pem',
  '    keyFile: /etc/p2p-edge/tls/inv-07.key',
  '  security:',
  '    keyFile: /etc/p2p-edge/inv-07.key.json',
  '    membersFile: /etc/p2p-edge/members.json',
  '    operatorPublicKey: REPLACE_WITH_OPERATOR_PUBLIC_KEY_0000000000',
  'stateDir: /var/lib/p2p-edge',
  '',
].join('\n');

/** Tarballs of this tree with other versions: the releases of later updates. */
const tarballs: Record<string, string> = {};
beforeAll(async () => {
  const packed = await runProcess('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', tmp.dir], {
    timeoutMs: 30_000,
  });
  expect(packed.code).toBe(0);
  const tgz = join(tmp.dir, packed.stdout.trim().split('\n').at(-1) as string);
  for (const version of ['0.2.0', '0.3.0', '0.4.0', '0.9.9']) {
    const dir = join(tmp.dir, `v${version}`);
    expect(spawnSync('mkdir', ['-p', dir]).status).toBe(0);
    expect(spawnSync('tar', ['-xzf', tgz, '-C', dir]).status).toBe(0);
    const pkg = join(dir, 'package', 'package.json');
    writeFileSync(pkg, readFileSync(pkg, 'utf8').replace('"version": "0.1.0"', `"version": "${version}"`));
    tarballs[version] = join(tmp.dir, `p2p-edge-${version}.tgz`);
    expect(spawnSync('tar', ['-czf', tarballs[version], '-C', dir, 'package']).status).toBe(0);
  }
  writeFileSync(join(tmp.dir, 'gateway.yaml'), CONFIG);
  writeFileSync(join(tmp.dir, 'other.yaml'), CONFIG.replace('inv-07', 'inv-99'));
}, 60_000);

describe('deploy/install.sh', () => {
  beforeAll(() => {
    requireTool('openssl'); // make-certs.sh, and the checks of what it made
  });
  it('--help explains the commands; a wrong argument or a missing config exits 2', async () => {
    const help = await runProcess('bash', [SCRIPT, '--help']);
    expect(help.code).toBe(0);
    for (const word of ['rollback', 'uninstall', '--root', '--no-start', '--tls-cert', '--keep'])
      expect(help.stdout).toContain(word);
    expect((await runProcess('bash', [SCRIPT, '--frobnicate'])).code).toBe(2);
    expect((await runProcess('bash', [SCRIPT, '--keep', '1', '--root', join(tmp.dir, 'x')])).code).toBe(2);
    const noConfig = await runProcess('bash', [SCRIPT, '--root', join(tmp.dir, 'x'), '--node-modules', 'node_modules']);
    expect(noConfig.code).toBe(2);
    expect(noConfig.stderr).toMatch(/pass --config FILE/);
  });

  it('installs the working tree: release, current symlink, config, key, certificates, unit; modes as documented (owners need the user, which a --root tree does not create)', async () => {
    const r = await install([
      '--config',
      join(tmp.dir, 'gateway.yaml'),
      '--test-certs',
      'broker.cell-a.example',
      '--node-modules',
      join(REPO, 'node_modules'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('(skipped) user and groups');
    expect(r.stderr).toContain('(skipped) systemctl enable p2p-edge');

    // The release and the switch.
    expect(link('current')).toMatch(/^releases\/0\.1\.0-[0-9a-f]{8}$/);
    const release = join(opt, link('current'));
    expect(existsSync(join(release, '.complete'))).toBe(true);
    expect(existsSync(join(release, 'bin', 'p2p-edge.mjs'))).toBe(true);
    expect(existsSync(join(release, 'deploy', 'install.sh'))).toBe(true);
    expect(lstatSync(join(release, 'node_modules')).isSymbolicLink()).toBe(true);
    expect(existsSync(join(opt, 'previous'))).toBe(false);
    const version = await runProcess(process.execPath, [join(opt, 'current', 'bin', 'p2p-edge.mjs'), '--version']);
    expect(version.stdout.trim()).toBe('0.1.0');

    // Config and secrets: the directory and private keys closed to others.
    expect(mode(etc)).toBe('0750');
    expect(readFileSync(join(etc, 'gateway.yaml'), 'utf8')).toBe(CONFIG);
    expect(mode(join(etc, 'gateway.yaml'))).toBe('0640');
    const key = JSON.parse(readFileSync(join(etc, 'inv-07.key.json'), 'utf8')) as Record<string, string>;
    expect(key).toMatchObject({ id: 'inv-07', publicKey: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect(r.stdout).toContain(key.publicKey); // printed for the operator's members register
    expect(mode(join(etc, 'inv-07.key.json'))).toBe('0640');
    expect(mode(join(etc, 'tls', 'inv-07.key'))).toBe('0640');
    expect(mode(join(etc, 'tls', 'inv-07.pem'))).toBe('0644');
    expect(mode(join(etc, 'tls', 'ca.pem'))).toBe('0644');
    expect(mode(join(etc, 'tls', 'test-ca'))).toBe('0700');
    const subject = spawnSync('openssl', ['x509', '-noout', '-subject', '-in', join(etc, 'tls', 'inv-07.pem')]);
    expect(subject.stdout.toString()).toMatch(/CN ?= ?inv-07/);
    const verify = spawnSync('openssl', [
      'verify',
      '-CAfile',
      join(etc, 'tls', 'ca.pem'),
      join(etc, 'tls', 'inv-07.pem'),
    ]);
    expect(verify.status).toBe(0);

    // System files.
    const unit = join(root, 'etc', 'systemd', 'system', 'p2p-edge.service');
    expect(readFileSync(unit, 'utf8')).toBe(readFileSync(join(REPO, 'deploy', 'systemd', 'p2p-edge.service'), 'utf8'));
    expect(mode(unit)).toBe('0644');
    // The box's journal settings are the box's: changed only with --journald-limits.
    expect(existsSync(join(root, 'etc', 'systemd', 'journald.conf.d'))).toBe(false);
    expect(r.stderr).not.toContain('systemd-journald');
    expect(mode(join(root, 'var', 'lib', 'p2p-edge'))).toBe('0750');
  });

  it('a config the release does not accept stops the install before the switch (exit 2)', async () => {
    const badRoot = join(tmp.dir, 'root-bad');
    writeFileSync(join(tmp.dir, 'bad.yaml'), `${CONFIG}scheduler: { primaryMs: fast }\n`);
    const r = await runProcess('bash', [
      SCRIPT,
      '--from',
      tarballs['0.2.0'] as string,
      '--config',
      join(tmp.dir, 'bad.yaml'),
      '--node-modules',
      join(REPO, 'node_modules'),
      '--root',
      badRoot,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('scheduler.primaryMs');
    expect(r.stderr).toContain('no config installed, nothing switched');
    expect(existsSync(join(badRoot, 'opt', 'p2p-edge', 'current'))).toBe(false);
    expect(existsSync(join(badRoot, 'etc', 'p2p-edge', 'gateway.yaml'))).toBe(false); // the fixed one can come next
  });

  it('again, with another config: nothing is overwritten, the same release stays current', async () => {
    const before = readFileSync(join(etc, 'inv-07.key.json'), 'utf8');
    const current = link('current');
    const r = await install(['--config', join(tmp.dir, 'other.yaml'), '--node-modules', join(REPO, 'node_modules')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/release 0\.1\.0-\w+ is already installed/);
    expect(r.stderr).toContain('kept the existing');
    expect(readFileSync(join(etc, 'gateway.yaml'), 'utf8')).toBe(CONFIG);
    expect(readFileSync(join(etc, 'inv-07.key.json'), 'utf8')).toBe(before);
    expect(link('current')).toBe(current);
    expect(existsSync(join(opt, 'previous'))).toBe(false);
  });

  it('an update switches current and keeps the old release as previous; rollback switches back (and forth)', async () => {
    const first = link('current');
    const r = await install(['--from', tarballs['0.2.0'] as string, '--node-modules', join(REPO, 'node_modules')]);
    expect(r.code, r.stderr).toBe(0);
    expect(link('current')).toMatch(/^releases\/0\.2\.0-[0-9a-f]{8}$/);
    expect(link('previous')).toBe(first);
    const second = link('current');

    const back = await runProcess('bash', [SCRIPT, 'rollback', '--root', root]);
    expect(back.code, back.stderr).toBe(0);
    expect(link('current')).toBe(first);
    expect(link('previous')).toBe(second);
    const list = await runProcess('bash', [SCRIPT, 'list', '--root', root]);
    expect(list.stdout).toMatch(/^0\.1\.0-\w+ +\S+ \(current\)$/m);
    expect(list.stdout).toMatch(/^0\.2\.0-\w+ +\S+ \(previous\)$/m);

    const forth = await runProcess('bash', [SCRIPT, 'rollback', '--root', root]);
    expect(forth.code).toBe(0);
    expect(link('current')).toBe(second);
  });

  it('keeps the last --keep releases, never current or previous', async () => {
    for (const version of ['0.3.0', '0.4.0']) {
      const r = await install([
        '--from',
        tarballs[version] as string,
        '--keep',
        '3',
        '--node-modules',
        join(REPO, 'node_modules'),
      ]);
      expect(r.code, r.stderr).toBe(0);
    }
    const kept = readdirSync(join(opt, 'releases')).sort();
    expect(kept.map((name) => name.replace(/-\w+$/, ''))).toEqual(['0.2.0', '0.3.0', '0.4.0']);
    expect(link('current')).toMatch(/0\.4\.0/);
    expect(link('previous')).toMatch(/0\.3\.0/);
  });

  it('--tls-csr makes the key here and a CSR with CN = gateway id; --tls-ca/--tls-cert/--tls-key install given files; --log-file the rsyslog and logrotate files; --journald-limits the journald drop-in', async () => {
    const csrRoot = join(tmp.dir, 'root-csr');
    const nm = join(REPO, 'node_modules');
    const plain = CONFIG.replace(/ {4}(caFile|certFile|keyFile): \/etc\/p2p-edge\/tls\/.*\n/g, '');
    writeFileSync(join(tmp.dir, 'plain.yaml'), plain);
    const args = ['--from', tarballs['0.2.0'] as string, '--config', join(tmp.dir, 'plain.yaml'), '--node-modules', nm];
    const r = await runProcess('bash', [SCRIPT, ...args, '--tls-csr', '--root', csrRoot]);
    expect(r.code, r.stderr).toBe(0);
    const tls = join(csrRoot, 'etc', 'p2p-edge', 'tls');
    expect(mode(join(tls, 'client.key'))).toBe('0640');
    const csr = spawnSync('openssl', ['req', '-noout', '-subject', '-verify', '-in', join(tls, 'client.csr')]);
    expect(csr.status).toBe(0);
    expect(csr.stdout.toString()).toMatch(/CN ?= ?inv-07/);

    const given = join(tmp.dir, 'root-given');
    const certs = join(etc, 'tls');
    const g = await runProcess('bash', [
      SCRIPT,
      ...args,
      '--tls-ca',
      join(certs, 'ca.pem'),
      '--tls-cert',
      join(certs, 'inv-07.pem'),
      '--tls-key',
      join(certs, 'inv-07.key'),
      '--log-file',
      '--journald-limits',
      '--root',
      given,
    ]);
    expect(g.code, g.stderr).toBe(0);
    const dropIn = join(given, 'etc', 'systemd', 'journald.conf.d', 'p2p-edge.conf');
    expect(readFileSync(dropIn, 'utf8')).toBe(readFileSync(join(REPO, 'deploy', 'journald', 'p2p-edge.conf'), 'utf8'));
    expect(mode(dropIn)).toBe('0644');
    expect(existsSync(join(given, 'var', 'log', 'journal'))).toBe(true); // Storage=persistent writes there
    expect(g.stderr).toContain('(skipped) systemctl restart systemd-journald');
    expect(existsSync(join(csrRoot, 'etc', 'systemd', 'journald.conf.d'))).toBe(false); // only with --journald-limits
    expect(existsSync(join(given, 'etc', 'rsyslog.d', '30-p2p-edge.conf'))).toBe(true);
    expect(existsSync(join(given, 'etc', 'logrotate.d', 'p2p-edge'))).toBe(true);
    expect(existsSync(join(root, 'etc', 'logrotate.d'))).toBe(false); // only with --log-file
    const installed = join(given, 'etc', 'p2p-edge', 'tls');
    expect(readFileSync(join(installed, 'client.pem'))).toEqual(readFileSync(join(certs, 'inv-07.pem')));
    expect(mode(join(installed, 'client.key'))).toBe('0640');
    expect(mode(join(installed, 'ca.pem'))).toBe('0644');
    const half = await runProcess('bash', [SCRIPT, ...args, '--tls-cert', join(certs, 'inv-07.pem'), '--root', given]);
    expect(half.code).toBe(2);
  });

  it('restarts through systemctl, checks /healthz with the token, and rolls a release back that does not come up', async () => {
    // systemctl played by a script: it logs its calls, and the service is "active" unless the
    // current release is 0.9.9 (a release that crashes at start).
    const sdRoot = join(tmp.dir, 'root-systemctl');
    const calls = join(tmp.dir, 'systemctl.log');
    const stub = join(tmp.dir, 'systemctl');
    writeFileSync(
      stub,
      [
        '#!/usr/bin/env bash',
        `echo "$*" >> ${calls}`,
        'if [ "$1" = is-active ]; then',
        `  ! grep -q '"version": "0.9.9"' ${sdRoot}/opt/p2p-edge/current/package.json`,
        'fi',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const token = 'a-long-enough-token-123';
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.url} ${req.headers.authorization}`);
      res.writeHead(req.headers.authorization === `Bearer ${token}` ? 200 : 401).end();
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    try {
      writeFileSync(join(tmp.dir, 'status.yaml'), `${CONFIG}status: { port: ${port}, token: ${token} }\n`);
      const env = { P2P_EDGE_SYSTEMCTL: stub };
      const nm = ['--node-modules', join(REPO, 'node_modules'), '--root', sdRoot];
      const opts = { timeoutMs: 40_000, env };
      const good = await runProcess(
        'bash',
        [SCRIPT, '--from', tarballs['0.2.0'] as string, '--config', join(tmp.dir, 'status.yaml'), ...nm],
        opts,
      );
      expect(good.code, good.stderr).toBe(0);
      expect(good.stderr).toContain(`healthy: p2p-edge is active and http://127.0.0.1:${port}/healthz says ok`);
      expect(seen.at(-1)).toBe(`/healthz Bearer ${token}`);
      expect(readFileSync(calls, 'utf8')).toMatch(/^daemon-reload\nenable p2p-edge\nrestart p2p-edge\n/);
      const sdOpt = join(sdRoot, 'opt', 'p2p-edge');
      const goodRelease = readlinkSync(join(sdOpt, 'current'));

      const bad = await runProcess(
        'bash',
        [SCRIPT, '--from', tarballs['0.9.9'] as string, '--health-timeout', '3', ...nm],
        opts,
      );
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('did not come up healthy within 3 s: rolling back');
      expect(bad.stderr).toMatch(/update failed; rolled back to 0\.2\.0-/);
      expect(readlinkSync(join(sdOpt, 'current'))).toBe(goodRelease);
      expect(readlinkSync(join(sdOpt, 'previous'))).toMatch(/0\.9\.9/);
      expect(readFileSync(calls, 'utf8').match(/^restart p2p-edge$/gm)).toHaveLength(3); // good, bad, rollback
    } finally {
      server.close();
    }
  });

  it('uninstall removes the program and the unit and keeps config and state; --purge removes those too', async () => {
    const r = await runProcess('bash', [SCRIPT, 'uninstall', '--root', root]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(opt)).toBe(false);
    expect(existsSync(join(root, 'etc', 'systemd', 'system', 'p2p-edge.service'))).toBe(false);
    expect(existsSync(join(etc, 'gateway.yaml'))).toBe(true);
    const copy = join(tmp.dir, 'root-copy');
    cpSync(root, copy, { recursive: true });
    const purge = await runProcess('bash', [SCRIPT, 'uninstall', '--purge', '--root', copy]);
    expect(purge.code).toBe(0);
    expect(existsSync(join(copy, 'etc', 'p2p-edge'))).toBe(false);
    expect(existsSync(join(copy, 'var', 'lib', 'p2p-edge'))).toBe(false);
  });
});

// systemd-analyze comes with the systemd package, which is not started.
describe('deploy/systemd/p2p-edge.service', () => {
  beforeAll(() => {
    requireTool('systemd-analyze');
  });
  it('passes `systemd-analyze verify`', () => {
    const dir = join(tmp.dir, 'unit');
    cpSync(join(REPO, 'deploy', 'systemd', 'p2p-edge.service'), join(dir, 'p2p-edge.service'), { recursive: true });
    const r = spawnSync('systemd-analyze', ['verify', join(dir, 'p2p-edge.service')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
