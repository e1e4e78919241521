import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { ClientHttp2Session, OutgoingHttpHeaders } from 'node:http2';
import { createPrivateKey, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { ApnsDeviceRegistry, ApnsEmulator, makeApnsKey } from '../../src/emulators/index.js';
import type { ApnsPush } from '../../src/emulators/index.js';
import { FakeClock } from '../../../sip/src/util/clock.js';

const TEAM = 'TEAM123456';
const BUNDLE = 'com.example.app';
const key = makeApnsKey({ teamId: TEAM, bundleIds: [BUNDLE] });
const otherTeamKey = makeApnsKey({ keyId: 'OTHERKEY01', teamId: 'OTHERTEAM1', bundleIds: ['org.other'] });
const TOKEN = 'ab'.repeat(32);

async function jwt(k = key, iatMs = Date.now(), kid = k.keyId): Promise<string> {
  return new SignJWT({ iss: k.teamId, iat: Math.floor(iatMs / 1000) }).setProtectedHeader({ alg: 'ES256', kid }).sign(createPrivateKey(k.privateKeyPem));
}

interface Res { status: number; headers: Record<string, unknown>; json?: { reason?: string; timestamp?: number } }

function request(s: ClientHttp2Session, headers: OutgoingHttpHeaders, body: string | undefined = '{"aps":{}}'): Promise<Res> {
  return new Promise((resolve, reject) => {
    const h0: OutgoingHttpHeaders = { ':method': 'POST', ...headers };
    for (const k of Object.keys(h0)) if (h0[k] === undefined) delete h0[k];
    const st = s.request(h0, { endStream: h0[':method'] === 'GET' });
    let data = '';
    let h: Record<string, unknown> = {};
    st.setEncoding('utf8');
    st.on('response', (rh) => (h = rh));
    st.on('data', (d: string) => (data += d));
    st.on('end', () => resolve({ status: Number(h[':status']), headers: h, json: data ? JSON.parse(data) : undefined }));
    st.on('error', reject);
    if (h0[':method'] !== 'GET') st.end(body);
  });
}

const voip = (auth: string, extra: OutgoingHttpHeaders = {}): OutgoingHttpHeaders => ({
  ':path': `/3/device/${TOKEN}`, authorization: `bearer ${auth}`, 'apns-topic': `${BUNDLE}.voip`, 'apns-push-type': 'voip', 'apns-priority': '10', ...extra,
});

let emu: ApnsEmulator;
before(async () => {
  emu = await new ApnsEmulator({ keys: [key, otherTeamKey], environment: 'sandbox' }).start();
});
after(async () => {
  await emu.close();
});

function connect(e = emu): ClientHttp2Session {
  const s = http2.connect(e.url, { ca: e.caPem });
  s.on('error', () => {});
  return s;
}

test('accepts a valid VoIP push: 200, apns-id echoed, apns-unique-id in sandbox, delivered to the subscriber', async () => {
  const s = connect();
  try {
    const id = randomUUID();
    const got = new Promise<ApnsPush>((r) => emu.subscribe(TOKEN, r));
    const r = await request(s, voip(await jwt(), { 'apns-id': id, 'apns-expiration': '0' }));
    assert.equal(r.status, 200);
    assert.equal(r.headers['apns-id'], id);
    assert.ok(r.headers['apns-unique-id']);
    assert.equal(r.json, undefined);
    const p = await got;
    assert.equal(p.apnsId, id);
    assert.equal(p.expiration, 0);
    assert.equal(p.headers.authorization, undefined);
  } finally {
    s.close();
  }
});

test('one stream until the first valid-auth request, then the configured MAX_CONCURRENT_STREAMS', async () => {
  const s = connect();
  try {
    await new Promise<void>((r) => s.once('remoteSettings', () => r()));
    assert.equal(s.remoteSettings.maxConcurrentStreams, 1);
    const settings = new Promise<void>((r) => s.once('remoteSettings', () => r()));
    assert.equal((await request(s, voip(await jwt()))).status, 200);
    await settings;
    assert.equal(s.remoteSettings.maxConcurrentStreams, 1000);
  } finally {
    s.close();
  }
});

test('request validation follows Apple\'s reason table', async () => {
  const s = connect();
  const t = await jwt();
  const cases: [OutgoingHttpHeaders, string | undefined, number, string][] = [
    [{ ...voip(t), ':method': 'GET' }, undefined, 405, 'MethodNotAllowed'],
    [{ ...voip(t), ':path': '/2/device/abc' }, undefined, 404, 'BadPath'],
    [{ ...voip(t), ':path': '/3/device/' }, undefined, 400, 'MissingDeviceToken'],
    [{ ...voip(t), ':path': '/3/device/not-hex' }, undefined, 400, 'BadDeviceToken'],
    [{ ...voip(t), 'apns-topic': undefined }, undefined, 400, 'MissingTopic'],
    [{ ...voip(t), 'apns-topic': 'com.evil.app.voip' }, undefined, 400, 'TopicDisallowed'],
    [{ ...voip(t), 'apns-topic': BUNDLE }, undefined, 400, 'InvalidPushType'],
    [{ ...voip(t), 'apns-push-type': 'alert' }, undefined, 400, 'InvalidPushType'],
    [{ ...voip(t), 'apns-push-type': 'fax' }, undefined, 400, 'InvalidPushType'],
    [{ ...voip(t), 'apns-priority': '7' }, undefined, 400, 'BadPriority'],
    [{ ...voip(t), 'apns-topic': BUNDLE, 'apns-push-type': 'background', 'apns-priority': '10' }, undefined, 400, 'BadPriority'],
    [{ ...voip(t), 'apns-expiration': 'soon' }, undefined, 400, 'BadExpirationDate'],
    [{ ...voip(t), 'apns-id': 'not-a-uuid' }, undefined, 400, 'BadMessageId'],
    [{ ...voip(t), 'apns-collapse-id': 'x'.repeat(65) }, undefined, 400, 'BadCollapseId'],
    [{ ...voip(t), 'apns-topic': [`${BUNDLE}.voip`, `${BUNDLE}.voip`] }, undefined, 400, 'DuplicateHeaders'],
    [voip(t), '', 400, 'PayloadEmpty'],
    [voip(t), JSON.stringify({ aps: {}, x: 'y'.repeat(5200) }), 413, 'PayloadTooLarge'],
    [{ ...voip(t), 'apns-topic': BUNDLE, 'apns-push-type': 'alert' }, JSON.stringify({ aps: {}, x: 'y'.repeat(4100) }), 413, 'PayloadTooLarge'],
  ];
  try {
    for (const [h, body, status, reason] of cases) {
      const r = await request(s, h, body);
      assert.equal(r.status, status, `${reason}: got ${r.status} ${r.json?.reason}`);
      assert.equal(r.json?.reason, reason);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.json?.timestamp, undefined, 'timestamp only on 410');
    }
    // VoIP allows 5120 bytes where alerts stop at 4096.
    assert.equal((await request(s, voip(t), JSON.stringify({ aps: {}, x: 'y'.repeat(5000) }))).status, 200);
  } finally {
    s.close();
  }
});

