/**
 * RFC 5626 §5.3: a device registered over two flows is one target; when the flow used
 * fails (430 Flow Failed), the request goes over the device's other flow.
 */
import assert from 'node:assert/strict';
import { type Socket, createSocket } from 'node:dgram';
import { test } from 'node:test';
import { parseMessage, type SipRequest } from '@pushcall/sip';
import { validateConfig } from '../../src/config/load.js';
import { PushcallServer } from '../../src/server.js';
import { tempDir } from '../helpers/server.js';

interface Peer {
  socket: Socket;
  port: number;
  requests: SipRequest[];
  onRequest?: (request: SipRequest, reply: (text: string) => void) => void;
}

async function peer(serverPort: number): Promise<Peer> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  const p: Peer = { socket, port: (socket.address() as { port: number }).port, requests: [] };
  socket.on('message', (data) => {
    const message = parseMessage(data);
    if (!message.isRequest) return;
    const request = message as SipRequest;
    p.requests.push(request);
    p.onRequest?.(request, (text) => socket.send(Buffer.from(text), serverPort, '127.0.0.1'));
  });
  return p;
}

function response(request: SipRequest, status: number, reason: string, toTag: string): string {
  const lines = [`SIP/2.0 ${status} ${reason}`];
  for (const h of request.headers) {
    if (h.key === 'via' || h.key === 'from' || h.key === 'call-id' || h.key === 'cseq' || h.key === 'record-route') lines.push(`${h.name}: ${h.value}`);
    if (h.key === 'to') lines.push(`${h.name}: ${h.value};tag=${toTag}`);
  }
  if (status === 200) lines.push(`Contact: <sip:bob@127.0.0.1>`);
  lines.push('Content-Length: 0', '', '');
  return lines.join('\r\n');
}

const INSTANCE = '<urn:uuid:00000000-0000-4000-8000-000000000430>';

test('430 Flow Failed on the most recent flow: the INVITE goes over the device\'s other flow and is answered there', async () => {
  const config = validateConfig({ listen: ['udp:127.0.0.1:0'], dataDir: tempDir(), store: { type: 'memory' }, auth: { mode: 'open' }, admin: { enabled: false }, log: { level: 'silent' } });
  const server = new PushcallServer({ config });
  await server.start();
  const port = server.port('udp');
  const older = await peer(port);
  const newer = await peer(port);
  const caller = await peer(port);
  try {
    const register = (p: Peer, regId: number) =>
      [
        'REGISTER sip:127.0.0.1 SIP/2.0',
        `Via: SIP/2.0/UDP 127.0.0.1:${p.port};branch=z9hG4bK-reg-${regId};rport`,
        'Max-Forwards: 70',
        `From: <sip:bob@127.0.0.1>;tag=r${regId}`,
        'To: <sip:bob@127.0.0.1>',
        `Call-ID: reg-flow-${regId}`,
        'CSeq: 1 REGISTER',
        'Supported: outbound',
        `Contact: <sip:bob@127.0.0.1:${p.port};ob>;+sip.instance="${INSTANCE}";reg-id=${regId}`,
        'Expires: 600',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
    older.socket.send(register(older, 1), port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 100));
    newer.socket.send(register(newer, 2), port, '127.0.0.1');
    while ((await server.store.lookup('sip:bob@127.0.0.1', Date.now())).length < 2) await new Promise((r) => setTimeout(r, 10));

    newer.onRequest = (r, reply) => {
      if (r.method === 'INVITE') reply(response(r, 430, 'Flow Failed', 'n'));
    };
    older.onRequest = (r, reply) => {
      if (r.method === 'INVITE') reply(response(r, 200, 'OK', 'o'));
    };
    const finals: number[] = [];
    caller.onRequest = () => {};
    caller.socket.on('message', (data) => {
      const m = parseMessage(data);
      if (!m.isRequest && m.cseq.method === 'INVITE' && (m as unknown as { status: number }).status >= 200) finals.push((m as unknown as { status: number }).status);
    });
    caller.socket.send(
      [
        'INVITE sip:bob@127.0.0.1 SIP/2.0',
        `Via: SIP/2.0/UDP 127.0.0.1:${caller.port};branch=z9hG4bK-inv-430;rport`,
        'Max-Forwards: 70',
        'From: <sip:carol@127.0.0.1>;tag=c',
        'To: <sip:bob@127.0.0.1>',
        'Call-ID: flow-failover-1',
        'CSeq: 1 INVITE',
        `Contact: <sip:carol@127.0.0.1:${caller.port}>`,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
      port,
      '127.0.0.1',
    );
    const t0 = Date.now();
    while (finals.length === 0 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(finals.slice(0, 1), [200]);
    assert.equal(newer.requests.filter((r) => r.method === 'INVITE').length, 1, 'tried first: the most recent flow');
    assert.equal(older.requests.filter((r) => r.method === 'INVITE').length, 1, 'then the other flow');
    const kinds = server.proxy.timelines.get('flow-failover-1')!.events.map((e) => e.kind);
    assert.ok(kinds.includes('flow-failover'), kinds.join(', '));
  } finally {
    for (const p of [older, newer, caller]) p.socket.close();
    await server.stop();
  }
});
