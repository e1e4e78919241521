/**
 * Typed errors with stable codes. Codes are documented in docs/errors.md and a test fails
 * when a code here is undocumented. Retired codes are never reused.
 *
 * `isSipError` uses a Symbol.for brand so the check survives two copies of the package.
 */

const BRAND = Symbol.for('pushcall.sip.error');

export abstract class SipError extends Error {
  abstract readonly code: string;
  readonly [BRAND] = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export function isSipError(value: unknown): value is SipError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

/**
 * Malformed SIP input. `reason` is short and safe to put in a 400 reason phrase
 * ("Bad CSeq header", "Missing Call-ID"); `message` may carry more detail.
 */
export class SipParseError extends SipError {
  readonly code = 'SIP_ERR_PARSE';
  /** True when the start line and enough headers were read to answer with a 400. */
  answerable: boolean;
  /** The status that answers it: 400, or e.g. 505 for a SIP version other than 2.0. */
  status = 400;
  constructor(readonly reason: string, detail?: string, answerable = false) {
    super(detail ? `${reason}: ${detail}` : reason);
    this.answerable = answerable;
  }
}

/** A message exceeds a configured limit (size, header count, line length). */
export class SipLimitError extends SipError {
  readonly code = 'SIP_ERR_LIMIT';
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** A message could not be handed to the network (RFC 3261 §17.1.4 transport error). */
export class TransportError extends SipError {
  readonly code = 'SIP_ERR_TRANSPORT';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Listening failed (address in use, bad certificate files). */
export class TransportListenError extends SipError {
  readonly code = 'SIP_ERR_LISTEN';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A transaction ended without a final response (Timer B/F) or hit a transport error. */
export class TransactionTimeoutError extends SipError {
  readonly code = 'SIP_ERR_TRANSACTION_TIMEOUT';
  constructor(message: string) {
    super(message);
  }
}
