/**
 * GRUUs (RFC 5627) through a running pushcall: a request for a GRUU reaches that one device
 * of the AOR (over its flow, or by a push when it sleeps), and an in-dialog request whose
 * remote target is a GRUU finds the device on the connection it has now, not the one the
 * dialog began on. Real sockets: raw UDP peers and the testkit's SIP UAs over UDP and TCP.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { SipResponse } from '@pushcall/sip';
import { LAB_BUNDLE_ID, LAB_FCM_PROJECT, type Lab, type SipUserAgent, startLab } from '../../src/index.js';
import { RawUdpPeer, pushUa, rawCall, registeredUa, sendRegister, sipText, uniq, waitFor } from './helpers.js';

/** The GRUUs pushcall lists for `user`'s instances: a REGISTER query with `Supported: gruu`. */
async function gruusOf(lab: Lab, peer: RawUdpPeer, user: string): Promise<Map<string, { pub: string; temp: string }>> {
  const response = await sendRegister(lab, peer, user, ['Supported: gruu']);
  assert.equal(response.status, 200);
  const out = new Map<string, { pub: string; temp: string }>();
  for (const c of response.getAll('contact')) {
    const instance = /\+sip\.instance="<([^>]+)>"/.exec(c)?.[1];
    const pub = /pub-gruu="([^"]+)"/.exec(c)?.[1];
    const temp = /temp-gruu="([^"]+)"/.exec(c)?.[1];
    if (instance && pub && temp) out.set(instance, { pub, temp });
  }
  return out;
}

