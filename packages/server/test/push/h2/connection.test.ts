/** H2Connection against node:http2's TLS server on 127.0.0.1 (nghttp2 on the other side). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http2 from 'node:http2';
import type net from 'node:net';
import tls from 'node:tls';
import { selfSignedServerCert } from '../../../../testkit/src/emulators/util.js';
import { H2Connection } from '../../../src/push/h2/connection.js';
import type { H2ConnectionOptions, H2Stream, H2StreamHandler } from '../../../src/push/h2/connection.js';
import { ErrorCode, Http2Error } from '../../../src/push/h2/frames.js';
import type { HeaderField } from '../../../src/push/h2/hpack.js';
import { Collect, post } from '../../helpers/h2.js';

const { constants } = http2;

interface NodeServer {
  server: http2.Http2SecureServer;
  port: number;
  ca: string;
  sessions: Set<http2.ServerHttp2Session>;
  close(): Promise<void>;
}

async function startNodeServer(
  options: http2.SecureServerOptions,
  onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
): Promise<NodeServer> {
  const cert = await selfSignedServerCert();
  const server = http2.createSecureServer({ key: cert.keyPem, cert: cert.certPem, ...options });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => {});
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    onStream(stream, headers);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    ca: cert.certPem,
    sessions,
    async close() {
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** TLS + ALPN h2 to 127.0.0.1, then an H2Connection that has seen the server's SETTINGS. */
async function connectTo(srv: { port: number; ca: string }, options?: H2ConnectionOptions): Promise<H2Connection> {
  const socket = tls.connect({ host: '127.0.0.1', port: srv.port, ca: srv.ca, servername: 'localhost', ALPNProtocols: ['h2'] });
  await once(socket, 'secureConnect');
  assert.equal(socket.alpnProtocol, 'h2');
  const conn = new H2Connection(socket, options);
  await once(conn, 'connect');
  return conn;
}


const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function readBody(stream: http2.ServerHttp2Stream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return once(stream, 'end').then(() => Buffer.concat(chunks));
}

function isH2Error(code: string) {
  return (err: unknown) => err instanceof Http2Error && err.code === code;
}

test('a POST with a body gets the status, headers and body; repeated header names decode through the dynamic table', { timeout: 20_000 }, async () => {
  const seen: Array<{ headers: http2.IncomingHttpHeaders; body: string }> = [];
  const srv = await startNodeServer({}, async (stream, headers) => {
    const body = (await readBody(stream)).toString();
    seen.push({ headers, body });
    stream.respond({ ':status': 200, 'apns-id': `id-${seen.length}`, 'apns-unique-id': `u-${seen.length}`, 'content-type': 'application/json' });
    stream.end(JSON.stringify({ echo: body, n: seen.length }));
  });
  const conn = await connectTo(srv);
  try {
    for (let i = 1; i <= 3; i++) {
      const c = new Collect();
      const s = conn.request(post('/3/device/abc', [['authorization', 'bearer token'], ['apns-topic', 'com.example.app.voip']]), `{"aps":${i}}`, c);
      assert.equal(s.id, 2 * i - 1, 'stream ids are odd and increasing');
      await c.done;
      assert.equal(c.status, 200);
      assert.equal(c.ended, true);
      assert.equal(c.header('apns-id'), `id-${i}`);
      assert.equal(c.header('apns-unique-id'), `u-${i}`);
      assert.equal(c.header('content-type'), 'application/json');
      assert.ok(!c.headers.some(([n]) => n.startsWith(':')), 'no pseudo-headers in the list');
      assert.deepEqual(JSON.parse(c.body.toString()), { echo: `{"aps":${i}}`, n: i });
    }
    assert.equal(seen[0].headers[':method'], 'POST');
    assert.equal(seen[0].headers[':path'], '/3/device/abc');
    assert.equal(seen[0].headers[':authority'], 'localhost');
    assert.equal(seen[0].headers.authorization, 'bearer token');
    assert.equal(seen[0].headers['apns-topic'], 'com.example.app.voip');
    assert.equal(conn.inFlight, 0);
  } finally {
    conn.destroy();
    await srv.close();
  }
});

