/**
 * Byte-stream connections (tcp, tls): RFC 3261 §18.3 framing via StreamFramer, the
 * RFC 5626 §3.5.1 CRLF keep-alive (ping answered with pong), TCP_NODELAY, and the shared
 * server/outbound-connect logic of TcpTransport and TlsTransport.
 */

import type { Server, Socket } from 'node:net';
import { TransportError, TransportListenError, isSipError } from '../errors.js';
import { nextConnectionId, normalizeAddress } from './connection-table.js';
import type { Connection } from './connection-table.js';
import { ConnectionTransport, errorText, hostPort, writeSettled } from './connection-transport.js';
import type { ConnectionHooks } from './connection-transport.js';
import { PONG, StreamFramer } from './stream-framer.js';
import type { StreamFramerLimits } from './stream-framer.js';
import type { Flow, SendTarget, TransportProtocol } from './types.js';


export interface SocketConnectionSettings {
  limits: StreamFramerLimits;
  maxWriteBufferBytes: number;
  closeGraceMs: number;
}

/** One tcp or tls connection. */
export class SocketConnection implements Connection {
  readonly flow: Flow;
  private readonly framer: StreamFramer;
  private gone = false;
  private closingStarted = false;
  private readonly done: Promise<void>;

  constructor(
    readonly id: string,
    protocol: TransportProtocol,
    private readonly socket: Socket,
    private readonly hooks: ConnectionHooks,
    private readonly settings: SocketConnectionSettings,
  ) {
    this.flow = {
      protocol,
      localAddress: normalizeAddress(socket.localAddress ?? ''),
      localPort: socket.localPort ?? 0,
      remoteAddress: normalizeAddress(socket.remoteAddress ?? ''),
      remotePort: socket.remotePort ?? 0,
      connectionId: id,
    };
    this.framer = new StreamFramer(
      {
        onMessage: (data) => hooks.message(this, data),
        onPing: () => this.pong(),
      },
      settings.limits,
    );
    let resolveDone!: () => void;
    this.done = new Promise((resolve) => (resolveDone = resolve));
    socket.setNoDelay(true);
    socket.on('error', (err) => {
      if (!this.gone) hooks.warning('TRANSPORT_SOCKET_ERROR', `${id}: ${errorText(err)}`, this.flow);
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    const onClose = (): void => {
      if (this.gone) return;
      this.gone = true;
      resolveDone();
      hooks.closed(this);
    };
    if (socket.destroyed) queueMicrotask(onClose);
    else socket.on('close', onClose);
  }

  get isOpen(): boolean {
    return !this.gone && !this.closingStarted && !this.socket.destroyed && this.socket.writable;
  }

  write(data: Buffer): Promise<void> {
    if (!this.isOpen) return Promise.reject(new TransportError(`${this.id} to ${this.peer} is closed`));
    const queued = this.socket.writableLength;
    if (queued > 0 && queued + data.length > this.settings.maxWriteBufferBytes) {
      this.hooks.warning('TRANSPORT_WRITE_BUFFER_FULL', `${this.id}: peer is not reading, dropping connection`, this.flow);
      this.destroy();
      return Promise.reject(new TransportError(`${this.id} to ${this.peer}: peer is not reading`));
    }
    return writeSettled(`${this.id} to ${this.peer}`, (done) => this.socket.write(data, done));
  }

  close(): Promise<void> {
    if (this.gone || this.closingStarted) return this.done;
    this.closingStarted = true;
    const timer = setTimeout(() => this.socket.destroy(), this.settings.closeGraceMs);
    timer.unref();
    void this.done.then(() => clearTimeout(timer));
    this.socket.end();
    return this.done;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private get peer(): string {
    return hostPort(this.flow.remoteAddress, this.flow.remotePort);
  }

  private onData(chunk: Buffer): void {
    if (this.gone) return;
    try {
      this.framer.push(chunk);
    } catch (err) {
      if (isSipError(err)) {
        this.hooks.warning('TRANSPORT_FRAMING_ERROR', `${this.id}: ${err.message}; closing connection`, this.flow);
      } else {
        this.hooks.warning('TRANSPORT_HANDLER_ERROR', `${this.id}: ${errorText(err)}; closing connection`, this.flow);
      }
      this.destroy();
    }
  }

  private pong(): void {
    if (!this.isOpen) return;
    this.hooks.activity(this);
    // A peer that pings without reading the pongs would make us queue one write per ping,
    // without bound: while a pong (or anything) is still unsent, the next ping gets none.
    if (this.socket.writableLength > 0) return;
    this.socket.write(PONG, () => {
      /* a failed pong surfaces as a socket error/close */
    });
  }
}

/** The parts of TcpTransport and TlsTransport that differ. */
export abstract class StreamTransport extends ConnectionTransport<SocketConnection> {
  private server: Server | undefined;
  /** Every accepted raw socket, so shutdown can drop those still handshaking. */
  private readonly accepted = new Set<Socket>();

  /** Create the (not yet listening) server. Throws TransportListenError. */
  protected abstract createServer(): Promise<Server>;

  /** The listening server, once listen() has run. */
  protected get listeningServer(): Server | undefined {
    return this.server;
  }
  /** 'connection' for tcp, 'secureConnection' for tls. */
  protected abstract readonly acceptEvent: 'connection' | 'secureConnection';
  /** Start an outbound connection (not yet connected). May throw. */
  protected abstract startConnect(target: SendTarget): Promise<Socket>;
  /** 'connect' for tcp, 'secureConnect' for tls. */
  protected abstract readonly connectEvent: 'connect' | 'secureConnect';

  protected override async startListening(address: string, port: number): Promise<{ address: string; port: number }> {
    const server = await this.createServer();
    server.on('connection', (raw: Socket) => {
      this.accepted.add(raw);
      raw.once('close', () => this.accepted.delete(raw));
      // tls attaches its own handlers; a bare listener keeps an early reset from crashing.
      raw.on('error', () => {});
    });
    server.on(this.acceptEvent, (socket: Socket) => this.accept(socket));
    await listenServer(server, address, port, this.protocol);
    server.on('error', (err) => this.warn('TRANSPORT_SERVER_ERROR', `${this.protocol} server: ${errorText(err)}`));
    this.server = server;
    const bound = server.address();
    if (bound === null || typeof bound === 'string') throw new TransportListenError(`${this.protocol}: no bound address`);
    return { address: bound.address, port: bound.port };
  }

  protected override async stopListening(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const raw of this.accepted) raw.destroy();
    await closed;
  }

  protected override async openConnection(target: SendTarget): Promise<SocketConnection> {
    const where = hostPort(target.address, target.port);
    let socket: Socket;
    try {
      socket = await this.startConnect(target);
    } catch (err) {
      throw isSipError(err) ? err : new TransportError(`cannot connect to ${where}: ${errorText(err)}`, { cause: err });
    }
    return this.handshake(where, socket, () => socket.destroy(), 'closed while connecting', (succeed) =>
      socket.once(this.connectEvent, () => succeed(() => this.createConnection(socket))),
    );
  }

  private accept(socket: Socket): void {
    if (this.closing || socket.destroyed) {
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    this.register(this.createConnection(socket), true);
  }

  private createConnection(socket: Socket): SocketConnection {
    return new SocketConnection(nextConnectionId(this.protocol), this.protocol, socket, this.hooks, {
      limits: {
        maxMessageBytes: this.settings.maxMessageBytes,
        maxHeaderBytes: this.settings.maxHeaderBytes,
        maxBodyBytes: this.settings.maxBodyBytes,
      },
      maxWriteBufferBytes: this.settings.maxWriteBufferBytes,
      closeGraceMs: this.settings.closeGraceMs,
    });
  }
}

/** server.listen with errors turned into TransportListenError. */
export function listenServer(server: Server, address: string, port: number, protocol: TransportProtocol): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(new TransportListenError(`${protocol}: cannot listen on ${hostPort(address, port)}: ${errorText(err)}`, { cause: err }));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    try {
      server.listen({ host: address, port });
    } catch (err) {
      server.off('error', onError);
      server.off('listening', onListening);
      reject(new TransportListenError(`${protocol}: cannot listen on ${hostPort(address, port)}: ${errorText(err)}`, { cause: err }));
    }
  });
}
