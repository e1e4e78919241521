/**
 * SIP over UDP (RFC 3261 §18): one datagram is one message. The socket family follows the
 * bind address (udp6 for IPv6 addresses, udp4 otherwise). Datagrams that are only CRLFs are
 * keep-alives and dropped; STUN Binding requests on the SIP port (RFC 5626 §4.4.2 / §8.4
 * keep-alive for UDP flows) are answered with the reflexive address.
 */

import { isIPv4, isIPv6 } from 'node:net';
import { TransportError, TransportListenError } from '../errors.js';
import { normalizeAddress } from './connection-table.js';
import { errorText, hostPort } from './connection-transport.js';
import { type DatagramSocket, openDatagramSocket, type UdpIo } from './datagram-socket.js';
import { isCrlfOnly } from './stream-framer.js';
import { stunBindingResponse } from './stun.js';
import type { Flow, SendTarget, Transport, TransportEvents } from './types.js';

export const DEFAULT_UDP_MAX_MESSAGE_BYTES = 65_535;
export const DEFAULT_UDP_BUFFER_BYTES = 4 * 1024 * 1024;

export interface UdpTransportOptions {
  /** "0.0.0.0", "::", "127.0.0.1", "::1", ... */
  address: string;
  /** 0 picks a free port (see `localPort` after `listen`). */
  port: number;
  /** Larger datagrams are dropped with a warning. Default 65535. */
  maxMessageBytes?: number;
  /** SO_RCVBUF. Default 4 MiB (the kernel may cap it: net.core.rmem_max). */
  recvBufferSize?: number;
  /** SO_SNDBUF. Default 4 MiB (the kernel may cap it: net.core.wmem_max). */
  sendBufferSize?: number;
  /** Answer STUN Binding requests (RFC 5626 keep-alive). Default true. */
  answerStun?: boolean;
  /**
   * Datagram I/O: 'batch' the recvmmsg addon (fails to listen when it is not built), 'dgram'
   * node:dgram, 'auto' (default) the addon when available.
   */
  io?: UdpIo;
}

export class UdpTransport implements Transport {
  readonly protocol = 'udp' as const;
  readonly reliable = false;
  private socket: DatagramSocket | undefined;
  private boundAddress: string;
  /** `boundAddress` as flows carry it (normalizeAddress), worked out once per bind. */
  private flowAddress: string;
  private boundPort: number;
  private closed = false;
  private closePromise: Promise<void> | undefined;
  private readonly maxMessageBytes: number;
  private readonly ipv6: boolean;

  constructor(
    private readonly options: UdpTransportOptions,
    private readonly events: TransportEvents,
  ) {
    this.boundAddress = options.address;
    this.flowAddress = normalizeAddress(options.address);
    this.boundPort = options.port;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_UDP_MAX_MESSAGE_BYTES;
    this.ipv6 = isIPv6(normalizeBracketed(options.address));
  }

  get localAddress(): string {
    return this.boundAddress;
  }

  get localPort(): number {
    return this.boundPort;
  }

  /** The SO_RCVBUF / SO_SNDBUF the kernel actually granted (after listen). */
  get bufferSizes(): { recv: number; send: number } | undefined {
    if (!this.socket) return undefined;
    try {
      return this.socket.bufferSizes();
    } catch {
      return undefined;
    }
  }

  hasConnection(_connectionId: string): boolean {
    return false;
  }

  /** Which datagram I/O the socket uses (after listen). */
  get io(): 'batch' | 'dgram' | undefined {
    return this.socket?.io;
  }

  async listen(): Promise<void> {
    if (this.closed) throw new TransportError('udp transport is closed');
    if (this.socket) return;
    const address = normalizeBracketed(this.options.address);
    let socket: DatagramSocket;
    try {
      socket = await openDatagramSocket(
        this.options.io ?? 'auto',
        {
          ipv6: this.ipv6,
          address,
          port: this.options.port,
          recvBufferSize: this.options.recvBufferSize ?? DEFAULT_UDP_BUFFER_BYTES,
          sendBufferSize: this.options.sendBufferSize ?? DEFAULT_UDP_BUFFER_BYTES,
          onError: (err) => this.warn('TRANSPORT_SOCKET_ERROR', `udp: ${errorText(err)}`),
          onBufferError: (err) => this.warn('TRANSPORT_BUFFER_SIZE', `udp: cannot set socket buffer sizes: ${errorText(err)}`),
        },
        (data, remoteAddress, remotePort) => this.onDatagram(data, remoteAddress, remotePort),
      );
    } catch (err) {
      throw new TransportListenError(`udp: cannot listen on ${hostPort(address, this.options.port)}: ${errorText(err)}`, { cause: err });
    }
    if (this.closed) {
      await socket.close();
      throw new TransportError('udp transport is closed');
    }
    this.boundAddress = socket.address;
    this.flowAddress = normalizeAddress(socket.address);
    this.boundPort = socket.port;
    this.socket = socket;
  }

