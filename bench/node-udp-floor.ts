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
 */
import { createSocket } from 'node:dgram';
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

if (io === 'relay') {
  const binding = loadUdpBatch();
  if (!binding.ok) throw new Error(`node-relay-floor: ${binding.reason}`);
  const options = { ipv6: false, address: '127.0.0.1', port, recvBufferSize: 4 << 20, sendBufferSize: 4 << 20, onError() {}, onBufferError() {} };
  const recordRoute = `Record-Route: <sip:127.0.0.1:${port};lr>\r\n`;
  let uasPort = 0;
  let uacPort = 0;
  const socket = openBatchSocket(binding.value, options, (msg, address, fromPort) => {
    const send = (data: Buffer, to: number) => void socket.send(data, to, address)?.catch(() => {});
    if (msg[0] === 0x53 /* S: SIP/2.0, a response */) return send(msg, uacPort);
    if (msg[0] === 0x52 /* R: REGISTER */) uasPort = fromPort;
    if (msg[0] === 0x52 || msg[0] === 0x4f /* O: OPTIONS */) {
      const reply = cannedOk(msg);
      if (reply) send(reply, fromPort);
      return;
    }
    uacPort = fromPort;
    if (msg[0] === 0x49 /* I: INVITE */) {
      const text = msg.toString('latin1');
      const firstLine = text.indexOf('\r\n') + 2;
      return send(Buffer.from(text.slice(0, firstLine) + recordRoute + text.slice(firstLine), 'latin1'), uasPort);
    }
    send(msg, uasPort);
  });
  process.on('SIGTERM', () => void socket.close().then(() => process.exit(0)));
} else if (io === 'batch') {
  const binding = loadUdpBatch();
  if (!binding.ok) throw new Error(`node-floor-batch: ${binding.reason}`);
  const options = { ipv6: false, address: '127.0.0.1', port, recvBufferSize: 4 << 20, sendBufferSize: 4 << 20, onError() {}, onBufferError() {} };
  const socket = openBatchSocket(binding.value, options, (msg, address, fromPort) => {
    const reply = cannedOk(msg);
    if (reply) void socket.send(reply, fromPort, address)?.catch(() => {});
  });
  process.on('SIGTERM', () => void socket.close().then(() => process.exit(0)));
} else {
  const socket = createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
  socket.on('message', (msg, rinfo) => {
    const reply = cannedOk(msg);
    if (reply) socket.send(reply, rinfo.port, rinfo.address);
  });
  socket.bind(port, '127.0.0.1');
  process.on('SIGTERM', () => socket.close(() => process.exit(0)));
}
