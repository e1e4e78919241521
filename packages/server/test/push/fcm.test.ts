import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FcmEmulator } from '../../../testkit/src/emulators/index.js';
import type { FcmMessageRecord } from '../../../testkit/src/emulators/index.js';
import { FakeClock } from '../../../sip/src/util/clock.js';
import { FcmProvider, parseRetryAfter } from '../../src/push/fcm.js';
import type { FcmProviderOptions } from '../../src/push/fcm.js';
import { buildPayload } from '../../src/push/payload.js';
import type { PushBinding, PushFailure, PushOutcome } from '../../src/push/types.js';

const PROJECT = 'pushcall-test';

function binding(token: string, extra: Partial<PushBinding> = {}): PushBinding {
  return { bindingId: 'b1', aor: 'sip:alice@example.com', provider: 'fcm', prid: token, param: PROJECT, registeredAt: 1_000, ...extra };
}
const payload = (callId = 'call-1', extra: Partial<Parameters<typeof buildPayload>[0]> = {}) =>
  buildPayload({ type: 'call', callId, fromUri: 'sip:bob@example.com', fromName: 'Bob', to: 'sip:alice@example.com', ttl: 20, ...extra });

function failure(o: PushOutcome): PushFailure {
  assert.equal(o.ok, false, `expected failure, got ${JSON.stringify(o)}`);
  return o as PushFailure;
}

async function setup(extra: Partial<FcmProviderOptions> = {}, emuOpts: ConstructorParameters<typeof FcmEmulator>[0] = {}) {
  const emu = await new FcmEmulator(emuOpts).start();
  const sa = emu.createServiceAccount(PROJECT);
  const provider = new FcmProvider({ serviceAccount: sa, endpoint: emu.url, ...extra });
  return { emu, sa, provider, close: async () => { await provider.close(); await emu.close(); } };
}

test('data-only HIGH priority message is accepted and delivered; payload is a JSON string', async () => {
  const ctx = await setup();
  try {
    const token = 'fcm-token-' + 'a'.repeat(140);
    const delivered = new Promise<FcmMessageRecord>((r) => ctx.emu.subscribe(token, r));
    const out = await ctx.provider.sendCall(binding(token), payload());
    assert.ok(out.ok, JSON.stringify(out));
    assert.match(out.id!, /^projects\/pushcall-test\/messages\/0:\d+%[0-9a-f]+$/);
    const m = await delivered;
    assert.deepEqual(Object.keys(m.data), ['pushcall']);
    assert.equal(typeof m.data.pushcall, 'string');
    assert.equal((m.payload as { call_id: string }).call_id, 'call-1');
    assert.deepEqual(m.android, { priority: 'HIGH', ttl: '20s' });
    assert.equal(m.message.notification, undefined);
  } finally {
    await ctx.close();
  }
});

test('OAuth token is fetched once and cached for many sends', async () => {
  const ctx = await setup();
  try {
    const outs = await Promise.all(Array.from({ length: 30 }, (_, i) => ctx.provider.sendCall(binding(`tok-${i}`), payload(`c${i}`))));
    assert.ok(outs.every((o) => o.ok));
    assert.equal(ctx.emu.stats.tokenRequests, 1);
    assert.equal(ctx.provider.tokenRequests, 1);
  } finally {
    await ctx.close();
  }
});

test('access token is refreshed 60 s before expires_in', async () => {
  const clock = new FakeClock(Date.now());
  const ctx = await setup({ clock }, { clock, tokenTtlSeconds: 600 });
  try {
    assert.ok((await ctx.provider.sendCall(binding('t1'), payload())).ok);
    clock.advance(530_000);
    assert.ok((await ctx.provider.sendCall(binding('t1'), payload())).ok);
    assert.equal(ctx.emu.stats.tokenRequests, 1);
    clock.advance(15_000); // 545 s: inside the last 60 s
    assert.ok((await ctx.provider.sendCall(binding('t1'), payload())).ok);
    assert.equal(ctx.emu.stats.tokenRequests, 2);
  } finally {
    await ctx.close();
  }
});

