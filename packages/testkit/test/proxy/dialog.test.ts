/**
 * In-dialog routing (RFC 3261 §16.12 loose routing, RFC 5626 flows, RFC 5658 double
 * Record-Route): a phone registered over TCP or WebSocket is reachable only through the
 * connection it opened, so pushcall writes that connection into its Record-Route
 * (`pc-flow`) and routes ACK and BYE back over it; and the phone's binding (`pc-bind`), so
 * that they follow the phone when it registers from a new connection mid-call.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type SipRequest, type SipResponse, SipUri } from '@pushcall/sip';
import { type Lab, type SipUserAgent, startLab } from '../../src/index.js';
import { RawUdpPeer, inviteText, registeredUa, sipText, uniq, waitFor } from './helpers.js';

/** A request inside the dialog a 2xx set up, from the caller's side (§12.1.2, §12.2.1.1). */
function inDialog(method: string, caller: RawUdpPeer, invite: string, ok: SipResponse, cseq: number): string {
  const lines = invite.split('\r\n');
  const from = lines.find((l) => l.startsWith('From:'))!;
  const contact = ok.contacts === '*' ? '' : ok.contacts[0].uri.toString();
  const routes = ok.getAll('record-route').flatMap((v) => v.split(/,(?=\s*<)/)).map((v) => v.trim()).reverse();
  return sipText(`${method} ${contact} SIP/2.0`, [
    `Via: SIP/2.0/UDP ${caller.hostPort};branch=z9hG4bK${uniq('b').replace(/[^a-z0-9]/gi, '')};rport`,
    'Max-Forwards: 70',
    from,
    `To: ${ok.get('to')}`,
    `Call-ID: ${ok.callId}`,
    `CSeq: ${cseq} ${method}`,
    ...routes.map((r) => `Route: ${r}`),
  ]);
}

