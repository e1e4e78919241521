/**
 * The datagram socket under the UDP transport, in two implementations: node:dgram, and the
 * batched addon (`native/udp_batch.c`: recvmmsg into a shared slab, one JavaScript call per
 * datagram without a Buffer or address object of its own, synchronous sendto), which costs
 * 22–31 % less CPU per datagram (BENCHMARKS.md, "Node floor").
 * `io: 'auto'` picks the addon when it was built (Linux, `npm ci` builds it) and node:dgram
 * otherwise; both behave the same towards the transport.
 */

import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { normalizeAddress } from './connection-table.js';
import { loadUdpBatch, openBatchSocket } from './udp-batch.js';

export type UdpIo = 'auto' | 'batch' | 'dgram';

/** A datagram arrived: `address` is normalised (lower case, no brackets, IPv4-mapped unwrapped). */
export type DatagramHandler = (data: Buffer, address: string, port: number) => void;

export interface DatagramSocketOptions {
  ipv6: boolean;
  address: string;
  port: number;
  recvBufferSize: number;
  sendBufferSize: number;
  /** Socket errors after the bind (node:dgram only: the addon's errors come back per send). */
  onError(error: Error): void;
  /** Buffer sizes could not be set. */
  onBufferError(error: Error): void;
}

export interface DatagramSocket {
  readonly io: 'batch' | 'dgram';
  /** The bound address as the OS reports it, and the bound port. */
  readonly address: string;
  readonly port: number;
  /**
   * Send one datagram to an IP address (IPv4 text on a dual-stack socket is mapped).
   * `undefined`: handed to the kernel already; a promise: settles when it was. Throws for a
   * destination the socket cannot reach.
   */
  send(data: Buffer, port: number, address: string): Promise<void> | undefined;
  /** Sent at once (true), or not sent at all and the caller must use `send()` (false). */
  sendNow(data: Buffer, port: number, address: string): boolean;
  bufferSizes(): { recv: number; send: number };
  close(): Promise<void>;
}

/** Open and bind; rejects with the OS error (EADDRINUSE, EADDRNOTAVAIL, ...). */
export async function openDatagramSocket(io: UdpIo, options: DatagramSocketOptions, onDatagram: DatagramHandler): Promise<DatagramSocket> {
  if (io !== 'dgram') {
    const binding = loadUdpBatch();
    if (binding.ok) return openBatchSocket(binding.value, options, onDatagram);
    if (io === 'batch') throw new Error(`batched UDP I/O is not available: ${binding.reason}`);
  }
  return openDgramSocket(options, onDatagram);
}

async function openDgramSocket(options: DatagramSocketOptions, onDatagram: DatagramHandler): Promise<DatagramSocket> {
  const socket = createSocket({ type: options.ipv6 ? 'udp6' : 'udp4' });
  let listening = false;
  await new Promise<void>((resolve, reject) => {
    socket.on('error', (err) => {
      if (listening) return options.onError(err);
      reject(err);
      socket.close();
    });
    try {
      socket.bind({ address: options.address, port: options.port, exclusive: true }, () => {
        listening = true;
        resolve();
      });
    } catch (err) {
      reject(err);
    }
  });
  try {
    if (options.recvBufferSize > 0) socket.setRecvBufferSize(options.recvBufferSize);
    if (options.sendBufferSize > 0) socket.setSendBufferSize(options.sendBufferSize);
  } catch (err) {
    options.onBufferError(err as Error);
  }
  socket.on('message', (msg, rinfo) => onDatagram(msg, normalizeAddress(rinfo.address), rinfo.port));
  const bound = socket.address();
  return new DgramSocket(socket, bound.address, bound.port);
}

class DgramSocket implements DatagramSocket {
  readonly io = 'dgram' as const;
  private closePromise: Promise<void> | undefined;

  constructor(
    private readonly socket: Socket,
    readonly address: string,
    readonly port: number,
  ) {}

  send(data: Buffer, port: number, address: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.socket.send(data, port, address, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** node:dgram always completes a send later. */
  sendNow(): boolean {
    return false;
  }

  bufferSizes(): { recv: number; send: number } {
    return { recv: this.socket.getRecvBufferSize(), send: this.socket.getSendBufferSize() };
  }

  close(): Promise<void> {
    this.closePromise ??= new Promise<void>((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve(); // already closed
      }
    });
    return this.closePromise;
  }
}
