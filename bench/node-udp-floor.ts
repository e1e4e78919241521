/**
 * The floor of SIP on Node's UDP sockets: a responder that answers every request with a
 * canned 200 OK built by copying Via/From/To/Call-ID/CSeq lines, with no parser, no
 * transaction, no store. Run under the same SIPp harness it shows how much of pushcall's
 * CPU per REGISTER is Node's own datagram path (libuv, Buffers, callbacks), not pushcall.
 *   node bench/node-udp-floor.ts <port>
 */
import { createSocket } from 'node:dgram';

const port = Number(process.argv[2] ?? 5085);
const socket = createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
const COPY = ['via:', 'from:', 'to:', 'call-id:', 'cseq:', 'v:', 'f:', 't:', 'i:'];

socket.on('message', (msg, rinfo) => {
  const text = msg.toString('latin1');
  if (text.startsWith('SIP/2.0')) return;
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
  socket.send(Buffer.from(out, 'latin1'), rinfo.port, rinfo.address);
});
socket.bind(port, '127.0.0.1');
process.on('SIGTERM', () => socket.close(() => process.exit(0)));
