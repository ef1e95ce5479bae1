import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { ErrorCode, P2PError } from './errors.js';

/**
 * Writes a file so that after a power cut it holds either the old or the new content, never a mix:
 * write a temporary file, fsync it, rename over the target, fsync the directory. `mode`: the new file's
 * permissions (default 0600: most of what is written so is private).
 */
export function writeFileAtomic(file: string, content: string, mode = 0o600): void {
  const dir = dirname(file);
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    mkdirSync(dir, { recursive: true });
    const fd = openSync(tmp, 'w', mode);
    try {
      writeSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    const dirFd = openSync(dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  } catch (err) {
    throw new P2PError(ErrorCode.storage, `cannot write ${file}: ${(err as Error).message}`, {
      component: 'storage',
      recoverable: true,
      cause: err,
    });
  }
}

/** Reads a JSON file written by `writeFileAtomic`; undefined when it does not exist. */
export function readJsonIfPresent(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new P2PError(ErrorCode.storage, `cannot read ${file}: ${(err as Error).message}`, { component: 'storage' });
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new P2PError(ErrorCode.storage, `${file} is not valid JSON`, {
      component: 'storage',
      hint: 'the file was changed by hand or by another program; move it away to start with fresh state',
    });
  }
}
