/**
 * A minimal HTTP/2 client connection (RFC 9113) for the APNs profile: many small POSTs with a
 * handful of headers, tiny responses. It runs over a socket the caller made (TLS with ALPN h2,
 * or any Duplex in tests) and is built to allocate little per request:
 *
 * - a request's HEADERS and DATA frames are encoded straight into one shared write buffer, and
 *   every frame produced in the same tick leaves in one socket.write (flushed from a microtask);
 * - responses are parsed in place from the socket's chunks; a stream is one H2Stream object and
 *   reports to a caller-supplied handler (no EventEmitter, no closures per request);
 * - the HPACK encoder is stateless (see hpack.ts); the decoder keeps the dynamic table.
 *
 * Concurrency: request() throws Http2Error H2_ERR_STREAM_LIMIT when `inFlight` has reached
 * `remoteMaxConcurrentStreams` (RFC 9113 §5.1.2); queueing is the pool's job.
 *
 * Lifecycle: open → (close(): closing | GOAWAY received | ids exhausted) → drained → GOAWAY and
 * end → 'close'. Errors (protocol, HPACK, socket) tear down at once: every open stream gets
 * onClose and 'close' is emitted exactly once.
 *
 * onClose(code, unprocessed) codes: the peer's RST_STREAM code (unprocessed iff REFUSED_STREAM);
 * REFUSED_STREAM with unprocessed for streams above a GOAWAY's last-stream-id (RFC 9113 §6.8);
 * CANCEL for cancel() and destroy(); for a connection error the code of our GOAWAY, for a lost
 * socket the peer's GOAWAY code if any, else INTERNAL_ERROR. In those last cases a stream is
 * unprocessed only if its HEADERS never reached socket.write.
 */

import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import {
  CONNECTION_PREFACE, DEFAULT_WINDOW_SIZE, ErrorCode, Flag, FRAME_HEADER_SIZE, FrameType, Http2Error, Http2ProtocolError,
  MAX_MAX_FRAME_SIZE, MAX_STREAM_ID, MAX_WINDOW_SIZE, MIN_MAX_FRAME_SIZE, readFrameLength, readUint31, readUint32, Setting,
  writeFrameHeader,
} from './frames.js';
import type { HeaderField } from './hpack.js';
import { HpackDecoder, HpackEncoder } from './hpack.js';

export interface H2ConnectionOptions {
  /** What we advertise in our SETTINGS (RFC 9113 §6.5.2). */
  settings?: {
    /** Per-stream receive window; default 1 MiB so responses never wait for WINDOW_UPDATE. */
    initialWindowSize?: number;
    /** Largest response header list we accept (RFC 9113 §6.5.2 size); default 64 KiB. Larger → stream error. */
    maxHeaderListSize?: number;
  };
  /** Largest frame payload we accept (SETTINGS_MAX_FRAME_SIZE); default 16,384. */
  maxFrameSize?: number;
  /** Connection-level receive window, raised with WINDOW_UPDATE at start; default 16 MiB. */
  connectionWindowSize?: number;
  /** When coalesced frames are written: 'microtask' (default, lowest latency) or 'immediate'. */
  flush?: 'microtask' | 'immediate';
  /** First stream id (odd). For tests of stream-id exhaustion only. */
  firstStreamId?: number;
}

/** Callbacks of one request. Exactly one of onEnd / onClose ends it; nothing is called after that. */
export interface H2StreamHandler {
  /** Final response headers (1xx are skipped); `headers` has no pseudo-headers. */
  onResponse(status: number, headers: HeaderField[], stream: H2Stream): void;
  /** A slice of the response body (a view of the received bytes; copy it to keep it past the call). */
  onData(chunk: Buffer, stream: H2Stream): void;
  /** The response ended normally (END_STREAM). */
  onEnd(stream: H2Stream): void;
  /** The stream ended without a complete response; `unprocessed`: the server did not act on it, safe to retry. */
  onClose(code: number, unprocessed: boolean, stream: H2Stream): void;
}

/** Server settings as last received (RFC 9113 §6.5.2). */
export interface RemoteSettings {
  headerTableSize: number;
  maxConcurrentStreams: number;
  initialWindowSize: number;
  maxFrameSize: number;
  maxHeaderListSize: number;
}

export interface H2ConnectionEvents {
  /** Preface sent and the server's first SETTINGS received. */
  connect: [];
  remoteSettings: [settings: RemoteSettings];
  goaway: [errorCode: number, lastStreamId: number, debugData: Buffer];
  /** Emitted only when someone listens (a connection error also reaches 'close' and the streams). */
  error: [err: Error];
  /** Exactly once; err is set when the connection ended abnormally. */
  close: [err?: Error];
}

/** One request/response exchange. Returned by request(); also passed to every handler call. */
export class H2Stream {
  readonly id: number;
  readonly handler: H2StreamHandler;
  /** Final response HEADERS seen. */
  responded = false;
  /** A terminal callback (onEnd/onClose) was made. */
  done = false;
  /** Our END_STREAM has been encoded. */
  localEnded = false;
  sendWindow: number;
  recvWindow: number;
  /** Received bytes not yet returned with WINDOW_UPDATE. */
  recvUnacked = 0;
  /** Body bytes waiting for send window (RFC 9113 §6.9), from pendingOffset. */
  pending: Buffer | null = null;
  pendingOffset = 0;
  queued = false;

