/**
 * The proxy core (RFC 3261 §16) against real peers on loopback: request validation
 * (§16.3: Max-Forwards, loops and spirals, Proxy-Require), parallel forking with CANCEL and
 * RFC 3326 Reason (§16.7 step 5, §16.10), best-response selection (§16.7 step 6) and the
 * ring timeout (Timer C).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SipRequest, SipResponse } from '@pushcall/sip';
import { type Lab, type SipUserAgent, startLab } from '../../src/index.js';
import { RawUdpPeer, ackFor, callerUa, inviteText, rawUas, recordingDelegate, registerRaw, registeredUa, sleep, uniq, waitFor } from './helpers.js';

describe('proxy core (RFC 3261 §16)', () => {
  let lab: Lab;
  let caller: RawUdpPeer;
  const closers: Array<() => unknown> = [];

  before(async () => {
    lab = await startLab({ config: { proxy: { ringTimeoutSeconds: 20 } as never } });
    caller = await RawUdpPeer.open();
  });
  after(async () => {
    caller.close();
    for (const c of closers) await c();
    await lab.close();
  });

  async function invite(target: string, extra: Partial<Parameters<typeof inviteText>[0]> = {}) {
    const callId = uniq('core');
    const text = inviteText({ from: caller, target, callId, ...extra });
    await caller.send(text, lab.address('udp'));
    const response = await caller.final(callId, extra.method ?? 'INVITE', 8000);
    if ((extra.method ?? 'INVITE') === 'INVITE' && response.status >= 300) await caller.send(ackFor(text, response), lab.address('udp'));
    return { callId, response, text };
  }

  it('Max-Forwards: 0 is answered 483 Too Many Hops (§16.3 step 3)', async () => {
    const { response } = await invite('sip:nobody@127.0.0.1', { maxForwards: 0 });
    assert.equal(response.status, 483);
  });

  it('Max-Forwards is decremented on the forwarded request, and 70 is used when absent (§16.6 step 3)', async () => {
    const uas = await rawUas(lab, 'mf', 486);
    closers.push(() => uas.close());
    await invite('sip:mf@127.0.0.1', { maxForwards: 5 });
    await invite('sip:mf@127.0.0.1', { maxForwards: null });
    const invites = uas.requests('INVITE');
    assert.deepEqual(
      [...new Set(invites.map((r) => r.callId))].map((id) => invites.find((r) => r.callId === id)!.maxForwards),
      [4, 69],
    );
  });

  it('a request that comes back unchanged is a loop: 482 (§16.3 step 4)', async () => {
    // loopy's contact is pushcall itself: the INVITE spirals once (the Request-URI changes
    // from the AOR to the contact), then comes back with the same Request-URI: a loop.
    const peer = await RawUdpPeer.open();
    closers.push(() => peer.close());
    await registerRaw(lab, peer, 'loopy', `sip:loopy@127.0.0.1:${lab.server.port('udp')}`);
    const started = Date.now();
    const { response } = await invite('sip:loopy@127.0.0.1');
    assert.equal(response.status, 482, `${response.status} ${response.reason}`);
    assert.ok(Date.now() - started < 2000, 'detected at once, not after 70 hops');
  });

  it('a spiral (the Request-URI changed) is not a loop: the request reaches the target', async () => {
    // alias's contact points back at pushcall with another user: a spiral to target.
    const target = await rawUas(lab, 'spiral-target', 486);
    closers.push(() => target.close());
    const peer = await RawUdpPeer.open();
    closers.push(() => peer.close());
    await registerRaw(lab, peer, 'spiral-alias', `sip:spiral-target@127.0.0.1:${lab.server.port('udp')}`);
    const { response, callId } = await invite('sip:spiral-alias@127.0.0.1');
    assert.equal(response.status, 486);
    const got = target.requests('INVITE').find((r) => r.callId === callId);
    assert.ok(got, 'the target got the INVITE');
    const ours = got.vias.filter((v) => v.branch?.startsWith('z9hG4bKpc'));
    assert.equal(ours.length, 2, 'pushcall is on the path twice (a spiral)');
  });

  it('an unknown Proxy-Require option is refused 420 with Unsupported (§16.3 step 5)', async () => {
    const { response } = await invite('sip:nobody@127.0.0.1', { extra: ['Proxy-Require: x-frobnicate, x-other'] });
    assert.equal(response.status, 420);
    assert.match(response.get('unsupported') ?? '', /x-frobnicate/);
    assert.match(response.get('unsupported') ?? '', /x-other/);
  });

  it('a user with no binding gets 480', async () => {
    const { response } = await invite('sip:nobody-here@127.0.0.1');
    assert.equal(response.status, 480);
  });

  describe('parallel forking', () => {
    it('the first 2xx wins; the other branch gets CANCEL with Reason cause=200 (answered elsewhere)', async () => {
      const fast = await registeredUa(lab, 'fork2', { autoAnswerMs: 300 });
      const slow = await registeredUa(lab, 'fork2');
      const a = callerUa(lab, 'forker');
      closers.push(() => fast.close(), () => slow.close(), () => a.close());
      const delegate = recordingDelegate();
      a.setDelegate(delegate);
      const response = await a.call('sip:fork2@127.0.0.1');
      assert.equal(response.status, 200);
      await waitFor(() => slow.received.some((r) => r.method === 'CANCEL'), 3000, 'CANCEL at the slow phone');
      const cancel = slow.received.find((r) => r.method === 'CANCEL')!;
      assert.equal(cancel.get('reason'), 'SIP;cause=200;text="Call completed elsewhere"');
      const slowInvite = slow.received.find((r) => r.method === 'INVITE')!;
      assert.equal(cancel.callId, slowInvite.callId);
      assert.equal(cancel.via.branch, slowInvite.via.branch, 'the CANCEL matches the branch it cancels (§9.1)');
      // The winner gets the caller's ACK end to end; the loser never gets an ACK for a 2xx.
      await waitFor(() => fast.received.some((r) => r.method === 'ACK'), 3000, 'ACK at the winner');
      assert.ok(!fast.received.some((r) => r.method === 'CANCEL'), 'the winner is not cancelled');
      assert.ok(delegate.progress.includes(180), 'the caller heard ringing');
      const timeline = lab.server.timelines.get(response.callId)!;
      assert.equal(timeline.outcome, 'answered');
      assert.ok(timeline.events.some((e) => e.kind === 'cancel-out'));
    });

    it('a 603 Decline from one device ends the call: caller gets 603, the others CANCEL with cause=603', async () => {
      const decliner = await registeredUa(lab, 'decl');
      const ringer = await registeredUa(lab, 'decl');
      const a = callerUa(lab, 'decl-caller');
      closers.push(() => decliner.close(), () => ringer.close(), () => a.close());
      decliner.events.onRequest = (r: SipRequest) => {
        if (r.method === 'INVITE') setTimeout(() => decliner.reject(r.callId, 603), 300);
      };
      const response = await a.call('sip:decl@127.0.0.1');
      assert.equal(response.status, 603);
      await waitFor(() => ringer.received.some((r) => r.method === 'CANCEL'), 3000, 'CANCEL at the other phone');
      const cancel = ringer.received.find((r) => r.method === 'CANCEL')!;
      assert.equal(cancel.get('reason'), 'SIP;cause=603;text="Declined"');
      assert.equal(lab.server.timelines.get(response.callId)!.outcome, 'declined');
    });
  });

  describe('best response when every branch fails (§16.7 step 6)', () => {
    it('486 Busy Here beats 480 and 408', async () => {
      for (const status of [480, 408, 486]) {
        const uas = await rawUas(lab, 'best1', status, 100 + status - 400);
        closers.push(() => uas.close());
      }
      const { response } = await invite('sip:best1@127.0.0.1');
      assert.equal(response.status, 486);
    });

    it('a 503 from the only branch reaches the caller as 500 (it would stop the caller retrying)', async () => {
      const uas = await rawUas(lab, 'best2', 503, 50, [['Retry-After', '120']]);
      closers.push(() => uas.close());
      const { response } = await invite('sip:best2@127.0.0.1');
      assert.equal(response.status, 500, `${response.status} ${response.reason}`);
    });

    it('a 4xx beats a 5xx: 480 and 503 give 480', async () => {
      const a = await rawUas(lab, 'best3', 503, 50);
      const b = await rawUas(lab, 'best3', 480, 150);
      closers.push(() => a.close(), () => b.close());
      const { response } = await invite('sip:best3@127.0.0.1');
      assert.equal(response.status, 480);
    });

    it('§16.7 step 7: a 401 and a 407 from two branches: the caller gets one response with both challenges', async () => {
      const a = await rawUas(lab, 'best5', 401, 50, [['WWW-Authenticate', 'Digest realm="desk.example", nonce="n1", qop="auth"']]);
      const b = await rawUas(lab, 'best5', 407, 150, [['Proxy-Authenticate', 'Digest realm="gw.example", nonce="n2", qop="auth"']]);
      closers.push(() => a.close(), () => b.close());
      const { response } = await invite('sip:best5@127.0.0.1');
      assert.ok(response.status === 401 || response.status === 407, String(response.status));
      assert.deepEqual(response.getAll('www-authenticate'), ['Digest realm="desk.example", nonce="n1", qop="auth"']);
      assert.deepEqual(response.getAll('proxy-authenticate'), ['Digest realm="gw.example", nonce="n2", qop="auth"']);
    });

    it('a 6xx wins even when it arrives after a 4xx', async () => {
      const a = await rawUas(lab, 'best4', 486, 50);
      const b = await rawUas(lab, 'best4', 600, 200);
      closers.push(() => a.close(), () => b.close());
      const { response } = await invite('sip:best4@127.0.0.1');
      assert.equal(response.status, 600);
    });
  });
});

describe('ring timeout (proxy.ringTimeoutSeconds)', () => {
  let lab: Lab;
  let phone: SipUserAgent;
  let a: SipUserAgent;
  before(async () => {
    lab = await startLab({ config: { proxy: { ringTimeoutSeconds: 1 } as never } });
    phone = await registeredUa(lab, 'slowpoke');
    a = callerUa(lab, 'impatient');
  });
  after(async () => {
    await phone.close();
    await a.close();
    await lab.close();
  });

  it('nobody answers: 408 to the caller and CANCEL to the ringing branch', async () => {
    const started = Date.now();
    const response: SipResponse = await a.call('sip:slowpoke@127.0.0.1');
    const elapsed = Date.now() - started;
    assert.equal(response.status, 408);
    assert.ok(elapsed >= 900 && elapsed < 3000, `after ~1 s (took ${elapsed} ms)`);
    await waitFor(() => phone.received.some((r) => r.method === 'CANCEL'), 3000, 'CANCEL at the phone');
    const cancel = phone.received.find((r) => r.method === 'CANCEL')!;
    assert.equal(cancel.get('reason'), undefined, 'no Reason: nobody answered anywhere');
    await sleep(100);
    const timeline = lab.server.timelines.get(response.callId)!;
    assert.equal(timeline.outcome, 'no-answer');
    assert.ok(timeline.events.some((e) => e.kind === 'ring-timeout'));
  });
});
