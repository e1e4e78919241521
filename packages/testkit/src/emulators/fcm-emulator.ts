/**
 * A faithful FCM HTTP v1 emulator (HTTP/1.1 on loopback): the OAuth2 token endpoint that
 * exchanges a service-account RS256 JWT assertion for an access token, and
 * `POST /v1/projects/{project}/messages:send` with FCM's validation and error JSON
 * (`details[].errorCode` in a `google.firebase.fcm.v1.FcmError`).
 * Facts: shared/reference/push-protocols.md §2.
 */

import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createPublicKey, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { compactVerify, decodeJwt } from 'jose';
import { DeviceDelivery, listen, seededRandom, systemClock } from './util.js';
import type { DelaySpec, EmulatorClock } from './util.js';

export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const FCM_ERROR_TYPE = 'type.googleapis.com/google.firebase.fcm.v1.FcmError';

export type FcmErrorCode =
  | 'UNSPECIFIED_ERROR'
  | 'INVALID_ARGUMENT'
  | 'UNREGISTERED'
  | 'SENDER_ID_MISMATCH'
  | 'QUOTA_EXCEEDED'
  | 'UNAVAILABLE'
  | 'INTERNAL'
  | 'THIRD_PARTY_AUTH_ERROR';

const ERROR_STATUS: Record<FcmErrorCode, [number, string, string]> = {
  UNSPECIFIED_ERROR: [500, 'UNKNOWN', 'Unknown error.'],
  INVALID_ARGUMENT: [400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.'],
  UNREGISTERED: [404, 'NOT_FOUND', 'Requested entity was not found.'],
  SENDER_ID_MISMATCH: [403, 'PERMISSION_DENIED', 'SenderId mismatch'],
  QUOTA_EXCEEDED: [429, 'RESOURCE_EXHAUSTED', 'Quota exceeded for quota metric.'],
  UNAVAILABLE: [503, 'UNAVAILABLE', 'The service is currently unavailable.'],
  INTERNAL: [500, 'INTERNAL', 'Internal error encountered.'],
  THIRD_PARTY_AUTH_ERROR: [401, 'UNAUTHENTICATED', 'Auth error from APNS or Web Push Service'],
};

/** The fields of a Google service-account JSON the push gateway uses. */
export interface ServiceAccountJson {
  type: 'service_account';
  project_id: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id: string;
  token_uri: string;
}

export interface FcmScriptAction {
  errorCode: FcmErrorCode;
  /** Override the HTTP status / message. */
  status?: number;
  message?: string;
  /** Retry-After header, seconds. */
  retryAfter?: number;
}

export interface FcmMessageRecord {
  name: string;
  project: string;
  token: string;
  data: Record<string, string>;
  /** Parsed `data.pushcall`, when present and JSON. */
  payload: unknown;
  android: Record<string, unknown> | undefined;
  message: Record<string, unknown>;
  receivedAt: number;
}

export interface FcmEmulatorOptions {
  clock?: EmulatorClock;
  /** Access-token lifetime (default 3600 s). */
  tokenTtlSeconds?: number;
  /** Unknown device tokens answer INVALID_ARGUMENT (not a valid registration token). */
  strictDevices?: boolean;
  deliveryDelayMs?: DelaySpec;
  lossProbability?: number;
  seed?: number;
  record?: boolean;
  host?: string;
  port?: number;
}

interface Account {
  clientEmail: string;
  projectId: string;
  publicKey: KeyObject;
}

type Subscriber = (m: FcmMessageRecord & { deliveredAt: number }) => void;

export class FcmEmulator {
  readonly received: FcmMessageRecord[] = [];
  readonly responses: { path: string; status: number; errorCode?: string }[] = [];
  readonly stats = { tokenRequests: 0, tokensIssued: 0, sends: 0, accepted: 0, rejected: 0, unauthenticated: 0, delivered: 0, lost: 0 };

  private readonly opts: FcmEmulatorOptions;
  private readonly clock: EmulatorClock;
  private readonly rnd: () => number;
  private readonly accounts = new Map<string, Account>();
  private readonly accessTokens = new Map<string, { account: Account; expiresAt: number }>();
  private readonly devices = new Map<string, { projectId: string; unregistered: boolean }>();
  private readonly delivery: DeviceDelivery<FcmMessageRecord>;
  private readonly nextActions: FcmScriptAction[] = [];
  private readonly tokenActions = new Map<string, { action: FcmScriptAction; remaining: number }>();
  private stallMs = 0;
  private server?: http.Server;
  private _port = 0;

  constructor(opts: FcmEmulatorOptions = {}) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.rnd = seededRandom(opts.seed ?? 1);
    this.delivery = new DeviceDelivery(opts, this.rnd, this.clock, this.stats);
  }

  get port(): number {
    return this._port;
  }
  /** Base URL for `messages:send` (the provider's FCM endpoint override). */
  get url(): string {
    return `http://127.0.0.1:${this._port}`;
  }
  /** OAuth2 token endpoint (the service account's token_uri). */
  get tokenUri(): string {
    return `${this.url}/token`;
  }

  /** Register a service account's public key for `projectId`. */
  addServiceAccount(a: { clientEmail: string; projectId: string; publicKey: string | KeyObject }): void {
    const publicKey = typeof a.publicKey === 'string' ? createPublicKey(a.publicKey) : a.publicKey;
    this.accounts.set(a.clientEmail, { clientEmail: a.clientEmail, projectId: a.projectId, publicKey });
  }

  /** Make a test service account (RSA 2048) whose token_uri points at this emulator, and register it. */
  createServiceAccount(projectId = 'pushcall-test', clientEmail = `pushcall@${projectId}.iam.gserviceaccount.com`): ServiceAccountJson {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.addServiceAccount({ clientEmail, projectId, publicKey });
    return {
      type: 'service_account',
      project_id: projectId,
      private_key_id: randomBytes(20).toString('hex'),
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: clientEmail,
      client_id: String(100000000000000000000n + BigInt(Math.floor(this.rnd() * 1e15))),
      token_uri: this.tokenUri,
    };
  }

  /** A device (registration token) of an app in `projectId`. */
  registerDevice(d: { token: string; projectId: string }): void {
    this.devices.set(d.token, { projectId: d.projectId, unregistered: false });
  }

  /** The app was uninstalled: sends answer 404 UNREGISTERED. */
  unregister(token: string): void {
    const d = this.devices.get(token);
    if (d) d.unregistered = true;
    else this.devices.set(token, { projectId: '', unregistered: true });
  }

  /** Invalidate every issued access token (sends answer 401 UNAUTHENTICATED until refreshed). */
  revokeAccessTokens(): void {
    this.accessTokens.clear();
  }

  failNext(a: FcmScriptAction, count = 1): void {
    for (let i = 0; i < count; i++) this.nextActions.push(a);
  }

  failFor(token: string, a: FcmScriptAction, count = Infinity): void {
    this.tokenActions.set(token, { action: a, remaining: count });
  }

  clearFailures(): void {
    this.nextActions.length = 0;
    this.tokenActions.clear();
    this.stallMs = 0;
  }

  /** Hold every messages:send response for `ms` (0 stops, Infinity never answers). */
  stall(ms: number): void {
    this.stallMs = ms;
  }

  subscribe(token: string, cb: Subscriber): () => void {
    return this.delivery.subscribe(token, cb);
  }


  async start(): Promise<this> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void this.route(req, res, Buffer.concat(chunks).toString('utf8')).catch(() => {
          if (!res.headersSent) this.json(res, 500, { error: { code: 500, message: 'emulator failure', status: 'INTERNAL' } });
        });
      });
    });
    server.keepAliveTimeout = 30_000;
    this._port = await listen(server, this.opts.port ?? 0, this.opts.host ?? '127.0.0.1');
    this.server = server;
    return this;
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }

  // ---- routing ----------------------------------------------------------------------------

  private async route(req: IncomingMessage, res: ServerResponse, body: string): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    if (url.pathname === '/token') return this.token(req, res, body);
    const m = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(url.pathname);
    if (m) {
      if (req.method !== 'POST') return this.json(res, 405, { error: { code: 405, message: 'Method Not Allowed', status: 'UNIMPLEMENTED' } });
      return this.send(req, res, decodeURIComponent(m[1]), body, url.pathname);
    }
    this.json(res, 404, { error: { code: 404, message: 'Not Found', status: 'NOT_FOUND' } });
  }

  private json(res: ServerResponse, status: number, obj: unknown, headers: Record<string, string> = {}): void {
    const s = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(s), ...headers });
    res.end(s);
  }

  private async token(req: IncomingMessage, res: ServerResponse, body: string): Promise<void> {
    this.stats.tokenRequests++;
    const oauthError = (error: string, description: string) => this.json(res, 400, { error, error_description: description });
    if (req.method !== 'POST') return this.json(res, 405, { error: 'invalid_request' });
    const form = new URLSearchParams(body);
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return oauthError('unsupported_grant_type', 'Invalid grant_type: ' + (form.get('grant_type') ?? ''));
    const assertion = form.get('assertion');
    if (!assertion) return oauthError('invalid_request', 'Missing required parameter: assertion');
    let claims: Record<string, unknown>;
    try {
      claims = decodeJwt(assertion) as Record<string, unknown>;
    } catch {
      return oauthError('invalid_grant', 'Invalid JWT.');
    }
    const account = typeof claims.iss === 'string' ? this.accounts.get(claims.iss) : undefined;
    if (!account) return oauthError('invalid_grant', 'Invalid grant: account not found');
    try {
      await compactVerify(assertion, account.publicKey, { algorithms: ['RS256'] });
    } catch {
      return oauthError('invalid_grant', 'Invalid JWT Signature.');
    }
    if (claims.aud !== this.tokenUri) return oauthError('invalid_grant', 'Invalid JWT: Failed audience check.');
    const scopes = typeof claims.scope === 'string' ? claims.scope.split(/\s+/) : [];
    if (!scopes.includes(FCM_SCOPE) && !scopes.includes(CLOUD_PLATFORM_SCOPE)) return oauthError('invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
    const iat = Number(claims.iat);
    const exp = Number(claims.exp);
    const now = this.clock.now() / 1000;
    if (!Number.isFinite(iat) || !Number.isFinite(exp)) return oauthError('invalid_grant', 'Invalid JWT: iat/exp missing.');
    if (exp - iat > 3600) return oauthError('invalid_grant', 'Invalid JWT: Expiration time is too far in the future (exp - iat > 3600).');
    if (exp <= now || iat > now + 300) return oauthError('invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
    const ttl = this.opts.tokenTtlSeconds ?? 3600;
    const accessToken = `ya29.emu-${randomUUID()}`;
    this.accessTokens.set(accessToken, { account, expiresAt: this.clock.now() + ttl * 1000 });
    this.stats.tokensIssued++;
    this.json(res, 200, { access_token: accessToken, expires_in: ttl, token_type: 'Bearer' });
  }

  private fcmError(res: ServerResponse, path: string, code: FcmErrorCode, o: { status?: number; message?: string; retryAfter?: number; extraDetails?: unknown[] } = {}): void {
    const [status, statusText, message] = ERROR_STATUS[code];
    const st = o.status ?? status;
    this.stats.rejected++;
    if (this.opts.record !== false) this.responses.push({ path, status: st, errorCode: code });
    const headers: Record<string, string> = {};
    if (o.retryAfter !== undefined) headers['retry-after'] = String(o.retryAfter);
    this.json(res, st, {
      error: { code: st, message: o.message ?? message, status: statusText, details: [{ '@type': FCM_ERROR_TYPE, errorCode: code }, ...(o.extraDetails ?? [])] },
    }, headers);
  }

  private async send(req: IncomingMessage, res: ServerResponse, project: string, body: string, path: string): Promise<void> {
    this.stats.sends++;
    if (this.stallMs === Infinity) return;
    if (this.stallMs > 0) await new Promise((r) => setTimeout(r, this.stallMs).unref?.());
    // Auth: a stale/unknown OAuth token is 401 without an FcmError detail.
    const auth = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    const at = m ? this.accessTokens.get(m[1]) : undefined;
    if (!at || at.expiresAt <= this.clock.now()) {
      if (at) this.accessTokens.delete(m![1]);
      this.stats.unauthenticated++;
      if (this.opts.record !== false) this.responses.push({ path, status: 401 });
      return this.json(res, 401, {
        error: {
          code: 401,
          message: 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
          status: 'UNAUTHENTICATED',
        },
      });
    }
    if (!this.knownProject(project)) {
      if (this.opts.record !== false) this.responses.push({ path, status: 404 });
      return this.json(res, 404, { error: { code: 404, message: 'Requested entity was not found.', status: 'NOT_FOUND' } });
    }
    if (at.account.projectId !== project) {
      if (this.opts.record !== false) this.responses.push({ path, status: 403 });
      return this.json(res, 403, { error: { code: 403, message: `Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/${project}' (or it may not exist).`, status: 'PERMISSION_DENIED' } });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return this.fcmError(res, path, 'INVALID_ARGUMENT', { message: 'Invalid JSON payload received.' });
    }
    const msg = (parsed as { message?: unknown }).message;
    if (typeof msg !== 'object' || msg === null) return this.fcmError(res, path, 'INVALID_ARGUMENT', { message: 'Request contains an invalid argument.' });
    const message = msg as Record<string, unknown>;
    const targets = ['token', 'topic', 'condition'].filter((k) => message[k] !== undefined);
    if (targets.length !== 1) return this.fcmError(res, path, 'INVALID_ARGUMENT', { message: 'Exactly one of token, topic or condition must be set.' });
    const token = message.token;
    if (typeof token !== 'string' || token.length === 0) return this.fcmError(res, path, 'INVALID_ARGUMENT', { message: 'The registration token is not a valid FCM registration token' });
    const data = message.data ?? {};
    if (typeof data !== 'object' || data === null || Array.isArray(data)) return this.fcmError(res, path, 'INVALID_ARGUMENT', { message: 'Invalid value at \'message.data\'' });
    let dataBytes = 0;
    for (const [k, v] of Object.entries(data as Record<string, unknown>)) {
      if (typeof v !== 'string') return this.fcmError(res, path, 'INVALID_ARGUMENT', { message: `Invalid value at 'message.data[0].value' (TYPE_STRING), ${JSON.stringify(v)}` });
      if (k === 'from' || k === 'notification' || k === 'message_type' || k.startsWith('google.') || k.startsWith('gcm.')) {
        return this.fcmError(res, path, 'INVALID_ARGUMENT', { message: `Invalid data payload key: ${k}` });
      }
      dataBytes += Buffer.byteLength(k) + Buffer.byteLength(v);
    }
    if (dataBytes > 4096) return this.fcmError(res, path, 'INVALID_ARGUMENT', { message: 'Android message is too big' });
    const android = message.android as Record<string, unknown> | undefined;
    if (android !== undefined) {
      if (typeof android !== 'object' || android === null) return this.fcmError(res, path, 'INVALID_ARGUMENT', { message: "Invalid value at 'message.android'" });
      if (android.priority !== undefined && !['HIGH', 'NORMAL'].includes(String(android.priority).toUpperCase())) {
        return this.fcmError(res, path, 'INVALID_ARGUMENT', { message: `Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), "${String(android.priority)}"` });
      }
      if (android.ttl !== undefined) {
        const tm = /^(\d+)(\.\d{1,9})?s$/.exec(String(android.ttl));
        if (!tm || Number(tm[1]) > 2_419_200) return this.fcmError(res, path, 'INVALID_ARGUMENT', { message: "Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration)" });
      }
    }
    // Scripted failures, then the device registry.
    const t = this.tokenActions.get(token);
    let action: FcmScriptAction | undefined;
    if (t) {
      action = t.action;
      if (--t.remaining <= 0) this.tokenActions.delete(token);
    } else {
      action = this.nextActions.shift();
    }
    if (action) return this.fcmError(res, path, action.errorCode, action);
    const d = this.devices.get(token);
    if (d?.unregistered) return this.fcmError(res, path, 'UNREGISTERED');
    if (d && d.projectId !== project) return this.fcmError(res, path, 'SENDER_ID_MISMATCH');
    if (!d && this.opts.strictDevices) return this.fcmError(res, path, 'INVALID_ARGUMENT', { message: 'The registration token is not a valid FCM registration token' });

    const name = `projects/${project}/messages/0:${this.clock.now()}%${randomBytes(8).toString('hex')}`;
    let payload: unknown;
    const pc = (data as Record<string, string>).pushcall;
    if (pc !== undefined) {
      try {
        payload = JSON.parse(pc);
      } catch {
        payload = undefined;
      }
    }
    const rec: FcmMessageRecord = { name, project, token, data: data as Record<string, string>, payload, android, message, receivedAt: this.clock.now() };
    this.stats.accepted++;
    if (this.opts.record !== false) {
      this.received.push(rec);
      this.responses.push({ path, status: 200 });
    }
    this.json(res, 200, { name });
    this.deliver(rec);
  }

  private knownProject(project: string): boolean {
    for (const a of this.accounts.values()) if (a.projectId === project) return true;
    for (const d of this.devices.values()) if (d.projectId === project) return true;
    return false;
  }

  private deliver(rec: FcmMessageRecord): void {
    this.delivery.deliver(rec.token, rec);
  }

}
