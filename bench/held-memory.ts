/**
 * Memory per held call: N calls to N sleeping phones that never wake (pushes accepted by the
 * APNs emulator, nobody subscribed), all held at once; heap before and after, after full GC.
 *   node --expose-gc --conditions=source --import tsx bench/held-memory.ts [calls]
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { startLab } from '@pushcall/testkit';

const calls = Number(process.argv[2] ?? 2000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const lab = await startLab({
  listen: ['udp:127.0.0.1:0'],
  // The emulator shares this process: do not let its own records count as server memory.
  apns: { record: false },
  config: {
    store: { type: 'memory' } as never,
    proxy: { wakeTimeoutSeconds: 120, ringTimeoutSeconds: 120, missedCallAlert: false, timelineMaxCalls: 100_000 } as never,
    limits: { perCalleePerMinute: 1_000_000, perCallerPerMinute: 1_000_000, maxHeldPerAor: 10, maxHeldTotal: 1_000_000 } as never,
  },
});
const port = lab.server.port('udp');
const socket = createSocket('udp4');
await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
const send = (text: string) => new Promise<void>((r) => socket.send(Buffer.from(text), port, '127.0.0.1', () => r()));
let replies = 0;
socket.on('message', () => replies++);

// N phones register with push parameters (then "sleep": their contact never answers).
for (let i = 0; i < calls; i++) {
  await send(
    [`REGISTER sip:127.0.0.1 SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKr${i};rport`, 'Max-Forwards: 70', `From: <sip:p${i}@127.0.0.1>;tag=r${i}`, `To: <sip:p${i}@127.0.0.1>`, `Call-ID: reg-${i}`, 'CSeq: 1 REGISTER',
      `Contact: <sip:p${i}@127.0.0.1:9;pn-provider=apns;pn-prid=${randomBytes(32).toString('hex')};pn-param=TEAM123456.com.example.pushcall.voip>;+sip.instance="<urn:uuid:00000000-0000-4000-8000-${String(i).padStart(12, '0')}>"`,
      'Expires: 3600', 'Content-Length: 0', '', ''].join('\r\n'),
  );
}
while ((await lab.server.store.stats()).bindings < calls) await new Promise((r) => setTimeout(r, 20));
await new Promise((r) => setTimeout(r, 500));
gc(); gc();
const before = process.memoryUsage().heapUsed;
for (let i = 0; i < calls; i++) {
  await send(
    [`INVITE sip:p${i}@127.0.0.1 SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKi${i};rport`, 'Max-Forwards: 70', `From: "Caller ${i}" <sip:caller@127.0.0.1>;tag=c${i}`, `To: <sip:p${i}@127.0.0.1>`, `Call-ID: held-${i}`, 'CSeq: 1 INVITE', 'Contact: <sip:caller@127.0.0.1:9>', 'Content-Type: application/sdp', 'Content-Length: 0', '', ''].join('\r\n'),
  );
}
while (lab.server.proxy.wake.size < calls) await new Promise((r) => setTimeout(r, 20));
await new Promise((r) => setTimeout(r, 1000));
gc(); gc();
const after = process.memoryUsage().heapUsed;
const held = lab.server.proxy.wake.size;
const result = {
  heldBranches: held,
  heapBytesPerHeldCall: Math.round((after - before) / held),
  note: 'per held call: INVITE server transaction and request, branch state, wake-registry entries, push payload, and the call timeline kept for the admin API; the APNs emulator runs in the same process with recording off',
  node: process.version,
  command: `node --expose-gc --conditions=source --import tsx bench/held-memory.ts ${calls}`,
};
console.log(JSON.stringify(result, null, 2));
writeFileSync(new URL('./results/held-memory.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
socket.close();
await lab.close();
process.exit(0);