test('Huffman-coded response headers from nghttp2 decode for every printable ASCII character', { timeout: 20_000 }, async () => {
  const chars = Array.from({ length: 0x7f - 0x21 }, (_, i) => String.fromCharCode(0x21 + i));
  const srv = await startNodeServer({}, (stream) => {
    const h: http2.OutgoingHttpHeaders = { ':status': 200 };
    // Padded with 'e' (5 bits) so nghttp2 finds Huffman shorter and uses it.
    chars.forEach((c, i) => (h[`x-c${i}`] = `eeeeeeeeeeee${c} eeeeeeeeeeee`));
    stream.respond(h, { endStream: true });
  });
  const conn = await connectTo(srv);
  try {
    const c = new Collect();
    conn.request(post('/'), '', c);
    await c.done;
    assert.equal(c.status, 200);
    chars.forEach((ch, i) => assert.equal(c.header(`x-c${i}`), `eeeeeeeeeeee${ch} eeeeeeeeeeee`));
  } finally {
    conn.destroy();
    await srv.close();
  }
});

test('2,000 requests over one connection respect the server MAX_CONCURRENT_STREAMS of 100', { timeout: 60_000 }, async () => {
  let served = 0;
  const srv = await startNodeServer({ settings: { maxConcurrentStreams: 100 } }, (stream, headers) => {
    served++;
    // Answer on a later turn so the 100 slots really fill up.
    setImmediate(() => {
      stream.respond({ ':status': 200, 'apns-id': String(headers[':path']).slice(1) });
      stream.end();
    });
  });
  const conn = await connectTo(srv);
  try {
    assert.equal(conn.gotRemoteSettings, true);
    assert.equal(conn.remoteMaxConcurrentStreams, 100);
    const N = 2000;
    const results = new Map<number, { status: number; apnsId: string; ended: boolean; closed: number }>();
    let next = 0;
    let maxInFlight = 0;
    let finished = 0;
    let resolveAll!: () => void;
    const all = new Promise<void>((r) => (resolveAll = r));
    // One handler object for every stream: the stream argument says which request it is.
    const handler: H2StreamHandler = {
      onResponse(status: number, headers: HeaderField[], stream: H2Stream) {
        results.set(stream.id, { status, apnsId: headers.find(([n]) => n === 'apns-id')?.[1] ?? '', ended: false, closed: -1 });
      },
      onData() {},
      onEnd(stream: H2Stream) {
        results.get(stream.id)!.ended = true;
        done();
      },
      onClose(code: number, _u: boolean, stream: H2Stream) {
        results.set(stream.id, { status: 0, apnsId: '', ended: false, closed: code });
        done();
      },
    };
    const ids: number[] = [];
    function pump(): void {
      while (next < N && conn.inFlight < conn.remoteMaxConcurrentStreams) {
        ids.push(conn.request(post(`/${next}`), 'x'.repeat(300), handler).id);
        next++;
      }
      maxInFlight = Math.max(maxInFlight, conn.inFlight);
    }
    function done(): void {
      finished++;
      if (finished === N) resolveAll();
      else queueMicrotask(pump);
    }
    pump();
    assert.equal(conn.inFlight, 100);
    assert.throws(() => conn.request(post('/extra'), '', new Collect()), isH2Error('H2_ERR_STREAM_LIMIT'));
    await all;
    assert.equal(maxInFlight, 100);
    assert.equal(served, N, 'nghttp2 refuses streams beyond its limit; every one was served');
    assert.deepEqual(ids, Array.from({ length: N }, (_, i) => 2 * i + 1));
    for (let i = 0; i < N; i++) {
      const r = results.get(2 * i + 1)!;
      assert.equal(r.status, 200);
      assert.equal(r.ended, true);
      assert.equal(r.apnsId, String(i));
    }
  } finally {
    conn.destroy();
    await srv.close();
  }
});

test('a response larger than 64 KiB flows with small receive windows (WINDOW_UPDATE, RFC 9113 §6.9)', { timeout: 20_000 }, async () => {
  const big = randomBytes(1 << 20);
  const srv = await startNodeServer({}, (stream) => {
    stream.respond({ ':status': 200 });
    stream.end(big);
  });
  // Smallest legal windows: without our WINDOW_UPDATEs the server stalls after 64 KiB.
  const small = await connectTo(srv, { settings: { initialWindowSize: 65_535 }, connectionWindowSize: 65_535 });
  const dflt = await connectTo(srv);
  try {
    for (const conn of [small, dflt]) {
      const c = new Collect();
      conn.request(post('/big'), '', c);
      await c.done;
      assert.equal(c.ended, true);
      assert.equal(c.body.length, big.length);
      assert.equal(sha256(c.body), sha256(big));
    }
  } finally {
    small.destroy();
    dflt.destroy();
    await srv.close();
  }
});

