/**
 * Incremental framing of SIP messages on a byte stream (RFC 3261 §18.3) plus the
 * RFC 5626 §3.5.1 CRLF keep-alive.
 *
 * On a stream the header section ends at the first empty line and the body is exactly
 * Content-Length bytes (mandatory on streams; compact form `l`). Between messages a
 * double CRLF is a keep-alive "ping" (reported so the transport can answer with a single
 * CRLF "pong"); a single CRLF is a "pong" and is swallowed (RFC 3261 §7.5 also says to
 * ignore CRLFs before a start line).
 *
 * The framer never grows beyond its limits: a header section or body above the limit, or a
 * missing/invalid Content-Length, is a framing error (SipLimitError / SipParseError). After
 * a framing error the stream cannot be resynchronised and every further `push` throws the
 * same error; the connection must be closed.
 */

import { SipLimitError, SipParseError } from '../errors.js';
import type { SipError } from '../errors.js';
import { DEFAULT_LIMITS } from '../message/parser.js';

/** The parser's own limit: a message the framer accepts is one the parser takes. */
export const DEFAULT_MAX_MESSAGE_BYTES = DEFAULT_LIMITS.maxMessageBytes;

export interface StreamFramerLimits {
  /** Whole message (header section + body). Default 64 KiB. */
  maxMessageBytes?: number;
  /** Header section including the start line and the empty line. Default: maxMessageBytes. */
  maxHeaderBytes?: number;
  /** Body. Default: maxMessageBytes. */
  maxBodyBytes?: number;
}

export interface StreamFramerHandlers {
  /** One whole message (a private copy; the framer does not keep it). */
  onMessage(data: Buffer): void;
  /** A "\r\n\r\n" keep-alive ping between messages: answer with "\r\n". */
  onPing?(): void;
  /** A lone "\r\n" keep-alive pong between messages (already swallowed). */
  onPong?(): void;
}

const CR = 0x0d;
const LF = 0x0a;
const INITIAL_CAPACITY = 4096;
/** An idle framer whose buffer grew past this gives the memory back. */
const SHRINK_ABOVE = 256 * 1024;

const CONTENT_LENGTH_LINE = /^(?:content-length|l)[ \t]*:(.*)$/i;

export class StreamFramer {
  readonly maxMessageBytes: number;
  readonly maxHeaderBytes: number;
  readonly maxBodyBytes: number;

  private buf: Buffer = Buffer.alloc(0);
  private start = 0;
  private end = 0;
  /** True once the bytes at `start` are known to begin a message (not a keep-alive). */
  private inMessage = false;
  /** Offset (relative to `start`) where the search for the empty line resumes. */
  private scanFrom = 0;
  /** Header section length incl. the empty line, once found; -1 before. */
  private headerLength = -1;
  private bodyLength = -1;
  private failure: SipError | undefined;

  constructor(private readonly handlers: StreamFramerHandlers, limits: StreamFramerLimits = {}) {
    this.maxMessageBytes = positive(limits.maxMessageBytes, DEFAULT_MAX_MESSAGE_BYTES);
    this.maxHeaderBytes = Math.min(positive(limits.maxHeaderBytes, this.maxMessageBytes), this.maxMessageBytes);
    this.maxBodyBytes = Math.min(positive(limits.maxBodyBytes, this.maxMessageBytes), this.maxMessageBytes);
  }

  /** Bytes held for an incomplete message or keep-alive. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** The framing error that stopped this framer, if any. */
  get error(): SipError | undefined {
    return this.failure;
  }

  /**
   * Feed bytes. Calls the handlers for every complete message / keep-alive, in order.
   * Throws SipLimitError or SipParseError on a framing error (after delivering the
   * messages that preceded it). Exceptions thrown by the handlers propagate unchanged and
   * leave the framer usable (the message was consumed before the handler ran; bytes after
   * it stay buffered until the next push).
   */
  push(chunk: Uint8Array): void {
    if (this.failure) throw this.failure;
    if (chunk.length > 0) this.append(chunk);
    try {
      while (this.step()) {
        /* keep going while progress is made */
      }
    } finally {
      if (this.failure) {
        this.buf = Buffer.alloc(0);
        this.start = this.end = 0;
      }
    }
    this.compactIfIdle();
  }

