import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SipLimitError, SipParseError } from '../../src/errors.js';
import { StreamFramer, contentLength } from '../../src/transport/stream-framer.js';
import type { StreamFramerLimits } from '../../src/transport/stream-framer.js';
import { sipRequest } from './helpers.js';

type Item = { kind: 'message'; data: string } | { kind: 'ping' } | { kind: 'pong' };

function collect(limits?: StreamFramerLimits): { framer: StreamFramer; items: Item[] } {
  const items: Item[] = [];
  const framer = new StreamFramer(
    {
      onMessage: (data) => items.push({ kind: 'message', data: data.toString('latin1') }),
      onPing: () => items.push({ kind: 'ping' }),
      onPong: () => items.push({ kind: 'pong' }),
    },
    limits,
  );
  return { framer, items };
}

function feedInPieces(framer: StreamFramer, stream: Buffer, cuts: number[]): void {
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  for (const p of points) {
    framer.push(stream.subarray(from, p));
    from = p;
  }
  framer.push(stream.subarray(from));
}

describe('StreamFramer', () => {
  it('frames one message by Content-Length', () => {
    const { framer, items } = collect();
    const msg = sipRequest({ method: 'MESSAGE', body: 'hello\r\n\r\nworld' });
    framer.push(msg);
    assert.deepEqual(items, [{ kind: 'message', data: msg.toString('latin1') }]);
    assert.equal(framer.buffered, 0);
  });

  it('accepts the compact form l: and any header-name case', () => {
    const { framer, items } = collect();
    const a = sipRequest({ body: 'abc', compact: true });
    const b = Buffer.from('MESSAGE sip:x@y SIP/2.0\r\nCONTENT-length  :   4\r\n\r\nwxyzOPTIONS sip:x@y SIP/2.0\r\nL:0\r\n\r\n');
    framer.push(Buffer.concat([a, b]));
    assert.deepEqual(
      items.map((i) => (i.kind === 'message' ? i.data : i.kind)),
      [a.toString('latin1'), 'MESSAGE sip:x@y SIP/2.0\r\nCONTENT-length  :   4\r\n\r\nwxyz', 'OPTIONS sip:x@y SIP/2.0\r\nL:0\r\n\r\n'],
    );
  });

  it('finds a folded Content-Length and tolerates bare LF line ends', () => {
    assert.equal(contentLength('INVITE sip:a@b SIP/2.0\r\nSubject: x\r\nContent-Length:\r\n   12\r\n\r\n'), 12);
    const { framer, items } = collect();
    framer.push(Buffer.from('OPTIONS sip:a@b SIP/2.0\nContent-Length: 2\n\nokNEXT'));
    assert.deepEqual(items, [{ kind: 'message', data: 'OPTIONS sip:a@b SIP/2.0\nContent-Length: 2\n\nok' }]);
    assert.equal(framer.buffered, 4);
  });

  it('does not mistake a header ending in "l" for Content-Length', () => {
    // "Call-ID" / "Url:" etc. must not match the compact form.
    assert.equal(contentLength('OPTIONS sip:a@b SIP/2.0\r\nUrl: 99\r\nCall-ID: l: 5\r\nl: 3\r\n\r\n'), 3);
  });

  it('reports a CRLFCRLF ping between messages and swallows a CRLF pong', () => {
    const { framer, items } = collect();
    const m = sipRequest();
    framer.push(Buffer.concat([Buffer.from('\r\n\r\n'), m, Buffer.from('\r\n'), m, Buffer.from('\r\n\r\n\r\n\r\n')]));
    assert.deepEqual(
      items.map((i) => i.kind),
      ['ping', 'message', 'pong', 'message', 'ping', 'ping'],
    );
  });

  it('a ping split across chunks is still one ping; a lone CRLF waits', () => {
    const { framer, items } = collect();
    framer.push(Buffer.from('\r\n'));
    assert.equal(items.length, 0);
    framer.push(Buffer.from('\r'));
    assert.equal(items.length, 0);
    framer.push(Buffer.from('\n'));
    assert.deepEqual(items, [{ kind: 'ping' }]);
    framer.push(Buffer.from('\r\n'));
    framer.push(sipRequest());
    assert.deepEqual(
      items.map((i) => i.kind),
      ['ping', 'pong', 'message'],
    );
  });

  it('a missing Content-Length is a framing error, and the framer stays failed', () => {
    const { framer } = collect();
    const push = (): void => framer.push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n'));
    assert.throws(push, (e) => e instanceof SipParseError && /Missing Content-Length/.test(e.message));
    assert.throws(() => framer.push(Buffer.from('more')), SipParseError);
    assert.equal(framer.buffered, 0);
  });

  it('invalid or conflicting Content-Length values are framing errors', () => {
    for (const value of ['-1', 'abc', '1e3', '12345678901', '5, 5', '']) {
      const { framer } = collect();
      assert.throws(() => framer.push(Buffer.from(`OPTIONS sip:a@b SIP/2.0\r\nContent-Length: ${value}\r\n\r\n`)), SipParseError, value);
    }
    const { framer } = collect();
    assert.throws(() => framer.push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nxx')), SipParseError);
  });

  it('delivers the messages that precede a framing error', () => {
    const { framer, items } = collect();
    const good = sipRequest();
    assert.throws(() => framer.push(Buffer.concat([good, Buffer.from('BAD sip:x SIP/2.0\r\n\r\n')])), SipParseError);
    assert.equal(items.length, 1);
  });

  it('enforces the header, body and message limits', () => {
    {
      const { framer } = collect({ maxHeaderBytes: 100 });
      assert.throws(() => framer.push(Buffer.from(`OPTIONS sip:a@b SIP/2.0\r\nX: ${'a'.repeat(200)}`)), SipLimitError);
    }
    {
      // Header section never terminated: caught as soon as the limit is reached.
      const { framer } = collect({ maxMessageBytes: 1024 });
      let error: unknown;
      for (let i = 0; i < 100 && !error; i++) {
        try {
          framer.push(Buffer.from('X'.repeat(50)));
        } catch (e) {
          error = e;
        }
      }
      assert.ok(error instanceof SipLimitError);
    }
    {
      const { framer } = collect({ maxBodyBytes: 10 });
      assert.throws(() => framer.push(sipRequest({ body: 'x'.repeat(11) })), SipLimitError);
    }
    {
      const msg = sipRequest({ body: 'x'.repeat(100) });
      const { framer } = collect({ maxMessageBytes: msg.length - 1 });
      assert.throws(() => framer.push(msg), SipLimitError);
      const ok = collect({ maxMessageBytes: msg.length });
      ok.framer.push(msg);
      assert.equal(ok.items.length, 1);
    }
    {
      // A huge declared Content-Length is refused before any body arrives (no buffering).
      const { framer } = collect();
      assert.throws(() => framer.push(Buffer.from('INVITE sip:a@b SIP/2.0\r\nContent-Length: 999999999\r\n\r\n')), SipLimitError);
    }
  });

  it('an exception thrown by a handler propagates without breaking the framer', () => {
    let calls = 0;
    const framer = new StreamFramer({
      onMessage: () => {
        calls++;
        if (calls === 1) throw new Error('handler bug');
      },
    });
    const m = sipRequest();
    assert.throws(() => framer.push(Buffer.concat([m, m])), /handler bug/);
    framer.push(Buffer.alloc(0)); // the second message was kept
    assert.equal(calls, 2);
    assert.equal(framer.error, undefined);
  });

  it('handles 1-byte chunks of a large message in linear time', () => {
    const { framer, items } = collect();
    const msg = sipRequest({ body: 'b'.repeat(60_000) });
    const started = performance.now();
    for (let i = 0; i < msg.length; i++) framer.push(msg.subarray(i, i + 1));
    assert.equal(items.length, 1);
    assert.ok(performance.now() - started < 2000);
  });

  it('property: any split of a stream of messages and keep-alives yields the same items', () => {
    const body = fc.string({ maxLength: 300, unit: fc.constantFrom('a', 'Z', '\r', '\n', ' ', ':', 'é', '\u0000') });
    const part = fc.oneof(
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('message' as const), body, compact: fc.boolean() }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'ping' as const }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'pong' as const }) },
    );
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 20 }), (parts, cuts) => {
        // A pong directly before a ping would merge into "\r\n\r\n\r\n" = ping + pong
        // (ambiguous on the wire); senders never do that, so neither does the generator.
        const buffers: Buffer[] = [];
        const expected: Item[] = [];
        let previous: string | undefined;
        for (const p of parts) {
          if (p.kind === 'message') {
            const m = sipRequest({ body: p.body, compact: p.compact });
            buffers.push(m);
            expected.push({ kind: 'message', data: m.toString('latin1') });
          } else if (p.kind === 'ping' && previous !== 'pong') {
            buffers.push(Buffer.from('\r\n\r\n'));
            expected.push({ kind: 'ping' });
          } else if (p.kind === 'pong' && previous !== 'pong' && previous !== 'ping') {
            buffers.push(Buffer.from('\r\n'));
            expected.push({ kind: 'pong' });
          } else continue;
          previous = p.kind;
        }
        // A trailing pong is only recognised when the next byte arrives; end with a message.
        const last = sipRequest();
        buffers.push(last);
        expected.push({ kind: 'message', data: last.toString('latin1') });
        const stream = Buffer.concat(buffers);
        const { framer, items } = collect();
        feedInPieces(framer, stream, cuts);
        assert.deepEqual(items, expected);
        assert.equal(framer.buffered, 0);
      }),
      { numRuns: 300 },
    );
  });

  it('property: random bytes only ever raise SipParseError/SipLimitError and terminate', () => {
    const chunk = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.constantFrom(
        ...['\r\n', '\r\n\r\n', '\n\n', 'Content-Length: 5\r\n', 'l: 99999999\r\n', 'INVITE sip:a SIP/2.0\r\n', 'l:3\r\n\r\nabc', 'Content-Length: -1\r\n\r\n'].map((s) =>
          new Uint8Array(Buffer.from(s)),
        ),
      ),
    );
    fc.assert(
      fc.property(fc.array(chunk, { maxLength: 30 }), fc.integer({ min: 16, max: 4096 }), (chunks, limit) => {
        const { framer } = collect({ maxMessageBytes: limit });
        for (const c of chunks) {
          try {
            framer.push(c);
          } catch (e) {
            assert.ok(e instanceof SipParseError || e instanceof SipLimitError, String(e));
            return;
          }
          assert.ok(framer.buffered <= limit + 4, 'never buffers much beyond the limit');
        }
      }),
      { numRuns: 500 },
    );
  });
});