  constructor(id: number, handler: H2StreamHandler, sendWindow: number, recvWindow: number) {
    this.id = id;
    this.handler = handler;
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }
}

interface PendingPing {
  id: number;
  start: number;
  cb: (err?: Error, ms?: number) => void;
}

const DEFAULT_LOCAL_WINDOW = 1 << 20;
const DEFAULT_CONNECTION_WINDOW = 16 << 20;
const DEFAULT_MAX_HEADER_LIST_SIZE = 64 << 10;
/** The server's MAX_CONCURRENT_STREAMS until it says otherwise (RFC 9113 leaves it unlimited; 100 is safe). */
const DEFAULT_REMOTE_MAX_STREAMS = 100;
const WRITE_CHUNK = 64 << 10;
/** How long a closing socket may take to flush before we destroy it. */
const END_GRACE_MS = 2_000;

export class H2Connection extends EventEmitter<H2ConnectionEvents> {
  readonly socket: Duplex;

  remoteMaxConcurrentStreams = DEFAULT_REMOTE_MAX_STREAMS;
  gotRemoteSettings = false;
  readonly remoteSettings: RemoteSettings = {
    headerTableSize: 4096,
    maxConcurrentStreams: DEFAULT_REMOTE_MAX_STREAMS,
    initialWindowSize: DEFAULT_WINDOW_SIZE,
    maxFrameSize: MIN_MAX_FRAME_SIZE,
    maxHeaderListSize: Infinity,
  };
  /** The peer's GOAWAY, once received. */
  remoteGoaway: { errorCode: number; lastStreamId: number; debugData: Buffer } | null = null;

  private readonly streams = new Map<number, H2Stream>();
  private nextStreamId: number;
  /** Highest stream id whose HEADERS were handed to socket.write (RFC: "written"). */
  private lastWrittenStreamId = 0;

  private readonly encoder = new HpackEncoder();
  private readonly decoder = new HpackDecoder();
  private readonly localWindow: number;
  private readonly localMaxFrameSize: number;
  private readonly localMaxHeaderListSize: number;
  private readonly connWindowTarget: number;

  private connSendWindow = DEFAULT_WINDOW_SIZE;
  private connRecvWindow = DEFAULT_WINDOW_SIZE;
  private connRecvUnacked = 0;
  /** Streams with body bytes waiting for window, in order. */
  private blocked: H2Stream[] = [];

  // Write side: frames are appended at wlen; [wstart, wlen) is not yet written.
  private wbuf = Buffer.allocUnsafeSlow(WRITE_CHUNK);
  private wstart = 0;
  private wlen = 0;
  private flushScheduled = false;
  private readonly useImmediate: boolean;
  private readonly flushCb = (): void => this.flush();

  // Read side: an incomplete frame is kept in rparts until rneed bytes are there.
  private rparts: Buffer[] = [];
  private rlen = 0;
  private rneed = FRAME_HEADER_SIZE;
  private sawFirstFrame = false;

  // A header block split over CONTINUATION frames (RFC 9113 §6.10).
  private contStreamId = 0;
  private contFlags = 0;
  private contBuf: Buffer | null = null;
  private contLen = 0;

  private pings: PendingPing[] = [];
  private pingCounter = 0;

  private closing = false;
  private goawaySent = false;
  private isDestroyed = false;
  private closeEmitted = false;
  private closeWaiters: Array<() => void> = [];

  constructor(socket: Duplex, options: H2ConnectionOptions = {}) {
    super();
    this.socket = socket;
    const s = options.settings ?? {};
    this.localWindow = checkRange('settings.initialWindowSize', s.initialWindowSize ?? DEFAULT_LOCAL_WINDOW, 0, MAX_WINDOW_SIZE);
    this.localMaxHeaderListSize = checkRange('settings.maxHeaderListSize', s.maxHeaderListSize ?? DEFAULT_MAX_HEADER_LIST_SIZE, 0, 2 ** 32 - 1);
    this.localMaxFrameSize = checkRange('maxFrameSize', options.maxFrameSize ?? MIN_MAX_FRAME_SIZE, MIN_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE);
    this.connWindowTarget = checkRange('connectionWindowSize', options.connectionWindowSize ?? DEFAULT_CONNECTION_WINDOW, DEFAULT_WINDOW_SIZE, MAX_WINDOW_SIZE);
    this.useImmediate = options.flush === 'immediate';
    this.nextStreamId = options.firstStreamId ?? 1;
    if (this.nextStreamId % 2 !== 1 || this.nextStreamId > MAX_STREAM_ID) throw new RangeError('firstStreamId must be an odd stream id');

    socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    socket.on('error', (err: Error) => this.fail(ErrorCode.INTERNAL_ERROR, new Http2Error('H2_ERR_SOCKET', `socket error: ${err.message}`, ErrorCode.INTERNAL_ERROR, { cause: err }), false));
    socket.on('close', () => this.onSocketClose());
    (socket as Partial<{ setNoDelay(v: boolean): void }>).setNoDelay?.(true); // we coalesce ourselves; Nagle only adds delay

    this.writePreface();
    if (socket.destroyed) queueMicrotask(() => this.onSocketClose());
  }

  /** No new requests are accepted (closing, GOAWAY received, destroyed, or stream ids used up). */
  get closed(): boolean {
    return this.closing || this.remoteGoaway !== null || this.isDestroyed || this.nextStreamId > MAX_STREAM_ID;
  }

