/**
 * The connection table shared by the connection-oriented transports (tcp, tls, ws, wss).
 *
 * Connections are keyed by a process-unique connectionId ("tcp:3") and also indexed by the
 * remote address:port, so that sending to an address reuses a connection that is already
 * open to it (RFC 3261 §18.2.2 responses over the same connection, RFC 5626 flow reuse).
 * Each connection has an idle timer on the injectable Clock; traffic in either direction
 * (keep-alives included) resets it.
 */

import { isIPv4 } from 'node:net';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Flow, TransportProtocol } from './types.js';

/** One open connection, as the transports see it. */
export interface Connection {
  readonly id: string;
  readonly flow: Flow;
  /** Hand bytes to the network; rejects with TransportError. */
  write(data: Buffer): Promise<void>;
  /** Graceful close (flush, then close; forced after a grace period). Resolves once gone. */
  close(): Promise<void>;
  /** Immediate close, discarding unsent data. */
  destroy(): void;
  readonly isOpen: boolean;
}

const counters = new Map<string, number>();

/** A process-unique connection id such as "tcp:3". */
export function nextConnectionId(protocol: TransportProtocol): string {
  const n = (counters.get(protocol) ?? 0) + 1;
  counters.set(protocol, n);
  return `${protocol}:${n}`;
}

/**
 * Canonical form of an IP address for comparisons and flows: brackets removed, lower case,
 * IPv4-mapped IPv6 ("::ffff:10.0.0.1") reduced to plain IPv4.
 */
export function normalizeAddress(address: string): string {
  let a = address.trim();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  a = a.toLowerCase();
  if (a.startsWith('::ffff:') && isIPv4(a.slice(7))) a = a.slice(7);
  return a;
}

export function addressKey(address: string, port: number): string {
  return `${normalizeAddress(address)}|${port}`;
}

interface Entry<C extends Connection> {
  connection: C;
  key: string;
  lastActivity: number;
  /** Last bytes from the peer (a message or a keep-alive): proof that it is still there. */
  lastInbound: number;
  timer: TimerHandle | undefined;
}

export class ConnectionTable<C extends Connection> {
  private readonly byId = new Map<string, Entry<C>>();
  private readonly byAddress = new Map<string, Set<string>>();

  /**
   * @param onIdle called (once) when a connection saw no traffic for `idleTimeoutMs`; the
   *   table does not remove it, the owner closes it and calls `remove` when it is gone.
   *   An idleTimeoutMs of 0 or Infinity disables idle closing.
   */
  constructor(
    private readonly clock: Clock,
    private readonly idleTimeoutMs: number,
    private readonly onIdle: (connection: C) => void,
  ) {}

  get size(): number {
    return this.byId.size;
  }

  add(connection: C): void {
    const key = addressKey(connection.flow.remoteAddress, connection.flow.remotePort);
    const now = this.clock.monotonic();
    const entry: Entry<C> = { connection, key, lastActivity: now, lastInbound: now, timer: undefined };
    this.byId.set(connection.id, entry);
    let ids = this.byAddress.get(key);
    if (!ids) this.byAddress.set(key, (ids = new Set()));
    ids.add(connection.id);
    this.arm(entry, this.idleTimeoutMs);
  }

  get(id: string): C | undefined {
    return this.byId.get(id)?.connection;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** The most recently opened open connection to address:port, if any. */
  findByAddress(address: string, port: number): C | undefined {
    const ids = this.byAddress.get(addressKey(address, port));
    if (!ids) return undefined;
    let found: C | undefined;
    for (const id of ids) {
      const c = this.byId.get(id)?.connection;
      if (c?.isOpen) found = c;
    }
    return found;
  }

  /** Traffic on this connection (`inbound`: from the peer): restart its idle period. */
  touch(id: string, inbound = false): void {
    const entry = this.byId.get(id);
    if (!entry) return;
    entry.lastActivity = this.clock.monotonic();
    if (inbound) entry.lastInbound = entry.lastActivity;
  }

  /** Milliseconds since the peer last sent anything on this connection; undefined when unknown. */
  msSinceInbound(id: string): number | undefined {
    const entry = this.byId.get(id);
    return entry ? this.clock.monotonic() - entry.lastInbound : undefined;
  }

  /** Forget a connection. True when it was in the table. */
  remove(id: string): boolean {
    const entry = this.byId.get(id);
    if (!entry) return false;
    entry.timer?.cancel();
    this.byId.delete(id);
    const ids = this.byAddress.get(entry.key);
    if (ids) {
      ids.delete(id);
      if (ids.size === 0) this.byAddress.delete(entry.key);
    }
    return true;
  }

  values(): C[] {
    return [...this.byId.values()].map((e) => e.connection);
  }

  /** Cancel every idle timer (the owner is shutting down). */
  stopTimers(): void {
    for (const entry of this.byId.values()) {
      entry.timer?.cancel();
      entry.timer = undefined;
    }
  }

  /**
   * One timer per connection, re-armed lazily: when it fires early because of recent
   * traffic it is set again for the remainder (no timer churn per message).
   */
  private arm(entry: Entry<C>, delay: number): void {
    if (!(this.idleTimeoutMs > 0) || !Number.isFinite(this.idleTimeoutMs)) return;
    entry.timer = this.clock.setTimeout(() => {
      entry.timer = undefined;
      if (this.byId.get(entry.connection.id) !== entry) return;
      const idleFor = this.clock.monotonic() - entry.lastActivity;
      if (idleFor >= this.idleTimeoutMs) {
        this.onIdle(entry.connection);
      } else {
        this.arm(entry, this.idleTimeoutMs - idleFor);
      }
    }, delay);
  }
}
