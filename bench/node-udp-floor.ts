/**
 * The floor of SIP on Node's UDP sockets: a responder that answers every request with a
 * canned 200 OK built by copying Via/From/To/Call-ID/CSeq lines, with no parser, no
 * transaction, no store. Run under the same SIPp harness it shows how much of pushcall's
 * CPU per REGISTER is the datagram path itself (libuv, Buffers, callbacks), not pushcall.
 *   node bench/node-udp-floor.ts <port> [dgram|batch|relay]
 * dgram: node:dgram; batch: pushcall's batched addon (recvmmsg, synchronous sendto), which
 * pushcall's UDP transport uses when it is built.
 * relay: the floor of a proxied call, on the batched addon. The callee's REGISTER names the
 * UAS (its source port); every other request but OPTIONS goes on to the UAS untouched
 * (the INVITE with a Record-Route line added, so that ACK and BYE come back this way), and
 * every response goes to the port the requests come from (the UAC). No parsing beyond the
 * first bytes, no transactions, no 100 Trying: what moving a call's datagrams through Node
 * costs in the harness, 12 of the 13 pushcall moves (it also sends the 100).
 * register: the floor of a persisting registrar on this stack, on the batched addon: each
 * REGISTER is parsed by pushcall's parser (its Contact URI too), one row per REGISTER goes
 * into SQLite (WAL, synchronous=NORMAL, a 2 ms group commit, as pushcall's store), and the
 * 200 with the Contact is built and serialized by pushcall's message layer after the commit.
 * No validation, authentication, binding model, indexes or RFC 8599 handling: no registrar
 * that parses and persists in this stack can cost less.
 * proxy: the floor of a stateful proxy on this stack, on the batched addon: every datagram is
 * parsed by pushcall's parser and every datagram sent is serialized by its message layer. An
 * INVITE or BYE gets a server-transaction entry (a retransmission is absorbed), a 100 Trying
 * (INVITE), Max-Forwards decremented, our Route entry popped, a Record-Route (INVITE) and a Via
 * of our own with a fresh branch, and a client-transaction entry with one timeout timer; the
 * Request-URI's user is looked up in an in-memory location Map filled by REGISTER. A response
 * loses our Via, finds its client transaction by branch, and goes to the address the request
 * came from; a final response ends both transactions. An ACK for a 2xx is forwarded statelessly
 * (RFC 3261 §16.11). No authentication, loop detection, retransmission timers, forking, 64*T1
 * retention or timelines: a stateful proxy that parses and serializes with this message layer
 * cannot cost less.
 */
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ContactValue, type SipMessage, type SipRequest, type SipResponse, type SipUri, createResponse, isRequest, isSipUri, parseMessage, randomToken } from '@pushcall/sip';
import { loadUdpBatch, openBatchSocket } from '../packages/sip/src/transport/udp-batch.js';

const port = Number(process.argv[2] ?? 5085);
const io = process.argv[3] ?? 'dgram';
const COPY = ['via:', 'from:', 'to:', 'call-id:', 'cseq:', 'v:', 'f:', 't:', 'i:'];

function cannedOk(msg: Buffer): Buffer | undefined {
  const text = msg.toString('latin1');
  if (text.startsWith('SIP/2.0')) return undefined;
  let out = 'SIP/2.0 200 OK\r\n';
  let start = text.indexOf('\r\n') + 2;
  for (;;) {
    const end = text.indexOf('\r\n', start);
    if (end <= start) break;
    const line = text.slice(start, end);
    const lower = line.slice(0, 9).toLowerCase();
    if (COPY.some((p) => lower.startsWith(p))) out += lower.startsWith('to:') || lower.startsWith('t:') ? `${line};tag=floor\r\n` : `${line}\r\n`;
    start = end + 2;
  }
  out += 'Content-Length: 0\r\n\r\n';
  return Buffer.from(out, 'latin1');
}

/** SO_RCVBUF and SO_SNDBUF, as pushcall's UDP transport asks for by default. */
const BUFFER_BYTES = 4 << 20;

/**
 * pushcall's batched UDP addon on `port`, opened as its transport opens it, closed on SIGTERM
 * (then `onStop`). Returns the send function the floors answer with.
 */
function openFloorSocket(name: string, onDatagram: (msg: Buffer, address: string, fromPort: number) => void, onStop = () => {}) {
  const binding = loadUdpBatch();
  if (!binding.ok) throw new Error(`${name}: ${binding.reason}`);
  const options = { ipv6: false, address: '127.0.0.1', port, recvBufferSize: BUFFER_BYTES, sendBufferSize: BUFFER_BYTES, onError() {}, onBufferError() {} };
  const socket = openBatchSocket(binding.value, options, onDatagram);
  process.on('SIGTERM', () =>
    void socket.close().then(() => {
      onStop();
      process.exit(0);
    }),
  );
  return (data: Buffer, toPort: number, address: string): void => void socket.send(data, toPort, address)?.catch(() => {});
}

