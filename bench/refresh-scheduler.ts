/**
 * What refresh pushes (RFC 8599 §5.5) add to a registrar: CPU per scheduling (one per
 * REGISTER of a push binding, first registration or refresh) and heap per scheduled binding.
 * The bindings expire over an hour, as a fleet registered with Expires: 3600 does.
 *   node --expose-gc --conditions=source --import tsx bench/refresh-scheduler.ts [bindings]
 */
import { FakeClock } from '@pushcall/sip';
import { MemoryBindingStore } from '../packages/server/src/location/memory-store.js';
import type { Binding } from '../packages/server/src/location/types.js';
import { createLogger } from '../packages/server/src/observability/logger.js';
import { ServerMetrics } from '../packages/server/src/observability/metrics.js';
import { BindingRefresher } from '../packages/server/src/proxy/refresh.js';

const count = Number(process.argv[2] ?? 200_000);
const gc = (globalThis as { gc?: () => void }).gc;
const clock = new FakeClock();
const refresher = new BindingRefresher({
  leadSeconds: 120,
  retries: 2,
  retryIntervalSeconds: 30,
  store: new MemoryBindingStore(),
  clock,
  logger: createLogger('silent'),
  metrics: new ServerMetrics(),
  nodeId: 'n1',
  pusher: () => undefined,
});
const bindings: Binding[] = Array.from({ length: count }, (_, i) => ({
  id: `b${i.toString(36).padStart(10, '0')}`,
  aor: `sip:u${i}@example.com`,
  contact: `sip:u${i}@192.0.2.1:5060`,
  callId: `c${i}`,
  cseq: 1,
  expiresAt: clock.now() + 600_000 + Math.floor(Math.random() * 3_000_000),
  registeredAt: clock.now(),
  updatedAt: clock.now(),
  path: [],
  flow: { protocol: 'udp', remoteAddress: '192.0.2.1', remotePort: 5060, localAddress: '127.0.0.1', localPort: 5060, nodeId: 'n1' },
  push: { provider: 'fcm', prid: `token-${i}`, param: 'project', form: 'rfc8599' },
  pnsreg: false,
}));

gc?.();
const heap0 = process.memoryUsage().heapUsed;
let cpu0 = process.cpuUsage();
for (const b of bindings) refresher.track(b);
let cpu = process.cpuUsage(cpu0);
const firstMicros = (cpu.user + cpu.system) / count;
gc?.();
const heapPerBinding = (process.memoryUsage().heapUsed - heap0) / count;
// Every binding refreshed once more (a REGISTER each): moves it to a new bucket.
for (const b of bindings) b.expiresAt += 3_600_000;
cpu0 = process.cpuUsage();
for (const b of bindings) refresher.track(b);
cpu = process.cpuUsage(cpu0);
const refreshMicros = (cpu.user + cpu.system) / count;
refresher.close();
console.log(
  JSON.stringify({
    bindings: count,
    scheduled: refresher.size,
    cpuMicrosPerFirstSchedule: Math.round(firstMicros * 100) / 100,
    cpuMicrosPerReschedule: Math.round(refreshMicros * 100) / 100,
    heapBytesPerScheduledBinding: gc ? Math.round(heapPerBinding) : 'run with --expose-gc',
  }),
);
