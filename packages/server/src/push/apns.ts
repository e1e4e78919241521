/**
 * APNs provider on our own minimal HTTP/2 client (`./h2`, token auth with jose ES256, or TLS
 * client certificates). node:http2's client costs ~60 µs per request here and its per-stream
 * objects outlive V8 scavenges (multi-ms GC pauses at 1,000 pushes/s); see BENCHMARKS.md.
 *
 * Design (shared/reference/push-protocols.md §1, §4):
 *  - A small pool of HTTP/2 sessions per environment. Each session has its own semaphore:
 *    one stream until the first response that proves the provider token valid (token auth),
 *    then min(peer SETTINGS_MAX_CONCURRENT_STREAMS, maxStreamsPerSession).
 *  - One provider token per process, refreshed after `tokenRefreshMs` (default 40 min).
 *    Every session is pinned to one token; a session adopts a newer token only when it has
 *    used its current one for ≥ 21 min, otherwise it drains and a fresh session takes the new
 *    token. No connection ever sees two tokens within 20 minutes.
 *  - GOAWAY: the session drains; streams above lastStreamId (and REFUSED_STREAM) were not
 *    processed and are resent on another session. A stream that may have been processed is
 *    never resent blindly: a connection failure before response headers gets at most one
 *    quick retry inside the deadline (as does a 5xx), nothing else.
 *  - Own PING with a deadline; a failed ping destroys the session.
 *  - Every request has a deadline (the call's budget).
 */