test('a request body larger than the server initial window is sent as WINDOW_UPDATEs arrive', { timeout: 20_000 }, async () => {
  const srv = await startNodeServer({ settings: { initialWindowSize: 1024 } }, async (stream) => {
    const body = await readBody(stream);
    stream.respond({ ':status': 200, 'x-len': String(body.length), 'x-sha': sha256(body) });
    stream.end();
  });
  const conn = await connectTo(srv);
  try {
    assert.equal(conn.remoteSettings.initialWindowSize, 1024);
    const body = randomBytes(300_000); // above the 1 KiB stream window and the 64 KiB connection window
    const bigReq = new Collect();
    const smallReq = new Collect();
    conn.request(post('/big'), body, bigReq);
    conn.request(post('/small'), 'hello', smallReq); // not stuck behind the blocked body
    await Promise.all([bigReq.done, smallReq.done]);
    assert.equal(bigReq.status, 200);
    assert.equal(bigReq.header('x-len'), String(body.length));
    assert.equal(bigReq.header('x-sha'), sha256(body));
    assert.equal(smallReq.header('x-sha'), sha256(Buffer.from('hello')));
    // A string body that does not fit either (UTF-8 byte length, not char count).
    const strReq = new Collect();
    const text = 'é'.repeat(5000);
    conn.request(post('/str'), text, strReq);
    await strReq.done;
    assert.equal(strReq.header('x-len'), String(Buffer.byteLength(text)));
  } finally {
    conn.destroy();
    await srv.close();
  }
});

test('GOAWAY mid-burst: streams above last-stream-id are unprocessed, the others complete, then the connection closes', { timeout: 20_000 }, async () => {
  const held: http2.ServerHttp2Stream[] = [];
  let serverGoawayAt = 0;
  const srv = await startNodeServer({}, (stream) => {
    held.push(stream);
    if (held.length < 20) return;
    serverGoawayAt = held.length;
    stream.session!.goaway(constants.NGHTTP2_NO_ERROR, 21, Buffer.from('maintenance'));
    for (const s of held) {
      if (s.id! > 21) {
        s.close(constants.NGHTTP2_REFUSED_STREAM); // already failed by the GOAWAY on our side
        continue;
      }
      s.respond({ ':status': 200 });
      s.end();
    }
  });
  const conn = await connectTo(srv);
  try {
    const goaway = once(conn, 'goaway');
    const closed = once(conn, 'close');
    const reqs = Array.from({ length: 20 }, () => {
      const c = new Collect();
      return { c, id: conn.request(post('/burst'), 'x', c).id };
    });
    await Promise.all(reqs.map((r) => r.c.done));
    const [code, last, debug] = await goaway;
    assert.deepEqual([code, last, (debug as Buffer).toString()], [0, 21, 'maintenance']);
    assert.equal(serverGoawayAt, 20);
    for (const { c, id } of reqs) {
      if (id <= 21) {
        assert.equal(c.status, 200, `stream ${id} completes`);
        assert.equal(c.ended, true);
      } else {
        assert.equal(c.unprocessed, true, `stream ${id} is unprocessed`);
        assert.equal(c.closeCode, ErrorCode.REFUSED_STREAM);
      }
    }
    assert.deepEqual(conn.remoteGoaway, { errorCode: 0, lastStreamId: 21, debugData: Buffer.from('maintenance') });
    assert.equal(conn.closed, true);
    assert.throws(() => conn.request(post('/late'), '', new Collect()), isH2Error('H2_ERR_CLOSED'));
    const [err] = await closed; // all streams done: we close the socket ourselves
    assert.equal(err, undefined);
    assert.equal(conn.destroyed, true);
  } finally {
    conn.destroy();
    await srv.close();
  }
});

test('RST_STREAM REFUSED_STREAM is unprocessed; another reset code is not; the connection stays usable', { timeout: 20_000 }, async () => {
  const srv = await startNodeServer({}, (stream, headers) => {
    if (headers[':path'] === '/refuse') return stream.close(constants.NGHTTP2_REFUSED_STREAM);
    if (headers[':path'] === '/fail') return stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    stream.respond({ ':status': 202 });
    stream.end();
  });
  const conn = await connectTo(srv);
  try {
    const refused = new Collect();
    const failed = new Collect();
    conn.request(post('/refuse'), 'a', refused);
    conn.request(post('/fail'), 'b', failed);
    await Promise.all([refused.done, failed.done]);
    assert.deepEqual([refused.closeCode, refused.unprocessed, refused.ended], [ErrorCode.REFUSED_STREAM, true, false]);
    assert.deepEqual([failed.closeCode, failed.unprocessed], [ErrorCode.INTERNAL_ERROR, false]);
    const ok = new Collect();
    conn.request(post('/ok'), 'c', ok);
    await ok.done;
    assert.equal(ok.status, 202);
    assert.equal(conn.inFlight, 0);
  } finally {
    conn.destroy();
    await srv.close();
  }
});