if (io === 'register') {
  const dir = mkdtempSync(join(tmpdir(), 'register-floor-'));
  const db = new Database(join(dir, 'floor.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE bindings (id TEXT NOT NULL, aor TEXT NOT NULL, expires_at INTEGER NOT NULL, contact TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO bindings VALUES (?, ?, ?, ?)');
  interface Pending { request: SipRequest; aor: string; contact: string; expires: number; port: number; address: string }
  let pending: Pending[] = [];
  const commit = db.transaction((rows: Pending[]) => {
    const now = Date.now();
    for (const r of rows) insert.run(randomToken(12), r.aor, now + r.expires * 1000, r.contact);
  });
  const send = openFloorSocket(
    'node-register-floor',
    (msg, address, fromPort) => {
      let request: SipRequest;
      try {
        request = parseMessage(msg) as SipRequest;
      } catch {
        return; // not a registrar's concern here: SIPp's calls send it an ACK with no URI
      }
      if (!request.isRequest) return;
      const contacts = request.contacts;
      if (request.method !== 'REGISTER' || contacts === '*' || contacts.length === 0) return send(createResponse(request, 200).toBuffer(), fromPort, address);
      const contact: ContactValue = contacts[0];
      pending.push({ request, aor: request.to.uri.toString(), contact: contact.uri.toString(), expires: contact.expires ?? request.expires ?? 3600, port: fromPort, address });
      if (pending.length === 1) {
        setTimeout(() => {
          const rows = pending;
          pending = [];
          commit(rows);
          for (const r of rows) send(createResponse(r.request, 200, { headers: [['Contact', `<${r.contact}>;expires=${r.expires}`]] }).toBuffer(), r.port, r.address);
        }, 2);
      }
    },
    () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  );
} else if (io === 'proxy') {
  interface ServerTx { address: string; port: number; last?: Buffer }
  interface ClientTx { server: ServerTx; serverKey: string; timer: NodeJS.Timeout }
  const self = `127.0.0.1:${port}`;
  const location = new Map<string, { address: string; port: number }>();
  const servers = new Map<string, ServerTx>();
  const clients = new Map<string, ClientTx>();
  const TIMER_B_MS = 32_000;
  const send = openFloorSocket('node-proxy-floor', (msg, address, fromPort) => {
    let message: SipMessage;
    try {
      message = parseMessage(msg);
    } catch {
      return;
    }
    if (!isRequest(message)) {
      const response = message as SipResponse;
      const branch = response.via.branch ?? '';
      const client = clients.get(branch);
      if (!client) return;
      response.removeFirstValue('Via');
      const data = response.toBuffer();
      if (response.status >= 200) {
        clearTimeout(client.timer);
        clients.delete(branch);
        servers.delete(client.serverKey);
      }
      client.server.last = data;
      return send(data, client.server.port, client.server.address);
    }
    const request = message;
    if (request.method === 'REGISTER' || request.method === 'OPTIONS') {
      const contacts = request.contacts;
      if (request.method === 'REGISTER' && contacts !== '*' && contacts.length > 0) {
        const uri = contacts[0].uri as SipUri;
        location.set((request.to.uri as SipUri).user ?? '', { address: uri.host, port: uri.port ?? 5060 });
      }
      return send(createResponse(request, 200).toBuffer(), fromPort, address);
    }
    const stateful = request.method !== 'ACK';
    const serverKey = `${request.via.branch}|${request.method}`;
    let server: ServerTx | undefined;
    if (stateful) {
      const known = servers.get(serverKey);
      if (known) return void (known.last && send(known.last, known.port, known.address));
      server = { address, port: fromPort };
      servers.set(serverKey, server);
      if (request.method === 'INVITE') {
        server.last = createResponse(request, 100).toBuffer();
        send(server.last, fromPort, address);
      }
    }
    const routes = request.routes;
    const top = routes[0]?.uri;
    const ours = isSipUri(top) && `${top.host}:${top.port}` === self;
    if (ours) request.removeFirstValue('Route');
    const target = (ours ? routes[1]?.uri : top) ?? request.uri;
    if (!isSipUri(target) || !isSipUri(request.uri)) return;
    const destination = location.get(request.uri.user ?? '') ?? { address: target.host, port: target.port ?? 5060 };
    request.set('Max-Forwards', String((request.maxForwards ?? 70) - 1));
    if (request.method === 'INVITE') request.prepend('Record-Route', `<sip:${self};lr>`);
    const branch = `z9hG4bK${randomToken(12)}`;
    request.prepend('Via', `SIP/2.0/UDP ${self};branch=${branch}`);
    if (server) {
      const timer = setTimeout(() => {
        clients.delete(branch);
        servers.delete(serverKey);
      }, TIMER_B_MS);
      clients.set(branch, { server, serverKey, timer });
    }
    send(request.toBuffer(), destination.port, destination.address);
  });
} else if (io === 'relay') {
  const recordRoute = `Record-Route: <sip:127.0.0.1:${port};lr>\r\n`;
  let uasPort = 0;
  let uacPort = 0;
  const send = openFloorSocket('node-relay-floor', (msg, address, fromPort) => {
    if (msg[0] === 0x53 /* S: SIP/2.0, a response */) return send(msg, uacPort, address);
    if (msg[0] === 0x52 /* R: REGISTER */) uasPort = fromPort;
    if (msg[0] === 0x52 || msg[0] === 0x4f /* O: OPTIONS */) {
      const reply = cannedOk(msg);
      if (reply) send(reply, fromPort, address);
      return;
    }
    uacPort = fromPort;
    if (msg[0] === 0x49 /* I: INVITE */) {
      const text = msg.toString('latin1');
      const firstLine = text.indexOf('\r\n') + 2;
      return send(Buffer.from(text.slice(0, firstLine) + recordRoute + text.slice(firstLine), 'latin1'), uasPort, address);
    }
    send(msg, uasPort, address);
  });
} else if (io === 'batch') {
  const send = openFloorSocket('node-floor-batch', (msg, address, fromPort) => {
    const reply = cannedOk(msg);
    if (reply) send(reply, fromPort, address);
  });
} else {
  const socket = createSocket({ type: 'udp4', recvBufferSize: BUFFER_BYTES, sendBufferSize: BUFFER_BYTES });
  socket.on('message', (msg, rinfo) => {
    const reply = cannedOk(msg);
    if (reply) socket.send(reply, rinfo.port, rinfo.address);
  });
  socket.bind(port, '127.0.0.1');
  process.on('SIGTERM', () => socket.close(() => process.exit(0)));
}
