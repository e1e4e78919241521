import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { connect } from 'node:tls';
import { TransportError, TransportListenError } from '../../src/errors.js';
import { TlsTransport } from '../../src/transport/tls.js';
import type { TlsTransportOptions } from '../../src/transport/tls.js';
import { FakeClock } from '../../src/util/clock.js';
import { makeCertificate } from './helpers.js';
import type { TestCertificate } from './helpers.js';
import { Recorder, sipRequest, sipResponse } from './helpers.js';

let cert: TestCertificate;
const open: TlsTransport[] = [];
before(() => {
  cert = makeCertificate();
});
after(async () => {
  await Promise.all(open.map((t) => t.close()));
  cert.cleanup();
});

async function tls(rec: Recorder, options: Partial<TlsTransportOptions> = {}, listen = true): Promise<TlsTransport> {
  const t = new TlsTransport({ address: '127.0.0.1', port: 0, tls: { certFile: cert.certFile, keyFile: cert.keyFile, caFile: cert.certFile }, ...options }, rec.events);
  open.push(t);
  if (listen) await t.listen();
  return t;
}

describe('TlsTransport', () => {
  it('round-trips over TLS with a verified self-signed certificate, answering on the same connection', async () => {
    const serverRec = new Recorder();
    const clientRec = new Recorder();
    const server = await tls(serverRec);
    // A client that trusts only our test CA and has no certificate of its own.
    const client = await tls(clientRec, { tls: { caFile: cert.certFile } }, false);
    const req = sipRequest({ body: 'over tls' });
    const out = await client.send({ address: '127.0.0.1', port: server.localPort }, req);
    assert.match(out.connectionId ?? '', /^tls:\d+$/);
    assert.equal(out.protocol, 'tls');
    const got = await serverRec.nextMessage();
    assert.deepEqual(got.data, req);
    assert.equal(got.flow.protocol, 'tls');
    await server.send({ address: got.flow.remoteAddress, port: got.flow.remotePort, connectionId: got.flow.connectionId }, sipResponse(req));
    const reply = await clientRec.nextMessage();
    assert.equal(reply.flow.connectionId, out.connectionId);
    assert.equal(server.connectionCount, 1);
  });

  it('verifies the server name: localhost matches the certificate, another name does not', async () => {
    const server = await tls(new Recorder());
    const client = await tls(new Recorder(), { tls: { caFile: cert.certFile } }, false);
    await client.send({ address: '127.0.0.1', port: server.localPort, serverName: 'localhost' }, sipRequest());
    const other = await tls(new Recorder(), { tls: { caFile: cert.certFile } }, false);
    await assert.rejects(other.send({ address: '127.0.0.1', port: server.localPort, serverName: 'sip.example.com' }, sipRequest()), (e: unknown) => {
      assert.ok(e instanceof TransportError);
      assert.match(e.message, /ERR_TLS_CERT_ALTNAME_INVALID|does not match/);
      return true;
    });
  });

  it('refuses an untrusted server unless rejectUnauthorized is false', async () => {
    const serverRec = new Recorder();
    const server = await tls(serverRec);
    const strict = await tls(new Recorder(), { tls: {} }, false); // system CAs only
    await assert.rejects(strict.send({ address: '127.0.0.1', port: server.localPort }, sipRequest()), (e: unknown) => {
      assert.ok(e instanceof TransportError);
      assert.match(e.message, /self-signed|SELF_SIGNED/i);
      return true;
    });
    assert.equal(strict.connectionCount, 0);
    await serverRec.nextWarning('TRANSPORT_TLS_ERROR');
    const lax = await tls(new Recorder(), { tls: { rejectUnauthorized: false } }, false);
    await lax.send({ address: '127.0.0.1', port: server.localPort }, sipRequest());
    await serverRec.nextMessage();
  });

  it('answers a CRLF keep-alive ping over TLS', async () => {
    const server = await tls(new Recorder());
    const socket = connect({ host: '127.0.0.1', port: server.localPort, ca: readFileSync(cert.certFile) });
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    const pong = new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(d.toString())));
    socket.write('\r\n\r\n');
    assert.equal(await pong, '\r\n');
    socket.destroy();
  });

  it('listening needs readable certificate files', async () => {
    const rec = new Recorder();
    const missing = new TlsTransport({ address: '127.0.0.1', port: 0, tls: { certFile: '/nonexistent/cert.pem', keyFile: cert.keyFile } }, rec.events);
    await assert.rejects(missing.listen(), TransportListenError);
    const none = new TlsTransport({ address: '127.0.0.1', port: 0, tls: {} }, rec.events);
    await assert.rejects(none.listen(), TransportListenError);
    const swapped = new TlsTransport({ address: '127.0.0.1', port: 0, tls: { certFile: cert.keyFile, keyFile: cert.certFile } }, rec.events);
    await assert.rejects(swapped.listen(), TransportListenError);
  });

  it('works over IPv6 ::1', async () => {
    const serverRec = new Recorder();
    const server = await tls(serverRec, { address: '::1' });
    const client = await tls(new Recorder(), { address: '::1', tls: { caFile: cert.certFile } }, false);
    const out = await client.send({ address: '::1', port: server.localPort }, sipRequest());
    assert.equal(out.remoteAddress, '::1');
    assert.equal((await serverRec.nextMessage()).flow.remoteAddress, '::1');
  });

  it('a handshake that never completes: connect timeout on the clock, and close() aborts it', async () => {
    // A TCP server that accepts and then says nothing (no TLS handshake).
    const sockets: Socket[] = [];
    const silent = createServer((s) => sockets.push(s.on('error', () => {})));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    after(() => {
      for (const s of sockets) s.destroy();
      silent.close();
    });
    const port = (silent.address() as { port: number }).port;
    const accepted = (n: number): Promise<void> =>
      new Promise((resolve) => {
        const check = (): void => (sockets.length >= n ? resolve() : void setImmediate(check));
        check();
      });

    const clock = new FakeClock();
    const client = await tls(new Recorder(), { clock, connectTimeoutMs: 3000, tls: { caFile: cert.certFile } }, false);
    const pending = client.send({ address: '127.0.0.1', port }, sipRequest());
    await accepted(1);
    clock.advance(3000);
    await assert.rejects(pending, (e: unknown) => e instanceof TransportError && /timed out/.test(e.message));

    const pending2 = client.send({ address: '127.0.0.1', port }, sipRequest());
    await accepted(2);
    await client.close();
    await assert.rejects(pending2, TransportError);
    assert.equal(client.connectionCount, 0);
  });
});

