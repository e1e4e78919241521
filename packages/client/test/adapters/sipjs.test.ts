/**
 * SipJsAdapter against a real SIP.js 0.21 UserAgent whose transport is an in-memory fake
 * (SIP.js's `transportConstructor` option): what goes on the wire, message by message,
 * without a server. The end-to-end test with pushcall is
 * packages/testkit/test/e2e/sipjs.test.ts.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { EmitterImpl, Inviter, Registerer, TransportState, UserAgent } from 'sip.js';
import type { Transport } from 'sip.js';
import { createResponse } from '../../../sip/src/message/factory.js';
import type { SipRequest } from '../../../sip/src/message/message.js';
import { parseMessage } from '../../../sip/src/message/parser.js';
import {
  SipJsAdapter,
  addContactUriParams,
  escapeParamValue,
  pnsFromFeatureCaps,
  pushContactUriParams,
  sdpHasVideo,
  staticSessionDescriptionHandlerFactory,
} from '../../src/index.js';
import type { IncomingInvite, PushContactParams, RegistrationState, SipCallState, SipDelegate, SipReason } from '../../src/index.js';

const tick = () => new Promise((r) => setTimeout(r, 0));
async function until(check: () => boolean, what: string, ms = 2000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** In-memory SIP.js transport; `peer` plays the server. */
class FakeTransport implements Transport {
  static last: FakeTransport | undefined;
  readonly protocol = 'WS';
  state: TransportState = TransportState.Disconnected;
  readonly stateChange = new EmitterImpl<TransportState>();
  onConnect: (() => void) | undefined;
  onDisconnect: ((error?: Error) => void) | undefined;
  onMessage: ((message: string) => void) | undefined;
  readonly sent: string[] = [];
  connects = 0;
  peer: ((message: SipRequest | undefined, raw: string) => void) | undefined;

  constructor() {
    FakeTransport.last = this;
  }
  private set(state: TransportState): void {
    this.state = state;
    this.stateChange.emit(state);
  }
  async connect(): Promise<void> {
    this.connects++;
    this.set(TransportState.Connected);
    this.onConnect?.();
  }
  async disconnect(): Promise<void> {
    if (this.state === TransportState.Disconnected) return;
    this.set(TransportState.Disconnected);
    this.onDisconnect?.();
  }
  dispose(): Promise<void> {
    return this.disconnect();
  }
  isConnected(): boolean {
    return this.state === TransportState.Connected;
  }
  async send(message: string): Promise<void> {
    if (!this.isConnected()) throw new Error('not connected');
    this.sent.push(message);
    const parsed = parseMessage(Buffer.from(message));
    setTimeout(() => this.peer?.('method' in parsed ? (parsed as SipRequest) : undefined, message), 0);
  }
  deliver(text: string): void {
    this.onMessage?.(text);
  }
  requests(method: string): SipRequest[] {
    return this.sent
      .map((m) => parseMessage(Buffer.from(m)))
      .filter((m): m is SipRequest => 'method' in m && (m as SipRequest).method === method);
  }
  responses(status: number): string[] {
    return this.sent.filter((m) => m.startsWith(`SIP/2.0 ${status} `));
  }
}

/** A registrar: 200 with the Contact echoed and Feature-Caps, unless `answer` overrides. */
function registrar(t: FakeTransport, answer?: (req: SipRequest) => string | undefined): void {
  t.peer = (req) => {
    if (!req) return;
    if (req.method === 'REGISTER') {
      const custom = answer?.(req);
      if (custom !== undefined) {
        if (custom) t.deliver(custom);
        return;
      }
      const contact = req.get('contact') ?? '';
      const expires0 = /;expires=0\b/.test(contact);
      const headers: Array<[string, string]> = expires0 ? [] : [['Contact', contact], ['Feature-Caps', '*;+sip.pns="apns"']];
      t.deliver(createResponse(req, 200, { headers }).toBuffer().toString());
    }
  };
}

const PUSH: PushContactParams = { pnProvider: 'apns', pnPrid: 'ab'.repeat(32), pnParam: 'TEAM123456.com.example.app.voip', extra: { 'pn-apns-env': 'sandbox' } };

