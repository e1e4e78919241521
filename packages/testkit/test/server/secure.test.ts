/**
 * The server's secure and authenticated paths with real sockets: a TLS listener configured
 * from certificate files (sips), a WSS listener, and SHA-256 digest (RFC 8760) end to end —
 * SIPp only speaks MD5, so our own UA registers here.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { PushcallServer, createLogger, validateConfig } from '@pushcall/server';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SipUserAgent } from '../../src/index.js';
import { makeClientCertificate, selfSignedServerCert } from '../../src/emulators/util.js';

const OPTIONS = (branch: string) =>
  ['OPTIONS sip:127.0.0.1 SIP/2.0', `Via: SIP/2.0/TLS 127.0.0.1:9;branch=${branch};rport`, 'Max-Forwards: 70', 'From: <sip:a@127.0.0.1>;tag=1', 'To: <sip:127.0.0.1>', `Call-ID: ${branch}`, 'CSeq: 1 OPTIONS', 'Content-Length: 0', '', ''].join('\r\n');

describe('TLS/WSS listeners from certificate files, and SHA-256 digest', () => {
  let server: PushcallServer;
  let caPem: string;

  before(async () => {
    const cert = await selfSignedServerCert();
    caPem = cert.certPem;
    server = new PushcallServer({
      config: validateConfig({
        listen: ['tcp:127.0.0.1:0', 'tls:127.0.0.1:0', 'wss:127.0.0.1:0'],
        tls: { certFile: cert.certFile, keyFile: cert.keyFile },
        dataDir: mkdtempSync(join(tmpdir(), 'pushcall-secure-')),
        auth: { users: [{ username: 'sam', password: 'sam-secret' }], algorithms: ['SHA-256'] },
        admin: { enabled: false },
        log: { level: 'silent' },
      }),
      logger: createLogger('silent'),
    });
    await server.start();
  });
  after(async () => {
    await server.stop();
  });

  it('answers OPTIONS over TLS with the configured certificate', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: server.port('tls'), ca: caPem, servername: 'localhost' }, () => socket.write(OPTIONS('z9hG4bKtls1')));
      socket.on('data', (d) => {
        resolve(d.toString());
        socket.destroy();
      });
      socket.on('error', reject);
    });
    assert.match(reply, /^SIP\/2\.0 200 OK\r\n/);
  });

  it('answers OPTIONS over WSS (RFC 7118, subprotocol sip)', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(`wss://127.0.0.1:${server.port('wss')}`, 'sip', { ca: caPem });
      ws.on('open', () => ws.send(OPTIONS('z9hG4bKwss1').replace('SIP/2.0/TLS', 'SIP/2.0/WSS')));
      ws.on('message', (d) => {
        resolve(d.toString());
        ws.close();
      });
      ws.on('error', reject);
    });
    assert.match(reply, /^SIP\/2\.0 200 OK\r\n/);
  });

  it('registers with SHA-256 digest (RFC 7616/8760) and rejects a wrong password', async () => {
    const good = new SipUserAgent({ user: 'sam', password: 'sam-secret', domain: '127.0.0.1', server: { protocol: 'tcp', address: '127.0.0.1', port: server.port('tcp') }, instanceId: 'urn:uuid:00000000-0000-4000-8000-00000000sa01' });
    const bad = new SipUserAgent({ user: 'sam', password: 'nope', domain: '127.0.0.1', server: { protocol: 'tcp', address: '127.0.0.1', port: server.port('tcp') }, instanceId: 'urn:uuid:00000000-0000-4000-8000-00000000sa02' });
    try {
      const ok = await good.registerAsync(600);
      assert.equal(ok.status, 200);
      const refused = await bad.registerAsync(600);
      assert.equal(refused.status, 403);
      const bindings = await server.store.all();
      assert.equal(bindings.length, 1);
      assert.equal(bindings[0].flow.protocol, 'tcp');
    } finally {
      await good.close();
      await bad.close();
    }
  });
});

describe('renewed certificate: reloadCertificates (SIGHUP) without a restart', () => {
  it('tls and wss present the new certificate to new connections; the files at the same paths are read again', async () => {
    const current = await selfSignedServerCert();
    const renewed = await makeClientCertificate('renewed.example.com');
    const dir = mkdtempSync(join(tmpdir(), 'pushcall-renew-'));
    const certFile = join(dir, 'cert.pem');
    const keyFile = join(dir, 'key.pem');
    writeFileSync(certFile, current.certPem);
    writeFileSync(keyFile, current.keyPem);
    const server = new PushcallServer({
      config: validateConfig({
        listen: ['tls:127.0.0.1:0', 'wss:127.0.0.1:0'],
        tls: { certFile, keyFile },
        dataDir: dir,
        auth: { mode: 'open' },
        admin: { enabled: false },
        log: { level: 'silent' },
      }),
      logger: createLogger('silent'),
    });
    await server.start();
    const presented = (port: number) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
          resolve(socket.getPeerCertificate().subject.CN as string);
          socket.destroy();
        });
        socket.on('error', reject);
      });
    try {
      assert.equal(await presented(server.port('tls')), 'localhost');
      writeFileSync(certFile, readFileSync(renewed.certFile));
      writeFileSync(keyFile, readFileSync(renewed.keyFile));
      const result = await server.reloadCertificates();
      assert.deepEqual(result.failed, []);
      assert.deepEqual(result.reloaded.map((l) => l.split(':')[0]).sort(), ['tls', 'wss']);
      assert.equal(await presented(server.port('tls')), 'renewed.example.com');
      assert.equal(await presented(server.port('wss')), 'renewed.example.com');
    } finally {
      await server.stop();
    }
  });
});