  send(target: SendTarget, data: Buffer): Promise<Flow> {
    const socket = this.socket;
    if (this.closed || !socket) return Promise.reject(new TransportError(`udp transport is ${this.closed ? 'closed' : 'not listening'}`));
    const remoteAddress = normalizeAddress(target.address);
    const address = this.socketAddress(remoteAddress);
    if (address === undefined) return Promise.reject(new TransportError(`udp: cannot send to IPv6 ${remoteAddress} from an IPv4 socket`));
    const flow: Flow = {
      protocol: 'udp',
      localAddress: this.flowAddress,
      localPort: this.boundPort,
      remoteAddress,
      remotePort: target.port,
    };
    try {
      const sending = socket.send(data, target.port, address);
      if (sending === undefined) return Promise.resolve(flow);
      return sending.then(
        () => flow,
        (err) => Promise.reject(sendError(target, err)),
      );
    } catch (err) {
      return Promise.reject(sendError(target, err));
    }
  }

  sendNow(address: string, port: number, data: Buffer): boolean {
    const socket = this.socket;
    if (socket === undefined) return false;
    const to = this.socketAddress(normalizeAddress(address));
    return to !== undefined && socket.sendNow(data, port, to);
  }

  /** The address as the socket takes it; undefined when its family cannot be reached. */
  private socketAddress(address: string): string | undefined {
    // An IPv4 address has no ':': testing that first spares Node's IPv6 pattern, a long
    // regular expression that a dotted quad fails slowly, on every datagram sent.
    if (address.includes(':')) return isIPv6(address) && !this.ipv6 ? undefined : address;
    if (this.ipv6 && isIPv4(address)) return `::ffff:${address}`; // dual-stack socket
    return address;
  }

  close(): Promise<void> {
    this.closed = true;
    const socket = this.socket;
    this.socket = undefined;
    this.closePromise ??= socket ? socket.close() : Promise.resolve();
    return this.closePromise;
  }

  private onDatagram(msg: Buffer, remoteAddress: string, remotePort: number): void {
    if (this.closed) return;
    const flow: Flow = {
      protocol: 'udp',
      localAddress: this.flowAddress,
      localPort: this.boundPort,
      remoteAddress,
      remotePort,
    };
    if (msg.length > this.maxMessageBytes) {
      this.warn('TRANSPORT_OVERSIZED', `udp: dropped ${msg.length}-byte datagram (limit ${this.maxMessageBytes})`, flow);
      return;
    }
    if (isCrlfOnly(msg)) return; // keep-alive
    if (msg.length > 0 && msg[0] < 2) {
      // Not SIP (a start line is text): a STUN message or junk.
      const response = this.options.answerStun === false ? undefined : stunBindingResponse(msg, remoteAddress, remotePort);
      if (response) this.send({ address: remoteAddress, port: remotePort }, response).catch(() => {}); // best effort, as any keep-alive
      return;
    }
    try {
      this.events.onMessage({ data: msg, flow });
    } catch (err) {
      this.warn('TRANSPORT_HANDLER_ERROR', `onMessage threw: ${errorText(err)}`, flow);
    }
  }

  private warn(code: string, message: string, flow?: Flow): void {
    try {
      this.events.onWarning?.(flow ? { code, message, flow } : { code, message });
    } catch {
      /* a throwing logger must not take the socket down */
    }
  }
}

function sendError(target: SendTarget, err: unknown): TransportError {
  return new TransportError(`udp send to ${hostPort(target.address, target.port)} failed: ${errorText(err)}`, { cause: err });
}

function normalizeBracketed(address: string): string {
  return address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
}
