// Message-layer micro-benchmark: parse+serialize of a realistic RFC 8599 REGISTER and of an
// INVITE with SDP and Record-Route/Route, on one core, after warm-up, several samples.
//
//   node --conditions=source --import tsx bench/sip-message.ts [--write]
//
// --write also writes bench/results/sip-message.md (machine, node version, command, table).
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type SipMessage, parseMessage } from '../packages/sip/src/message/index.js';

const crlf = (lines: string[]): string => lines.join('\r\n');

const PRID =
  'https%3A%2F%2Fupdates.push.services.mozilla.com%2Fwpush%2Fv2%2FgAAAAABk3xYq9hR0uJt5aG7yQm2zQ8xW1bC4dE6fG8hI0jK2lM4nO6pQ8rS0tU2vW4xY6zA8bC0dE2fG4hI6jK8lM0nO2pQ4rS6tU8vW0xY2zA4bC6dE8fG0';

const REGISTER = Buffer.from(
  crlf([
    'REGISTER sip:pushcall.example.com SIP/2.0',
    'Via: SIP/2.0/TLS 198.51.100.23:52344;branch=z9hG4bK-524287-1---a3f1c2d4e5b60718;rport',
    'Max-Forwards: 70',
    `Contact: <sip:alice@198.51.100.23:52344;transport=tls;pn-provider=webpush;pn-prid=${PRID};pn-param=BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-0011223344ff>";reg-id=1;expires=3600`,
    'To: "Alice" <sip:alice@pushcall.example.com>',
    'From: "Alice" <sip:alice@pushcall.example.com>;tag=8a7b6c5d',
    'Call-ID: 9f3c2e1d0b4a59687766554433221100',
    'CSeq: 2 REGISTER',
    'Expires: 3600',
    'Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE',
    'Supported: replaces, outbound, gruu, path',
    'User-Agent: pushcall-client/0.1.0 (Android 14)',
    'Authorization: Digest username="alice", realm="pushcall.example.com", nonce="5f1e2d3c4b5a69788796a5b4c3d2e1f0", uri="sip:pushcall.example.com", response="0f1e2d3c4b5a69788796a5b4c3d2e1f0", algorithm=MD5, cnonce="a1b2c3d4", qop=auth, nc=00000001',
    'Content-Length: 0',
    '',
    '',
  ]),
);

const SDP = crlf([
  'v=0',
  'o=alice 2890844526 2890844526 IN IP4 198.51.100.23',
  's=-',
  'c=IN IP4 198.51.100.23',
  't=0 0',
  'm=audio 49170 RTP/AVP 0 8 96 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:96 opus/48000/2',
  'a=fmtp:96 useinbandfec=1;minptime=10',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-16',
  'a=ptime:20',
  'a=sendrecv',
  'a=ice-ufrag:F7gI',
  'a=ice-pwd:x9cml/YzichV2+XlhiMu8g',
  '',
]);

const INVITE = Buffer.from(
  crlf([
    'INVITE sip:bob@203.0.113.50:5060;transport=udp SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-proxy-77f2a1;rport',
    'Via: SIP/2.0/TLS 198.51.100.23:52344;received=198.51.100.23;rport=52344;branch=z9hG4bK-ua-1d2c3b',
    'Record-Route: <sip:192.0.2.10;lr;r2=on;transport=udp>',
    'Record-Route: <sip:proxy.pushcall.example.com;lr;r2=on;transport=tls>',
    'Route: <sip:edge1.example.net;lr>, <sip:edge2.example.net;lr>',
    'Max-Forwards: 69',
    'From: "Alice" <sip:alice@pushcall.example.com>;tag=1928301774',
    'To: <sip:bob@pushcall.example.com>',
    'Call-ID: a84b4c76e66710@pc33.example.com',
    'CSeq: 314159 INVITE',
    'Contact: <sip:alice@198.51.100.23:52344;transport=tls;ob>',
    'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS',
    'Supported: replaces, timer',
    'User-Agent: pushcall-client/0.1.0',
    'Content-Type: application/sdp',
    `Content-Length: ${Buffer.byteLength(SDP)}`,
    '',
    SDP,
  ]),
);

