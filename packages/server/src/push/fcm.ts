/**
 * FCM HTTP v1 provider over fetch: service-account RS256 JWT (jose) exchanged for an OAuth2
 * access token (cached until 60 s before expiry, single-flight), data-only high-priority
 * messages, errors mapped by `details[].errorCode`. Facts: push-protocols.md §2.
 */

import { createPrivateKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { PushConfigError, PushKeyError } from './errors.js';
import { makeEmitter } from './events.js';
import type { Emit, PushHooks, PushLogger } from './events.js';
import { encodeFcmData, encodeRefresh } from './payload.js';
import type { EncodeResult, PushPayload, RefreshPayload } from './payload.js';
import { redactToken, systemClock } from './types.js';
import type { Clock, PushBinding, PushErrorCode, PushFailure, PushOutcome, PushProvider, SendOptions } from './types.js';

export const FCM_ENDPOINT = 'https://fcm.googleapis.com';
export const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';
export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
const FCM_ERROR_TYPE = 'type.googleapis.com/google.firebase.fcm.v1.FcmError';

export interface FcmServiceAccount {
  client_email: string;
  private_key: string;
  project_id: string;
  token_uri?: string;
  private_key_id?: string;
}

export interface FcmProviderOptions {
  serviceAccount: FcmServiceAccount;
  /** Default https://fcm.googleapis.com */
  endpoint?: string;
  /** Overrides the service account's token_uri. */
  tokenUri?: string;
  /** Default per-push deadline (5000 ms). */
  requestTimeoutMs?: number;
  /** Fail-fast window after QUOTA_EXCEEDED without Retry-After (default 60 s, FCM's minimum). */
  quotaBackoffMs?: number;
  clock?: Clock;
  hooks?: PushHooks;
  logger?: PushLogger;
  fetch?: typeof fetch;
}

interface AccessToken {
  token: string;
  expiresAt: number;
}

type FetchResult = { ok: true; res: Response; text: string } | { ok: false; timeout: boolean; error: string };

export class FcmProvider implements PushProvider {
  readonly name = 'fcm';
  private readonly opts: FcmProviderOptions;
  private readonly clock: Clock;
  private readonly emit: Emit;
  private readonly key: KeyObject;
  private readonly fetchFn: typeof fetch;
  private readonly endpoint: string;
  private readonly tokenUri: string;
  private access?: AccessToken;
  private fetching?: Promise<AccessToken>;
  private generation = 0;
  private readonly tokenBackoff = new Map<string, number>();
  private readonly projectBackoff = new Map<string, number>();
  private closed = false;
  /** OAuth token requests made (for tests/metrics). */
  tokenRequests = 0;

  constructor(opts: FcmProviderOptions) {
    const sa = opts.serviceAccount;
    if (!sa?.client_email || !sa.private_key || !sa.project_id) throw new PushConfigError('FCM service account needs client_email, private_key and project_id');
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.emit = makeEmitter(opts.hooks, opts.logger);
    this.fetchFn = opts.fetch ?? fetch;
    this.endpoint = (opts.endpoint ?? FCM_ENDPOINT).replace(/\/$/, '');
    this.tokenUri = opts.tokenUri ?? sa.token_uri ?? GOOGLE_TOKEN_URI;
    try {
      this.key = createPrivateKey(sa.private_key);
    } catch (e) {
      throw new PushKeyError('cannot read the FCM service account private_key', { cause: e });
    }
  }

  sendCall(binding: PushBinding, payload: PushPayload, opts?: SendOptions): Promise<PushOutcome> {
    return this.send(binding, encodeFcmData(payload), payload.ttl, 'HIGH', opts);
  }

  /**
   * Alerts: answered/declined elsewhere must stop ringing now, and a message push wakes the
   * app to fetch the held SIP MESSAGE (RFC 8599 §5.6.2): HIGH. A missed-call notice: NORMAL.
   */
  sendAlert(binding: PushBinding, payload: PushPayload, opts?: SendOptions): Promise<PushOutcome> {
    const urgent = payload.type !== 'missed_call';
    return this.send(binding, encodeFcmData(payload), payload.ttl, urgent ? 'HIGH' : 'NORMAL', opts);
  }

  /**
   * Refresh (RFC 8599 §5.5): HIGH, because a NORMAL message waits for a Doze maintenance
   * window, which can come after the binding has expired. It is one message per binding
   * lifetime, so it stays far from FCM's deprioritisation of frequent silent HIGH messages.
   */
  sendRefresh(binding: PushBinding, payload: RefreshPayload, opts?: SendOptions): Promise<PushOutcome> {
    return this.send(binding, encodeRefresh(payload, 'fcm'), payload.ttl, 'HIGH', opts);
  }

  /** The cached access token, minting and exchanging a JWT when needed. */
  async accessToken(): Promise<AccessToken> {
    const a = this.access;
    if (a && this.clock.now() < a.expiresAt - 60_000) return a;
    // A refused exchange (a revoked key, a wrong clock) is remembered for a while, doubling
    // up to 5 min: every push would otherwise sign a JWT and ask Google again.
    const refused = this.oauthRefused;
    if (refused && this.clock.now() < refused.until) throw refused.error;
    this.fetching ??= this.fetchAccessToken()
      .then(
        (token) => {
          this.oauthRefused = undefined;
          return token;
        },
        (error: unknown) => {
          if (error instanceof OAuthError) {
            const backoffMs = Math.min(300_000, (this.oauthRefused?.backoffMs ?? 2_500) * 2);
            this.oauthRefused = { error, until: this.clock.now() + backoffMs, backoffMs };
          }
          throw error;
        },
      )
      .finally(() => {
        this.fetching = undefined;
      });
    return this.fetching;
  }

  /** The last refused token exchange and until when it stands (see accessToken). */
  private oauthRefused: { error: OAuthError; until: number; backoffMs: number } | undefined = undefined;

  private invalidateAccessToken(token: string): void {
    if (this.access?.token === token) this.access = undefined;
  }

  private async fetchAccessToken(): Promise<AccessToken> {
    const sa = this.opts.serviceAccount;
    const iat = Math.floor(this.clock.now() / 1000);
    const header: { alg: 'RS256'; typ: 'JWT'; kid?: string } = { alg: 'RS256', typ: 'JWT' };
    if (sa.private_key_id) header.kid = sa.private_key_id;
    const assertion = await new SignJWT({ scope: FCM_SCOPE })
      .setProtectedHeader(header)
      .setIssuer(sa.client_email)
      .setAudience(this.tokenUri)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 3600)
      .sign(this.key);
    this.tokenRequests++;
    const res = await this.fetchFn(this.tokenUri, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString(),
      signal: AbortSignal.timeout(this.opts.requestTimeoutMs ?? 5000),
    });
    const text = await res.text();
    let j: { access_token?: string; expires_in?: number; error?: string; error_description?: string } = {};
    try {
      j = JSON.parse(text) as typeof j;
    } catch {
      /* non-JSON */
    }
    if (!res.ok || !j.access_token) {
      throw new OAuthError(res.status, j.error ?? `HTTP ${res.status}`, j.error_description ?? text.slice(0, 200));
    }
    const t = { token: j.access_token, expiresAt: this.clock.now() + (j.expires_in ?? 3600) * 1000 };
    this.access = t;
    this.emit({ type: 'token_minted', provider: 'fcm', generation: ++this.generation, issuedAt: this.clock.now(), token: redactToken(t.token) });
    return t;
  }

  private async post(url: string, body: string, bearer: string, remainingMs: number): Promise<FetchResult> {
    try {
      const res = await this.fetchFn(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json; charset=UTF-8' },
        body,
        signal: AbortSignal.timeout(Math.max(1, Math.ceil(remainingMs))),
      });
      const text = await res.text();
      return { ok: true, res, text };
    } catch (e) {
      const err = e as Error;
      const timeout = err.name === 'TimeoutError' || err.name === 'AbortError';
      return { ok: false, timeout, error: err.message };
    }
  }

  private async send(
    binding: PushBinding,
    enc: EncodeResult<Record<string, string>, unknown>,
    ttlSeconds: number,
    priority: 'HIGH' | 'NORMAL',
    opts?: SendOptions,
  ): Promise<PushOutcome> {
    const t0 = this.clock.monotonic();
    const latency = () => this.clock.monotonic() - t0;
    const fail = (error: PushErrorCode, reason: string, extra: Partial<PushFailure> = {}): PushFailure => ({
      ok: false, provider: 'fcm', error, reason, removeBinding: false, latencyMs: latency(), ...extra,
    });
    if (this.closed) return fail('PUSH_CLOSED', 'provider closed');
    const project = binding.param || this.opts.serviceAccount.project_id;
    const token = binding.prid;
    const now = this.clock.now();
    const tb = this.tokenBackoff.get(token);
    if (tb !== undefined && tb > now) return fail('PUSH_BACKOFF', 'QUOTA_EXCEEDED', { retryAfterMs: tb - now });
    const pb = this.projectBackoff.get(project);
    if (pb !== undefined && pb > now) return fail('PUSH_BACKOFF', 'UNAVAILABLE', { retryAfterMs: pb - now });
    if (!enc.ok) return fail('PUSH_PAYLOAD_TOO_LARGE', `data ${enc.bytes} bytes > ${enc.limit}`);
    const ttl = Math.max(0, Math.round(ttlSeconds));
    const body = JSON.stringify({ message: { token, data: enc.value, android: { priority, ttl: `${ttl}s` } } });
    const url = `${this.endpoint}/v1/projects/${encodeURIComponent(project)}/messages:send`;
    const deadlineAt = t0 + (opts?.deadlineMs ?? this.opts.requestTimeoutMs ?? 5000);
    const redacted = redactToken(token);

    let refreshed = false;
    let quickRetry = true;
    for (let attempt = 1; ; attempt++) {
      let access: AccessToken;
      try {
        access = await this.accessToken();
      } catch (e) {
        if (e instanceof OAuthError) return fail('PUSH_PROVIDER_AUTH', `${e.error}: ${e.description}`, { status: e.status });
        const err = e as Error;
        if (err.name === 'TimeoutError') return fail('PUSH_TIMEOUT', 'OAuth token request timed out');
        return fail('PUSH_UNAVAILABLE', `OAuth token request failed: ${err.message}`);
      }
      const remaining = deadlineAt - this.clock.monotonic();
      if (remaining <= 0) return fail('PUSH_TIMEOUT', 'deadline exceeded');
      this.emit({ type: 'request', provider: 'fcm', token: redacted, attempt });
      const sentAt = this.clock.monotonic();
      const r = await this.post(url, body, access.token, remaining);
      if (!r.ok) {
        if (r.timeout) return fail('PUSH_TIMEOUT', 'deadline exceeded');
        if (quickRetry && deadlineAt - this.clock.monotonic() > 0) {
          quickRetry = false;
          this.emit({ type: 'retry', provider: 'fcm', token: redacted, cause: 'connection' });
          continue;
        }
        return fail('PUSH_UNAVAILABLE', r.error);
      }
      const status = r.res.status;
      const j = parseFcmBody(r.text);
      const errorCode = j.errorCode;
      const reason = errorCode ?? j.status ?? `HTTP ${status}`;
      this.emit({ type: 'response', provider: 'fcm', token: redacted, id: j.name, status, reason: status === 200 ? undefined : reason, latencyMs: this.clock.monotonic() - sentAt, attempt });
      if (status === 200) return { ok: true, provider: 'fcm', id: j.name, status, latencyMs: latency() };

      if (status === 401 && !errorCode) {
        // Stale OAuth token: refresh once.
        this.invalidateAccessToken(access.token);
        if (!refreshed) {
          refreshed = true;
          this.emit({ type: 'retry', provider: 'fcm', token: redacted, cause: 'oauth_token' });
          continue;
        }
        return fail('PUSH_PROVIDER_AUTH', reason, { status });
      }
      const retryAfterMs = parseRetryAfter(r.res.headers.get('retry-after'), this.clock.now());
      switch (errorCode) {
        case 'UNREGISTERED':
          return fail('PUSH_UNREGISTERED', errorCode, { status, removeBinding: true });
        case 'INVALID_ARGUMENT': {
          const msg = j.message ?? '';
          if (/registration token/i.test(msg)) return fail('PUSH_BAD_TOKEN', `${errorCode}: ${msg}`, { status, removeBinding: true });
          if (/too big|too large/i.test(msg)) return fail('PUSH_PAYLOAD_TOO_LARGE', `${errorCode}: ${msg}`, { status });
          return fail('PUSH_BAD_REQUEST', `${errorCode}: ${msg}`, { status });
        }
        case 'SENDER_ID_MISMATCH':
          return fail('PUSH_SENDER_ID_MISMATCH', errorCode, { status });
        case 'THIRD_PARTY_AUTH_ERROR':
          return fail('PUSH_PROVIDER_AUTH', errorCode, { status });
        case 'QUOTA_EXCEEDED': {
          const ms = retryAfterMs ?? this.opts.quotaBackoffMs ?? 60_000;
          const until = this.clock.now() + ms;
          this.tokenBackoff.set(token, until);
          this.pruneBackoff();
          this.emit({ type: 'backoff', provider: 'fcm', token: redacted, untilMs: until, reason: errorCode });
          return fail('PUSH_RATE_LIMITED', errorCode, { status, retryAfterMs: ms });
        }
      }
      if (status >= 500 || errorCode === 'UNAVAILABLE' || errorCode === 'INTERNAL') {
        const left = deadlineAt - this.clock.monotonic();
        const wait = retryAfterMs ?? 0;
        if (quickRetry && wait < left) {
          quickRetry = false;
          this.emit({ type: 'retry', provider: 'fcm', token: redacted, cause: 'server_error' });
          if (wait > 0) await new Promise((res) => this.clock.setTimeout(() => res(undefined), wait));
          continue;
        }
        if (retryAfterMs !== undefined) {
          const until = this.clock.now() + retryAfterMs;
          this.projectBackoff.set(project, until);
          this.emit({ type: 'backoff', provider: 'fcm', token: redacted, untilMs: until, reason });
        }
        return fail('PUSH_UNAVAILABLE', reason, { status, retryAfterMs });
      }
      if (status === 403) return fail('PUSH_PROVIDER_AUTH', `${reason}: ${j.message ?? ''}`.trim(), { status });
      if (status === 404) return fail('PUSH_BAD_REQUEST', `${reason}: ${j.message ?? 'not found'}`, { status });
      if (status === 429) return fail('PUSH_RATE_LIMITED', reason, { status, retryAfterMs });
      return fail('PUSH_BAD_REQUEST', reason, { status });
    }
  }

  private pruneBackoff(): void {
    if (this.tokenBackoff.size < 10_000) return;
    const now = this.clock.now();
    for (const [k, v] of this.tokenBackoff) if (v <= now) this.tokenBackoff.delete(k);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description: string,
  ) {
    super(`${error}: ${description}`);
  }
}

