/**
 * Typed errors of the client SDK, with stable codes (`CLIENT_ERR_*`). Codes are listed in
 * docs/client-sdk.md; a retired code is never reused.
 *
 * `isClientError` uses a Symbol.for brand so the check survives two copies of the package
 * (an app bundling the SDK twice, or a test importing src and dist).
 */

const BRAND = Symbol.for('pushcall.client.error');

export type ClientErrorCode =
  | 'CLIENT_ERR_ILLEGAL_TRANSITION'
  | 'CLIENT_ERR_UNKNOWN_CALL'
  | 'CLIENT_ERR_INVALID_PAYLOAD'
  | 'CLIENT_ERR_REPORT_FAILED'
  | 'CLIENT_ERR_SIP'
  | 'CLIENT_ERR_ACTION'
  | 'CLIENT_ERR_HANDLER';

export abstract class ClientError extends Error {
  abstract readonly code: ClientErrorCode;
  readonly [BRAND] = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export function isClientError(value: unknown): value is ClientError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

/**
 * A call's state machine was asked to move along an edge that is not in its allow-list.
 * Thrown only when the coordinator runs with `strict: true` (development and tests); in
 * production it is reported on the `events` observer and the transition is ignored.
 */
export class IllegalTransitionError extends ClientError {
  readonly code = 'CLIENT_ERR_ILLEGAL_TRANSITION';
  constructor(
    readonly uuid: string,
    readonly from: string,
    readonly to: string,
    readonly trigger: string,
  ) {
    super(`call ${uuid}: illegal transition ${from} -> ${to} (${trigger})`);
  }
}

/** An action or request named a call the coordinator does not know. */
export class UnknownCallError extends ClientError {
  readonly code = 'CLIENT_ERR_UNKNOWN_CALL';
  constructor(readonly uuid: string, readonly what: string) {
    super(`${what}: unknown call ${uuid}`);
  }
}

/** A push payload could not be decoded. Never thrown by the decoder; carried in events. */
export class InvalidPayloadError extends ClientError {
  readonly code = 'CLIENT_ERR_INVALID_PAYLOAD';
  constructor(readonly reason: string) {
    super(`invalid push payload: ${reason}`);
  }
}

/** The system call UI refused to show a call (do-not-disturb, block list, unentitled...). */
export class ReportFailedError extends ClientError {
  readonly code = 'CLIENT_ERR_REPORT_FAILED';
  constructor(readonly uuid: string, readonly reason: string) {
    super(`call ${uuid}: the call UI refused the report (${reason})`);
  }
}

/** A SIP port call threw, or the SIP side reported a failure for a call. */
export class SipPortError extends ClientError {
  readonly code = 'CLIENT_ERR_SIP';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** An action was failed or timed out (answer never completed, start refused). */
export class ActionError extends ClientError {
  readonly code = 'CLIENT_ERR_ACTION';
  constructor(readonly uuid: string, readonly kind: string, readonly reason: string) {
    super(`call ${uuid}: ${kind} action failed (${reason})`);
  }
}

/** An app-supplied listener threw; the coordinator caught it and went on. */
export class HandlerError extends ClientError {
  readonly code = 'CLIENT_ERR_HANDLER';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Every code, for docs tests. */
export const CLIENT_ERROR_CODES: readonly ClientErrorCode[] = [
  'CLIENT_ERR_ILLEGAL_TRANSITION',
  'CLIENT_ERR_UNKNOWN_CALL',
  'CLIENT_ERR_INVALID_PAYLOAD',
  'CLIENT_ERR_REPORT_FAILED',
  'CLIENT_ERR_SIP',
  'CLIENT_ERR_ACTION',
  'CLIENT_ERR_HANDLER',
];
