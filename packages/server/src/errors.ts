/**
 * Server error catalog. Codes are stable and documented in docs/errors.md; a test fails
 * when one is missing there. Expected conditions (bad config, bad input) are kept apart
 * from bugs; SIP-level rejections are responses, not exceptions.
 */

const BRAND = Symbol.for('pushcall.server.error');

export abstract class PushcallError extends Error {
  abstract readonly code: string;
  readonly [BRAND] = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export function isPushcallError(value: unknown): value is PushcallError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

/** The configuration file or flags are invalid; `issues` lists every problem with its path. */
export class ConfigError extends PushcallError {
  readonly code = 'PUSHCALL_ERR_CONFIG';
  constructor(message: string, readonly issues: string[] = []) {
    super(issues.length ? `${message}:\n  - ${issues.join('\n  - ')}` : message);
  }
}

/** The binding store could not be opened or written. */
export class StoreError extends PushcallError {
  readonly code = 'PUSHCALL_ERR_STORE';
}

/** A listener or the admin HTTP server could not start. */
export class StartupError extends PushcallError {
  readonly code = 'PUSHCALL_ERR_STARTUP';
}
