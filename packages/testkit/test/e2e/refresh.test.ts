/**
 * Refresh pushes (RFC 8599 §5.5) end to end: pushcall, the FCM and APNs emulators, a
 * simulated Android phone that sleeps and refreshes only when pushed, and an iOS app that
 * registered both its PushKit and its alert token. Lifetimes are seconds here (the minimum
 * push expiry and the lead are configured down) so that real time can be used.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createPushcall } from '@pushcall/server';
import { type Lab, LAB_BUNDLE_ID, LAB_TEAM_ID, SimulatedPhone, SipUserAgent, startLab } from '../../src/index.js';
import { waitFor } from '../support/wait.js';

/** The FCM emulator records `data.pushcall` already parsed. */
const fcmType = (payload: unknown) => (payload as { type?: string } | undefined)?.type;

describe('refresh pushes before a binding expires (RFC 8599 §5.5) end to end', () => {
  let lab: Lab;
  const closers: Array<() => Promise<void>> = [];

  before(async () => {
    lab = await startLab({
      config: {
        registrar: { minPushExpires: 4 } as never,
        proxy: { refreshPush: { leadSeconds: 2, retries: 1, retryIntervalSeconds: 1 } } as never,
      },
    });
  });
  after(async () => {
    for (const close of closers) await close();
    await lab.close();
  });

  it('a sleeping Android phone is pushed before its binding expires, re-registers, and stays reachable', async () => {
    const phone = new SimulatedPhone({ name: 'pixel', platform: 'android', user: 'erin', ...lab.phoneWiring(), launchDelayMs: 50, registerExpires: 5 });
    closers.push(() => phone.close());
    await phone.start();
    await phone.sleep();
    const aor = 'sip:erin@127.0.0.1';
    const [first] = await lab.server.store.lookup(aor, Date.now());
    assert.ok(first, 'registered');

    await waitFor(() => lab.fcm.received.some((m) => m.token === phone.token && fcmType(m.payload) === 'refresh'), 6000, 'the refresh push');
    const push = lab.fcm.received.find((m) => m.token === phone.token && fcmType(m.payload) === 'refresh')!;
    const payload = push.payload as { to: string; ttl: number; call_id?: string };
    assert.equal(payload.to, aor);
    assert.ok(payload.ttl >= 1 && payload.ttl <= 2, `ttl ${payload.ttl} s: what is left of the binding`);
    assert.equal(payload.call_id, undefined, 'a refresh is about no call');
    assert.equal(push.android?.priority, 'HIGH');
    // Its sending time came 2 s before the binding's expiry (the configured lead).
    const lead = first.expiresAt - push.receivedAt;
    assert.ok(lead > 1000 && lead <= 2100, `pushed ${lead} ms before expiry`);

    // The phone woke on it and refreshed its binding: still there after the first expiry.
    await waitFor(() => Date.now() > first.expiresAt + 500, 6000, 'the first expiry');
    const [now] = await lab.server.store.lookup(aor, Date.now());
    assert.ok(now, 'the binding outlived its first lifetime');
    assert.equal(now.id, first.id, 'the same binding, refreshed');
    assert.ok(now.expiresAt > first.expiresAt);
    assert.equal(phone.coordinator.calls().length, 0, 'no call was shown for a refresh');
    const metrics = await lab.server.metrics.registry.getSingleMetricAsString('pushcall_refresh_pushes_total');
    assert.match(metrics, /provider="fcm",outcome="ok"\} [1-9]/);
  });

  it('a sleeping iPhone that registered its alert token is refreshed by a background push, never a VoIP push', async () => {
    const phone = new SimulatedPhone({ name: 'iphone', platform: 'ios', user: 'gina', ...lab.phoneWiring(), launchDelayMs: 50, registerExpires: 5, alertToken: true });
    closers.push(() => phone.close());
    await phone.start();
    await phone.sleep();
    const aor = 'sip:gina@127.0.0.1';
    const [first] = await lab.server.store.lookup(aor, Date.now());
    assert.equal(first.push?.prid, phone.token);
    assert.equal(first.push?.alertPrid, phone.alertToken);
    await waitFor(() => Date.now() > first.expiresAt + 500, 7000, 'the first expiry');
    const pushes = lab.apns.received.filter((p) => p.token === phone.token || p.token === phone.alertToken);
    assert.ok(pushes.length >= 1);
    for (const p of pushes) {
      assert.equal(p.token, phone.alertToken);
      assert.equal(p.pushType, 'background');
    }
    const [now] = await lab.server.store.lookup(aor, Date.now());
    assert.ok(now && now.expiresAt > first.expiresAt, 'refreshed by the app woken in the background');
    assert.equal((phone.os as { kills: number }).kills, 0);
    assert.equal(phone.coordinator.calls().length, 0);
    assert.ok(phone.events.some((e) => e.what === 'background push (refresh)'), JSON.stringify(phone.events));
  });

  it('iOS: the background push goes to the alert token, never the PushKit token, and stops once the binding has expired', async () => {
    const voipToken = randomBytes(32).toString('hex');
    const alertToken = randomBytes(32).toString('hex');
    lab.apns.registerDevice({ token: voipToken, bundleId: LAB_BUNDLE_ID });
    lab.apns.registerDevice({ token: alertToken, bundleId: LAB_BUNDLE_ID });
    // An app that registers once and never wakes again (say it was uninstalled).
    const ua = new SipUserAgent({ user: 'frank', domain: '127.0.0.1', server: lab.phoneWiring().server, instanceId: `urn:uuid:${randomUUID()}`, expires: 4 });
    closers.push(() => ua.close());
    ua.register({ pnProvider: 'apns', pnPrid: `${voipToken}:voip&${alertToken}:remote`, pnParam: `${LAB_TEAM_ID}.${LAB_BUNDLE_ID}.voip&remote` });
    await waitFor(() => ua.registered, 3000, 'registration');
    const [binding] = await lab.server.store.lookup('sip:frank@127.0.0.1', Date.now());
    assert.equal(binding.push?.alertPrid, alertToken);

    await waitFor(() => Date.now() > binding.expiresAt + 1500, 8000, 'the binding expiry');
    const pushes = lab.apns.received.filter((p) => p.token === voipToken || p.token === alertToken);
    assert.equal(pushes.length, 2, 'one push and one repeat (retries: 1), none after expiry');
    for (const p of pushes) {
      assert.equal(p.token, alertToken);
      assert.equal(p.pushType, 'background');
      assert.equal(p.priority, 5, 'Apple requires priority 5 for background pushes');
      assert.equal(p.topic, LAB_BUNDLE_ID);
      const body = p.payload as { aps: Record<string, unknown>; pushcall: { type: string; to: string } };
      assert.deepEqual(body.aps, { 'content-available': 1 });
      assert.equal(body.pushcall.type, 'refresh');
      assert.equal(body.pushcall.to, 'sip:frank@127.0.0.1');
      assert.ok(p.expiration !== undefined && p.expiration * 1000 <= binding.expiresAt + 1000, 'APNs keeps it no longer than the binding lives');
    }
    assert.equal((await lab.server.store.lookup('sip:frank@127.0.0.1', Date.now())).length, 0);
  });
});

