/**
 * Exceptions for configuration and programming errors in the push gateway. Delivery
 * failures are never thrown: they are PushOutcome values.
 */

export type PushErrorClassCode =
  | 'PUSH_ERR_CONFIG'
  | 'PUSH_ERR_KEY'
  | 'PUSH_ERR_PARAM'
  | 'PUSH_ERR_PAYLOAD'
  | 'PUSH_ERR_CLOSED';

export class PushError extends Error {
  readonly code: PushErrorClassCode;
  constructor(code: PushErrorClassCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Invalid or incomplete gateway configuration. */
export class PushConfigError extends PushError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PUSH_ERR_CONFIG', message, options);
  }
}

/** A key or certificate could not be read or parsed. */
export class PushKeyError extends PushError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PUSH_ERR_KEY', message, options);
  }
}

/** A binding's pn-param is malformed for its provider (e.g. APNs without TEAMID.bundle). */
export class PushParamError extends PushError {
  constructor(message: string) {
    super('PUSH_ERR_PARAM', message);
  }
}

/** A payload object violates the schema (programming error, not size). */
export class PushPayloadError extends PushError {
  constructor(message: string) {
    super('PUSH_ERR_PAYLOAD', message);
  }
}

/** The gateway or provider was used after close(). */
export class PushClosedError extends PushError {
  constructor(message = 'push gateway is closed') {
    super('PUSH_ERR_CLOSED', message);
  }
}
