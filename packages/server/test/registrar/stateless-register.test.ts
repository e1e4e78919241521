/**
 * REGISTER is answered statelessly (RFC 3261 §8.2.7) over real UDP: a retransmission is
 * processed again and answered the same way (same To-tag, no second binding). A REGISTER with
 * credentials keeps its server transaction, so nonce-count replay protection never sees its
 * retransmission.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { after, describe, it } from 'node:test';
import { parseMessage, type SipResponse } from '@pushcall/sip';
import type { PushcallServer } from '../../src/server.js';
import { startTestServer } from '../helpers/server.js';

/** One client socket: send datagrams, collect every response. */
async function client(): Promise<{ socket: Socket; port: number; responses: SipResponse[]; send(text: string, to: number): void; close(): void }> {
  const socket = createSocket('udp4');
  const responses: SipResponse[] = [];
  socket.on('message', (msg) => responses.push(parseMessage(msg) as SipResponse));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  const port = socket.address().port;
  return { socket, port, responses, send: (text, to) => socket.send(Buffer.from(text.replace(/\n/g, '\r\n')), to, '127.0.0.1'), close: () => socket.close() };
}

const until = async (check: () => boolean, what: string) => {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > 3000) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

function register(port: number, o: { user: string; branch: string; cseq: number; authorization?: string }): string {
  return [
    'REGISTER sip:127.0.0.1 SIP/2.0',
    `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=${o.branch};rport`,
    'Max-Forwards: 70',
    `From: <sip:${o.user}@127.0.0.1>;tag=t-${o.user}`,
    `To: <sip:${o.user}@127.0.0.1>`,
    `Call-ID: reg-${o.user}@127.0.0.1`,
    `CSeq: ${o.cseq} REGISTER`,
    `Contact: <sip:${o.user}@127.0.0.1:${port};pn-provider=fcm;pn-prid=tok-${o.user};pn-param=demo-project>`,
    'Expires: 600',
    ...(o.authorization ? [`Authorization: ${o.authorization}`] : []),
    'Content-Length: 0',
    '',
    '',
  ].join('\n');
}

const registerCount = async (server: PushcallServer) => {
  const text = await server.metrics.registry.getSingleMetricAsString('pushcall_register_total');
  return [...text.matchAll(/status="(\d+)"\} (\d+)/g)].reduce<Record<string, number>>((m, [, s, n]) => ({ ...m, [s]: Number(n) }), {});
};

describe('stateless REGISTER (RFC 3261 §8.2.7)', () => {
  const servers: PushcallServer[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });

  it('a retransmitted REGISTER is answered again with the same To-tag and creates no second binding', async () => {
    const server = await startTestServer({ auth: { mode: 'open' } });
    servers.push(server);
    const c = await client();
    const text = register(c.port, { user: 'carol', branch: 'z9hG4bK-retx', cseq: 1 });
    c.send(text, server.port('udp'));
    await until(() => c.responses.length === 1, 'first 200');
    c.send(text, server.port('udp')); // the 200 was "lost": Timer E fires
    await until(() => c.responses.length === 2, 'second 200');
    c.close();
    const [first, second] = c.responses;
    assert.equal(first.status, 200);
    assert.equal(second.status, 200);
    assert.equal(first.to.tag, second.to.tag);
    assert.match(first.to.tag ?? '', /^sl[0-9a-f]{10}$/);
    assert.equal(first.get('contact'), second.get('contact'));
    assert.equal((await server.store.lookup('sip:carol@127.0.0.1', Date.now())).length, 1);
    assert.equal((await registerCount(server))['200'], 2, 'the registrar answered both copies');
    assert.equal(server.layer.serverTransactionCount, 0, 'no transaction was kept');
  });

  it('with digest auth: the 401 is stateless, the REGISTER with credentials keeps its transaction', async () => {
    const server = await startTestServer({ auth: { mode: 'digest', realm: '127.0.0.1', algorithms: ['MD5'] } });
    servers.push(server);
    const c = await client();
    c.send(register(c.port, { user: 'alice', branch: 'z9hG4bK-1', cseq: 1 }), server.port('udp'));
    await until(() => c.responses.length === 1, '401');
    const challenge = c.responses[0];
    assert.equal(challenge.status, 401);
    assert.match(challenge.to.tag ?? '', /^sl/, 'the challenge came without a transaction');
    const nonce = /nonce="([^"]+)"/.exec(challenge.get('www-authenticate') ?? '')![1];
    const md5 = (s: string) => createHash('md5').update(s).digest('hex');
    const ha1 = md5('alice:127.0.0.1:alice-secret');
    const response = md5(`${ha1}:${nonce}:00000001:c1:auth:${md5('REGISTER:sip:127.0.0.1')}`);
    const authorization = `Digest username="alice", realm="127.0.0.1", nonce="${nonce}", uri="sip:127.0.0.1", response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="c1"`;
    const text = register(c.port, { user: 'alice', branch: 'z9hG4bK-2', cseq: 2, authorization });
    c.send(text, server.port('udp'));
    await until(() => c.responses.length === 2, '200');
    c.send(text, server.port('udp'));
    await until(() => c.responses.length === 3, 'the retransmitted 200');
    c.close();
    assert.equal(c.responses[1].status, 200);
    assert.equal(c.responses[2].status, 200, 'not a nonce-count replay: the transaction answered');
    assert.equal(c.responses[1].to.tag, c.responses[2].to.tag);
    assert.equal((await registerCount(server))['200'], 1, 'the registrar saw the REGISTER once');
  });
});