test('provider token checks: missing, unknown kid, bad signature, expired iat, wrong iss', async () => {
  const s = connect();
  try {
    const noAuth = voip('x');
    delete noAuth.authorization;
    assert.equal((await request(s, noAuth)).json?.reason, 'MissingProviderToken');
    assert.equal((await request(s, voip(await jwt(key, Date.now(), 'UNKNOWNKID')))).json?.reason, 'InvalidProviderToken');
    const forged = (await jwt()).split('.');
    forged[2] = (await jwt(otherTeamKey)).split('.')[2];
    assert.equal((await request(s, voip(forged.join('.')))).json?.reason, 'InvalidProviderToken');
    const old = await request(s, voip(await jwt(key, Date.now() - 61 * 60_000)));
    assert.equal(old.status, 403);
    assert.equal(old.json?.reason, 'ExpiredProviderToken');
    const wrongIss = await new SignJWT({ iss: 'NOTMYTEAM1', iat: Math.floor(Date.now() / 1000) }).setProtectedHeader({ alg: 'ES256', kid: key.keyId }).sign(createPrivateKey(key.privateKeyPem));
    assert.equal((await request(s, voip(wrongIss))).json?.reason, 'InvalidProviderToken');
  } finally {
    s.close();
  }
});

test('a connection is bound to one team (UnrelatedKeyIdInToken) and to one token per 20 minutes', async () => {
  const clock = new FakeClock(Date.now());
  const e = await new ApnsEmulator({ keys: [key, otherTeamKey], clock }).start();
  const s = connect(e);
  try {
    const t1 = await jwt(key, clock.now());
    assert.equal((await request(s, voip(t1))).status, 200);
    const other = await request(s, { ...voip(await jwt(otherTeamKey, clock.now())), 'apns-topic': 'org.other.voip' });
    assert.equal(other.json?.reason, 'UnrelatedKeyIdInToken');
    clock.advance(5 * 60_000);
    const t2 = await jwt(key, clock.now());
    const early = await request(s, voip(t2));
    assert.equal(early.status, 429);
    assert.equal(early.json?.reason, 'TooManyProviderTokenUpdates');
    assert.equal((await request(s, voip(t1))).status, 200, 'the pinned token still works');
    clock.advance(15 * 60_000);
    assert.equal((await request(s, voip(t2))).status, 200, 'a new token after 20 minutes is fine');
    // A fresh connection may use any valid token at once.
    const s2 = connect(e);
    assert.equal((await request(s2, voip(await jwt(key, clock.now())))).status, 200);
    s2.close();
  } finally {
    s.close();
    await e.close();
  }
});

