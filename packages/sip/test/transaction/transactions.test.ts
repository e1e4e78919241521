import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../src/util/clock.js';
import { TransactionLayer, type TransactionLayerUser } from '../../src/transaction/layer.js';
import { TransactionState } from '../../src/transaction/transaction.js';
import type { ServerTransaction, InviteServerTransaction } from '../../src/transaction/server-transactions.js';
import { type InviteClientTransaction } from '../../src/transaction/client-transactions.js';
import { SipRequest, header, type SipResponse } from '../../src/message/message.js';
import { createResponse } from '../../src/message/factory.js';
import { parseMessage } from '../../src/message/parser.js';
import { FakeTransport, flush } from '../helpers/fake-transport.js';

interface Recorded {
  requests: Array<{ request: SipRequest; tx: ServerTransaction }>;
  cancels: Array<{ cancel: SipRequest; tx: ServerTransaction; invite?: InviteServerTransaction }>;
  acks: SipRequest[];
  stray: SipResponse[];
  parseErrors: Array<{ error: unknown; answered: boolean }>;
}

function setup(protocol: 'udp' | 'tcp' = 'udp') {
  const clock = new FakeClock();
  const rec: Recorded = { requests: [], cancels: [], acks: [], stray: [], parseErrors: [] };
  const user: TransactionLayerUser = {
    onRequest: (request, tx) => rec.requests.push({ request, tx }),
    onCancel: (cancel, tx, invite) => rec.cancels.push({ cancel, tx, invite }),
    onAck: (ack) => rec.acks.push(ack),
    onStrayResponse: (r) => rec.stray.push(r),
    onParseError: (error, _flow, answered) => rec.parseErrors.push({ error, answered }),
  };
  const layer = new TransactionLayer(user, { clock });
  let transport!: FakeTransport;
  layer.addTransport((events) => (transport = new FakeTransport(events, protocol)));
  return { clock, layer, transport, rec };
}

function outgoing(method: string, extra: string[] = []): SipRequest {
  return new SipRequest(method, 'sip:bob@192.0.2.20', [
    header('Max-Forwards', '70'),
    header('From', '<sip:alice@example.com>;tag=a1'),
    header('To', '<sip:bob@example.com>'),
    header('Call-ID', `call-${method}@test`),
    header('CSeq', `1 ${method}`),
    ...extra.map((e) => header(e.split(':')[0], e.slice(e.indexOf(':') + 1).trim())),
  ]);
}

function responseTo(sentText: string, status: number, toTag = 'b1'): string {
  const req = parseMessage(Buffer.from(sentText)) as SipRequest;
  return createResponse(req, status, { toTag }).toString().replace(/\r\n/g, '\n');
}

const dest = { protocol: 'udp' as const, address: '192.0.2.20', port: 5060 };

function incoming(method: string, branch = 'z9hG4bKabc', cseqMethod = method, extra = ''): string {
  return `${method} sip:bob@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5062;branch=${branch};rport
Max-Forwards: 70
From: <sip:alice@example.com>;tag=a1
To: <sip:bob@example.com>${extra}
Call-ID: in-1@test
CSeq: 1 ${cseqMethod}
Content-Length: 0

`;
}