test('stale OAuth token: 401 without FcmError → refresh once and retry', async () => {
  const ctx = await setup();
  try {
    assert.ok((await ctx.provider.sendCall(binding('t1'), payload())).ok);
    ctx.emu.revokeAccessTokens();
    const out = await ctx.provider.sendCall(binding('t1'), payload('c2'));
    assert.ok(out.ok, JSON.stringify(out));
    assert.equal(ctx.emu.stats.tokenRequests, 2);
    assert.equal(ctx.emu.stats.unauthenticated, 1);
  } finally {
    await ctx.close();
  }
});

test('UNREGISTERED removes the binding; invalid registration token removes it too', async () => {
  const ctx = await setup({}, { strictDevices: true });
  try {
    ctx.emu.registerDevice({ token: 'gone', projectId: PROJECT });
    ctx.emu.unregister('gone');
    const f = failure(await ctx.provider.sendCall(binding('gone'), payload()));
    assert.equal(f.error, 'PUSH_UNREGISTERED');
    assert.equal(f.reason, 'UNREGISTERED');
    assert.equal(f.status, 404);
    assert.equal(f.removeBinding, true);
    const g = failure(await ctx.provider.sendCall(binding('never-registered'), payload()));
    assert.equal(g.error, 'PUSH_BAD_TOKEN');
    assert.equal(g.removeBinding, true);
  } finally {
    await ctx.close();
  }
});

test('SENDER_ID_MISMATCH is reported and keeps the binding', async () => {
  const ctx = await setup();
  try {
    ctx.emu.registerDevice({ token: 'other-app', projectId: 'other-project' });
    ctx.emu.createServiceAccount('other-project');
    const f = failure(await ctx.provider.sendCall(binding('other-app'), payload()));
    assert.equal(f.error, 'PUSH_SENDER_ID_MISMATCH');
    assert.equal(f.removeBinding, false);
  } finally {
    await ctx.close();
  }
});

test('QUOTA_EXCEEDED honours Retry-After: fail fast for that token until it passes', async () => {
  const clock = new FakeClock(Date.now());
  const ctx = await setup({ clock }, { clock });
  try {
    ctx.emu.failFor('busy', { errorCode: 'QUOTA_EXCEEDED', retryAfter: 7 }, 1);
    const f = failure(await ctx.provider.sendCall(binding('busy'), payload()));
    assert.equal(f.error, 'PUSH_RATE_LIMITED');
    assert.equal(f.retryAfterMs, 7000);
    const sends = ctx.emu.stats.sends;
    const g = failure(await ctx.provider.sendCall(binding('busy'), payload()));
    assert.equal(g.error, 'PUSH_BACKOFF');
    assert.equal(g.retryAfterMs, 7000);
    assert.equal(ctx.emu.stats.sends, sends);
    assert.ok((await ctx.provider.sendCall(binding('other'), payload())).ok, 'other tokens unaffected');
    clock.advance(7001);
    assert.ok((await ctx.provider.sendCall(binding('busy'), payload())).ok);
  } finally {
    await ctx.close();
  }
});

test('UNAVAILABLE / INTERNAL: one quick retry inside the deadline, then PUSH_UNAVAILABLE with backoff', async () => {
  const ctx = await setup();
  try {
    ctx.emu.failNext({ errorCode: 'INTERNAL' });
    assert.ok((await ctx.provider.sendCall(binding('t'), payload())).ok);
    ctx.emu.failNext({ errorCode: 'UNAVAILABLE', retryAfter: 0 }, 2);
    const f = failure(await ctx.provider.sendCall(binding('t'), payload()));
    assert.equal(f.error, 'PUSH_UNAVAILABLE');
    assert.equal(f.reason, 'UNAVAILABLE');
    assert.equal(f.status, 503);
    // Retry-After longer than the call's budget: no retry, report and back off the project.
    ctx.emu.failNext({ errorCode: 'UNAVAILABLE', retryAfter: 30 });
    const g = failure(await ctx.provider.sendCall(binding('t'), payload(), { deadlineMs: 2000 }));
    assert.equal(g.error, 'PUSH_UNAVAILABLE');
    assert.equal(g.retryAfterMs, 30_000);
    const h = failure(await ctx.provider.sendCall(binding('t2'), payload()));
    assert.equal(h.error, 'PUSH_BACKOFF');
  } finally {
    await ctx.close();
  }
});

