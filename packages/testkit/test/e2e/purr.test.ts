/**
 * Mid-dialog push with PURRs (RFC 8599 §6) end to end: pushcall issues a PURR to a sleeping
 * Android phone; a peer's in-dialog request that carries it in the Request-URI, routed
 * through pushcall, wakes the phone with a silent push and reaches it after it registers.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { parseMessage, type SipResponse } from '@pushcall/sip';
import type { Binding } from '@pushcall/server';
import { type Lab, SimulatedPhone, SipUserAgent, startLab } from '../../src/index.js';
import { waitFor } from '../support/wait.js';

/** The other end of the dialog: sends one in-dialog request through pushcall's Route. */
async function peer(): Promise<{ socket: Socket; port: number; finals: SipResponse[]; close(): void }> {
  const socket = createSocket('udp4');
  const finals: SipResponse[] = [];
  socket.on('message', (msg) => {
    const response = parseMessage(msg) as SipResponse;
    if (response.status >= 200) finals.push(response);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return { socket, port: socket.address().port, finals, close: () => socket.close() };
}

/** The signature pushcall puts on its Record-Route entries (RouteSigner): the dialog's entry is one it wrote. */
let signature = '';

/**
 * `strict`: as a strict router (RFC 2543) would send it: our Record-Route entry in the
 * Request-URI and the remote target as the last Route (RFC 3261 §16.4).
 */
function inDialogMessage(o: { target: string; proxyPort: number; peerPort: number; callId: string; strict?: boolean; ack?: boolean }): Buffer {
  const ours = `sip:127.0.0.1:${o.proxyPort};lr;pc-sig=${signature}`;
  const method = o.ack ? 'ACK' : 'MESSAGE';
  const body = o.ack ? '' : 'hello';
  return Buffer.from(
    [
      `${method} ${o.strict ? ours : o.target} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${o.peerPort};branch=z9hG4bK-${randomUUID()};rport`,
      'Max-Forwards: 70',
      `Route: <${o.strict ? o.target : ours}>`,
      'From: <sip:peer@127.0.0.1>;tag=peer-1',
      'To: <sip:erin@127.0.0.1>;tag=device-1',
      `Call-ID: ${o.callId}`,
      `CSeq: 7 ${method}`,
      'Content-Type: text/plain',
      `Content-Length: ${body.length}`,
      '',
      body,
    ].join('\r\n'),
  );
}

/** A re-INVITE (or, with `cancel`, its CANCEL: same branch, RFC 3261 §9.1) for the dialog of `callId`. */
function inDialogInvite(o: { target: string; proxyPort: number; peerPort: number; callId: string; branch: string; cancel?: boolean }): Buffer {
  const method = o.cancel ? 'CANCEL' : 'INVITE';
  return Buffer.from(
    [
      `${method} ${o.target} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${o.peerPort};branch=${o.branch};rport`,
      'Max-Forwards: 70',
      `Route: <sip:127.0.0.1:${o.proxyPort};lr;pc-sig=${signature}>`,
      'From: <sip:peer@127.0.0.1>;tag=peer-1',
      'To: <sip:ghost@127.0.0.1>;tag=device-1',
      `Call-ID: ${o.callId}`,
      `CSeq: 8 ${method}`,
      'Contact: <sip:peer@127.0.0.1>',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

describe('mid-dialog push with PURRs (RFC 8599 §6.2.3) end to end', () => {
  let lab: Lab;
  const closers: Array<() => Promise<void> | void> = [];

  before(async () => {
    lab = await startLab({ config: { registrar: { purr: { enabled: true } } as never, proxy: { wakeTimeoutSeconds: 2 } as never } });
    signature = lab.server.proxy.routeSigner.sign(undefined, undefined);
  });
  after(async () => {
    for (const close of closers) await close();
    await lab.close();
  });

  /** `user`'s binding, the Request-URI that reaches it with its PURR, and the other end of the dialog. */
  async function purrDialog(user: string): Promise<{ binding: Binding; target: string; other: Awaited<ReturnType<typeof peer>> }> {
    const [binding] = await lab.server.store.lookup(`sip:${user}@127.0.0.1`, Date.now());
    const other = await peer();
    closers.push(() => other.close());
    return { binding, target: `sip:${user}@127.0.0.1:${binding.flow.remotePort};pn-purr=${binding.purrs![0]}`, other };
  }

  /** A UA registered once with an FCM token, then asleep for good; its PURR target and the dialog's other end. */
  async function neverWakes(user: string): ReturnType<typeof purrDialog> {
    const ua = new SipUserAgent({ user, domain: '127.0.0.1', server: lab.phoneWiring().server, instanceId: `urn:uuid:${randomUUID()}`, expires: 600 });
    closers.push(() => ua.close());
    ua.register({ pnProvider: 'fcm', pnPrid: `fcm-${user}-${randomUUID()}`, pnParam: 'pushcall-lab' });
    await waitFor(() => ua.registered, 3000, 'registration');
    await ua.sleep();
    return purrDialog(user);
  }


  /** A SimulatedPhone (Android, FCM) that registered and went to sleep; its PURR target and the dialog's other end. */
  async function sleepingPhone(name: string, user: string): Promise<{ phone: SimulatedPhone } & Awaited<ReturnType<typeof purrDialog>>> {
    const phone = new SimulatedPhone({ name, platform: 'android', user, ...lab.phoneWiring(), launchDelayMs: 50 });
    closers.push(() => phone.close());
    await phone.start();
    await phone.sleep();
    return { phone, ...(await purrDialog(user)) };
  }

  it('an in-dialog request with a PURR wakes the sleeping phone and reaches it after its REGISTER', async () => {
    const { phone, binding, target, other } = await sleepingPhone('pixel', 'erin');
    const purr = binding.purrs?.[0];
    assert.match(purr ?? '', /^[0-9a-f]{32}$/);
    const pushesBefore = lab.fcm.received.length;
    other.socket.send(inDialogMessage({ target, proxyPort: lab.server.port('udp'), peerPort: other.port, callId: 'dlg-purr-1@127.0.0.1' }), lab.server.port('udp'), '127.0.0.1');

    await waitFor(() => other.finals.length > 0, 5000, 'the final response');
    assert.equal(other.finals[0].status, 200, 'answered by the phone');
    const push = lab.fcm.received.slice(pushesBefore).find((m) => m.token === phone.token);
    assert.ok(push, 'the phone was pushed');
    assert.equal((push.payload as { type: string }).type, 'refresh', 'a silent push: not a call');
    const delivered = phone.ua.received.find((r) => r.callId === 'dlg-purr-1@127.0.0.1');
    assert.ok(delivered, 'the phone got the request');
    assert.equal(delivered.method, 'MESSAGE');
    assert.equal(delivered.body.toString(), 'hello');
    const [after] = await lab.server.store.lookup('sip:erin@127.0.0.1', Date.now());
    assert.ok(after.updatedAt > binding.updatedAt, 'it came after the binding-refresh REGISTER');
    assert.equal(phone.coordinator.calls().length, 0);
  });

  it('a device that does not wake: 408 (a transaction-only code) after the wake timeout', async () => {
    const { target, other } = await neverWakes('ghost');
    const started = Date.now();
    other.socket.send(inDialogMessage({ target, proxyPort: lab.server.port('udp'), peerPort: other.port, callId: 'dlg-purr-2@127.0.0.1' }), lab.server.port('udp'), '127.0.0.1');
    await waitFor(() => other.finals.length > 0, 5000, 'the final response');
    assert.equal(other.finals[0].status, 408);
    assert.ok(Date.now() - started >= 1900, 'after the 2 s wake timeout');
    assert.equal(lab.server.proxy.wake.size, 0, 'nothing left held');
  });

  it('a held re-INVITE that the peer CANCELs: 200 to the CANCEL, 487 to the INVITE, nothing left held (§16.10)', async () => {
    const { target, other } = await neverWakes('ghost2');
    const dialog = { target, proxyPort: lab.server.port('udp'), peerPort: other.port, callId: 'dlg-purr-3@127.0.0.1', branch: `z9hG4bK-${randomUUID()}` };
    const started = Date.now();
    other.socket.send(inDialogInvite(dialog), lab.server.port('udp'), '127.0.0.1');
    await waitFor(() => lab.server.proxy.wake.size === 1, 2000, 'the re-INVITE held');
    other.socket.send(inDialogInvite({ ...dialog, cancel: true }), lab.server.port('udp'), '127.0.0.1');
    await waitFor(() => other.finals.length >= 2, 3000, 'the final responses');
    const byMethod = new Map(other.finals.map((r) => [r.cseq.method, r.status]));
    assert.equal(byMethod.get('CANCEL'), 200);
    assert.equal(byMethod.get('INVITE'), 487);
    assert.ok(Date.now() - started < 1900, 'at once, not after the 2 s wake timeout');
    assert.equal(lab.server.proxy.wake.size, 0, 'nothing left held');
  });

  it('a PURR in the Route set, where a strict router put the remote target (RFC 8599 §6.2.3, RFC 3261 §16.4): held, pushed, delivered', async () => {
    const { phone, target, other } = await sleepingPhone('pixel-2', 'fay');
    const pushesBefore = lab.fcm.received.length;
    other.socket.send(inDialogMessage({ target, proxyPort: lab.server.port('udp'), peerPort: other.port, callId: 'dlg-purr-4@127.0.0.1', strict: true }), lab.server.port('udp'), '127.0.0.1');

    await waitFor(() => other.finals.length > 0, 5000, 'the final response');
    assert.equal(other.finals[0].status, 200, 'answered by the phone');
    assert.ok(lab.fcm.received.slice(pushesBefore).some((m) => m.token === phone.token), 'the phone was pushed');
    const delivered = phone.ua.received.find((r) => r.callId === 'dlg-purr-4@127.0.0.1');
    assert.ok(delivered, 'the phone got the request');
    assert.match(delivered.uriText, /pn-purr=/, 'the remote target is back in the Request-URI');
    assert.equal(delivered.getAll('route').length, 0, 'and out of the Route set');
  });

  it('a strict-routed request for an awake device goes straight to it, as the remote target (RFC 3261 §16.4)', async () => {
    const ua = new SipUserAgent({ user: 'gus', domain: '127.0.0.1', server: lab.phoneWiring().server, instanceId: `urn:uuid:${randomUUID()}`, expires: 600 });
    closers.push(() => ua.close());
    ua.register(undefined);
    await waitFor(() => ua.registered, 3000, 'registration');
    const [binding] = await lab.server.store.lookup('sip:gus@127.0.0.1', Date.now());
    const other = await peer();
    closers.push(() => other.close());
    const target = `sip:gus@127.0.0.1:${binding.flow.remotePort}`;
    other.socket.send(inDialogMessage({ target, proxyPort: lab.server.port('udp'), peerPort: other.port, callId: 'dlg-strict-1@127.0.0.1', strict: true }), lab.server.port('udp'), '127.0.0.1');
    await waitFor(() => other.finals.length > 0, 3000, 'the final response');
    assert.equal(other.finals[0].status, 200);
    const delivered = ua.received.find((r) => r.callId === 'dlg-strict-1@127.0.0.1');
    assert.ok(delivered);
    assert.equal(delivered.uriText, target);
    assert.equal(delivered.getAll('route').length, 0);
    // The 2xx ACK takes the stateless path (§16.11) and is restored the same way.
    other.socket.send(inDialogMessage({ target, proxyPort: lab.server.port('udp'), peerPort: other.port, callId: 'dlg-strict-2@127.0.0.1', strict: true, ack: true }), lab.server.port('udp'), '127.0.0.1');
    await waitFor(() => ua.received.some((r) => r.callId === 'dlg-strict-2@127.0.0.1'), 3000, 'the ACK at the UA');
    const ack = ua.received.find((r) => r.callId === 'dlg-strict-2@127.0.0.1')!;
    assert.equal(ack.method, 'ACK');
    assert.equal(ack.uriText, target);
    assert.equal(ack.getAll('route').length, 0);
  });
});