describe('TlsTransport.reloadCertificates (a renewed certificate, no restart)', () => {
  /** The fingerprint of the certificate a fresh TLS client is shown. */
  function presented(port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.end();
      });
      socket.on('error', reject);
    });
  }

  it('new connections get the new certificate, an open one stays up, and bad files leave the current one in place', async () => {
    const first = makeCertificate();
    const second = makeCertificate();
    try {
      const serverRec = new Recorder();
      const server = await tls(serverRec, { tls: { certFile: first.certFile, keyFile: first.keyFile } });
      const before = await presented(server.localPort);
      const client = await tls(new Recorder(), { tls: { rejectUnauthorized: false } }, false);
      const flow = await client.send({ address: '127.0.0.1', port: server.localPort }, sipRequest());
      await serverRec.nextMessage();

      // Renewal: the same paths, new contents.
      writeFileSync(first.certFile, readFileSync(second.certFile));
      writeFileSync(first.keyFile, readFileSync(second.keyFile));
      await server.reloadCertificates();
      const after = await presented(server.localPort);
      assert.notEqual(after, before);
      assert.ok(client.hasConnection(flow.connectionId!), 'the open connection was not dropped');
      await client.send({ address: '127.0.0.1', port: server.localPort }, sipRequest({ body: 'still here' }));
      assert.equal((await serverRec.nextMessage()).data.toString().endsWith('still here'), true);

      // A key that does not belong to the certificate: refused, the renewed one stays.
      writeFileSync(first.keyFile, readFileSync(cert.keyFile));
      await assert.rejects(server.reloadCertificates(), (e: unknown) => e instanceof TransportError && /certificate not reloaded/.test(e.message));
      assert.equal(await presented(server.localPort), after);
    } finally {
      first.cleanup();
      second.cleanup();
    }
  });
});
