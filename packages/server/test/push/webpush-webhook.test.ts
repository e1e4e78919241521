import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createECDH, randomBytes } from 'node:crypto';
import webpush from 'web-push';
import { DEFAULT_WEB_PUSH_HOSTS, WebPushProvider, parseWebPushKeys, webPushHostAllowed } from '../../src/push/webpush.js';
import { WebhookProvider, verifyWebhookRequest, verifyWebhookSignature } from '../../src/push/webhook.js';
import { buildPayload } from '../../src/push/payload.js';
import type { PushBinding, PushFailure, PushOutcome } from '../../src/push/types.js';

interface Hit { method: string; url: string; headers: IncomingHttpHeaders; body: Buffer }

async function server(handler: (hit: Hit, n: number) => { status: number; body?: string; headers?: Record<string, string> }) {
  const hits: Hit[] = [];
  const s = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const hit = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) };
      hits.push(hit);
      const r = handler(hit, hits.length);
      res.writeHead(r.status, r.headers ?? {});
      res.end(r.body ?? '');
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return { hits, url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); }) };
}

const payload = (extra: Partial<Parameters<typeof buildPayload>[0]> = {}) =>
  buildPayload({ type: 'call', callId: 'call-9@example.com', fromUri: 'sip:bob@example.com', fromName: 'Bob', to: 'sip:alice@example.com', ttl: 25, ...extra });

function failure(o: PushOutcome): PushFailure {
  assert.equal(o.ok, false, JSON.stringify(o));
  return o as PushFailure;
}

const vapid = webpush.generateVAPIDKeys();

test('webpush: payload-less push with VAPID, TTL and Urgency; 201 → ok', async () => {
  const srv = await server(() => ({ status: 201, headers: { location: '/msg/1' } }));
  const p = new WebPushProvider({ vapidPublicKey: vapid.publicKey, vapidPrivateKey: vapid.privateKey, subject: 'mailto:ops@example.com', allowedHosts: ['127.0.0.1'] });
  try {
    const b: PushBinding = { bindingId: 'b', aor: 'sip:a@x', provider: 'webpush', prid: encodeURIComponent(`${srv.url}/push/sub-1`), registeredAt: 0 };
    const out = await p.sendCall(b, payload());
    assert.ok(out.ok && out.status === 201 && out.id === '/msg/1', JSON.stringify(out));
    const h = srv.hits[0];
    assert.equal(h.url, '/push/sub-1');
    assert.equal(h.headers.ttl, '25');
    assert.equal(h.headers.urgency, 'high');
    assert.match(String(h.headers.authorization), /^vapid t=[\w-]+\.[\w-]+\.[\w-]+, k=[\w-]+$/);
    assert.equal(h.body.length, 0);
  } finally {
    await srv.close();
  }
});

test('webpush: encrypted aes128gcm payload when pn-param carries p256dh.auth', async () => {
  const srv = await server(() => ({ status: 201 }));
  const p = new WebPushProvider({ vapidPublicKey: vapid.publicKey, vapidPrivateKey: vapid.privateKey, subject: 'mailto:ops@example.com', allowedHosts: ['127.0.0.1'] });
  try {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const param = `${ecdh.getPublicKey().toString('base64url')}.${randomBytes(16).toString('base64url')}`;
    assert.ok(parseWebPushKeys(param));
    const out = await p.sendCall({ bindingId: 'b', aor: 'sip:a@x', provider: 'webpush', prid: `${srv.url}/push/sub-2`, param, registeredAt: 0 }, payload());
    assert.ok(out.ok);
    assert.equal(srv.hits[0].headers['content-encoding'], 'aes128gcm');
    assert.ok(srv.hits[0].body.length > 100);
  } finally {
    await srv.close();
  }
});

test('webpush: 410 / 404 remove the binding; 500 gets one retry', async () => {
  const srv = await server((h) => (h.url.endsWith('gone') ? { status: 410 } : h.url.endsWith('missing') ? { status: 404 } : { status: 500 }));
  const p = new WebPushProvider({ vapidPublicKey: vapid.publicKey, vapidPrivateKey: vapid.privateKey, subject: 'mailto:ops@example.com', allowedHosts: ['127.0.0.1'] });
  const b = (path: string): PushBinding => ({ bindingId: 'b', aor: 'sip:a@x', provider: 'webpush', prid: `${srv.url}/${path}`, registeredAt: 0 });
  try {
    const f = failure(await p.sendCall(b('gone'), payload()));
    assert.equal(f.error, 'PUSH_UNREGISTERED');
    assert.equal(f.removeBinding, true);
    assert.equal(failure(await p.sendCall(b('missing'), payload())).removeBinding, true);
    const n = srv.hits.length;
    const g = failure(await p.sendCall(b('err'), payload()));
    assert.equal(g.error, 'PUSH_UNAVAILABLE');
    assert.equal(srv.hits.length - n, 2);
  } finally {
    await srv.close();
  }
});