test('PING both ways: our ping gets a round-trip time, the server gets an ACK', { timeout: 20_000 }, async () => {
  const srv = await startNodeServer({}, () => {});
  const conn = await connectTo(srv);
  try {
    const ms = await new Promise<number>((resolve, reject) => conn.ping((err, t) => (err ? reject(err) : resolve(t!))));
    assert.ok(Number.isFinite(ms) && ms >= 0 && ms < 5000, `rtt ${ms}`);
    const [session] = srv.sessions;
    const serverRtt = await new Promise<number>((resolve, reject) => session.ping((err, d) => (err ? reject(err) : resolve(d))));
    assert.ok(serverRtt >= 0);
    // A ping pending when the connection dies gets an error.
    const failed = new Promise<Error | undefined>((resolve) => conn.ping((err) => resolve(err)));
    conn.destroy();
    assert.ok((await failed) instanceof Http2Error);
  } finally {
    conn.destroy();
    await srv.close();
  }
});

test('a ~20 KB response header block arrives as HEADERS + CONTINUATION and decodes', { timeout: 20_000 }, async () => {
  // 'X' is an 8-bit Huffman code, so the block stays > 20,000 bytes: above our 16,384 max frame size.
  const bigValue = 'X'.repeat(20_000);
  const srv = await startNodeServer({}, (stream) => {
    stream.respond({ ':status': 200, 'x-big': bigValue, 'apns-id': 'after-big' });
    stream.end('body');
  });
  const conn = await connectTo(srv);
  try {
    for (let i = 0; i < 2; i++) {
      const c = new Collect();
      conn.request(post('/'), '', c);
      await c.done;
      assert.equal(c.status, 200);
      assert.equal(c.header('x-big'), bigValue);
      assert.equal(c.header('apns-id'), 'after-big');
      assert.equal(c.body.toString(), 'body');
    }
  } finally {
    conn.destroy();
    await srv.close();
  }
});

test('padded frames, 1xx informational headers and trailers from nghttp2 are handled', { timeout: 20_000 }, async () => {
  const srv = await startNodeServer({ paddingStrategy: constants.PADDING_STRATEGY_MAX }, (stream) => {
    stream.additionalHeaders({ ':status': 103, link: '</x>; rel=preload' });
    stream.respond({ ':status': 200, 'apns-id': 'p' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'x-trailer': 'yes' }));
    stream.end('padded body');
  });
  const conn = await connectTo(srv);
  try {
    const c = new Collect();
    conn.request(post('/'), 'x', c);
    await c.done;
    assert.equal(c.status, 200, 'the 103 is skipped, the final status reported');
    assert.equal(c.header('apns-id'), 'p');
    assert.equal(c.body.toString(), 'padded body');
    assert.equal(c.ended, true, 'the trailers HEADERS ends the stream');
    assert.equal(c.calls, 3, 'onResponse, onData, onEnd');
  } finally {
    conn.destroy();
    await srv.close();
  }
});

test('graceful close: no new requests, in-flight streams finish, GOAWAY(NO_ERROR) reaches the server, then close', { timeout: 20_000 }, async () => {
  let serverGoaway = -1;
  const srv = await startNodeServer({}, (stream) => {
    setTimeout(() => {
      stream.respond({ ':status': 200 });
      stream.end();
    }, 50);
  });
  srv.server.on('session', (s) => s.on('goaway', (code: number) => (serverGoaway = code)));
  const conn = await connectTo(srv);
  try {
    const cs = [new Collect(), new Collect(), new Collect()];
    for (const c of cs) conn.request(post('/slow'), 'x', c);
    const closing = conn.close();
    assert.equal(conn.closed, true);
    assert.equal(conn.destroyed, false);
    assert.throws(() => conn.request(post('/late'), '', new Collect()), isH2Error('H2_ERR_CLOSED'));
    let closeErr: Error | undefined | null = null;
    conn.on('close', (err) => (closeErr = err));
    await closing;
    for (const c of cs) assert.equal(c.status, 200);
    assert.equal(closeErr, undefined, "'close' without an error");
    assert.equal(conn.destroyed, true);
    assert.equal(serverGoaway, constants.NGHTTP2_NO_ERROR);
    await conn.close(); // idempotent
  } finally {
    conn.destroy();
    await srv.close();
  }
});

