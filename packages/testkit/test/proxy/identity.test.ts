/**
 * Caller identity (RFC 3325) through a running pushcall: the P-Asserted-Identity of a trusted
 * peer (the PBX) is what the push shows and what the phone receives; one asserted by anyone
 * else is neither believed nor passed on; `Privacy: id` keeps it off the device and the push.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { LAB_BUNDLE_ID, type Lab, type SipUserAgent, startLab } from '../../src/index.js';
import { RawUdpPeer, pushUa, rawCall, registeredUa, waitFor } from './helpers.js';

const PAI = 'P-Asserted-Identity: "Alice Example" <sip:+15551230000@pbx.example.com>';

describe('P-Asserted-Identity (RFC 3325)', () => {
  let lab: Lab;
  let pbx: RawUdpPeer;
  let stranger: RawUdpPeer;
  let deskPhone: SipUserAgent;
  let token: string;
  before(async () => {
    lab = await startLab({ config: { auth: { trustedPeers: ['127.0.0.2'] }, proxy: { wakeTimeoutSeconds: 1 } } as never });
    pbx = await RawUdpPeer.open('127.0.0.2');
    stranger = await RawUdpPeer.open('127.0.0.1');
    deskPhone = await registeredUa(lab, 'desk', { autoAnswerMs: 10 });
    token = randomBytes(32).toString('hex');
    lab.apns.registerDevice({ token, bundleId: LAB_BUNDLE_ID, environment: 'production' });
    const { ua } = await pushUa(lab, 'sleeper', { provider: 'apns', prid: token });
    await ua.close(); // asleep: pushed, never wakes
  });
  after(async () => {
    pbx.close();
    stranger.close();
    await deskPhone.close();
    await lab.close();
  });

  /** The payload of the push for `callId`. */
  async function pushFor(callId: string): Promise<{ from_uri: string; from_name?: string }> {
    type Payload = { pushcall: { call_id: string; from_uri: string; from_name?: string } };
    const find = () => lab.apns.received.map((p) => (p.payload as Payload).pushcall).find((p) => p.call_id === callId);
    await waitFor(() => find() !== undefined, 3000, 'the push');
    return find()!;
  }

  it('from the trusted PBX: the push shows the asserted caller, and the phone receives the assertion', async () => {
    const pushed = await rawCall(lab, pbx, 'sip:sleeper@127.0.0.1', { fromUser: 'trunk', extra: [PAI] });
    const payload = await pushFor(pushed.callId);
    assert.equal(payload.from_uri, 'sip:+15551230000@pbx.example.com');
    assert.equal(payload.from_name, 'Alice Example');
    assert.equal((await pushed.final).status, 480);

    const called = await rawCall(lab, pbx, 'sip:desk@127.0.0.1', { fromUser: 'trunk', extra: [PAI] });
    assert.equal((await called.final).status, 200);
    const invite = deskPhone.received.find((r) => r.method === 'INVITE' && r.callId === called.callId)!;
    assert.equal(invite.get('p-asserted-identity'), '"Alice Example" <sip:+15551230000@pbx.example.com>');
  });

  it('from anyone else: not believed (the push shows the From) and not passed on', async () => {
    const pushed = await rawCall(lab, stranger, 'sip:sleeper@127.0.0.1', { fromUser: 'mallory', extra: [PAI] });
    const payload = await pushFor(pushed.callId);
    assert.match(payload.from_uri, /^sip:mallory@/);
    assert.equal(payload.from_name, undefined);
    await pushed.final;

    const called = await rawCall(lab, stranger, 'sip:desk@127.0.0.1', { fromUser: 'mallory', extra: [PAI] });
    assert.equal((await called.final).status, 200);
    const invite = deskPhone.received.find((r) => r.method === 'INVITE' && r.callId === called.callId)!;
    assert.equal(invite.get('p-asserted-identity'), undefined);
  });

  it('Privacy: id from the PBX: the push shows the (anonymous) From, and the assertion stays in the trust domain', async () => {
    const extra = [PAI, 'Privacy: id'];
    const pushed = await rawCall(lab, pbx, 'sip:sleeper@127.0.0.1', { fromUser: 'anonymous', fromHost: 'anonymous.invalid', extra });
    const payload = await pushFor(pushed.callId);
    assert.equal(payload.from_uri, 'sip:anonymous@anonymous.invalid');
    await pushed.final;

    const called = await rawCall(lab, pbx, 'sip:desk@127.0.0.1', { fromUser: 'anonymous', fromHost: 'anonymous.invalid', extra });
    assert.equal((await called.final).status, 200);
    const invite = deskPhone.received.find((r) => r.method === 'INVITE' && r.callId === called.callId)!;
    assert.equal(invite.get('p-asserted-identity'), undefined);
  });
});
