/**
 * Common machinery of the connection-oriented transports (tcp, tls, ws, wss): the
 * connection table, send() with connection reuse and on-demand connects, idle closing,
 * event delivery that can never throw into a socket callback, and orderly shutdown.
 */

import type { EventEmitter } from 'node:events';
import { TransportError } from '../errors.js';
import { systemClock } from '../util/clock.js';
import type { Clock } from '../util/clock.js';
import { addressKey, ConnectionTable, normalizeAddress } from './connection-table.js';
import type { Connection } from './connection-table.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from './stream-framer.js';
import type { Flow, SendTarget, Transport, TransportEvents, TransportProtocol } from './types.js';

export const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60 * 1000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_CLOSE_GRACE_MS = 2_000;
export const DEFAULT_MAX_WRITE_BUFFER_BYTES = 1024 * 1024;
export const DEFAULT_MAX_CONNECTIONS = 10_000;

export interface ConnectionTransportOptions {
  /** Address to listen on ("0.0.0.0", "::", "127.0.0.1", "::1"). */
  address: string;
  /** Port to listen on; 0 picks a free one (see `localPort` after `listen`). */
  port: number;
  /** Close connections without traffic for this long. Default 10 min; 0 disables. */
  idleTimeoutMs?: number;
  /** Give up opening an outbound connection after this long. Default 10 s. */
  connectTimeoutMs?: number;
  /** After a graceful close starts, destroy the connection after this long. Default 2 s. */
  closeGraceMs?: number;
  /** Largest inbound message (header section + body). Default 64 KiB. */
  maxMessageBytes?: number;
  /** Largest header section on streams. Default: maxMessageBytes. */
  maxHeaderBytes?: number;
  /** Largest body on streams. Default: maxMessageBytes. */
  maxBodyBytes?: number;
  /** A peer that lets this much unsent data pile up is dropped. Default 1 MiB. */
  maxWriteBufferBytes?: number;
  /**
   * Inbound connections beyond this many open ones are refused (closed at once): each may
   * hold up to maxMessageBytes of an unfinished message. Default 10,000.
   */
  maxConnections?: number;
  /** Timers (idle, connect timeout). Default: the system clock. */
  clock?: Clock;
}

/** What a Connection implementation reports back to its transport. */
export interface ConnectionHooks {
  message(connection: Connection, data: Buffer): void;
  /**
   * Traffic that is not a message (keep-alive, ping/pong): resets the idle timer. Bytes of an
   * unfinished message do not, or a peer trickling one byte at a time (slowloris) would keep
   * its connection, and the buffer behind it, forever.
   */
  activity(connection: Connection): void;
  warning(code: string, message: string, flow?: Flow): void;
  /** The connection is gone (called exactly once per connection). */
  closed(connection: Connection): void;
}

interface ResolvedOptions {
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  closeGraceMs: number;
  maxMessageBytes: number;
  maxHeaderBytes?: number;
  maxBodyBytes?: number;
  maxWriteBufferBytes: number;
  maxConnections: number;
  clock: Clock;
}

export abstract class ConnectionTransport<C extends Connection> implements Transport {
  abstract readonly protocol: TransportProtocol;
  readonly reliable = true;

  protected readonly settings: ResolvedOptions;
  protected readonly table: ConnectionTable<C>;
  protected readonly hooks: ConnectionHooks;
  protected closing = false;
  protected listening = false;
  private boundAddress: string;
  private boundPort: number;
  private readonly pending = new Map<string, Promise<C>>();
  /** Connections being opened or handshaking, not yet in the table (destroyed on close). */
  protected readonly abortOnClose = new Set<() => void>();
  private closePromise: Promise<void> | undefined;