test('socket lost mid-stream: written streams close with unprocessed=false, and close reports the error', { timeout: 20_000 }, async () => {
  let sawStream!: () => void;
  const seen = new Promise<void>((r) => (sawStream = r));
  const srv = await startNodeServer({}, () => sawStream()); // never answers
  const tlsSockets: tls.TLSSocket[] = [];
  srv.server.on('secureConnection', (s) => tlsSockets.push(s));
  const conn = await connectTo(srv);
  try {
    const c = new Collect();
    conn.request(post('/hang'), 'x', c);
    await seen;
    const closed = once(conn, 'close');
    for (const s of tlsSockets) s.destroy(); // the server's TCP connection drops, no GOAWAY
    await c.done;
    assert.deepEqual([c.closeCode, c.unprocessed], [ErrorCode.INTERNAL_ERROR, false]);
    const [err] = await closed;
    assert.ok(err instanceof Http2Error && err.code === 'H2_ERR_SOCKET');
  } finally {
    conn.destroy();
    await srv.close();
  }
});

test('destroy(): written streams are not unprocessed, a request not yet written is', { timeout: 20_000 }, async () => {
  const paths: string[] = [];
  let sawStream!: () => void;
  const seen = new Promise<void>((r) => (sawStream = r));
  const srv = await startNodeServer({}, (_s, h) => {
    paths.push(String(h[':path']));
    sawStream();
  });
  const conn = await connectTo(srv);
  try {
    const written = new Collect();
    conn.request(post('/written'), 'x', written);
    await seen;
    const unwritten = new Collect();
    conn.request(post('/unwritten'), 'x', unwritten); // flushed on a microtask that never comes
    conn.destroy();
    assert.deepEqual([written.closeCode, written.unprocessed], [ErrorCode.CANCEL, false]);
    assert.deepEqual([unwritten.closeCode, unwritten.unprocessed], [ErrorCode.CANCEL, true]);
    assert.equal(conn.destroyed, true);
    assert.equal(conn.closed, true);
    assert.throws(() => conn.request(post('/x'), '', new Collect()), isH2Error('H2_ERR_CLOSED'));
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(paths, ['/written']);
  } finally {
    await srv.close();
  }
});

test('cancel(): RST_STREAM CANCEL reaches the server, onClose(CANCEL) is immediate', { timeout: 20_000 }, async () => {
  let serverStream!: (s: http2.ServerHttp2Stream) => void;
  const got = new Promise<http2.ServerHttp2Stream>((r) => (serverStream = r));
  const srv = await startNodeServer({}, (s) => serverStream(s));
  const conn = await connectTo(srv);
  try {
    const c = new Collect();
    const s = conn.request(post('/hang'), 'x', c);
    const ss = await got;
    const serverClosed = once(ss, 'close');
    assert.equal(conn.cancel(s.id), true);
    assert.deepEqual([c.closeCode, c.unprocessed], [ErrorCode.CANCEL, false]);
    assert.equal(conn.inFlight, 0);
    assert.equal(conn.cancel(s.id), false, 'already gone');
    await serverClosed;
    assert.equal(ss.rstCode, constants.NGHTTP2_CANCEL);
    // A late response for the cancelled stream would be ignored; the connection still works.
    const ok = new Collect();
    conn.request(post('/after'), 'x', ok);
    const s2 = await new Promise<http2.ServerHttp2Stream>((r) => srv.server.once('stream', r));
    s2.respond({ ':status': 200 });
    s2.end();
    await ok.done;
    assert.equal(ok.status, 200);
  } finally {
    conn.destroy();
    await srv.close();
  }
});

test('stream ids: the last odd id below 2^31 is used, then the connection takes no more and closes when drained', { timeout: 20_000 }, async () => {
  const srv = await startNodeServer({}, (stream) => {
    stream.respond({ ':status': 200 });
    stream.end();
  });
  const conn = await connectTo(srv, { firstStreamId: 2 ** 31 - 1 });
  try {
    const c = new Collect();
    const s = conn.request(post('/last'), 'x', c);
    assert.equal(s.id, 2 ** 31 - 1);
    assert.equal(conn.closed, true);
    assert.throws(() => conn.request(post('/next'), '', new Collect()), isH2Error('H2_ERR_CLOSED'));
    const closed = once(conn, 'close');
    await c.done;
    assert.equal(c.status, 200);
    await closed;
    assert.equal(conn.destroyed, true);
  } finally {
    conn.destroy();
    await srv.close();
  }
});

test('a connection over an already-destroyed socket closes and refuses requests', { timeout: 20_000 }, async () => {
  const srv = await startNodeServer({}, () => {});
  const conn = await connectTo(srv);
  const socket = conn.socket;
  conn.destroy();
  const again = new H2Connection(socket);
  await once(again, 'close');
  assert.equal(again.destroyed, true);
  assert.throws(() => again.request(post('/'), '', new Collect()), isH2Error('H2_ERR_CLOSED'));
  await srv.close();
});
