/**
 * The SIP transport layer: udp, tcp, tls, ws, wss (RFC 3261 §18, RFC 5626 §3.5.1, RFC 7118).
 */

import type { ConnectionTransportOptions } from './connection-transport.js';
import { TcpTransport } from './tcp.js';
import { TlsTransport } from './tls.js';
import type { TlsFileOptions } from './tls-files.js';
import type { Transport, TransportEvents, TransportProtocol } from './types.js';
import type { UdpIo } from './datagram-socket.js';
import { UdpTransport } from './udp.js';
import { WsTransport } from './ws.js';

export type { Flow, InboundMessage, SendTarget, Transport, TransportEvents, TransportProtocol } from './types.js';
export { RELIABLE, VIA_TRANSPORT } from './types.js';
export { StreamFramer, DEFAULT_MAX_MESSAGE_BYTES, contentLength, isCrlfOnly } from './stream-framer.js';
export type { StreamFramerHandlers, StreamFramerLimits } from './stream-framer.js';
export { ConnectionTable, addressKey, nextConnectionId, normalizeAddress } from './connection-table.js';
export type { Connection } from './connection-table.js';
export {
  ConnectionTransport,
  DEFAULT_CLOSE_GRACE_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_WRITE_BUFFER_BYTES,
} from './connection-transport.js';
export type { ConnectionTransportOptions } from './connection-transport.js';
export { UdpTransport, DEFAULT_UDP_BUFFER_BYTES, DEFAULT_UDP_MAX_MESSAGE_BYTES } from './udp.js';
export type { UdpTransportOptions } from './udp.js';
export type { UdpIo } from './datagram-socket.js';
export { TcpTransport } from './tcp.js';
export type { TcpTransportOptions } from './tcp.js';
export { TlsTransport } from './tls.js';
export type { TlsTransportOptions } from './tls.js';
export type { TlsFileOptions } from './tls-files.js';
export { WsTransport, SIP_SUBPROTOCOL } from './ws.js';
export type { WsTransportOptions } from './ws.js';
export { isStun, stunBindingResponse } from './stun.js';

/** Everything needed to build any transport; fields that do not apply are ignored. */
export interface TransportSpec extends ConnectionTransportOptions {
  protocol: TransportProtocol;
  /** tls and wss: certificate files (required to listen), trust, verification. */
  tls?: TlsFileOptions;
  /** ws/wss: request path for outbound connections (default "/"). */
  path?: string;
  /** udp: SO_RCVBUF / SO_SNDBUF (default 4 MiB each). */
  recvBufferSize?: number;
  sendBufferSize?: number;
  /** udp: answer STUN Binding requests (default true). */
  answerStun?: boolean;
  /** udp: datagram I/O, batched addon or node:dgram (default 'auto': the addon when built). */
  io?: UdpIo;
}

/** Build (not start) a transport; call `listen()` to bind. */
export function createTransport(spec: TransportSpec, events: TransportEvents): Transport {
  switch (spec.protocol) {
    case 'udp':
      return new UdpTransport(spec, events);
    case 'tcp':
      return new TcpTransport(spec, events);
    case 'tls':
      return new TlsTransport({ ...spec, tls: spec.tls ?? {} }, events);
    case 'ws':
      return new WsTransport({ ...spec, secure: false }, events);
    case 'wss':
      return new WsTransport({ ...spec, secure: true }, events);
    default: {
      const never: never = spec.protocol;
      throw new TypeError(`unknown transport protocol ${String(never)}`);
    }
  }
}
