/** H2Connection frame by frame, against a hand-written plaintext server on 127.0.0.1. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { H2Connection } from '../../../src/push/h2/connection.js';
import type { H2ConnectionOptions } from '../../../src/push/h2/connection.js';
import { CONNECTION_PREFACE, ErrorCode, Flag, FrameType, Http2ProtocolError, Setting, writeFrameHeader } from '../../../src/push/h2/frames.js';
import { Collect, post } from '../../helpers/h2.js';


interface RawFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const buf = Buffer.alloc(9 + payload.length);
  writeFrameHeader(buf, 0, payload.length, type, flags, streamId);
  payload.copy(buf, 9);
  return buf;
}

/** A plaintext server that speaks frames by hand: it records what the client sends and lets the test answer. */
class RawServer {
  readonly server: net.Server;
  socket: net.Socket | null = null;
  frames: RawFrame[] = [];
  prefaceOk = false;
  private buf = Buffer.alloc(0);
  private waiters: Array<{ pred: (f: RawFrame) => boolean; resolve: (f: RawFrame) => void }> = [];
  private connected: Promise<net.Socket>;

  constructor() {
    let resolve!: (s: net.Socket) => void;
    this.connected = new Promise((r) => (resolve = r));
    this.server = net.createServer((socket) => {
      this.socket = socket;
      socket.on('error', () => {});
      socket.on('data', (chunk) => this.onData(chunk));
      resolve(socket);
    });
  }

  async listen(): Promise<number> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return (this.server.address() as net.AddressInfo).port;
  }

  async accept(): Promise<net.Socket> {
    return this.connected;
  }

  send(...bufs: Buffer[]): void {
    this.socket!.write(Buffer.concat(bufs));
  }

  /** Resolves with the first frame (already received or future) matching pred. */
  waitFor(pred: (f: RawFrame) => boolean): Promise<RawFrame> {
    const seen = this.frames.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }

  async close(): Promise<void> {
    this.socket?.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private onData(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    if (!this.prefaceOk) {
      if (this.buf.length < CONNECTION_PREFACE.length) return;
      assert.deepEqual(this.buf.subarray(0, CONNECTION_PREFACE.length), CONNECTION_PREFACE);
      this.prefaceOk = true;
      this.buf = this.buf.subarray(CONNECTION_PREFACE.length);
    }
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      const f: RawFrame = { type: this.buf[3], flags: this.buf[4], streamId: this.buf.readUInt32BE(5) & 0x7fffffff, payload: Buffer.from(this.buf.subarray(9, 9 + len)) };
      this.buf = this.buf.subarray(9 + len);
      this.frames.push(f);
      for (const w of [...this.waiters]) {
        if (w.pred(f)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(f);
        }
      }
    }
  }
}

function settingsPayload(pairs: Array<[number, number]>): Buffer {
  const b = Buffer.alloc(pairs.length * 6);
  pairs.forEach(([k, v], i) => {
    b.writeUInt16BE(k, i * 6);
    b.writeUInt32BE(v, i * 6 + 2);
  });
  return b;
}

interface Rig {
  raw: RawServer;
  conn: H2Connection;
  close(): Promise<void>;
}

async function rig(serverSettings: Array<[number, number]> = [], options?: H2ConnectionOptions): Promise<Rig> {
  const raw = new RawServer();
  const port = await raw.listen();
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const conn = new H2Connection(socket, options);
  await raw.accept();
  raw.send(frame(FrameType.SETTINGS, 0, 0, settingsPayload(serverSettings)));
  await once(conn, 'connect');
  return {
    raw,
    conn,
    async close() {
      conn.destroy();
      await raw.close();
    },
  };
}

/** A literal header field without indexing, new name (RFC 7541 §6.2.2), raw strings. */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}
const STATUS_200 = Buffer.from([0x88]);

const isFrame = (type: number, streamId?: number, flags?: number) => (f: { type: number; streamId: number; flags: number }) =>
  f.type === type && (streamId === undefined || f.streamId === streamId) && (flags === undefined || (f.flags & flags) === flags);