describe('non-INVITE client transaction (RFC 3261 §17.1.2)', () => {
  it('MUST retransmit with Timer E doubling up to T2 and time out with Timer F over UDP', () => {
    const { clock, layer, transport } = setup();
    let timedOut = 0;
    const tx = layer.request(outgoing('OPTIONS'), dest, { onResponse() {}, onTimeout: () => timedOut++ });
    assert.equal(transport.sent.length, 1);
    const times: number[] = [];
    const start = clock.now();
    let last = 1;
    for (let t = 0; t < 40_000; t += 100) {
      clock.advance(100);
      if (transport.sent.length > last) {
        times.push(clock.now() - start);
        last = transport.sent.length;
      }
    }
    // E fires at 0.5, 1.5, 3.5, 7.5, 11.5, ... (intervals 500, 1000, 2000, 4000, 4000 ...)
    assert.deepEqual(times.slice(0, 5), [500, 1500, 3500, 7500, 11500]);
    assert.equal(timedOut, 1, 'Timer F fires once');
    assert.equal(tx.state, TransactionState.Terminated);
    assert.equal(layer.clientTransactionCount, 0);
  });

  it('MUST NOT retransmit over a reliable transport', () => {
    const { clock, layer, transport } = setup('tcp');
    layer.request(outgoing('OPTIONS'), { ...dest, protocol: 'tcp' }, { onResponse() {} });
    clock.advance(10_000);
    assert.equal(transport.sent.length, 1);
  });

  it('passes the final response to the TU, absorbs retransmissions, and ends after Timer K', async () => {
    const { clock, layer, transport } = setup();
    const got: number[] = [];
    const tx = layer.request(outgoing('OPTIONS'), dest, { onResponse: (r) => got.push(r.status) });
    await flush();
    const resp = responseTo(transport.sentText(0), 200);
    transport.inject(resp);
    transport.inject(resp);
    assert.deepEqual(got, [200]);
    assert.equal(tx.state, TransactionState.Completed);
    clock.advance(5000);
    assert.equal(tx.state, TransactionState.Terminated);
  });

  it('keeps retransmitting every T2 in Proceeding after a provisional response', async () => {
    const { clock, layer, transport } = setup();
    layer.request(outgoing('MESSAGE'), dest, { onResponse() {} });
    await flush();
    transport.inject(responseTo(transport.sentText(0), 100));
    const before = transport.sent.length;
    clock.advance(4000);
    assert.ok(transport.sent.length > before, 'retransmitted in Proceeding');
  });

  it('reports a transport error and terminates (§17.1.4)', async () => {
    const { layer, transport } = setup();
    transport.failSends = true;
    let errors = 0;
    const tx = layer.request(outgoing('OPTIONS'), dest, { onResponse() {}, onTransportError: () => errors++ });
    await flush();
    assert.equal(errors, 1);
    assert.equal(tx.state, TransactionState.Terminated);
  });
});

