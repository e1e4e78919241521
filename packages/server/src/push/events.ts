/**
 * Observable push-gateway events (typed hooks) and a pino-compatible logger interface.
 * Every token / secret in an event is already redacted (redactToken).
 */

import type { ApnsEnvironment } from './types.js';

export type PushEvent =
  | { type: 'session_open'; provider: 'apns'; environment: ApnsEnvironment; sessionId: number; authority: string }
  /** reason: 'drained', 'closed', or 'error: …' (TLS failure, no HTTP/2, protocol error). */
  | { type: 'session_close'; provider: 'apns'; environment: ApnsEnvironment; sessionId: number; reason: string }
  | { type: 'goaway'; provider: 'apns'; environment: ApnsEnvironment; sessionId: number; errorCode: number; lastStreamId: number; reason?: string }
  | { type: 'ping_failed'; provider: 'apns'; environment: ApnsEnvironment; sessionId: number; error: string }
  | { type: 'token_minted'; provider: 'apns' | 'fcm'; generation: number; issuedAt: number; token: string }
  | { type: 'token_pinned'; provider: 'apns'; sessionId: number; generation: number }
  /** APNs called a token minted minutes ago expired: the clock is off; nothing is re-minted. */
  | { type: 'token_rejected_young'; provider: 'apns'; generation: number; reason: string }
  | { type: 'request'; provider: string; token: string; id?: string; attempt: number; environment?: ApnsEnvironment; sessionId?: number }
  | { type: 'response'; provider: string; token: string; id?: string; status: number; reason?: string; latencyMs: number; attempt: number; environment?: ApnsEnvironment; sessionId?: number }
  | { type: 'retry'; provider: string; token: string; id?: string; cause: 'unprocessed' | 'connection' | 'server_error' | 'provider_token' | 'oauth_token' }
  | { type: 'backoff'; provider: string; token: string; untilMs: number; reason: string }
  | { type: 'environment_mismatch'; provider: 'apns'; token: string; bindingEnvironment: ApnsEnvironment; actualEnvironment: ApnsEnvironment }
  | { type: 'outcome'; provider: string; token: string; ok: boolean; code: string; latencyMs: number };

export type PushEventType = PushEvent['type'];

/** Typed hooks: one optional callback per event type, plus `any` for all. */
export type PushHooks = { [K in PushEventType]?: (e: Extract<PushEvent, { type: K }>) => void } & {
  any?: (e: PushEvent) => void;
};

/** Subset of pino's API the gateway uses. */
export interface PushLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const WARN_TYPES = new Set<PushEventType>(['goaway', 'ping_failed', 'backoff', 'environment_mismatch', 'token_rejected_young']);

export type Emit = (e: PushEvent) => void;

/** Build an emitter that calls hooks (exceptions swallowed) and logs (tokens pre-redacted). */
export function makeEmitter(hooks?: PushHooks, logger?: PushLogger): Emit {
  return (e) => {
    if (hooks) {
      const h = hooks[e.type] as ((ev: PushEvent) => void) | undefined;
      try {
        h?.(e);
        hooks.any?.(e);
      } catch {
        /* hooks must not break sending */
      }
    }
    if (logger) {
      const warn = WARN_TYPES.has(e.type) || (e.type === 'outcome' && !e.ok) || (e.type === 'session_close' && e.reason.startsWith('error'));
      if (warn) logger.warn(e, `push ${e.type}`);
      else logger.debug(e, `push ${e.type}`);
    }
  };
}