test('the preface: SETTINGS with push disabled and our window, a connection WINDOW_UPDATE, an ACK of the server SETTINGS', { timeout: 10_000 }, async () => {
  const r = await rig([[Setting.MAX_CONCURRENT_STREAMS, 5], [Setting.MAX_FRAME_SIZE, 20_000]], { settings: { initialWindowSize: 100_000 } });
  try {
    const settings = await r.raw.waitFor(isFrame(FrameType.SETTINGS, 0));
    assert.equal(r.raw.prefaceOk, true);
    assert.equal(r.raw.frames[0], settings);
    assert.equal(settings.type, FrameType.SETTINGS, 'SETTINGS right after the preface (RFC 9113 §3.4)');
    const values = new Map<number, number>();
    for (let i = 0; i < settings.payload.length; i += 6) values.set(settings.payload.readUInt16BE(i), settings.payload.readUInt32BE(i + 2));
    assert.equal(values.get(Setting.ENABLE_PUSH), 0);
    assert.equal(values.get(Setting.INITIAL_WINDOW_SIZE), 100_000);
    const wu = await r.raw.waitFor(isFrame(FrameType.WINDOW_UPDATE, 0));
    assert.equal(wu.payload.readUInt32BE(0), (16 << 20) - 65_535, 'connection window raised to 16 MiB');
    await r.raw.waitFor(isFrame(FrameType.SETTINGS, 0, Flag.ACK));
    assert.equal(r.conn.remoteMaxConcurrentStreams, 5);
    assert.equal(r.conn.remoteSettings.maxFrameSize, 20_000);
  } finally {
    await r.close();
  }
});

test('send-side flow control: DATA stops at the stream window and resumes on a SETTINGS INITIAL_WINDOW_SIZE increase (RFC 9113 §6.9.2)', { timeout: 10_000 }, async () => {
  const r = await rig([[Setting.INITIAL_WINDOW_SIZE, 10]]);
  try {
    const body = Buffer.from('0123456789'.repeat(10));
    const c = new Collect();
    r.conn.request(post('/fc'), body, c);
    const first = await r.raw.waitFor(isFrame(FrameType.DATA, 1));
    assert.equal(first.payload.length, 10);
    assert.equal(first.flags & Flag.END_STREAM, 0);
    await new Promise((res) => setTimeout(res, 30));
    assert.equal(r.raw.frames.filter(isFrame(FrameType.DATA)).length, 1, 'nothing beyond the window');
    // The delta (+90) applies to the open stream.
    r.raw.send(frame(FrameType.SETTINGS, 0, 0, settingsPayload([[Setting.INITIAL_WINDOW_SIZE, 100]])));
    const last = await r.raw.waitFor(isFrame(FrameType.DATA, 1, Flag.END_STREAM));
    assert.equal(last.payload.length, 90);
    const sent = Buffer.concat(r.raw.frames.filter(isFrame(FrameType.DATA, 1)).map((f) => f.payload));
    assert.deepEqual(sent, body);
    // A stream WINDOW_UPDATE also releases data.
    const c2 = new Collect();
    r.conn.request(post('/fc2'), Buffer.alloc(150, 1), c2);
    await r.raw.waitFor((f) => f.type === FrameType.DATA && f.streamId === 3);
    assert.equal(r.raw.frames.filter(isFrame(FrameType.DATA, 3)).reduce((n, f) => n + f.payload.length, 0), 100);
    const wu = Buffer.alloc(4);
    wu.writeUInt32BE(50);
    r.raw.send(frame(FrameType.WINDOW_UPDATE, 0, 3, wu));
    const end = await r.raw.waitFor(isFrame(FrameType.DATA, 3, Flag.END_STREAM));
    assert.equal(end.payload.length, 50);
  } finally {
    await r.close();
  }
});