describe('INVITE client transaction (RFC 3261 §17.1.1, RFC 6026)', () => {
  it('MUST retransmit with Timer A doubling and stop on a provisional response', async () => {
    const { clock, layer, transport } = setup();
    layer.request(outgoing('INVITE'), dest, { onResponse() {} });
    clock.advance(500);
    assert.equal(transport.sent.length, 2);
    clock.advance(1000);
    assert.equal(transport.sent.length, 3);
    transport.inject(responseTo(transport.sentText(0), 180));
    clock.advance(30_000);
    assert.equal(transport.sent.length, 3);
  });

  it('MUST generate an ACK for a non-2xx final response and resend it on retransmissions', async () => {
    const { clock, layer, transport } = setup();
    const statuses: number[] = [];
    const tx = layer.request(outgoing('INVITE'), dest, { onResponse: (r) => statuses.push(r.status) });
    await flush();
    const busy = responseTo(transport.sentText(0), 486, 'callee-tag');
    transport.inject(busy);
    const ack = transport.lastText();
    assert.match(ack, /^ACK sip:bob@192\.0\.2\.20 SIP\/2\.0/);
    assert.match(ack, /To: <sip:bob@example\.com>;tag=callee-tag/);
    assert.match(ack, /CSeq: 1 ACK/);
    const inviteBranch = /branch=([^;\r\n]+)/.exec(transport.sentText(0))![1];
    assert.ok(ack.includes(`branch=${inviteBranch}`), 'ACK reuses the INVITE branch');
    const sentBefore = transport.sent.length;
    transport.inject(busy);
    assert.equal(transport.sent.length, sentBefore + 1, 'ACK resent');
    assert.deepEqual(statuses, [486], 'retransmission not passed up');
    clock.advance(32_000);
    assert.equal(tx.state, TransactionState.Terminated);
  });

  it('passes 2xx and its retransmissions to the TU in Accepted, ends after Timer M', async () => {
    const { clock, layer, transport } = setup();
    const statuses: number[] = [];
    const tx = layer.request(outgoing('INVITE'), dest, { onResponse: (r) => statuses.push(r.status) });
    await flush();
    const ok = responseTo(transport.sentText(0), 200);
    transport.inject(ok);
    transport.inject(ok);
    assert.deepEqual(statuses, [200, 200]);
    assert.equal(tx.state, TransactionState.Accepted);
    assert.ok(!transport.lastText().startsWith('ACK'), 'no ACK from the transaction for 2xx');
    clock.advance(32_000);
    assert.equal(tx.state, TransactionState.Terminated);
  });

  it('lets go of its request once answered, and a new TU takes over the 2xx retransmissions', async () => {
    const { layer, transport } = setup();
    const first: number[] = [];
    const tx = layer.request(outgoing('INVITE'), dest, { onResponse: (r) => first.push(r.status) }) as InviteClientTransaction;
    await flush();
    assert.equal(tx.request.method, 'INVITE');
    const ok = responseTo(transport.sentText(0), 200);
    transport.inject(ok);
    assert.throws(() => tx.request, /already released/, 'Accepted keeps no request for 64*T1');
    const later: number[] = [];
    tx.setUser({ onResponse: (r) => later.push(r.status) });
    transport.inject(ok);
    assert.deepEqual(first, [200]);
    assert.deepEqual(later, [200]);
  });

  it('times out with Timer B when nothing answers', () => {
    const { clock, layer } = setup();
    let timeouts = 0;
    layer.request(outgoing('INVITE'), dest, { onResponse() {}, onTimeout: () => timeouts++ });
    clock.advance(31_999);
    assert.equal(timeouts, 0);
    clock.advance(1);
    assert.equal(timeouts, 1);
  });

  it('§9.1: defers CANCEL until a provisional response and reuses the INVITE branch', async () => {
    const { layer, transport } = setup();
    const tx = layer.request(outgoing('INVITE'), dest, { onResponse() {} }) as InviteClientTransaction;
    await flush();
    assert.equal(layer.cancel(tx, [['Reason', 'SIP;cause=200;text="Call completed elsewhere"']]), true);
    assert.equal(transport.sent.length, 1, 'nothing sent before a provisional');
    transport.inject(responseTo(transport.sentText(0), 180));
    const cancel = transport.lastText();
    assert.match(cancel, /^CANCEL sip:bob@192\.0\.2\.20 SIP\/2\.0/);
    assert.match(cancel, /CSeq: 1 CANCEL/);
    assert.match(cancel, /Reason: SIP;cause=200;text="Call completed elsewhere"/);
    const inviteBranch = /branch=([^;\r\n]+)/.exec(transport.sentText(0))![1];
    assert.ok(cancel.includes(`branch=${inviteBranch}`));
  });
});

