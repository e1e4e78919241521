/**
 * The wake path beyond the end-to-end test: held-call caps and per-caller limits, when a
 * push binding is reached directly instead of pushed, `pn-*` confidentiality, a decline
 * elsewhere reaching a held branch (INVITE + CANCEL cause=603 on wake), missed-call alert
 * pushes (APNs two-token form, FCM), and the APNs environment mismatch.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { SipRequest, SipResponse } from '@pushcall/sip';
import { LAB_BUNDLE_ID, LAB_FCM_PROJECT, type Lab, SimulatedPhone, type SimulatedPhoneOptions, type SipUserAgent, startLab } from '../../src/index.js';
import { RawUdpPeer, callerUa, pushUa, rawCall, registeredUa, sleep, waitFor } from './helpers.js';

const apnsToken = () => randomBytes(32).toString('hex');

function retryAfter(response: SipResponse): number {
  const value = Number(response.get('retry-after'));
  assert.ok(Number.isInteger(value) && value >= 1, `Retry-After: ${response.get('retry-after')}`);
  return value;
}

/** An awake-then-closed APNs device (push accepted, never wakes). */
async function deadIphone(lab: Lab, user: string): Promise<string> {
  const token = apnsToken();
  lab.apns.registerDevice({ token, bundleId: LAB_BUNDLE_ID, environment: 'production' });
  const { ua } = await pushUa(lab, user, { provider: 'apns', prid: token });
  await ua.close();
  return token;
}

describe('held-call caps (limits.maxHeldPerAor, limits.maxHeldTotal)', () => {
  let lab: Lab;
  let caller: RawUdpPeer;
  before(async () => {
    lab = await startLab({
      config: {
        proxy: { wakeTimeoutSeconds: 5, ringTimeoutSeconds: 20 } as never,
        limits: { maxHeldPerAor: 1, maxHeldTotal: 2, perCalleePerMinute: 1000, perCallerPerMinute: 1000 } as never,
      },
    });
    caller = await RawUdpPeer.open();
  });
  after(async () => {
    caller.close();
    await lab.close();
  });

  it('a second held call for the same user gets 486 + Retry-After; past the total, 503 + Retry-After', async () => {
    for (const u of ['capa', 'capb', 'capc']) await deadIphone(lab, u);
    const first = await rawCall(lab, caller, 'sip:capa@127.0.0.1');
    await first.ringing();
    assert.equal(lab.server.proxy.wake.size, 1);

    const again = await rawCall(lab, caller, 'sip:capa@127.0.0.1');
    const busy = await again.final;
    assert.equal(busy.status, 486);
    retryAfter(busy);

    const second = await rawCall(lab, caller, 'sip:capb@127.0.0.1');
    await second.ringing();
    assert.equal(lab.server.proxy.wake.size, 2);

    const third = await rawCall(lab, caller, 'sip:capc@127.0.0.1');
    const full = await third.final;
    assert.equal(full.status, 503);
    retryAfter(full);
    assert.equal(lab.apns.received.length, 2, 'refused calls push nothing');
    for (const [refused, status] of [[again, 486], [third, 503]] as const) {
      const timeline = lab.server.timelines.get(refused.callId);
      assert.equal(timeline?.outcome, 'refused', "a refused call's timeline ends");
      assert.equal(timeline?.finalStatus, status);
    }

    for (const c of [first, second]) {
      assert.equal((await c.cancel()).status, 200);
      assert.equal((await c.final).status, 487);
    }
  });
});

describe('per-caller limit (limits.perCallerPerMinute)', () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab({
      config: {
        proxy: { wakeTimeoutSeconds: 1 } as never,
        limits: { perCallerPerMinute: 2, perCalleePerMinute: 1000 } as never,
      },
    });
  });
  after(async () => lab.close());

  it('the third push-triggering call from one caller within a minute gets 503 + Retry-After; another caller still gets through', async () => {
    for (const u of ['pc1', 'pc2', 'pc3']) await deadIphone(lab, u);
    const spammer = await RawUdpPeer.open();
    const other = await RawUdpPeer.open();
    try {
      const calls = [];
      for (const u of ['pc1', 'pc2']) calls.push(await rawCall(lab, spammer, `sip:${u}@127.0.0.1`, { fromUser: 'spammer' }));
      await Promise.all(calls.map((c) => c.ringing()));
      const third = await rawCall(lab, spammer, 'sip:pc3@127.0.0.1', { fromUser: 'spammer' });
      const refused = await third.final;
      assert.equal(refused.status, 503);
      assert.ok(retryAfter(refused) <= 60);
      const fine = await rawCall(lab, other, 'sip:pc3@127.0.0.1', { fromUser: 'someone-else' });
      await fine.ringing();
      assert.equal((await fine.final).status, 480, 'pushed, then the wake timeout');
      for (const c of calls) assert.equal((await c.final).status, 480);
    } finally {
      spammer.close();
      other.close();
    }
  });
});