test('HEADERS with PADDED|PRIORITY, padded DATA, unknown frame types and a server PING are all handled', { timeout: 10_000 }, async () => {
  const r = await rig();
  try {
    const c = new Collect();
    r.conn.request(post('/p'), 'x', c);
    await r.raw.waitFor(isFrame(FrameType.DATA, 1, Flag.END_STREAM));
    const block = Buffer.concat([STATUS_200, literal('apns-id', 'abc')]);
    const priority = Buffer.from([0x80, 0, 0, 0, 16]); // exclusive dependency on 0, weight 16
    r.raw.send(
      frame(0xfa, 0, 0, Buffer.from('unknown on the connection')),
      frame(0xfb, 0x1, 1, Buffer.from('unknown on the stream')),
      frame(FrameType.PING, 0, 0, Buffer.from('pingpong')),
      frame(FrameType.PRIORITY, 0, 1, Buffer.from([0, 0, 0, 0, 10])),
      frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.PADDED | Flag.PRIORITY, 1, Buffer.concat([Buffer.from([3]), priority, block, Buffer.alloc(3)])),
      frame(FrameType.DATA, Flag.PADDED, 1, Buffer.concat([Buffer.from([4]), Buffer.from('hello'), Buffer.alloc(4)])),
      frame(FrameType.DATA, Flag.END_STREAM, 1),
    );
    await c.done;
    assert.equal(c.status, 200);
    assert.deepEqual(c.headers, [['apns-id', 'abc']]);
    assert.equal(c.body.toString(), 'hello');
    assert.equal(c.ended, true);
    const ack = await r.raw.waitFor(isFrame(FrameType.PING, 0, Flag.ACK));
    assert.equal(ack.payload.toString(), 'pingpong');
    assert.equal(r.conn.destroyed, false);
  } finally {
    await r.close();
  }
});

test('a header block split over CONTINUATION frames, with the END_STREAM flag on the HEADERS', { timeout: 10_000 }, async () => {
  const r = await rig();
  try {
    const c = new Collect();
    r.conn.request(post('/c'), '', c);
    await r.raw.waitFor(isFrame(FrameType.HEADERS, 1));
    const block = Buffer.concat([STATUS_200, literal('x-a', 'one'), literal('x-b', 'two')]);
    r.raw.send(
      frame(FrameType.HEADERS, Flag.END_STREAM, 1, block.subarray(0, 3)),
      frame(FrameType.CONTINUATION, 0, 1, block.subarray(3, 9)),
      frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, block.subarray(9)),
    );
    await c.done;
    assert.deepEqual([c.status, c.headers, c.ended], [200, [['x-a', 'one'], ['x-b', 'two']], true]);
  } finally {
    await r.close();
  }
});

test('stream errors reset only the stream: DATA beyond its receive window, a response without :status', { timeout: 10_000 }, async () => {
  const r = await rig([], { settings: { initialWindowSize: 16 } });
  try {
    const c1 = new Collect();
    r.conn.request(post('/1'), '', c1);
    await r.raw.waitFor(isFrame(FrameType.HEADERS, 1));
    r.raw.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, STATUS_200), frame(FrameType.DATA, 0, 1, Buffer.alloc(32)));
    await c1.done;
    assert.deepEqual([c1.closeCode, c1.unprocessed], [ErrorCode.FLOW_CONTROL_ERROR, false]);
    const rst = await r.raw.waitFor(isFrame(FrameType.RST_STREAM, 1));
    assert.equal(rst.payload.readUInt32BE(0), ErrorCode.FLOW_CONTROL_ERROR);

    const c3 = new Collect();
    r.conn.request(post('/3'), '', c3);
    await r.raw.waitFor(isFrame(FrameType.HEADERS, 3));
    r.raw.send(
      frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from('late data for a reset stream is dropped')),
      frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 3, literal('apns-id', 'no-status')),
    );
    await c3.done;
    assert.deepEqual([c3.closeCode, c3.unprocessed], [ErrorCode.PROTOCOL_ERROR, false]);

    const c5 = new Collect();
    r.conn.request(post('/5'), '', c5);
    await r.raw.waitFor(isFrame(FrameType.HEADERS, 5));
    r.raw.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 5, STATUS_200));
    await c5.done;
    assert.equal(c5.status, 200, 'the connection is still fine');
    assert.equal(r.conn.destroyed, false);
  } finally {
    await r.close();
  }
});

test('a response that completes before the request body was sent resets the rest of the request (RFC 9113 §8.1)', { timeout: 10_000 }, async () => {
  const r = await rig([[Setting.INITIAL_WINDOW_SIZE, 10]]);
  try {
    const c = new Collect();
    r.conn.request(post('/early'), Buffer.alloc(100), c);
    await r.raw.waitFor(isFrame(FrameType.DATA, 1));
    r.raw.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, Buffer.from([0x8d]))); // :status 404
    await c.done;
    assert.deepEqual([c.status, c.ended], [404, true]);
    const rst = await r.raw.waitFor(isFrame(FrameType.RST_STREAM, 1));
    assert.equal(rst.payload.readUInt32BE(0), ErrorCode.CANCEL);
    assert.equal(r.conn.inFlight, 0);
  } finally {
    await r.close();
  }
});

