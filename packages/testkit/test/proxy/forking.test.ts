/**
 * Sequential forking by q-value (RFC 3261 §16.6, `proxy.forking: sequential`) through a
 * running pushcall: a desk phone registered with q=1.0 rings first; a phone with q=0.5 is
 * tried when the desk phone fails, or after `sequentialGroupSeconds`; a 6xx ends the search.
 * Raw UDP peers play the phones, so every request and its timing is visible.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SipRequest } from '@pushcall/sip';
import { type Lab, startLab } from '../../src/index.js';
import { RawUdpPeer, SDP, rawCall, sendRegister, waitFor } from './helpers.js';

type Script = 'ring' | number;

/** A phone that registers `user` with `q`, then answers INVITEs per `script` ('ring': 180 and nothing more). */
async function phone(lab: Lab, user: string, q: string, script: Script): Promise<{ peer: RawUdpPeer; seen: Array<{ method: string; at: number }> }> {
  const peer = await RawUdpPeer.open();
  const seen: Array<{ method: string; at: number }> = [];
  const invites = new Map<string, SipRequest>();
  peer.onRequest = (request) => {
    seen.push({ method: request.method, at: performance.now() });
    if (request.method === 'INVITE') {
      invites.set(request.callId, request);
      void peer.respond(request, 180);
      if (script !== 'ring') void peer.respond(request, script, { body: script < 300 ? SDP : undefined });
    } else if (request.method === 'CANCEL') {
      void peer.respond(request, 200);
      const invite = invites.get(request.callId);
      if (invite) void peer.respond(invite, 487);
    } else if (request.method !== 'ACK') void peer.respond(request, 200);
  };
  assert.equal((await sendRegister(lab, peer, user, [`Contact: <sip:${user}@${peer.hostPort}>;q=${q}`, 'Expires: 600'])).status, 200);
  return { peer, seen };
}

const firstAt = (seen: Array<{ method: string; at: number }>, method: string) => seen.find((s) => s.method === method)?.at;

describe('sequential forking by q-value (proxy.forking: sequential)', () => {
  let lab: Lab;
  let caller: RawUdpPeer;
  const peers: RawUdpPeer[] = [];
  before(async () => {
    lab = await startLab({ config: { proxy: { forking: 'sequential', sequentialGroupSeconds: 1 } as never } });
    caller = await RawUdpPeer.open();
  });
  after(async () => {
    caller.close();
    for (const p of peers) p.close();
    await lab.close();
  });

  /** A desk phone (q=1.0) and a mobile (q=0.5) for `user`, and a call to the AOR. */
  async function deskAndMobile(user: string, desk: Script, mobile: Script) {
    const phones = { desk: await phone(lab, user, '1.0', desk), mobile: await phone(lab, user, '0.5', mobile) };
    peers.push(phones.desk.peer, phones.mobile.peer);
    return { ...phones, call: await rawCall(lab, caller, `sip:${user}@127.0.0.1`) };
  }

  it('the desk phone (q=1.0) rings alone; after sequentialGroupSeconds it is cancelled and the mobile (q=0.5) answers', async () => {
    const { desk, mobile, call } = await deskAndMobile('seq-a', 'ring', 200);
    assert.equal((await call.final).status, 200);
    const deskInvite = firstAt(desk.seen, 'INVITE')!;
    const mobileInvite = firstAt(mobile.seen, 'INVITE')!;
    assert.ok(mobileInvite - deskInvite >= 900, `the mobile waited for the desk phone's turn: ${(mobileInvite - deskInvite).toFixed(0)} ms`);
    const deskCancel = firstAt(desk.seen, 'CANCEL');
    assert.ok(deskCancel !== undefined && deskCancel <= mobileInvite + 50, 'the desk phone was cancelled when its turn ended');
    const kinds = lab.server.timelines.get(call.callId)!.events.map((e) => e.kind);
    assert.ok(kinds.includes('next-group'));
  });

  it('a busy desk phone (486) hands over at once, without waiting for its turn to end', async () => {
    const { desk, mobile, call } = await deskAndMobile('seq-b', 486, 200);
    assert.equal((await call.final).status, 200);
    assert.ok(firstAt(mobile.seen, 'INVITE')! - firstAt(desk.seen, 'INVITE')! < 500);
  });

  it('a decline (603) ends the search: the mobile is never called', async () => {
    const { desk, mobile, call } = await deskAndMobile('seq-c', 603, 200);
    assert.equal((await call.final).status, 603);
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(firstAt(mobile.seen, 'INVITE'), undefined);
  });

  it('equal q-values ring together; every group failing gives the best response of all', async () => {
    const a = await phone(lab, 'seq-d', '0.8', 486);
    const b = await phone(lab, 'seq-d', '0.8', 480);
    const c = await phone(lab, 'seq-d', '0.2', 404);
    peers.push(a.peer, b.peer, c.peer);
    const call = await rawCall(lab, caller, 'sip:seq-d@127.0.0.1');
    assert.equal((await call.final).status, 486, 'busy beats unavailable and not found (§16.7)');
    await waitFor(() => c.seen.some((s) => s.method === 'INVITE'), 2000, 'the last group was tried');
    assert.ok(Math.abs(firstAt(a.seen, 'INVITE')! - firstAt(b.seen, 'INVITE')!) < 200, 'the two q=0.8 phones rang together');
  });
});
