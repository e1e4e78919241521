/**
 * CPU cost of one proxied call through pushcall's own layers, without sockets: the same
 * INVITE / 100 / 180 / 200 / ACK / BYE / 200 exchange as bench/sip-compare.ts (UAC → pushcall →
 * an always-online, registered UAS), with both peers played in process by a transport that
 * hands pushcall's sends to a small scripted UAC and UAS. Isolates pushcall's work from the
 * kernel's UDP path (which costs pushcall and Kamailio alike) and from SIPp.
 *   node --conditions=source --import tsx bench/call-inprocess.ts [calls] [concurrent] [--rate <calls/s> [--tick <ms>]] [--heap-snapshot <file>] [--alloc] [--cpu-profile <file>]
 * Prints CPU µs per call for the whole process and for the scripted peers alone; pushcall's
 * share is the difference. `--heap-snapshot <file>` writes one 6 s after the run (after Timer
 * K: what is left is what finished calls keep for 64*T1); TIMELINES=<n> sets
 * proxy.timelineMaxCalls (1 to see the heap without call timelines). `--alloc` adds the bytes
 * allocated per call, the scripted peers' included (bench/lib/alloc-profile.ts).
 * `--rate` paces the calls as the SIPp harness does (new calls every `--tick` ms, 1 by
 * default, the process idle in between) instead of running flat out: the same work then
 * costs 2–3× the CPU (cold caches after each idle spell), which is most of the difference
 * between this benchmark and pushcall's CPU per call through SIPp (BENCHMARKS.md).
 * `--cpu-profile <file>` writes a CPU profile of the measured calls and prints its top.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig, createPushcall } from '@pushcall/server';
import { startAllocationProfile } from './lib/alloc-profile.js';
import { flagValue } from './lib/args.js';
import { startCpuProfile } from './lib/cpu-profile.js';
import { attachInProcessUdp } from './lib/in-process-udp.js';

// Positional arguments come before the flags (`30000 --alloc` leaves concurrent at 200).
const positional = process.argv.slice(2, process.argv.findIndex((a, i) => i >= 2 && a.startsWith('--')) >>> 0);
const calls = Number(positional[0] ?? 50_000);
const concurrent = Number(positional[1] ?? 200);
const rate = Number(flagValue('--rate') ?? 0);
const tickMs = Number(flagValue('--tick') ?? 1);
const UAC_PORT = 5091;
const UAS_PORT = 5090;
const PROXY_PORT = 5060;

const config = validateConfig({
  listen: [`udp:127.0.0.1:${PROXY_PORT}`],
  dataDir: mkdtempSync(join(tmpdir(), 'call-inproc-')),
  store: { type: 'memory' },
  auth: { mode: 'open' },
  admin: { enabled: false },
  log: { level: 'warn' },
  ...(process.env.TIMELINES ? { proxy: { timelineMaxCalls: Number(process.env.TIMELINES) } } : {}),
});
const server = await createPushcall({ config });

// Messages pushcall sends, delivered to the scripted peers on the next turn (as a socket would).
const outbox: { port: number; text: string }[] = [];
const toPushcall = attachInProcessUdp(server.layer, PROXY_PORT, (target, data) => outbox.push({ port: target.port, text: data.toString('latin1') }));

// ---- the scripted peers (their CPU is measured separately and subtracted) ----------------

let peerCpuUs = 0;
let done = 0;
let started = 0;
let unexpected = 0;

function headerLines(text: string, names: string[]): string[] {
  const out: string[] = [];
  const end = text.indexOf('\r\n\r\n');
  let i = text.indexOf('\r\n') + 2;
  while (i < end) {
    const eol = text.indexOf('\r\n', i);
    const line = text.slice(i, eol);
    const colon = line.indexOf(':');
    if (names.includes(line.slice(0, colon).trim().toLowerCase())) out.push(line);
    i = eol + 2;
  }
  return out;
}
const header = (text: string, name: string) => headerLines(text, [name])[0]?.slice(name.length + 1).trim() ?? '';

// What the peers send, handed to pushcall after their CPU time is taken.
const inbox: { port: number; data: Buffer }[] = [];
function deliver(port: number, text: string): void {
  inbox.push({ port, data: Buffer.from(text, 'latin1') });
}
function flushInbox(): void {
  for (const m of inbox.splice(0)) toPushcall(m.data, m.port);
}

function uas(text: string): void {
  if (text.startsWith('INVITE ')) {
    const copied = headerLines(text, ['via', 'record-route', 'from', 'call-id', 'cseq']);
    const to = `To: ${header(text, 'to')};tag=uas`;
    const contact = `Contact: <sip:callee@127.0.0.1:${UAS_PORT}>`;
    deliver(UAS_PORT, ['SIP/2.0 180 Ringing', ...copied, to, contact, 'Content-Length: 0', '', ''].join('\r\n'));
    const sdp = 'v=0\r\no=bench 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';
    deliver(UAS_PORT, ['SIP/2.0 200 OK', ...copied, to, contact, 'Content-Type: application/sdp', `Content-Length: ${sdp.length}`, '', sdp].join('\r\n'));
  } else if (text.startsWith('BYE ')) {
    deliver(UAS_PORT, ['SIP/2.0 200 OK', ...headerLines(text, ['via', 'from', 'to', 'call-id', 'cseq']), 'Content-Length: 0', '', ''].join('\r\n'));
  } else if (!text.startsWith('ACK ')) {
    unexpected++;
  }
}

function invite(n: number): string {
  const sdp = 'v=0\r\no=bench 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6002 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n';
  return [
    `INVITE sip:callee@127.0.0.1:${PROXY_PORT} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${UAC_PORT};branch=z9hG4bK-${n}-1`,
    'Max-Forwards: 70',
    `From: <sip:caller@127.0.0.1:${UAC_PORT}>;tag=${n}a`,
    `To: <sip:callee@127.0.0.1:${PROXY_PORT}>`,
    `Call-ID: ${n}-call@127.0.0.1`,
    'CSeq: 1 INVITE',
    `Contact: <sip:caller@127.0.0.1:${UAC_PORT}>`,
    'Subject: pushcall-bench',
    'Content-Type: application/sdp',
    `Content-Length: ${sdp.length}`,
    '',
    sdp,
  ].join('\r\n');
}

function inDialog(method: 'ACK' | 'BYE', n: number, ok: string): string {
  const routes = headerLines(ok, ['record-route']).map((l) => `Route: ${l.slice(l.indexOf(':') + 1).trim()}`);
  const contact = header(ok, 'contact').replace(/^<|>$/g, '');
  return [
    `${method} ${contact} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${UAC_PORT};branch=z9hG4bK-${n}-${method === 'ACK' ? 2 : 3}`,
    ...routes,
    'Max-Forwards: 70',
    `From: <sip:caller@127.0.0.1:${UAC_PORT}>;tag=${n}a`,
    `To: ${header(ok, 'to')}`,
    `Call-ID: ${n}-call@127.0.0.1`,
    `CSeq: ${method === 'ACK' ? 1 : 2} ${method}`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

function uac(text: string): void {
  if (!text.startsWith('SIP/2.0 200')) return; // 100 and 180
  const n = Number.parseInt(header(text, 'call-id'), 10);
  if (header(text, 'cseq').endsWith('INVITE')) {
    deliver(UAC_PORT, inDialog('ACK', n, text));
    deliver(UAC_PORT, inDialog('BYE', n, text));
  } else {
    done++;
  }
}

function pump(): void {
  const batch = outbox.splice(0);
  const p0 = process.cpuUsage();
  for (const m of batch) {
    if (m.port === UAS_PORT) uas(m.text);
    else if (m.port === UAC_PORT) uac(m.text);
    else unexpected++;
  }
  const p = process.cpuUsage(p0);
  peerCpuUs += p.user + p.system;
  flushInbox();
}

// The callee registers from the UAS's address, as in the SIPp harness.
deliver(UAS_PORT, [
  `REGISTER sip:127.0.0.1 SIP/2.0`,
  `Via: SIP/2.0/UDP 127.0.0.1:${UAS_PORT};branch=z9hG4bK-reg`,
  'Max-Forwards: 70',
  'From: <sip:callee@127.0.0.1>;tag=r',
  'To: <sip:callee@127.0.0.1>',
  'Call-ID: reg@127.0.0.1',
  'CSeq: 1 REGISTER',
  `Contact: <sip:callee@127.0.0.1:${UAS_PORT}>`,
  'Expires: 3600',
  'Content-Length: 0',
  '',
  '',
].join('\r\n'));
flushInbox();
await new Promise((r) => setTimeout(r, 50));
outbox.length = 0;

const warm = Math.min(5000, calls);
async function run(total: number): Promise<void> {
  const target = done + total;
  const limit = started + total;
  while (done < target) {
    const p0 = process.cpuUsage();
    if (rate > 0) {
      const due = Math.min(limit, pace.base + Math.floor(((performance.now() - pace.t0) * rate) / 1000));
      while (started < due) deliver(UAC_PORT, invite(started++));
    } else {
      while (started < limit && started - done < concurrent) deliver(UAC_PORT, invite(started++));
    }
    const p = process.cpuUsage(p0);
    peerCpuUs += p.user + p.system;
    flushInbox();
    await new Promise((r) => (rate > 0 ? setTimeout(r, tickMs) : setImmediate(r)));
    pump();
  }
}
/** With --rate: calls due since t0, on top of the `base` started before it. */
const pace = { t0: performance.now(), base: 0 };
await run(warm);
peerCpuUs = 0;
const allocation = process.argv.includes('--alloc') ? await startAllocationProfile() : undefined;
const profileFile = flagValue('--cpu-profile');
const cpuProfile = profileFile === undefined ? undefined : await startCpuProfile();
pace.t0 = performance.now();
pace.base = started;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await run(calls);
const cpu = process.cpuUsage(cpu0);
const profileTop = await cpuProfile?.stop(profileFile!);
const allocated = await allocation?.stop(calls);
const ms = performance.now() - t0;
const totalUs = cpu.user + cpu.system;
console.log(JSON.stringify({
  calls, ...(rate > 0 ? { rate, tickMs } : { concurrent }), wallMs: Math.round(ms), callsPerSecond: Math.round(calls / (ms / 1000)),
  cpuMicrosPerCall: Math.round((totalUs / calls) * 10) / 10,
  peersMicrosPerCall: Math.round((peerCpuUs / calls) * 10) / 10,
  pushcallMicrosPerCall: Math.round(((totalUs - peerCpuUs) / calls) * 10) / 10,
  unexpected, heapMB: Math.round(process.memoryUsage().heapUsed / 1e6),
  ...(allocated && { allocatedBytesPerCall: allocated.bytesPerOp }),
}));
if (profileTop) console.log(profileTop.join('\n'));
if (allocated) for (const { site, bytesPerOp } of allocated.top) console.log(`${String(bytesPerOp).padStart(7)} B  ${site}`);
const snapshotFile = flagValue('--heap-snapshot');
if (snapshotFile !== undefined) {
  // After Timer K (5 s): what is left is what a finished call keeps for 64*T1 (Timer L/M/J).
  await new Promise((r) => setTimeout(r, 6000));
  (await import('node:v8')).writeHeapSnapshot(snapshotFile);
}
process.exit(0);
