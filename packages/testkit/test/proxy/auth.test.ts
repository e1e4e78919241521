/**
 * Callers are authenticated (RFC 3261 §22.3 proxy digest) so strangers cannot make phones
 * ring, unless they come from a trusted peer (auth.trustedPeers: the PBX, a trunk).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SipRequest } from '@pushcall/sip';
import { type Lab, type SipUserAgent, digestAuthorization, pickChallenge, startLab } from '../../src/index.js';
import { RawUdpPeer, ackFor, callerUa, inviteText, registeredUa, uniq } from './helpers.js';

describe('caller authentication (auth.mode digest)', () => {
  let lab: Lab;
  let bob: SipUserAgent;
  const peers: RawUdpPeer[] = [];

  before(async () => {
    lab = await startLab({
      users: [
        { username: 'alice', password: 'alice-pw' },
        { username: 'bob', password: 'bob-pw' },
      ],
      config: { auth: { trustedPeers: ['127.0.0.2', '127.0.0.4/31'] } as never },
    });
    bob = await registeredUa(lab, 'bob', { password: 'bob-pw' });
    // bob is busy: a 486 means the INVITE got through authentication and reached him.
    bob.events.onRequest = (r: SipRequest) => {
      if (r.method === 'INVITE') setTimeout(() => bob.reject(r.callId, 486), 20);
    };
  });
  after(async () => {
    for (const p of peers) p.close();
    await bob.close();
    await lab.close();
  });

  async function peerAt(address: string): Promise<RawUdpPeer> {
    const p = await RawUdpPeer.open(address);
    peers.push(p);
    return p;
  }

  async function rawInvite(from: RawUdpPeer, o: { fromUser?: string; extra?: string[]; method?: string } = {}) {
    const callId = uniq('auth');
    const text = inviteText({ from, target: 'sip:bob@127.0.0.1', callId, fromHost: '127.0.0.1', ...o });
    await from.send(text, lab.address('udp'));
    const response = await from.final(callId, o.method ?? 'INVITE', 5000);
    if ((o.method ?? 'INVITE') === 'INVITE') await from.send(ackFor(text, response), lab.address('udp'));
    return { response, callId };
  }

  it('an INVITE without credentials is challenged: 407 with Proxy-Authenticate', async () => {
    const { response } = await rawInvite(await peerAt('127.0.0.1'));
    assert.equal(response.status, 407);
    const challenges = response.authHeaders('proxy-authenticate');
    assert.ok(challenges.length >= 1);
    assert.equal(challenges[0].scheme.toLowerCase(), 'digest');
    assert.ok(challenges[0].get('nonce'));
    assert.equal(challenges[0].get('realm'), 'pushcall');
    assert.ok(!bob.received.some((r) => r.callId === response.callId), 'bob never saw it');
  });

  it('a MESSAGE without credentials is challenged too', async () => {
    const { response } = await rawInvite(await peerAt('127.0.0.1'), { method: 'MESSAGE' });
    assert.equal(response.status, 407);
  });

  it('a registered user with credentials gets through; our realm\'s credentials are not forwarded (§22.3)', async () => {
    const alice = callerUa(lab, 'alice', { password: 'alice-pw' });
    try {
      const response = await alice.call('sip:bob@127.0.0.1');
      assert.equal(response.status, 486, 'reached bob');
      const atBob = bob.received.find((r) => r.method === 'INVITE' && r.callId === response.callId)!;
      assert.equal(atBob.get('proxy-authorization'), undefined);
    } finally {
      await alice.close();
    }
  });

  it('an authenticated caller reaches the callee with pushcall\'s P-Asserted-Identity (RFC 3325 §6), not one of its own', async () => {
    const peer = await peerAt('127.0.0.1');
    const forged = 'P-Asserted-Identity: "The Bank" <sip:bank@example.com>';
    const first = await rawInvite(peer, { fromUser: 'alice', extra: [forged] });
    const challenge = pickChallenge(first.response.authHeaders('proxy-authenticate'))!;
    const auth = digestAuthorization(challenge, 'alice', 'alice-pw', 'INVITE', 'sip:bob@127.0.0.1');
    const { response } = await rawInvite(peer, { fromUser: 'alice', extra: [forged, `Proxy-Authorization: ${auth}`] });
    assert.equal(response.status, 486, 'reached bob');
    const atBob = bob.received.find((r) => r.method === 'INVITE' && r.callId === response.callId)!;
    assert.deepEqual(atBob.getAll('p-asserted-identity'), ['<sip:alice@127.0.0.1>']);

    // Privacy: id keeps the identity off the phone (outside the trust domain, §7).
    const hidden = await rawInvite(peer, { fromUser: 'alice', extra: ['Privacy: id'] });
    const again = pickChallenge(hidden.response.authHeaders('proxy-authenticate'))!;
    const retry = await rawInvite(peer, { fromUser: 'alice', extra: ['Privacy: id', `Proxy-Authorization: ${digestAuthorization(again, 'alice', 'alice-pw', 'INVITE', 'sip:bob@127.0.0.1')}`] });
    assert.equal(retry.response.status, 486);
    assert.equal(bob.received.find((r) => r.method === 'INVITE' && r.callId === retry.response.callId)!.get('p-asserted-identity'), undefined);
  });

  it('valid credentials with someone else\'s From: 403', async () => {
    const peer = await peerAt('127.0.0.1');
    const first = await rawInvite(peer, { fromUser: 'bob' });
    assert.equal(first.response.status, 407);
    const challenge = pickChallenge(first.response.authHeaders('proxy-authenticate'))!;
    const auth = digestAuthorization(challenge, 'alice', 'alice-pw', 'INVITE', 'sip:bob@127.0.0.1');
    const { response } = await rawInvite(peer, { fromUser: 'bob', extra: [`Proxy-Authorization: ${auth}`] });
    assert.equal(response.status, 403);
  });

  it('a wrong password never gets through', async () => {
    const peer = await peerAt('127.0.0.1');
    const first = await rawInvite(peer, { fromUser: 'alice' });
    const challenge = pickChallenge(first.response.authHeaders('proxy-authenticate'))!;
    const auth = digestAuthorization(challenge, 'alice', 'not-the-password', 'INVITE', 'sip:bob@127.0.0.1');
    const { response } = await rawInvite(peer, { fromUser: 'alice', extra: [`Proxy-Authorization: ${auth}`] });
    assert.ok(response.status === 403 || response.status === 407, `refused (${response.status})`);
  });

  it('a trusted peer by address (127.0.0.2) is not challenged', async () => {
    const { response } = await rawInvite(await peerAt('127.0.0.2'), { fromUser: 'pbx' });
    assert.equal(response.status, 486, 'reached bob without credentials');
  });

  it('a trusted peer by CIDR prefix (127.0.0.5 in 127.0.0.4/31) is not challenged', async () => {
    const { response } = await rawInvite(await peerAt('127.0.0.5'), { fromUser: 'pbx' });
    assert.equal(response.status, 486);
  });

  it('not an open relay: a request with a To-tag but no Route of ours is challenged, not forwarded', async () => {
    const victim = await peerAt('127.0.0.1');
    const stranger = await peerAt('127.0.0.1');
    const callId = uniq('relay');
    const target = `sip:victim@${victim.hostPort}`;
    for (const method of ['INVITE', 'BYE', 'MESSAGE']) {
      const text = inviteText({ from: stranger, target, callId: `${callId}-${method}`, method, extra: [] }).replace(`To: <${target}>`, `To: <${target}>;tag=forged`);
      await stranger.send(text, lab.address('udp'));
      const response = await stranger.final(`${callId}-${method}`, method);
      assert.equal(response.status, 407, `${method}: ${response.status}`);
      if (method === 'INVITE') await stranger.send(ackFor(text, response), lab.address('udp'));
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(victim.messages.length, 0, 'nothing reached the target');
  });

  it('not a back door to a phone: a Route entry of ours that we did not sign (a forged flow token or binding, RFC 5626 §5.2) needs credentials like any caller', async () => {
    const phone = await registeredUa(lab, 'alice', { password: 'alice-pw', server: lab.address('tcp') });
    try {
      const [binding] = await lab.server.store.lookup('sip:alice@127.0.0.1', lab.server.clock.now());
      const connectionId = binding.flow.connectionId!;
      assert.match(connectionId, /^tcp:\d+$/, 'connection ids are guessable, hence the MAC');
      const stranger = await peerAt('127.0.0.1');
      const ours = `sip:127.0.0.1:${lab.server.port('udp')};transport=udp;lr`;
      const gruu = `sip:alice@127.0.0.1;gr=${binding.instanceId!.slice(1, -1)}`;
      const forgeries: Array<[target: string, route: string]> = [
        [binding.contact, `<${ours};pc-flow=${encodeURIComponent(connectionId)}>`],
        [binding.contact, `<${ours};pc-flow=${encodeURIComponent(connectionId)};pc-sig=AAAAAAAAAAAAAAAA>`],
        // A genuine signature of an entry without a flow, given a flow: the signature covers it.
        [binding.contact, `<${ours};pc-flow=${encodeURIComponent(connectionId)};pc-sig=${lab.server.proxy.routeSigner.sign(undefined, undefined)}>`],
        // The binding two entries name, towards the phone's GRUU.
        [gruu, `<${ours}>, <${ours};pc-bind=${binding.id}>`],
        // "Deliver to this binding", as one node asks another (multi-node): unsigned, and with
        // the genuine signature of a Record-Route entry naming it (which the phone's dialogs
        // show) plus pc-deliver: the signature covers the flag.
        [binding.contact, `<${ours};pc-bind=${binding.id};pc-deliver>`],
        [binding.contact, `<${ours};pc-bind=${binding.id};pc-deliver;pc-sig=${lab.server.proxy.routeSigner.sign(undefined, binding.id)}>`],
      ];
      for (const [target, route] of forgeries) {
        const callId = uniq('forged');
        const text = inviteText({ from: stranger, target, callId, extra: [`Route: ${route}`] }).replace(`To: <${target}>`, `To: <${target}>;tag=forged`);
        await stranger.send(text, lab.address('udp'));
        const response = await stranger.final(callId, 'INVITE', 10_000);
        assert.equal(response.status, 407, `${route}: ${response.status}`);
        await stranger.send(ackFor(text, response), lab.address('udp'));
      }
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(phone.received.filter((r) => r.method === 'INVITE').length, 0, 'nothing reached the phone over its connection');
    } finally {
      await phone.close();
    }
  });

  it('not an open relay: an initial request pre-routed to another host is challenged', async () => {
    const victim = await peerAt('127.0.0.1');
    const { response } = await rawInvite(await peerAt('127.0.0.1'), { extra: [`Route: <sip:${victim.hostPort};lr>`] });
    assert.equal(response.status, 407);
    assert.equal(victim.messages.length, 0);
  });

  it('an address outside the trusted prefixes (127.0.0.3) is challenged', async () => {
    const { response } = await rawInvite(await peerAt('127.0.0.3'), { fromUser: 'pbx' });
    assert.equal(response.status, 407);
  });
});