describe('INVITE client transaction after a CANCEL (RFC 3261 §9.1)', () => {
  it('gives up 64*T1 after the CANCEL when no final response comes: the TU sees a timeout, the layer forgets it', async () => {
    const { clock, layer, transport } = setup();
    let timeouts = 0;
    const tx = layer.request(outgoing('INVITE'), dest, { onResponse() {}, onTimeout: () => timeouts++ }) as InviteClientTransaction;
    await flush();
    transport.inject(responseTo(transport.sentText(0), 180));
    clock.advance(100_000); // rings for long: Timer B applies only in Calling
    assert.equal(tx.state, TransactionState.Proceeding);
    assert.equal(layer.cancel(tx), true);
    clock.advance(64 * 500 - 1);
    assert.equal(tx.state, TransactionState.Proceeding, 'still waiting for the 487');
    assert.equal(timeouts, 0);
    clock.advance(1);
    assert.equal(tx.state, TransactionState.Terminated);
    assert.equal(timeouts, 1);
    transport.inject(responseTo(transport.sentText(0), 487));
    assert.equal(timeouts, 1, 'a late 487 changes nothing');
  });

  it('a CANCEL deferred until the first provisional starts its 64*T1 then', async () => {
    const { clock, layer, transport } = setup();
    let timeouts = 0;
    const tx = layer.request(outgoing('INVITE'), dest, { onResponse() {}, onTimeout: () => timeouts++ }) as InviteClientTransaction;
    await flush();
    layer.cancel(tx);
    clock.advance(10_000);
    transport.inject(responseTo(transport.sentText(0), 180));
    clock.advance(64 * 500 - 1);
    assert.equal(timeouts, 0);
    clock.advance(1);
    assert.equal(timeouts, 1);
    assert.equal(tx.state, TransactionState.Terminated);
  });

  it('a 487 in time ends it as usual, with no timeout', async () => {
    const { clock, layer, transport } = setup();
    let timeouts = 0;
    const statuses: number[] = [];
    const tx = layer.request(outgoing('INVITE'), dest, { onResponse: (r) => statuses.push(r.status), onTimeout: () => timeouts++ }) as InviteClientTransaction;
    await flush();
    transport.inject(responseTo(transport.sentText(0), 180));
    layer.cancel(tx);
    transport.inject(responseTo(transport.sentText(0), 487));
    clock.advance(64 * 500 * 2);
    assert.deepEqual(statuses, [180, 487]);
    assert.equal(timeouts, 0);
  });
});

describe('non-INVITE server transaction (RFC 3261 §17.2.2)', () => {
  it('absorbs retransmissions in Trying and resends the final response afterwards', () => {
    const { clock, layer, transport, rec } = setup();
    void layer;
    transport.inject(incoming('OPTIONS'));
    transport.inject(incoming('OPTIONS'));
    assert.equal(rec.requests.length, 1, 'retransmission not passed to the TU');
    assert.equal(transport.sent.length, 0);
    const { request, tx } = rec.requests[0];
    tx.respond(createResponse(request, 200));
    assert.equal(transport.sent.length, 1);
    transport.inject(incoming('OPTIONS'));
    assert.equal(transport.sent.length, 2, 'final response resent');
    assert.deepEqual(transport.sent[1].data, transport.sent[0].data, 'the same bytes');
    assert.deepEqual(transport.sent[1].target, transport.sent[0].target, 'to the same place');
    assert.equal(tx.state, TransactionState.Terminated, 'over UDP the layer keeps only the response bytes');
    assert.equal(layer.completedTransactionCount, 1);
    clock.advance(32_000);
    transport.inject(incoming('OPTIONS'));
    assert.equal(transport.sent.length, 3, 'still absorbed and answered after Timer J (kept up to 2 x 64*T1)');
    clock.advance(64_000);
    assert.equal(layer.completedTransactionCount, 0);
    transport.inject(incoming('OPTIONS'));
    assert.equal(rec.requests.length, 2, 'after the cache rotated out the same branch is a new request');
  });

  it('sends responses to the source address and port when rport is requested (RFC 3581)', () => {
    const { layer, transport, rec } = setup();
    void layer;
    transport.inject(incoming('OPTIONS'), { address: '198.51.100.7', port: 40000 });
    const { request, tx } = rec.requests[0];
    assert.equal(request.via.received, '198.51.100.7');
    assert.equal(request.via.rport, 40000);
    tx.respond(createResponse(request, 200));
    assert.deepEqual([transport.sent[0].target.address, transport.sent[0].target.port], ['198.51.100.7', 40000]);
    assert.match(transport.sentText(0), /Via: SIP\/2\.0\/UDP 192\.0\.2\.10:5062;branch=z9hG4bKabc;rport=40000;received=198\.51\.100\.7/);
  });

  it('a received= the sender wrote itself does not choose where responses go (§18.2.1)', () => {
    const { transport, rec } = setup();
    for (const received of ['203.0.113.99', 'evil.example.com']) {
      transport.inject(incoming('OPTIONS', `z9hG4bK-${received}`).replace(';rport', `;received=${received}`));
      const { request, tx } = rec.requests.at(-1)!;
      assert.equal(request.via.received, undefined, 'sent-by is the source: no received');
      tx.respond(createResponse(request, 200));
      assert.deepEqual([transport.sent.at(-1)!.target.address, transport.sent.at(-1)!.target.port], ['192.0.2.10', 5062]);
    }
  });

  it('over TCP a response goes back on the connection, else to the sent-by port, not the ephemeral one (§18.2.2)', () => {
    const { transport, rec } = setup('tcp');
    transport.inject(incoming('OPTIONS').replace('SIP/2.0/UDP 192.0.2.10:5062', 'SIP/2.0/TCP 192.0.2.10:5070'), { address: '192.0.2.10', port: 40000 });
    const { request, tx } = rec.requests[0];
    tx.respond(createResponse(request, 200));
    const { address, port, connectionId } = transport.sent[0].target;
    assert.deepEqual({ address, port, connectionId }, { address: '192.0.2.10', port: 5070, connectionId: 'tcp:1' });
  });

  it('matches RFC 2543 retransmissions without the magic cookie', () => {
    const { transport, rec } = setup();
    transport.inject(incoming('OPTIONS', '1234'));
    transport.inject(incoming('OPTIONS', '1234'));
    assert.equal(rec.requests.length, 1);
  });
});

