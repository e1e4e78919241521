import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { selfSignedServerCert } from '../../../testkit/src/emulators/util.js';
import { ApnsDeviceRegistry, ApnsEmulator, makeApnsKey, makeClientCertificate } from '../../../testkit/src/emulators/index.js';
import type { ApnsPush, ApnsTestKey } from '../../../testkit/src/emulators/index.js';
import { FakeClock } from '../../../sip/src/util/clock.js';
import { ApnsProvider, parseApnsParam } from '../../src/push/apns.js';
import type { ApnsProviderOptions } from '../../src/push/apns.js';
import type { PushEvent } from '../../src/push/events.js';
import { buildPayload } from '../../src/push/payload.js';
import type { PushBinding, PushFailure, PushOutcome } from '../../src/push/types.js';

const TEAM = 'TEAM123456';
const BUNDLE = 'com.example.app';

function hexToken(n: number): string {
  return n.toString(16).padStart(8, '0').repeat(8);
}

function binding(token: string, extra: Partial<PushBinding> = {}): PushBinding {
  return { bindingId: 'b1', aor: 'sip:alice@example.com', provider: 'apns', prid: token, param: `${TEAM}.${BUNDLE}.voip`, environment: 'production', registeredAt: 1_000, ...extra };
}

function payload(callId = 'call-1@example.com', extra: Partial<Parameters<typeof buildPayload>[0]> = {}) {
  return buildPayload({ type: 'call', callId, fromUri: 'sip:bob@example.com', fromName: 'Bob', to: 'sip:alice@example.com', ...extra });
}

interface Ctx {
  key: ApnsTestKey;
  emu: ApnsEmulator;
  provider: ApnsProvider;
  events: PushEvent[];
  close(): Promise<void>;
}

async function setup(opts: { provider?: Partial<ApnsProviderOptions>; emulator?: ConstructorParameters<typeof ApnsEmulator>[0] } = {}): Promise<Ctx> {
  const key = makeApnsKey({ teamId: TEAM, bundleIds: [BUNDLE] });
  const emu = await new ApnsEmulator({ keys: [key], ...opts.emulator }).start();
  const events: PushEvent[] = [];
  const provider = new ApnsProvider({
    auth: { kind: 'token', key: key.privateKeyPem, keyId: key.keyId, teamId: key.teamId },
    endpoints: { production: emu.url, sandbox: emu.url },
    ca: emu.caPem,
    pingIntervalMs: 0,
    hooks: { any: (e) => events.push(e) },
    ...opts.provider,
  });
  return {
    key, emu, provider, events,
    async close() {
      await provider.close();
      await emu.close();
    },
  };
}

function failure(o: PushOutcome): PushFailure {
  assert.equal(o.ok, false, `expected failure, got ${JSON.stringify(o)}`);
  return o as PushFailure;
}

test('parseApnsParam splits TEAMID.bundle.voip', () => {
  assert.deepEqual(parseApnsParam('ABCDE12345.com.example.app.voip'), { teamId: 'ABCDE12345', bundleId: 'com.example.app', voipTopic: 'com.example.app.voip', alertTopic: 'com.example.app' });
  assert.deepEqual(parseApnsParam('com.example.app.voip'), { teamId: undefined, bundleId: 'com.example.app', voipTopic: 'com.example.app.voip', alertTopic: 'com.example.app' });
  assert.throws(() => parseApnsParam(undefined));
});

