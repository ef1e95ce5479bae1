import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';

const children = new Set<ChildProcess>();
let hooked = false;

/**
 * Starts a helper process (a bench gateway, the broker, socat) in its own process group, so that
 * Ctrl-C at the terminal reaches the parent alone and it can stop them in order (the bench needs
 * their last state for its report). Whatever is still running when the parent exits is killed with it.
 */
export function spawnOwned(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const c of children) c.kill('SIGKILL');
    });
  }
  const child = spawn(command, args, { ...options, detached: true });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