  get destroyed(): boolean {
    return this.isDestroyed;
  }

  /** Open streams (they count against the server's MAX_CONCURRENT_STREAMS). */
  get inFlight(): number {
    return this.streams.size;
  }

  /**
   * Starts a request. headers: pseudo-headers first, lower-case names. The body goes out with
   * the HEADERS in the same write when the send windows allow (RFC 9113 §6.9), else as window
   * opens. Throws Http2Error H2_ERR_CLOSED / H2_ERR_STREAM_LIMIT / H2_ERR_HEADER.
   */
  request(headers: ReadonlyArray<readonly [string, string]>, body: Buffer | string, handler: H2StreamHandler): H2Stream {
    if (this.closed) throw new Http2Error('H2_ERR_CLOSED', this.closedReason(), ErrorCode.REFUSED_STREAM);
    if (this.streams.size >= this.remoteMaxConcurrentStreams) {
      throw new Http2Error('H2_ERR_STREAM_LIMIT', `server allows ${this.remoteMaxConcurrentStreams} concurrent streams`, ErrorCode.REFUSED_STREAM);
    }
    const id = this.nextStreamId;
    const bodyLength = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    const maxFrame = this.remoteSettings.maxFrameSize;
    const inline = bodyLength <= maxFrame && bodyLength <= this.connSendWindow && bodyLength <= this.remoteSettings.initialWindowSize;
    this.reserve(2 * FRAME_HEADER_SIZE + HpackEncoder.maxLength(headers) + (inline ? bodyLength : 0));

    // HEADERS (RFC 9113 §6.2), the block encoded in place after room for the frame header.
    const start = this.wlen;
    const blockStart = start + FRAME_HEADER_SIZE;
    const blockEnd = this.encoder.encode(headers, this.wbuf, blockStart); // may throw: nothing committed yet
    const endStream = bodyLength === 0 ? Flag.END_STREAM : 0;
    if (blockEnd - blockStart <= maxFrame) {
      writeFrameHeader(this.wbuf, start, blockEnd - blockStart, FrameType.HEADERS, Flag.END_HEADERS | endStream, id);
      this.wlen = blockEnd;
    } else {
      this.writeSplitHeaderBlock(id, endStream, Buffer.from(this.wbuf.subarray(blockStart, blockEnd)));
    }
    this.nextStreamId += 2;

    const stream = new H2Stream(id, handler, this.remoteSettings.initialWindowSize, this.localWindow);
    this.streams.set(id, stream);
    if (bodyLength === 0) {
      stream.localEnded = true;
    } else if (inline) {
      // The usual case: the whole body fits in one DATA frame and the windows.
      this.reserve(FRAME_HEADER_SIZE + bodyLength);
      let off = writeFrameHeader(this.wbuf, this.wlen, bodyLength, FrameType.DATA, Flag.END_STREAM, id);
      off += typeof body === 'string' ? this.wbuf.write(body, off, bodyLength, 'utf8') : body.copy(this.wbuf, off);
      this.wlen = off;
      this.connSendWindow -= bodyLength;
      stream.sendWindow -= bodyLength;
      stream.localEnded = true;
    } else {
      stream.pending = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
      if (this.sendPending(stream)) this.enqueueBlocked(stream);
    }
    this.scheduleFlush();
    return stream;
  }

  /** Resets a stream with CANCEL (RFC 9113 §6.4) and reports onClose(CANCEL, false). False if it was not open. */
  cancel(streamId: number): boolean {
    const stream = this.streams.get(streamId);
    if (stream === undefined || this.isDestroyed) return false;
    this.writeRstStream(streamId, ErrorCode.CANCEL);
    this.removeStream(stream);
    this.terminate(stream, ErrorCode.CANCEL, false);
    return true;
  }

  /** Sends a PING (RFC 9113 §6.7); cb gets the round-trip time in ms, or an error if the connection ends first. */
  ping(cb: (err?: Error, ms?: number) => void): void {
    if (this.isDestroyed || this.goawaySent) {
      queueMicrotask(() => cb(new Http2Error('H2_ERR_CLOSED', 'connection is closed')));
      return;
    }
    const id = ++this.pingCounter;
    this.reserve(FRAME_HEADER_SIZE + 8);
    const off = writeFrameHeader(this.wbuf, this.wlen, 8, FrameType.PING, 0, 0);
    this.wbuf.writeUInt32BE(0, off);
    this.wbuf.writeUInt32BE(id, off + 4);
    this.wlen = off + 8;
    this.pings.push({ id, start: performance.now(), cb });
    this.scheduleFlush();
  }

  /** Graceful close: no new requests; when in-flight streams finish, GOAWAY(NO_ERROR) and end the socket. */
  close(): Promise<void> {
    this.closing = true;
    const done = new Promise<void>((resolve) => {
      if (this.closeEmitted) resolve();
      else this.closeWaiters.push(resolve);
    });
    this.maybeFinish();
    return done;
  }

  /** Immediate teardown: open streams get onClose(CANCEL), the socket is destroyed. */
  destroy(err?: Error): void {
    if (this.isDestroyed) return;
    this.teardown(ErrorCode.CANCEL, err, false);
    this.socket.destroy();
  }

  // ---------------------------------------------------------------------------------------
  // Write side

