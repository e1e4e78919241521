/**
 * A faithful APNs provider-API emulator (HTTP/2 over TLS, token and certificate auth).
 *
 * One instance is one environment (production or sandbox); start two and share an
 * `ApnsDeviceRegistry` to reproduce sandbox/production mix-ups (a token registered in the
 * other environment answers 400 BadDeviceToken, as Apple does).
 *
 * Validation follows Apple's documented reason table (see shared/reference/push-protocols.md
 * §1): method, path and token, duplicate headers, provider token (ES256 signature, kid, iss,
 * iat age, one team per connection, the 20-minute rule per connection), topic vs. the key's
 * apps, push type, priority, expiration, apns-id, collapse id, payload presence and size
 * (5120 bytes VoIP, 4096 otherwise). Under token auth a connection gets
 * MAX_CONCURRENT_STREAMS 1 until its first request with a valid provider token.
 *
 * Undocumented by Apple, chosen here: a body that is not a JSON object answers
 * 400 PayloadEmpty; token format is "non-empty hex".
 */

import http2 from 'node:http2';
import type { ServerHttp2Session, ServerHttp2Stream, IncomingHttpHeaders } from 'node:http2';
import { createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { DeviceDelivery, listen, seededRandom, selfSignedServerCert, systemClock } from './util.js';
import type { DelaySpec, EmulatorClock, TlsMaterial } from './util.js';

export type ApnsEnvironment = 'production' | 'sandbox';

export const APNS_PUSH_TYPES = ['alert', 'background', 'complication', 'controls', 'fileprovider', 'liveactivity', 'location', 'mdm', 'pushtotalk', 'voip', 'widgets'] as const;
const TOPIC_SUFFIXES = ['.voip', '.complication', '.pushkit.fileprovider', '.push-type.liveactivity', '.location-query', '.voip-ptt', '.push-type.widgets', '.push-type.controls'];
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEX_RE = /^[0-9a-fA-F]+$/;
const TWENTY_MIN = 20 * 60_000;
const ONE_HOUR = 60 * 60_000;

/** A registered signing key (the emulator's view of an Apple .p8 key). */
export interface ApnsEmulatorKey {
  keyId: string;
  teamId: string;
  /** PEM (SPKI) or KeyObject of the P-256 public key. */
  publicKey: string | KeyObject;
  /** Apps (bundle IDs) the key may push to; empty = any app of the team. */
  bundleIds: string[];
  /** Environments the key is valid for (default both). */
  environments?: ApnsEnvironment[];
}

/** A generated test key: give `privateKeyPem` to the provider, the rest to the emulator. */
export interface ApnsTestKey extends ApnsEmulatorKey {
  privateKeyPem: string;
  publicKey: string;
}

/** Make an ES256 key pair shaped like an Apple .p8 key (PKCS#8 PEM). */
export function makeApnsKey(opts: { keyId?: string; teamId?: string; bundleIds?: string[] } = {}): ApnsTestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    keyId: opts.keyId ?? 'ABC123DEFG',
    teamId: opts.teamId ?? 'TEAM123456',
    bundleIds: opts.bundleIds ?? ['com.example.app'],
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

interface DeviceEntry {
  token: string;
  bundleId: string;
  environment: ApnsEnvironment;
  /** Set by unregister(): 410 Unregistered with this timestamp. */
  unregisteredAt?: number;
  expired?: boolean;
}

/** Device tokens known to the emulated APNs (shareable between the two environments). */
export class ApnsDeviceRegistry {
  private readonly devices = new Map<string, DeviceEntry>();

  register(d: { token: string; bundleId: string; environment: ApnsEnvironment }): void {
    this.devices.set(d.token.toLowerCase(), { token: d.token.toLowerCase(), bundleId: d.bundleId, environment: d.environment });
  }

  get(token: string): DeviceEntry | undefined {
    return this.devices.get(token.toLowerCase());
  }

  delete(token: string): void {
    this.devices.delete(token.toLowerCase());
  }
}

/** A scripted response in place of normal processing. */
export type ApnsScriptAction =
  | { status: number; reason: string; timestamp?: number }
  /** RST_STREAM (INTERNAL_ERROR) before any response headers. */
  | { reset: true }
  /** Destroy the whole connection before any response headers. */
  | { destroyConnection: true };

/** An accepted push, as recorded and as delivered to subscribed devices. */
export interface ApnsPush {
  token: string;
  environment: ApnsEnvironment;
  apnsId: string;
  topic: string;
  pushType: string | undefined;
  priority: number;
  expiration: number | undefined;
  collapseId: string | undefined;
  /** All request headers except authorization and pseudo-headers. */
  headers: Record<string, string>;
  payload: unknown;
  bytes: number;
  connectionId: number;
  /** Emulator clock, ms epoch. */
  receivedAt: number;
}

export interface ApnsResponseRecord {
  connectionId: number;
  streamId: number;
  token: string;
  status: number;
  reason?: string;
  apnsId?: string;
}

export interface ApnsConnectionStats {
  id: number;
  requests: number;
  accepted: number;
  tokens: string[];
  teamId?: string;
  certificate: boolean;
  closed: boolean;
}

export interface ApnsEmulatorOptions {
  environment?: ApnsEnvironment;
  keys?: ApnsEmulatorKey[];
  /** Certificate mode: client certificates issued by this CA are accepted for these apps. */
  certificateAuth?: { caPem: string; bundleIds: string[] };
  /** Shared registry (pass the same one to a production and a sandbox emulator). */
  devices?: ApnsDeviceRegistry;
  /** Unknown (never registered) tokens answer BadDeviceToken instead of being accepted. */
  strictDevices?: boolean;
  /** Wall clock for iat age, the 20-minute rule and 410 timestamps. */
  clock?: EmulatorClock;
  /** MAX_CONCURRENT_STREAMS after the first valid-auth request (default 1000). */
  maxConcurrentStreams?: number;
  /** Delay before an accepted push reaches subscribers (ms or [min,max]; default 0). */
  deliveryDelayMs?: DelaySpec;
  /** Probability that an accepted push is never delivered (default 0). */
  lossProbability?: number;
  seed?: number;
  /** Keep every accepted push in `received` and every response in `responses` (default true). */
  record?: boolean;
  /** Keep per-request handling times (µs resolution) for benchmarks (default false). */
  recordTimings?: boolean;
  host?: string;
  port?: number;
  /** Serve this certificate instead of the shared self-signed one (e.g. emulator processes sharing one port). */
  tls?: TlsMaterial;
}

interface ConnState {
  id: number;
  session: ServerHttp2Session;
  certificate: boolean;
  certBundleIds?: string[];
  teamId?: string;
  keyId?: string;
  token?: string;
  tokenSince: number;
  authed: boolean;
  requests: number;
  accepted: number;
  tokens: string[];
  goawayLastId?: number;
  closed: boolean;
  open: number;
}

interface VerifiedJwt {
  ok: true;
  keyId: string;
  teamId: string;
  iat: number;
  key: ApnsEmulatorKey;
}
type JwtCheck = VerifiedJwt | { ok: false; reason: string };

type Subscriber = (push: ApnsPush & { deliveredAt: number }) => void;

export class ApnsEmulator {
  readonly environment: ApnsEnvironment;
  readonly devices: ApnsDeviceRegistry;
  /** Accepted pushes, in processing order. */
  readonly received: ApnsPush[] = [];
  /** Every answered request. */
  readonly responses: ApnsResponseRecord[] = [];
  /** Per-request handling times in ms (headers received → response sent), when recordTimings. */
  readonly timings: number[] = [];
  /** apns-id of each `timings` entry (undefined for errors without one). */
  readonly timingIds: (string | undefined)[] = [];
  /** Totals (always kept, even when record is false). */
  readonly stats = { requests: 0, accepted: 0, rejected: 0, delivered: 0, lost: 0, refused: 0, connections: 0, maxConcurrentStreams: 0 };

  private readonly opts: ApnsEmulatorOptions;
  private readonly clock: EmulatorClock;
  private readonly rnd: () => number;
  private readonly keys = new Map<string, ApnsEmulatorKey & { keyObject: KeyObject }>();
  private readonly jwtCache = new Map<string, Promise<JwtCheck>>();
  private readonly jwtDone = new Map<string, JwtCheck>();
  private readonly conns = new Map<ServerHttp2Session, ConnState>();
  private readonly allConns: ConnState[] = [];
  private readonly delivery: DeviceDelivery<ApnsPush>;
  private readonly nextActions: ApnsScriptAction[] = [];
  private readonly tokenActions = new Map<string, { action: ApnsScriptAction; remaining: number }>();
  private server?: http2.Http2SecureServer;
  private mcs: number;
  private stallAllMs = 0;
  private stallNextQueue: number[] = [];
  private goaway?: { remaining: number; reason: string; errorCode: number };
  private connSeq = 0;
  private _caPem = '';
  private _caFile = '';
  private _port = 0;

  constructor(opts: ApnsEmulatorOptions = {}) {
    this.opts = opts;
    this.environment = opts.environment ?? 'production';
    this.devices = opts.devices ?? new ApnsDeviceRegistry();
    this.clock = opts.clock ?? systemClock;
    this.rnd = seededRandom(opts.seed ?? 1);
    this.delivery = new DeviceDelivery(opts, this.rnd, this.clock, this.stats);
    this.mcs = opts.maxConcurrentStreams ?? 1000;
    for (const k of opts.keys ?? []) this.addKey(k);
  }

  /** PEM to trust (the emulator's self-signed certificate). */
  get caPem(): string {
    return this._caPem;
  }
  get caFile(): string {
    return this._caFile;
  }
  get port(): number {
    return this._port;
  }
  /** e.g. https://127.0.0.1:43123 */
  get url(): string {
    return `https://127.0.0.1:${this._port}`;
  }

  addKey(k: ApnsEmulatorKey): void {
    const keyObject = typeof k.publicKey === 'string' ? createPublicKey(k.publicKey) : k.publicKey;
    this.keys.set(k.keyId, { ...k, keyObject });
    this.jwtCache.clear();
    this.jwtDone.clear();
  }

  registerDevice(d: { token: string; bundleId: string; environment?: ApnsEnvironment }): void {
    this.devices.register({ token: d.token, bundleId: d.bundleId, environment: d.environment ?? this.environment });
  }

  /** The app was uninstalled at `timestampMs`: pushes answer 410 Unregistered with that timestamp. */
  unregister(token: string, timestampMs: number = this.clock.now(), reason: 'Unregistered' | 'ExpiredToken' = 'Unregistered'): void {
    let d = this.devices.get(token);
    if (!d) {
      this.devices.register({ token, bundleId: '', environment: this.environment });
      d = this.devices.get(token)!;
    }
    d.unregisteredAt = timestampMs;
    d.expired = reason === 'ExpiredToken';
  }

  // ---- scripting -------------------------------------------------------------------------

  /** Scripted actions for the next requests (after method/path/auth validation), FIFO. */
  readonly script = {
    next: (...actions: ApnsScriptAction[]): void => {
      this.nextActions.push(...actions);
    },
    forToken: (token: string, action: ApnsScriptAction, count = Infinity): void => {
      this.tokenActions.set(token.toLowerCase(), { action, remaining: count });
    },
    clear: (): void => {
      this.nextActions.length = 0;
      this.tokenActions.clear();
      this.stallAllMs = 0;
      this.stallNextQueue = [];
      this.goaway = undefined;
    },
  };

  failNext(f: { status: number; reason: string; timestamp?: number }, count = 1): void {
    for (let i = 0; i < count; i++) this.script.next({ ...f });
  }

  failFor(token: string, f: ApnsScriptAction, count = Infinity): void {
    this.script.forToken(token, f, count);
  }

  clearFailures(): void {
    this.script.clear();
  }

  /** After `n` more processed requests, send GOAWAY (lastStreamId = the n-th's stream) on its connection. */
  goawayAfter(n: number, opts: { reason?: string; errorCode?: number } = {}): void {
    this.goaway = { remaining: n, reason: opts.reason ?? 'Shutdown', errorCode: opts.errorCode ?? http2.constants.NGHTTP2_NO_ERROR };
  }

  /** Hold every response for `ms` (0 = stop stalling; Infinity = never answer). */
  stall(ms: number): void {
    this.stallAllMs = ms;
  }

  /** Hold the next `count` responses for `ms`. */
  stallNext(ms: number, count = 1): void {
    for (let i = 0; i < count; i++) this.stallNextQueue.push(ms);
  }

  /** Change MAX_CONCURRENT_STREAMS on every authenticated connection (and future ones). */
  setMaxConcurrentStreams(n: number): void {
    this.mcs = n;
    for (const c of this.conns.values()) {
      if (c.authed && !c.session.destroyed) c.session.settings({ maxConcurrentStreams: n });
    }
  }

  /** Abruptly destroy every connection (network failure). */
  dropConnections(): void {
    for (const c of this.conns.values()) c.session.destroy();
  }

  connections(): ApnsConnectionStats[] {
    return this.allConns.map((c) => ({
      id: c.id,
      requests: c.requests,
      accepted: c.accepted,
      tokens: [...c.tokens],
      teamId: c.teamId,
      certificate: c.certificate,
      closed: c.closed,
    }));
  }

  resetRecords(): void {
    this.received.length = 0;
    this.responses.length = 0;
    this.timings.length = 0;
    this.timingIds.length = 0;
    for (const k of Object.keys(this.stats) as (keyof typeof this.stats)[]) this.stats[k] = 0;
  }

  // ---- delivery ---------------------------------------------------------------------------

  /** Simulated device: called for every delivered push to `token`. Returns unsubscribe. */
  subscribe(token: string, cb: Subscriber): () => void {
    return this.delivery.subscribe(token.toLowerCase(), cb);
  }


  private deliver(push: ApnsPush): void {
    this.delivery.deliver(push.token, push);
  }


  // ---- server -----------------------------------------------------------------------------

  async start(): Promise<this> {
    const tls = this.opts.tls ?? (await selfSignedServerCert());
    this._caPem = tls.certPem;
    this._caFile = tls.certFile;
    const tokenAuthOnly = !this.opts.certificateAuth;
    const server = http2.createSecureServer({
      cert: tls.certPem,
      key: tls.keyPem,
      allowHTTP1: false,
      // Under token auth, one stream until the first valid provider token (Apple).
      settings: { maxConcurrentStreams: tokenAuthOnly ? 1 : this.mcs },
      ...(this.opts.certificateAuth ? { requestCert: true, rejectUnauthorized: false, ca: [this.opts.certificateAuth.caPem] } : {}),
    });
    // Answer each push at once (no Nagle delay on the small response frames).
    server.on('connection', (socket: import('node:net').Socket) => socket.setNoDelay(true));
    server.on('session', (session) => this.onSession(session));
    server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: unknown) =>
      this.onStream(stream, headers, rawHeaders as string[]));
    server.on('sessionError', () => {});
    this._port = await listen(server, this.opts.port ?? 0, this.opts.host ?? '127.0.0.1');
    this.server = server;
    return this;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const c of this.conns.values()) c.session.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private onSession(session: ServerHttp2Session): void {
    const socket = session.socket as TLSSocket;
    const certMode = !!this.opts.certificateAuth && socket.authorized === true;
    const c: ConnState = {
      id: ++this.connSeq,
      session,
      certificate: certMode,
      certBundleIds: certMode ? this.opts.certificateAuth!.bundleIds : undefined,
      tokenSince: 0,
      authed: false,
      requests: 0,
      accepted: 0,
      tokens: [],
      closed: false,
      open: 0,
    };
    this.stats.connections++;
    this.conns.set(session, c);
    this.allConns.push(c);
    if (this.opts.certificateAuth && !certMode) {
      // Certificate-capable emulator, no client certificate: token auth → one stream first.
      session.settings({ maxConcurrentStreams: 1 });
    } else if (certMode) {
      c.authed = true;
      session.settings({ maxConcurrentStreams: this.mcs });
    }
    session.on('error', () => {});
    session.on('close', () => {
      c.closed = true;
      this.conns.delete(session);
    });
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[]): void {
    const t0 = this.opts.recordTimings ? performance.now() : 0;
    // Before anything can close the stream: a stream error without a listener would crash the emulator.
    stream.on('error', () => {});
    const c = this.conns.get(stream.session as ServerHttp2Session);
    if (!c) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    c.open++;
    if (c.open > this.stats.maxConcurrentStreams) this.stats.maxConcurrentStreams = c.open;
    let processed = false;
    stream.on('close', () => {
      c.open--;
      if (!processed && c.goawayLastId !== undefined && (stream.id ?? 0) > c.goawayLastId) this.stats.refused++;
    });
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= 64 * 1024) chunks.push(chunk);
    });
    stream.on('end', () => {
      if (c.goawayLastId !== undefined && (stream.id ?? 0) > c.goawayLastId) {
        // Above the GOAWAY's lastStreamId: not processed. The peer closes these itself when
        // it reads the GOAWAY (RFC 9113 §6.8). (Closing them here with RST_STREAM after
        // session.goaway() corrupts Node 20's heap, so we leave them to the peer / destroy.)
        return;
      }
      processed = true;
      void this.process(c, stream, headers, rawHeaders, Buffer.concat(chunks), size, t0);
    });
  }

  private async process(
    c: ConnState,
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    rawHeaders: string[],
    body: Buffer,
    size: number,
    t0: number,
  ): Promise<void> {
    c.requests++;
    this.stats.requests++;
    const path = String(headers[':path'] ?? '');
    const token = path.startsWith('/3/device/') ? path.slice('/3/device/'.length).toLowerCase() : '';
    const reqId = typeof headers['apns-id'] === 'string' && UUID_RE.test(headers['apns-id']) ? headers['apns-id'].toLowerCase() : undefined;
    const reply = (status: number, reason?: string, extra: { timestamp?: number; apnsId?: string } = {}) =>
      this.reply(c, stream, status, reason, token, { apnsId: reqId, ...extra }, t0);

    // Provider-token signature check (cached per token string) before the synchronous checks.
    let jwtCheck: JwtCheck | undefined;
    const bearer = !c.certificate && typeof headers.authorization === 'string' ? /^bearer\s+(.+)$/i.exec(headers.authorization)?.[1]?.trim() : undefined;
    if (bearer) jwtCheck = this.jwtDone.get(bearer) ?? (await this.verifyJwt(bearer));
    let verdict = this.validate(c, headers, rawHeaders, body, size, path, token, jwtCheck);
    // GOAWAY bookkeeping counts every processed request.
    if (verdict.kind === 'reply') {
      { const w = this.maybeStall(); if (w) await w; }
      reply(verdict.status, verdict.reason, { timestamp: verdict.timestamp });
      this.afterProcessed(c, stream);
      return;
    }
    // Scripted actions.
    const scripted = this.takeScripted(token);
    if (scripted) {
      { const w = this.maybeStall(); if (w) await w; }
      if ('reset' in scripted) {
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      } else if ('destroyConnection' in scripted) {
        c.session.destroy();
      } else {
        reply(scripted.status, scripted.reason, { timestamp: scripted.timestamp });
      }
      this.afterProcessed(c, stream);
      return;
    }
    verdict = this.checkDevice(token, verdict.push);
    if (verdict.kind === 'reply') {
      { const w = this.maybeStall(); if (w) await w; }
      reply(verdict.status, verdict.reason, { timestamp: verdict.timestamp });
      this.afterProcessed(c, stream);
      return;
    }
    const push = verdict.push;
    { const w = this.maybeStall(); if (w) await w; }
    if (stream.destroyed || stream.closed) {
      this.afterProcessed(c, stream);
      return;
    }
    push.connectionId = c.id;
    c.accepted++;
    this.stats.accepted++;
    if (this.opts.record !== false) this.received.push(push);
    reply(200, undefined, { apnsId: push.apnsId });
    this.deliver(push);
    this.afterProcessed(c, stream);
  }

  private validate(
    c: ConnState,
    headers: IncomingHttpHeaders,
    rawHeaders: string[],
    body: Buffer,
    size: number,
    path: string,
    token: string,
    jwtCheck: JwtCheck | undefined,
  ): { kind: 'reply'; status: number; reason: string; timestamp?: number } | { kind: 'ok'; push: ApnsPush } {
    const no = (status: number, reason: string, timestamp?: number) => ({ kind: 'reply' as const, status, reason, timestamp });
    if (headers[':method'] !== 'POST') return no(405, 'MethodNotAllowed');
    if (!path.startsWith('/3/device/') && path !== '/3/device') return no(404, 'BadPath');
    if (token === '') return no(400, 'MissingDeviceToken');
    if (!HEX_RE.test(token)) return no(400, 'BadDeviceToken');

    // Duplicate headers (HTTP/2 raw header list).
    const seen = new Set<string>();
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const n = String(rawHeaders[i]).toLowerCase();
      if (n.startsWith('apns-') || n === 'authorization') {
        if (seen.has(n)) return no(400, 'DuplicateHeaders');
        seen.add(n);
      }
    }

    // Authentication.
    let allowedBundles: string[] | undefined;
    if (c.certificate) {
      allowedBundles = c.certBundleIds;
    } else {
      const auth = headers.authorization;
      if (typeof auth !== 'string' || auth.length === 0) return no(403, 'MissingProviderToken');
      const m = /^bearer\s+(.+)$/i.exec(auth);
      if (!m) return no(403, 'InvalidProviderToken');
      const jwt = m[1].trim();
      const v = jwtCheck ?? { ok: false as const, reason: 'InvalidProviderToken' };
      if (!v.ok) return no(403, v.reason);
      if (!(v.key.environments ?? ['production', 'sandbox']).includes(this.environment)) return no(403, 'BadEnvironmentKeyIdInToken');
      const now = this.clock.now();
      if (now - v.iat * 1000 > ONE_HOUR) return no(403, 'ExpiredProviderToken');
      if (c.teamId !== undefined && c.teamId !== v.teamId) return no(403, 'UnrelatedKeyIdInToken');
      if (c.token !== undefined && c.token !== jwt) {
        if (now - c.tokenSince < TWENTY_MIN) return no(429, 'TooManyProviderTokenUpdates');
      }
      if (c.token !== jwt) {
        c.token = jwt;
        c.tokenSince = now;
        c.tokens.push(jwt);
      }
      c.teamId = v.teamId;
      c.keyId = v.keyId;
      allowedBundles = v.key.bundleIds.length ? v.key.bundleIds : undefined;
      if (!c.authed) {
        c.authed = true;
        if (!c.session.destroyed) c.session.settings({ maxConcurrentStreams: this.mcs });
      }
    }

    // Topic.
    let topic = headers['apns-topic'];
    if (typeof topic !== 'string' || topic === '') {
      if (c.certificate && c.certBundleIds?.length) topic = c.certBundleIds[0];
      else return no(400, 'MissingTopic');
    }
    const suffix = TOPIC_SUFFIXES.find((s) => topic.endsWith(s));
    const bundle = suffix ? topic.slice(0, -suffix.length) : topic;
    if (!/^[A-Za-z0-9.-]+$/.test(bundle)) return no(400, 'BadTopic');
    if (allowedBundles && !allowedBundles.includes(bundle)) return no(400, 'TopicDisallowed');

    const pushType = headers['apns-push-type'] as string | undefined;
    if (pushType !== undefined && !(APNS_PUSH_TYPES as readonly string[]).includes(pushType)) return no(400, 'InvalidPushType');
    if (pushType === 'voip' && !topic.endsWith('.voip')) return no(400, 'InvalidPushType');
    if (topic.endsWith('.voip') && pushType !== undefined && pushType !== 'voip') return no(400, 'InvalidPushType');

    const prioH = headers['apns-priority'] as string | undefined;
    let priority = 10;
    if (prioH !== undefined) {
      if (!['1', '5', '10'].includes(prioH)) return no(400, 'BadPriority');
      priority = Number(prioH);
    }
    if (pushType === 'background' && priority === 10) return no(400, 'BadPriority');

    const expH = headers['apns-expiration'] as string | undefined;
    let expiration: number | undefined;
    if (expH !== undefined) {
      if (!/^\d{1,12}$/.test(expH)) return no(400, 'BadExpirationDate');
      expiration = Number(expH);
    }

    const idH = headers['apns-id'] as string | undefined;
    if (idH !== undefined && !UUID_RE.test(idH)) return no(400, 'BadMessageId');

    const collapse = headers['apns-collapse-id'] as string | undefined;
    if (collapse !== undefined && Buffer.byteLength(collapse) > 64) return no(400, 'BadCollapseId');

    if (size === 0) return no(400, 'PayloadEmpty');
    const isVoip = pushType === 'voip' || topic.endsWith('.voip');
    if (size > (isVoip ? 5120 : 4096)) return no(413, 'PayloadTooLarge');
    let payload: unknown;
    try {
      payload = JSON.parse(body.toString('utf8'));
    } catch {
      return no(400, 'PayloadEmpty');
    }
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return no(400, 'PayloadEmpty');

    const hdrs: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) {
      if (k.startsWith(':') || k === 'authorization' || v === undefined) continue;
      hdrs[k] = Array.isArray(v) ? v.join(', ') : String(v);
    }
    return {
      kind: 'ok',
      push: {
        token,
        environment: this.environment,
        apnsId: idH?.toLowerCase() ?? randomUUID(),
        topic,
        pushType,
        priority,
        expiration,
        collapseId: collapse,
        headers: hdrs,
        payload,
        bytes: size,
        connectionId: c.id,
        receivedAt: this.clock.now(),
      },
    };
  }

  private checkDevice(token: string, push: ApnsPush): { kind: 'reply'; status: number; reason: string; timestamp?: number } | { kind: 'ok'; push: ApnsPush } {
    const d = this.devices.get(token);
    const topic = push.topic;
    if (!d) {
      if (this.opts.strictDevices) return { kind: 'reply', status: 400, reason: 'BadDeviceToken' };
      return { kind: 'ok', push };
    }
    if (d.environment !== this.environment) return { kind: 'reply', status: 400, reason: 'BadDeviceToken' };
    if (d.unregisteredAt !== undefined) {
      return { kind: 'reply', status: 410, reason: d.expired ? 'ExpiredToken' : 'Unregistered', timestamp: d.unregisteredAt };
    }
    const suffix = TOPIC_SUFFIXES.find((s) => topic.endsWith(s));
    const bundle = suffix ? topic.slice(0, -suffix.length) : topic;
    if (d.bundleId && d.bundleId !== bundle) return { kind: 'reply', status: 400, reason: 'DeviceTokenNotForTopic' };
    return { kind: 'ok', push };
  }

  /** Signature, kid and iss checks (cached per token string; iat age is checked per request). */
  private verifyJwt(jwt: string): Promise<JwtCheck> {
    let p = this.jwtCache.get(jwt);
    if (!p) {
      p = this.verifyJwtUncached(jwt);
      if (this.jwtCache.size > 10_000) {
        this.jwtCache.clear();
        this.jwtDone.clear();
      }
      this.jwtCache.set(jwt, p);
      void p.then((r) => this.jwtDone.set(jwt, r));
    }
    return p;
  }

  private async verifyJwtUncached(jwt: string): Promise<JwtCheck> {
    const bad = { ok: false as const, reason: 'InvalidProviderToken' };
    let kid: string | undefined;
    try {
      const h = decodeProtectedHeader(jwt);
      if (h.alg !== 'ES256') return bad;
      kid = h.kid;
    } catch {
      return bad;
    }
    const key = kid ? this.keys.get(kid) : undefined;
    if (!key) return bad;
    let claims: Record<string, unknown>;
    try {
      const { payload } = await compactVerify(jwt, key.keyObject, { algorithms: ['ES256'] });
      claims = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
    } catch {
      return bad;
    }
    if (claims.iss !== key.teamId) return bad;
    if (typeof claims.iat !== 'number') return bad;
    return { ok: true, keyId: key.keyId, teamId: key.teamId, iat: claims.iat, key };
  }

  private takeScripted(token: string): ApnsScriptAction | undefined {
    const t = this.tokenActions.get(token);
    if (t) {
      t.remaining--;
      if (t.remaining <= 0) this.tokenActions.delete(token);
      return t.action;
    }
    return this.nextActions.shift();
  }

  /** undefined when there is nothing to wait for (keeps the hot path synchronous). */
  private maybeStall(): Promise<void> | undefined {
    const ms = this.stallNextQueue.length ? this.stallNextQueue.shift()! : this.stallAllMs;
    if (ms <= 0) return undefined;
    if (ms === Infinity) return new Promise<void>(() => {});
    return new Promise<void>((r) => setTimeout(r, ms).unref?.());
  }

  private reply(
    c: ConnState,
    stream: ServerHttp2Stream,
    status: number,
    reason: string | undefined,
    token: string,
    extra: { timestamp?: number; apnsId?: string },
    t0: number,
  ): void {
    if (status !== 200) this.stats.rejected++;
    if (this.opts.record !== false) {
      this.responses.push({ connectionId: c.id, streamId: stream.id ?? 0, token, status, reason, apnsId: extra.apnsId });
    }
    if (stream.destroyed || stream.closed) return;
    try {
      if (status === 200) {
        const h: Record<string, string | number> = { ':status': 200, 'apns-id': extra.apnsId! };
        if (this.environment === 'sandbox') h['apns-unique-id'] = randomUUID();
        stream.respond(h, { endStream: true });
      } else {
        const body: Record<string, unknown> = { reason };
        if (status === 410) body.timestamp = extra.timestamp ?? this.clock.now();
        stream.respond({ ':status': status, 'content-type': 'application/json', 'apns-id': extra.apnsId ?? randomUUID() });
        stream.end(JSON.stringify(body));
      }
    } catch {
      /* stream went away */
    }
    if (this.opts.recordTimings) {
      this.timings.push(performance.now() - t0);
      this.timingIds.push(extra.apnsId);
    }
  }

  private afterProcessed(c: ConnState, stream: ServerHttp2Stream): void {
    if (!this.goaway) return;
    this.goaway.remaining--;
    if (this.goaway.remaining > 0) return;
    const g = this.goaway;
    this.goaway = undefined;
    c.goawayLastId = stream.id;
    if (!c.session.destroyed) {
      c.session.goaway(g.errorCode, stream.id ?? 0, Buffer.from(JSON.stringify({ reason: g.reason })));
      // Refuse already-open streams above lastStreamId; the client closes the connection.
      const t = setTimeout(() => c.session.destroy(), 5000);
      t.unref?.();
    }
  }
}
