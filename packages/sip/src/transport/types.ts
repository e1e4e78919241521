/**
 * The transport layer's contract (RFC 3261 §18). A transport moves whole SIP messages as
 * bytes; it knows nothing of SIP grammar beyond stream framing (Content-Length) and the
 * RFC 5626 §3.5.1 CRLF keep-alive. Everything above speaks to it through these types.
 */

export type TransportProtocol = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';

/** Connection-oriented transports can carry a request back over the flow it came in on. */
export const RELIABLE: Readonly<Record<TransportProtocol, boolean>> = {
  udp: false,
  tcp: true,
  tls: true,
  ws: true,
  wss: true,
};

/** Via transport token (RFC 3261 §20.42, RFC 7118 §5). */
export const VIA_TRANSPORT: Readonly<Record<TransportProtocol, string>> = {
  udp: 'UDP',
  tcp: 'TCP',
  tls: 'TLS',
  ws: 'WS',
  wss: 'WSS',
};

/**
 * A flow (RFC 5626 §3): the 5-tuple a message travelled on. For connection-oriented
 * transports `connectionId` names the connection in the transport's connection table, so a
 * response or a request to a registered device goes back over the very same connection.
 */
export interface Flow {
  readonly protocol: TransportProtocol;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Set for tcp/tls/ws/wss; undefined for udp. */
  readonly connectionId?: string;
}

/** Where to send: an address, and optionally an existing connection to prefer. */
export interface SendTarget {
  readonly address: string;
  readonly port: number;
  /** Reuse this connection if it is still open (RFC 5626 flow reuse). */
  readonly connectionId?: string;
  /** For tls/wss when a new connection must be opened: server name to verify. */
  readonly serverName?: string;
  /**
   * Only use the connection named by `connectionId`; reject with TransportError instead of
   * opening a new connection when it is gone (a request to a device behind NAT, RFC 5626
   * §5.3). Ignored by udp.
   */
  readonly connectionOnly?: boolean;
}

export interface InboundMessage {
  readonly data: Buffer;
  readonly flow: Flow;
}

export interface TransportEvents {
  /** One whole SIP message (a datagram, a framed stream message, or one WebSocket message). */
  onMessage(message: InboundMessage): void;
  /** A connection-oriented flow was closed (by the peer, by idle timeout, or on error). */
  onFlowClosed?(flow: Flow): void;
  /** A non-fatal problem worth logging (malformed framing, oversized message, TLS error). */
  onWarning?(warning: { code: string; message: string; flow?: Flow }): void;
}

export interface Transport {
  readonly protocol: TransportProtocol;
  readonly reliable: boolean;
  /** The bound address and port (port resolved when 0 was asked for). */
  readonly localAddress: string;
  readonly localPort: number;
  listen(): Promise<void>;
  /**
   * Send one message. Resolves with the flow used (a new connection may have been opened).
   * Rejects with a TransportError when the message cannot be handed to the network.
   */
  send(target: SendTarget, data: Buffer): Promise<Flow>;
  /**
   * Hand a message to the network now, without a promise, when the transport can (a UDP
   * datagram the kernel took at once): true. False when the caller must use `send()`, which
   * also reports any error. Spares the promise chain of the common case (RFC 3261 §18).
   */
  sendNow?(address: string, port: number, data: Buffer): boolean;
  /** Is this connection still open? Always false for udp. */
  hasConnection(connectionId: string): boolean;
  /**
   * Milliseconds since the peer last sent anything on this connection, a message or a
   * keep-alive (RFC 5626 §3.5.1); undefined for an unknown connection or a datagram transport.
   */
  msSinceInbound?(connectionId: string): number | undefined;
  /**
   * tls and wss: read the certificate files again (a renewed certificate). Connections
   * accepted from then on present the new one; open connections keep theirs. On failure
   * (a missing file, a key that does not match) the certificate in use stays.
   */
  reloadCertificates?(): Promise<void>;
  close(): Promise<void>;
}
