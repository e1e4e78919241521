/** §16.10: a CANCEL that arrives while the INVITE's binding lookup is still in flight. */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { MemoryBindingStore } from '../../src/location/memory-store.js';
import type { Binding } from '../../src/location/types.js';
import { PushcallServer } from '../../src/server.js';
import { tempDir } from '../helpers/server.js';

/** A store whose lookups take 200 ms, like a network store under load. */
class SlowStore extends MemoryBindingStore {
  override async lookup(aor: string, now: number): Promise<Binding[]> {
    await new Promise((r) => setTimeout(r, 200));
    return this.lookupSync(aor, now);
  }
}

test('a CANCEL during the binding lookup gets 200 and the INVITE 487, with nothing forked', async () => {
  const config = validateConfig({ listen: ['udp:127.0.0.1:0'], dataDir: tempDir(), auth: { mode: 'open' }, admin: { enabled: false }, log: { level: 'silent' } });
  const store = new SlowStore();
  const server = new PushcallServer({ config, store });
  await server.start();
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  const got: string[] = [];
  socket.on('message', (m) => got.push(m.toString()));
  const port = server.port('udp');
  const msg = (method: string) =>
    [
      `${method} sip:bob@127.0.0.1 SIP/2.0`,
      'Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKrace1;rport',
      'Max-Forwards: 70',
      'From: <sip:alice@127.0.0.1>;tag=a',
      'To: <sip:bob@127.0.0.1>',
      'Call-ID: race-1',
      `CSeq: 1 ${method}`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
  try {
    socket.send(msg('INVITE'), port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 50));
    socket.send(msg('CANCEL'), port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 500));
    const statuses = got.map((m) => m.split('\r\n')[0] + ' / ' + (/CSeq: (.*)/.exec(m)?.[1] ?? ''));
    assert.ok(statuses.includes('SIP/2.0 200 OK / 1 CANCEL'), statuses.join('\n'));
    assert.ok(statuses.includes('SIP/2.0 487 Request Terminated / 1 INVITE'), statuses.join('\n'));
    assert.equal(server.proxy.timelines.list().length, 0, 'no call was forked');
  } finally {
    socket.close();
    await server.stop();
  }
});