test('webhook: signed JSON body verified by the receiver; binding, kind and payload carried', async () => {
  const secret = 'a-shared-secret-of-some-length';
  const srv = await server((h) => {
    const ok = verifyWebhookSignature(secret, h.body.toString('utf8'), h.headers['x-pushcall-signature'] as string);
    return ok ? { status: 202, body: JSON.stringify({ id: 'hook-1' }) } : { status: 401 };
  });
  const p = new WebhookProvider('mypush', { url: `${srv.url}/hook`, secret });
  try {
    const b: PushBinding = { bindingId: 'b7', aor: 'sip:a@x', provider: 'mypush', prid: 'device-xyz', param: 'p', registeredAt: 5 };
    const out = await p.sendCall(b, payload());
    assert.ok(out.ok && out.id === 'hook-1', JSON.stringify(out));
    const h = srv.hits[0];
    assert.match(String(h.headers['x-pushcall-signature']), /^sha256=[0-9a-f]{64}$/);
    assert.ok(Math.abs(Number(h.headers['x-pushcall-timestamp']) - Date.now() / 1000) < 5);
    // The timestamped signature covers the timestamp: a replay later, or with a moved timestamp, is refused.
    const ts = String(h.headers['x-pushcall-timestamp']);
    const tsSig = String(h.headers['x-pushcall-signature-timestamped']);
    const raw = h.body.toString('utf8');
    assert.equal(verifyWebhookRequest(secret, raw, ts, tsSig), true);
    assert.equal(verifyWebhookRequest(secret, raw, ts, tsSig, { nowSeconds: Number(ts) + 301 }), false, 'too old');
    assert.equal(verifyWebhookRequest(secret, raw, String(Number(ts) + 100), tsSig, { nowSeconds: Number(ts) + 100 }), false, 'timestamp moved');
    const body = JSON.parse(h.body.toString('utf8'));
    assert.deepEqual(body.binding, b);
    assert.equal(body.kind, 'call');
    assert.equal(body.payload.pushcall.call_id, 'call-9@example.com');
    // A wrong secret is rejected by the receiver.
    const bad = new WebhookProvider('mypush', { url: `${srv.url}/hook`, secret: 'another-secret-of-some-length' });
    assert.equal(failure(await bad.sendCall(b, payload())).error, 'PUSH_PROVIDER_AUTH');
  } finally {
    await srv.close();
  }
});

test('webhook: 410 removes, 503 retried once then PUSH_UNAVAILABLE, slow receiver → PUSH_TIMEOUT', async () => {
  let mode = 'gone';
  const srv = await server(() => (mode === 'gone' ? { status: 410 } : { status: 503 }));
  const p = new WebhookProvider('mypush', { url: srv.url, secret: 'a-shared-secret-of-some-length' });
  const b: PushBinding = { bindingId: 'b', aor: 'sip:a@x', provider: 'mypush', prid: 'd', registeredAt: 0 };
  try {
    const f = failure(await p.sendAlert(b, payload({ type: 'missed_call' })));
    assert.equal(f.error, 'PUSH_UNREGISTERED');
    assert.equal(f.removeBinding, true);
    mode = 'down';
    const n = srv.hits.length;
    assert.equal(failure(await p.sendCall(b, payload())).error, 'PUSH_UNAVAILABLE');
    assert.equal(srv.hits.length - n, 2);
  } finally {
    await srv.close();
  }
  const slow = http.createServer(() => { /* never answers */ });
  await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
  try {
    const q = new WebhookProvider('mypush', { url: `http://127.0.0.1:${(slow.address() as AddressInfo).port}`, secret: 'a-shared-secret-of-some-length' });
    assert.equal(failure(await q.sendCall(b, payload(), { deadlineMs: 150 })).error, 'PUSH_TIMEOUT');
  } finally {
    slow.closeAllConnections();
    await new Promise<void>((r) => slow.close(() => r()));
  }
});

test('Web Push posts only to the allowed push-service hosts: a subscription pointing elsewhere is refused unsent (no SSRF)', async () => {
  let hits = 0;
  const srv = await server(() => {
    hits++;
    return { status: 201 };
  });
  try {
    const vapid = webpush.generateVAPIDKeys();
    const p = new WebPushProvider({ vapidPublicKey: vapid.publicKey, vapidPrivateKey: vapid.privateKey, subject: 'mailto:ops@example.com' });
    const out = await p.sendCall({ bindingId: 'b', aor: 'sip:a@x', provider: 'webpush', prid: `${srv.url}/internal`, registeredAt: 0 }, payload());
    assert.equal(out.ok, false);
    assert.equal((out as PushFailure).error, 'PUSH_BAD_REQUEST');
    assert.equal(hits, 0, 'nothing was sent to the host');
    assert.equal(webPushHostAllowed('https://updates.push.services.mozilla.com/wpush/v2/x', DEFAULT_WEB_PUSH_HOSTS), true);
    assert.equal(webPushHostAllowed('https://fcm.googleapis.com/fcm/send/x', DEFAULT_WEB_PUSH_HOSTS), true);
    assert.equal(webPushHostAllowed('https://evilpush.apple.com.example/x', DEFAULT_WEB_PUSH_HOSTS), false);
    assert.equal(webPushHostAllowed('https://10.0.0.5/x', DEFAULT_WEB_PUSH_HOSTS), false);
  } finally {
    await srv.close();
  }
});
