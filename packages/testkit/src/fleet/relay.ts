/**
 * A UDP impairment relay on loopback: phones send to the relay, the relay forwards to the
 * SIP server and back, adding one-way latency (fixed or uniform in [min, max], so packets
 * may be reordered) and independent loss in each direction.
 *
 * It behaves like a NAT: each phone socket (source address:port) gets its own upstream
 * socket, so the server sees one flow per phone and routes requests (the held INVITE, the
 * CANCEL, BYE) back through the relay to that phone. Phones register with reg-id (RFC 5626)
 * and their Via carries rport, so both requests and responses from the server take the
 * flow, not the Contact. A phone that wakes on a new port gets a new flow, exactly like a
 * phone behind a real NAT. Flows idle for `idleMs` are closed.
 *
 * Why a relay rather than delay/loss inside the SIP UA: it needs no change to the UA or
 * the server, it impairs exactly what crosses the network (retransmissions included), and
 * it works the same against any external SIP server.
 */

import { type Socket, createSocket } from 'node:dgram';
import { type DelaySpec, pickDelay, seededRandom } from '../emulators/util.js';

export interface ImpairmentOptions {
  /** One-way delay added in each direction, ms (number or [min, max]). */
  latencyMs?: DelaySpec;
  /** Probability that a datagram is dropped, per direction (0..1). */
  loss?: number;
  seed?: number;
  /** Close a flow after this long without traffic (default 30 s). */
  idleMs?: number;
}

interface RelayFlow {
  socket: Socket;
  client: { address: string; port: number };
  lastUsed: number;
}

export interface RelayStats {
  toServer: number;
  toPhones: number;
  droppedToServer: number;
  droppedToPhones: number;
  flowsOpened: number;
  flowsOpen: number;
}

export class UdpImpairmentRelay {
  readonly stats: RelayStats = { toServer: 0, toPhones: 0, droppedToServer: 0, droppedToPhones: 0, flowsOpened: 0, flowsOpen: 0 };
  private front: Socket | undefined;
  private readonly flows = new Map<string, RelayFlow>();
  private readonly rnd: () => number;
  private sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly upstream: { address: string; port: number },
    private readonly options: ImpairmentOptions = {},
  ) {
    this.rnd = seededRandom(options.seed ?? 7);
  }

  /** Listen on 127.0.0.1 (a free port); resolves with the address phones should use. */
  async start(): Promise<{ address: string; port: number }> {
    const front = createSocket('udp4');
    front.on('message', (msg, rinfo) => this.fromPhone(msg, rinfo.address, rinfo.port));
    front.on('error', () => undefined);
    await new Promise<void>((resolve) => front.bind(0, '127.0.0.1', () => resolve()));
    this.front = front;
    const idle = this.options.idleMs ?? 30_000;
    this.sweepTimer = setInterval(() => this.sweep(idle), Math.min(5000, idle));
    this.sweepTimer.unref();
    return { address: '127.0.0.1', port: front.address().port };
  }

  private impair(send: () => void, dropped: () => void): void {
    if (this.closed) return;
    const loss = this.options.loss ?? 0;
    if (loss > 0 && this.rnd() < loss) {
      dropped();
      return;
    }
    const delay = pickDelay(this.options.latencyMs ?? 0, this.rnd);
    if (delay <= 0) send();
    else setTimeout(() => !this.closed && send(), delay).unref();
  }

  private fromPhone(msg: Buffer, address: string, port: number): void {
    const key = `${address}:${port}`;
    let flow = this.flows.get(key);
    if (!flow) {
      const socket = createSocket('udp4');
      const f: RelayFlow = { socket, client: { address, port }, lastUsed: Date.now() };
      socket.on('message', (reply) => {
        f.lastUsed = Date.now();
        this.impair(
          () => {
            this.stats.toPhones++;
            this.front?.send(reply, f.client.port, f.client.address);
          },
          () => this.stats.droppedToPhones++,
        );
      });
      socket.on('error', () => undefined);
      socket.bind(0, '127.0.0.1');
      this.flows.set(key, f);
      this.stats.flowsOpened++;
      this.stats.flowsOpen = this.flows.size;
      flow = f;
    }
    flow.lastUsed = Date.now();
    const f = flow;
    this.impair(
      () => {
        this.stats.toServer++;
        f.socket.send(msg, this.upstream.port, this.upstream.address);
      },
      () => this.stats.droppedToServer++,
    );
  }

  private sweep(idleMs: number): void {
    const cutoff = Date.now() - idleMs;
    for (const [key, f] of this.flows) {
      if (f.lastUsed >= cutoff) continue;
      this.flows.delete(key);
      f.socket.close();
    }
    this.stats.flowsOpen = this.flows.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const f of this.flows.values()) f.socket.close();
    this.flows.clear();
    this.stats.flowsOpen = 0;
    const front = this.front;
    this.front = undefined;
    if (front) await new Promise<void>((resolve) => front.close(() => resolve()));
  }
}
