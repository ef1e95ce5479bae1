import { fstatSync } from 'node:fs';
import { type Logger, pino } from 'pino';

export type { Logger };

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LEVELS)[number];

function levelFromEnv(): LogLevel {
  const env = process.env.P2P_LOG_LEVEL;
  return (LEVELS as readonly string[]).includes(env ?? '') ? (env as LogLevel) : 'info';
}

/**
 * The syslog priority journald gives a line that starts with `<N>` (its default
 * `SyslogLevelPrefix=yes`), by pino level: fatal and error → 3 (err), warn → 4 (warning),
 * info → 6 (info), debug and trace → 7 (debug). So `journalctl -p warning` finds the warnings.
 */
export function journalPriority(pinoLevel: number): number {
  if (pinoLevel >= 50) return 3;
  if (pinoLevel >= 40) return 4;
  if (pinoLevel >= 30) return 6;
  return 7;
}

/** A pino JSON line with its journal priority in front (`<4>{"level":40,...}`); other text unchanged. */
export function withJournalPriority(line: string): string {
  const level = /^\{"level":(\d+)/.exec(line)?.[1];
  return level === undefined ? line : `<${journalPriority(Number(level))}>${line}`;
}

/**
 * Whether stderr is the journal's stream: systemd sets `JOURNAL_STREAM` to `device:inode` of the
 * stream it connected, which only counts when it is the one on fd 2 (a child whose stderr is a pipe
 * inherits the variable, yet its lines do not go to the journal directly).
 */
export function stderrIsJournal(journalStream = process.env.JOURNAL_STREAM): boolean {
  if (!journalStream) return false;
  const [device, inode] = journalStream.split(':');
  try {
    const stat = fstatSync(2, { bigint: true });
    return String(stat.dev) === device && String(stat.ino) === inode;
  } catch {
    return false;
  }
}

/**
 * The process's root logger: one JSON line per event on stderr (stdout is kept for command output),
 * so that `--json` output stays parseable. Level from `P2P_LOG_LEVEL` unless the config sets one.
 * Under systemd each line carries its journal priority as a `<N>` prefix, which journald strips.
 */
let root: Logger = pino(
  {
    level: levelFromEnv(),
    base: { pid: process.pid },
    ...(stderrIsJournal() ? { hooks: { streamWrite: withJournalPriority } } : {}),
  },
  pino.destination({ fd: 2, sync: true }),
);

export function rootLogger(): Logger {
  return root;
}

export function setLogLevel(level: LogLevel): void {
  root.level = level;
}

/** Replaces the root logger (tests capture lines with it). */
export function useRootLogger(logger: Logger): void {
  root = logger;
}

/** A logger whose every line carries `component` (and any other fixed fields, e.g. the gateway id). */
export function componentLogger(component: string, fields: Record<string, unknown> = {}): Logger {
  return root.child({ component, ...fields });
}
