/**
 * Refresh pushes (RFC 8599 §5.5) on a fake clock: when they go, to which token, how they are
 * repeated, and when they must not go at all.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeClock } from '@pushcall/sip';
import { MemoryBindingStore } from '../../src/location/memory-store.js';
import type { Binding, PushRegistration } from '../../src/location/types.js';
import { createLogger } from '../../src/observability/logger.js';
import { ServerMetrics } from '../../src/observability/metrics.js';
import { BindingRefresher } from '../../src/proxy/refresh.js';
import type { RefreshPayload } from '../../src/push/payload.js';
import type { PushBinding, PushOutcome } from '../../src/push/types.js';

const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

function setup(options: { outcome?: (target: PushBinding) => PushOutcome | Promise<PushOutcome>; retries?: number } = {}) {
  const clock = new FakeClock();
  const store = new MemoryBindingStore();
  const metrics = new ServerMetrics();
  const sent: Array<{ target: PushBinding; payload: RefreshPayload; at: number }> = [];
  const pusher = {
    supportedProviders: () => ['apns', 'fcm'],
    sendCall: () => Promise.reject(new Error('no call pushes here')),
    sendAlert: () => Promise.reject(new Error('no alert pushes here')),
    async sendRefresh(target: PushBinding, payload: RefreshPayload): Promise<PushOutcome> {
      sent.push({ target, payload, at: clock.now() });
      return (await options.outcome?.(target)) ?? { ok: true, provider: target.provider, status: 200, latencyMs: 1 };
    },
  };
  const refresher = new BindingRefresher({
    leadSeconds: 120,
    retries: options.retries ?? 2,
    retryIntervalSeconds: 30,
    store,
    clock,
    logger: createLogger('silent'),
    metrics,
    nodeId: 'node-a',
    pusher: () => pusher,
  });
  /** Register (or refresh) a binding as the registrar would: store it, then track it. */
  async function register(id: string, expiresInSeconds: number, push: Partial<PushRegistration> = {}, nodeId = 'node-a'): Promise<Binding> {
    const binding: Binding = {
      id,
      aor: `sip:${id}@example.com`,
      contact: `sip:${id}@192.0.2.1:5060`,
      callId: `${id}-reg`,
      cseq: 1,
      expiresAt: clock.now() + expiresInSeconds * 1000,
      registeredAt: clock.now(),
      updatedAt: clock.now(),
      path: [],
      flow: { protocol: 'udp', remoteAddress: '192.0.2.1', remotePort: 5060, localAddress: '127.0.0.1', localPort: 5060, nodeId },
      push: { provider: 'fcm', prid: `token-${id}`, param: 'demo-project', form: 'rfc8599', ...push },
      pnsreg: false,
    };
    await store.apply(binding.aor, { upsert: [binding], remove: [] });
    refresher.track(binding);
    return binding;
  }
  const advance = async (seconds: number) => {
    clock.advance(seconds * 1000);
    await settle();
  };
  return { clock, store, metrics, sent, refresher, register, advance };
}