const connectionErrors: Array<{ name: string; code: number; errCode: string; send: () => Buffer }> = [
  { name: 'PUSH_PROMISE (push is disabled)', code: ErrorCode.PROTOCOL_ERROR, errCode: 'H2_ERR_PROTOCOL',
    send: () => frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, Buffer.from([0, 0, 0, 2, 0x82])) },
  { name: 'an undecodable HPACK block', code: ErrorCode.COMPRESSION_ERROR, errCode: 'H2_ERR_COMPRESSION',
    send: () => frame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from([0x80])) },
  { name: 'DATA on stream 0', code: ErrorCode.PROTOCOL_ERROR, errCode: 'H2_ERR_PROTOCOL', send: () => frame(FrameType.DATA, 0, 0, Buffer.from('x')) },
  { name: 'a frame above our max frame size', code: ErrorCode.FRAME_SIZE_ERROR, errCode: 'H2_ERR_PROTOCOL',
    send: () => frame(FrameType.DATA, 0, 1, Buffer.alloc(16_385)) },
  { name: 'a connection window above 2^31-1', code: ErrorCode.FLOW_CONTROL_ERROR, errCode: 'H2_ERR_PROTOCOL',
    send: () => { const b = Buffer.alloc(4); b.writeUInt32BE(0x7fffffff); return frame(FrameType.WINDOW_UPDATE, 0, 0, b); } },
  { name: 'HEADERS on a server-initiated (even) stream', code: ErrorCode.PROTOCOL_ERROR, errCode: 'H2_ERR_PROTOCOL',
    send: () => frame(FrameType.HEADERS, Flag.END_HEADERS, 2, STATUS_200) },
  { name: 'another frame where a CONTINUATION must come', code: ErrorCode.PROTOCOL_ERROR, errCode: 'H2_ERR_PROTOCOL',
    send: () => Buffer.concat([frame(FrameType.HEADERS, 0, 1, STATUS_200), frame(FrameType.PING, 0, 0, Buffer.alloc(8))]) },
  { name: 'SETTINGS ENABLE_PUSH=1 from a server', code: ErrorCode.PROTOCOL_ERROR, errCode: 'H2_ERR_PROTOCOL',
    send: () => frame(FrameType.SETTINGS, 0, 0, settingsPayload([[Setting.ENABLE_PUSH, 1]])) },
  { name: 'DATA padding longer than the frame', code: ErrorCode.PROTOCOL_ERROR, errCode: 'H2_ERR_PROTOCOL',
    send: () => frame(FrameType.DATA, Flag.PADDED, 1, Buffer.from([5, 1, 2])) },
];

for (const tc of connectionErrors) {
  test(`connection error on ${tc.name}: GOAWAY(${tc.code}), written streams fail (not unprocessed), 'error' then 'close'`, { timeout: 10_000 }, async () => {
    const r = await rig();
    try {
      const c = new Collect();
      r.conn.request(post('/x'), 'x', c);
      await r.raw.waitFor(isFrame(FrameType.HEADERS, 1));
      const events: string[] = [];
      let error: unknown;
      r.conn.on('error', (err) => { events.push('error'); error = err; });
      r.conn.on('close', () => events.push('close'));
      r.raw.send(tc.send());
      await c.done;
      assert.deepEqual([c.closeCode, c.unprocessed], [tc.code, false]);
      const goaway = await r.raw.waitFor(isFrame(FrameType.GOAWAY, 0));
      assert.equal(goaway.payload.readUInt32BE(0), 0, 'last-stream-id 0: we accept no server streams');
      assert.equal(goaway.payload.readUInt32BE(4), tc.code);
      assert.deepEqual(events, ['error', 'close']);
      assert.ok(error instanceof Http2ProtocolError);
      assert.equal(error.code, tc.errCode);
      assert.equal(error.h2Code, tc.code);
      assert.equal(r.conn.destroyed, true);
    } finally {
      await r.close();
    }
  });
}