class Recorder implements SipDelegate {
  invites: IncomingInvite[] = [];
  cancels: Array<{ callId: string; reasons: readonly SipReason[] }> = [];
  byes: string[] = [];
  states: Array<{ callId: string; state: SipCallState }> = [];
  registrations: RegistrationState[] = [];
  onInvite(i: IncomingInvite) {
    this.invites.push(i);
  }
  onCancel(callId: string, reasons: readonly SipReason[]) {
    this.cancels.push({ callId, reasons });
  }
  onBye(callId: string) {
    this.byes.push(callId);
  }
  onCallState(callId: string, state: SipCallState) {
    this.states.push({ callId, state });
  }
  onRegistration(state: RegistrationState) {
    this.registrations.push(state);
  }
}

const adapters: SipJsAdapter[] = [];
afterEach(async () => {
  for (const a of adapters.splice(0)) await a.dispose().catch(() => undefined);
});

function setup(): { adapter: SipJsAdapter; rec: Recorder; t: FakeTransport; ua: UserAgent } {
  const ua = new UserAgent({
    uri: UserAgent.makeURI('sip:alice@example.com'),
    transportConstructor: FakeTransport as never,
    sessionDescriptionHandlerFactory: staticSessionDescriptionHandlerFactory(),
    instanceId: '0f8e3c0a-8a0e-4b5f-9d51-9a4c0c7c2d11',
    logBuiltinEnabled: false,
  });
  const t = FakeTransport.last!;
  const adapter = new SipJsAdapter({ sip: { UserAgent, Registerer, Inviter }, userAgent: ua });
  const rec = new Recorder();
  adapter.setDelegate(rec);
  adapters.push(adapter);
  registrar(t);
  return { adapter, rec, t, ua };
}