describe('refresh pushes (RFC 8599 §5.5)', () => {
  test('a push binding is pushed 120 s before it expires, then twice more 30 s apart while no REGISTER comes', async () => {
    const t = setup();
    const binding = await t.register('alice', 600);
    await t.advance(479);
    assert.equal(t.sent.length, 0, 'nothing before expiry - 120 s');
    await t.advance(1);
    assert.equal(t.sent.length, 1);
    const first = t.sent[0];
    assert.equal(first.at, binding.expiresAt - 120_000);
    assert.deepEqual(first.payload, { v: 1, type: 'refresh', to: 'sip:alice@example.com', sent_at: first.at, ttl: 120 });
    assert.equal(first.target.prid, 'token-alice');
    assert.equal(first.target.provider, 'fcm');
    await t.advance(30);
    await t.advance(30);
    assert.deepEqual(
      t.sent.map((s) => (binding.expiresAt - s.at) / 1000),
      [120, 90, 60],
    );
    await t.advance(120);
    assert.equal(t.sent.length, 3, 'no more than 1 + retries pushes');
    const metrics = await t.metrics.registry.getSingleMetricAsString('pushcall_refresh_pushes_total');
    assert.match(metrics, /pushcall_refresh_pushes_total\{provider="fcm",outcome="ok"\} 3/);
  });

  test('a REGISTER in time moves the refresh to the new expiry and stops the repeats', async () => {
    const t = setup();
    await t.register('bob', 600);
    await t.advance(480);
    assert.equal(t.sent.length, 1);
    // The device woke on that push and refreshed for another 600 s.
    const refreshed = await t.register('bob', 600);
    await t.advance(60);
    assert.equal(t.sent.length, 1, 'no repeat after the REGISTER');
    await t.advance(420);
    assert.equal(t.sent.length, 2);
    assert.equal(t.sent[1].at, refreshed.expiresAt - 120_000);
  });

  test('APNs: a PushKit-only binding is never refresh-pushed; one with an alert token gets a push to that token', async () => {
    const t = setup();
    await t.register('voip-only', 600, { provider: 'apns', prid: 'aa'.repeat(32), param: 'TEAM123456.com.example.app.voip' });
    await t.register('two-tokens', 600, { provider: 'apns', prid: 'bb'.repeat(32), alertPrid: 'cc'.repeat(32), param: 'TEAM123456.com.example.app.voip', form: 'flexisip-multi' });
    assert.equal(t.refresher.size, 1);
    await t.advance(480);
    assert.equal(t.sent.length, 1);
    assert.equal(t.sent[0].target.prid, 'cc'.repeat(32), 'the alert token, never the VoIP token');
    assert.equal(t.sent[0].payload.to, 'sip:two-tokens@example.com');
  });

  test('a binding that was removed or has expired gets no refresh push (§5.5 MUST NOT)', async () => {
    const t = setup();
    await t.register('removed', 600);
    await t.register('untracked', 600);
    await t.store.remove('removed'); // e.g. a push failure on a call removed it
    t.refresher.untrack('untracked'); // unregistered through the registrar
    assert.equal(t.refresher.size, 1);
    await t.advance(600);
    assert.equal(t.sent.length, 0);
    assert.equal(t.refresher.size, 0);
  });

  test('a push that says the token is dead removes the binding and is not repeated', async () => {
    const t = setup({
      outcome: (target) => ({ ok: false, provider: target.provider, error: 'PUSH_UNREGISTERED', reason: 'UNREGISTERED', status: 404, removeBinding: true, latencyMs: 1 }),
    });
    await t.register('gone', 600);
    await t.advance(480);
    assert.equal(t.sent.length, 1);
    assert.equal(await t.store.get('gone'), undefined);
    await t.advance(100);
    assert.equal(t.sent.length, 1);
  });

  test('a failed push is repeated like an unanswered one', async () => {
    const t = setup({
      outcome: (target) => ({ ok: false, provider: target.provider, error: 'PUSH_UNAVAILABLE', reason: 'UNAVAILABLE', status: 503, removeBinding: false, latencyMs: 1 }),
      retries: 1,
    });
    await t.register('flaky', 600);
    await t.advance(480);
    await t.advance(30);
    await t.advance(60);
    assert.equal(t.sent.length, 2);
    assert.ok(await t.store.get('flaky'), 'a transient failure keeps the binding');
  });

  test("another node's bindings are left to that node; start() picks up stored bindings after a restart", async () => {
    const t = setup();
    await t.register('elsewhere', 600, {}, 'node-b');
    assert.equal(t.refresher.size, 0);
    await t.register('mine', 600);
    t.refresher.untrack('mine'); // as if the process restarted: nothing scheduled in memory
    assert.equal(t.refresher.size, 0);
    await t.refresher.start();
    assert.equal(t.refresher.size, 1);
    await t.advance(480);
    assert.deepEqual(
      t.sent.map((s) => s.target.bindingId),
      ['mine'],
    );
  });

  test('a binding that lives a week is pushed on time (timers longer than a day are chained)', async () => {
    const t = setup();
    const week = 7 * 24 * 3600;
    const binding = await t.register('long', week);
    for (let day = 0; day < 6; day++) await t.advance(24 * 3600);
    assert.equal(t.sent.length, 0);
    await t.advance(24 * 3600 - 120);
    assert.equal(t.sent.length, 1);
    assert.equal(t.sent[0].at, binding.expiresAt - 120_000);
  });

  test('bindings falling due together are pushed at most 200 at a time', async () => {
    let inFlight = 0;
    let peak = 0;
    const release: Array<() => void> = [];
    const t = setup({
      outcome: async (target) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise<void>((r) => release.push(r));
        inFlight--;
        return { ok: true, provider: target.provider, status: 200, latencyMs: 1 };
      },
    });
    for (let i = 0; i < 1000; i++) await t.register(`fleet${i}`, 600);
    await t.advance(480);
    assert.equal(t.sent.length, 200);
    assert.equal(t.refresher.size, 800, 'the rest wait their turn');
    while (release.length > 0) {
      for (const r of release.splice(0)) r();
      await t.advance(0);
    }
    assert.equal(t.sent.length, 1000);
    assert.equal(peak, 200);
  });
});