describe('push binding or live flow (proxy.liveFlowSeconds)', () => {
  let lab: Lab;
  let caller: RawUdpPeer;
  const uas: SipUserAgent[] = [];
  before(async () => {
    lab = await startLab({ config: { proxy: { wakeTimeoutSeconds: 1, liveFlowSeconds: 2 } as never } });
    caller = await RawUdpPeer.open();
  });
  after(async () => {
    caller.close();
    for (const u of uas) await u.close();
    await lab.close();
  });

  for (const protocol of ['tcp', 'ws'] as const) {
    it(`a push binding with an open ${protocol.toUpperCase()} connection, refreshed recently, gets the INVITE directly (no push, no pn-*)`, async () => {
      const token = apnsToken();
      lab.apns.registerDevice({ token, bundleId: LAB_BUNDLE_ID, environment: 'production' });
      const { ua, register } = await pushUa(lab, `live-${protocol}`, { provider: 'apns', prid: token, protocol }, { autoAnswerMs: 20 });
      uas.push(ua);
      // The REGISTER response is the one place the phone sees its pn-* parameters again.
      assert.match(register.get('contact') ?? '', /pn-prid=/);
      // RFC 5626 §4.4.1: the connection ends here, so pushcall asks for keep-alives often
      // enough to stay inside the live window (3/4 of liveFlowSeconds = 2 s, in whole seconds).
      assert.equal(register.get('require'), 'outbound');
      assert.equal(register.get('flow-timer'), '1');
      const pushes = lab.apns.received.length;
      const call = await rawCall(lab, caller, `sip:live-${protocol}@127.0.0.1`);
      const ok = await call.final;
      assert.equal(ok.status, 200);
      assert.equal(lab.apns.received.length, pushes, 'no push');
      const invite = ua.received.find((r) => r.method === 'INVITE' && r.callId === call.callId)!;
      assert.doesNotMatch(invite.toString(), /pn-/i);
      const kinds = lab.server.timelines.get(call.callId)!.events.map((e) => e.kind);
      assert.ok(!kinds.includes('push-sent'));
    });
  }

  it('the same binding is pushed once its last refresh is older than liveFlowSeconds', async () => {
    const token = apnsToken();
    lab.apns.registerDevice({ token, bundleId: LAB_BUNDLE_ID, environment: 'production' });
    const { ua } = await pushUa(lab, 'stale-tcp', { provider: 'apns', prid: token, protocol: 'tcp' }, { autoAnswerMs: 20 });
    uas.push(ua);
    await sleep(2200);
    const call = await rawCall(lab, caller, 'sip:stale-tcp@127.0.0.1');
    const final = await call.final;
    assert.equal(final.status, 480, 'pushed; this UA does not re-register, so the wake timeout ends it');
    assert.equal(lab.apns.received.filter((p) => p.token === token).length, 1);
  });

  it('a binding whose last REGISTER is old but whose connection carries CRLF keep-alives stays live: no push', async () => {
    const token = apnsToken();
    lab.apns.registerDevice({ token, bundleId: LAB_BUNDLE_ID, environment: 'production' });
    const { ua } = await pushUa(lab, 'keepalive-tcp', { provider: 'apns', prid: token, protocol: 'tcp' }, { autoAnswerMs: 20 });
    uas.push(ua);
    for (let i = 0; i < 5; i++) {
      await sleep(500);
      await ua.keepAlive();
    }
    const call = await rawCall(lab, caller, 'sip:keepalive-tcp@127.0.0.1');
    assert.equal((await call.final).status, 200, 'called directly over its connection');
    assert.equal(lab.apns.received.filter((p) => p.token === token).length, 0, 'no push');
  });

  it('a UDP push binding is always pushed (no connection proves it is reachable)', async () => {
    const token = apnsToken();
    lab.apns.registerDevice({ token, bundleId: LAB_BUNDLE_ID, environment: 'production' });
    const { ua } = await pushUa(lab, 'awake-udp', { provider: 'apns', prid: token, protocol: 'udp' }, { autoAnswerMs: 20 });
    uas.push(ua);
    const call = await rawCall(lab, caller, 'sip:awake-udp@127.0.0.1');
    assert.equal((await call.final).status, 480);
    assert.equal(lab.apns.received.filter((p) => p.token === token).length, 1);
  });
});