  /** One unit of progress (a keep-alive or a message). False when more bytes are needed. */
  private step(): boolean {
    const avail = this.end - this.start;
    if (avail === 0) return false;
    const b = this.buf;
    const s = this.start;

    if (!this.inMessage) {
      if (b[s] === CR) {
        // Possibly a keep-alive. Decide only once enough bytes are here.
        if (avail === 1) return false;
        if (b[s + 1] === LF) {
          if (avail === 2) return false; // "\r\n" so far: a pong, or half of a ping
          if (b[s + 2] === CR) {
            if (avail === 3) return false;
            if (b[s + 3] === LF) {
              this.start += 4;
              this.handlers.onPing?.();
              return true;
            }
          }
          this.start += 2;
          this.handlers.onPong?.();
          return true;
        }
      } else if (b[s] === LF) {
        // A bare LF between messages: tolerated and ignored like a CRLF (RFC 3261 §7.5).
        this.start += 1;
        return true;
      }
      this.inMessage = true;
      this.scanFrom = 0;
    }

    if (this.headerLength < 0) {
      const found = this.findHeaderEnd();
      if (found < 0) {
        if (avail >= this.maxHeaderBytes) {
          throw this.fail(new SipLimitError(`Header section larger than ${this.maxHeaderBytes} bytes`));
        }
        return false;
      }
      if (found > this.maxHeaderBytes) {
        throw this.fail(new SipLimitError(`Header section larger than ${this.maxHeaderBytes} bytes`));
      }
      let length: number;
      try {
        length = contentLength(this.buf.toString('latin1', s, s + found));
      } catch (err) {
        throw this.fail(err as SipParseError);
      }
      if (length > this.maxBodyBytes) {
        throw this.fail(new SipLimitError(`Body larger than ${this.maxBodyBytes} bytes (Content-Length ${length})`));
      }
      if (found + length > this.maxMessageBytes) {
        throw this.fail(new SipLimitError(`Message larger than ${this.maxMessageBytes} bytes`));
      }
      this.headerLength = found;
      this.bodyLength = length;
    }

    const total = this.headerLength + this.bodyLength;
    if (avail < total) return false;
    const message = Buffer.from(this.buf.subarray(s, s + total)); // copy: the buffer is reused
    this.start += total;
    this.inMessage = false;
    this.headerLength = -1;
    this.bodyLength = -1;
    this.scanFrom = 0;
    this.handlers.onMessage(message);
    return true;
  }

  /**
   * Length of the header section (through the empty line) or -1. Accepts CRLF and bare LF
   * line ends. Each byte is examined about once across calls (`scanFrom`).
   */
  private findHeaderEnd(): number {
    const view = this.buf.subarray(this.start, this.end);
    let pos = this.scanFrom;
    for (;;) {
      const lf = view.indexOf(LF, pos);
      if (lf < 0) {
        this.scanFrom = view.length;
        return -1;
      }
      if (lf + 1 >= view.length) {
        this.scanFrom = lf;
        return -1;
      }
      const next = view[lf + 1];
      if (next === LF) return lf + 2;
      if (next === CR) {
        if (lf + 2 >= view.length) {
          this.scanFrom = lf;
          return -1;
        }
        if (view[lf + 2] === LF) return lf + 3;
      }
      pos = lf + 1;
    }
  }

  private fail(err: SipError): SipError {
    this.failure = err;
    return err;
  }

  private append(chunk: Uint8Array): void {
    const used = this.end - this.start;
    if (this.end + chunk.length > this.buf.length) {
      const needed = used + chunk.length;
      if (needed <= this.buf.length) {
        this.buf.copy(this.buf, 0, this.start, this.end);
      } else {
        const grown = Buffer.allocUnsafe(Math.max(needed, this.buf.length * 2, INITIAL_CAPACITY));
        this.buf.copy(grown, 0, this.start, this.end);
        this.buf = grown;
      }
      this.start = 0;
      this.end = used;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }

  private compactIfIdle(): void {
    if (this.start === this.end) {
      this.start = this.end = 0;
      if (this.buf.length > SHRINK_ABOVE) this.buf = Buffer.alloc(0);
    }
  }
}

/**
 * The Content-Length of a header section (start line + headers + empty line, latin1).
 * Folded header lines are unfolded first. Several Content-Length headers must agree.
 */
export function contentLength(headerSection: string): number {
  const lines = headerSection.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/);
  let value: number | undefined;
  for (let i = 1; i < lines.length; i++) {
    const match = CONTENT_LENGTH_LINE.exec(lines[i]);
    if (!match) continue;
    const raw = match[1].trim();
    if (!/^\d{1,10}$/.test(raw)) throw new SipParseError('Bad Content-Length', JSON.stringify(raw.slice(0, 40)));
    const n = Number(raw);
    if (value !== undefined && value !== n) throw new SipParseError('Bad Content-Length', 'conflicting values');
    value = n;
  }
  if (value === undefined) throw new SipParseError('Missing Content-Length', 'required on stream transports');
  return value;
}

function positive(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? Math.floor(value) : fallback;
}

/** RFC 5626 §3.5.1: the single CRLF "pong" that answers a double-CRLF "ping". */
export const PONG = Buffer.from('\r\n');

/** A datagram or WebSocket message that is empty or only CR/LF bytes: a keep-alive. */
export function isCrlfOnly(data: Uint8Array): boolean {
  for (const byte of data) if (byte !== 0x0d && byte !== 0x0a) return false;
  return true;
}
