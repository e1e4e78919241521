/**
 * HTTP/2 framing constants and helpers (RFC 9113 §4, §6, §7), and the errors of the h2 client.
 */

/** RFC 9113 §3.4: the client connection preface. */
export const CONNECTION_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FRAME_HEADER_SIZE = 9;

/** Frame types, RFC 9113 §6. */
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** Frame flags, RFC 9113 §6 (ACK shares END_STREAM's bit on SETTINGS and PING). */
export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** SETTINGS parameters, RFC 9113 §6.5.2. */
export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** Error codes, RFC 9113 §7. */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

export const DEFAULT_WINDOW_SIZE = 65_535;
export const MAX_WINDOW_SIZE = 0x7fff_ffff;
export const MIN_MAX_FRAME_SIZE = 16_384;
export const MAX_MAX_FRAME_SIZE = 0xff_ffff;
export const MAX_STREAM_ID = 0x7fff_ffff;

/** Writes a frame header at off (RFC 9113 §4.1); returns the offset after it. */
export function writeFrameHeader(buf: Buffer, off: number, length: number, type: number, flags: number, streamId: number): number {
  buf[off] = length >>> 16;
  buf[off + 1] = (length >>> 8) & 0xff;
  buf[off + 2] = length & 0xff;
  buf[off + 3] = type;
  buf[off + 4] = flags;
  buf.writeUInt32BE(streamId & MAX_STREAM_ID, off + 5);
  return off + FRAME_HEADER_SIZE;
}

/** The 24-bit payload length of the frame header at off. */
export function readFrameLength(buf: Uint8Array, off: number): number {
  return (buf[off] << 16) | (buf[off + 1] << 8) | buf[off + 2];
}

/** A 31-bit stream id or window increment at off; the reserved high bit is ignored (RFC 9113 §4.1). */
export function readUint31(buf: Uint8Array, off: number): number {
  return ((buf[off] & 0x7f) * 0x100_0000) + ((buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]);
}

export function readUint32(buf: Uint8Array, off: number): number {
  return (buf[off] * 0x100_0000) + ((buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]);
}

export type Http2ErrorCode =
  /** The peer broke RFC 9113 (bad frame, bad state); `h2Code` says which RFC 9113 §7 code we sent. */
  | 'H2_ERR_PROTOCOL'
  /** An HPACK block could not be decoded (RFC 7541), a COMPRESSION_ERROR. */
  | 'H2_ERR_COMPRESSION'
  /** The socket failed or closed under open streams. */
  | 'H2_ERR_SOCKET'
  /** The peer sent GOAWAY with an error code (`h2Code`). */
  | 'H2_ERR_GOAWAY'
  /** request() on a connection that no longer takes requests (closing, GOAWAY, destroyed, ids exhausted). */
  | 'H2_ERR_CLOSED'
  /** request() beyond the server's SETTINGS_MAX_CONCURRENT_STREAMS; the caller should queue or use another connection. */
  | 'H2_ERR_STREAM_LIMIT'
  /** request() with headers we refuse to send (upper-case name). */
  | 'H2_ERR_HEADER';

/** Errors of the h2 client, with stable codes. `h2Code` is the RFC 9113 §7 error code when one applies. */
export class Http2Error extends Error {
  readonly code: Http2ErrorCode;
  readonly h2Code: number;
  constructor(code: Http2ErrorCode, message: string, h2Code: number = ErrorCode.INTERNAL_ERROR, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.h2Code = h2Code;
  }
}

/** A connection-level protocol violation by the peer (RFC 9113 §5.4.1) or an HPACK failure. */
export class Http2ProtocolError extends Http2Error {
  constructor(h2Code: number, message: string) {
    super(h2Code === ErrorCode.COMPRESSION_ERROR ? 'H2_ERR_COMPRESSION' : 'H2_ERR_PROTOCOL', message, h2Code);
  }
}