/** Retry-After: delta-seconds or an HTTP-date. */
export function parseRetryAfter(v: string | null | undefined, nowMs: number): number | undefined {
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - nowMs);
}

/**
 * The fields pushcall reads from an FCM response body, type-checked: a body that is not what
 * FCM documents (null, an array, `details` that is not a list) is read as absent, never
 * thrown on. A 200 whose body is unreadable is still a delivered message.
 */
function parseFcmBody(text: string): { name?: string; status?: string; message?: string; errorCode?: string } {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof j !== 'object' || j === null) return {};
  const body = j as { name?: unknown; error?: unknown };
  const out: { name?: string; status?: string; message?: string; errorCode?: string } = {};
  if (typeof body.name === 'string') out.name = body.name;
  if (typeof body.error === 'object' && body.error !== null) {
    const error = body.error as { status?: unknown; message?: unknown; details?: unknown };
    if (typeof error.status === 'string') out.status = error.status;
    if (typeof error.message === 'string') out.message = error.message;
    if (Array.isArray(error.details)) {
      for (const d of error.details as unknown[]) {
        if (typeof d !== 'object' || d === null) continue;
        const detail = d as { '@type'?: unknown; errorCode?: unknown };
        if (detail['@type'] === FCM_ERROR_TYPE && typeof detail.errorCode === 'string') {
          out.errorCode = detail.errorCode;
          break;
        }
      }
    }
  }
  return out;
}
