/** A minimal HTTP/2 client (RFC 9113, HPACK RFC 7541) for the APNs gateway. */
export { H2Connection, H2Stream } from './connection.js';
export type { H2ConnectionEvents, H2ConnectionOptions, H2StreamHandler, RemoteSettings } from './connection.js';
export { ErrorCode, Http2Error, Http2ProtocolError } from './frames.js';
export type { Http2ErrorCode } from './frames.js';
export { HpackDecoder, HpackEncoder, STATIC_TABLE } from './hpack.js';
export type { HeaderField } from './hpack.js';
