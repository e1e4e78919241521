/** SIP over TCP (RFC 3261 §18): a listener plus outbound connections on demand. */

import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { ConnectionTransportOptions } from './connection-transport.js';
import { StreamTransport } from './stream-transport.js';
import type { TransportEvents, SendTarget } from './types.js';

export type TcpTransportOptions = ConnectionTransportOptions;

export class TcpTransport extends StreamTransport {
  readonly protocol = 'tcp' as const;
  protected readonly acceptEvent = 'connection' as const;
  protected readonly connectEvent = 'connect' as const;

  constructor(options: TcpTransportOptions, events: TransportEvents) {
    super(options, events);
  }

  protected override async createServer(): Promise<Server> {
    return createServer({ noDelay: true });
  }

  protected override async startConnect(target: SendTarget): Promise<Socket> {
    return connect({ host: target.address, port: target.port, noDelay: true });
  }
}
