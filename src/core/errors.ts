/**
 * The one error class of the project. Every failure that crosses a module boundary is a P2PError with
 * a code, the component that raised it and, where it helps, what the user can do about it.
 */
export const ErrorCode = {
  /** A configuration file is missing, unreadable or invalid. */
  config: 'config',
  /** A command-line input (JSON file, option value) is invalid. */
  input: 'input',
  hal: 'hal',
  driver: 'driver',
  comms: 'comms',
  algorithm: 'algorithm',
  storage: 'storage',
  /** The feature needs hardware, a backend or a build that this machine does not have. */
  unavailable: 'unavailable',
  /** The command is part of the contract but not built yet. */
  notImplemented: 'not-implemented',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface P2PErrorOptions {
  component?: string;
  /** True when retrying later (next cycle, after a reconnect) may succeed. */
  recoverable?: boolean;
  hint?: string;
  /** The input field at fault, as a path (`agents[2].generators[0].max`). */
  field?: string;
  file?: string;
  cause?: unknown;
}

export class P2PError extends Error {
  readonly code: ErrorCode;
  readonly component: string | undefined;
  readonly recoverable: boolean;
  readonly hint: string | undefined;
  readonly field: string | undefined;
  readonly file: string | undefined;

  constructor(code: ErrorCode, message: string, options: P2PErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'P2PError';
    this.code = code;
    this.component = options.component;
    this.recoverable = options.recoverable ?? false;
    this.hint = options.hint;
    this.field = options.field;
    this.file = options.file;
  }

  /** One line for a person: the message, then what to do. */
  describe(): string {
    return this.hint ? `${this.message} (${this.hint})` : this.message;
  }
}

export function isP2PError(err: unknown, code?: ErrorCode): err is P2PError {
  return err instanceof P2PError && (code === undefined || err.code === code);
}

export function isRecoverable(err: unknown): boolean {
  return err instanceof P2PError && err.recoverable;
}

/** Exit codes of the command-line contract: 0 ok, 2 bad input or config, 3 not available here, 1 anything else. */
export function exitCodeFor(err: unknown): number {
  if (!(err instanceof P2PError)) return 1;
  switch (err.code) {
    case ErrorCode.config:
    case ErrorCode.input:
      return 2;
    case ErrorCode.unavailable:
    case ErrorCode.notImplemented:
      return 3;
    default:
      return 1;
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof P2PError) return err.describe();
  if (err instanceof Error) return err.message;
  return String(err);
}
