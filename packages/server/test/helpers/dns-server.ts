/**
 * A tiny authoritative DNS server on loopback for RFC 3263 tests (RFC 1035 wire format):
 * answers NAPTR, SRV and A queries from a table, NXDOMAIN for the rest. Records every query.
 */
import { createSocket, type Socket } from 'node:dgram';

export interface SrvAnswer {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

export interface NaptrAnswer {
  order: number;
  preference: number;
  flags: string;
  service: string;
  replacement: string;
}

export interface DnsZone {
  naptr?: Record<string, NaptrAnswer[]>;
  srv?: Record<string, SrvAnswer[]>;
  a?: Record<string, string>;
}

export class TestDnsServer {
  readonly queries: Array<{ name: string; type: number }> = [];
  private constructor(
    private readonly socket: Socket,
    readonly port: number,
    readonly zone: DnsZone,
  ) {}

  static async start(zone: DnsZone): Promise<TestDnsServer> {
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
    const server = new TestDnsServer(socket, socket.address().port, zone);
    socket.on('message', (msg, rinfo) => {
      const reply = server.answer(msg);
      if (reply) socket.send(reply, rinfo.port, rinfo.address);
    });
    return server;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  close(): void {
    this.socket.close();
  }

  private answer(query: Buffer): Buffer | undefined {
    if (query.length < 12) return undefined;
    let offset = 12;
    const labels: string[] = [];
    while (query[offset] !== 0) {
      const length = query[offset];
      labels.push(query.toString('latin1', offset + 1, offset + 1 + length));
      offset += length + 1;
    }
    const questionEnd = offset + 5;
    const type = query.readUInt16BE(offset + 1);
    const name = labels.join('.').toLowerCase();
    this.queries.push({ name, type });
    const answers: Buffer[] = [];
    if (type === 33) for (const srv of this.zone.srv?.[name] ?? []) answers.push(rr(33, Buffer.concat([u16(srv.priority), u16(srv.weight), u16(srv.port), encodeName(srv.target)])));
    if (type === 1 && this.zone.a?.[name]) answers.push(rr(1, Buffer.from(this.zone.a[name].split('.').map(Number))));
    if (type === 35) {
      for (const n of this.zone.naptr?.[name] ?? []) {
        answers.push(rr(35, Buffer.concat([u16(n.order), u16(n.preference), text(n.flags), text(n.service), text(''), encodeName(n.replacement)])));
      }
    }
    const known = this.zone.srv?.[name] !== undefined || this.zone.a?.[name] !== undefined || this.zone.naptr?.[name] !== undefined;
    const header = Buffer.alloc(12);
    query.copy(header, 0, 0, 2); // id
    header.writeUInt16BE(known ? 0x8580 : 0x8583, 2); // response, authoritative, RD, RA; NXDOMAIN when unknown
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    return Buffer.concat([header, query.subarray(12, questionEnd), ...answers]);
  }
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

/** A <character-string>: one length byte, then the bytes. */
function text(s: string): Buffer {
  return Buffer.concat([Buffer.from([s.length]), Buffer.from(s, 'latin1')]);
}

function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.').filter(Boolean);
  return Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'latin1')])), Buffer.from([0])]);
}

/** An answer for the question's name (a compression pointer to offset 12), TTL 60. */
function rr(type: number, data: Buffer): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(0xc00c, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt32BE(60, 6);
  head.writeUInt16BE(data.length, 10);
  return Buffer.concat([head, data]);
}
