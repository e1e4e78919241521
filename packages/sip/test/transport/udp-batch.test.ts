import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { UdpTransport } from '../../src/transport/udp.js';
import { ipv6Text, loadUdpBatch, openBatchSocket, type UdpBatchBinding, type UdpBatchHandle } from '../../src/transport/udp-batch.js';
import { Recorder, sipRequest } from './helpers.js';

describe('batched UDP I/O (native/udp_batch.c)', () => {
  it('is built on this Linux machine, and io "auto" uses it', async () => {
    const binding = loadUdpBatch();
    assert.ok(binding.ok, binding.ok ? '' : `the addon must be built for the tests (npm ci builds it): ${binding.reason}`);
    const t = new UdpTransport({ address: '127.0.0.1', port: 0 }, new Recorder().events);
    await t.listen();
    assert.equal(t.io, 'batch');
    await t.close();
  });

  it('queues sends while the kernel answers EAGAIN and sends them in order once writable', async () => {
    const EAGAIN = constants.errno.EAGAIN;
    let onEvent: (count: number) => void = () => {};
    let full = true;
    const wire: string[] = [];
    const watching: boolean[] = [];
    const fake: UdpBatchBinding = {
      BATCH: 4,
      META_INTS: 7,
      open: () => [{} as UdpBatchHandle, 5060],
      start: (_h, _slab, _slot, _meta, cb) => {
        onEvent = cb;
      },
      send: (_h, data) => {
        if (full) return EAGAIN;
        wire.push(data.toString());
        return 0;
      },
      watchWritable: (_h, on) => void watching.push(on),
      bufferSizes: () => [1, 1],
      close: () => {},
    };
    const socket = openBatchSocket(fake, { ipv6: false, address: '127.0.0.1', port: 5060, recvBufferSize: 0, sendBufferSize: 0, onError() {}, onBufferError() {} }, () => {});
    const first = socket.send(Buffer.from('one'), 9, '127.0.0.1');
    const second = socket.send(Buffer.from('two'), 9, '127.0.0.1');
    assert.ok(first instanceof Promise && second instanceof Promise);
    assert.deepEqual(watching, [true]);
    full = false;
    // A later send must not overtake the queued ones.
    const third = socket.send(Buffer.from('three'), 9, '127.0.0.1');
    assert.ok(third instanceof Promise);
    assert.deepEqual(wire, []);
    onEvent(-1);
    await Promise.all([first, second, third]);
    assert.deepEqual(wire, ['one', 'two', 'three']);
    assert.deepEqual(watching, [true, false]);
    assert.equal(socket.send(Buffer.from('four'), 9, '127.0.0.1'), undefined, 'sent at once again');
    full = true;
    const lost = socket.send(Buffer.from('five'), 9, '127.0.0.1');
    await socket.close();
    await assert.rejects(lost!, /closed before the datagram was sent/);
  });

  it('a send error other than EAGAIN is thrown with its code', async () => {
    const t = new UdpTransport({ address: '127.0.0.1', port: 0, io: 'batch' }, new Recorder().events);
    await t.listen();
    // Port 0 is not a destination: sendto(2) fails with EINVAL.
    await assert.rejects(t.send({ address: '127.0.0.1', port: 0 }, sipRequest()), (err: Error) => /EINVAL/.test(err.message));
    await t.close();
  });

  it('formats IPv6 source addresses as RFC 5952 text, and IPv4-mapped ones as IPv4', () => {
    const word = fc.integer({ min: 0, max: 0xffff });
    const sparse = fc.oneof(fc.constant(0), fc.constant(0), word);
    fc.assert(
      fc.property(fc.array(sparse, { minLength: 8, maxLength: 8 }), (groups) => {
        const words = [0, 2, 4, 6].map((i) => (groups[i] << 16) | groups[i + 1]);
        const text = ipv6Text(words, 0);
        if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
          assert.equal(text, `${groups[6] >> 8}.${groups[6] & 255}.${groups[7] >> 8}.${groups[7] & 255}`);
        } else {
          // The WHATWG URL serializer writes the same compressed, lower-case form.
          const full = groups.map((g) => g.toString(16)).join(':');
          assert.equal(text, new URL(`http://[${full}]/`).hostname.slice(1, -1));
        }
      }),
      { numRuns: 2000 },
    );
    assert.equal(ipv6Text([0, 0, 0, 1], 0), '::1');
    assert.equal(ipv6Text([0x20010db8, 0, 0, 1], 0), '2001:db8::1');
  });
});
