/**
 * Bad input never crashes the process nor loses stored data: a running server takes random
 * and mutated datagrams and stream bytes, then still answers and still has its bindings.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { startTestServer, udpExchange } from '../helpers/server.js';

const REGISTER = (i: number, extra = '') =>
  [
    'REGISTER sip:127.0.0.1 SIP/2.0',
    `Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKg${i};rport`,
    'Max-Forwards: 70',
    `From: <sip:user${i}@127.0.0.1>;tag=${i}`,
    `To: <sip:user${i}@127.0.0.1>`,
    `Call-ID: garbage-${i}`,
    'CSeq: 1 REGISTER',
    `Contact: <sip:user${i}@127.0.0.1:9;pn-provider=apns;pn-prid=${'ab'.repeat(32)};pn-param=TEAM123456.com.example.app.voip>${extra}`,
    'Expires: 600',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');

test('random and mutated input over UDP and TCP leaves the server up with its bindings intact', async () => {
  const server = await startTestServer({ auth: { mode: 'open' } as never });
  try {
    const ok = await udpExchange(server.port('udp'), REGISTER(0));
    assert.match(ok ?? '', /^SIP\/2\.0 200 OK/);
    const before = JSON.stringify(await server.store.all());

    const samples = fc.sample(
      fc.oneof(
        fc.uint8Array({ minLength: 0, maxLength: 2000 }).map((a) => Buffer.from(a)),
        fc
          .tuple(fc.nat(2000), fc.nat(255), fc.boolean())
          .map(([pos, byte, cut]) => {
            const b = Buffer.from(REGISTER(1, ';+sip.instance="<urn:uuid:1>"'));
            const p = pos % b.length;
            if (cut) return b.subarray(0, p);
            b[p] = byte;
            return b;
          }),
        fc.string({ maxLength: 300 }).map((s) => Buffer.from(`INVITE sip:${s} SIP/2.0\r\nVia: ${s}\r\nCSeq: ${s}\r\n\r\n`)),
      ),
      { numRuns: 1500, seed: 42 },
    );

    const udp = createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
    for (const s of samples) udp.send(s, server.port('udp'), '127.0.0.1');
    const tcp = connect(server.port('tcp'), '127.0.0.1');
    tcp.on('error', () => {});
    await new Promise<void>((r) => tcp.once('connect', () => r()));
    for (const s of samples.slice(0, 300)) tcp.write(s);
    await new Promise((r) => setTimeout(r, 500));
    tcp.destroy();
    udp.close();

    // Still answering, and nothing valid was lost.
    const after = await udpExchange(server.port('udp'), REGISTER(2));
    assert.match(after ?? '', /^SIP\/2\.0 200 OK/);
    const bindings = await server.store.all();
    assert.ok(JSON.parse(before).every((b: { id: string }) => bindings.some((x) => x.id === b.id)), 'stored bindings survive');
  } finally {
    await server.stop();
  }
});
