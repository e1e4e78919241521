/**
 * SIP over WebSocket (RFC 7118), ws and wss, with the `ws` package.
 *
 * - The handshake must offer the "sip" subprotocol (§4); one that does not is refused
 *   with 400, and "sip" is selected in the response.
 * - Each WebSocket message (text or binary) is one SIP message (§5); no Content-Length
 *   framing. Messages that are only CRLFs are treated as keep-alives. Outbound messages
 *   go as text frames when they are valid UTF-8, else as binary frames.
 * - Outbound connections (client) are opened on demand, like tcp/tls, and live in the same
 *   kind of connection table with the same idle timeout.
 */

import { isUtf8 } from 'node:buffer';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WebSocket, WebSocketServer } from 'ws';
import type { ClientOptions, RawData } from 'ws';
import { TransportError, TransportListenError, isSipError } from '../errors.js';
import { nextConnectionId, normalizeAddress } from './connection-table.js';
import type { Connection } from './connection-table.js';
import { ConnectionTransport, errorText, hostPort, writeSettled } from './connection-transport.js';
import type { ConnectionHooks, ConnectionTransportOptions } from './connection-transport.js';
import { PONG, isCrlfOnly } from './stream-framer.js';
import { listenServer } from './stream-transport.js';
import { TlsMaterialCache } from './tls-files.js';
import type { TlsFileOptions } from './tls-files.js';
import type { Flow, SendTarget, TransportEvents } from './types.js';

/** The WebSocket subprotocol for SIP (RFC 7118 §4). */
export const SIP_SUBPROTOCOL = 'sip';

export interface WsTransportOptions extends ConnectionTransportOptions {
  /** wss (TLS) instead of ws. Listening with wss needs tls.certFile and tls.keyFile. */
  secure?: boolean;
  /** Certificates for wss (and trust for outbound wss). */
  tls?: TlsFileOptions;
  /** Request path for outbound connections. Default "/". Inbound: any path is accepted. */
  path?: string;
}

interface WsConnectionSettings {
  maxWriteBufferBytes: number;
  closeGraceMs: number;
}

interface Endpoints {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
}

/** One ws or wss connection. */
export class WsConnection implements Connection {
  readonly flow: Flow;
  private gone = false;
  private closingStarted = false;
  private readonly done: Promise<void>;

  constructor(
    readonly id: string,
    protocol: 'ws' | 'wss',
    private readonly ws: WebSocket,
    endpoints: Endpoints,
    private readonly hooks: ConnectionHooks,
    private readonly settings: WsConnectionSettings,
  ) {
    this.flow = { protocol, ...endpoints, connectionId: id };
    let resolveDone!: () => void;
    this.done = new Promise((resolve) => (resolveDone = resolve));
    ws.on('error', (err: Error & { code?: string }) => {
      if (this.gone) return;
      const code = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'TRANSPORT_OVERSIZED' : 'TRANSPORT_SOCKET_ERROR';
      hooks.warning(code, `${id}: ${errorText(err)}`, this.flow);
    });
    ws.on('message', (data: RawData) => this.onMessage(toBuffer(data)));
    ws.on('ping', () => hooks.activity(this));
    ws.on('pong', () => hooks.activity(this));
    const onClose = (): void => {
      if (this.gone) return;
      this.gone = true;
      resolveDone();
      hooks.closed(this);
    };
    if (ws.readyState === WebSocket.CLOSED) queueMicrotask(onClose);
    else ws.on('close', onClose);
  }

  get isOpen(): boolean {
    return !this.gone && !this.closingStarted && this.ws.readyState === WebSocket.OPEN;
  }

  write(data: Buffer): Promise<void> {
    if (!this.isOpen) return Promise.reject(new TransportError(`${this.id} to ${this.peer} is closed`));
    const queued = this.ws.bufferedAmount;
    if (queued > 0 && queued + data.length > this.settings.maxWriteBufferBytes) {
      this.hooks.warning('TRANSPORT_WRITE_BUFFER_FULL', `${this.id}: peer is not reading, dropping connection`, this.flow);
      this.destroy();
      return Promise.reject(new TransportError(`${this.id} to ${this.peer}: peer is not reading`));
    }
    return writeSettled(`${this.id} to ${this.peer}`, (done) => this.ws.send(data, { binary: !isUtf8(data) }, done));
  }