  constructor(
    options: ConnectionTransportOptions,
    protected readonly events: TransportEvents,
  ) {
    this.boundAddress = options.address;
    this.boundPort = options.port;
    this.settings = {
      idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      closeGraceMs: options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS,
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      maxHeaderBytes: options.maxHeaderBytes,
      maxBodyBytes: options.maxBodyBytes,
      maxWriteBufferBytes: options.maxWriteBufferBytes ?? DEFAULT_MAX_WRITE_BUFFER_BYTES,
      maxConnections: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      clock: options.clock ?? systemClock,
    };
    this.table = new ConnectionTable<C>(this.settings.clock, this.settings.idleTimeoutMs, (c) => {
      this.warn('TRANSPORT_IDLE_CLOSE', `closing idle connection ${c.id}`, c.flow);
      void c.close();
    });
    this.hooks = {
      message: (c, data) => {
        this.table.touch(c.id, true);
        if (this.closing) return;
        try {
          this.events.onMessage({ data, flow: c.flow });
        } catch (err) {
          this.warn('TRANSPORT_HANDLER_ERROR', `onMessage threw: ${errorText(err)}`, c.flow);
        }
      },
      activity: (c) => this.table.touch(c.id, true),
      warning: (code, message, flow) => this.warn(code, message, flow),
      closed: (c) => {
        if (!this.table.remove(c.id)) return;
        try {
          this.events.onFlowClosed?.(c.flow);
        } catch (err) {
          this.warn('TRANSPORT_HANDLER_ERROR', `onFlowClosed threw: ${errorText(err)}`, c.flow);
        }
      },
    };
  }

  get localAddress(): string {
    return this.boundAddress;
  }

  get localPort(): number {
    return this.boundPort;
  }

  /** Number of open connections. */
  get connectionCount(): number {
    return this.table.size;
  }

  /** The flow of an open connection. */
  getFlow(connectionId: string): Flow | undefined {
    return this.table.get(connectionId)?.flow;
  }

  hasConnection(connectionId: string): boolean {
    return this.table.get(connectionId)?.isOpen ?? false;
  }

  msSinceInbound(connectionId: string): number | undefined {
    return this.table.msSinceInbound(connectionId);
  }

  /** Close one connection gracefully (e.g. a registration's flow was removed). */
  async closeConnection(connectionId: string): Promise<void> {
    await this.table.get(connectionId)?.close();
  }

  async listen(): Promise<void> {
    if (this.closing) throw new TransportError(`${this.protocol} transport is closed`);
    if (this.listening) return;
    const bound = await this.startListening(this.boundAddress, this.boundPort);
    this.boundAddress = bound.address;
    this.boundPort = bound.port;
    this.listening = true;
  }

  async send(target: SendTarget, data: Buffer): Promise<Flow> {
    if (this.closing) throw new TransportError(`${this.protocol} transport is closed`);
    let connection: C | undefined;
    if (target.connectionId !== undefined) {
      const c = this.table.get(target.connectionId);
      if (c?.isOpen) connection = c;
    }
    if (!connection && target.connectionOnly) {
      throw new TransportError(`${this.protocol} connection ${target.connectionId ?? '(none)'} is closed`);
    }
    connection ??= this.table.findByAddress(target.address, target.port);
    connection ??= await this.connect(target);
    await connection.write(data);
    this.table.touch(connection.id);
    return connection.flow;
  }

  close(): Promise<void> {
    this.closePromise ??= this.shutdown();
    return this.closePromise;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    this.table.stopTimers();
    for (const abort of [...this.abortOnClose]) abort();
    // Connections first (graceful, bounded by closeGraceMs); new arrivals meanwhile are
    // refused because `closing` is set. Then the listener, which also drops any socket
    // still handshaking.
    await Promise.all(this.table.values().map((c) => c.close()));
    await this.stopListening();
    this.listening = false;
  }

