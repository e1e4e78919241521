/**
 * Requests the TU answers statelessly (RFC 3261 §8.2.7): no server transaction, every
 * retransmission reaches the TU, the To-tag is derived from the request, and the response
 * goes where §18.2.2 / RFC 3581 say.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createResponse } from '../../src/message/factory.js';
import { parseMessage } from '../../src/message/parser.js';
import type { SipRequest, SipResponse } from '../../src/message/message.js';
import { TransactionLayer, type StatelessReply, type TransactionLayerUser } from '../../src/transaction/layer.js';
import { FakeClock } from '../../src/util/clock.js';
import { FakeTransport, flush } from '../helpers/fake-transport.js';

const register = (branch: string, cseq = 1, callId = 'reg-1@192.0.2.10') =>
  [
    'REGISTER sip:example.com SIP/2.0',
    `Via: SIP/2.0/UDP 192.0.2.10:5062;branch=${branch};rport`,
    'Max-Forwards: 70',
    'From: <sip:alice@example.com>;tag=f1',
    'To: <sip:alice@example.com>',
    `Call-ID: ${callId}`,
    `CSeq: ${cseq} REGISTER`,
    'Contact: <sip:alice@192.0.2.10:5062>',
    'Content-Length: 0',
    '',
    '',
  ].join('\n');

function setup() {
  const stateless: Array<{ request: SipRequest; reply: StatelessReply }> = [];
  const stateful: SipRequest[] = [];
  const user: TransactionLayerUser = {
    answerStatelessly: (request) => request.method === 'REGISTER',
    onStatelessRequest: (request, reply) => stateless.push({ request, reply }),
    onRequest: (request) => stateful.push(request),
    onCancel: () => undefined,
    onAck: () => undefined,
  };
  const layer = new TransactionLayer(user, { clock: new FakeClock() });
  let transport!: FakeTransport;
  layer.addTransport((events) => (transport = new FakeTransport(events, 'udp')));
  return { layer, transport, stateless, stateful };
}

describe('stateless answers (RFC 3261 §8.2.7)', () => {
  it('a retransmission reaches the TU again and is answered with the same To-tag; no transaction is kept', async () => {
    const { layer, transport, stateless, stateful } = setup();
    transport.inject(register('z9hG4bK-a'));
    transport.inject(register('z9hG4bK-a'));
    assert.equal(stateless.length, 2);
    assert.equal(stateful.length, 0);
    assert.equal(layer.serverTransactionCount, 0);
    for (const { request, reply } of stateless) reply(createResponse(request, 200));
    await flush();
    assert.equal(transport.sent.length, 2);
    const [first, second] = transport.sent.map((s) => parseMessage(s.data) as SipResponse);
    assert.ok(first.to.tag);
    assert.equal(first.to.tag, second.to.tag, 'the same tag for the same request');
    // §18.2.2 + RFC 3581: to the source address and port the request came from.
    assert.deepEqual(transport.sent[0].target, { address: '192.0.2.10', port: 5062, connectionId: undefined, serverName: undefined });
    assert.match(transport.sentText(0), /Via: SIP\/2\.0\/UDP 192\.0\.2\.10:5062;branch=z9hG4bK-a;rport=5062;received=192\.0\.2\.10/);
    // Nothing is kept for Timer J: a third copy goes to the TU as well.
    transport.inject(register('z9hG4bK-a'));
    assert.equal(stateless.length, 3);
  });

  it('different requests get different tags', () => {
    const { transport, stateless } = setup();
    transport.inject(register('z9hG4bK-a', 1));
    transport.inject(register('z9hG4bK-b', 2));
    transport.inject(register('z9hG4bK-c', 1, 'other@192.0.2.10'));
    const tags = new Set(stateless.map(({ request }) => request.localTag));
    assert.equal(tags.size, 3);
    for (const tag of tags) assert.match(tag ?? '', /^sl[0-9a-f]{10}$/);
  });

  it('other requests keep their server transactions', () => {
    const { layer, transport, stateless, stateful } = setup();
    transport.inject(register('z9hG4bK-o').replace(/REGISTER/g, 'OPTIONS'));
    assert.equal(stateless.length, 0);
    assert.equal(stateful.length, 1);
    assert.equal(layer.serverTransactionCount, 1);
    assert.equal(stateful[0].localTag, undefined);
  });
});