test('device registry: other environment → BadDeviceToken, wrong app → DeviceTokenNotForTopic, unregister → 410 + timestamp', async () => {
  const devices = new ApnsDeviceRegistry();
  const prod = await new ApnsEmulator({ keys: [key], devices, environment: 'production' }).start();
  const s = connect(prod);
  try {
    const t = await jwt();
    const sandboxToken = 'cd'.repeat(32);
    emu.devices.register({ token: sandboxToken, bundleId: BUNDLE, environment: 'sandbox' });
    devices.register({ token: sandboxToken, bundleId: BUNDLE, environment: 'sandbox' });
    const r = await request(s, { ...voip(t), ':path': `/3/device/${sandboxToken}` });
    assert.equal(r.json?.reason, 'BadDeviceToken');
    assert.equal(r.headers['apns-unique-id'], undefined, 'no apns-unique-id in production');
    const otherApp = 'ef'.repeat(32);
    prod.registerDevice({ token: otherApp, bundleId: 'com.example.other' });
    assert.equal((await request(s, { ...voip(t), ':path': `/3/device/${otherApp}` })).json?.reason, 'DeviceTokenNotForTopic');
    const gone = '12'.repeat(32);
    prod.registerDevice({ token: gone, bundleId: BUNDLE });
    prod.unregister(gone, 1_700_000_000_123);
    const g = await request(s, { ...voip(t), ':path': `/3/device/${gone}` });
    assert.equal(g.status, 410);
    assert.deepEqual(g.json, { reason: 'Unregistered', timestamp: 1_700_000_000_123 });
  } finally {
    s.close();
    await prod.close();
  }
});

test('scripting: failNext / failFor / goawayAfter with JSON reason and lastStreamId', async () => {
  const e = await new ApnsEmulator({ keys: [key] }).start();
  const s = connect(e);
  try {
    const t = await jwt();
    assert.equal((await request(s, voip(t))).status, 200);
    e.failNext({ status: 503, reason: 'ServiceUnavailable' });
    assert.equal((await request(s, voip(t))).json?.reason, 'ServiceUnavailable');
    e.failFor(TOKEN, { status: 429, reason: 'TooManyRequests' }, 2);
    assert.equal((await request(s, voip(t))).status, 429);
    assert.equal((await request(s, voip(t))).status, 429);
    assert.equal((await request(s, voip(t))).status, 200);
    e.goawayAfter(1, { reason: 'Shutdown' });
    const goaway = new Promise<[number, number, string]>((r) => s.once('goaway', (code: number, last: number, data: Buffer) => r([code, last, data.toString()])));
    assert.equal((await request(s, voip(t))).status, 200);
    const [code, last, data] = await goaway;
    assert.equal(code, 0);
    assert.equal(last, 11);
    assert.deepEqual(JSON.parse(data), { reason: 'Shutdown' });
  } finally {
    s.close();
    await e.close();
  }
});

test('delivery: configurable delay and seeded loss', async () => {
  const e = await new ApnsEmulator({ keys: [key], deliveryDelayMs: [20, 40], lossProbability: 0.5, seed: 42 }).start();
  const s = connect(e);
  try {
    const t = await jwt();
    const got: ApnsPush[] = [];
    e.subscribe(TOKEN, (p) => got.push(p));
    const sentAt = Date.now();
    for (let i = 0; i < 40; i++) assert.equal((await request(s, voip(t))).status, 200);
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(got.length + e.stats.lost, 40);
    assert.ok(e.stats.lost > 8 && e.stats.lost < 32, `lost ${e.stats.lost}`);
    assert.ok(got.every((p) => (p as ApnsPush & { deliveredAt: number }).deliveredAt - sentAt >= 19));
  } finally {
    s.close();
    await e.close();
  }
});
