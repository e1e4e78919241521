/**
 * Webhook provider: for teams that run their own push service. POSTs JSON
 * `{"binding": PushBinding, "kind": "call"|"alert"|"refresh", "payload": {"pushcall": <payload>}}`
 * (`payload` is exactly what the device should receive) with
 *   X-Pushcall-Timestamp: <unix seconds>
 *   X-Pushcall-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>
 *   X-Pushcall-Signature-Timestamped: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
 *     (the timestamp signed too, so that a receiver can refuse a replayed request: see
 *     verifyWebhookRequest)
 * 2xx = accepted (optional JSON `{"id": ...}` is reported); 404/410 = the token is gone;
 * 429 = rate limited (Retry-After); 5xx / network failure = one quick retry in the deadline.
 */

import { createHmac } from 'node:crypto';
import { sameSecret } from '../util/secure-compare.js';
import { PushConfigError } from './errors.js';
import { makeEmitter } from './events.js';
import type { Emit, PushHooks, PushLogger } from './events.js';
import { encodeJson, encodeRefresh, PAYLOAD_LIMITS } from './payload.js';
import type { EncodeResult, PushPayload, RefreshPayload } from './payload.js';
import { parseRetryAfter } from './fcm.js';
import { redactToken, systemClock } from './types.js';
import type { Clock, PushBinding, PushErrorCode, PushFailure, PushOutcome, PushProvider, SendOptions } from './types.js';

export interface WebhookConfig {
  url: string;
  secret: string;
  requestTimeoutMs?: number;
}

export interface WebhookProviderOptions extends WebhookConfig {
  clock?: Clock;
  hooks?: PushHooks;
  logger?: PushLogger;
  fetch?: typeof fetch;
}

export function signWebhookBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** The timestamped signature: the timestamp header is covered too. */
export function signWebhookRequest(secret: string, timestamp: string, body: string): string {
  return signWebhookBody(secret, `${timestamp}.${body}`);
}

/**
 * For receivers: X-Pushcall-Signature-Timestamped checked in constant time, and the request
 * refused when its X-Pushcall-Timestamp is more than `toleranceSeconds` (default 300) from
 * `nowSeconds`: a captured request cannot be replayed later.
 */
export function verifyWebhookRequest(
  secret: string,
  body: string,
  timestamp: string | undefined | null,
  signature: string | undefined | null,
  options: { toleranceSeconds?: number; nowSeconds?: number } = {},
): boolean {
  if (!timestamp || !signature || !/^\d{1,12}$/.test(timestamp)) return false;
  const now = options.nowSeconds ?? Date.now() / 1000;
  if (Math.abs(now - Number(timestamp)) > (options.toleranceSeconds ?? 300)) return false;
  return sameSecret(signWebhookRequest(secret, timestamp, body), signature);
}

/** For receivers: constant-time check of X-Pushcall-Signature against the raw body. */
export function verifyWebhookSignature(secret: string, body: string, signature: string | undefined | null): boolean {
  if (!signature) return false;
  return sameSecret(signWebhookBody(secret, body), signature);
}


export class WebhookProvider implements PushProvider {
  private readonly opts: WebhookProviderOptions;
  private readonly clock: Clock;
  private readonly emit: Emit;
  private readonly fetchFn: typeof fetch;
  private closed = false;

  constructor(
    readonly name: string,
    opts: WebhookProviderOptions,
  ) {
    if (!opts.url || !opts.secret) throw new PushConfigError(`webhook ${name} needs url and secret`);
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.emit = makeEmitter(opts.hooks, opts.logger);
    this.fetchFn = opts.fetch ?? fetch;
  }

  sendCall(binding: PushBinding, payload: PushPayload, opts?: SendOptions): Promise<PushOutcome> {
    return this.send(binding, encodeJson(payload, PAYLOAD_LIMITS.webhook), 'call', opts);
  }

  sendAlert(binding: PushBinding, payload: PushPayload, opts?: SendOptions): Promise<PushOutcome> {
    return this.send(binding, encodeJson(payload, PAYLOAD_LIMITS.webhook), 'alert', opts);
  }