describe('refresh pushes survive a restart', () => {
  it('a binding stored before a restart is refresh-pushed by the new process', async () => {
    const lab = await startLab({
      config: {
        registrar: { minPushExpires: 4 } as never,
        proxy: { refreshPush: { leadSeconds: 2, retries: 0, retryIntervalSeconds: 1 } } as never,
      },
    });
    const token = `fcm-restart-${randomUUID()}`;
    const ua = new SipUserAgent({ user: 'hank', domain: '127.0.0.1', server: lab.phoneWiring().server, instanceId: `urn:uuid:${randomUUID()}`, expires: 5 });
    let restarted: Awaited<ReturnType<typeof createPushcall>> | undefined;
    try {
      ua.register({ pnProvider: 'fcm', pnPrid: token, pnParam: 'pushcall-lab' });
      await waitFor(() => ua.registered, 3000, 'registration');
      await ua.close();
      // Stop at once (the SQLite store is flushed) and start again on the same data dir.
      await lab.server.stop();
      restarted = await createPushcall({ config: lab.server.config });
      await restarted.start();
      assert.equal(restarted.refresher?.size, 1, 'the stored binding is scheduled again');
      await waitFor(() => lab.fcm.received.some((m) => m.token === token), 6000, 'the refresh push from the new process');
      const push = lab.fcm.received.find((m) => m.token === token)!;
      assert.equal((push.payload as { type: string }).type, 'refresh');
    } finally {
      await restarted?.stop();
      await lab.close();
    }
  });
});
