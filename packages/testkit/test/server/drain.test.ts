/**
 * Draining before a shutdown (PushcallServer.drain, what `pushcall serve` does on SIGTERM):
 * new calls get 503 with Retry-After and /readyz says so, while a call in progress finishes
 * and a device can still register; the drain ends when the last call has.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SipRequest } from '@pushcall/sip';
import { type Lab, startLab } from '../../src/index.js';
import { RawUdpPeer, SDP, rawCall, registerRaw, waitFor } from '../proxy/helpers.js';

describe('drain before shutdown', () => {
  let lab: Lab;
  let callee: RawUdpPeer;
  let caller: RawUdpPeer;
  let ringing: SipRequest | undefined;
  before(async () => {
    lab = await startLab();
    callee = await RawUdpPeer.open();
    callee.onRequest = (request) => {
      if (request.method === 'INVITE') {
        ringing = request;
        void callee.respond(request, 180);
      } else if (request.method === 'CANCEL') {
        void callee.respond(request, 200);
        if (ringing?.callId === request.callId) void callee.respond(ringing, 487);
      } else if (request.method !== 'ACK') void callee.respond(request, 200);
    };
    await registerRaw(lab, callee, 'dora');
    caller = await RawUdpPeer.open();
  });
  after(async () => {
    caller.close();
    callee.close();
    await lab.close();
  });

  it('new calls get 503 + Retry-After and /readyz 503; the call in progress finishes, REGISTER still works, and the drain then ends', async () => {
    const readyz = async () => (await fetch(`http://${lab.server.adminAddress}/readyz`)).status;
    assert.equal(await readyz(), 200);
    const call = await rawCall(lab, caller, 'sip:dora@127.0.0.1');
    await call.ringing();
    let drained: boolean | undefined;
    const drain = lab.server.drain(10_000).then((d) => (drained = d));

    assert.equal(await readyz(), 503);
    const late = await rawCall(lab, caller, 'sip:dora@127.0.0.1');
    const refused = await late.final;
    assert.equal(refused.status, 503);
    assert.equal(refused.reason, 'Shutting down');
    assert.equal(refused.get('retry-after'), '5');
    const other = await RawUdpPeer.open();
    try {
      assert.equal((await registerRaw(lab, other, 'dora')).status, 200, 'a device can still register (a woken phone must)');
    } finally {
      other.close();
    }
    assert.equal(drained, undefined, 'still draining: a call is in progress');

    await callee.respond(ringing!, 200, { body: SDP });
    assert.equal((await call.final).status, 200);
    await waitFor(() => drained !== undefined, 3000, 'the drain to end');
    assert.equal(await drain, true);
  });

  it('with nothing in progress the drain ends at once; with a call that does not end, at the deadline', async () => {
    const t0 = performance.now();
    assert.equal(await lab.server.drain(5_000), true);
    assert.ok(performance.now() - t0 < 500);
    lab.server.proxy.draining = false;
    const stuck = await rawCall(lab, caller, 'sip:dora@127.0.0.1');
    await stuck.ringing();
    assert.equal(await lab.server.drain(300), false, 'the deadline');
    assert.equal((await stuck.cancel()).status, 200);
    assert.equal((await stuck.final).status, 487);
  });
});