test('project comes from pn-param, else from the service account', async () => {
  const ctx = await setup();
  try {
    const out = await ctx.provider.sendCall(binding('t', { param: undefined }), payload());
    assert.ok(out.ok && out.id!.startsWith(`projects/${PROJECT}/`));
    const f = failure(await ctx.provider.sendCall(binding('t', { param: 'unknown-project' }), payload()));
    assert.equal(f.status, 404);
  } finally {
    await ctx.close();
  }
});

test('stall → deadline → PUSH_TIMEOUT; oversize payload rejected before sending', async () => {
  const ctx = await setup();
  try {
    assert.ok((await ctx.provider.sendCall(binding('t'), payload())).ok);
    ctx.emu.stall(2000);
    const f = failure(await ctx.provider.sendCall(binding('t'), payload(), { deadlineMs: 150 }));
    assert.equal(f.error, 'PUSH_TIMEOUT');
    ctx.emu.stall(0);
    const sends = ctx.emu.stats.sends;
    const g = failure(await ctx.provider.sendCall(binding('t'), payload('x'.repeat(5000))));
    assert.equal(g.error, 'PUSH_PAYLOAD_TOO_LARGE');
    assert.equal(ctx.emu.stats.sends, sends);
  } finally {
    await ctx.close();
  }
});

test('alerts: missed call is NORMAL priority, answered elsewhere HIGH', async () => {
  const ctx = await setup();
  try {
    await ctx.provider.sendAlert(binding('t'), payload('c', { type: 'missed_call' }));
    await ctx.provider.sendAlert(binding('t'), payload('c', { type: 'answered_elsewhere' }));
    assert.equal(ctx.emu.received[0].android!.priority, 'NORMAL');
    assert.equal(ctx.emu.received[1].android!.priority, 'HIGH');
  } finally {
    await ctx.close();
  }
});

test('parseRetryAfter handles seconds and HTTP-dates', () => {
  assert.equal(parseRetryAfter('12', 0), 12_000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6_000);
  assert.equal(parseRetryAfter(null, 0), undefined);
});

test('a refused OAuth exchange is remembered and backed off: one token request for many pushes', async () => {
  const { generateKeyPairSync } = await import('node:crypto');
  const ctx = await setup();
  // A key Google does not know (revoked, or from another account): "Invalid JWT Signature".
  const wrongKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const provider = new FcmProvider({ serviceAccount: { ...ctx.sa, private_key: wrongKey }, endpoint: ctx.emu.url });
  try {
    for (let i = 0; i < 10; i++) {
      const f = failure(await provider.sendCall(binding(`tok-${i}`), payload(`c${i}`)));
      assert.equal(f.error, 'PUSH_PROVIDER_AUTH');
    }
    assert.equal(provider.tokenRequests, 1);
  } finally {
    await provider.close();
    await ctx.close();
  }
});

test('a response body that is not what FCM documents is never thrown on: a 200 is delivered', async () => {
  const ctx = await setup();
  const bodies = ['null', '[]', '{"error":{"details":"x"}}', 'not json'];
  let next = 0;
  const fetchFn: typeof fetch = async (input, init) => {
    if (String(input).includes('/messages:send')) return new Response(bodies[next++ % bodies.length], { status: 200 });
    return fetch(input, init);
  };
  const provider = new FcmProvider({ serviceAccount: ctx.sa, endpoint: ctx.emu.url, fetch: fetchFn });
  try {
    for (let i = 0; i < bodies.length; i++) {
      const out = await provider.sendCall(binding(`tok-${i}`), payload(`c${i}`));
      assert.equal(out.ok, true, `${bodies[i]}: ${JSON.stringify(out)}`);
    }
  } finally {
    await provider.close();
    await ctx.close();
  }
});
