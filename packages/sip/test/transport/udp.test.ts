import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, describe, it } from 'node:test';
import { TransportError, TransportListenError } from '../../src/errors.js';
import type { UdpIo } from '../../src/transport/datagram-socket.js';
import { UdpTransport } from '../../src/transport/udp.js';
import { Recorder, sipRequest, sipResponse } from './helpers.js';

const open: UdpTransport[] = [];
after(async () => {
  await Promise.all(open.map((t) => t.close()));
});

// Every behaviour holds for both datagram I/O implementations.
for (const io of ['dgram', 'batch'] as const satisfies UdpIo[]) describeUdp(io);

function describeUdp(io: 'dgram' | 'batch'): void {
  async function udp(address: string, rec: Recorder, extra: Partial<ConstructorParameters<typeof UdpTransport>[0]> = {}): Promise<UdpTransport> {
    const t = new UdpTransport({ address, port: 0, io, ...extra }, rec.events);
    open.push(t);
    await t.listen();
    assert.equal(t.io, io);
    return t;
  }

  describe(`UdpTransport (${io})`, () => {
    it('binds port 0, reports the real port, and round-trips a request and a response', async () => {
      const a = new Recorder();
      const b = new Recorder();
      const ta = await udp('127.0.0.1', a);
      const tb = await udp('127.0.0.1', b);
      assert.ok(ta.localPort > 0 && tb.localPort > 0 && ta.localPort !== tb.localPort);
      assert.equal(ta.localAddress, '127.0.0.1');
      assert.equal(ta.reliable, false);

      const req = sipRequest({ body: 'hi' });
      const sent = await ta.send({ address: '127.0.0.1', port: tb.localPort }, req);
      assert.deepEqual(sent, { protocol: 'udp', localAddress: '127.0.0.1', localPort: ta.localPort, remoteAddress: '127.0.0.1', remotePort: tb.localPort });
      const got = await b.nextMessage();
      assert.deepEqual(got.data, req);
      assert.equal(got.flow.protocol, 'udp');
      assert.equal(got.flow.remotePort, ta.localPort);
      assert.equal(got.flow.connectionId, undefined);

      const res = sipResponse(req);
      await tb.send({ address: got.flow.remoteAddress, port: got.flow.remotePort }, res);
      assert.deepEqual((await a.nextMessage()).data, res);
      assert.equal(ta.hasConnection('udp:1'), false);
    });

    it('works over IPv6 ::1', async () => {
      const a = new Recorder();
      const b = new Recorder();
      const ta = await udp('::1', a);
      const tb = await udp('::1', b);
      assert.equal(ta.localAddress, '::1');
      await ta.send({ address: '::1', port: tb.localPort }, sipRequest());
      const got = await b.nextMessage();
      assert.equal(got.flow.remoteAddress, '::1');
      assert.equal(got.flow.remotePort, ta.localPort);
      await tb.send({ address: '[::1]', port: ta.localPort }, sipResponse(got.data));
      assert.match((await a.nextMessage()).data.toString(), /^SIP\/2.0 200 OK/);
      // An IPv4 socket cannot reach an IPv6 peer: a TransportError, not a crash.
      const v4 = await udp('127.0.0.1', new Recorder());
      await assert.rejects(v4.send({ address: '::1', port: tb.localPort }, sipRequest()), TransportError);
    });

    it('drops oversized datagrams with a warning and ignores CRLF keep-alives', async () => {
      const rec = new Recorder();
      const t = await udp('127.0.0.1', rec, { maxMessageBytes: 600 });
      const client = createSocket('udp4');
      after(() => client.close());
      const send = (b: Buffer): Promise<void> =>
        new Promise((resolve, reject) => client.send(b, t.localPort, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
      await send(sipRequest({ body: 'x'.repeat(1000) }));
      const w = await rec.nextWarning('TRANSPORT_OVERSIZED');
      assert.match(w.message, /limit 600/);
      await send(Buffer.from('\r\n\r\n'));
      await send(Buffer.from('\r\n'));
      const small = sipRequest({ body: 'small' });
      await send(small);
      // Datagrams from one socket over loopback arrive in order: the next message is `small`.
      assert.deepEqual((await rec.nextMessage()).data, small);
      assert.equal(rec.messages.unread, 0);
    });

    it('answers a STUN Binding request with the reflexive address (RFC 5626 keep-alive)', async () => {
      const t = await udp('127.0.0.1', new Recorder());
      const client = createSocket('udp4');
      after(() => client.close());
      await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
      const tid = Buffer.from('0123456789ab');
      const request = Buffer.concat([Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]), tid]);
      const response = new Promise<Buffer>((resolve) => client.once('message', (m) => resolve(m)));
      client.send(request, t.localPort, '127.0.0.1');
      const r = await response;
      assert.equal(r.readUInt16BE(0), 0x0101);
      assert.deepEqual(r.subarray(8, 20), tid);
      assert.equal(r.readUInt16BE(20), 0x0020); // XOR-MAPPED-ADDRESS
      assert.equal(r.readUInt16BE(26) ^ 0x2112, client.address().port);
      assert.equal((r.readUInt32BE(28) ^ 0x2112a442) >>> 0, 0x7f000001);
    });

    it('send before listen / after close rejects with TransportError; a busy port is a TransportListenError', async () => {
      const rec = new Recorder();
      const idle = new UdpTransport({ address: '127.0.0.1', port: 0, io }, rec.events);
      await assert.rejects(idle.send({ address: '127.0.0.1', port: 9 }, sipRequest()), TransportError);
      const t = await udp('127.0.0.1', rec);
      const clash = new UdpTransport({ address: '127.0.0.1', port: t.localPort, io }, rec.events);
      await assert.rejects(clash.listen(), (e: unknown) => e instanceof TransportListenError && /EADDRINUSE/.test(e.message));
      await t.close();
      await t.close(); // idempotent
      await assert.rejects(t.send({ address: '127.0.0.1', port: 9 }, sipRequest()), TransportError);
    });

    it('sets large socket buffers (as far as the kernel allows)', async () => {
      const t = await udp('127.0.0.1', new Recorder(), { recvBufferSize: 1 << 20, sendBufferSize: 1 << 20 });
      const sizes = t.bufferSizes;
      assert.ok(sizes && sizes.recv >= 200_000 && sizes.send >= 200_000, JSON.stringify(sizes));
    });

    it('a dual-stack socket on :: hears IPv4 peers as plain IPv4 and answers them', async () => {
      const rec = new Recorder();
      const t = await udp('::', rec);
      const client = createSocket('udp4');
      after(() => client.close());
      await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
      const reply = new Promise<Buffer>((resolve) => client.once('message', (m) => resolve(m)));
      const req = sipRequest();
      client.send(req, t.localPort, '127.0.0.1');
      const got = await rec.nextMessage();
      assert.equal(got.flow.remoteAddress, '127.0.0.1');
      assert.equal(got.flow.remotePort, client.address().port);
      await t.send({ address: got.flow.remoteAddress, port: got.flow.remotePort }, sipResponse(got.data));
      assert.match((await reply).toString(), /^SIP\/2.0 200 OK/);
    });

    it('sends to a host name after resolving it', async () => {
      const a = new Recorder();
      const b = new Recorder();
      const ta = await udp('127.0.0.1', a);
      const tb = await udp('127.0.0.1', b);
      await ta.send({ address: 'localhost', port: tb.localPort }, sipRequest());
      assert.equal((await b.nextMessage()).flow.remotePort, ta.localPort);
    });

    it(io === 'batch' ? 'sendNow hands a datagram to the kernel at once' : 'sendNow declines: node:dgram always completes later', async () => {
      const a = new Recorder();
      const b = new Recorder();
      const ta = await udp('127.0.0.1', a);
      const tb = await udp('127.0.0.1', b);
      const req = sipRequest();
      assert.equal(ta.sendNow('127.0.0.1', tb.localPort, req), io === 'batch');
      if (io === 'batch') assert.deepEqual((await b.nextMessage()).data, req);
      assert.equal(ta.sendNow('::1', tb.localPort, req), false, 'an IPv6 peer from an IPv4 socket: left to send(), which reports it');
      await ta.close();
      assert.equal(ta.sendNow('127.0.0.1', tb.localPort, req), false);
    });

    it('runs the microtasks a message queued before the next datagram, even within one read batch', async () => {
      const order: string[] = [];
      const done = new Promise<void>((resolve) => {
        const events = {
          onMessage: (m: { data: Buffer }) => {
            const n = m.data.toString().match(/n=(\d+)/)![1];
            order.push(`message ${n}`);
            queueMicrotask(() => {
              order.push(`microtask ${n}`);
              if (order.length === 8) resolve();
            });
          },
        };
        const t = new UdpTransport({ address: '127.0.0.1', port: 0, io }, events);
        open.push(t);
        void t.listen().then(() => {
          assert.equal(t.io, io);
          const client = createSocket('udp4');
          after(() => client.close());
          // Sent in one turn: all four wait in the socket together and arrive in one recvmmsg.
          for (let i = 0; i < 4; i++) client.send(sipRequest({ body: `n=${i}` }), t.localPort, '127.0.0.1');
        });
      });
      await done;
      assert.deepEqual(order, [0, 1, 2, 3].flatMap((n) => [`message ${n}`, `microtask ${n}`]));
    });

    it('a handler that closes the transport mid-batch stops delivery cleanly', async () => {
      const seen: string[] = [];
      let t: UdpTransport | undefined;
      const closed = new Promise<void>((resolve) => {
        t = new UdpTransport({ address: '127.0.0.1', port: 0, io }, {
          onMessage: (m) => {
            seen.push(m.data.toString().match(/n=(\d+)/)![1]);
            void t!.close().then(resolve);
          },
        });
      });
      await t!.listen();
      const client = createSocket('udp4');
      after(() => client.close());
      for (let i = 0; i < 5; i++) client.send(sipRequest({ body: `n=${i}` }), t!.localPort, '127.0.0.1');
      await closed;
      await new Promise((r) => setTimeout(r, 50)); // anything still queued would arrive now
      assert.deepEqual(seen, ['0']);
      await assert.rejects(t!.send({ address: '127.0.0.1', port: 9 }, sipRequest()), TransportError);
    });

    it('delivers a burst of datagrams in order, each as its own message', async () => {
      const rec = new Recorder();
      const t = await udp('127.0.0.1', rec);
      const client = createSocket('udp4');
      after(() => client.close());
      const count = 300; // more than one recvmmsg batch (32) and more than one wake-up's rounds
      const sent: Buffer[] = [];
      for (let i = 0; i < count; i++) {
        const req = sipRequest({ body: `n=${i};${'x'.repeat(i % 97)}` });
        sent.push(req);
        client.send(req, t.localPort, '127.0.0.1');
      }
      for (let i = 0; i < count; i++) assert.deepEqual((await rec.nextMessage()).data, sent[i], `datagram ${i}`);
    });
  });
}
