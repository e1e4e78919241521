/**
 * Wake on call, end to end with real peers: SIPp as the caller (and as an always-online
 * desk phone), pushcall, the APNs/FCM emulators, and simulated phones (our SIP UA + the
 * client SDK's coordinator + simulated iOS/Android) that wake only on a push.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { type Lab, SimulatedPhone, type SimulatedPhoneOptions, freePort, runSipp, scenario, sippAvailable, startLab } from '../../src/index.js';
import { sleep, waitFor } from '../support/wait.js';

function phone(lab: Lab, name: string, user: string, extra: Partial<SimulatedPhoneOptions> = {}): SimulatedPhone {
  return new SimulatedPhone({
    name,
    platform: 'ios',
    user,
    ...lab.phoneWiring(),
    launchDelayMs: 100,
    answer: { kind: 'answer', afterMs: 300 },
    ...extra,
  });
}

describe('wake on call (RFC 8599 §5.6.2) end to end', () => {
  let lab: Lab;
  const phones: SimulatedPhone[] = [];

  before(async () => {
    assert.ok(sippAvailable(), 'sipp must be installed (apt-get install -y sip-tester)');
    lab = await startLab({
      config: {
        proxy: { wakeTimeoutSeconds: 2, ringTimeoutSeconds: 20 } as never,
        limits: { perCalleePerMinute: 1000, perCallerPerMinute: 1000 } as never,
      },
    });
  });
  after(async () => {
    for (const p of phones) await p.close();
    await lab.close();
  });

  async function sleepingPhone(name: string, user: string, extra: Partial<SimulatedPhoneOptions> = {}): Promise<SimulatedPhone> {
    const p = phone(lab, name, user, extra);
    phones.push(p);
    await p.start();
    await p.sleep();
    return p;
  }

  it('wakes a sleeping iPhone, which rings, answers, talks and hangs up', async () => {
    const iphone = await sleepingPhone('iphone', 'bob');
    const result = await runSipp({
      remote: `127.0.0.1:${lab.server.port('udp')}`,
      scenario: scenario('uac-call', { callee: 'bob', talk_ms: 300 }),
      timeoutMs: 15_000,
    });
    assert.equal(result.exitCode, 0, result.errors);
    assert.equal(lab.apns.received.length, 1, 'exactly one VoIP push');
    const push = lab.apns.received[0];
    assert.equal(push.pushType, 'voip');
    assert.equal(push.topic, 'com.example.pushcall.voip');
    assert.equal(push.priority, 10);
    const payload = push.payload as { pushcall: { call_id: string; from_name: string } };
    assert.equal(payload.pushcall.from_name, 'SIPp Caller');
    // The phone matched push and INVITE by Call-ID and never broke Apple's rules.
    const calls = iphone.coordinator.calls();
    assert.equal(calls.length, 1);
    assert.equal(calls[0].callId, payload.pushcall.call_id);
    assert.equal((iphone.os as { kills: number }).kills, 0);
    await waitFor(() => iphone.coordinator.calls()[0].state === 'ended', 5000, 'call end');
    assert.equal(iphone.coordinator.calls()[0].endReason, 'remoteEnded');
    const timeline = lab.server.timelines.get(payload.pushcall.call_id);
    assert.ok(timeline);
    const kinds = timeline.events.map((e) => e.kind);
    for (const k of ['invite-in', 'push-sent', 'push-accepted', 'device-registered', 'request-out', 'response-out'] as const) {
      assert.ok(kinds.includes(k), `timeline has ${k}: ${kinds.join(',')}`);
    }
    assert.equal(timeline.outcome, 'answered');
    // The INVITE the phone got carries no pn-* parameters (RFC 8599 §4.1, §13).
    const invite = iphone.ua.received.find((r) => r.method === 'INVITE');
    assert.ok(invite);
    assert.doesNotMatch(invite.uriText, /pn-/);
  });

  it('caller cancels before the phone registers: the phone gets INVITE then CANCEL and ends the call', async () => {
    const iphone = await sleepingPhone('iphone-cancel', 'dave', { launchDelayMs: 1200, answer: { kind: 'ignore' } });
    const before = lab.apns.received.length;
    const result = await runSipp({
      remote: `127.0.0.1:${lab.server.port('udp')}`,
      scenario: scenario('uac-cancel', { callee: 'dave', ring_ms: 100 }),
      timeoutMs: 10_000,
    });
    assert.equal(result.exitCode, 0, result.errors);
    assert.equal(lab.apns.received.length, before + 1);
    // The caller is gone; the phone wakes later and must still learn the call ended.
    await waitFor(() => iphone.ua.received.some((r) => r.method === 'CANCEL'), 5000, 'CANCEL at the phone');
    const invite = iphone.ua.received.find((r) => r.method === 'INVITE');
    const cancel = iphone.ua.received.find((r) => r.method === 'CANCEL');
    assert.ok(invite && cancel);
    assert.equal(cancel.callId, invite.callId);
    assert.equal(cancel.get('reason'), undefined, 'a plain CANCEL for the caller hanging up');
    await waitFor(() => iphone.coordinator.calls()[0]?.state === 'ended', 3000, 'CallKit call end');
    assert.equal(iphone.coordinator.calls()[0].endReason, 'remoteEnded');
    assert.equal((iphone.os as { kills: number }).kills, 0);
  });

  it('desk phone answers first: the pushed phone gets CANCEL with Reason cause=200 (answered elsewhere)', async () => {
    const iphone = await sleepingPhone('iphone-elsewhere', 'carol', { launchDelayMs: 1200, answer: { kind: 'ignore' } });
    const deskPort = await freePort();
    const server = `127.0.0.1:${lab.server.port('udp')}`;
    const desk = runSipp({ remote: server, localPort: deskPort, scenario: scenario('uas-answer', { answer_ms: 200 }), timeoutMs: 15_000 });
    const reg = await runSipp({
      remote: server,
      scenario: scenario('register-contact', { user: 'carol', contact: `sip:desk@127.0.0.1:${deskPort}` }),
    });
    assert.equal(reg.exitCode, 0, reg.errors);
    const caller = await runSipp({ remote: server, scenario: scenario('uac-call', { callee: 'carol', talk_ms: 100 }), timeoutMs: 15_000 });
    assert.equal(caller.exitCode, 0, `${caller.errors}\n${JSON.stringify(lab.server.timelines.list(1), null, 1)}`);
    assert.equal((await desk).exitCode, 0, 'the desk phone answered and got ACK and BYE');
    await waitFor(() => iphone.ua.received.some((r) => r.method === 'CANCEL'), 5000, 'CANCEL at the phone');
    const cancel = iphone.ua.received.find((r) => r.method === 'CANCEL')!;
    assert.equal(cancel.get('reason'), 'SIP;cause=200;text="Call completed elsewhere"');
    await waitFor(() => iphone.coordinator.calls()[0]?.state === 'ended', 3000, 'CallKit call end');
    assert.equal(iphone.coordinator.calls()[0].endReason, 'answeredElsewhere');
  });

  it('push rejected with 410 Unregistered: binding removed, caller gets 480 at once', async () => {
    const iphone = await sleepingPhone('iphone-410', 'frank');
    lab.apns.unregister(iphone.token, Date.now() + 1);
    const started = Date.now();
    const result = await runSipp({
      remote: `127.0.0.1:${lab.server.port('udp')}`,
      scenario: scenario('uac-expect-error', { callee: 'frank', expect: 480 }),
    });
    assert.equal(result.exitCode, 0, result.errors);
    assert.ok(Date.now() - started < 1500, 'no wait for a phone that will never wake');
    await waitFor(() => true);
    const left = (await lab.server.store.all()).filter((b) => b.aor === 'sip:frank@127.0.0.1');
    assert.equal(left.length, 0, 'the dead token\'s binding is gone');
  });

  it('phone never registers: 480 after the wake timeout', async () => {
    const iphone = await sleepingPhone('iphone-lost', 'grace');
    await iphone.close(); // the device is off: pushes are accepted but nothing wakes
    const started = Date.now();
    const result = await runSipp({
      remote: `127.0.0.1:${lab.server.port('udp')}`,
      scenario: scenario('uac-expect-error', { callee: 'grace', expect: 480 }),
      timeoutMs: 10_000,
    });
    assert.equal(result.exitCode, 0, result.errors);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1900 && elapsed < 5000, `480 after the 2 s wake timeout (took ${elapsed} ms)`);
  });

  it('an iPhone that registered its alert token and does not wake gets a "missed call" alert there, never a second VoIP push', async () => {
    const iphone = await sleepingPhone('iphone-missed', 'ivy', { alertToken: true });
    (iphone.os as { voipBlocked: boolean }).voipBlocked = true; // the VoIP push is accepted but not delivered
    const before = lab.apns.received.length;
    const result = await runSipp({
      remote: `127.0.0.1:${lab.server.port('udp')}`,
      scenario: scenario('uac-expect-error', { callee: 'ivy', expect: 480 }),
      timeoutMs: 10_000,
    });
    assert.equal(result.exitCode, 0, result.errors);
    await waitFor(() => lab.apns.received.slice(before).some((p) => p.token === iphone.alertToken), 3000, 'the alert');
    const pushes = lab.apns.received.slice(before);
    assert.deepEqual(
      pushes.map((p) => [p.token === iphone.token ? 'voip token' : 'alert token', p.pushType]),
      [['voip token', 'voip'], ['alert token', 'alert']],
    );
    const alert = pushes[1].payload as { aps: { alert: { title: string } }; pushcall: { type: string } };
    assert.equal(alert.pushcall.type, 'missed_call');
    assert.equal(alert.aps.alert.title, 'Missed call');
    await waitFor(() => iphone.events.some((e) => e.what === 'alert push (missed_call)'), 2000, 'the alert at the app');
  });

  it('a retransmitted INVITE, or the same call forked to us twice, is pushed once', async () => {
    const iphone = await sleepingPhone('iphone-dup', 'heidi');
    await iphone.close();
    const callId = `dup-${Date.now()}@test`;
    const invite = (branch: string) =>
      [
        'INVITE sip:heidi@127.0.0.1 SIP/2.0',
        `Via: SIP/2.0/UDP 127.0.0.1:9;branch=${branch};rport`,
        'Max-Forwards: 70',
        'From: <sip:caller@127.0.0.1>;tag=dup',
        'To: <sip:heidi@127.0.0.1>',
        `Call-ID: ${callId}`,
        'CSeq: 1 INVITE',
        'Contact: <sip:caller@127.0.0.1:9>',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
    const { createSocket } = await import('node:dgram');
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    const send = (text: string) => new Promise<void>((r) => socket.send(Buffer.from(text), lab.server.port('udp'), '127.0.0.1', () => r()));
    await send(invite('z9hG4bKdup1'));
    await send(invite('z9hG4bKdup1')); // retransmission: absorbed by the transaction layer
    await send(invite('z9hG4bKdup2')); // forked to us twice: a second transaction
    await sleep(500);
    socket.close();
    const pushes = lab.apns.received.filter((p) => (p.payload as { pushcall: { call_id: string } }).pushcall.call_id === callId);
    assert.equal(pushes.length, 1);
    const timelines = lab.server.timelines.list(50).filter((t) => t.callId === callId);
    assert.equal(timelines.length, 2, 'two server transactions');
    assert.ok(timelines.some((t) => t.events.some((e) => e.kind === 'push-deduplicated')));
  });

  it('MESSAGE to a sleeping Android phone: FCM push, wake, delivery', async () => {
    const android = await sleepingPhone('android', 'ivan', { platform: 'android' });
    const { SipUserAgent } = await import('../../src/index.js');
    const sender = new SipUserAgent({ user: 'judy', domain: '127.0.0.1', server: lab.address('udp'), instanceId: 'urn:uuid:00000000-0000-0000-0000-00000000ju01' });
    const got: string[] = [];
    android.ua.events.onMessage = (_from, body) => got.push(body);
    const before = lab.fcm.received.length;
    const response = await sender.message('sip:ivan@127.0.0.1', 'Are you there?');
    await sender.close();
    assert.equal(response.status, 200);
    assert.deepEqual(got, ['Are you there?']);
    const push = lab.fcm.received[before];
    assert.equal((push.payload as { type: string }).type, 'message');
    assert.equal((push.payload as { text: string }).text, 'Are you there?');
    assert.equal(push.android?.priority, 'HIGH');
  });
});

describe('abuse limits on push-triggering calls', () => {
  let lab: Lab;
  let iphone: SimulatedPhone;
  before(async () => {
    lab = await startLab({
      config: {
        proxy: { wakeTimeoutSeconds: 1 } as never,
        limits: { perCalleePerMinute: 2, perCallerPerMinute: 100 } as never,
      },
    });
    iphone = phone(lab, 'iphone-limit', 'kim');
    await iphone.start();
    await iphone.close();
  });
  after(async () => {
    await lab.close();
  });

  it('the third call to the same user within a minute gets 486 with Retry-After', async () => {
    const server = `127.0.0.1:${lab.server.port('udp')}`;
    const first = runSipp({ remote: server, scenario: scenario('uac-expect-error', { callee: 'kim', expect: 480 }) });
    const second = runSipp({ remote: server, scenario: scenario('uac-expect-error', { callee: 'kim', expect: 480 }) });
    await sleep(300);
    const third = await runSipp({
      remote: server,
      scenario: scenario('uac-expect-error', { callee: 'kim', expect: 486 }).replace(
        '<recv response="486" rtd="true"/>',
        '<recv response="486" rtd="true"><action><ereg regexp="Retry-After: [0-9]+" search_in="msg" check_it="true" assign_to="ra"/></action></recv><Reference variables="ra"/>',
      ),
    });
    assert.equal(third.exitCode, 0, third.errors);
    assert.equal((await first).exitCode, 0);
    assert.equal((await second).exitCode, 0);
    assert.equal(lab.apns.received.length, 2, 'no push for the refused call');
  });

  it('a CANCEL while the cluster\'s limits are being read ends the call 487, and no push goes out', async () => {
    const lee = phone(lab, 'iphone-lee', 'lee');
    await lee.start();
    await lee.close();
    // What a slow Redis looks like to a node (multi-node: rateLimitInCluster).
    lab.server.proxy.rateLimitInCluster = () => new Promise((resolve) => setTimeout(() => resolve(0), 400));
    const { SipUserAgent } = await import('../../src/index.js');
    const caller = new SipUserAgent({ user: 'mo', domain: '127.0.0.1', server: lab.address('udp'), instanceId: 'urn:uuid:00000000-0000-0000-0000-0000000000m0' });
    try {
      const pushesBefore = lab.apns.received.length;
      const callId = `limit-cancel-${Date.now()}@test`;
      const final = caller.call('sip:lee@127.0.0.1', { callId });
      await sleep(150);
      assert.ok(caller.cancelCall(callId), 'CANCEL sent');
      assert.equal((await final).status, 487);
      await sleep(500);
      assert.equal(lab.apns.received.length, pushesBefore, 'the call never started');
      const timeline = lab.server.timelines.list(20).find((t) => t.callId === callId)!;
      assert.equal(timeline.outcome, 'cancelled');
      assert.ok(!timeline.events.some((e) => e.kind === 'push-sent'));
      assert.equal(lab.server.proxy.activeCalls, 0);
    } finally {
      lab.server.proxy.rateLimitInCluster = undefined;
      await caller.close();
    }
  });
});