  private writePreface(): void {
    // RFC 9113 §3.4: preface, then our SETTINGS; §6.9.2: the connection window only grows by WINDOW_UPDATE.
    const settings: Array<[number, number]> = [
      [Setting.ENABLE_PUSH, 0],
      [Setting.INITIAL_WINDOW_SIZE, this.localWindow],
      [Setting.MAX_HEADER_LIST_SIZE, this.localMaxHeaderListSize],
    ];
    if (this.localMaxFrameSize !== MIN_MAX_FRAME_SIZE) settings.push([Setting.MAX_FRAME_SIZE, this.localMaxFrameSize]);
    this.reserve(CONNECTION_PREFACE.length + FRAME_HEADER_SIZE * 2 + settings.length * 6 + 4);
    this.wlen += CONNECTION_PREFACE.copy(this.wbuf, this.wlen);
    let off = writeFrameHeader(this.wbuf, this.wlen, settings.length * 6, FrameType.SETTINGS, 0, 0);
    for (const [key, value] of settings) {
      this.wbuf.writeUInt16BE(key, off);
      this.wbuf.writeUInt32BE(value, off + 2);
      off += 6;
    }
    this.wlen = off;
    const increment = this.connWindowTarget - DEFAULT_WINDOW_SIZE;
    if (increment > 0) this.writeWindowUpdate(0, increment);
    this.connRecvWindow = this.connWindowTarget;
    this.scheduleFlush();
  }