describe('INVITE server transaction (RFC 3261 §17.2.1, RFC 6026)', () => {
  it('an ACK for a 2xx that reuses the INVITE branch still reaches the core (RFC 6026 §7.1)', () => {
    const { transport, rec } = setup();
    transport.inject(incoming('INVITE'));
    const { request, tx } = rec.requests[0];
    tx.respond(createResponse(request, 200, { toTag: 'x' }));
    transport.inject(incoming('ACK', 'z9hG4bKabc', 'ACK', ';tag=x'));
    assert.equal(rec.acks.length, 1);
  });

  it('retransmits a non-2xx final with Timer G until the ACK, which it absorbs', () => {
    const { clock, transport, rec } = setup();
    transport.inject(incoming('INVITE'));
    const { request, tx } = rec.requests[0];
    tx.respond(createResponse(request, 486));
    clock.advance(500);
    clock.advance(1000);
    assert.equal(transport.sent.length, 3);
    transport.inject(incoming('ACK', 'z9hG4bKabc', 'ACK', ';tag=x'));
    assert.equal(rec.acks.length, 0, 'ACK for a non-2xx is absorbed');
    assert.equal(tx.state, TransactionState.Confirmed);
    clock.advance(10_000);
    assert.equal(transport.sent.length, 3);
    assert.equal(tx.state, TransactionState.Terminated);
  });

  it('reports Timer H when no ACK arrives', () => {
    const { clock, transport, rec } = setup();
    transport.inject(incoming('INVITE'));
    const { request, tx } = rec.requests[0];
    let timeouts = 0;
    tx.user = { onTimeout: () => timeouts++ };
    tx.respond(createResponse(request, 480));
    clock.advance(32_000);
    assert.equal(timeouts, 1);
    assert.equal(tx.state, TransactionState.Terminated);
  });

  it('resends the last provisional on an INVITE retransmission and absorbs it after 2xx', () => {
    const { transport, rec } = setup();
    transport.inject(incoming('INVITE'));
    const { request, tx } = rec.requests[0];
    tx.respond(createResponse(request, 180));
    transport.inject(incoming('INVITE'));
    assert.equal(transport.sent.length, 2);
    assert.match(transport.lastText(), /^SIP\/2\.0 180/);
    tx.respond(createResponse(request, 200));
    assert.equal(tx.state, TransactionState.Accepted);
    transport.inject(incoming('INVITE'));
    assert.equal(transport.sent.length, 3, 'INVITE retransmission absorbed in Accepted');
    assert.ok(tx.isFinal);
    assert.throws(() => tx.request, /already released/, 'Accepted keeps no request for Timer L');
    tx.respond(createResponse(request, 200));
    assert.equal(transport.sent.length, 4, 'a 2xx retransmission from the TU still goes out');
  });

  it('§9.2: a CANCEL is its own transaction and is matched to the INVITE it cancels', () => {
    const { transport, rec } = setup();
    transport.inject(incoming('INVITE'));
    transport.inject(incoming('CANCEL'));
    assert.equal(rec.cancels.length, 1);
    assert.equal(rec.cancels[0].invite, rec.requests[0].tx);
    transport.inject(incoming('CANCEL', 'z9hG4bKother'));
    assert.equal(rec.cancels[1].invite, undefined, 'no matching INVITE: the core answers 481');
  });

  it('passes an ACK for a 2xx (new branch) to the core', () => {
    const { transport, rec } = setup();
    transport.inject(incoming('ACK', 'z9hG4bKnew', 'ACK', ';tag=x'));
    assert.equal(rec.acks.length, 1);
  });
});

