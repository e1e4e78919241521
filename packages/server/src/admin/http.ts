/**
 * Admin HTTP API: the live dashboard (`/`), `/healthz`, Prometheus `/metrics`, and read-only
 * JSON views of the server's state (`/api/summary`), bindings (tokens redacted) and call
 * timelines. Loopback by default. With `admin.token`, everything but /healthz and the
 * dashboard's static files needs `Authorization: Bearer <token>`; without it there is no
 * authentication, so expose it only on a management network.
 */

import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StartupError } from '../errors.js';
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from './dashboard.js';
import type { Binding } from '../location/types.js';
import { redactContact, redactToken } from '../observability/redact.js';
import { sameSecret } from '../util/secure-compare.js';

export interface AdminServer {
  address: string;
  close(): Promise<void>;
}

/** What the admin API reads from the running server (kept narrow on purpose). */
export interface AdminSource {
  store: { all(): Promise<Binding[]>; stats(): Promise<unknown> };
  metrics: { registry: { metrics(): Promise<string>; contentType: string } };
  /** Call timelines, when the proxy is running. */
  timelines?: { list(limit: number): unknown[]; get(callId: string): unknown | undefined };
  /** Counts for the dashboard (bindings, held branches, outcomes). */
  summary?(): Promise<Record<string, unknown>>;
  /** Taking new calls (false while draining before a shutdown): /readyz. */
  ready?(): boolean;
}

/** The dashboard's files: same-origin only, never framed, never sniffed. */
const STATIC: Record<string, { type: string; body: string }> = {
  '/': { type: 'text/html; charset=utf-8', body: DASHBOARD_HTML },
  '/dashboard.js': { type: 'text/javascript; charset=utf-8', body: DASHBOARD_JS },
  '/dashboard.css': { type: 'text/css; charset=utf-8', body: DASHBOARD_CSS },
};
const STATIC_HEADERS = {
  'content-security-policy': "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

export function publicBinding(b: Binding): Record<string, unknown> {
  return {
    id: b.id,
    aor: b.aor,
    contact: redactContact(b.contact),
    instanceId: b.instanceId,
    expiresAt: new Date(b.expiresAt).toISOString(),
    updatedAt: new Date(b.updatedAt).toISOString(),
    transport: b.flow.protocol,
    source: `${b.flow.remoteAddress}:${b.flow.remotePort}`,
    push: b.push
      ? {
          provider: b.push.provider,
          token: redactToken(b.push.prid),
          // A Web Push pn-param is the subscription's p256dh.auth: `auth` is a secret.
          param: b.push.provider === 'webpush' ? redactToken(b.push.param) : b.push.param,
          environment: b.push.environment,
          form: b.push.form,
        }
      : undefined,
    userAgent: b.userAgent,
  };
}

export async function startAdminServer(source: AdminSource, listen: string, options: { token?: string } = {}): Promise<AdminServer> {
  const colon = listen.lastIndexOf(':');
  let host = listen.slice(0, colon);
  if (host.startsWith('[')) host = host.slice(1, -1);
  const port = Number(listen.slice(colon + 1));

  const server = createServer((req, res) => {
    handle(source, req, res, options.token).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, { error: (error as Error).message });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new StartupError(`admin server cannot listen on ${listen}: ${e.message}`, { cause: e })));
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    address: `${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Does the request carry `Authorization: Bearer <token>`? Compared in constant time. */
function bearerMatches(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization ?? '';
  return sameSecret(token, header.startsWith('Bearer ') ? header.slice(7).trim() : '');
}

async function handle(source: AdminSource, req: IncomingMessage, res: ServerResponse, token: string | undefined): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin');
  if (req.method !== 'GET') return send(res, 405, { error: 'method not allowed' });
  // The dashboard's files hold no data (the page asks the API with the token from its URL).
  const file = STATIC[url.pathname];
  if (file) {
    res.writeHead(200, { 'content-type': file.type, ...STATIC_HEADERS });
    res.end(file.body);
    return;
  }
  if (url.pathname === '/favicon.ico') {
    res.writeHead(204); // browsers ask for it; a 404 would be logged in the page's console
    res.end();
    return;
  }
  if (url.pathname === '/healthz') return send(res, 200, { status: 'ok' });
  if (url.pathname === '/readyz') return source.ready?.() === false ? send(res, 503, { status: 'draining' }) : send(res, 200, { status: 'ready' });
  if (token !== undefined && !bearerMatches(req, token)) {
    res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer realm="pushcall admin"' });
    res.end(JSON.stringify({ error: 'admin token required' }));
    return;
  }
  if (url.pathname === '/api/summary' && source.summary) return send(res, 200, await source.summary());
  if (url.pathname === '/metrics') {
    const body = await source.metrics.registry.metrics();
    res.writeHead(200, { 'content-type': source.metrics.registry.contentType });
    res.end(body);
    return;
  }
  if (url.pathname === '/api/bindings') {
    const aor = url.searchParams.get('aor');
    const all = await source.store.all();
    return send(res, 200, { bindings: all.filter((b) => !aor || b.aor === aor).map(publicBinding), stats: await source.store.stats() });
  }
  if (url.pathname === '/api/calls' && source.timelines) {
    return send(res, 200, { calls: source.timelines.list(Number(url.searchParams.get('limit') ?? 100)) });
  }
  const call = /^\/api\/calls\/(.+)$/.exec(url.pathname);
  if (call && source.timelines) {
    const timeline = source.timelines.get(decodeURIComponent(call[1]));
    return timeline ? send(res, 200, timeline) : send(res, 404, { error: 'unknown call' });
  }
  send(res, 404, { error: 'not found' });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
