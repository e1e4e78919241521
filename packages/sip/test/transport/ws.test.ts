import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import type { ClientOptions } from 'ws';
import { TransportError, TransportListenError } from '../../src/errors.js';
import { WsTransport } from '../../src/transport/ws.js';
import type { WsTransportOptions } from '../../src/transport/ws.js';
import { FakeClock } from '../../src/util/clock.js';
import { makeCertificate, Recorder, sipRequest, sipResponse } from './helpers.js';
import type { TestCertificate } from './helpers.js';

let cert: TestCertificate;
const open: Array<{ close(): unknown }> = [];
before(() => {
  cert = makeCertificate();
});
after(async () => {
  await Promise.all(open.map((t) => t.close()));
  cert.cleanup();
});

async function wsTransport(rec: Recorder, options: Partial<WsTransportOptions> = {}, listen = true): Promise<WsTransport> {
  const t = new WsTransport({ address: '127.0.0.1', port: 0, ...options }, rec.events);
  open.push(t);
  if (listen) await t.listen();
  return t;
}

interface Client {
  ws: WebSocket;
  messages: Array<{ data: Buffer; isBinary: boolean }>;
  next(): Promise<{ data: Buffer; isBinary: boolean }>;
  closed: Promise<number>;
}

/** A plain `ws` client (what a browser SIP stack does), requiring subprotocol "sip". */
async function wsClient(url: string, protocols: string | string[] = 'sip', options: ClientOptions = {}): Promise<Client> {
  const ws = new WebSocket(url, protocols, options);
  open.push({ close: () => ws.terminate() });
  const messages: Client['messages'] = [];
  const waiters: Array<(m: { data: Buffer; isBinary: boolean }) => void> = [];
  let read = 0;
  ws.on('message', (data, isBinary) => {
    messages.push({ data: data as Buffer, isBinary });
    waiters.shift()?.(messages[read++]);
  });
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => {});
  return {
    ws,
    messages,
    closed,
    next: () => (read < messages.length ? Promise.resolve(messages[read++]) : new Promise((resolve) => waiters.push(resolve))),
  };
}

