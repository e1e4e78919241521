import type { Flow, SendTarget, Transport, TransportEvents, TransportProtocol } from '../../src/transport/types.js';
import { TransportError } from '../../src/errors.js';

/** An in-memory transport: records what is sent, lets a test inject what is received. */
export class FakeTransport implements Transport {
  readonly reliable: boolean;
  readonly sent: Array<{ target: SendTarget; data: Buffer }> = [];
  failSends = false;
  constructor(
    readonly events: TransportEvents,
    readonly protocol: TransportProtocol = 'udp',
    readonly localAddress = '127.0.0.1',
    readonly localPort = 5060,
  ) {
    this.reliable = protocol !== 'udp';
  }
  async listen(): Promise<void> {}
  async send(target: SendTarget, data: Buffer): Promise<Flow> {
    if (this.failSends) throw new TransportError('connection refused');
    this.sent.push({ target, data });
    return this.flow(target.address, target.port, target.connectionId);
  }
  hasConnection(): boolean {
    return this.reliable;
  }
  async close(): Promise<void> {}
  flow(address: string, port: number, connectionId?: string): Flow {
    return {
      protocol: this.protocol,
      localAddress: this.localAddress,
      localPort: this.localPort,
      remoteAddress: address,
      remotePort: port,
      connectionId: this.reliable ? (connectionId ?? `${this.protocol}:1`) : undefined,
    };
  }
  inject(text: string, from = { address: '192.0.2.10', port: 5062 }): void {
    this.events.onMessage({ data: Buffer.from(text.replace(/\n/g, '\r\n')), flow: this.flow(from.address, from.port) });
  }
  sentText(i: number): string {
    return this.sent[i].data.toString();
  }
  lastText(): string {
    return this.sent[this.sent.length - 1].data.toString();
  }
}

export const flush = () => new Promise<void>((r) => setImmediate(r));
