/**
 * CPU cost of one REGISTER through pushcall's own layers, without sockets: bytes in →
 * parse → registrar (answered statelessly, RFC 3261 §8.2.7) → store (SQLite group commit) →
 * response serialized and handed to a transport that drops it. Isolates pushcall's work from the kernel and SIPp.
 *   node --conditions=source --import tsx bench/register-inprocess.ts [count] [memory|sqlite|redis] [--alloc] [--batch N] [--tick ms] [--cpu-profile FILE]
 * redis: the Redis store at --redis-url (default redis://127.0.0.1:6379, a fresh key prefix);
 * redis-server's own CPU for the run (INFO cpu) is reported next to pushcall's.
 * --batch: REGISTERs handed over per event-loop turn (500); 20 is about what SIPp's bursts
 * bring per turn at 10,000/s. --tick <ms>: wait that long between batches, the process idle
 * in between, as under the SIPp harness (the same work then costs more: BENCHMARKS.md,
 * session 9); by default the next batch comes at once.
 * --alloc adds the bytes allocated per REGISTER and the largest allocation sites (V8's
 * sampling heap profiler; it slows the run, so CPU figures from such a run do not count).
 * --cpu-profile FILE writes a CPU profile of the measured loop only and prints its top functions.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { RedisBindingStore, validateConfig, createPushcall } from '@pushcall/server';
import { startAllocationProfile } from './lib/alloc-profile.js';
import { flagValue } from './lib/args.js';
import { startCpuProfile } from './lib/cpu-profile.js';
import { attachInProcessUdp } from './lib/in-process-udp.js';

const count = Number(process.argv[2] ?? 200_000);
const storeType = (process.argv[3] ?? 'sqlite') as 'memory' | 'sqlite' | 'redis';
const dir = mkdtempSync(join(tmpdir(), 'reg-inproc-'));
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
writeFileSync(join(dir, 'k.p8'), privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());

const config = validateConfig({
  listen: ['udp:127.0.0.1:0'],
  dataDir: dir,
  store: { type: storeType, redis: { url: flagValue('--redis-url') ?? 'redis://127.0.0.1:6379', keyPrefix: `bench-${Date.now()}:` } },
  node: storeType === 'redis' ? { id: `bench-${process.pid}`, uri: 'sip:127.0.0.1:5060' } : {},
  auth: { mode: 'open', nonceSecret: randomBytes(16).toString('hex') },
  admin: { enabled: false },
  log: { level: 'warn' },
  // --no-offline-messages: without the lookup of kept messages a push REGISTER may trigger.
  proxy: { offlineMessages: { enabled: !process.argv.includes('--no-offline-messages') } },
  push: { apns: { keyFile: join(dir, 'k.p8'), keyId: 'KEY1234567', teamId: 'TEAM123456', endpoints: { production: 'https://127.0.0.1:9', sandbox: 'https://127.0.0.1:9' }, pingIntervalMs: 0 } },
});
const server = await createPushcall({ config });
const redis = server.store instanceof RedisBindingStore ? server.store.redis : undefined;
if (redis) await server.store.lookup('sip:warm@up', 0);
/** redis-server's CPU seconds so far (INFO cpu), for the store's share of a REGISTER. */
async function redisCpuSeconds(): Promise<number> {
  const info = redis ? await redis.info('cpu') : '';
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return field('used_cpu_sys') + field('used_cpu_user');
}

let sent = 0;
const deliver = attachInProcessUdp(server.layer, 5060, () => sent++);

const token = () => randomBytes(32).toString('hex');
function register(i: number): Buffer {
  return Buffer.from(
    [
      'REGISTER sip:127.0.0.1 SIP/2.0',
      `Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-${i}-1;rport`,
      'Max-Forwards: 70',
      `From: <sip:u${i}@127.0.0.1>;tag=${i}r`,
      `To: <sip:u${i}@127.0.0.1>`,
      `Call-ID: ${i}-bench@127.0.0.1`,
      'CSeq: 1 REGISTER',
      `Contact: <sip:u${i}@127.0.0.1:5061;pn-provider=apns;pn-prid=${token()};pn-param=TEAM123456.com.example.app.voip>`,
      'Expires: 3600',
      'User-Agent: pushcall-bench',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}
const messages = Array.from({ length: count }, (_, i) => register(i));

const allocation = process.argv.includes('--alloc') ? await startAllocationProfile() : undefined;
const profileFile = flagValue('--cpu-profile');
const cpuProfile = profileFile === undefined ? undefined : await startCpuProfile();
const redisCpu0 = await redisCpuSeconds();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const batch = Number(flagValue('--batch') ?? 500);
const tickMs = Number(flagValue('--tick') ?? 0);
for (let i = 0; i < count; i += batch) {
  for (let j = i; j < Math.min(count, i + batch); j++) deliver(messages[j], 5061);
  await new Promise((r) => (tickMs > 0 ? setTimeout(r, tickMs) : setImmediate(r)));
  await new Promise((r) => setImmediate(r));
}
while (sent < count) await new Promise((r) => setImmediate(r));
const cpu = process.cpuUsage(cpu0);
const ms = performance.now() - t0;
const redisMicros = redis ? ((await redisCpuSeconds()) - redisCpu0) * 1e6 : undefined;
const allocated = await allocation?.stop(count);
const profileTop = await cpuProfile?.stop(profileFile!);
const stats = await server.store.stats();
(globalThis as { gc?: () => void }).gc?.(); // with --expose-gc, heapMB is what is still live
const heapMB = Math.round(process.memoryUsage().heapUsed / 1e6);
console.log(JSON.stringify({
  count, store: storeType, wallMs: Math.round(ms), perSecond: Math.round(count / (ms / 1000)),
  cpuMicrosPerRegister: Math.round(((cpu.user + cpu.system) / count) * 10) / 10,
  ...(redisMicros !== undefined && { redisServerMicrosPerRegister: Math.round((redisMicros / count) * 10) / 10 }),
  bindings: stats.bindings, rssMB: Math.round(process.memoryUsage().rss / 1e6), heapMB,
  ...(allocated && { allocatedBytesPerRegister: allocated.bytesPerOp }),
}));
if (profileTop) console.log(profileTop.join('\n'));
if (allocated) for (const { site, bytesPerOp } of allocated.top) console.log(`${String(bytesPerOp).padStart(7)} B  ${site}`);
process.exit(0);