  close(): Promise<void> {
    if (this.gone || this.closingStarted) return this.done;
    this.closingStarted = true;
    const timer = setTimeout(() => this.ws.terminate(), this.settings.closeGraceMs);
    timer.unref();
    void this.done.then(() => clearTimeout(timer));
    try {
      this.ws.close(1000);
    } catch {
      this.ws.terminate();
    }
    return this.done;
  }

  destroy(): void {
    this.ws.terminate();
  }

  private get peer(): string {
    return hostPort(this.flow.remoteAddress, this.flow.remotePort);
  }

  private onMessage(data: Buffer): void {
    if (this.gone) return;
    this.hooks.activity(this);
    if (isCrlfOnly(data)) {
      // RFC 5626 §3.5.1 keep-alive: a double CRLF "ping" gets a single CRLF "pong", as on
      // TCP/TLS (an outbound client drops a flow whose pings go unanswered). Not while
      // something is still unsent: a peer that pings without reading gets no queue of pongs.
      if (data.length === 4 && this.ws.bufferedAmount === 0) this.write(PONG).catch(() => undefined);
      return;
    }
    this.hooks.message(this, data);
  }
}

export class WsTransport extends ConnectionTransport<WsConnection> {
  readonly protocol: 'ws' | 'wss';
  private readonly path: string;
  private readonly tlsOptions: TlsFileOptions;
  private readonly material: TlsMaterialCache;
  private server: HttpServer | HttpsServer | undefined;
  private wss: WebSocketServer | undefined;
  private readonly accepted = new Set<Socket>();

  constructor(options: WsTransportOptions, events: TransportEvents) {
    super(options, events);
    this.protocol = options.secure ? 'wss' : 'ws';
    this.path = options.path ?? '/';
    this.tlsOptions = options.tls ?? {};
    this.material = new TlsMaterialCache(this.tlsOptions);
  }

