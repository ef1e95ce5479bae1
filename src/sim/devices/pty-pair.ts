import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnOwned } from '../../core/child-processes.js';
import { ErrorCode, P2PError } from '../../core/errors.js';

/**
 * Two pseudo-terminals joined by socat, standing in for an RS485 line: a Modbus RTU server opens one
 * end, the master the other. `socat` must be installed (the project's CI installs it).
 */
export class PtyPair {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly a: string,
    readonly b: string,
  ) {}

  static async open(): Promise<PtyPair> {
    const dir = mkdtempSync(join(tmpdir(), 'p2p-edge-pty-'));
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    const child = spawnOwned('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: 'ignore' });
    const failed = new Promise<never>((_, reject) =>
      child.once('error', (err) =>
        reject(
          new P2PError(ErrorCode.unavailable, `socat is needed for Modbus RTU over a pty: ${err.message}`, {
            component: 'sim',
            hint: 'sudo apt-get install socat',
          }),
        ),
      ),
    );
    const ready = (async () => {
      for (let i = 0; i < 100 && !(existsSync(a) && existsSync(b)); i++) await new Promise((r) => setTimeout(r, 20));
      if (!(existsSync(a) && existsSync(b)))
        throw new P2PError(ErrorCode.unavailable, 'socat made no pty pair', { component: 'sim' });
    })();
    await Promise.race([ready, failed]);
    return new PtyPair(child, dir, a, b);
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