test('the server preface must be a SETTINGS frame (RFC 9113 §3.4)', { timeout: 10_000 }, async () => {
  const raw = new RawServer();
  const port = await raw.listen();
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const conn = new H2Connection(socket);
  const closed = new Promise<[Error | undefined]>((resolve) => conn.once('close', (err) => resolve([err])));
  await raw.accept();
  raw.send(frame(FrameType.PING, 0, 0, Buffer.alloc(8)));
  const [err] = await closed;
  assert.ok(err instanceof Http2ProtocolError && err.h2Code === ErrorCode.PROTOCOL_ERROR);
  const goaway = await raw.waitFor(isFrame(FrameType.GOAWAY, 0));
  assert.equal(goaway.payload.readUInt32BE(4), ErrorCode.PROTOCOL_ERROR);
  assert.equal(conn.gotRemoteSettings, false);
  await raw.close();
});

test('a GOAWAY with an error code, then the server closes: remaining streams report its code, not unprocessed', { timeout: 10_000 }, async () => {
  const r = await rig();
  try {
    const c1 = new Collect();
    const c3 = new Collect();
    r.conn.request(post('/1'), 'x', c1);
    r.conn.request(post('/3'), 'x', c3);
    await r.raw.waitFor(isFrame(FrameType.HEADERS, 3));
    const payload = Buffer.concat([Buffer.from([0, 0, 0, 1, 0, 0, 0, ErrorCode.ENHANCE_YOUR_CALM]), Buffer.from('slow down')]);
    const goaway = once(r.conn, 'goaway');
    r.raw.send(frame(FrameType.GOAWAY, 0, 0, payload));
    const [code, last, debug] = await goaway;
    assert.deepEqual([code, last, (debug as Buffer).toString()], [ErrorCode.ENHANCE_YOUR_CALM, 1, 'slow down']);
    await c3.done;
    assert.deepEqual([c3.closeCode, c3.unprocessed], [ErrorCode.REFUSED_STREAM, true]);
    assert.equal(r.conn.inFlight, 1, 'stream 1 may still be answered');
    r.raw.socket!.destroy();
    await c1.done;
    assert.deepEqual([c1.closeCode, c1.unprocessed], [ErrorCode.ENHANCE_YOUR_CALM, false]);
  } finally {
    await r.close();
  }
});

test('a response header list above our SETTINGS_MAX_HEADER_LIST_SIZE resets the stream; the HPACK table stays in sync', { timeout: 10_000 }, async () => {
  const r = await rig([], { settings: { maxHeaderListSize: 100 } });
  try {
    const c1 = new Collect();
    r.conn.request(post('/1'), '', c1);
    await r.raw.waitFor(isFrame(FrameType.HEADERS, 1));
    // Over the limit through a literal without indexing; 'x-id' (incremental indexing) still enters the table.
    const big = Buffer.concat([STATUS_200, literal('x-pad', 'a'.repeat(100)), Buffer.from([0x40, 4]), Buffer.from('x-id'), Buffer.from([4]), Buffer.from('kept')]);
    r.raw.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, big));
    await c1.done;
    assert.deepEqual([c1.closeCode, c1.unprocessed], [ErrorCode.PROTOCOL_ERROR, false]);
    const c3 = new Collect();
    r.conn.request(post('/3'), '', c3);
    await r.raw.waitFor(isFrame(FrameType.HEADERS, 3));
    r.raw.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 3, Buffer.from([0x88, 0xbe]))); // 0xbe: dynamic index 62
    await c3.done;
    assert.deepEqual([c3.status, c3.headers], [200, [['x-id', 'kept']]]);
  } finally {
    await r.close();
  }
});

test('a handler that throws tears the connection down with that error (GOAWAY INTERNAL_ERROR)', { timeout: 10_000 }, async () => {
  const r = await rig();
  try {
    const boom = new Error('handler bug');
    const c = new Collect();
    c.onResponse = () => {
      throw boom;
    };
    const other = new Collect();
    r.conn.request(post('/1'), '', c);
    r.conn.request(post('/3'), '', other);
    await r.raw.waitFor(isFrame(FrameType.HEADERS, 3));
    const errors: unknown[] = [];
    r.conn.on('error', (err) => errors.push(err));
    r.raw.send(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, STATUS_200));
    await other.done;
    assert.deepEqual([other.closeCode, other.unprocessed], [ErrorCode.INTERNAL_ERROR, false]);
    assert.deepEqual(errors, [boom]);
    const goaway = await r.raw.waitFor(isFrame(FrameType.GOAWAY, 0));
    assert.equal(goaway.payload.readUInt32BE(4), ErrorCode.INTERNAL_ERROR);
  } finally {
    await r.close();
  }
});