import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';
import { createPrivateKey, randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { PushClosedError, PushConfigError, PushKeyError, PushParamError } from './errors.js';
import { ErrorCode, H2Connection } from './h2/index.js';
import type { H2Stream, H2StreamHandler, HeaderField } from './h2/index.js';
import { makeEmitter } from './events.js';
import type { Emit, PushHooks, PushLogger } from './events.js';
import { encodeApns, encodeRefresh } from './payload.js';
import type { EncodeResult, PushPayload, RefreshPayload } from './payload.js';
import { redactToken, systemClock } from './types.js';
import type { ApnsEnvironment, Clock, PushBinding, PushFailure, PushOutcome, PushProvider, SendOptions, TimerHandle } from './types.js';

export const APNS_ENDPOINTS: Record<ApnsEnvironment, string> = {
  production: 'https://api.push.apple.com',
  sandbox: 'https://api.sandbox.push.apple.com',
};

const TWENTY_ONE_MIN = 21 * 60_000;

export interface ApnsTokenAuth {
  kind: 'token';
  /** The .p8 key (PKCS#8 PEM) or a KeyObject. */
  key: string | KeyObject;
  keyId: string;
  teamId: string;
}

export interface ApnsCertificateAuth {
  kind: 'certificate';
  cert: string | Buffer;
  key: string | Buffer;
  passphrase?: string;
}

export interface ApnsProviderOptions {
  auth: ApnsTokenAuth | ApnsCertificateAuth;
  /** Override per environment (emulators, relays), e.g. https://127.0.0.1:4443. */
  endpoints?: Partial<Record<ApnsEnvironment, string>>;
  /** Extra CA(s) to trust (emulator / relay). */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Sessions per environment (default 2). */
  poolSize?: number;
  /** Local cap on streams per session (default 1000). */
  maxStreamsPerSession?: number;
  /** VoIP apns-expiration = now + this (default 30; 0 = deliver once, don't store). */
  voipExpirationSeconds?: number;
  /** Alert pushes (missed call etc.) expiration = now + this (default 3600). */
  alertExpirationSeconds?: number;
  /** Re-mint the provider token after this age (default 40 min; must be 20–55 min). */
  tokenRefreshMs?: number;
  /** Default per-push deadline (default 5000 ms). */
  requestTimeoutMs?: number;
  /** PING interval (default 60 s; 0 disables) and its deadline (default 5 s). */
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  /** A TLS + HTTP/2 connection that is not up after this long is given up (default 10 s). */
  connectTimeoutMs?: number;
  /**
   * After a session ended without a single response (it could not connect, or APNs sent
   * GOAWAY at once), the next one waits this long, doubling to `maxReconnectDelayMs` (defaults
   * 250 ms and 30 s), so that an outage or a maintenance GOAWAY is not met with a storm of
   * new TLS connections.
   */
  reconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  /** Fail-fast window after 429 TooManyRequests for that token (default 30 s, doubles on repeats, ≤ 5 min). */
  tooManyRequestsBackoffMs?: number;
  /** On BadDeviceToken, try the other environment once (default true). */
  detectEnvironmentMismatch?: boolean;
  clock?: Clock;
  hooks?: PushHooks;
  logger?: PushLogger;
}

/** A raw APNs request (the CLI and tests can use it directly). */
export interface ApnsRequest {
  token: string;
  environment: ApnsEnvironment;
  topic: string;
  pushType: string;
  priority: 1 | 5 | 10;
  /** UNIX seconds; undefined = header omitted. */
  expiration?: number;
  body: string;
  apnsId?: string;
  collapseId?: string;
}

export type ApnsRawResult =
  | { kind: 'response'; status: number; apnsId?: string; uniqueId?: string; reason?: string; timestamp?: number; sessionId: number; generation: number }
  | { kind: 'timeout' }
  | { kind: 'error'; error: string }
  | { kind: 'closed' };

/** Parse pn-param `TEAMID.bundle.voip` (or `bundle.voip` / `bundle`) into team, bundle and topics. */
export function parseApnsParam(param: string | undefined): { teamId?: string; bundleId: string; voipTopic: string; alertTopic: string } {
  if (!param) throw new PushParamError('APNs binding needs pn-param (TEAMID.bundle.voip)');
  let rest = param.trim();
  let teamId: string | undefined;
  const dot = rest.indexOf('.');
  if (dot > 0 && /^[A-Z0-9]{10}$/.test(rest.slice(0, dot))) {
    teamId = rest.slice(0, dot);
    rest = rest.slice(dot + 1);
  }
  const bundleId = rest.endsWith('.voip') ? rest.slice(0, -'.voip'.length) : rest;
  if (!bundleId || !/^[A-Za-z0-9.-]+$/.test(bundleId)) throw new PushParamError(`bad APNs pn-param: ${param}`);
  return { teamId, bundleId, voipTopic: `${bundleId}.voip`, alertTopic: bundleId };
}

/** ExpiredProviderToken for a token younger than this means a clock problem, not an old token. */
const YOUNG_TOKEN_MS = 5 * 60_000;

interface ProviderToken {
  jwt: string;
  generation: number;
  issuedAt: number;
}

/** Mints and caches the ES256 provider token (one per process, generation-guarded). */
export class ApnsTokenMinter {
  private cur?: ProviderToken;
  private stale = false;
  private minting?: Promise<ProviderToken>;
  private generation = 0;
  private readonly key: KeyObject;

  constructor(
    private readonly auth: ApnsTokenAuth,
    private readonly clock: Clock,
    private readonly refreshMs: number,
    private readonly emit: Emit,
  ) {
    try {
      this.key = typeof auth.key === 'string' ? createPrivateKey(auth.key) : auth.key;
    } catch (e) {
      throw new PushKeyError('cannot read the APNs .p8 key', { cause: e });
    }
    if (this.key.asymmetricKeyType !== 'ec') throw new PushKeyError('the APNs key must be an EC P-256 (.p8) key');
  }

  /** The current token if fresh (sync; undefined when a mint is needed). */
  peek(): ProviderToken | undefined {
    if (this.cur && !this.stale && this.clock.now() - this.cur.issuedAt < this.refreshMs) return this.cur;
    return undefined;
  }

  async get(): Promise<ProviderToken> {
    return this.peek() ?? this.mint();
  }

  /**
   * The token of `generation` is the current one and was minted minutes ago: APNs calling it
   * expired means our clock is off, not that the token is old.
   */
  isYoung(generation: number): boolean {
    return this.cur !== undefined && this.cur.generation === generation && this.clock.now() - this.cur.issuedAt < YOUNG_TOKEN_MS;
  }

  /** ExpiredProviderToken seen with `generation`: re-mint unless already done. */
  invalidate(generation: number): void {
    if (this.cur && this.cur.generation === generation) this.stale = true;
  }

  private mint(): Promise<ProviderToken> {
    this.minting ??= (async () => {
      try {
        const issuedAt = this.clock.now();
        const jwt = await new SignJWT({ iss: this.auth.teamId, iat: Math.floor(issuedAt / 1000) })
          .setProtectedHeader({ alg: 'ES256', kid: this.auth.keyId })
          .sign(this.key);
        const t = { jwt, generation: ++this.generation, issuedAt };
        this.cur = t;
        this.stale = false;
        this.emit({ type: 'token_minted', provider: 'apns', generation: t.generation, issuedAt, token: redactToken(jwt) });
        return t;
      } finally {
        this.minting = undefined;
      }
    })();
    return this.minting;
  }
}

interface Waiter {
  resolve: (s: ApnsSession | null) => void;
  timer?: TimerHandle;
  done: boolean;
}

/**
 * One request on one session: the HTTP/2 stream handler, the deadline and the outcome, in one
 * object (no closures per push).
 */
class ApnsExchange implements H2StreamHandler {
  stream: H2Stream | undefined = undefined;
  timer: TimerHandle | undefined = undefined;
  private done = false;
  private status = 0;
  private apnsId: string | undefined = undefined;
  private uniqueId: string | undefined = undefined;
  private body = '';
  private readonly generation: number;
  private readonly t0: number;

  constructor(
    private readonly provider: ApnsProvider,
    private readonly session: ApnsSession,
    private readonly req: ApnsRequest,
    private readonly attempt: number,
    private readonly redacted: string,
    private readonly resolve: (a: Attempt) => void,
  ) {
    this.generation = session.tok?.generation ?? 0;
    this.t0 = provider.clock.monotonic();
  }

  finish(a: Attempt): void {
    if (this.done) return;
    this.done = true;
    this.timer?.cancel();
    this.provider.settled(this.session, this.req, this.attempt, this.redacted, a, this.provider.clock.monotonic() - this.t0);
    this.resolve(a);
  }

  /** The deadline passed: give up on the stream (RST_STREAM CANCEL). */
  expire(): void {
    const answered = this.status !== 0;
    this.finish({ result: { kind: 'timeout' } });
    if (this.stream) this.session.h2.cancel(this.stream.id);
    // Not even response headers: the connection itself may be dead.
    if (!answered) this.session.checkHealth();
  }

  onResponse(status: number, headers: HeaderField[]): void {
    this.status = status;
    for (const [name, value] of headers) {
      if (name === 'apns-id') this.apnsId = value;
      else if (name === 'apns-unique-id') this.uniqueId = value;
    }
  }

  onData(chunk: Buffer): void {
    if (this.body.length < 4096) this.body += chunk.toString('utf8');
  }

  onEnd(): void {
    let reason: string | undefined;
    let timestamp: number | undefined;
    if (this.body) {
      try {
        const j = JSON.parse(this.body) as { reason?: string; timestamp?: number };
        reason = j.reason;
        timestamp = typeof j.timestamp === 'number' ? j.timestamp : undefined;
      } catch {
        reason = this.body.slice(0, 100);
      }
    }
    this.finish({
      result: {
        kind: 'response', status: this.status, reason, timestamp, sessionId: this.session.id, generation: this.generation,
        apnsId: this.apnsId ?? this.req.apnsId, uniqueId: this.uniqueId,
      },
    });
  }

  onClose(code: number, unprocessed: boolean): void {
    if (this.status !== 0) {
      // Headers arrived but the body was cut: the push was processed; report the status.
      this.finish({ result: { kind: 'response', status: this.status, sessionId: this.session.id, generation: this.generation, apnsId: this.req.apnsId } });
      return;
    }
    this.finish({ result: { kind: 'error', error: `stream closed before response (${ERROR_NAMES[code] ?? `code ${code}`})` }, unprocessed });
  }
}

const ERROR_NAMES: Record<number, string> = Object.fromEntries(Object.entries(ErrorCode).map(([k, v]) => [v, k]));

let sessionSeq = 0;

class ApnsSession {
  readonly id = ++sessionSeq;
  readonly h2: H2Connection;
  inFlight = 0;
  authConfirmed: boolean;
  draining = false;
  closed = false;
  tok?: ProviderToken;
  tokFirstUsedAt?: number;
  /** A response came on this session: it connected and APNs served it. */
  responded = false;
  private pingTimer?: TimerHandle;
  private connectTimer?: TimerHandle;
  private healthCheck = false;

  constructor(
    readonly pool: EnvPool,
    private readonly provider: ApnsProvider,
  ) {
    const o = provider.opts;
    this.authConfirmed = o.auth.kind === 'certificate';
    const host = pool.hostname;
    const tls: ConnectionOptions = {
      host,
      port: pool.port,
      servername: isIP(host) ? undefined : host,
      ALPNProtocols: ['h2'],
    };
    if (o.ca) tls.ca = o.ca;
    if (o.auth.kind === 'certificate') {
      tls.cert = o.auth.cert;
      tls.key = o.auth.key;
      if (o.auth.passphrase) tls.passphrase = o.auth.passphrase;
    }
    const socket = tlsConnect(tls);
    // A push is one small request: never let Nagle's algorithm hold it back waiting for an ACK.
    socket.setNoDelay(true);
    this.h2 = new H2Connection(socket);
    // APNs speaks HTTP/2 only; a relay or proxy that negotiated HTTP/1.1 would answer our
    // preface with garbage: say so plainly instead.
    socket.once('secureConnect', () => {
      if (socket.alpnProtocol !== 'h2') {
        this.h2.destroy(new Error(`${pool.url} did not negotiate HTTP/2 (ALPN: ${socket.alpnProtocol || 'none'})`));
      }
    });
    this.h2.on('error', () => {});
    this.h2.on('remoteSettings', () => provider.pump(pool));
    this.h2.on('goaway', (errorCode: number, lastStreamId: number, opaque: Buffer) => {
      let reason: string | undefined;
      try {
        if (opaque.length) reason = (JSON.parse(opaque.toString('utf8')) as { reason?: string }).reason;
      } catch {
        reason = opaque.toString('utf8');
      }
      provider.emit({ type: 'goaway', provider: 'apns', environment: pool.env, sessionId: this.id, errorCode, lastStreamId, reason });
      this.drain('goaway');
    });
    provider.live.add(this);
    // A handshake that never completes (a blackholed route, a relay that accepts and stalls)
    // would otherwise hold this session, and the pushes given to it, until each one's deadline.
    this.connectTimer = provider.clock.setTimeout(() => {
      provider.emit({ type: 'ping_failed', provider: 'apns', environment: pool.env, sessionId: this.id, error: 'connect timeout' });
      this.destroy();
    }, o.connectTimeoutMs ?? 10_000);
    this.h2.on('close', (err?: Error) => {
      this.closed = true;
      provider.live.delete(this);
      this.pingTimer?.cancel();
      this.connectTimer?.cancel();
      pool.remove(this);
      pool.sessionEnded(this.responded, provider.clock.monotonic(), o.reconnectDelayMs ?? 250, o.maxReconnectDelayMs ?? 30_000);
      const reason = err ? `error: ${err.message}` : this.draining ? 'drained' : 'closed';
      provider.emit({ type: 'session_close', provider: 'apns', environment: pool.env, sessionId: this.id, reason });
      provider.pump(pool);
    });
    this.h2.on('connect', () => {
      this.connectTimer?.cancel();
      provider.pump(pool);
    });
    provider.emit({ type: 'session_open', provider: 'apns', environment: pool.env, sessionId: this.id, authority: pool.url });
    this.schedulePing();
  }

  capacity(): number {
    if (this.draining || this.closed || this.h2.closed || this.healthCheck) return 0;
    if (!this.authConfirmed || !this.h2.gotRemoteSettings) return 1 - this.inFlight;
    return Math.min(this.h2.remoteMaxConcurrentStreams, this.provider.maxStreams) - this.inFlight;
  }

  drain(why: string): void {
    if (this.draining) return;
    this.draining = true;
    this.pool.remove(this);
    void why;
    if (this.inFlight === 0) void this.h2.close();
    this.provider.pump(this.pool);
  }

  release(): void {
    this.inFlight--;
    if (this.draining && this.inFlight === 0 && !this.h2.destroyed) void this.h2.close();
  }

  destroy(): void {
    this.draining = true;
    this.pool.remove(this);
    this.h2.destroy();
  }

  /**
   * A push timed out with no response on this session: PING it now rather than at the next
   * interval, so that a half-open connection (the route died, nothing tells TCP) stops
   * taking every push within seconds instead of a minute.
   */
  checkHealth(): void {
    if (this.healthCheck || this.closed || this.h2.destroyed) return;
    this.healthCheck = true;
    this.ping(Math.min(this.provider.opts.pingTimeoutMs ?? 5000, 1000), 'timeout after a push timed out', (err) => {
      this.healthCheck = false;
      if (err && !this.closed) this.destroy();
    });
  }

  private schedulePing(): void {
    const every = this.provider.opts.pingIntervalMs ?? 60_000;
    if (every <= 0) return;
    this.pingTimer = this.provider.clock.setTimeout(() => {
      if (this.closed || this.h2.destroyed) return;
      this.ping(this.provider.opts.pingTimeoutMs ?? 5000, 'timeout', (err) => {
        if (!err) return this.schedulePing();
        if (this.closed) return;
        this.provider.emit({ type: 'ping_failed', provider: 'apns', environment: this.pool.env, sessionId: this.id, error: err.message });
        this.destroy();
      });
    }, every);
  }

  /**
   * One PING with a deadline: a missed deadline (reported as `timeoutError`) or a PING that
   * cannot be sent destroys the session; an answer, or an error, goes to `answered`.
   */
  private ping(deadlineMs: number, timeoutError: string, answered: (err?: Error) => void): void {
    let done = false;
    const deadline = this.provider.clock.setTimeout(() => {
      if (done) return;
      this.provider.emit({ type: 'ping_failed', provider: 'apns', environment: this.pool.env, sessionId: this.id, error: timeoutError });
      this.destroy();
    }, deadlineMs);
    try {
      this.h2.ping((err) => {
        done = true;
        deadline.cancel();
        answered(err);
      });
    } catch {
      deadline.cancel();
      if (!this.closed) this.destroy();
    }
  }
}

class EnvPool {
  readonly sessions: ApnsSession[] = [];
  readonly waiters: Waiter[] = [];
  /** `host[:port]` for :authority, and where to connect. */
  readonly authority: string;
  readonly hostname: string;
  readonly port: number;
  constructor(
    readonly env: ApnsEnvironment,
    readonly url: string,
  ) {
    const u = new URL(url);
    this.authority = u.host;
    this.hostname = u.hostname.replace(/^\[|\]$/g, '');
    this.port = Number(u.port || 443);
  }
  /** Sessions in a row that ended without a response, and when the next may open (monotonic ms). */
  failures = 0;
  nextConnectAt = 0;
  retryTimer: TimerHandle | undefined = undefined;

  remove(s: ApnsSession): void {
    const i = this.sessions.indexOf(s);
    if (i >= 0) this.sessions.splice(i, 1);
  }

  sessionEnded(responded: boolean, now: number, baseDelayMs: number, maxDelayMs: number): void {
    if (responded) {
      this.failures = 0;
      this.nextConnectAt = 0;
      return;
    }
    this.failures++;
    const delay = Math.min(maxDelayMs, baseDelayMs * 2 ** (this.failures - 1));
    // ±20 % jitter: many pushcall nodes must not reconnect in step after an APNs outage.
    this.nextConnectAt = now + delay * (0.8 + Math.random() * 0.4);
  }
}

interface Attempt {
  result: ApnsRawResult;
  /** The request was certainly not processed by the server (safe to resend). */
  unprocessed?: boolean;
}

export class ApnsProvider implements PushProvider {
  readonly name = 'apns';
  readonly opts: ApnsProviderOptions;
  readonly clock: Clock;
  readonly emit: Emit;
  readonly maxStreams: number;
  /** Per-request events are only built when someone listens. */
  private readonly observed: boolean;
  private readonly minter?: ApnsTokenMinter;
  private readonly pools: Record<ApnsEnvironment, EnvPool>;
  private readonly backoff = new Map<string, { until: number; ms: number }>();
  private readonly learnedEnv = new Map<string, ApnsEnvironment>();
  private isClosed = false;
  /** Every session not yet closed (including draining ones). */
  readonly live = new Set<ApnsSession>();

  constructor(opts: ApnsProviderOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.emit = makeEmitter(opts.hooks, opts.logger);
    this.observed = !!(opts.hooks || opts.logger);
    this.maxStreams = opts.maxStreamsPerSession ?? 1000;
    const refresh = opts.tokenRefreshMs ?? 40 * 60_000;
    if (opts.auth.kind === 'token') {
      if (refresh < 20 * 60_000 || refresh > 55 * 60_000) throw new PushConfigError('tokenRefreshMs must be between 20 and 55 minutes');
      if (!opts.auth.keyId || !opts.auth.teamId) throw new PushConfigError('APNs token auth needs keyId and teamId');
      this.minter = new ApnsTokenMinter(opts.auth, this.clock, refresh, this.emit);
    }
    this.pools = {
      production: new EnvPool('production', opts.endpoints?.production ?? APNS_ENDPOINTS.production),
      sandbox: new EnvPool('sandbox', opts.endpoints?.sandbox ?? APNS_ENDPOINTS.sandbox),
    };
  }

  /** Sessions currently open (not draining) per environment. */
  sessionCount(env: ApnsEnvironment): number {
    return this.pools[env].sessions.length;
  }

  sendCall(binding: PushBinding, payload: PushPayload, opts?: SendOptions): Promise<PushOutcome> {
    const encoded = encodeApns(payload, { voip: true });
    return this.deliver(binding, 'voip', encoded, this.opts.voipExpirationSeconds ?? 30, opts);
  }

  sendAlert(binding: PushBinding, payload: PushPayload, opts?: SendOptions): Promise<PushOutcome> {
    const encoded = encodeApns(payload, { voip: false });
    return this.deliver(binding, 'alert', encoded, this.opts.alertExpirationSeconds ?? 3600, opts);
  }

  /**
   * RFC 8599 §5.5 refresh: a `background` push (content-available, priority 5 as Apple
   * requires) to the binding's alert token. APNs stores it until the binding would expire.
   */
  sendRefresh(binding: PushBinding, payload: RefreshPayload, opts?: SendOptions): Promise<PushOutcome> {
    return this.deliver(binding, 'background', encodeRefresh(payload, 'apns'), payload.ttl, opts);
  }

  private async deliver(
    binding: PushBinding,
    pushType: 'voip' | 'alert' | 'background',
    encoded: EncodeResult<string, unknown>,
    expirationSeconds: number,
    opts?: SendOptions,
  ): Promise<PushOutcome> {
    const t0 = this.clock.monotonic();
    const fail = (error: PushFailure['error'], reason: string, extra: Partial<PushFailure> = {}): PushFailure => ({
      ok: false, provider: 'apns', error, reason, removeBinding: false, latencyMs: this.clock.monotonic() - t0, ...extra,
    });
    if (this.isClosed) return fail('PUSH_CLOSED', 'provider closed');
    let topics;
    try {
      topics = parseApnsParam(binding.param);
    } catch (e) {
      return fail('PUSH_BAD_REQUEST', (e as Error).message);
    }
    if (!encoded.ok) return fail('PUSH_PAYLOAD_TOO_LARGE', `payload ${encoded.bytes} bytes > ${encoded.limit}`);
    const token = binding.prid.toLowerCase();
    const b = this.backoff.get(token);
    const now = this.clock.now();
    if (b && b.until > now) return fail('PUSH_BACKOFF', 'TooManyRequests', { retryAfterMs: b.until - now });
    const nowSec = Math.floor(now / 1000);
    const bindingEnv = binding.environment ?? 'production';
    const env = this.learnedEnv.get(token) ?? bindingEnv;
    const req: ApnsRequest = {
      token,
      environment: env,
      topic: pushType === 'voip' ? topics.voipTopic : topics.alertTopic,
      pushType,
      // Apple: background pushes must use priority 5 (10 is rejected with BadPriority).
      priority: pushType === 'background' ? 5 : 10,
      expiration: expirationSeconds === 0 ? 0 : nowSec + expirationSeconds,
      body: encoded.value,
      apnsId: randomUUID(),
    };
    const deadlineMs = opts?.deadlineMs ?? this.opts.requestTimeoutMs ?? 5000;
    const deadlineAt = t0 + deadlineMs;
    const r = await this.send(req, { deadlineAt });
    const latencyMs = () => this.clock.monotonic() - t0;

    if (r.kind === 'timeout') return fail('PUSH_TIMEOUT', 'deadline exceeded');
    if (r.kind === 'closed') return fail('PUSH_CLOSED', 'provider closed');
    if (r.kind === 'error') return fail('PUSH_UNAVAILABLE', r.error);
    const status = r.status;
    const reason = r.reason ?? '';
    if (status === 200) {
      return { ok: true, provider: 'apns', id: r.apnsId, uniqueId: r.uniqueId, status, latencyMs: latencyMs(), environment: env };
    }
    switch (status) {
      case 410: {
        const remove = r.timestamp === undefined || binding.registeredAt < r.timestamp;
        if (this.learnedEnv.get(token)) this.learnedEnv.delete(token);
        return fail('PUSH_UNREGISTERED', reason || 'Unregistered', { status, removeBinding: remove });
      }
      case 400:
        if (reason === 'BadDeviceToken') return this.onBadDeviceToken(binding, req, env, deadlineAt, t0);
        if (reason === 'DeviceTokenNotForTopic') return fail('PUSH_TOKEN_NOT_FOR_TOPIC', reason, { status, removeBinding: true });
        return fail('PUSH_BAD_REQUEST', reason, { status });
      case 413:
        return fail('PUSH_PAYLOAD_TOO_LARGE', reason, { status });
      case 429:
        if (reason === 'TooManyRequests') {
          const prev = this.backoff.get(token);
          const base = this.opts.tooManyRequestsBackoffMs ?? 30_000;
          const ms = prev && prev.until + prev.ms > this.clock.now() ? Math.min(prev.ms * 2, 5 * 60_000) : base;
          const until = this.clock.now() + ms;
          this.backoff.set(token, { until, ms });
          if (this.backoff.size > 10_000) this.pruneBackoff();
          this.emit({ type: 'backoff', provider: 'apns', token: redactToken(token), untilMs: until, reason });
          return fail('PUSH_RATE_LIMITED', reason, { status, retryAfterMs: ms });
        }
        return fail('PUSH_PROVIDER_AUTH', reason, { status });
      case 403:
        return fail('PUSH_PROVIDER_AUTH', reason, { status });
      default:
        if (status >= 500) return fail('PUSH_UNAVAILABLE', reason || `HTTP ${status}`, { status });
        return fail('PUSH_BAD_REQUEST', reason || `HTTP ${status}`, { status });
    }
  }

  private async onBadDeviceToken(binding: PushBinding, req: ApnsRequest, env: ApnsEnvironment, deadlineAt: number, t0: number): Promise<PushOutcome> {
    const base = { ok: false as const, provider: 'apns', status: 400, reason: 'BadDeviceToken' };
    const latency = () => this.clock.monotonic() - t0;
    if (this.opts.detectEnvironmentMismatch === false) {
      return { ...base, error: 'PUSH_BAD_TOKEN', removeBinding: true, latencyMs: latency() };
    }
    const other: ApnsEnvironment = env === 'production' ? 'sandbox' : 'production';
    const r = await this.send({ ...req, environment: other, apnsId: randomUUID() }, { deadlineAt });
    if (r.kind === 'response' && r.status === 200) {
      this.learnedEnv.set(req.token, other);
      if (this.learnedEnv.size > 10_000) this.learnedEnv.delete(this.learnedEnv.keys().next().value!);
      this.emit({ type: 'environment_mismatch', provider: 'apns', token: redactToken(req.token), bindingEnvironment: binding.environment ?? 'production', actualEnvironment: other });
      return { ...base, error: 'PUSH_ENVIRONMENT_MISMATCH', removeBinding: false, actualEnvironment: other, id: r.apnsId, latencyMs: latency() };
    }
    if (this.learnedEnv.get(req.token) === env) this.learnedEnv.delete(req.token);
    // Remove only when the other environment also says the token is dead: BadDeviceToken
    // there too, 410 Unregistered there (the token is that environment's, and the app was
    // removed since the binding registered), or DeviceTokenNotForTopic there.
    const definitive =
      r.kind === 'response' &&
      ((r.status === 400 && (r.reason === 'BadDeviceToken' || r.reason === 'DeviceTokenNotForTopic')) ||
        (r.status === 410 && (r.timestamp === undefined || binding.registeredAt < r.timestamp)));
    return { ...base, error: 'PUSH_BAD_TOKEN', removeBinding: definitive, latencyMs: latency() };
  }

  private pruneBackoff(): void {
    const now = this.clock.now();
    for (const [k, v] of this.backoff) if (v.until + v.ms < now) this.backoff.delete(k);
  }

  /**
   * Send one request with the resend/retry policy: unprocessed streams (GOAWAY, REFUSED_STREAM)
   * are resent freely within the deadline; a possibly-processed connection failure or a 5xx
   * gets one quick retry; 403 ExpiredProviderToken re-mints once.
   */
  async send(req: ApnsRequest, o: { deadlineAt?: number } = {}): Promise<ApnsRawResult> {
    if (this.isClosed) return { kind: 'closed' };
    const deadlineAt = o.deadlineAt ?? this.clock.monotonic() + (this.opts.requestTimeoutMs ?? 5000);
    let quickRetry = true;
    let reminted = false;
    let resends = 0;
    for (let attempt = 1; ; attempt++) {
      const a = await this.attempt(req, deadlineAt, attempt);
      const r = a.result;
      if (r.kind === 'timeout' || r.kind === 'closed') return r;
      if (r.kind === 'error') {
        if (a.unprocessed && resends++ < 8) {
          this.emit({ type: 'retry', provider: 'apns', token: redactToken(req.token), id: req.apnsId, cause: 'unprocessed' });
          continue;
        }
        if (quickRetry) {
          quickRetry = false;
          this.emit({ type: 'retry', provider: 'apns', token: redactToken(req.token), id: req.apnsId, cause: 'connection' });
          continue;
        }
        return r;
      }
      if (r.status === 403 && r.reason === 'ExpiredProviderToken' && this.minter && !reminted) {
        reminted = true;
        // A token minted minutes ago cannot have expired (APNs accepts them for an hour): our
        // clock is off. A new token would be just as "expired", and re-minting for every
        // push breaks Apple's once-per-20-minutes rule: say so and fail instead.
        if (this.minter.isYoung(r.generation)) {
          this.emit({ type: 'token_rejected_young', provider: 'apns', generation: r.generation, reason: 'ExpiredProviderToken for a token minted minutes ago: check the clock (iat)' });
          return r;
        }
        this.minter.invalidate(r.generation);
        this.emit({ type: 'retry', provider: 'apns', token: redactToken(req.token), id: req.apnsId, cause: 'provider_token' });
        continue;
      }
      if (r.status >= 500 && quickRetry) {
        quickRetry = false;
        this.emit({ type: 'retry', provider: 'apns', token: redactToken(req.token), id: req.apnsId, cause: 'server_error' });
        continue;
      }
      return r;
    }
  }

  private async attempt(req: ApnsRequest, deadlineAt: number, attempt: number): Promise<Attempt> {
    const pool = this.pools[req.environment];
    if (this.minter && !this.minter.peek()) await this.minter.get();
    const remaining = deadlineAt - this.clock.monotonic();
    if (remaining <= 0) return { result: { kind: 'timeout' } };
    const session = this.tryAcquire(pool) ?? (await this.acquire(pool, deadlineAt));
    if (this.isClosed) {
      session?.release();
      return { result: { kind: 'closed' } };
    }
    if (!session) return { result: { kind: 'timeout' } };
    return this.stream(session, req, deadlineAt, attempt);
  }

  private stream(session: ApnsSession, req: ApnsRequest, deadlineAt: number, attempt: number): Promise<Attempt> {
    const headers: Array<[string, string]> = [
      [':method', 'POST'],
      [':scheme', 'https'],
      [':authority', session.pool.authority],
      [':path', `/3/device/${req.token}`],
      ['apns-push-type', req.pushType],
      ['apns-topic', req.topic],
      ['apns-priority', String(req.priority)],
      ['content-type', 'application/json'],
    ];
    if (req.expiration !== undefined) headers.push(['apns-expiration', String(req.expiration)]);
    if (req.apnsId) headers.push(['apns-id', req.apnsId]);
    if (req.collapseId) headers.push(['apns-collapse-id', req.collapseId]);
    if (session.tok) {
      headers.push(['authorization', `bearer ${session.tok.jwt}`]);
      session.tokFirstUsedAt ??= this.clock.now();
    }
    const redacted = this.observed ? redactToken(req.token) : '';
    if (this.observed) this.emit({ type: 'request', provider: 'apns', token: redacted, id: req.apnsId, attempt, environment: req.environment, sessionId: session.id });
    return new Promise<Attempt>((resolve) => {
      const exchange = new ApnsExchange(this, session, req, attempt, redacted, resolve);
      exchange.timer = this.clock.setTimeout(() => exchange.expire(), Math.max(0, deadlineAt - this.clock.monotonic()));
      try {
        exchange.stream = session.h2.request(headers, req.body, exchange);
      } catch (e) {
        // Connection closing or at its stream limit: nothing was sent.
        exchange.finish({ result: { kind: 'error', error: (e as Error).message }, unprocessed: true });
      }
    });
  }

  /** @internal An exchange ended: session bookkeeping, then the next waiter. */
  settled(session: ApnsSession, req: ApnsRequest, attempt: number, redacted: string, a: Attempt, latencyMs: number): void {
    session.release();
    if (a.result.kind === 'response') {
      const r = a.result;
      session.responded = true;
      session.pool.failures = 0;
      if (!session.authConfirmed && !(r.status === 403 || (r.status === 429 && r.reason === 'TooManyProviderTokenUpdates'))) {
        session.authConfirmed = true;
      }
      // A session whose token APNs refused is drained; not for a young "expired" token, which a
      // new session would present again (our clock is off: see send()).
      const youngExpired = r.reason === 'ExpiredProviderToken' && this.minter?.isYoung(r.generation) === true;
      if ((r.reason === 'TooManyProviderTokenUpdates' || r.reason === 'UnrelatedKeyIdInToken' || r.reason === 'ExpiredProviderToken') && !youngExpired) {
        session.drain(r.reason);
      }
      if (this.observed) this.emit({
        type: 'response', provider: 'apns', token: redacted, id: r.apnsId ?? req.apnsId, status: r.status, reason: r.reason,
        latencyMs, attempt, environment: req.environment, sessionId: session.id,
      });
    }
    this.pump(session.pool);
  }

  // ---- pool -------------------------------------------------------------------------------

  /** Fast path: nobody is waiting and a session has a free slot with the current token. */
  private tryAcquire(pool: EnvPool): ApnsSession | undefined {
    if (pool.waiters.length > 0 || this.isClosed) return undefined;
    const tok = this.minter?.peek();
    if (this.minter && !tok) return undefined;
    let best: ApnsSession | undefined;
    let bestCap = 0;
    for (const s of pool.sessions) {
      if (tok && s.tok?.generation !== tok.generation) return undefined; // rotation needed: slow path
      const cap = s.capacity();
      if (cap > bestCap) {
        best = s;
        bestCap = cap;
      }
    }
    if (best) best.inFlight++;
    return best;
  }

  private acquire(pool: EnvPool, deadlineAt: number): Promise<ApnsSession | null> {
    return new Promise((resolve) => {
      const w: Waiter = { resolve, done: false };
      pool.waiters.push(w);
      this.pump(pool);
      if (!w.done) {
        w.timer = this.clock.setTimeout(() => {
          if (w.done) return;
          w.done = true;
          const i = pool.waiters.indexOf(w);
          if (i >= 0) pool.waiters.splice(i, 1);
          resolve(null);
        }, Math.max(0, deadlineAt - this.clock.monotonic()));
      }
    });
  }

  /** Hand free stream slots to waiters, rotating tokens and opening sessions as needed. */
  pump(pool: EnvPool): void {
    if (pool.waiters.length === 0) return;
    if (this.isClosed) {
      for (const w of pool.waiters.splice(0)) {
        w.done = true;
        w.timer?.cancel();
        w.resolve(null);
      }
      return;
    }
    const tok = this.minter?.peek();
    if (this.minter && !tok) {
      // The token aged out while requests waited: mint, then continue.
      void this.minter.get().then(() => this.pump(pool), () => {});
      return;
    }
    if (tok) this.rotateTokens(pool, tok);
    const poolSize = Math.max(1, this.opts.poolSize ?? 2);
    while (pool.waiters.length > 0) {
      let best: ApnsSession | undefined;
      let bestCap = 0;
      for (const s of pool.sessions) {
        const cap = s.capacity();
        if (cap > bestCap) {
          best = s;
          bestCap = cap;
        }
      }
      if (!best) {
        if (pool.sessions.length < poolSize) {
          const wait = pool.nextConnectAt - this.clock.monotonic();
          if (wait > 0) {
            // Backing off after sessions that got no response: the waiters wait (each
            // within its own deadline) and the pool tries again then.
            pool.retryTimer ??= this.clock.setTimeout(() => {
              pool.retryTimer = undefined;
              this.pump(pool);
            }, wait);
            return;
          }
          const s = new ApnsSession(pool, this);
          if (tok) {
            s.tok = tok;
            this.emit({ type: 'token_pinned', provider: 'apns', sessionId: s.id, generation: tok.generation });
          }
          pool.sessions.push(s);
          continue;
        }
        return;
      }
      const w = pool.waiters.shift()!;
      if (w.done) continue;
      w.done = true;
      w.timer?.cancel();
      best.inFlight++;
      w.resolve(best);
    }
  }

  private rotateTokens(pool: EnvPool, tok: ProviderToken): void {
    for (const s of [...pool.sessions]) {
      if (s.tok?.generation === tok.generation) continue;
      if (!s.tok || s.tokFirstUsedAt === undefined) {
        // The server has not seen this session's current token: swapping is invisible to it.
        s.tok = tok;
      } else if (this.clock.now() - s.tokFirstUsedAt >= TWENTY_ONE_MIN) {
        s.tok = tok;
        s.tokFirstUsedAt = undefined;
      } else {
        // Would be a second token within 20 minutes on this connection: rotate the session.
        s.drain('token rotation');
        continue;
      }
      this.emit({ type: 'token_pinned', provider: 'apns', sessionId: s.id, generation: tok.generation });
    }
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    const closes: Promise<void>[] = [];
    for (const pool of Object.values(this.pools)) {
      pool.retryTimer?.cancel();
      pool.retryTimer = undefined;
      this.pump(pool);
    }
    {
      for (const s of [...this.live]) {
        closes.push(new Promise((r) => {
          if (s.closed || s.h2.destroyed) return r();
          s.h2.once('close', () => r());
          void s.h2.close();
          const t = setTimeout(() => s.h2.destroy(), 2000);
          t.unref?.();
        }));
        s.pool.remove(s);
      }
    }
    await Promise.all(closes);
  }
}
