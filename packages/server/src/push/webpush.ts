/**
 * Web Push (RFC 8030 / 8291 / 8292) as RFC 8599's `webpush` provider. VAPID signing and
 * aes128gcm encryption come from the `web-push` package (generateRequestDetails); the
 * request itself goes over fetch so it has the call's deadline (and works with http:// test
 * endpoints).
 *
 * The binding: pn-prid = the push-subscription endpoint URI (percent-decoded if escaped).
 * RFC 8599 carries no encryption keys, so by default the push is payload-less (the app's
 * service worker fetches the call details); when pn-param carries `<p256dh>.<auth>`
 * (base64url, joined by '.'), the JSON `{"pushcall": payload}` is encrypted and sent.
 */

import webpush from 'web-push';
import { PushConfigError } from './errors.js';
import { makeEmitter } from './events.js';
import type { Emit, PushHooks, PushLogger } from './events.js';
import { encodeJson, encodeRefresh } from './payload.js';
import type { EncodeResult, PushPayload, RefreshPayload } from './payload.js';
import { parseRetryAfter } from './fcm.js';
import { redactToken, systemClock } from './types.js';
import type { Clock, PushBinding, PushErrorCode, PushFailure, PushOutcome, PushProvider, SendOptions } from './types.js';

export interface WebPushProviderOptions {
  vapidPublicKey: string;
  vapidPrivateKey: string;
  /** mailto: or https: contact (VAPID `sub`). */
  subject: string;
  requestTimeoutMs?: number;
  /**
   * Hosts a push subscription may point at: names, or `*.suffix` for a domain's subdomains.
   * A pn-prid is whatever the registering UA wrote, so without this anyone who can register
   * could make pushcall POST to hosts on its own network on every call. Default: the
   * browsers' push services (DEFAULT_WEB_PUSH_HOSTS).
   */
  allowedHosts?: readonly string[];
  clock?: Clock;
  hooks?: PushHooks;
  logger?: PushLogger;
  fetch?: typeof fetch;
}

/** The push services of Chrome (FCM), Firefox (autopush), Safari and Edge (WNS). */
export const DEFAULT_WEB_PUSH_HOSTS: readonly string[] = ['fcm.googleapis.com', '*.push.services.mozilla.com', '*.push.apple.com', '*.notify.windows.com'];

/** True when `endpoint`'s host is one of `allowed` (exact, or under a `*.` suffix). */
export function webPushHostAllowed(endpoint: string, allowed: readonly string[]): boolean {
  let host: string;
  try {
    host = new URL(endpoint).hostname.toLowerCase().replace(/^\[|\]$/g, '');
  } catch {
    return false;
  }
  return allowed.some((pattern) => {
    const p = pattern.toLowerCase();
    return p.startsWith('*.') ? host.endsWith(p.slice(1)) && host.length > p.length - 1 : host === p;
  });
}

/** Split pn-param `p256dh.auth` (base64url) into subscription keys. */
export function parseWebPushKeys(param: string | undefined): { p256dh: string; auth: string } | undefined {
  if (!param) return undefined;
  const parts = param.split('.');
  if (parts.length !== 2 || !parts.every((p) => /^[A-Za-z0-9_-]+={0,2}$/.test(p))) return undefined;
  return { p256dh: parts[0], auth: parts[1] };
}

