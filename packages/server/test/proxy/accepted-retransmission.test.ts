/**
 * RFC 6026 §8.4: a proxy forwards 2xx retransmissions upstream for as long as its client
 * transaction is in Accepted, also after the call itself is finished and has handed that
 * transaction a small TU (ProxyCall.retireWhenDone) so the call's memory can be collected.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { test } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { PushcallServer } from '../../src/server.js';
import { tempDir } from '../helpers/server.js';

async function udp(): Promise<{ socket: Socket; port: number; got: string[]; next(match: RegExp): Promise<string> }> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  const got: string[] = [];
  socket.on('message', (m) => got.push(m.toString()));
  return {
    socket, port: socket.address().port, got,
    async next(match) {
      for (let i = 0; i < 200; i++) {
        const found = got.find((m) => match.test(m));
        if (found) {
          got.splice(got.indexOf(found), 1);
          return found;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`nothing matched ${match}; got:\n${got.join('\n---\n')}`);
    },
  };
}

const lines = (...l: string[]) => [...l, '', ''].join('\r\n');

test('a 2xx retransmitted after the call is over still reaches the caller, once per retransmission', async () => {
  const config = validateConfig({ listen: ['udp:127.0.0.1:0'], dataDir: tempDir(), auth: { mode: 'open' }, admin: { enabled: false }, log: { level: 'silent' } });
  const server = new PushcallServer({ config });
  await server.start();
  const port = server.port('udp');
  const uas = await udp();
  const caller = await udp();
  try {
    uas.socket.send(lines(
      'REGISTER sip:127.0.0.1 SIP/2.0',
      `Via: SIP/2.0/UDP 127.0.0.1:${uas.port};branch=z9hG4bKreg1;rport`,
      'Max-Forwards: 70',
      'From: <sip:bob@127.0.0.1>;tag=r1',
      'To: <sip:bob@127.0.0.1>',
      'Call-ID: reg-accepted-1',
      'CSeq: 1 REGISTER',
      `Contact: <sip:bob@127.0.0.1:${uas.port}>;expires=600`,
      'Content-Length: 0',
    ), port, '127.0.0.1');
    await uas.next(/^SIP\/2\.0 200 .*CSeq: 1 REGISTER/s);

    caller.socket.send(lines(
      'INVITE sip:bob@127.0.0.1 SIP/2.0',
      `Via: SIP/2.0/UDP 127.0.0.1:${caller.port};branch=z9hG4bKinv1;rport`,
      'Max-Forwards: 70',
      'From: <sip:alice@127.0.0.1>;tag=a1',
      'To: <sip:bob@127.0.0.1>',
      'Call-ID: accepted-1',
      'CSeq: 1 INVITE',
      `Contact: <sip:alice@127.0.0.1:${caller.port}>`,
      'Content-Length: 0',
    ), port, '127.0.0.1');
    const invite = await uas.next(/^INVITE /);
    const copy = (name: string) => invite.split('\r\n').filter((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
    const ok = lines(
      'SIP/2.0 200 OK',
      ...copy('Via'),
      ...copy('Record-Route'),
      ...copy('From'),
      `${copy('To')[0]};tag=b1`,
      ...copy('Call-ID'),
      ...copy('CSeq'),
      `Contact: <sip:bob@127.0.0.1:${uas.port}>`,
      'Content-Length: 0',
    );
    uas.socket.send(ok, port, '127.0.0.1');
    const first = await caller.next(/^SIP\/2\.0 200 OK.*CSeq: 1 INVITE/s);
    assert.match(first, /To: <sip:bob@127\.0\.0\.1>;tag=b1/);
    assert.doesNotMatch(first, new RegExp(`Via: SIP/2\\.0/UDP 127\\.0\\.0\\.1:${port}`), 'the proxy removed its own Via');
    const timeline = server.proxy.timelines.get('accepted-1');
    assert.equal(timeline?.outcome, 'answered');

    // The caller's ACK got lost: the callee retransmits its 2xx (§13.3.1.4), twice.
    for (let i = 0; i < 2; i++) {
      uas.socket.send(ok, port, '127.0.0.1');
      const again = await caller.next(/^SIP\/2\.0 200 OK.*CSeq: 1 INVITE/s);
      assert.equal(again, first, 'forwarded unchanged, like the first one');
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(caller.got.filter((m) => m.startsWith('SIP/2.0 200')).length, 0, 'one 200 per retransmission, no more');
  } finally {
    uas.socket.close();
    caller.socket.close();
    await server.stop();
  }
});