  sendRefresh(binding: PushBinding, payload: RefreshPayload, opts?: SendOptions): Promise<PushOutcome> {
    return this.send(binding, encodeRefresh(payload, 'json', PAYLOAD_LIMITS.webhook), 'refresh', opts);
  }

  private async send(binding: PushBinding, enc: EncodeResult<string, unknown>, kind: 'call' | 'alert' | 'refresh', opts?: SendOptions): Promise<PushOutcome> {
    const t0 = this.clock.monotonic();
    const latency = () => this.clock.monotonic() - t0;
    const fail = (error: PushErrorCode, reason: string, extra: Partial<PushFailure> = {}): PushFailure => ({
      ok: false, provider: this.name, error, reason, removeBinding: false, latencyMs: latency(), ...extra,
    });
    if (this.closed) return fail('PUSH_CLOSED', 'provider closed');
    if (!enc.ok) return fail('PUSH_PAYLOAD_TOO_LARGE', `payload ${enc.bytes} bytes > ${enc.limit}`);
    const body = JSON.stringify({ binding, kind, payload: { pushcall: enc.payload } });
    const timestamp = String(Math.floor(this.clock.now() / 1000));
    const headers = {
      'content-type': 'application/json',
      'x-pushcall-timestamp': timestamp,
      'x-pushcall-signature': signWebhookBody(this.opts.secret, body),
      'x-pushcall-signature-timestamped': signWebhookRequest(this.opts.secret, timestamp, body),
    };
    const deadlineAt = t0 + (opts?.deadlineMs ?? this.opts.requestTimeoutMs ?? 5000);
    const redacted = redactToken(binding.prid);
    let quickRetry = true;
    for (let attempt = 1; ; attempt++) {
      const remaining = deadlineAt - this.clock.monotonic();
      if (remaining <= 0) return fail('PUSH_TIMEOUT', 'deadline exceeded');
      this.emit({ type: 'request', provider: this.name, token: redacted, attempt });
      let res: Response;
      let text = '';
      try {
        res = await this.fetchFn(this.opts.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(Math.max(1, Math.ceil(remaining))) });
        text = await res.text();
      } catch (e) {
        const err = e as Error;
        if (err.name === 'TimeoutError' || err.name === 'AbortError') return fail('PUSH_TIMEOUT', 'deadline exceeded');
        if (quickRetry) {
          quickRetry = false;
          this.emit({ type: 'retry', provider: this.name, token: redacted, cause: 'connection' });
          continue;
        }
        return fail('PUSH_UNAVAILABLE', err.message);
      }
      const status = res.status;
      this.emit({ type: 'response', provider: this.name, token: redacted, status, latencyMs: latency(), attempt });
      let reason = `HTTP ${status}`;
      let id: string | undefined;
      try {
        const j = JSON.parse(text) as { id?: unknown; reason?: unknown };
        if (typeof j.id === 'string') id = j.id;
        if (typeof j.reason === 'string') reason = j.reason;
      } catch {
        /* empty or non-JSON */
      }
      if (status >= 200 && status < 300) return { ok: true, provider: this.name, id, status, latencyMs: latency() };
      if (status === 404 || status === 410) return fail('PUSH_UNREGISTERED', reason, { status, removeBinding: true });
      if (status === 413) return fail('PUSH_PAYLOAD_TOO_LARGE', reason, { status });
      if (status === 429) return fail('PUSH_RATE_LIMITED', reason, { status, retryAfterMs: parseRetryAfter(res.headers.get('retry-after'), this.clock.now()) });
      if (status === 401 || status === 403) return fail('PUSH_PROVIDER_AUTH', reason, { status });
      if (status >= 500 && quickRetry) {
        quickRetry = false;
        this.emit({ type: 'retry', provider: this.name, token: redacted, cause: 'server_error' });
        continue;
      }
      if (status >= 500) return fail('PUSH_UNAVAILABLE', reason, { status });
      return fail('PUSH_BAD_REQUEST', reason, { status });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
