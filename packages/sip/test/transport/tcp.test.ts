import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { TransportError, TransportListenError } from '../../src/errors.js';
import { TcpTransport } from '../../src/transport/tcp.js';
import type { TcpTransportOptions } from '../../src/transport/tcp.js';
import { FakeClock } from '../../src/util/clock.js';
import { Recorder, rawClient, sipRequest, sipResponse } from './helpers.js';

const open: TcpTransport[] = [];
async function tcp(rec: Recorder, options: Partial<TcpTransportOptions> = {}, listen = true): Promise<TcpTransport> {
  const t = new TcpTransport({ address: '127.0.0.1', port: 0, ...options }, rec.events);
  open.push(t);
  if (listen) await t.listen();
  return t;
}
after(async () => {
  await Promise.all(open.map((t) => t.close()));
});

/** A port nothing listens on (bound, then released). */
async function closedPort(host = '127.0.0.1'): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, host, resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('TcpTransport', () => {
  it('round-trips, answering over the same connection (connectionId preserved)', async () => {
    const serverRec = new Recorder();
    const clientRec = new Recorder();
    const server = await tcp(serverRec);
    const client = await tcp(clientRec, {}, false); // outbound-only
    assert.ok(server.localPort > 0);
    assert.equal(server.reliable, true);

    const req = sipRequest({ body: 'v=0\r\n' });
    const out = await client.send({ address: '127.0.0.1', port: server.localPort }, req);
    assert.match(out.connectionId ?? '', /^tcp:\d+$/);
    assert.equal(out.remotePort, server.localPort);

    const got = await serverRec.nextMessage();
    assert.deepEqual(got.data, req);
    assert.equal(got.flow.protocol, 'tcp');
    assert.equal(got.flow.remotePort, out.localPort);
    assert.equal(got.flow.localPort, server.localPort);
    assert.ok(got.flow.connectionId && got.flow.connectionId !== out.connectionId, 'ids are unique per process');
    assert.ok(server.hasConnection(got.flow.connectionId));

    // The response goes back over the inbound connection, not a new one.
    const res = sipResponse(req);
    const back = await server.send({ address: got.flow.remoteAddress, port: got.flow.remotePort, connectionId: got.flow.connectionId }, res);
    assert.equal(back.connectionId, got.flow.connectionId);
    const reply = await clientRec.nextMessage();
    assert.deepEqual(reply.data, res);
    assert.equal(reply.flow.connectionId, out.connectionId);

    // Sending to the same address again reuses the connection (client side and server side).
    const again = await client.send({ address: '127.0.0.1', port: server.localPort }, sipRequest());
    assert.equal(again.connectionId, out.connectionId);
    assert.equal((await serverRec.nextMessage()).flow.connectionId, got.flow.connectionId);
    const byAddress = await server.send({ address: got.flow.remoteAddress, port: got.flow.remotePort }, sipRequest());
    assert.equal(byAddress.connectionId, got.flow.connectionId);
    await clientRec.nextMessage();
    assert.equal(server.connectionCount, 1);
    assert.equal(client.connectionCount, 1);
  });

  it('frames several messages per chunk and messages split across chunks', async () => {
    const rec = new Recorder();
    const server = await tcp(rec);
    const c = await rawClient('127.0.0.1', server.localPort);
    const a = sipRequest({ body: 'first' });
    const b = sipRequest({ body: 'second', compact: true });
    const d = sipRequest({ body: 'third' });
    const stream = Buffer.concat([a, b, d]);
    c.socket.write(stream.subarray(0, a.length + 10));
    const m1 = await rec.nextMessage();
    c.socket.write(stream.subarray(a.length + 10));
    const m2 = await rec.nextMessage();
    const m3 = await rec.nextMessage();
    assert.deepEqual([m1.data, m2.data, m3.data], [a, b, d]);
    assert.equal(new Set([m1, m2, m3].map((m) => m.flow.connectionId)).size, 1);
    c.socket.destroy();
  });

  it('answers a CRLFCRLF ping with a CRLF pong and swallows pongs (RFC 5626 §3.5.1)', async () => {
    const rec = new Recorder();
    const server = await tcp(rec);
    const c = await rawClient('127.0.0.1', server.localPort);
    c.socket.write('\r\n\r\n');
    assert.equal((await c.waitFor((b) => b.length >= 2)).toString(), '\r\n');
    c.socket.write('\r\n'); // a pong from the client: no reply, no message
    const m = sipRequest();
    c.socket.write(m);
    assert.deepEqual((await rec.nextMessage()).data, m);
    c.socket.write('\r\n\r\n');
    assert.equal((await c.waitFor((b) => b.length >= 4)).toString(), '\r\n\r\n');
    assert.equal(rec.messages.unread, 0);
    c.socket.destroy();
  });

  /** A server closing connections idle for 1000 ms on a fake clock, and a client that has sent one request. */
  async function idleTimeoutSetup() {
    const clock = new FakeClock();
    const rec = new Recorder();
    const server = await tcp(rec, { clock, idleTimeoutMs: 1000 });
    const c = await rawClient('127.0.0.1', server.localPort);
    c.socket.write(sipRequest());
    const { flow } = await rec.nextMessage();
    return { clock, rec, server, c, flow };
  }

  it('closes idle connections on the injected clock; traffic and keep-alives reset the timer', async () => {
    const { clock, rec, server, c, flow } = await idleTimeoutSetup();
    const id = flow.connectionId ?? '';

    clock.advance(800);
    c.socket.write('\r\n\r\n'); // keep-alive at t=800
    await c.waitFor((b) => b.length >= 2);
    clock.advance(800); // t=1600: 800 ms since the keep-alive
    assert.ok(server.hasConnection(id), 'keep-alive reset the idle timer');
    await server.send({ address: flow.remoteAddress, port: flow.remotePort, connectionId: id }, sipResponse(sipRequest())); // t=1600
    clock.advance(999);
    assert.ok(server.hasConnection(id), 'outbound traffic reset the idle timer');
    clock.advance(1);
    const closed = await rec.nextClosed();
    assert.equal(closed.connectionId, id);
    await c.closed;
    assert.equal(server.hasConnection(id), false);
    await rec.nextWarning('TRANSPORT_IDLE_CLOSE');
  });

  it('bytes of an unfinished message do not reset the idle timer (slowloris)', async () => {
    const { clock, rec, server, c, flow } = await idleTimeoutSetup();
    const partial = 'OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKslow\r\n';
    for (let i = 0; i < 12; i++) {
      c.socket.write(partial.slice(i * 5, i * 5 + 5)); // 5 bytes every 100 ms, never a whole message
      await new Promise((r) => setTimeout(r, 5));
      clock.advance(100);
    }
    assert.equal(server.hasConnection(flow.connectionId ?? ''), false, 'closed 1000 ms after its last complete message');
    assert.equal((await rec.nextClosed()).connectionId, flow.connectionId);
  });

  it('refuses inbound connections beyond maxConnections', async () => {
    const rec = new Recorder();
    const server = await tcp(rec, { maxConnections: 2 });
    const a = await rawClient('127.0.0.1', server.localPort);
    const b = await rawClient('127.0.0.1', server.localPort);
    a.socket.write(sipRequest());
    b.socket.write(sipRequest());
    await rec.nextMessage();
    await rec.nextMessage();
    const third = await rawClient('127.0.0.1', server.localPort);
    await third.closed;
    await rec.nextWarning('TRANSPORT_TOO_MANY_CONNECTIONS');
    assert.equal(server.connectionCount, 2);
    a.socket.destroy();
    b.socket.destroy();
  });

  it('closes the connection on an oversized message or a missing Content-Length', async () => {
    const rec = new Recorder();
    const server = await tcp(rec, { maxMessageBytes: 2048 });
    const c1 = await rawClient('127.0.0.1', server.localPort);
    c1.socket.write(sipRequest({ body: 'x'.repeat(4000) }));
    const w1 = await rec.nextWarning('TRANSPORT_FRAMING_ERROR');
    assert.match(w1.message, /larger than/);
    await c1.closed;
    assert.equal((await rec.nextClosed()).connectionId, w1.flow?.connectionId);

    const c2 = await rawClient('127.0.0.1', server.localPort);
    c2.socket.write('OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n');
    const w2 = await rec.nextWarning('TRANSPORT_FRAMING_ERROR');
    assert.match(w2.message, /Missing Content-Length/);
    await c2.closed;
    assert.equal(rec.messages.unread, 0);
  });

  it('rejects with TransportError when the port is closed or the connection is gone', async () => {
    const rec = new Recorder();
    const client = await tcp(rec, {}, false);
    const port = await closedPort();
    const err = await client.send({ address: '127.0.0.1', port }, sipRequest()).then(
      () => assert.fail('should reject'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof TransportError, String(err));
    assert.equal(err.code, 'SIP_ERR_TRANSPORT');
    assert.match(err.message, /ECONNREFUSED/);

    // The peer goes away: onFlowClosed, then a connectionOnly send is refused...
    const serverRec = new Recorder();
    const server = await tcp(serverRec);
    const flow = await client.send({ address: '127.0.0.1', port: server.localPort }, sipRequest());
    const inbound = (await serverRec.nextMessage()).flow;
    await server.closeConnection(inbound.connectionId ?? '');
    assert.equal((await rec.nextClosed()).connectionId, flow.connectionId);
    assert.equal(client.hasConnection(flow.connectionId ?? ''), false);
    await assert.rejects(
      client.send({ address: '127.0.0.1', port: server.localPort, connectionId: flow.connectionId, connectionOnly: true }, sipRequest()),
      TransportError,
    );
    // ...while a plain send opens a new connection (RFC 3261 §18.2.2).
    const fresh = await client.send({ address: '127.0.0.1', port: server.localPort, connectionId: flow.connectionId }, sipRequest());
    assert.notEqual(fresh.connectionId, flow.connectionId);
    await serverRec.nextMessage();
  });

  it('opens one connection for concurrent sends to the same address', async () => {
    const serverRec = new Recorder();
    const server = await tcp(serverRec);
    const client = await tcp(new Recorder(), {}, false);
    const flows = await Promise.all([1, 2, 3, 4, 5].map(() => client.send({ address: '127.0.0.1', port: server.localPort }, sipRequest())));
    assert.equal(new Set(flows.map((f) => f.connectionId)).size, 1);
    for (let i = 0; i < 5; i++) await serverRec.nextMessage();
    assert.equal(server.connectionCount, 1);
  });

  it('works over IPv6 ::1', async () => {
    const serverRec = new Recorder();
    const clientRec = new Recorder();
    const server = await tcp(serverRec, { address: '::1' });
    const client = await tcp(clientRec, { address: '::1' });
    assert.equal(server.localAddress, '::1');
    const req = sipRequest();
    const out = await client.send({ address: '::1', port: server.localPort }, req);
    assert.equal(out.remoteAddress, '::1');
    const got = await serverRec.nextMessage();
    assert.equal(got.flow.remoteAddress, '::1');
    await server.send({ address: got.flow.remoteAddress, port: got.flow.remotePort, connectionId: got.flow.connectionId }, sipResponse(req));
    assert.equal((await clientRec.nextMessage()).flow.connectionId, out.connectionId);
    await assert.rejects(client.send({ address: '::1', port: await closedPort('::1') }, req), TransportError);
  });

  it('close() closes the listener and every connection, then refuses sends', async () => {
    const serverRec = new Recorder();
    const clientRec = new Recorder();
    const server = await tcp(serverRec);
    const client = await tcp(clientRec, {}, false);
    const port = server.localPort;
    const out = await client.send({ address: '127.0.0.1', port }, sipRequest());
    await serverRec.nextMessage();
    await server.close();
    assert.equal(server.connectionCount, 0);
    assert.equal((await serverRec.nextClosed()).localPort, port);
    assert.equal((await clientRec.nextClosed()).connectionId, out.connectionId);
    await assert.rejects(server.send({ address: '127.0.0.1', port: out.localPort }, sipRequest()), TransportError);
    await assert.rejects(client.send({ address: '127.0.0.1', port }, sipRequest()), TransportError); // nobody listens now
    await server.close(); // idempotent
  });

  it('a busy port is a TransportListenError', async () => {
    const rec = new Recorder();
    const a = await tcp(rec);
    const b = await tcp(rec, { port: a.localPort }, false);
    await assert.rejects(b.listen(), TransportListenError);
  });

  it('a throwing onMessage handler is reported, not fatal', async () => {
    const warnings: string[] = [];
    let calls = 0;
    const server = new TcpTransport(
      { address: '127.0.0.1', port: 0 },
      {
        onMessage: () => {
          calls++;
          throw new Error('boom');
        },
        onWarning: (w) => warnings.push(w.code),
      },
    );
    open.push(server);
    await server.listen();
    const c = await rawClient('127.0.0.1', server.localPort);
    c.socket.write(Buffer.concat([sipRequest(), sipRequest()]));
    c.socket.write('\r\n\r\n');
    await c.waitFor((b) => b.toString() === '\r\n');
    assert.equal(calls, 2);
    assert.deepEqual(warnings, ['TRANSPORT_HANDLER_ERROR', 'TRANSPORT_HANDLER_ERROR']);
    c.socket.destroy();
  });
});