describe('wake path: declines, alerts, environments, pn-* privacy', () => {
  let lab: Lab;
  let caller: RawUdpPeer;
  const closers: Array<() => unknown> = [];
  before(async () => {
    lab = await startLab({
      config: {
        proxy: { wakeTimeoutSeconds: 5, ringTimeoutSeconds: 20 } as never,
        limits: { perCalleePerMinute: 1000, perCallerPerMinute: 1000 } as never,
      },
    });
    caller = await RawUdpPeer.open();
  });
  after(async () => {
    caller.close();
    for (const c of closers) await c();
    await lab.close();
  });

  async function sleepingPhone(name: string, user: string, extra: Partial<SimulatedPhoneOptions> = {}): Promise<SimulatedPhone> {
    const p = new SimulatedPhone({
      name,
      platform: 'ios',
      user,
      ...lab.phoneWiring(),
      launchDelayMs: 100,
      answer: { kind: 'answer', afterMs: 200 },
      ...extra,
    });
    closers.push(() => p.close());
    await p.start();
    await p.sleep();
    return p;
  }

  it('603 on one device: caller gets 603; the held iPhone wakes to INVITE + CANCEL cause=603 and ends declinedElsewhere', async () => {
    const iphone = await sleepingPhone('iphone-603', 'mixed', { launchDelayMs: 1000, answer: { kind: 'ignore' } });
    const desk = await registeredUa(lab, 'mixed');
    closers.push(() => desk.close());
    desk.events.onRequest = (r: SipRequest) => {
      if (r.method === 'INVITE') setTimeout(() => desk.reject(r.callId, 603), 200);
    };
    const a = callerUa(lab, 'dialer');
    closers.push(() => a.close());
    const response = await a.call('sip:mixed@127.0.0.1');
    assert.equal(response.status, 603);
    assert.equal(iphone.ua.received.length, 0, 'the iPhone was still asleep');
    await waitFor(() => iphone.ua.received.some((r) => r.method === 'CANCEL'), 5000, 'CANCEL at the woken iPhone');
    const [invite, cancel] = [iphone.ua.received.find((r) => r.method === 'INVITE')!, iphone.ua.received.find((r) => r.method === 'CANCEL')!];
    assert.ok(invite, 'INVITE delivered first');
    assert.equal(cancel.callId, response.callId);
    assert.equal(cancel.get('reason'), 'SIP;cause=603;text="Declined"');
    await waitFor(() => iphone.coordinator.calls()[0]?.state === 'ended', 3000, 'CallKit call end');
    assert.equal(iphone.coordinator.calls()[0].endReason, 'declinedElsewhere');
    assert.equal((iphone.os as { kills: number }).kills, 0);
    const events = lab.server.timelines.get(response.callId)!.events;
    assert.ok(events.some((e) => e.kind === 'request-out' && e.detail?.cancelAfter === true));
  });

  it('nothing pn-* reaches a woken phone: INVITE, ACK and BYE over TCP after the wake', async () => {
    const iphone = await sleepingPhone('iphone-tcp', 'private', { server: lab.address('tcp') });
    const a = callerUa(lab, 'nosy');
    closers.push(() => a.close());
    const response = await a.call('sip:private@127.0.0.1');
    assert.equal(response.status, 200);
    await waitFor(() => iphone.ua.received.some((r) => r.method === 'ACK'), 3000, 'ACK at the phone');
    a.hangup(response.callId);
    await waitFor(() => iphone.ua.received.some((r) => r.method === 'BYE'), 3000, 'BYE at the phone');
    const methods = iphone.ua.received.map((r) => r.method);
    assert.deepEqual(methods, ['INVITE', 'ACK', 'BYE']);
    for (const r of iphone.ua.received) assert.doesNotMatch(r.toString(), /pn-(prid|param|provider)/i, `${r.method} carries pn-*`);
    // Nor does anything the caller sees.
    assert.doesNotMatch(response.toString(), /pn-/i);
  });

  it('missed call, APNs two-token form (pn-prid=tok1:voip&tok2:remote): VoIP push to tok1, then an alert push to tok2', async () => {
    const voip = apnsToken();
    const remote = apnsToken();
    for (const token of [voip, remote]) lab.apns.registerDevice({ token, bundleId: LAB_BUNDLE_ID, environment: 'production' });
    const { ua } = await pushUa(lab, 'twotok', { provider: 'apns', prid: `${voip}:voip&${remote}:remote`, param: 'TEAM123456.com.example.pushcall.voip&remote' });
    await ua.close();
    const call = await rawCall(lab, caller, 'sip:twotok@127.0.0.1');
    await call.ringing();
    assert.equal((await call.cancel()).status, 200);
    assert.equal((await call.final).status, 487);
    await waitFor(() => lab.apns.received.some((p) => p.token === remote), 3000, 'the alert push');
    const toVoip = lab.apns.received.filter((p) => p.token === voip);
    const toRemote = lab.apns.received.filter((p) => p.token === remote);
    assert.equal(toVoip.length, 1);
    assert.equal(toVoip[0].pushType, 'voip');
    assert.equal(toVoip[0].topic, `${LAB_BUNDLE_ID}.voip`);
    assert.equal(toRemote.length, 1);
    assert.equal(toRemote[0].pushType, 'alert');
    assert.equal(toRemote[0].topic, LAB_BUNDLE_ID);
    assert.match(JSON.stringify(toRemote[0].payload), /missed_call/);
    assert.match(JSON.stringify(toRemote[0].payload), /Missed call from/);
    const events = lab.server.timelines.get(call.callId)!.events;
    await waitFor(() => events.some((e) => e.kind === 'alert-push'), 2000, 'alert-push in the timeline');
  });

  it('missed call on Android: a call data message, then a missed_call message (FCM)', async () => {
    const token = `fcm-${randomBytes(20).toString('base64url')}`;
    lab.fcm.registerDevice({ token, projectId: LAB_FCM_PROJECT });
    const { ua } = await pushUa(lab, 'droid', { provider: 'fcm', prid: token });
    await ua.close();
    const call = await rawCall(lab, caller, 'sip:droid@127.0.0.1', { fromUser: 'mum' });
    await call.ringing();
    await call.cancel();
    assert.equal((await call.final).status, 487);
    await waitFor(() => lab.fcm.received.filter((m) => m.token === token).length === 2, 3000, 'two FCM messages');
    const [first, second] = lab.fcm.received.filter((m) => m.token === token).map((m) => m.payload as { type: string; text?: string });
    assert.equal(first.type, 'call');
    assert.equal(second.type, 'missed_call');
  });

  it("no missed-call alert when the caller's CANCEL says the call was answered elsewhere (Reason cause=200)", async () => {
    const token = `fcm-${randomBytes(20).toString('base64url')}`;
    lab.fcm.registerDevice({ token, projectId: LAB_FCM_PROJECT });
    const { ua } = await pushUa(lab, 'pickedup', { provider: 'fcm', prid: token });
    await ua.close();
    const call = await rawCall(lab, caller, 'sip:pickedup@127.0.0.1');
    await call.ringing();
    await call.cancel('SIP;cause=200;text="Call completed elsewhere"');
    assert.equal((await call.final).status, 487);
    await sleep(300);
    const messages = lab.fcm.received.filter((m) => m.token === token).map((m) => (m.payload as { type: string }).type);
    assert.deepEqual(messages, ['call'], 'the call push only, no missed_call');
    assert.equal(lab.server.timelines.get(call.callId)?.outcome, 'cancelled');
  });

  it('no missed-call alert when the device woke and was called', async () => {
    const iphone = await sleepingPhone('iphone-woke', 'woke', { launchDelayMs: 50, answer: { kind: 'ignore' } });
    const call = await rawCall(lab, caller, 'sip:woke@127.0.0.1');
    await waitFor(() => iphone.ua.received.some((r) => r.method === 'INVITE'), 3000, 'INVITE at the phone');
    await call.cancel();
    assert.equal((await call.final).status, 487);
    await sleep(300);
    assert.equal(lab.apns.received.filter((p) => p.token === iphone.token).length, 1, 'only the VoIP push');
  });

  it('environment mismatch: the binding says production, the token is sandbox: pushed via sandbox, binding corrected', async () => {
    const token = apnsToken();
    lab.apnsSandbox.registerDevice({ token, bundleId: LAB_BUNDLE_ID, environment: 'sandbox' });
    const { ua } = await pushUa(lab, 'devbuild', { provider: 'apns', prid: token });
    await ua.close();
    const envOf = async () => (await lab.server.store.all()).find((b) => b.aor === 'sip:devbuild@127.0.0.1')?.push?.environment;
    assert.equal(await envOf(), 'production');
    const call = await rawCall(lab, caller, 'sip:devbuild@127.0.0.1');
    await call.ringing();
    assert.equal(lab.apnsSandbox.received.filter((p) => p.token === token).length, 1, 'delivered by the sandbox');
    assert.equal(lab.apns.received.filter((p) => p.token === token).length, 0);
    let env: string | undefined;
    await waitFor(() => (void envOf().then((e) => (env = e)), env === 'sandbox'), 3000, 'binding corrected to sandbox');
    const kinds = lab.server.timelines.get(call.callId)!.events.map((e) => e.kind);
    assert.ok(kinds.includes('push-accepted') && !kinds.includes('push-failed'), kinds.join(','));
    await call.cancel();
    assert.equal((await call.final).status, 487);
  });
});
