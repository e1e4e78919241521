/**
 * The admin API after real calls: /healthz, Prometheus /metrics with the proxy's series,
 * /api/bindings with push tokens redacted, /api/calls and /api/calls/<callId> timelines.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { LAB_BUNDLE_ID, type Lab, SimulatedPhone, startLab } from '../../src/index.js';
import { RawUdpPeer, admin, callerUa, pushUa, rawCall, waitFor } from './helpers.js';

describe('admin API', () => {
  let lab: Lab;
  let iphone: SimulatedPhone;
  let answeredCallId: string;
  let missedCallId: string;
  let voipToken: string;
  let remoteToken: string;

  before(async () => {
    lab = await startLab({ config: { proxy: { wakeTimeoutSeconds: 3 } as never } });
    iphone = new SimulatedPhone({
      name: 'admin-iphone',
      platform: 'ios',
      user: 'ann',
      ...lab.phoneWiring(),
      launchDelayMs: 50,
      answer: { kind: 'answer', afterMs: 100 },
    });
    await iphone.start();
    await iphone.sleep();
    const caller = callerUa(lab, 'admin-caller');
    const ok = await caller.call('sip:ann@127.0.0.1');
    assert.equal(ok.status, 200);
    answeredCallId = ok.callId;
    caller.hangup(answeredCallId);
    await caller.close();

    // A Flexisip two-token binding that never wakes: a missed call.
    voipToken = randomBytes(32).toString('hex');
    remoteToken = randomBytes(32).toString('hex');
    for (const token of [voipToken, remoteToken]) lab.apns.registerDevice({ token, bundleId: LAB_BUNDLE_ID, environment: 'production' });
    const { ua } = await pushUa(lab, 'ben', { provider: 'apns', prid: `${voipToken}:voip&${remoteToken}:remote`, param: 'TEAM123456.com.example.pushcall.voip&remote' });
    await ua.close();
    const raw = await RawUdpPeer.open();
    const call = await rawCall(lab, raw, 'sip:ben@127.0.0.1');
    await call.ringing();
    await call.cancel();
    await call.final;
    missedCallId = call.callId;
    raw.close();
  });
  after(async () => {
    await iphone.close();
    await lab.close();
  });

  it('/healthz answers ok', async () => {
    const r = await admin(lab, '/healthz');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { status: 'ok' });
  });

  it('/metrics has the registrar, binding, call, wake and push series', async () => {
    await waitFor(() => lab.apns.received.some((p) => p.token === remoteToken), 3000, 'missed-call alert');
    const r = await admin(lab, '/metrics');
    assert.equal(r.status, 200);
    for (const name of ['pushcall_register_total', 'pushcall_bindings', 'pushcall_calls_total', 'pushcall_wake_seconds', 'pushcall_push_total']) {
      assert.match(r.text, new RegExp(`^${name}`, 'm'), `${name} in /metrics`);
    }
    assert.match(r.text, /^pushcall_calls_total\{[^}]*outcome="answered"[^}]*\} [1-9]/m);
    assert.match(r.text, /^pushcall_calls_total\{[^}]*outcome="cancelled"[^}]*\} [1-9]/m);
    assert.match(r.text, /^pushcall_wake_seconds_count\{[^}]*\} [1-9]/m, 'the answered call observed a wake latency');
    assert.match(r.text, /^pushcall_push_total\{[^}]*\} [1-9]/m);
    // The process metrics, with the event-loop delay sampled (a p99 is only there once sampled).
    assert.match(r.text, /^pushcall_process_nodejs_eventloop_lag_p99_seconds [0-9.e-]+$/m);
    assert.match(r.text, /^pushcall_process_process_cpu_seconds_total [0-9.e-]+$/m);
  });

  it('/api/bindings lists bindings with tokens redacted: no full token anywhere', async () => {
    const r = await admin(lab, '/api/bindings');
    assert.equal(r.status, 200);
    const body = r.json() as { bindings: Array<{ aor: string; push?: { token: string } }> };
    assert.ok(body.bindings.some((b) => b.aor === 'sip:ann@127.0.0.1'));
    assert.ok(body.bindings.some((b) => b.aor === 'sip:ben@127.0.0.1'));
    for (const token of [iphone.token, voipToken]) {
      assert.ok(!r.text.includes(token), 'a full token leaked');
      assert.ok(!r.text.includes(token.slice(0, 20)), 'a long token prefix leaked');
    }
    const ben = body.bindings.find((b) => b.aor === 'sip:ben@127.0.0.1')!;
    assert.match(ben.push!.token, /…/);
    const filtered = (await admin(lab, `/api/bindings?aor=${encodeURIComponent('sip:ann@127.0.0.1')}`)).json() as { bindings: unknown[] };
    assert.equal(filtered.bindings.length, 1);
  });

  // observability/redact.ts masks a pn-prid value only up to the first `&`, so the
  // Flexisip form `tok1:voip&tok2:remote` shows tok2 (the alert token) whole in the
  // binding's `contact`. Outside the proxy's files: reported, not fixed here.
  it('/api/bindings does not show the second token of a Flexisip two-token pn-prid', async () => {
    const r = await admin(lab, '/api/bindings');
    assert.ok(!r.text.includes(remoteToken), 'the alert (remote) token leaked in contact');
  });

  it('/api/calls lists recent calls; /api/calls/<callId> returns the timeline', async () => {
    const list = (await admin(lab, '/api/calls')).json() as { calls: Array<{ callId: string; outcome?: string }> };
    assert.ok(list.calls.some((c) => c.callId === answeredCallId && c.outcome === 'answered'));
    assert.ok(list.calls.some((c) => c.callId === missedCallId && c.outcome === 'cancelled'));
    const r = await admin(lab, `/api/calls/${encodeURIComponent(answeredCallId)}`);
    assert.equal(r.status, 200);
    const timeline = r.json() as { callId: string; events: Array<{ kind: string; offsetMs: number; branch?: string }>; finalStatus: number };
    assert.equal(timeline.callId, answeredCallId);
    assert.equal(timeline.finalStatus, 200);
    const kinds = timeline.events.map((e) => e.kind);
    for (const k of ['invite-in', 'push-sent', 'push-accepted', 'ringing', 'device-registered', 'request-out', 'response-in', 'response-out', 'ended']) {
      assert.ok(kinds.includes(k), `${k} in ${kinds.join(',')}`);
    }
    const offsets = timeline.events.map((e) => e.offsetMs);
    assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b), 'events in time order');
    assert.ok(!r.text.includes(iphone.token), 'no token in a timeline');
    const missed = await admin(lab, `/api/calls/${encodeURIComponent(missedCallId)}`);
    assert.ok(!missed.text.includes(voipToken) && !missed.text.includes(remoteToken));
    assert.match(missed.text, /alert-push/);
    assert.equal((await admin(lab, '/api/calls/no-such-call')).status, 404);
  });
});

describe('admin API with admin.token', () => {
  const TOKEN = 'adm1n-t0ken-for-tests-0123456789';
  let lab: Lab;
  before(async () => {
    lab = await startLab({ config: { admin: { token: TOKEN } as never } });
  });
  after(async () => lab.close());

  it('the API and /metrics need the bearer token; /healthz and the dashboard files do not', async () => {
    const base = `http://${lab.server.adminAddress}`;
    const get = (path: string, token?: string) => fetch(`${base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    for (const path of ['/api/summary', '/api/bindings', '/api/calls', '/metrics']) {
      const refused = await get(path);
      assert.equal(refused.status, 401, path);
      assert.equal(refused.headers.get('www-authenticate'), 'Bearer realm="pushcall admin"');
      assert.equal((await get(path, 'wrong-token-of-the-same-size-00')).status, 401, `${path} with a wrong token`);
      assert.equal((await get(path, TOKEN)).status, 200, `${path} with the token`);
    }
    assert.equal((await get('/healthz')).status, 200);
    assert.equal((await get('/')).status, 200);
    assert.equal((await get('/dashboard.js')).status, 200);
  });
});