const SDP = (video: boolean) =>
  ['v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 'c=IN IP4 192.0.2.1', 't=0 0', 'm=audio 4000 RTP/AVP 0', ...(video ? ['m=video 4002 RTP/AVP 96'] : []), ''].join('\r\n');

let seq = 0;
function invite(callId: string, opts: { video?: boolean; name?: string } = {}): string {
  const branch = `z9hG4bKtest${++seq}`;
  const body = SDP(opts.video ?? false);
  return [
    'INVITE sip:alice@abc.invalid;transport=ws SIP/2.0',
    `Via: SIP/2.0/WS 127.0.0.1:8080;branch=${branch};rport`,
    'Record-Route: <sip:127.0.0.1:8080;transport=ws;lr>',
    'Max-Forwards: 69',
    `From: ${opts.name ? `"${opts.name}" ` : ''}<sip:bob@example.com>;tag=from${seq}`,
    'To: <sip:alice@example.com>',
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    'Contact: <sip:bob@127.0.0.1:5070>',
    'Content-Type: application/sdp',
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
}

function cancelFor(inviteText: string, reason?: string): string {
  const inv = parseMessage(Buffer.from(inviteText)) as SipRequest;
  return [
    `CANCEL ${inv.uriText} SIP/2.0`,
    `Via: ${inv.get('via')}`,
    'Max-Forwards: 70',
    `From: ${inv.get('from')}`,
    `To: ${inv.get('to')}`,
    `Call-ID: ${inv.callId}`,
    'CSeq: 1 CANCEL',
    ...(reason ? [`Reason: ${reason}`] : []),
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

function byeFor(inviteText: string, okText: string): string {
  const inv = parseMessage(Buffer.from(inviteText)) as SipRequest;
  const ok = parseMessage(Buffer.from(okText));
  return [
    `BYE ${ok.contacts === '*' ? '' : ok.contacts[0].uri.toString()} SIP/2.0`,
    `Via: SIP/2.0/WS 127.0.0.1:8080;branch=z9hG4bKbye${++seq}`,
    'Max-Forwards: 70',
    `From: ${inv.get('from')}`,
    `To: ${ok.get('to')}`,
    `Call-ID: ${inv.callId}`,
    'CSeq: 2 BYE',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

describe('SipJsAdapter: registration', () => {
  it('puts pn-provider/pn-prid/pn-param (+extra) in the REGISTER Contact URI with +sip.instance and reg-id', async () => {
    const { adapter, t } = setup();
    const state = await adapter.registerAndWait(PUSH);
    assert.deepEqual(state, { state: 'registered' });
    const [reg] = t.requests('REGISTER');
    const contact = reg.contacts === '*' ? undefined : reg.contacts[0];
    assert.ok(contact);
    const uri = contact.uri.toString();
    assert.match(uri, /;transport=ws/);
    assert.match(uri, new RegExp(`;pn-provider=apns;pn-prid=${PUSH.pnPrid};pn-param=TEAM123456\\.com\\.example\\.app\\.voip;pn-apns-env=sandbox`));
    assert.match(reg.get('contact') ?? '', /;reg-id=1;\+sip\.instance="<urn:uuid:0f8e3c0a-8a0e-4b5f-9d51-9a4c0c7c2d11>"/);
    assert.deepEqual(adapter.registration?.pns, ['apns']);
  });

  it('a new token while a REGISTER is in flight is sent right after it (no RequestPendingError)', async () => {
    const { adapter, rec, t } = setup();
    adapter.register(PUSH);
    await until(() => t.requests('REGISTER').length === 1, 'first REGISTER on the wire');
    adapter.register({ ...PUSH, pnPrid: 'cd'.repeat(32) });
    await until(() => rec.registrations.length === 2, 'two registrations');
    const regs = t.requests('REGISTER');
    assert.equal(regs.length, 2);
    assert.match(regs[0].get('contact') ?? '', /pn-prid=(ab)+;/);
    assert.match(regs[1].get('contact') ?? '', /pn-prid=(cd)+;/);
    assert.equal(regs[0].callId, regs[1].callId, 'same Call-ID: a refresh of the same binding');
    assert.equal(regs[1].cseq.seq, regs[0].cseq.seq + 1);
    assert.deepEqual(rec.registrations, [{ state: 'registered' }, { state: 'registered' }]);
  });

  it('423 Interval Too Brief: SIP.js retries with Min-Expires by itself; the adapter still reports registered', async () => {
    const { adapter, t } = setup();
    let first = true;
    registrar(t, (req) => {
      if (!first) return undefined;
      first = false;
      return createResponse(req, 423, { headers: [['Min-Expires', '3600']] }).toBuffer().toString();
    });
    assert.deepEqual(await adapter.registerAndWait(PUSH), { state: 'registered' });
    const regs = t.requests('REGISTER');
    assert.equal(regs.length, 2);
    assert.match(regs[1].get('contact') ?? '', /pn-prid=.*;expires=3600$/, 'the retry keeps the push params');
  });

  it('403 → failed with the code; a 2xx that lists no Contact of ours → failed (SIP.js drops it)', async () => {
    const { adapter, t } = setup();
    registrar(t, (req) => createResponse(req, 403, { reason: 'Forbidden' }).toBuffer().toString());
    assert.deepEqual(await adapter.registerAndWait(PUSH), { state: 'failed', code: 403, reason: 'Forbidden' });
    registrar(t, (req) => createResponse(req, 200, { headers: [['Contact', '<sip:someone-else@192.0.2.9>;expires=600']] }).toBuffer().toString());
    const dropped = await adapter.registerAndWait(PUSH);
    assert.equal(dropped.state, 'failed');
  });

  it('wakes: a disconnected transport is reconnected before the REGISTER; unregister sends expires=0', async () => {
    const { adapter, rec, t } = setup();
    await adapter.registerAndWait(PUSH);
    await t.disconnect(); // the OS killed the socket of the suspended app
    const connects = t.connects;
    assert.deepEqual(await adapter.registerAndWait(undefined), { state: 'registered' });
    assert.equal(t.connects, connects + 1);
    assert.match(t.requests('REGISTER').at(-1)?.get('contact') ?? '', /pn-prid=/, 'the refresh keeps the push params');
    adapter.unregister();
    await until(() => rec.registrations.at(-1)?.state === 'unregistered', 'unregistered');
    assert.match(t.requests('REGISTER').at(-1)?.get('contact') ?? '', /pn-provider=apns;pn-prid=.*;expires=0$/);
    // The token was invalidated: a refresh without new params does not register it again.
    assert.deepEqual(await adapter.registerAndWait(undefined), { state: 'registered' });
    assert.doesNotMatch(t.requests('REGISTER').at(-1)?.get('contact') ?? '', /pn-/);
  });

  it('the Contact outside REGISTER has no pn-* (INVITE, 2xx): RFC 8599 §13', async () => {
    const { adapter, ua } = setup();
    await adapter.registerAndWait(PUSH);
    assert.doesNotMatch(ua.contact.toString(), /pn-/);
    assert.match(ua.contact.toString({ register: true }), /pn-prid=/);
  });
});

describe('SipJsAdapter: calls', () => {
  it('INVITE → onInvite (Call-ID, display name, video); CANCEL with Reason → onCancel(reasons), 487 sent', async () => {
    const { adapter, rec, t } = setup();
    await adapter.registerAndWait(PUSH);
    const inv = invite('call-1@test', { video: true, name: 'Bob B' });
    t.deliver(inv);
    await until(() => rec.invites.length === 1, 'onInvite');
    assert.deepEqual(rec.invites[0], { callId: 'call-1@test', fromUri: 'sip:bob@example.com', fromDisplayName: 'Bob B', toUri: 'sip:alice@example.com', video: true });
    assert.equal(t.responses(180).length, 1, 'SIP.js rang (180)');
    t.deliver(cancelFor(inv, 'SIP;cause=200;text="Call completed elsewhere", Q.850;cause=16'));
    await until(() => rec.cancels.length === 1, 'onCancel');
    assert.deepEqual(rec.cancels[0], {
      callId: 'call-1@test',
      reasons: [
        { protocol: 'SIP', cause: 200, text: 'Call completed elsewhere' },
        { protocol: 'Q.850', cause: 16 },
      ],
    });
    await until(() => t.responses(487).length === 1, '487');
    await tick();
    assert.deepEqual(rec.states, [], 'a CANCEL is not also reported as a failure');
  });

  it('answer → 200 OK with SDP, then "answered"; BYE → 200 OK and onBye', async () => {
    const { adapter, rec, t } = setup();
    await adapter.registerAndWait(PUSH);
    const inv = invite('call-2@test');
    t.deliver(inv);
    await until(() => rec.invites.length === 1, 'onInvite');
    assert.equal(rec.invites[0].video, false);
    adapter.answer('call-2@test', { video: false });
    await until(() => rec.states.length === 1, 'answered');
    assert.deepEqual(rec.states[0], { callId: 'call-2@test', state: { state: 'answered' } });
    const ok = t.responses(200).find((m) => m.includes('CSeq: 1 INVITE'));
    assert.ok(ok);
    assert.match(ok, /Content-Type: application\/sdp/);
    assert.match(ok, /m=audio \d+ RTP\/AVP 0/);
    assert.doesNotMatch(ok, /pn-/);
    assert.match(ok, /Record-Route: <sip:127\.0\.0\.1:8080;transport=ws;lr>/);
    t.deliver(byeFor(inv, ok));
    await until(() => rec.byes.length === 1, 'onBye');
    assert.equal(t.responses(200).filter((m) => m.includes('CSeq: 2 BYE')).length, 1, 'the adapter answered the BYE');
  });

  it('reject(603) sends 603; hangup of a ringing call sends 486; no end is reported for either', async () => {
    const { adapter, rec, t } = setup();
    await adapter.registerAndWait(PUSH);
    t.deliver(invite('call-3@test'));
    t.deliver(invite('call-4@test'));
    await until(() => rec.invites.length === 2, 'two INVITEs');
    adapter.reject('call-3@test', 603);
    adapter.hangup('call-4@test');
    await until(() => t.responses(603).length === 1 && t.responses(486).length === 1, '603 and 486');
    await tick();
    assert.deepEqual(rec.states, []);
    assert.deepEqual(rec.cancels, []);
  });

  it('a second INVITE with the same Call-ID (forked twice) gets 482 and no second onInvite', async () => {
    const { adapter, rec, t } = setup();
    await adapter.registerAndWait(PUSH);
    t.deliver(invite('call-5@test'));
    await until(() => rec.invites.length === 1, 'onInvite');
    t.deliver(invite('call-5@test'));
    await until(() => t.responses(482).length === 1, '482');
    assert.equal(rec.invites.length, 1);
  });

  it('answer of an unknown call reports failed', () => {
    const { adapter, rec } = setup();
    adapter.answer('nope@test', { video: false });
    assert.deepEqual(rec.states, [{ callId: 'nope@test', state: { state: 'failed', reason: 'no such call' } }]);
  });

  it('invite(): Call-ID returned synchronously is the INVITE\'s; 180 → progress, 486 → failed 486', async () => {
    const { adapter, rec, t } = setup();
    await adapter.registerAndWait(PUSH);
    t.peer = (req) => {
      if (req?.method !== 'INVITE') return;
      t.deliver(createResponse(req, 180, { toTag: 'callee1', headers: [['Contact', '<sip:carol@127.0.0.1:5080>']] }).toBuffer().toString());
      setTimeout(() => t.deliver(createResponse(req, 486, { toTag: 'callee1' }).toBuffer().toString()), 5);
    };
    const { callId } = adapter.invite('sip:carol@example.com', { video: true });
    await until(() => rec.states.length === 2, 'progress and failure');
    const [req] = t.requests('INVITE');
    assert.equal(req.callId, callId);
    assert.match(req.body.toString(), /m=video/);
    assert.doesNotMatch(req.get('contact') ?? '', /pn-/);
    assert.deepEqual(rec.states, [
      { callId, state: { state: 'progress', code: 180 } },
      { callId, state: { state: 'failed', code: 486, reason: 'Busy Here' } },
    ]);
  });

  it('invite() then 200 → established; hold sends a re-INVITE with a=sendonly; hangup sends BYE', async () => {
    const { adapter, rec, t } = setup();
    await adapter.registerAndWait(PUSH);
    t.peer = (req) => {
      if (req?.method !== 'INVITE') return;
      const answer = Buffer.from(SDP(false));
      t.deliver(createResponse(req, 200, { toTag: 'callee2', body: answer, contentType: 'application/sdp', headers: [['Contact', '<sip:carol@127.0.0.1:5080>']] }).toBuffer().toString());
    };
    const { callId } = adapter.invite('sip:carol@example.com', { video: false });
    await until(() => rec.states.some((s) => s.state.state === 'established'), 'established');
    await until(() => t.requests('ACK').length === 1, 'ACK');
    adapter.setAudioEnabled(true);
    adapter.mute(callId, true);
    const sdh = adapter.session(callId)?.sessionDescriptionHandler as unknown as { senderEnabled: boolean; receiverEnabled: boolean };
    assert.equal(sdh.receiverEnabled, true);
    assert.equal(sdh.senderEnabled, false, 'muted');
    adapter.hold(callId, true);
    await until(() => t.requests('INVITE').length === 2, 're-INVITE');
    assert.match(t.requests('INVITE')[1].body.toString(), /a=sendonly/);
    t.peer = undefined;
    adapter.hangup(callId);
    await until(() => t.requests('BYE').length === 1, 'BYE');
  });
});

describe('SipJsAdapter helpers', () => {
  it('escapes param values per RFC 3261 paramchar; FCM tokens pass unchanged', () => {
    const fcm = 'dGVzdA:APA91bH-x_y';
    assert.equal(escapeParamValue(fcm), fcm);
    assert.equal(escapeParamValue('a b;c=d'), 'a%20b%3Bc%3Dd');
    assert.equal(pushContactUriParams({ pnProvider: 'fcm', pnPrid: fcm, pnParam: 'proj' }), `;pn-provider=fcm;pn-prid=${fcm};pn-param=proj`);
    assert.equal(pushContactUriParams({ pnProvider: 'webpush', pnPrid: 'https://push.example/x', pnParam: '' }), ';pn-provider=webpush;pn-prid=https://push.example/x');
  });

  it('adds URI params inside the brackets, before header params', () => {
    assert.equal(addContactUriParams('<sip:a@b.invalid;transport=ws;ob>;+sip.instance="<urn:uuid:1>"', ';pn-x=1'), '<sip:a@b.invalid;transport=ws;ob;pn-x=1>;+sip.instance="<urn:uuid:1>"');
    assert.equal(addContactUriParams('sip:a@b;expires=3', ';p=1'), '<sip:a@b;p=1>;expires=3');
  });

  it('video and Feature-Caps detection', () => {
    assert.equal(sdpHasVideo(SDP(true)), true);
    assert.equal(sdpHasVideo(SDP(false)), false);
    assert.equal(sdpHasVideo('m=audio 1 RTP/AVP 0\r\nm=video 0 RTP/AVP 96\r\n'), false, 'a rejected (port 0) video stream');
    assert.equal(sdpHasVideo(undefined), false);
    assert.deepEqual(pnsFromFeatureCaps(['*;+sip.pns="apns"', '*;+sip.pns="fcm";+sip.pnsreg="130"']), ['apns', 'fcm']);
  });
});