describe('GRUU (RFC 5627): one device of an AOR, wherever it is connected now', () => {
  let lab: Lab;
  let caller: RawUdpPeer;
  const uas: SipUserAgent[] = [];
  before(async () => {
    lab = await startLab({ config: { proxy: { wakeTimeoutSeconds: 1 } as never } });
    caller = await RawUdpPeer.open();
  });
  after(async () => {
    caller.close();
    for (const u of uas) await u.close();
    await lab.close();
  });

  it('the public GRUU rings only its instance; the temporary GRUU too; the AOR rings both', async () => {
    const a = await registeredUa(lab, 'gwen', { autoAnswerMs: 20 });
    const b = await registeredUa(lab, 'gwen', { autoAnswerMs: 20 });
    uas.push(a, b);
    const gruus = await gruusOf(lab, caller, 'gwen');
    assert.equal(gruus.size, 2);
    const ofA = gruus.get(a.options.instanceId)!;
    const ofB = gruus.get(b.options.instanceId)!;
    assert.equal(ofA.pub, `sip:gwen@127.0.0.1;gr=${a.options.instanceId}`);

    const invitesFor = (ua: SipUserAgent, callId: string) => ua.received.filter((r) => r.method === 'INVITE' && r.callId === callId).length;
    const toA = await rawCall(lab, caller, ofA.pub);
    assert.equal((await toA.final).status, 200);
    assert.equal(invitesFor(a, toA.callId), 1);
    assert.equal(invitesFor(b, toA.callId), 0, 'the other device of the AOR is not called');
    const inviteAtA = a.received.find((r) => r.method === 'INVITE' && r.callId === toA.callId)!;
    assert.doesNotMatch(inviteAtA.uriText, /;gr=/, 'retargeted to the registered Contact (§5.5)');

    const toB = await rawCall(lab, caller, ofB.temp);
    assert.equal((await toB.final).status, 200);
    assert.equal(invitesFor(b, toB.callId), 1);
    assert.equal(invitesFor(a, toB.callId), 0);
  });

  it('a GRUU never issued gets 404; one whose instance is not registered gets 480', async () => {
    const bogus = await rawCall(lab, caller, 'sip:gwen@127.0.0.1;gr=not-a-urn');
    assert.equal((await bogus.final).status, 404);
    assert.equal((await bogus.final).reason, 'Unknown GRUU');
    const plain = await rawCall(lab, caller, 'sip:someone@127.0.0.1;gr');
    assert.equal((await plain.final).status, 404);
    const gone = await rawCall(lab, caller, `sip:gwen@127.0.0.1;gr=urn:uuid:${randomUUID()}`);
    assert.equal((await gone.final).status, 480);
    const expiredTemp = await rawCall(lab, caller, `sip:tgruu.${randomBytes(12).toString('hex')}.abcdefgh@127.0.0.1;gr`);
    assert.equal((await expiredTemp.final).status, 480);
  });

  it('a sleeping device is pushed for its GRUU, and only it', async () => {
    const token = randomBytes(32).toString('hex');
    lab.apns.registerDevice({ token, bundleId: LAB_BUNDLE_ID, environment: 'production' });
    const { ua: sleeper } = await pushUa(lab, 'hugo', { provider: 'apns', prid: token });
    await sleeper.close(); // asleep: the push is accepted, the device never registers again
    const awake = await registeredUa(lab, 'hugo', { autoAnswerMs: 20 });
    uas.push(awake);
    const gruu = (await gruusOf(lab, caller, 'hugo')).get(sleeper.options.instanceId)!;
    const call = await rawCall(lab, caller, gruu.pub);
    assert.equal((await call.final).status, 480, 'pushed, then the wake timeout');
    assert.equal(lab.apns.received.filter((p) => p.token === token).length, 1);
    assert.equal(awake.received.filter((r) => r.callId === call.callId).length, 0, 'the awake device is not called');
  });

  it('an in-dialog request to the GRUU of a sleeping device is held and the device pushed silently (408 when it does not wake)', async () => {
    const token = `fcm-${randomBytes(20).toString('base64url')}`;
    lab.fcm.registerDevice({ token, projectId: LAB_FCM_PROJECT });
    const { ua } = await pushUa(lab, 'jade', { provider: 'fcm', prid: token });
    await ua.close();
    const gruu = (await gruusOf(lab, caller, 'jade')).get(ua.options.instanceId)!;
    const callId = uniq('gruu-dlg');
    await caller.send(
      sipText(`INFO ${gruu.temp} SIP/2.0`, [
        `Via: SIP/2.0/UDP ${caller.hostPort};branch=z9hG4bK${randomUUID().slice(0, 12)};rport`,
        'Max-Forwards: 70',
        `From: <sip:caller@${caller.address}>;tag=dlg1`,
        `To: <${gruu.temp}>;tag=jade1`,
        `Call-ID: ${callId}`,
        'CSeq: 5 INFO',
      ]),
      lab.address('udp'),
    );
    const final = await caller.final(callId, 'INFO');
    assert.equal(final.status, 408, `${final.status} ${final.reason}`);
    const pushes = lab.fcm.received.filter((m) => m.token === token);
    assert.equal(pushes.length, 1, 'one silent push');
  });

  it('a BYE to the GRUU, after the device reconnected over TCP, reaches it on the new connection', async () => {
    const instanceId = `urn:uuid:${randomUUID()}`;
    const first = await registeredUa(lab, 'ivy', { instanceId, autoAnswerMs: 20, server: lab.address('tcp') });
    uas.push(first);
    const gruu = (await gruusOf(lab, caller, 'ivy')).get(instanceId)!;
    const call = await rawCall(lab, caller, gruu.pub);
    const ok: SipResponse = await call.final;
    assert.equal(ok.status, 200);
    const recordRoute = ok.getAll('record-route');
    assert.ok(recordRoute.length > 0, 'pushcall stays in the dialog');
    assert.match(recordRoute.join(','), /pc-flow=/, 'its Record-Route names the first connection');

    // The device drops its connection (the app was suspended) and comes back on a new one.
    await first.close();
    const second = await registeredUa(lab, 'ivy', { instanceId, server: lab.address('tcp') });
    uas.push(second);
    assert.equal((await lab.server.store.lookup('sip:ivy@127.0.0.1', lab.server.clock.now())).length, 1, 'same instance, one binding');

    // The caller hangs up towards the GRUU (the remote target a GRUU-using app gives).
    const toTag = /;tag=([^;>\s]+)/.exec(ok.get('to') ?? '')![1];
    const bye = sipText(`BYE ${gruu.pub} SIP/2.0`, [
      `Via: SIP/2.0/UDP ${caller.hostPort};branch=z9hG4bK${randomUUID().slice(0, 12)};rport`,
      'Max-Forwards: 70',
      ...[...recordRoute].map((r) => `Route: ${r}`),
      `From: <sip:caller@${caller.address}>;tag=${call.callId.slice(0, 8)}f`,
      `To: <${gruu.pub}>;tag=${toTag}`,
      `Call-ID: ${call.callId}`,
      'CSeq: 2 BYE',
    ]);
    await caller.send(bye, lab.address('udp'));
    await waitFor(() => second.received.some((r) => r.method === 'BYE' && r.callId === call.callId), 3000, 'BYE on the new connection');
    const delivered = second.received.find((r) => r.method === 'BYE' && r.callId === call.callId)!;
    assert.doesNotMatch(delivered.uriText, /;gr=/, 'retargeted to the Contact registered now');
    const metrics = await (await fetch(`http://${lab.server.adminAddress}/metrics`)).text();
    assert.match(metrics, /pushcall_dialog_retargets_total\{reason="gruu"\} [1-9]/);
    await caller.final(call.callId, 'BYE');
  });
});