test('VoIP push is accepted and delivered with the right headers and payload', async () => {
  const ctx = await setup();
  try {
    const token = hexToken(1);
    const delivered = new Promise<ApnsPush>((resolve) => ctx.emu.subscribe(token, resolve));
    const before = Math.floor(Date.now() / 1000);
    const out = await ctx.provider.sendCall(binding(token), payload());
    assert.equal(out.ok, true, JSON.stringify(out));
    const push = await delivered;
    assert.ok(out.ok && out.id === push.apnsId);
    assert.match(push.apnsId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(push.headers['apns-push-type'], 'voip');
    assert.equal(push.topic, `${BUNDLE}.voip`);
    assert.equal(push.priority, 10);
    assert.ok(push.expiration! >= before + 30 && push.expiration! <= before + 32);
    const body = push.payload as { aps: object; pushcall: Record<string, unknown> };
    assert.deepEqual(body.aps, {});
    assert.equal(body.pushcall.v, 1);
    assert.equal(body.pushcall.call_id, 'call-1@example.com');
    assert.equal(body.pushcall.from_name, 'Bob');
    // Sensitive values never appear whole in events.
    const dump = JSON.stringify(ctx.events);
    assert.ok(!dump.includes(token));
    assert.ok(ctx.events.some((e) => e.type === 'response' && e.status === 200));
  } finally {
    await ctx.close();
  }
});

test('alert push (missed call) uses the bundle topic, push-type alert and aps.alert', async () => {
  const ctx = await setup();
  try {
    const token = hexToken(2);
    const out = await ctx.provider.sendAlert(binding(token), payload('c2', { type: 'missed_call' }));
    assert.equal(out.ok, true);
    const push = ctx.emu.received[0];
    assert.equal(push.topic, BUNDLE);
    assert.equal(push.pushType, 'alert');
    const body = push.payload as { aps: { alert: { title: string; body: string }; 'thread-id': string; sound: string } };
    assert.deepEqual(body.aps.alert, { title: 'Missed call', body: 'Bob' });
    assert.equal(body.aps['thread-id'], 'c2');
  } finally {
    await ctx.close();
  }
});

test('one provider token is minted and reused across many pushes and sessions', async () => {
  const ctx = await setup({ provider: { poolSize: 2 } });
  try {
    const outs = await Promise.all(Array.from({ length: 60 }, (_, i) => ctx.provider.sendCall(binding(hexToken(100 + i)), payload(`c${i}`))));
    assert.ok(outs.every((o) => o.ok));
    assert.equal(ctx.events.filter((e) => e.type === 'token_minted').length, 1);
    const conns = ctx.emu.connections();
    assert.ok(conns.length >= 1 && conns.length <= 2);
    const tokens = new Set(conns.flatMap((c) => c.tokens));
    assert.equal(tokens.size, 1);
  } finally {
    await ctx.close();
  }
});

test('20-minute rule: token refresh never shows a connection a new token within 20 min', async () => {
  const clock = new FakeClock(Date.now());
  const ctx = await setup({ provider: { clock, tokenRefreshMs: 20 * 60_000, poolSize: 1 }, emulator: { clock } });
  try {
    const send = async (i: number) => {
      const o = await ctx.provider.sendCall(binding(hexToken(200 + i)), payload(`c${i}`));
      assert.equal(o.ok, true, JSON.stringify(o));
    };
    await send(0); // session A, token T1 first used at t=0
    clock.advance(10 * 60_000);
    await send(1); // still T1
    clock.advance(10.5 * 60_000);
    await send(2); // T2 minted; A used T1 only 20.5 min → A drains, session B gets T2
    clock.advance(25 * 60_000);
    await send(3); // t=45.5: T3 minted; B used T2 for 25 min → B adopts T3
    const conns = ctx.emu.connections();
    assert.equal(conns.length, 2);
    assert.equal(conns[0].tokens.length, 1);
    assert.equal(conns[1].tokens.length, 2);
    assert.equal(ctx.events.filter((e) => e.type === 'token_minted').length, 3);
    assert.ok(!ctx.emu.responses.some((r) => r.reason === 'TooManyProviderTokenUpdates'));
  } finally {
    await ctx.close();
  }
});

test('403 ExpiredProviderToken re-mints once and succeeds on a fresh session', async () => {
  const pclock = new FakeClock(Date.now());
  const eclock = new FakeClock(Date.now());
  const ctx = await setup({ provider: { clock: pclock, tokenRefreshMs: 55 * 60_000 }, emulator: { clock: eclock } });
  try {
    assert.equal((await ctx.provider.sendCall(binding(hexToken(300)), payload())).ok, true);
    // The provider's clock runs slow: it believes its token is 39 min old; APNs sees 61.
    pclock.advance(39 * 60_000);
    eclock.advance(61 * 60_000);
    const outs = await Promise.all([1, 2, 3].map((i) => ctx.provider.sendCall(binding(hexToken(300 + i)), payload(`c${i}`))));
    assert.ok(outs.every((o) => o.ok), JSON.stringify(outs));
    assert.equal(ctx.events.filter((e) => e.type === 'token_minted').length, 2, 'exactly one re-mint');
    assert.ok(ctx.emu.responses.some((r) => r.reason === 'ExpiredProviderToken'));
    assert.ok(!ctx.emu.responses.some((r) => r.reason === 'TooManyProviderTokenUpdates'));
  } finally {
    await ctx.close();
  }
});

test('403 ExpiredProviderToken twice: no re-mint loop, PUSH_PROVIDER_AUTH', async () => {
  const pclock = new FakeClock(Date.now());
  const ctx = await setup({ provider: { clock: pclock } });
  try {
    assert.equal((await ctx.provider.sendCall(binding(hexToken(309)), payload())).ok, true);
    pclock.advance(10 * 60_000); // the token is 10 min old: an expiry is believable
    ctx.emu.failNext({ status: 403, reason: 'ExpiredProviderToken' }, 2);
    const f = failure(await ctx.provider.sendCall(binding(hexToken(310)), payload()));
    assert.equal(f.error, 'PUSH_PROVIDER_AUTH');
    assert.equal(f.reason, 'ExpiredProviderToken');
    assert.equal(ctx.events.filter((e) => e.type === 'token_minted').length, 2);
  } finally {
    await ctx.close();
  }
});

test('403 ExpiredProviderToken for a token minted minutes ago (our clock is off): no re-mint, a warning, and the session stays', async () => {
  const ctx = await setup();
  try {
    ctx.emu.failNext({ status: 403, reason: 'ExpiredProviderToken' }, 5);
    for (let i = 0; i < 5; i++) {
      const f = failure(await ctx.provider.sendCall(binding(hexToken(320 + i)), payload(`c${i}`)));
      assert.equal(f.error, 'PUSH_PROVIDER_AUTH');
    }
    assert.equal(ctx.events.filter((e) => e.type === 'token_minted').length, 1, 'Apple: at most one new token per 20 min');
    assert.equal(ctx.events.filter((e) => e.type === 'token_rejected_young').length, 5);
    assert.equal(ctx.emu.connections().length, 1, 'no new connection per push');
  } finally {
    await ctx.close();
  }
});

test('410 Unregistered removes the binding only when it was registered before the timestamp', async () => {
  const ctx = await setup();
  try {
    const token = hexToken(400);
    ctx.emu.unregister(token, 5_000);
    const older = failure(await ctx.provider.sendCall(binding(token, { registeredAt: 4_000 }), payload()));
    assert.equal(older.error, 'PUSH_UNREGISTERED');
    assert.equal(older.reason, 'Unregistered');
    assert.equal(older.status, 410);
    assert.equal(older.removeBinding, true);
    const newer = failure(await ctx.provider.sendCall(binding(token, { registeredAt: 6_000 }), payload()));
    assert.equal(newer.error, 'PUSH_UNREGISTERED');
    assert.equal(newer.removeBinding, false);
  } finally {
    await ctx.close();
  }
});

test('BadDeviceToken that works in the other environment → PUSH_ENVIRONMENT_MISMATCH', async () => {
  const key = makeApnsKey({ teamId: TEAM, bundleIds: [BUNDLE] });
  const devices = new ApnsDeviceRegistry();
  const prod = await new ApnsEmulator({ keys: [key], devices, environment: 'production', strictDevices: true }).start();
  const sandbox = await new ApnsEmulator({ keys: [key], devices, environment: 'sandbox', strictDevices: true }).start();
  const events: PushEvent[] = [];
  const provider = new ApnsProvider({
    auth: { kind: 'token', key: key.privateKeyPem, keyId: key.keyId, teamId: key.teamId },
    endpoints: { production: prod.url, sandbox: sandbox.url },
    ca: prod.caPem,
    pingIntervalMs: 0,
    hooks: { any: (e) => events.push(e) },
  });
  try {
    const token = hexToken(500);
    sandbox.registerDevice({ token, bundleId: BUNDLE });
    const f = failure(await provider.sendCall(binding(token, { environment: 'production' }), payload()));
    assert.equal(f.error, 'PUSH_ENVIRONMENT_MISMATCH');
    assert.equal(f.removeBinding, false);
    assert.equal(f.actualEnvironment, 'sandbox');
    assert.equal(sandbox.received.length, 1);
    assert.equal(f.id, sandbox.received[0].apnsId);
    assert.ok(events.some((e) => e.type === 'environment_mismatch'));
    // Learned: the next push goes straight to sandbox.
    const again = await provider.sendCall(binding(token, { environment: 'production' }), payload('c2'));
    assert.ok(again.ok && again.environment === 'sandbox');
    assert.equal(prod.stats.requests, 1);
    // A token valid nowhere is a bad token, removed.
    const bad = failure(await provider.sendCall(binding(hexToken(501)), payload()));
    assert.equal(bad.error, 'PUSH_BAD_TOKEN');
    assert.equal(bad.removeBinding, true);
  } finally {
    await provider.close();
    await prod.close();
    await sandbox.close();
  }
});

test('DeviceTokenNotForTopic has its own code and removes the binding', async () => {
  const ctx = await setup();
  try {
    const token = hexToken(550);
    ctx.emu.registerDevice({ token, bundleId: 'com.other.app' });
    const f = failure(await ctx.provider.sendCall(binding(token), payload()));
    assert.equal(f.error, 'PUSH_TOKEN_NOT_FOR_TOPIC');
    assert.equal(f.removeBinding, true);
  } finally {
    await ctx.close();
  }
});

test('429 TooManyRequests backs off that token only', async () => {
  const ctx = await setup({ provider: { tooManyRequestsBackoffMs: 60_000 } });
  try {
    const token = hexToken(600);
    ctx.emu.failFor(token, { status: 429, reason: 'TooManyRequests' }, 1);
    const f = failure(await ctx.provider.sendCall(binding(token), payload()));
    assert.equal(f.error, 'PUSH_RATE_LIMITED');
    assert.equal(f.retryAfterMs, 60_000);
    const requests = ctx.emu.stats.requests;
    const g = failure(await ctx.provider.sendCall(binding(token), payload('c2')));
    assert.equal(g.error, 'PUSH_BACKOFF');
    assert.ok(g.retryAfterMs! > 0 && g.retryAfterMs! <= 60_000);
    assert.equal(ctx.emu.stats.requests, requests, 'fail fast without a request');
    assert.equal((await ctx.provider.sendCall(binding(hexToken(601)), payload('c3'))).ok, true);
  } finally {
    await ctx.close();
  }
});

test('5xx gets exactly one quick retry', async () => {
  const ctx = await setup();
  try {
    ctx.emu.failNext({ status: 500, reason: 'InternalServerError' });
    const ok = await ctx.provider.sendCall(binding(hexToken(700)), payload());
    assert.equal(ok.ok, true);
    assert.equal(ctx.emu.stats.requests, 2);
    ctx.emu.failNext({ status: 503, reason: 'ServiceUnavailable' }, 2);
    const f = failure(await ctx.provider.sendCall(binding(hexToken(701)), payload()));
    assert.equal(f.error, 'PUSH_UNAVAILABLE');
    assert.equal(f.reason, 'ServiceUnavailable');
    assert.equal(ctx.emu.stats.requests, 4);
  } finally {
    await ctx.close();
  }
});

test('stream reset before response headers: one retry, then PUSH_UNAVAILABLE', async () => {
  const ctx = await setup();
  try {
    ctx.emu.script.next({ reset: true });
    assert.equal((await ctx.provider.sendCall(binding(hexToken(750)), payload())).ok, true);
    ctx.emu.script.next({ reset: true }, { reset: true });
    const f = failure(await ctx.provider.sendCall(binding(hexToken(751)), payload()));
    assert.equal(f.error, 'PUSH_UNAVAILABLE');
  } finally {
    await ctx.close();
  }
});

test('GOAWAY mid-burst: 200 concurrent pushes, each answered once, none lost or duplicated', async () => {
  const ctx = await setup({ provider: { poolSize: 2 } });
  try {
    // Warm up so the sessions are authenticated and wide open.
    await Promise.all([0, 1].map((i) => ctx.provider.sendCall(binding(hexToken(800 + i)), payload(`w${i}`))));
    ctx.emu.resetRecords();
    ctx.emu.goawayAfter(50, { reason: 'Shutdown' });
    const outs = await Promise.all(Array.from({ length: 200 }, (_, i) => ctx.provider.sendCall(binding(hexToken(1000 + i)), payload(`g${i}`))));
    assert.ok(outs.every((o) => o.ok), JSON.stringify(outs.filter((o) => !o.ok).slice(0, 3)));
    const ids = outs.map((o) => (o.ok ? o.id : ''));
    assert.equal(new Set(ids).size, 200);
    const received = ctx.emu.received.map((p) => p.apnsId);
    assert.equal(received.length, 200, 'no duplicates at APNs');
    assert.deepEqual(new Set(received), new Set(ids));
    const goaway = ctx.events.find((e) => e.type === 'goaway');
    assert.ok(goaway && goaway.type === 'goaway' && goaway.reason === 'Shutdown');
    assert.ok(ctx.emu.stats.refused > 0, 'some in-flight streams were not processed and were resent');
  } finally {
    await ctx.close();
  }
});

test('lowered MAX_CONCURRENT_STREAMS is honoured and everything is delivered', async () => {
  const ctx = await setup({ provider: { poolSize: 1 } });
  try {
    await ctx.provider.sendCall(binding(hexToken(900)), payload('w'));
    ctx.emu.setMaxConcurrentStreams(3);
    await new Promise((r) => setTimeout(r, 50));
    ctx.emu.resetRecords();
    const outs = await Promise.all(Array.from({ length: 100 }, (_, i) => ctx.provider.sendCall(binding(hexToken(2000 + i)), payload(`m${i}`))));
    assert.ok(outs.every((o) => o.ok));
    assert.equal(ctx.emu.received.length, 100);
    assert.ok(ctx.emu.stats.maxConcurrentStreams <= 3, `max ${ctx.emu.stats.maxConcurrentStreams}`);
  } finally {
    await ctx.close();
  }
});

test('a stalled APNs hits the deadline: PUSH_TIMEOUT', async () => {
  const ctx = await setup();
  try {
    await ctx.provider.sendCall(binding(hexToken(950)), payload('w'));
    ctx.emu.stall(2000);
    const t0 = Date.now();
    const f = failure(await ctx.provider.sendCall(binding(hexToken(951)), payload(), { deadlineMs: 200 }));
    assert.equal(f.error, 'PUSH_TIMEOUT');
    assert.ok(Date.now() - t0 < 1000);
    ctx.emu.stall(0);
  } finally {
    await ctx.close();
  }
});

test('oversized payloads: names/text truncated to fit, otherwise rejected before sending', async () => {
  const ctx = await setup();
  try {
    const big = await ctx.provider.sendCall(binding(hexToken(960)), payload('c', { fromName: 'B'.repeat(8000) }));
    assert.equal(big.ok, true);
    const sent = ctx.emu.received[0];
    assert.ok(sent.bytes <= 5120);
    assert.ok(((sent.payload as { pushcall: { from_name: string } }).pushcall.from_name).endsWith('…'));
    const requests = ctx.emu.stats.requests;
    const f = failure(await ctx.provider.sendCall(binding(hexToken(961)), payload('x'.repeat(6000))));
    assert.equal(f.error, 'PUSH_PAYLOAD_TOO_LARGE');
    assert.equal(ctx.emu.stats.requests, requests);
  } finally {
    await ctx.close();
  }
});

test('certificate auth: TLS client certificate, no authorization header', async () => {
  const cc = await makeClientCertificate();
  const emu = await new ApnsEmulator({ certificateAuth: { caPem: cc.caPem, bundleIds: [BUNDLE] } }).start();
  const provider = new ApnsProvider({
    auth: { kind: 'certificate', cert: cc.certPem, key: cc.keyPem },
    endpoints: { production: emu.url },
    ca: emu.caPem,
    pingIntervalMs: 0,
  });
  try {
    const out = await provider.sendCall(binding(hexToken(970)), payload());
    assert.equal(out.ok, true, JSON.stringify(out));
    assert.equal(emu.received[0].headers.authorization, undefined);
    assert.equal(emu.connections()[0].certificate, true);
  } finally {
    await provider.close();
    await emu.close();
  }
});

/** A TCP relay whose existing connections can be silenced (half-open link simulation). */
async function blackholeRelay(targetPort: number) {
  const conns: { a: net.Socket; b: net.Socket; dead: boolean }[] = [];
  const server = net.createServer((a) => {
    const b = net.connect(targetPort, '127.0.0.1');
    const c = { a, b, dead: false };
    conns.push(c);
    a.on('data', (d) => { if (!c.dead) b.write(d); });
    b.on('data', (d) => { if (!c.dead) a.write(d); });
    a.on('error', () => b.destroy());
    b.on('error', () => a.destroy());
    a.on('close', () => b.destroy());
    b.on('close', () => a.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    silenceAll: () => conns.forEach((c) => (c.dead = true)),
    close: () => new Promise<void>((r) => { conns.forEach((c) => { c.a.destroy(); c.b.destroy(); }); server.close(() => r()); }),
  };
}

test('a half-open connection is detected by PING with a deadline and replaced', async () => {
  const ctx = await setup();
  const relay = await blackholeRelay(ctx.emu.port);
  const events: PushEvent[] = [];
  const provider = new ApnsProvider({
    auth: { kind: 'token', key: ctx.key.privateKeyPem, keyId: ctx.key.keyId, teamId: ctx.key.teamId },
    endpoints: { production: relay.url },
    ca: ctx.emu.caPem,
    pingIntervalMs: 50,
    pingTimeoutMs: 100,
    poolSize: 1,
    hooks: { any: (e) => events.push(e) },
  });
  try {
    assert.equal((await provider.sendCall(binding(hexToken(980)), payload())).ok, true);
    relay.silenceAll();
    const t0 = Date.now();
    while (!events.some((e) => e.type === 'ping_failed') && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 20));
    assert.ok(events.some((e) => e.type === 'ping_failed'), 'ping failure detected');
    const out = await provider.sendCall(binding(hexToken(981)), payload('c2'), { deadlineMs: 2000 });
    assert.equal(out.ok, true, JSON.stringify(out));
    assert.equal(ctx.emu.connections().length, 2);
  } finally {
    await provider.close();
    await relay.close();
    await ctx.close();
  }
});

test('an endpoint that does not negotiate HTTP/2 fails fast and says why', async () => {
  const key = makeApnsKey({ teamId: TEAM, bundleIds: [BUNDLE] });
  const tls = await selfSignedServerCert();
  // A TLS server without ALPN (a misconfigured relay speaking HTTP/1.1).
  const server = createTlsServer({ cert: tls.certPem, key: tls.keyPem }, (socket) => {
    socket.on('error', () => {});
    socket.on('data', () => socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `https://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const events: PushEvent[] = [];
  const provider = new ApnsProvider({
    auth: { kind: 'token', key: key.privateKeyPem, keyId: key.keyId, teamId: key.teamId },
    endpoints: { production: url },
    ca: tls.certPem,
    pingIntervalMs: 0,
    poolSize: 1,
    hooks: { any: (e) => events.push(e) },
  });
  try {
    const t0 = Date.now();
    const out = failure(await provider.sendCall(binding(hexToken(990)), payload(), { deadlineMs: 3000 }));
    assert.equal(out.error, 'PUSH_UNAVAILABLE');
    assert.ok(Date.now() - t0 < 2000, 'fails before the deadline');
    const closes = events.filter((e): e is Extract<PushEvent, { type: 'session_close' }> => e.type === 'session_close');
    assert.ok(closes.some((e) => /did not negotiate HTTP\/2 \(ALPN: (http\/1\.1|none)\)/.test(e.reason)), JSON.stringify(closes));
  } finally {
    await provider.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('BadDeviceToken here and 410 Unregistered in the other environment: the token is dead, the binding goes', async () => {
  const key = makeApnsKey({ teamId: TEAM, bundleIds: [BUNDLE] });
  const devices = new ApnsDeviceRegistry();
  const prod = await new ApnsEmulator({ keys: [key], devices, environment: 'production' }).start();
  const sand = await new ApnsEmulator({ keys: [key], devices, environment: 'sandbox' }).start();
  const provider = new ApnsProvider({
    auth: { kind: 'token', key: key.privateKeyPem, keyId: key.keyId, teamId: key.teamId },
    endpoints: { production: prod.url, sandbox: sand.url },
    ca: [prod.caPem, sand.caPem],
    pingIntervalMs: 0,
  });
  try {
    const token = hexToken(700);
    sand.registerDevice({ token, bundleId: BUNDLE }); // a development build's token…
    sand.unregister(token, Date.now()); // …whose app was deleted since
    const f = failure(await provider.sendCall(binding(token, { environment: 'production', registeredAt: 0 }), payload()));
    assert.equal(f.error, 'PUSH_BAD_TOKEN');
    assert.equal(f.removeBinding, true);
    assert.deepEqual(sand.responses.map((r) => r.status), [410]);
  } finally {
    await provider.close();
    await prod.close();
    await sand.close();
  }
});
