import { type Logger, pino } from 'pino';

export type { Logger };

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LEVELS)[number];

function levelFromEnv(): LogLevel {
  const env = process.env.P2P_LOG_LEVEL;
  return (LEVELS as readonly string[]).includes(env ?? '') ? (env as LogLevel) : 'info';
}

/**
 * The process's root logger: one JSON line per event on stderr (stdout is kept for command output),
 * so that `--json` output stays parseable. Level from `P2P_LOG_LEVEL` unless the config sets one.
 */
let root: Logger = pino({ level: levelFromEnv(), base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));

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
