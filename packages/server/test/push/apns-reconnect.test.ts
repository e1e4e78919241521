/**
 * When APNs cannot serve (an outage, a node in maintenance answering GOAWAY at once), the
 * client backs off its reconnects instead of opening a new TLS connection per push.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type TLSSocket, createServer as createTlsServer } from 'node:tls';
import { selfSignedServerCert } from '../../../testkit/src/emulators/util.js';
import { makeApnsKey } from '../../../testkit/src/emulators/index.js';
import { ApnsProvider } from '../../src/push/apns.js';
import { buildPayload } from '../../src/push/payload.js';

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

/** A raw HTTP/2 endpoint that answers every request with GOAWAY(last-stream-id 0, "Shutdown"). */
async function maintenanceNode(): Promise<{ port: number; ca: string; connections: () => number; close: () => void }> {
  const cert = await selfSignedServerCert();
  let connections = 0;
  const server = createTlsServer({ cert: cert.certPem, key: cert.keyPem, ALPNProtocols: ['h2'] }, (socket: TLSSocket) => {
    connections++;
    socket.on('error', () => {});
    socket.write(frame(4, 0, 0, Buffer.alloc(0))); // SETTINGS
    let buffered = Buffer.alloc(0);
    let preface = false;
    socket.on('data', (data: Buffer) => {
      buffered = Buffer.concat([buffered, data]);
      if (!preface) {
        if (buffered.length < 24) return;
        buffered = buffered.subarray(24);
        preface = true;
      }
      while (buffered.length >= 9) {
        const length = buffered.readUIntBE(0, 3);
        if (buffered.length < 9 + length) break;
        const type = buffered[3];
        if (type === 4 && !(buffered[4] & 1)) socket.write(frame(4, 1, 0, Buffer.alloc(0))); // SETTINGS ack
        if (type === 1) socket.write(frame(7, 0, 0, Buffer.concat([Buffer.alloc(8), Buffer.from('{"reason":"Shutdown"}')]))); // GOAWAY
        buffered = buffered.subarray(9 + length);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, ca: cert.certPem, connections: () => connections, close: () => server.close() };
}

test('an APNs node that answers every push with GOAWAY gets a few backed-off connections, not one per push', async () => {
  const node = await maintenanceNode();
  const key = makeApnsKey({ teamId: 'TEAM123456', bundleIds: ['com.example.app'] });
  const provider = new ApnsProvider({
    auth: { kind: 'token', key: key.privateKeyPem, keyId: key.keyId, teamId: key.teamId },
    endpoints: { production: `https://127.0.0.1:${node.port}` },
    ca: node.ca,
    pingIntervalMs: 0,
  });
  try {
    const payload = buildPayload({ type: 'call', callId: 'c1', fromUri: 'sip:bob@example.com', to: 'sip:alice@example.com' });
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        provider.sendCall(
          { bindingId: `b${i}`, aor: 'sip:alice@example.com', provider: 'apns', prid: i.toString(16).padStart(64, '0'), param: 'TEAM123456.com.example.app.voip', environment: 'production', registeredAt: 0 },
          payload,
          { deadlineMs: 2000 },
        ),
      ),
    );
    assert.ok(outcomes.every((o) => !o.ok), 'nothing was delivered');
    // Without backoff this opened ~500 connections (up to 10 per push); with 250 ms doubling,
    // about six fit in 2 s.
    assert.ok(node.connections() <= 10, `${node.connections()} TLS connections for 50 pushes`);
  } finally {
    await provider.close();
    node.close();
  }
});