describe('in-dialog routing through the Record-Route flow token', () => {
  let lab: Lab;
  let caller: RawUdpPeer;
  const uas: SipUserAgent[] = [];

  before(async () => {
    lab = await startLab();
    caller = await RawUdpPeer.open();
    caller.onRequest = (r) => {
      if (r.method !== 'ACK') void caller.respond(r, 200);
    };
  });
  after(async () => {
    caller.close();
    for (const u of uas) await u.close();
    await lab.close();
  });

  async function answeredCall(user: string, protocol: 'udp' | 'tcp' | 'ws') {
    const phone = await registeredUa(lab, user, { server: lab.address(protocol), autoAnswerMs: 50 });
    uas.push(phone);
    const callId = uniq(`dlg-${protocol}`);
    const invite = inviteText({ from: caller, target: `sip:${user}@127.0.0.1`, callId });
    await caller.send(invite, lab.address('udp'));
    const ok = await caller.final(callId);
    assert.equal(ok.status, 200);
    const atPhone = phone.received.find((r) => r.method === 'INVITE' && r.callId === callId)!;
    return { phone, callId, invite, ok, atPhone };
  }

  for (const protocol of ['tcp', 'ws'] as const) {
    describe(`caller on UDP, phone on ${protocol.toUpperCase()}`, () => {
      it('the INVITE carries two Record-Route entries (RFC 5658): the phone-facing one on top with pc-flow', async () => {
        const { atPhone, ok } = await answeredCall(`rr-${protocol}`, protocol);
        const rr = atPhone.recordRoutes.map((r) => r.uri as SipUri);
        assert.equal(rr.length, 2, atPhone.getAll('record-route').join(' | '));
        assert.equal(rr[0].param('transport'), protocol);
        assert.ok(rr[0].param('pc-flow')?.startsWith(`${protocol}:`), `flow token: ${rr[0].toString()}`);
        assert.ok(rr[0].params.has('lr'));
        assert.equal(rr[1].param('transport'), 'udp');
        assert.equal(rr[1].port, lab.server.port('udp'));
        assert.equal(rr[1].param('pc-flow'), undefined);
        // The 2xx the caller sees carries the same route set.
        assert.equal(ok.recordRoutes.length, 2);
      });

      it('ACK for the 2xx, and BYE from the caller, reach the phone over its connection', async () => {
        const { phone, callId, invite, ok } = await answeredCall(`bye-${protocol}`, protocol);
        await caller.send(inDialog('ACK', caller, invite, ok, 1), lab.address('udp'));
        await waitFor(() => phone.received.some((r) => r.method === 'ACK' && r.callId === callId), 3000, 'ACK at the phone');
        const ack = phone.received.find((r) => r.method === 'ACK' && r.callId === callId)!;
        assert.equal(ack.maxForwards, 69);
        assert.equal(ack.routes.length, 0, 'our Route entries are consumed');
        assert.equal(ack.cseq.seq, 1);

        await caller.send(inDialog('BYE', caller, invite, ok, 2), lab.address('udp'));
        const byeOk = await caller.final(callId, 'BYE');
        assert.equal(byeOk.status, 200, 'the phone answered the BYE (it knew the dialog)');
        const bye = phone.received.find((r) => r.method === 'BYE' && r.callId === callId)!;
        assert.equal(bye.routes.length, 0);
        assert.equal(bye.vias.length, 2, 'pushcall and the caller');
      });

      it('the phone moves to a new connection mid-call (a network handover re-registers it): the caller\'s BYE follows its binding there', async () => {
        const { phone, callId, invite, ok, atPhone } = await answeredCall(`move-${protocol}`, protocol);
        const top = atPhone.recordRoutes[0].uri as SipUri;
        assert.match(top.param('pc-bind') ?? '', /^[0-9a-f]+$/, 'the phone-facing entry names its binding');
        assert.equal((atPhone.recordRoutes[1].uri as SipUri).param('pc-bind'), undefined);
        await caller.send(inDialog('ACK', caller, invite, ok, 1), lab.address('udp'));
        await waitFor(() => phone.received.some((r) => r.method === 'ACK' && r.callId === callId), 3000, 'ACK at the phone');

        // Same device (instance), new connection; the old one is still open, as a connection
        // over a network the phone has left stays until its keep-alives fail.
        const moved = await registeredUa(lab, `move-${protocol}`, { server: lab.address(protocol), instanceId: phone.options.instanceId });
        uas.push(moved);
        await caller.send(inDialog('BYE', caller, invite, ok, 2), lab.address('udp'));
        await waitFor(() => moved.received.some((r) => r.method === 'BYE' && r.callId === callId), 3000, 'BYE on the new connection');
        assert.equal(phone.received.filter((r) => r.method === 'BYE').length, 0, 'not on the connection the phone left');
        await caller.final(callId, 'BYE');
        const metrics = await (await fetch(`http://${lab.server.adminAddress}/metrics`)).text();
        assert.match(metrics, /pushcall_dialog_retargets_total\{reason="moved"\} [1-9]/);
      });

      it('app to app: when the calling app moves to a new connection mid-call, the callee\'s BYE follows it', async () => {
        const callee = await registeredUa(lab, `callee-app-${protocol}`, { server: lab.address(protocol), autoAnswerMs: 20 });
        const callingApp = await registeredUa(lab, `calling-app-${protocol}`, { server: lab.address(protocol) });
        uas.push(callee, callingApp);
        const callId = uniq(`app2app-${protocol}`);
        assert.equal((await callingApp.call(`sip:callee-app-${protocol}@127.0.0.1`, { callId })).status, 200);
        const atCallee = callee.received.find((r) => r.method === 'INVITE' && r.callId === callId)!;
        const callerFacing = atCallee.recordRoutes.map((r) => r.uri as SipUri).find((u) => u.param('pc-flow') !== undefined && u !== atCallee.recordRoutes[0].uri);
        assert.match(callerFacing?.param('pc-bind') ?? '', /^[0-9a-f]+$/, 'the entry facing the calling app names its binding');

        const moved = await registeredUa(lab, `calling-app-${protocol}`, { server: lab.address(protocol), instanceId: callingApp.options.instanceId });
        uas.push(moved);
        callee.hangup(callId);
        await waitFor(() => moved.received.some((r) => r.method === 'BYE' && r.callId === callId), 3000, 'BYE at the moved calling app');
        assert.equal(callingApp.received.filter((r) => r.method === 'BYE').length, 0);
      });

      it('BYE from the phone reaches the caller over UDP', async () => {
        const { phone, callId, invite, ok } = await answeredCall(`hang-${protocol}`, protocol);
        await caller.send(inDialog('ACK', caller, invite, ok, 1), lab.address('udp'));
        await waitFor(() => phone.received.some((r) => r.method === 'ACK' && r.callId === callId), 3000, 'ACK at the phone');
        phone.hangup(callId);
        const bye = await caller.wait<SipRequest>((m) => m.isRequest && (m as SipRequest).method === 'BYE' && m.callId === callId, 3000, 'BYE at the caller');
        assert.equal(bye.routes.length, 0);
        assert.equal((bye.uri as SipUri).port, caller.port, 'sent to the caller\'s Contact');
        assert.ok(bye.via.branch?.startsWith('z9hG4bKpc'), 'through pushcall');
        assert.equal(bye.maxForwards, 69);
      });
    });
  }

  it('caller and phone both on UDP: one Record-Route entry, no flow token', async () => {
    const { atPhone } = await answeredCall('rr-udp', 'udp');
    const rr = atPhone.recordRoutes.map((r) => r.uri as SipUri);
    assert.equal(rr.length, 1);
    assert.equal(rr[0].param('transport'), 'udp');
    assert.equal(rr[0].param('pc-flow'), undefined);
  });

  describe('the caller on a connection (TCP/WS): requests from the callee reach it over that connection', () => {
    /** A request from the callee's side of the dialog (route set = Record-Route as received, §12.1.1). */
    function fromCallee(method: string, peer: RawUdpPeer, invite: SipRequest, cseq: number): string {
      const routes = invite.getAll('record-route').flatMap((v) => v.split(/,(?=\s*<)/)).map((v) => v.trim());
      const contact = invite.contacts === '*' ? '' : invite.contacts[0].uri.toString();
      return sipText(`${method} ${contact} SIP/2.0`, [
        `Via: SIP/2.0/UDP ${peer.hostPort};branch=z9hG4bK${uniq('c').replace(/[^a-z0-9]/gi, '')};rport`,
        'Max-Forwards: 70',
        `From: ${invite.get('to')};tag=rawtag`,
        `To: ${invite.get('from')}`,
        `Call-ID: ${invite.callId}`,
        `CSeq: ${cseq} ${method}`,
        ...routes.map((r) => `Route: ${r}`),
      ]);
    }

    for (const protocol of ['tcp', 'ws'] as const) {
      it(`caller on ${protocol.toUpperCase()}, callee on UDP: the callee's BYE reaches the caller`, async () => {
        const callee = await RawUdpPeer.open();
        callee.onRequest = (r) => {
          if (r.method === 'INVITE') void callee.respond(r, 200, { body: 'v=0\r\n' });
        };
        const user = `callee-of-${protocol}`;
        const { registerRaw } = await import('./helpers.js');
        await registerRaw(lab, callee, user);
        const a = await registeredUa(lab, `caller-${protocol}`, { server: lab.address(protocol) });
        uas.push(a);
        try {
          const ok = await a.call(`sip:${user}@127.0.0.1`);
          assert.equal(ok.status, 200);
          const invite = callee.requests('INVITE').find((r) => r.callId === ok.callId)!;
          const rr = invite.recordRoutes.map((r) => r.uri as SipUri);
          assert.equal(rr.length, 2);
          assert.ok(rr[1].param('pc-flow')?.startsWith(`${protocol}:`), `caller-facing entry carries the caller's flow: ${invite.getAll('record-route').join(' | ')}`);
          await callee.send(fromCallee('BYE', callee, invite, 1), lab.address('udp'));
          const byeOk = await callee.final(ok.callId, 'BYE');
          assert.equal(byeOk.status, 200, 'the caller knew the dialog');
          assert.ok(a.received.some((r) => r.method === 'BYE' && r.callId === ok.callId));
        } finally {
          callee.close();
        }
      });
    }

    it('caller and callee both on TCP: BYE reaches the other side in both directions', async () => {
      const b = await registeredUa(lab, 'tcp-callee', { server: lab.address('tcp'), autoAnswerMs: 20 });
      const a = await registeredUa(lab, 'tcp-caller', { server: lab.address('tcp') });
      const c = await registeredUa(lab, 'tcp-callee2', { server: lab.address('tcp'), autoAnswerMs: 20 });
      uas.push(a, b, c);
      // The callee hangs up.
      const first = await a.call('sip:tcp-callee@127.0.0.1');
      assert.equal(first.status, 200);
      await waitFor(() => b.received.some((r) => r.method === 'ACK' && r.callId === first.callId), 3000, 'ACK at the callee');
      b.hangup(first.callId);
      await waitFor(() => a.received.some((r) => r.method === 'BYE' && r.callId === first.callId), 3000, 'BYE at the caller');
      // The caller hangs up.
      const second = await a.call('sip:tcp-callee2@127.0.0.1');
      assert.equal(second.status, 200);
      await waitFor(() => c.received.some((r) => r.method === 'ACK' && r.callId === second.callId), 3000, 'ACK at the callee');
      a.hangup(second.callId);
      await waitFor(() => c.received.some((r) => r.method === 'BYE' && r.callId === second.callId), 3000, 'BYE at the callee');
    });
  });
});