export function webPushEndpoint(prid: string): string {
  if (/^https?:\/\//i.test(prid)) return prid;
  try {
    return decodeURIComponent(prid);
  } catch {
    return prid;
  }
}

export class WebPushProvider implements PushProvider {
  readonly name = 'webpush';
  private readonly opts: WebPushProviderOptions;
  private readonly clock: Clock;
  private readonly emit: Emit;
  private readonly fetchFn: typeof fetch;
  private closed = false;

  /** RFC 8599 §5.4: advertised as `+sip.vapid`, so a UA can restrict its subscription to us. */
  get vapidPublicKey(): string {
    return this.opts.vapidPublicKey;
  }

  constructor(opts: WebPushProviderOptions) {
    if (!opts.vapidPublicKey || !opts.vapidPrivateKey || !opts.subject) throw new PushConfigError('webpush needs vapidPublicKey, vapidPrivateKey and subject');
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.emit = makeEmitter(opts.hooks, opts.logger);
    this.fetchFn = opts.fetch ?? fetch;
  }

  sendCall(binding: PushBinding, payload: PushPayload, opts?: SendOptions): Promise<PushOutcome> {
    return this.send(binding, () => encodeJson(payload), payload.ttl, 'high', opts);
  }

  sendAlert(binding: PushBinding, payload: PushPayload, opts?: SendOptions): Promise<PushOutcome> {
    const urgent = payload.type === 'answered_elsewhere' || payload.type === 'declined_elsewhere' || payload.type === 'call';
    return this.send(binding, () => encodeJson(payload), payload.ttl, urgent ? 'high' : 'normal', opts);
  }

  /** Refresh (RFC 8599 §5.5): `Urgency: normal`, kept by the push service until the binding expires. */
  sendRefresh(binding: PushBinding, payload: RefreshPayload, opts?: SendOptions): Promise<PushOutcome> {
    return this.send(binding, () => encodeRefresh(payload, 'json'), payload.ttl, 'normal', opts);
  }

  private async send(
    binding: PushBinding,
    encode: () => EncodeResult<string, unknown>,
    ttlSeconds: number,
    urgency: 'high' | 'normal',
    opts?: SendOptions,
  ): Promise<PushOutcome> {
    const t0 = this.clock.monotonic();
    const latency = () => this.clock.monotonic() - t0;
    const fail = (error: PushErrorCode, reason: string, extra: Partial<PushFailure> = {}): PushFailure => ({
      ok: false, provider: 'webpush', error, reason, removeBinding: false, latencyMs: latency(), ...extra,
    });
    if (this.closed) return fail('PUSH_CLOSED', 'provider closed');
    const endpoint = webPushEndpoint(binding.prid);
    if (!webPushHostAllowed(endpoint, this.opts.allowedHosts ?? DEFAULT_WEB_PUSH_HOSTS)) {
      return fail('PUSH_BAD_REQUEST', 'push subscription host not allowed (push.webpush.allowedHosts)');
    }
    const keys = parseWebPushKeys(binding.param);
    let body: string | null = null;
    if (keys) {
      const enc = encode();
      if (!enc.ok) return fail('PUSH_PAYLOAD_TOO_LARGE', `payload ${enc.bytes} bytes > ${enc.limit}`);
      body = enc.value;
    }
    let details: ReturnType<typeof webpush.generateRequestDetails>;
    try {
      details = webpush.generateRequestDetails({ endpoint, keys: keys ?? { p256dh: '', auth: '' } }, body ?? undefined, {
        TTL: Math.max(0, Math.round(ttlSeconds)),
        urgency,
        contentEncoding: 'aes128gcm',
        vapidDetails: { subject: this.opts.subject, publicKey: this.opts.vapidPublicKey, privateKey: this.opts.vapidPrivateKey },
      });
    } catch (e) {
      return fail('PUSH_BAD_REQUEST', (e as Error).message);
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(details.headers)) {
      if (k.toLowerCase() === 'content-length') continue;
      headers[k] = String(v);
    }
    const deadlineAt = t0 + (opts?.deadlineMs ?? this.opts.requestTimeoutMs ?? 5000);
    const redacted = redactToken(endpoint);
    let quickRetry = true;
    for (let attempt = 1; ; attempt++) {
      const remaining = deadlineAt - this.clock.monotonic();
      if (remaining <= 0) return fail('PUSH_TIMEOUT', 'deadline exceeded');
      this.emit({ type: 'request', provider: 'webpush', token: redacted, attempt });
      let res: Response;
      try {
        res = await this.fetchFn(details.endpoint, {
          method: 'POST',
          headers,
          body: details.body ?? undefined,
          signal: AbortSignal.timeout(Math.max(1, Math.ceil(remaining))),
        });
        await res.arrayBuffer().catch(() => undefined);
      } catch (e) {
        const err = e as Error;
        if (err.name === 'TimeoutError' || err.name === 'AbortError') return fail('PUSH_TIMEOUT', 'deadline exceeded');
        if (quickRetry) {
          quickRetry = false;
          this.emit({ type: 'retry', provider: 'webpush', token: redacted, cause: 'connection' });
          continue;
        }
        return fail('PUSH_UNAVAILABLE', err.message);
      }
      const status = res.status;
      this.emit({ type: 'response', provider: 'webpush', token: redacted, status, latencyMs: latency(), attempt });
      if (status >= 200 && status < 300) return { ok: true, provider: 'webpush', id: res.headers.get('location') ?? undefined, status, latencyMs: latency() };
      const reason = `HTTP ${status}`;
      if (status === 404 || status === 410) return fail('PUSH_UNREGISTERED', reason, { status, removeBinding: true });
      if (status === 413) return fail('PUSH_PAYLOAD_TOO_LARGE', reason, { status });
      if (status === 429) return fail('PUSH_RATE_LIMITED', reason, { status, retryAfterMs: parseRetryAfter(res.headers.get('retry-after'), this.clock.now()) });
      if (status === 401 || status === 403) return fail('PUSH_PROVIDER_AUTH', reason, { status });
      if (status >= 500 && quickRetry) {
        quickRetry = false;
        this.emit({ type: 'retry', provider: 'webpush', token: redacted, cause: 'server_error' });
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