type Op = (buf: Buffer) => unknown;

const ops: Record<string, Op> = {
  'parse+serialize': (buf) => parseMessage(buf).toBuffer(),
  'parse only': (buf) => parseMessage(buf),
  'parse+typed access': (buf) => {
    const m: SipMessage = parseMessage(buf);
    const v = m.via;
    const c = m.contacts;
    return [v.branch, v.rport, m.from.tag, m.to.uri, m.cseq.seq, c === '*' ? c : c[0]?.uri];
  },
};

interface Result {
  name: string;
  op: string;
  mean: number;
  min: number;
  max: number;
  samples: number[];
}

function sample(op: Op, buf: Buffer, ms: number): number {
  // Run in batches so the clock is read rarely; returns messages per second.
  let n = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(ms) * 1_000_000n;
  let now = start;
  do {
    for (let i = 0; i < 1000; i++) op(buf);
    n += 1000;
    now = process.hrtime.bigint();
  } while (now < deadline);
  return n / (Number(now - start) / 1e9);
}

function run(name: string, buf: Buffer, opName: string, op: Op, samples = 7, sampleMs = 700): Result {
  sample(op, buf, 1500); // warm-up (JIT tiers)
  const values: number[] = [];
  for (let i = 0; i < samples; i++) values.push(sample(op, buf, sampleMs));
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return { name, op: opName, mean, min: Math.min(...values), max: Math.max(...values), samples: values };
}

// Sanity: the messages parse and round-trip before being measured.
for (const buf of [REGISTER, INVITE]) {
  const m = parseMessage(buf);
  const again = parseMessage(m.toBuffer());
  if (again.toBuffer().compare(m.toBuffer()) !== 0) throw new Error('round trip changed the message');
}
const reg = parseMessage(REGISTER);
const contacts = reg.contacts;
if (contacts === '*' || contacts[0].sipUri?.push?.provider !== 'webpush') throw new Error('REGISTER lacks RFC 8599 params');

const results: Result[] = [];
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
for (const [name, buf] of [
  [`REGISTER (RFC 8599, ${REGISTER.length} B)`, REGISTER],
  [`INVITE + SDP (${INVITE.length} B, body ${Buffer.byteLength(SDP)} B)`, INVITE],
] as const) {
  for (const [opName, op] of Object.entries(ops)) {
    if (only && opName !== only) continue;
    const r = run(name, buf, opName, op);
    results.push(r);
    const spread = Math.max(r.max - r.mean, r.mean - r.min);
    console.log(`${name.padEnd(36)} ${opName.padEnd(20)} ${fmt(r.mean).padStart(9)} msg/s ± ${fmt(spread)} (min ${fmt(r.min)}, max ${fmt(r.max)})`);
  }
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

if (process.argv.includes('--write')) {
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  const here = dirname(fileURLToPath(import.meta.url));
  const out = join(here, 'results', 'sip-message.md');
  mkdirSync(dirname(out), { recursive: true });
  const rows = results.map((r) => {
    const spread = Math.max(r.max - r.mean, r.mean - r.min);
    return `| ${r.name} | ${r.op} | ${fmt(r.mean)} | ± ${fmt(spread)} | ${fmt(r.min)} – ${fmt(r.max)} |`;
  });
  const md = [
    '# SIP message layer benchmark',
    '',
    `- Date: ${new Date().toISOString().slice(0, 10)}`,
    `- Machine: ${cpu}, nproc ${cpus().length}`,
    `- Node: ${process.version}`,
    '- Command: `node --conditions=source --import tsx bench/sip-message.ts --write`',
    '- Method: one process, one core, 1.5 s warm-up per case, 7 samples of 0.7 s; mean messages/s, ± the largest deviation of a sample from the mean.',
    '- Target (issue 2): at least 200,000 msg/s for parse+serialize of each message.',
    '',
    '| Message | Operation | msg/s (mean) | spread | min – max |',
    '|---|---|---:|---:|---:|',
    ...rows,
    '',
    '"parse+typed access" reads the top Via (branch, rport), From tag, To URI, CSeq and the first Contact URI.',
    '',
  ].join('\n');
  writeFileSync(out, md);
  console.log(`wrote ${out}`);
}
