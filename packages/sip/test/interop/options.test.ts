/**
 * Interop with real peers (issue 2, "Show it"): SIPp sends OPTIONS over UDP and over TCP
 * to a responder built on the stack (TransactionLayer + createTransport) and gets 200 OK;
 * a plain WebSocket client (the `ws` package, subprotocol "sip", as a browser SIP stack
 * would) does the same over WS and gets its 200 OK back on the same connection.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { parseMessage } from '../../src/message/parser.js';
import type { SipResponse } from '../../src/message/message.js';
import { type OptionsResponder, parseListenSpec, startOptionsResponder } from '../../src/responder.js';
import { runSipp, sippAvailable } from '../../../testkit/src/sipp/run.js';

const OPTIONS_SCENARIO = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="OPTIONS ping">
  <send retrans="500">
    <![CDATA[

      OPTIONS sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      Max-Forwards: 70
      From: <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      To: <sip:[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 OPTIONS
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Accept: application/sdp
      User-Agent: SIPp
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" rtd="true">
    <action>
      <ereg regexp="Allow: [A-Z, ]*OPTIONS" search_in="msg" check_it="true" assign_to="allow"/>
      <ereg regexp="CSeq: 1 OPTIONS" search_in="msg" check_it="true" assign_to="cseq"/>
    </action>
  </recv>
  <Reference variables="allow,cseq"/>
</scenario>
`;

const CALLS = 20;

function options(n: number, host: string, port: number, transport: string, callId: string): string {
  return [
    `OPTIONS sip:${host}:${port};transport=${transport.toLowerCase()} SIP/2.0`,
    `Via: SIP/2.0/${transport} abcdef.invalid;branch=z9hG4bKws${n}${Date.now()}`,
    'Max-Forwards: 70',
    `From: <sip:browser@example.invalid>;tag=ws${n}`,
    `To: <sip:${host}:${port}>`,
    `Call-ID: ${callId}`,
    `CSeq: ${n} OPTIONS`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

describe('interop: OPTIONS responder on the stack', () => {
  let responder: OptionsResponder;

  before(async () => {
    assert.ok(sippAvailable(), 'sipp must be installed (apt-get install -y sip-tester)');
    responder = await startOptionsResponder({ listen: ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0', 'ws:127.0.0.1:0'] });
  });
  after(async () => {
    await responder?.close();
  });

  it('binds every listen spec and reports the resolved ports', () => {
    assert.deepEqual(
      responder.addresses.map((a) => a.protocol),
      ['udp', 'tcp', 'ws'],
    );
    for (const a of responder.addresses) {
      assert.equal(a.address, '127.0.0.1');
      assert.ok(a.port > 0);
    }
  });

  for (const transport of ['udp', 'tcp'] as const) {
    it(`SIPp sends OPTIONS over ${transport.toUpperCase()} and gets 200 OK (${CALLS} transactions)`, async () => {
      const before = responder.counts.OPTIONS ?? 0;
      const { port } = responder.address(transport);
      const result = await runSipp({
        remote: `127.0.0.1:${port}`,
        scenario: OPTIONS_SCENARIO,
        transport,
        calls: CALLS,
        rate: 200,
        timeoutMs: 10_000,
      });
      assert.equal(result.exitCode, 0, `${result.errors}\n${result.stderr}`);
      assert.equal(result.successful, CALLS);
      assert.equal(result.failed, 0);
      assert.equal((responder.counts.OPTIONS ?? 0) - before, CALLS, 'every OPTIONS reached the core once (no duplicates)');
    });
  }

  it('a ws client (subprotocol "sip") sends OPTIONS over WS and gets 200 OK on the same connection', async () => {
    const { port } = responder.address('ws');
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, 'sip');
    const inbox: SipResponse[] = [];
    const waiters: Array<() => void> = [];
    ws.on('message', (data: Buffer) => {
      inbox.push(parseMessage(Buffer.from(data)) as SipResponse);
      waiters.shift()?.();
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    assert.equal(ws.protocol, 'sip', 'the server selected the sip subprotocol (RFC 7118 §4)');
    const next = () => (inbox.length > 0 ? Promise.resolve(inbox.shift()!) : new Promise<SipResponse>((r) => waiters.push(() => r(inbox.shift()!))));
    try {
      for (let n = 1; n <= 3; n++) {
        const callId = `ws-options-${n}-${Date.now()}`;
        ws.send(options(n, '127.0.0.1', port, 'WS', callId));
        const response = await next();
        assert.equal(response.status, 200);
        assert.equal(response.callId, callId);
        assert.equal(response.cseq.seq, n);
        assert.equal(response.cseq.method, 'OPTIONS');
        assert.match(response.get('allow') ?? '', /OPTIONS/);
        assert.ok(response.to.tag, 'a To-tag was added');
        // §18.2.1: the .invalid sent-by got received= stamped (the response still came back
        // over the WebSocket, RFC 7118 §5, not to the unresolvable host).
        assert.equal(response.via.received, '127.0.0.1');
      }
      // Anything other than OPTIONS: 405 with Allow.
      ws.send(options(9, '127.0.0.1', port, 'WS', 'ws-invite').replace(/OPTIONS/g, 'MESSAGE'));
      const refused = await next();
      assert.equal(refused.status, 405);
      assert.equal(refused.get('allow'), 'OPTIONS');
    } finally {
      ws.close();
    }
  });

  it('parses listen specs, IPv6 included, and refuses nonsense', () => {
    assert.deepEqual(parseListenSpec('udp:127.0.0.1:5060'), { protocol: 'udp', address: '127.0.0.1', port: 5060 });
    assert.deepEqual(parseListenSpec('ws:[::1]:0'), { protocol: 'ws', address: '::1', port: 0 });
    assert.throws(() => parseListenSpec('sctp:127.0.0.1:5060'), TypeError);
    assert.throws(() => parseListenSpec('udp:127.0.0.1'), TypeError);
    assert.throws(() => parseListenSpec('udp:127.0.0.1:99999'), TypeError);
  });
});
