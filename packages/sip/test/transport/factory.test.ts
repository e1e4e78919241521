import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTransport, RELIABLE, TcpTransport, TlsTransport, UdpTransport, WsTransport } from '../../src/transport/index.js';
import type { Transport, TransportProtocol } from '../../src/transport/index.js';
import { makeCertificate, Recorder, sipRequest } from './helpers.js';
import type { TestCertificate } from './helpers.js';

let cert: TestCertificate;
const open: Transport[] = [];
before(() => {
  cert = makeCertificate();
});
after(async () => {
  await Promise.all(open.map((t) => t.close()));
  cert.cleanup();
});

describe('createTransport', () => {
  const classes = { udp: UdpTransport, tcp: TcpTransport, tls: TlsTransport, ws: WsTransport, wss: WsTransport } as const;
  for (const protocol of Object.keys(classes) as TransportProtocol[]) {
    it(`${protocol}: builds, listens on port 0 and carries a message between two instances`, async () => {
      const tls = { certFile: cert.certFile, keyFile: cert.keyFile, caFile: cert.certFile };
      const rx = new Recorder();
      const server = createTransport({ protocol, address: '127.0.0.1', port: 0, tls }, rx.events);
      const client = createTransport({ protocol, address: '127.0.0.1', port: 0, tls }, new Recorder().events);
      open.push(server, client);
      assert.ok(server instanceof classes[protocol]);
      assert.equal(server.protocol, protocol);
      assert.equal(server.reliable, RELIABLE[protocol]);
      await server.listen();
      if (protocol === 'udp') await client.listen();
      assert.ok(server.localPort > 0);
      const req = sipRequest();
      const flow = await client.send({ address: '127.0.0.1', port: server.localPort }, req);
      assert.equal(flow.protocol, protocol);
      const got = await rx.nextMessage();
      assert.deepEqual(got.data, req);
      assert.equal(got.flow.protocol, protocol);
      assert.equal(got.flow.connectionId === undefined, protocol === 'udp');
    });
  }
});
