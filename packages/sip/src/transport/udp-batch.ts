/**
 * JavaScript side of the batched UDP addon (`native/udp_batch.c`, built by
 * `native/build.mjs` on `npm ci`). libuv polls the socket; every wake-up drains it with
 * recvmmsg(2) into one shared slab and calls `onEvent(slot)` per datagram, with each
 * datagram's length, port and address in a shared Int32Array. A send is one synchronous
 * sendto(2); only when the socket buffer is full (EAGAIN) are sends queued until it is
 * writable.
 */

import { lookup } from 'node:dns/promises';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { constants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import type { DatagramHandler, DatagramSocket, DatagramSocketOptions } from './datagram-socket.js';

/** The addon's exports (see udp_batch.c). */
export interface UdpBatchBinding {
  readonly BATCH: number;
  readonly META_INTS: number;
  open(family: 4 | 6, address: string, port: number, recvBufferBytes: number, sendBufferBytes: number): [UdpBatchHandle, number];
  /** `onEvent(slot)` per datagram received into `slab`/`meta`; `onEvent(-1)`: writable again. */
  start(handle: UdpBatchHandle, slab: Buffer, slotBytes: number, meta: Int32Array, onEvent: (slot: number) => void): void;
  /** 0, or the errno of sendto(2). */
  send(handle: UdpBatchHandle, data: Buffer, port: number, address: string): number;
  watchWritable(handle: UdpBatchHandle, on: boolean): void;
  bufferSizes(handle: UdpBatchHandle): [number, number];
  close(handle: UdpBatchHandle): void;
}
declare const handleBrand: unique symbol;
export type UdpBatchHandle = { readonly [handleBrand]: true };

const ADDON_PATH = '../../native/build/udp_batch.node'; // from src/transport and dist/transport
/** The largest UDP payload (65,527 bytes over IPv6) fits a slot: nothing is truncated. */
const SLOT_BYTES = 65_536;
const EAGAIN = constants.errno.EAGAIN;
const EINVAL = constants.errno.EINVAL;
/** Meta layout per datagram (udp_batch.c): length, port, family, address words. */
const M_LENGTH = 0;
const M_PORT = 1;
const M_FAMILY = 2;
const M_ADDRESS = 3;
const META_INTS = 7;

/**
 * One slab and meta array for every socket of the process: the addon fills them only inside
 * a socket's poll callback, which copies each datagram out before it returns, and libuv
 * callbacks never nest. A testkit fleet of thousands of phones then holds 2 MiB, not 2 MiB
 * per phone (V8 also counts such buffers as external memory when it decides to collect).
 */
let sharedBuffers: { slab: Buffer; meta: Int32Array } | undefined;

function buffersFor(binding: UdpBatchBinding): { slab: Buffer; meta: Int32Array } {
  if (sharedBuffers === undefined || sharedBuffers.meta.length < binding.BATCH * binding.META_INTS) {
    sharedBuffers = { slab: Buffer.allocUnsafeSlow(SLOT_BYTES * binding.BATCH), meta: new Int32Array(binding.BATCH * binding.META_INTS) };
  }
  return sharedBuffers;
}

let loaded: { ok: true; value: UdpBatchBinding } | { ok: false; reason: string } | undefined;

/** The addon, or why it is not available (not Linux, not built). Loaded once. */
export function loadUdpBatch(): { ok: true; value: UdpBatchBinding } | { ok: false; reason: string } {
  if (loaded) return loaded;
  if (process.platform !== 'linux') return (loaded = { ok: false, reason: `recvmmsg is Linux-only (${process.platform})` });
  try {
    const value = createRequire(import.meta.url)(ADDON_PATH) as UdpBatchBinding;
    // A build of an older udp_batch.c lays the meta array out differently.
    loaded = value.META_INTS === META_INTS ? { ok: true, value } : { ok: false, reason: `${ADDON_PATH} was built from another version of udp_batch.c (rebuild it: node packages/sip/native/build.mjs)` };
  } catch (err) {
    loaded = { ok: false, reason: `${(err as Error).message.split('\n')[0]} (build it: node packages/sip/native/build.mjs)` };
  }
  return loaded;
}

export function openBatchSocket(binding: UdpBatchBinding, options: DatagramSocketOptions, onDatagram: DatagramHandler): DatagramSocket {
  let opened: [UdpBatchHandle, number];
  try {
    opened = binding.open(options.ipv6 ? 6 : 4, options.address, options.port, options.recvBufferSize, options.sendBufferSize);
  } catch (err) {
    throw withCode(err as Error);
  }
  const [handle, port] = opened;
  return new BatchSocket(binding, handle, options.address, port, options.ipv6, onDatagram);
}

interface QueuedSend {
  data: Buffer;
  port: number;
  address: string;
  resolve: () => void;
  reject: (error: Error) => void;
}

class BatchSocket implements DatagramSocket {
  readonly io = 'batch' as const;
  private readonly slab: Buffer;
  private readonly meta: Int32Array;
  private readonly metaInts: number;
  private queue: QueuedSend[] = [];
  private closed = false;
  /** IPv4 source address text by its 32-bit value: a server hears from few addresses. */
  private readonly ipv4Text = new Map<number, string>();
  /** A dual-stack socket reaches names of either family. */
  private readonly family: 0 | 4;

  constructor(
    private readonly binding: UdpBatchBinding,
    private readonly handle: UdpBatchHandle,
    readonly address: string,
    readonly port: number,
    ipv6: boolean,
    private readonly onDatagram: DatagramHandler,
  ) {
    this.family = ipv6 ? 0 : 4;
    ({ slab: this.slab, meta: this.meta } = buffersFor(binding));
    this.metaInts = binding.META_INTS;
    binding.start(handle, this.slab, SLOT_BYTES, this.meta, (slot) => this.onEvent(slot));
  }

  /** Datagram `slot` of the current batch arrived, or (-1) the socket is writable again. */
  private onEvent(slot: number): void {
    if (slot < 0) return this.flushQueue();
    if (this.closed) return;
    const meta = this.meta;
    const m = slot * this.metaInts;
    const length = meta[m + M_LENGTH];
    const start = slot * SLOT_BYTES;
    // Its own ArrayBuffer, as node:dgram gives: a held message must not pin the slab.
    const data = Buffer.allocUnsafeSlow(length);
    this.slab.copy(data, 0, start, start + length);
    const address = meta[m + M_FAMILY] === 4 ? this.ipv4(meta[m + M_ADDRESS]) : ipv6Text(meta, m + M_ADDRESS);
    this.onDatagram(data, address, meta[m + M_PORT]);
  }

  private ipv4(value: number): string {
    let text = this.ipv4Text.get(value);
    if (text === undefined) {
      if (this.ipv4Text.size >= 65_536) this.ipv4Text.clear();
      text = `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
      this.ipv4Text.set(value, text);
    }
    return text;
  }

  send(data: Buffer, port: number, address: string): Promise<void> | undefined {
    if (this.closed) throw new Error('socket is closed');
    if (this.queue.length === 0) {
      const errno = this.binding.send(this.handle, data, port, address);
      if (errno === 0) return undefined;
      // The addon takes IP literals only; a name is resolved first, as node:dgram does.
      if (errno === EINVAL && isIP(address) === 0) return this.sendToName(data, port, address);
      if (errno !== EAGAIN) throw errnoError(errno, address, port);
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ data, port, address, resolve, reject });
      if (this.queue.length === 1) this.binding.watchWritable(this.handle, true);
    });
  }

  sendNow(data: Buffer, port: number, address: string): boolean {
    return !this.closed && this.queue.length === 0 && this.binding.send(this.handle, data, port, address) === 0;
  }

  private async sendToName(data: Buffer, port: number, name: string): Promise<void> {
    const { address } = await lookup(name, { family: this.family });
    await this.send(data, port, address);
  }

  /** In order, until the kernel pushes back again. */
  private flushQueue(): void {
    let sent = 0;
    for (; sent < this.queue.length; sent++) {
      const q = this.queue[sent];
      const errno = this.binding.send(this.handle, q.data, q.port, q.address);
      if (errno === EAGAIN) break;
      if (errno === 0) q.resolve();
      else q.reject(errnoError(errno, q.address, q.port));
    }
    this.queue = this.queue.slice(sent);
    if (this.queue.length === 0) this.binding.watchWritable(this.handle, false);
  }

  bufferSizes(): { recv: number; send: number } {
    const [recv, send] = this.binding.bufferSizes(this.handle);
    return { recv, send };
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.binding.close(this.handle);
      const error = new Error('socket closed before the datagram was sent');
      for (const q of this.queue) q.reject(error);
      this.queue = [];
    }
    return Promise.resolve();
  }
}

function errnoError(errno: number, address: string, port: number): Error {
  const code = getSystemErrorName(-errno);
  return Object.assign(new Error(`sendto ${address}:${port}: ${code}`), { code, errno: -errno });
}

function withCode(error: Error & { code?: string }): Error {
  return Object.assign(new Error(`${error.code ?? 'EIO'}: ${error.message}`, { cause: error }), { code: error.code });
}

/**
 * RFC 5952 text of an IPv6 address given as four 32-bit words; an IPv4-mapped address
 * becomes its IPv4 text, as the transport normalises it.
 */
export function ipv6Text(words: ArrayLike<number>, at: number): string {
  const groups: number[] = [];
  for (let w = 0; w < 4; w++) groups.push((words[at + w] >>> 16) & 0xffff, words[at + w] & 0xffff);
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return `${groups[6] >>> 8}.${groups[6] & 255}.${groups[7] >>> 8}.${groups[7] & 255}`;
  }
  // The longest run of two or more zero groups (the first, on a tie) becomes "::" (§4.2).
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}
