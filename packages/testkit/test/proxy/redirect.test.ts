/**
 * 3xx recursion (RFC 3261 §16.5, §16.7 step 5; `proxy.recurseOnRedirect`) through a running
 * pushcall: a desk phone forwarding its calls (302 to another user of the domain) makes the
 * call ring that user's devices, a sleeping phone woken by push included; Contacts outside
 * our domains stay in the 3xx for the caller; a redirect back to a user already tried is not
 * followed again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Lab, SimulatedPhone, startLab } from '../../src/index.js';
import { RawUdpPeer, rawCall, rawUas, registeredUa } from './helpers.js';
import { waitFor } from '../support/wait.js';

describe('3xx recursion to users of our domains (proxy.recurseOnRedirect)', () => {
  let lab: Lab;
  let caller: RawUdpPeer;
  const closers: Array<() => Promise<void> | void> = [];

  before(async () => {
    lab = await startLab({ config: { domains: ['127.0.0.1'], proxy: { wakeTimeoutSeconds: 5 } as never } });
    caller = await RawUdpPeer.open();
  });
  after(async () => {
    for (const close of closers) await close();
    await caller.close();
    await lab.close();
  });

  it('a desk phone forwarding to another user (302): that user\'s sleeping iPhone is pushed, woken and answers', async () => {
    const desk = await rawUas(lab, 'ann', 302, 50, [['Contact', '<sip:ben@127.0.0.1>']]);
    closers.push(() => desk.close());
    const iphone = new SimulatedPhone({ name: 'ben-iphone', platform: 'ios', user: 'ben', ...lab.phoneWiring(), launchDelayMs: 100, answer: { kind: 'answer', afterMs: 100 } });
    closers.push(() => iphone.close());
    await iphone.start();
    await iphone.sleep();
    const pushes = lab.apns.received.length;

    const { final, callId } = await rawCall(lab, caller, 'sip:ann@127.0.0.1');
    const response = await final;
    assert.equal(response.status, 200, `${response.status} ${response.reason}`);
    assert.equal(lab.apns.received.length, pushes + 1, 'ben\'s iPhone was pushed');
    assert.equal(iphone.coordinator.calls()[0]?.callId, callId);
    const timeline = lab.server.timelines.get(callId)!;
    assert.ok(timeline.events.some((e) => e.kind === 'redirect'), timeline.events.map((e) => e.kind).join(','));
  });

  it('a Contact outside our domains stays in the 3xx, which reaches the caller when nothing else answers', async () => {
    const desk = await rawUas(lab, 'cy', 302, 50, [['Contact', '<sip:cy@pbx.example.org>']]);
    closers.push(() => desk.close());
    const response = await (await rawCall(lab, caller, 'sip:cy@127.0.0.1')).final;
    assert.equal(response.status, 302);
    assert.match(response.get('contact') ?? '', /sip:cy@pbx\.example\.org/);
  });

  it('only the Contacts followed leave the 3xx: a redirect to a user and a foreign address keeps the foreign one', async () => {
    const desk = await rawUas(lab, 'dee', 302, 50, [['Contact', '<sip:eve@127.0.0.1>;q=0.9, <sip:dee@voicemail.example.org>;q=0.1']]);
    closers.push(() => desk.close());
    const eve = await rawUas(lab, 'eve', 486, 50);
    closers.push(() => eve.close());
    const response = await (await rawCall(lab, caller, 'sip:dee@127.0.0.1')).final;
    // The best of 486 (eve, followed) and the 302 left with the voicemail Contact (§16.7 step 6:
    // the lowest class, 3xx).
    assert.equal(response.status, 302);
    assert.deepEqual(response.values('contact').map((c) => c.replace(/\s/g, '')), ['<sip:dee@voicemail.example.org>;q=0.1']);
    await waitFor(() => eve.messages.some((m) => m.isRequest && (m as { method?: string }).method === 'INVITE'), 2000, 'the INVITE at eve');
  });

  it('a redirect back to a user already tried is not followed again (no loop)', async () => {
    const desk = await rawUas(lab, 'fay', 302, 50, [['Contact', '<sip:fay@127.0.0.1>']]);
    closers.push(() => desk.close());
    const response = await (await rawCall(lab, caller, 'sip:fay@127.0.0.1')).final;
    assert.equal(response.status, 302);
    const invites = desk.messages.filter((m) => m.isRequest && (m as { method?: string }).method === 'INVITE');
    assert.equal(invites.length, 1, 'fay\'s desk phone got the call once');
  });

  it('with proxy.recurseOnRedirect false the 3xx goes to the caller as it came', async () => {
    const other = await startLab({ config: { domains: ['127.0.0.1'], proxy: { recurseOnRedirect: false } as never } });
    const peer = await RawUdpPeer.open();
    try {
      const desk = await rawUas(other, 'gus', 302, 50, [['Contact', '<sip:hal@127.0.0.1>']]);
      const hal = await registeredUa(other, 'hal', { autoAnswerMs: 20 });
      try {
        const response = await (await rawCall(other, peer, 'sip:gus@127.0.0.1')).final;
        assert.equal(response.status, 302);
        assert.equal(hal.received.filter((r) => r.method === 'INVITE').length, 0);
      } finally {
        await hal.close();
        await desk.close();
      }
    } finally {
      await peer.close();
      await other.close();
    }
  });
});
