/**
 * Wake on call, end to end with real peers: SIPp as the caller (and as an always-online
 * desk phone), pushcall, the APNs/FCM emulators, and simulated phones (our SIP UA + the
 * client SDK's coordinator + simulated iOS/Android) that wake only on a push.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { type Lab, SimulatedPhone, type SimulatedPhoneOptions, freePort, runSipp, scenario, sippAvailable, startLab } from '../../src/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(check: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function phone(lab: Lab, name: string, user: string, extra: Partial<SimulatedPhoneOptions> = {}): SimulatedPhone {
  return new SimulatedPhone({
    name,
    platform: 'ios',
    user,
    domain: '127.0.0.1',
    server: lab.address('udp'),
    apns: lab.apns,
    apnsSandbox: lab.apnsSandbox,
    fcm: lab.fcm,
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
});