describe('malformed requests (RFC 3261 §8.2, §21.4.1)', () => {
  it('answers 400 with a reason phrase naming the problem', () => {
    const { transport, rec } = setup();
    transport.inject(incoming('OPTIONS').replace('CSeq: 1 OPTIONS', 'CSeq: x OPTIONS'));
    assert.equal(transport.sent.length, 1);
    assert.match(transport.sentText(0), /^SIP\/2\.0 400 Malformed CSeq header\r\n/);
    assert.match(transport.sentText(0), /Via: SIP\/2\.0\/UDP 192\.0\.2\.10:5062;branch=z9hG4bKabc;rport=5062;received=192\.0\.2\.10\r\n/, 'rport filled in (RFC 3581)');
    assert.equal(rec.parseErrors[0].answered, true);
    assert.equal(rec.requests.length, 0);
  });

  it('513 for a request over a limit once enough of it was read to answer (§21.5.14); 505 for SIP/7.0', () => {
    const { transport, rec } = setup();
    const many = Array.from({ length: 130 }, (_, i) => `X-Filler-${i}: ${i}`).join('\n');
    transport.inject(incoming('OPTIONS', 'z9hG4bKmany').replace('Content-Length: 0', `${many}\nContent-Length: 0`));
    assert.match(transport.sentText(0), /^SIP\/2\.0 513 Too many headers\r\n/);
    transport.inject(incoming('OPTIONS', 'z9hG4bKlong').replace('Content-Length: 0', `Subject: ${'x'.repeat(9000)}\nContent-Length: 0`));
    assert.match(transport.sentText(1), /^SIP\/2\.0 513 Header line too long\r\n/);
    transport.inject(incoming('OPTIONS', 'z9hG4bKv7').replace('OPTIONS sip:bob@127.0.0.1 SIP/2.0', 'OPTIONS sip:bob@127.0.0.1 SIP/7.0'));
    assert.match(transport.sentText(2), /^SIP\/2\.0 505 Version Not Supported\r\n/);
    assert.deepEqual(rec.parseErrors.map((e) => e.answered), [true, true, true]);
    assert.equal(rec.requests.length, 0);
  });

  it('drops what cannot be answered (no Via)', () => {
    const { transport, rec } = setup();
    transport.inject(incoming('OPTIONS').replace(/Via:.*\n/, ''));
    assert.equal(transport.sent.length, 0);
    assert.equal(rec.parseErrors[0].answered, false);
  });

  it('never answers a malformed ACK', () => {
    const { transport } = setup();
    transport.inject(incoming('ACK', 'z9hG4bKx', 'ACK').replace('Call-ID: in-1@test\n', ''));
    assert.equal(transport.sent.length, 0);
  });
});