  protected override async startListening(address: string, port: number): Promise<{ address: string; port: number }> {
    const server = await this.createServer();
    server.on('connection', (raw: Socket) => {
      this.accepted.add(raw);
      raw.once('close', () => this.accepted.delete(raw));
      raw.on('error', () => {});
    });
    server.on('request', (_req, res) => {
      const body = 'SIP over WebSocket (RFC 7118): upgrade with subprotocol "sip"\n';
      res.writeHead(426, { Upgrade: 'websocket', Connection: 'close', 'Content-Type': 'text/plain' });
      res.end(body);
    });
    server.on('clientError', (_err: Error, socket: Duplex) => socket.destroy());
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket as Socket, head));
    await listenServer(server, address, port, this.protocol);
    server.on('error', (err: Error) => this.warn('TRANSPORT_SERVER_ERROR', `${this.protocol} server: ${errorText(err)}`));
    this.server = server;
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: this.settings.maxMessageBytes,
      handleProtocols: (protocols: Set<string>) => (protocols.has(SIP_SUBPROTOCOL) ? SIP_SUBPROTOCOL : false),
    });
    this.wss.on('error', (err: Error) => this.warn('TRANSPORT_SERVER_ERROR', `${this.protocol} server: ${errorText(err)}`));
    const bound = server.address();
    if (bound === null || typeof bound === 'string') throw new TransportListenError(`${this.protocol}: no bound address`);
    return { address: bound.address, port: bound.port };
  }

  protected override async stopListening(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.wss?.close();
    this.wss = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const raw of this.accepted) raw.destroy();
    await closed;
  }

  protected override async openConnection(target: SendTarget): Promise<WsConnection> {
    const scheme = this.protocol;
    const url = `${scheme}://${hostPort(target.address, target.port)}${this.path.startsWith('/') ? this.path : `/${this.path}`}`;
    const options: ClientOptions & { servername?: string } = {
      perMessageDeflate: false,
      maxPayload: this.settings.maxMessageBytes,
    };
    if (scheme === 'wss') {
      let material;
      try {
        material = await this.material.get();
      } catch (err) {
        throw new TransportError(`wss: cannot read certificate files: ${errorText(err)}`, { cause: err });
      }
      options.rejectUnauthorized = this.tlsOptions.rejectUnauthorized ?? true;
      if (material.ca) options.ca = material.ca;
      if (material.cert && material.key) {
        options.cert = material.cert;
        options.key = material.key;
      }
      if (target.serverName) options.servername = target.serverName;
    }
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, SIP_SUBPROTOCOL, options);
    } catch (err) {
      throw new TransportError(`cannot connect to ${url}: ${errorText(err)}`, { cause: err });
    }
    let endpoints: Endpoints | undefined;
    return this.handshake(url, ws, () => ws.terminate(), 'closed during the handshake', (succeed, fail) => {
      ws.once('upgrade', (res: IncomingMessage) => {
        endpoints = socketEndpoints(res.socket as Socket);
      });
      ws.once('open', () => {
        if (ws.protocol !== SIP_SUBPROTOCOL) {
          fail(new TransportError(`${url} did not select subprotocol "sip"`));
          return;
        }
        succeed(
          () =>
            new WsConnection(nextConnectionId(this.protocol), this.protocol, ws, endpoints ?? fallbackEndpoints(target), this.hooks, this.connectionSettings()),
        );
      });
    });
  }

  /** wss: see Transport.reloadCertificates. */
  async reloadCertificates(): Promise<void> {
    if (this.protocol === 'wss') await this.material.reloadInto(this.server as HttpsServer | undefined, 'wss');
  }

  private async createServer(): Promise<HttpServer | HttpsServer> {
    if (this.protocol === 'ws') return createHttpServer();
    if (!this.tlsOptions.certFile || !this.tlsOptions.keyFile) {
      throw new TransportListenError('wss: tls.certFile and tls.keyFile are required to listen');
    }
    try {
      const { cert, key, ca } = await this.material.get();
      const requestCert = this.tlsOptions.requestClientCert ?? false;
      const server = createHttpsServer({ cert, key, ca, requestCert, rejectUnauthorized: requestCert, minVersion: 'TLSv1.2' });
      server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
        const from = socket.remoteAddress ? ` from ${socket.remoteAddress}:${socket.remotePort}` : '';
        this.warn('TRANSPORT_TLS_ERROR', `wss handshake failed${from}: ${errorText(err)}`);
      });
      return server;
    } catch (err) {
      if (isSipError(err)) throw err;
      throw new TransportListenError(`wss: bad certificate material: ${errorText(err)}`, { cause: err });
    }
  }

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => {});
    const wss = this.wss;
    if (this.closing || !wss) {
      socket.destroy();
      return;
    }
    const endpoints = socketEndpoints(socket);
    const offered = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim());
    if (!offered.includes(SIP_SUBPROTOCOL)) {
      this.warn('TRANSPORT_WS_NO_SIP', `${this.protocol}: refused a handshake without subprotocol "sip" from ${hostPort(endpoints.remoteAddress, endpoints.remotePort)}`);
      const body = 'WebSocket subprotocol "sip" required (RFC 7118)\n';
      socket.end(`HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      return;
    }
    try {
      wss.handleUpgrade(req, socket, head, (ws) => {
        if (this.closing) {
          ws.terminate();
          return;
        }
        this.register(new WsConnection(nextConnectionId(this.protocol), this.protocol, ws, endpoints, this.hooks, this.connectionSettings()), true);
      });
    } catch (err) {
      this.warn('TRANSPORT_SOCKET_ERROR', `${this.protocol}: upgrade failed: ${errorText(err)}`);
      socket.destroy();
    }
  }

  private connectionSettings(): WsConnectionSettings {
    return { maxWriteBufferBytes: this.settings.maxWriteBufferBytes, closeGraceMs: this.settings.closeGraceMs };
  }
}

function socketEndpoints(socket: Socket): Endpoints {
  return {
    localAddress: normalizeAddress(socket.localAddress ?? ''),
    localPort: socket.localPort ?? 0,
    remoteAddress: normalizeAddress(socket.remoteAddress ?? ''),
    remotePort: socket.remotePort ?? 0,
  };
}

function fallbackEndpoints(target: SendTarget): Endpoints {
  return { localAddress: '', localPort: 0, remoteAddress: normalizeAddress(target.address), remotePort: target.port };
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