  /** Makes room for n more bytes at wlen, moving the unwritten tail to a fresh buffer if needed. */
  private reserve(n: number): void {
    if (this.wlen + n <= this.wbuf.length) return;
    const unwritten = this.wlen - this.wstart;
    const next = Buffer.allocUnsafeSlow(Math.max(WRITE_CHUNK, (unwritten + n) * 2));
    this.wbuf.copy(next, 0, this.wstart, this.wlen);
    this.wbuf = next; // buffers already handed to socket.write keep the old memory alive
    this.wstart = 0;
    this.wlen = unwritten;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    if (this.useImmediate) setImmediate(this.flushCb);
    else queueMicrotask(this.flushCb);
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.wlen === this.wstart || this.isDestroyed) return;
    if (!this.socket.writable) return; // the 'close' that follows fails these streams as never written
    const chunk = this.wbuf.subarray(this.wstart, this.wlen);
    this.wstart = this.wlen;
    this.lastWrittenStreamId = this.nextStreamId - 2;
    this.socket.write(chunk);
  }

  /** A header block larger than the peer's frame size: HEADERS + CONTINUATION (RFC 9113 §6.10). */
  private writeSplitHeaderBlock(id: number, endStream: number, block: Buffer): void {
    const maxFrame = this.remoteSettings.maxFrameSize;
    const frames = Math.ceil(block.length / maxFrame);
    this.reserve(frames * FRAME_HEADER_SIZE + block.length);
    for (let i = 0, pos = 0; i < frames; i++, pos += maxFrame) {
      const n = Math.min(maxFrame, block.length - pos);
      const flags = (i === frames - 1 ? Flag.END_HEADERS : 0) | (i === 0 ? endStream : 0);
      const off = writeFrameHeader(this.wbuf, this.wlen, n, i === 0 ? FrameType.HEADERS : FrameType.CONTINUATION, flags, id);
      this.wlen = off + block.copy(this.wbuf, off, pos, pos + n);
    }
  }

  /** Sends what the windows allow of a stream's pending body; true while bytes remain. */
  private sendPending(stream: H2Stream): boolean {
    const body = stream.pending;
    if (body === null) return false;
    const maxFrame = this.remoteSettings.maxFrameSize;
    while (stream.pendingOffset < body.length) {
      const n = Math.min(body.length - stream.pendingOffset, this.connSendWindow, stream.sendWindow, maxFrame);
      if (n <= 0) {
        this.scheduleFlush();
        return true;
      }
      const last = stream.pendingOffset + n === body.length;
      this.reserve(FRAME_HEADER_SIZE + n);
      const off = writeFrameHeader(this.wbuf, this.wlen, n, FrameType.DATA, last ? Flag.END_STREAM : 0, stream.id);
      this.wlen = off + body.copy(this.wbuf, off, stream.pendingOffset, stream.pendingOffset + n);
      stream.pendingOffset += n;
      this.connSendWindow -= n;
      stream.sendWindow -= n;
    }
    stream.pending = null;
    stream.localEnded = true;
    this.scheduleFlush();
    return false;
  }

  private enqueueBlocked(stream: H2Stream): void {
    if (stream.queued) return;
    stream.queued = true;
    this.blocked.push(stream);
  }

  /** After a window grew: send blocked bodies in arrival order. */
  private drainBlocked(): void {
    if (this.blocked.length === 0) return;
    const still: H2Stream[] = [];
    for (const stream of this.blocked) {
      if (stream.pending !== null && this.connSendWindow > 0) this.sendPending(stream);
      if (stream.pending !== null) still.push(stream);
      else stream.queued = false;
    }
    this.blocked = still;
  }

  private writeRstStream(streamId: number, code: number): void {
    this.reserve(FRAME_HEADER_SIZE + 4);
    const off = writeFrameHeader(this.wbuf, this.wlen, 4, FrameType.RST_STREAM, 0, streamId);
    this.wbuf.writeUInt32BE(code, off);
    this.wlen = off + 4;
    this.scheduleFlush();
  }

  private writeWindowUpdate(streamId: number, increment: number): void {
    this.reserve(FRAME_HEADER_SIZE + 4);
    const off = writeFrameHeader(this.wbuf, this.wlen, 4, FrameType.WINDOW_UPDATE, 0, streamId);
    this.wbuf.writeUInt32BE(increment, off);
    this.wlen = off + 4;
    this.scheduleFlush();
  }

  private writeGoaway(code: number, debug: string): void {
    const data = Buffer.from(debug, 'utf8');
    this.reserve(FRAME_HEADER_SIZE + 8 + data.length);
    // Last-stream-id 0: we never accept server-initiated streams (push is off).
    const off = writeFrameHeader(this.wbuf, this.wlen, 8 + data.length, FrameType.GOAWAY, 0, 0);
    this.wbuf.writeUInt32BE(0, off);
    this.wbuf.writeUInt32BE(code, off + 4);
    this.wlen = off + 8 + data.copy(this.wbuf, off + 8);
    this.goawaySent = true;
  }

  // ---------------------------------------------------------------------------------------
  // Read side

  private onSocketData(chunk: Buffer): void {
    if (this.isDestroyed) return;
    let buf = chunk;
    if (this.rlen > 0) {
      // Wait for the whole frame, then join once (no quadratic re-concatenation).
      this.rparts.push(chunk);
      this.rlen += chunk.length;
      if (this.rlen < this.rneed) return;
      buf = Buffer.concat(this.rparts, this.rlen);
      this.rparts = [];
      this.rlen = 0;
    }
    let off = 0;
    try {
      while (buf.length - off >= FRAME_HEADER_SIZE) {
        const length = readFrameLength(buf, off);
        // RFC 9113 §4.2: a frame above our SETTINGS_MAX_FRAME_SIZE is a FRAME_SIZE_ERROR.
        if (length > this.localMaxFrameSize) throw new Http2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${length} bytes`);
        if (buf.length - off < FRAME_HEADER_SIZE + length) break;
        this.onFrame(buf, off, length);
        if (this.isDestroyed) return;
        off += FRAME_HEADER_SIZE + length;
      }
    } catch (err) {
      if (err instanceof Http2ProtocolError) this.fail(err.h2Code, err, true);
      else this.fail(ErrorCode.INTERNAL_ERROR, err instanceof Error ? err : new Error(String(err)), true);
      return;
    }
    if (off < buf.length) {
      const rest = buf.subarray(off);
      this.rparts.push(rest);
      this.rlen = rest.length;
      this.rneed = rest.length >= FRAME_HEADER_SIZE ? FRAME_HEADER_SIZE + readFrameLength(rest, 0) : FRAME_HEADER_SIZE;
    }
  }

  private onFrame(buf: Buffer, off: number, length: number): void {
    const type = buf[off + 3];
    const flags = buf[off + 4];
    const streamId = readUint31(buf, off + 5);
    const p = off + FRAME_HEADER_SIZE;
    const end = p + length;
    // RFC 9113 §3.4: the server preface is a SETTINGS frame.
    if (!this.sawFirstFrame) {
      if (type !== FrameType.SETTINGS || (flags & Flag.ACK) !== 0) throw protocolError('server preface is not SETTINGS');
      this.sawFirstFrame = true;
    }
    // RFC 9113 §6.10: nothing may come between HEADERS and its CONTINUATIONs.
    if (this.contStreamId !== 0 && (type !== FrameType.CONTINUATION || streamId !== this.contStreamId)) {
      throw protocolError('expected CONTINUATION');
    }
    switch (type) {
      case FrameType.DATA: return this.onDataFrame(buf, p, end, flags, streamId);
      case FrameType.HEADERS: return this.onHeadersFrame(buf, p, end, flags, streamId);
      case FrameType.PRIORITY:
        if (streamId === 0) throw protocolError('PRIORITY on stream 0');
        return; // RFC 9113 §5.3.2: priority signals are ignored
      case FrameType.RST_STREAM: return this.onRstStream(buf, p, length, streamId);
      case FrameType.SETTINGS: return this.onSettings(buf, p, length, flags, streamId);
      case FrameType.PUSH_PROMISE: throw protocolError('PUSH_PROMISE with push disabled'); // RFC 9113 §8.4
      case FrameType.PING: return this.onPing(buf, p, length, flags, streamId);
      case FrameType.GOAWAY: return this.onGoaway(buf, p, end, streamId);
      case FrameType.WINDOW_UPDATE: return this.onWindowUpdate(buf, p, length, streamId);
      case FrameType.CONTINUATION: return this.onContinuation(buf, p, end, flags, streamId);
      default: return; // RFC 9113 §4.1: unknown frame types are ignored
    }
  }

  /** A stream id the server refers to must be one we opened (RFC 9113 §5.1: frames on idle streams). */
  private checkKnownStream(streamId: number): void {
    if ((streamId & 1) === 0 || streamId >= this.nextStreamId) throw protocolError(`frame on idle stream ${streamId}`);
  }

  private onDataFrame(buf: Buffer, p: number, end: number, flags: number, streamId: number): void {
    if (streamId === 0) throw protocolError('DATA on stream 0');
    const length = end - p;
    // RFC 9113 §6.9: the whole payload, padding included, counts against the windows.
    if (length > this.connRecvWindow) throw new Http2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, 'connection receive window exceeded');
    this.connRecvWindow -= length;
    this.connRecvUnacked += length;
    if (this.connRecvUnacked >= this.connWindowTarget >>> 1) {
      this.writeWindowUpdate(0, this.connRecvUnacked);
      this.connRecvWindow += this.connRecvUnacked;
      this.connRecvUnacked = 0;
    }
    if ((flags & Flag.PADDED) !== 0) {
      if (length < 1 || buf[p] >= length) throw protocolError('DATA padding exceeds payload'); // RFC 9113 §6.1
      end -= buf[p];
      p += 1;
    }
    const stream = this.streams.get(streamId);
    if (stream === undefined) {
      this.checkKnownStream(streamId);
      return; // a stream we reset or finished: frames in flight are dropped
    }
    if (length > stream.recvWindow) return this.streamError(stream, ErrorCode.FLOW_CONTROL_ERROR);
    stream.recvWindow -= length;
    if (!stream.responded) return this.streamError(stream, ErrorCode.PROTOCOL_ERROR); // DATA before response HEADERS
    if (end > p) stream.handler.onData(buf.subarray(p, end), stream);
    if ((flags & Flag.END_STREAM) !== 0) return this.remoteEnd(stream);
    if (stream.done) return;
    stream.recvUnacked += length;
    if (stream.recvUnacked >= this.localWindow >>> 1) {
      this.writeWindowUpdate(streamId, stream.recvUnacked);
      stream.recvWindow += stream.recvUnacked;
      stream.recvUnacked = 0;
    }
  }

  private onHeadersFrame(buf: Buffer, p: number, end: number, flags: number, streamId: number): void {
    if (streamId === 0) throw protocolError('HEADERS on stream 0');
    this.checkKnownStream(streamId); // RFC 9113 §8.4: the server cannot open streams
    let pad = 0;
    if ((flags & Flag.PADDED) !== 0) {
      if (end - p < 1) throw protocolError('HEADERS too short');
      pad = buf[p++];
    }
    if ((flags & Flag.PRIORITY) !== 0) p += 5; // deprecated priority fields (RFC 9113 §6.2)
    if (p + pad > end) throw protocolError('HEADERS padding exceeds payload');
    end -= pad;
    if ((flags & Flag.END_HEADERS) !== 0) return this.onHeaderBlock(streamId, flags, buf, p, end);
    this.contStreamId = streamId;
    this.contFlags = flags;
    this.contLen = 0;
    this.appendFragment(buf, p, end);
  }

  private onContinuation(buf: Buffer, p: number, end: number, flags: number, streamId: number): void {
    if (this.contStreamId === 0 || streamId !== this.contStreamId) throw protocolError('unexpected CONTINUATION');
    this.appendFragment(buf, p, end);
    if ((flags & Flag.END_HEADERS) === 0) return;
    const block = this.contBuf!;
    const length = this.contLen;
    this.contStreamId = 0;
    this.contBuf = null;
    this.contLen = 0;
    this.onHeaderBlock(streamId, this.contFlags, block, 0, length);
  }

  private appendFragment(buf: Buffer, p: number, end: number): void {
    const n = end - p;
    // Bound memory: an encoded block is never much larger than the decoded list we accept.
    if (this.contLen + n > this.localMaxHeaderListSize + 16_384) {
      throw new Http2ProtocolError(ErrorCode.ENHANCE_YOUR_CALM, 'header block too large');
    }
    if (this.contBuf === null || this.contBuf.length < this.contLen + n) {
      const next = Buffer.allocUnsafe(Math.max(16_384, (this.contLen + n) * 2));
      if (this.contBuf !== null) this.contBuf.copy(next, 0, 0, this.contLen);
      this.contBuf = next;
    }
    this.contLen += buf.copy(this.contBuf, this.contLen, p, end);
  }

  private onHeaderBlock(streamId: number, flags: number, buf: Buffer, start: number, end: number): void {
    // Decode even for streams we no longer want: the dynamic table must stay in sync (RFC 7541 §2.2).
    const fields = this.decoder.decode(buf, start, end);
    const stream = this.streams.get(streamId);
    if (stream === undefined) return;
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (this.decoder.headerListSize > this.localMaxHeaderListSize) return this.streamError(stream, ErrorCode.PROTOCOL_ERROR);
    if (stream.responded) {
      // Trailers (RFC 9113 §8.1) are tolerated and dropped; they must end the stream.
      if (!endStream) return this.streamError(stream, ErrorCode.PROTOCOL_ERROR);
      return this.remoteEnd(stream);
    }
    // RFC 9113 §8.3.2: exactly one pseudo-header, ':status', before the regular fields.
    const status = fields.length > 0 && fields[0][0] === ':status' ? parseStatus(fields[0][1]) : -1;
    if (status < 0) return this.streamError(stream, ErrorCode.PROTOCOL_ERROR);
    fields.shift();
    for (let i = 0; i < fields.length; i++) {
      if (fields[i][0].charCodeAt(0) === 0x3a) return this.streamError(stream, ErrorCode.PROTOCOL_ERROR);
    }
    if (status < 200) {
      // Informational responses precede the final one and cannot end the stream (RFC 9113 §8.1).
      if (endStream) this.streamError(stream, ErrorCode.PROTOCOL_ERROR);
      return;
    }
    stream.responded = true;
    stream.handler.onResponse(status, fields, stream);
    if (endStream && !stream.done) this.remoteEnd(stream);
  }

  private onRstStream(buf: Buffer, p: number, length: number, streamId: number): void {
    if (streamId === 0) throw protocolError('RST_STREAM on stream 0');
    if (length !== 4) throw new Http2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM length'); // RFC 9113 §6.4
    const stream = this.streams.get(streamId);
    if (stream === undefined) return this.checkKnownStream(streamId);
    const code = readUint32(buf, p);
    this.removeStream(stream);
    // RFC 9113 §8.7: REFUSED_STREAM means the server did nothing with the request.
    this.terminate(stream, code, code === ErrorCode.REFUSED_STREAM);
  }

  private onSettings(buf: Buffer, p: number, length: number, flags: number, streamId: number): void {
    if (streamId !== 0) throw protocolError('SETTINGS on a stream');
    if ((flags & Flag.ACK) !== 0) {
      if (length !== 0) throw new Http2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with payload');
      return;
    }
    if (length % 6 !== 0) throw new Http2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS length'); // RFC 9113 §6.5
    const rs = this.remoteSettings;
    let windowDelta = 0;
    for (let i = p; i < p + length; i += 6) {
      const key = buf.readUInt16BE(i);
      const value = readUint32(buf, i + 2);
      switch (key) {
        case Setting.HEADER_TABLE_SIZE:
          rs.headerTableSize = value; // our encoder never indexes, so any size works (see hpack.ts)
          break;
        case Setting.ENABLE_PUSH:
          if (value !== 0) throw protocolError('server sent ENABLE_PUSH != 0'); // RFC 9113 §6.5.2
          break;
        case Setting.MAX_CONCURRENT_STREAMS:
          rs.maxConcurrentStreams = value;
          this.remoteMaxConcurrentStreams = value;
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW_SIZE) throw new Http2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, 'INITIAL_WINDOW_SIZE too large');
          // RFC 9113 §6.9.2: open streams' send windows move by the difference (and may go negative).
          const delta = value - rs.initialWindowSize;
          rs.initialWindowSize = value;
          windowDelta += delta;
          for (const stream of this.streams.values()) {
            stream.sendWindow += delta;
            if (stream.sendWindow > MAX_WINDOW_SIZE) throw new Http2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, 'stream window overflow');
          }
          break;
        }
        case Setting.MAX_FRAME_SIZE:
          if (value < MIN_MAX_FRAME_SIZE || value > MAX_MAX_FRAME_SIZE) throw protocolError('MAX_FRAME_SIZE out of range');
          rs.maxFrameSize = value;
          break;
        case Setting.MAX_HEADER_LIST_SIZE:
          rs.maxHeaderListSize = value;
          break;
        default:
          break; // RFC 9113 §6.5.2: unknown settings are ignored
      }
    }
    this.reserve(FRAME_HEADER_SIZE);
    this.wlen = writeFrameHeader(this.wbuf, this.wlen, 0, FrameType.SETTINGS, Flag.ACK, 0);
    this.scheduleFlush();
    if (windowDelta > 0) this.drainBlocked();
    const first = !this.gotRemoteSettings;
    this.gotRemoteSettings = true;
    this.emit('remoteSettings', { ...rs });
    if (first && !this.isDestroyed) this.emit('connect');
  }

  private onPing(buf: Buffer, p: number, length: number, flags: number, streamId: number): void {
    if (streamId !== 0) throw protocolError('PING on a stream');
    if (length !== 8) throw new Http2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, 'PING length'); // RFC 9113 §6.7
    if ((flags & Flag.ACK) === 0) {
      this.reserve(FRAME_HEADER_SIZE + 8);
      const off = writeFrameHeader(this.wbuf, this.wlen, 8, FrameType.PING, Flag.ACK, 0);
      this.wlen = off + buf.copy(this.wbuf, off, p, p + 8);
      this.scheduleFlush();
      return;
    }
    const id = readUint32(buf, p + 4);
    const i = this.pings.findIndex((ping) => ping.id === id);
    if (i < 0) return; // not ours (or already failed)
    const [ping] = this.pings.splice(i, 1);
    ping.cb(undefined, performance.now() - ping.start);
  }

  private onGoaway(buf: Buffer, p: number, end: number, streamId: number): void {
    if (streamId !== 0) throw protocolError('GOAWAY on a stream');
    if (end - p < 8) throw new Http2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY length');
    // RFC 9113 §6.8: a later GOAWAY may lower last-stream-id, never raise it.
    const lastStreamId = Math.min(readUint31(buf, p), this.remoteGoaway?.lastStreamId ?? MAX_STREAM_ID);
    const errorCode = readUint32(buf, p + 4);
    const debugData = Buffer.from(buf.subarray(p + 8, end));
    this.remoteGoaway = { errorCode, lastStreamId, debugData };
    // Streams above last-stream-id were not and will not be processed: safe to retry elsewhere.
    for (const stream of [...this.streams.values()]) {
      if (stream.id <= lastStreamId) continue;
      this.removeStream(stream);
      this.terminate(stream, ErrorCode.REFUSED_STREAM, true);
    }
    this.emit('goaway', errorCode, lastStreamId, debugData);
    this.maybeFinish();
  }

  private onWindowUpdate(buf: Buffer, p: number, length: number, streamId: number): void {
    if (length !== 4) throw new Http2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE length'); // RFC 9113 §6.9
    const increment = readUint31(buf, p);
    if (streamId === 0) {
      if (increment === 0) throw protocolError('WINDOW_UPDATE of 0');
      this.connSendWindow += increment;
      if (this.connSendWindow > MAX_WINDOW_SIZE) throw new Http2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window overflow');
      return this.drainBlocked();
    }
    const stream = this.streams.get(streamId);
    if (stream === undefined) return this.checkKnownStream(streamId);
    if (increment === 0) return this.streamError(stream, ErrorCode.PROTOCOL_ERROR);
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW_SIZE) return this.streamError(stream, ErrorCode.FLOW_CONTROL_ERROR);
    if (stream.pending !== null) this.drainBlocked();
  }

  // ---------------------------------------------------------------------------------------
  // Stream and connection ends

  private remoteEnd(stream: H2Stream): void {
    if (stream.done) return; // cancelled from a callback
    // RFC 9113 §8.1: a complete response may precede the end of the request; stop sending it.
    if (!stream.localEnded) this.writeRstStream(stream.id, ErrorCode.CANCEL);
    this.removeStream(stream);
    stream.done = true;
    stream.handler.onEnd(stream);
  }

  /** RFC 9113 §5.4.2: reset the stream, report it, keep the connection. */
  private streamError(stream: H2Stream, code: number): void {
    this.writeRstStream(stream.id, code);
    this.removeStream(stream);
    this.terminate(stream, code, false);
  }

  private removeStream(stream: H2Stream): void {
    this.streams.delete(stream.id);
    stream.pending = null;
    if (this.streams.size === 0) this.maybeFinish();
  }

  private terminate(stream: H2Stream, code: number, unprocessed: boolean): void {
    if (stream.done) return;
    stream.done = true;
    stream.handler.onClose(code, unprocessed, stream);
  }

  /** When no new requests are possible and nothing is in flight: GOAWAY(NO_ERROR) and end the socket. */
  private maybeFinish(): void {
    if (this.isDestroyed || this.goawaySent || this.streams.size > 0 || !this.closed) return;
    this.writeGoaway(ErrorCode.NO_ERROR, '');
    this.flush();
    this.endSocket();
  }

  /**
   * Ends our side, then closes once our last bytes are flushed: a peer that sent GOAWAY itself
   * may have stopped reading (node:http2 does) and would never answer our FIN.
   */
  private endSocket(): void {
    const socket = this.socket;
    const destroy = (): void => {
      socket.destroy();
    };
    socket.once('finish', destroy);
    socket.end();
    const timer = setTimeout(destroy, END_GRACE_MS); // a peer that stopped reading entirely
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }

  /** Connection error (RFC 9113 §5.4.1): GOAWAY if we can, fail every stream, close. */
  private fail(code: number, err: Error, sendGoaway: boolean): void {
    if (this.isDestroyed) return;
    // Unwritten frames are dropped, so streams not yet written are certainly unprocessed.
    this.wlen = this.wstart;
    const canWrite = sendGoaway && !this.goawaySent && !this.socket.destroyed && this.socket.writable;
    if (canWrite) {
      this.writeGoaway(code, err.message.slice(0, 200));
      this.socket.write(this.wbuf.subarray(this.wstart, this.wlen));
      this.wstart = this.wlen;
    }
    this.teardown(code, err, true);
    if (canWrite) this.endSocket();
    else this.socket.destroy();
  }

  private onSocketClose(): void {
    if (this.isDestroyed) return;
    const err = this.streams.size > 0 ? new Http2Error('H2_ERR_SOCKET', 'socket closed with streams in flight', ErrorCode.INTERNAL_ERROR) : undefined;
    this.teardown(this.remoteGoaway?.errorCode || ErrorCode.INTERNAL_ERROR, err, false);
  }

  /** Final state: every stream and ping failed, then 'error' (if asked and listened to) and 'close'. Leaves the socket alone. */
  private teardown(code: number, err: Error | undefined, emitError: boolean): void {
    this.isDestroyed = true;
    this.flushScheduled = false;
    const streams = [...this.streams.values()];
    this.streams.clear();
    this.blocked = [];
    for (const stream of streams) {
      stream.pending = null;
      this.terminate(stream, code, stream.id > this.lastWrittenStreamId);
    }
    const pings = this.pings;
    this.pings = [];
    for (const ping of pings) ping.cb(err ?? new Http2Error('H2_ERR_CLOSED', 'connection closed before PING ACK'));
    if (emitError && err !== undefined && this.listenerCount('error') > 0) this.emit('error', err);
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    this.emit('close', err);
    for (const resolve of this.closeWaiters.splice(0)) resolve();
  }

  private closedReason(): string {
    if (this.isDestroyed) return 'connection is destroyed';
    if (this.remoteGoaway !== null) return `server sent GOAWAY (error ${this.remoteGoaway.errorCode})`;
    if (this.closing) return 'connection is closing';
    return 'stream ids exhausted';
  }
}

function protocolError(message: string): Http2ProtocolError {
  return new Http2ProtocolError(ErrorCode.PROTOCOL_ERROR, message);
}

/** Three ASCII digits (RFC 9110 §15), without allocating. */
function parseStatus(s: string): number {
  if (s.length !== 3) return -1;
  const a = s.charCodeAt(0) - 48;
  const b = s.charCodeAt(1) - 48;
  const c = s.charCodeAt(2) - 48;
  if (a < 1 || a > 9 || b < 0 || b > 9 || c < 0 || c > 9) return -1;
  return a * 100 + b * 10 + c;
}

function checkRange(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`${name} must be an integer in [${min}, ${max}]`);
  return value;
}