  /** Open (or join the opening of) a connection to the target. */
  private connect(target: SendTarget): Promise<C> {
    const key = addressKey(target.address, target.port);
    let promise = this.pending.get(key);
    if (!promise) {
      promise = this.openConnection(target).then((c) => {
        if (this.closing) {
          c.destroy();
          throw new TransportError(`${this.protocol} transport is closed`);
        }
        return c;
      });
      this.pending.set(key, promise);
      const forget = (): void => {
        if (this.pending.get(key) === promise) this.pending.delete(key);
      };
      promise.then(forget, forget);
    }
    return promise;
  }

  /** Put a freshly opened/accepted connection in the table. */
  /**
   * Wait for an outbound connection's handshake under the connect deadline, aborted by
   * close(). `wait(succeed, fail)` attaches the emitter's ready event; on failure the
   * half-open connection is torn down with `destroy`. The result is registered.
   */
  protected handshake(
    where: string,
    emitter: EventEmitter,
    destroy: () => void,
    closedWhile: string,
    wait: (succeed: (make: () => C) => void, fail: (err: TransportError) => void) => void,
  ): Promise<C> {
    return new Promise<C>((resolve, reject) => {
      let settled = false;
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        timer.cancel();
        this.abortOnClose.delete(abort);
        return true;
      };
      const fail = (err: TransportError): void => {
        if (!settle()) return;
        destroy();
        reject(err);
      };
      const abort = (): void => fail(new TransportError(`${this.protocol} transport is closed`));
      const timer = this.settings.clock.setTimeout(
        () => fail(new TransportError(`connect to ${where} timed out after ${this.settings.connectTimeoutMs} ms`)),
        this.settings.connectTimeoutMs,
      );
      this.abortOnClose.add(abort);
      // Stays attached after a failure: late errors must not crash the process.
      const onError = (err: Error): void => fail(new TransportError(`cannot connect to ${where}: ${errorText(err)}`, { cause: err }));
      const onClose = (): void => fail(new TransportError(`connection to ${where} ${closedWhile}`));
      emitter.on('error', onError);
      emitter.once('close', onClose);
      wait((make) => {
        if (!settle()) return;
        const connection = make();
        emitter.off('error', onError);
        emitter.off('close', onClose);
        this.register(connection);
        resolve(connection);
      }, fail);
    });
  }

  /** `inbound`: accepted from a peer (counted against maxConnections). */
  protected register(connection: C, inbound = false): void {
    if (this.closing || !connection.isOpen) {
      connection.destroy();
      return;
    }
    if (inbound && this.table.size >= this.settings.maxConnections) {
      this.warn('TRANSPORT_TOO_MANY_CONNECTIONS', `${this.protocol}: ${this.table.size} connections open (maxConnections); refusing ${connection.id}`, connection.flow);
      connection.destroy();
      return;
    }
    this.table.add(connection);
  }

  protected warn(code: string, message: string, flow?: Flow): void {
    try {
      this.events.onWarning?.(flow ? { code, message, flow } : { code, message });
    } catch {
      /* a throwing logger must not take a socket down */
    }
  }

  /** Bind and listen; returns the real bound address and port. Throws TransportListenError. */
  protected abstract startListening(address: string, port: number): Promise<{ address: string; port: number }>;
  /** Stop accepting; resolves when the listener is closed. Called even if never listening. */
  protected abstract stopListening(): Promise<void>;
  /** Open a new outbound connection, already registered. Rejects with TransportError. */
  protected abstract openConnection(target: SendTarget): Promise<C>;
}

/**
 * Runs one write on a connection (`where` names it) and settles when the socket reports the
 * write done: a reported error or a throw becomes one TransportError.
 */
export function writeSettled(where: string, write: (done: (err?: Error | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (err: unknown) => reject(new TransportError(`write on ${where} failed: ${errorText(err)}`, { cause: err }));
    try {
      write((err) => (err ? failed(err) : resolve()));
    } catch (err) {
      failed(err);
    }
  });
}

export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** "[::1]:5060" / "127.0.0.1:5060" */
export function hostPort(address: string, port: number): string {
  const a = normalizeAddress(address);
  return a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`;
}