describe('WsTransport (RFC 7118)', () => {
  it('ws: round trip with a ws client; subprotocol sip selected; reply over the same connection', async () => {
    const rec = new Recorder();
    const server = await wsTransport(rec);
    assert.equal(server.protocol, 'ws');
    const c = await wsClient(`ws://127.0.0.1:${server.localPort}/`);
    assert.equal(c.ws.protocol, 'sip');
    const req = sipRequest({ method: 'REGISTER' });
    c.ws.send(req.toString()); // a text frame
    const got = await rec.nextMessage();
    assert.deepEqual(got.data, req);
    assert.equal(got.flow.protocol, 'ws');
    assert.match(got.flow.connectionId ?? '', /^ws:\d+$/);
    assert.equal(got.flow.remotePort, (c.ws as unknown as { _socket: { localPort: number } })._socket.localPort);

    const res = sipResponse(req);
    const flow = await server.send({ address: got.flow.remoteAddress, port: got.flow.remotePort, connectionId: got.flow.connectionId }, res);
    assert.equal(flow.connectionId, got.flow.connectionId);
    const reply = await c.next();
    assert.deepEqual(reply.data, res);
    assert.equal(reply.isBinary, false, 'SIP text goes out as a text frame');

    // A binary frame is one message too; CRLF-only messages are keep-alives, and a double
    // CRLF ping gets a CRLF pong (RFC 5626 §3.5.1), as on TCP/TLS.
    c.ws.send('\r\n\r\n');
    assert.equal((await c.next()).data.toString(), '\r\n');
    c.ws.send(req, { binary: true });
    const bin = await rec.nextMessage();
    assert.deepEqual(bin.data, req);
    assert.equal(rec.messages.unread, 0);

    c.ws.close();
    assert.equal((await rec.nextClosed()).connectionId, got.flow.connectionId);
  });

  it('refuses handshakes that do not offer subprotocol sip, and plain HTTP requests', async () => {
    const rec = new Recorder();
    const server = await wsTransport(rec);
    for (const protocols of [[], ['chat'], ['SIP']] as string[][]) {
      await assert.rejects(wsClient(`ws://127.0.0.1:${server.localPort}`, protocols), /Unexpected server response: 400/);
      await rec.nextWarning('TRANSPORT_WS_NO_SIP');
    }
    // Several offered, sip among them: sip is selected.
    const ok = await wsClient(`ws://127.0.0.1:${server.localPort}`, ['chat', 'sip']);
    assert.equal(ok.ws.protocol, 'sip');
    const status = await new Promise<number | undefined>((resolve, reject) => {
      request({ host: '127.0.0.1', port: server.localPort, path: '/' }, (res) => {
        res.resume();
        resolve(res.statusCode);
      })
        .on('error', reject)
        .end();
    });
    assert.equal(status, 426);
    assert.equal(server.connectionCount, 1);
  });

  it('ws: transport to transport, outbound connection on demand, reused for the answer', async () => {
    const serverRec = new Recorder();
    const clientRec = new Recorder();
    const server = await wsTransport(serverRec);
    const client = await wsTransport(clientRec, {}, false);
    const req = sipRequest();
    const out = await client.send({ address: '127.0.0.1', port: server.localPort }, req);
    assert.equal(out.protocol, 'ws');
    assert.equal(out.remotePort, server.localPort);
    assert.ok(out.localPort > 0);
    const got = await serverRec.nextMessage();
    assert.equal(got.flow.remotePort, out.localPort);
    await server.send({ address: got.flow.remoteAddress, port: got.flow.remotePort, connectionId: got.flow.connectionId }, sipResponse(req));
    assert.equal((await clientRec.nextMessage()).flow.connectionId, out.connectionId);
    const again = await client.send({ address: '127.0.0.1', port: server.localPort }, req);
    assert.equal(again.connectionId, out.connectionId);
  });

  it('ws client side refuses a server that does not select sip, and a closed port', async () => {
    const plain = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => false });
    open.push({ close: () => new Promise((r) => plain.close(r)) });
    await new Promise<void>((resolve) => plain.once('listening', () => resolve()));
    const port = (plain.address() as { port: number }).port;
    const client = await wsTransport(new Recorder(), {}, false);
    await assert.rejects(client.send({ address: '127.0.0.1', port }, sipRequest()), (e: unknown) => {
      assert.ok(e instanceof TransportError);
      assert.match(e.message, /subprotocol/);
      return true;
    });
    await new Promise<void>((resolve) => plain.close(() => resolve()));
    await assert.rejects(client.send({ address: '127.0.0.1', port }, sipRequest()), TransportError);
    assert.equal(client.connectionCount, 0);
  });

  it('closes the connection on an oversized message (1009)', async () => {
    const rec = new Recorder();
    const server = await wsTransport(rec, { maxMessageBytes: 1000 });
    const c = await wsClient(`ws://127.0.0.1:${server.localPort}`);
    c.ws.send(sipRequest({ body: 'x'.repeat(2000) }).toString());
    assert.equal(await c.closed, 1009);
    await rec.nextWarning('TRANSPORT_OVERSIZED');
    await rec.nextClosed();
    assert.equal(rec.messages.unread, 0);
  });

  it('closes idle connections on the injected clock', async () => {
    const clock = new FakeClock();
    const rec = new Recorder();
    const server = await wsTransport(rec, { clock, idleTimeoutMs: 5000 });
    const c = await wsClient(`ws://127.0.0.1:${server.localPort}`);
    c.ws.send(sipRequest().toString());
    const { flow } = await rec.nextMessage();
    clock.advance(4000);
    c.ws.send('\r\n\r\n'); // keep-alive
    await new Promise<void>((resolve) => {
      c.ws.ping();
      c.ws.once('pong', () => resolve()); // the keep-alive was processed before the pong
    });
    clock.advance(4000);
    assert.ok(server.hasConnection(flow.connectionId ?? ''));
    clock.advance(1000);
    assert.equal(await c.closed, 1000);
    assert.equal((await rec.nextClosed()).connectionId, flow.connectionId);
  });

  it('wss: round trip with a ws client and between transports, certificate verified', async () => {
    const rec = new Recorder();
    const tlsFiles = { certFile: cert.certFile, keyFile: cert.keyFile };
    const server = await wsTransport(rec, { secure: true, tls: tlsFiles });
    assert.equal(server.protocol, 'wss');
    const ca = readFileSync(cert.certFile);
    const c = await wsClient(`wss://127.0.0.1:${server.localPort}`, 'sip', { ca });
    assert.equal(c.ws.protocol, 'sip');
    const req = sipRequest();
    c.ws.send(req.toString());
    const got = await rec.nextMessage();
    assert.equal(got.flow.protocol, 'wss');
    assert.match(got.flow.connectionId ?? '', /^wss:\d+$/);
    await server.send({ address: got.flow.remoteAddress, port: got.flow.remotePort, connectionId: got.flow.connectionId }, sipResponse(req));
    assert.match((await c.next()).data.toString(), /^SIP\/2.0 200 OK/);

    const clientRec = new Recorder();
    const client = await wsTransport(clientRec, { secure: true, tls: { caFile: cert.certFile } }, false);
    const out = await client.send({ address: '127.0.0.1', port: server.localPort }, req);
    assert.equal(out.protocol, 'wss');
    const got2 = await rec.nextMessage();
    await server.send({ address: got2.flow.remoteAddress, port: got2.flow.remotePort, connectionId: got2.flow.connectionId }, sipResponse(req));
    assert.equal((await clientRec.nextMessage()).flow.connectionId, out.connectionId);

    const untrusting = await wsTransport(new Recorder(), { secure: true }, false);
    await assert.rejects(untrusting.send({ address: '127.0.0.1', port: server.localPort }, req), TransportError);
    await assert.rejects(wsTransport(new Recorder(), { secure: true, tls: {} }), TransportListenError);
  });

  it('works over IPv6 ::1 and close() ends every connection', async () => {
    const rec = new Recorder();
    const server = await wsTransport(rec, { address: '::1' });
    const c = await wsClient(`ws://[::1]:${server.localPort}`);
    c.ws.send(sipRequest().toString());
    assert.equal((await rec.nextMessage()).flow.remoteAddress, '::1');
    await server.close();
    assert.equal(await c.closed, 1000);
    await rec.nextClosed();
    await assert.rejects(server.send({ address: '::1', port: 5060 }, sipRequest()), TransportError);
  });
});
