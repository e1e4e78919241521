/**
 * Wake across two nodes (docs/multi-node.md): sleeping simulated phones register with node B,
 * every call reaches node A. Node A reads the bindings from the shared Redis, pushes, holds
 * each call until node B tells it the phone registered again, and delivers it through B.
 * Two `pushcall serve` processes (store.type redis) and a redis-server, the fleet and the
 * APNs/FCM emulators in this process. CPU per call is read from /proc for each.
 *
 *   node --conditions=source --import tsx bench/wake-cluster.ts [--phones 2000] [--rate 50] [--duration 30]
 *
 * Results: bench/results/wake-cluster.md and .json.
 */

import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type FleetReport, type Percentiles, formatFleetReport, hiResClock, runFleet, startFleetEmulators } from '../packages/testkit/src/fleet/index.js';
import { freePort } from '../packages/testkit/src/sipp/run.js';
import { cpuDelta, cpuInfo, cpuSample, type CpuSample, processTree, versions } from './lib/proc.js';
import { WAKE_SCENARIO } from './lib/wake-scenario.js';
import { spawnTracked, stopTracked, tail } from './lib/spawned.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const value = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const phones = Number(value('--phones') ?? 2000);
const rate = Number(value('--rate') ?? 50);
const duration = Number(value('--duration') ?? 30);
const outDir = value('--out') ?? join(root, 'bench/results');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const emulators = await startFleetEmulators({ apns: { clock: hiResClock }, fcm: { clock: hiResClock } });
const redisPort = await freePort();
const redis = spawnTracked({
  name: 'redis-server',
  cmd: 'redis-server',
  args: ['--bind', '127.0.0.1', '--port', String(redisPort), '--save', '', '--appendonly', 'no'],
  cwd: emulators.dir,
  logBase: join(emulators.dir, 'redis'),
  maxLifetimeSec: duration + 600,
});
for (let i = 0; !tail(redis.stdoutPath, 5).includes('Ready to accept connections'); i++) {
  if (!redis.isRunning() || i > 100) throw new Error(`redis-server did not start:\n${tail(redis.stdoutPath, 20)}`);
  await sleep(50);
}

interface Node {
  id: string;
  sipPort: number;
  adminPort: number;
  pids(): number[];
  stop(): Promise<void>;
}

async function startNode(id: string): Promise<Node> {
  const sipPort = await freePort();
  const adminPort = await freePort();
  const config = {
    node: { id, uri: `sip:127.0.0.1:${sipPort}` },
    listen: [`udp:127.0.0.1:${sipPort}`],
    dataDir: emulators.dir,
    admin: { listen: `127.0.0.1:${adminPort}` },
    log: { level: 'warn' },
    store: { type: 'redis', redis: { url: `redis://127.0.0.1:${redisPort}`, keyPrefix: 'wake-cluster:' } },
    auth: { mode: 'open', nonceSecret: 'wake-cluster-bench-shared-secret' },
    proxy: { wakeTimeoutSeconds: 10, ringTimeoutSeconds: 30, timelineMaxCalls: 100_000 },
    limits: { perCalleePerMinute: 1000, perCallerPerMinute: 1_000_000, maxHeldPerAor: 50, maxHeldTotal: 100_000 },
    push: emulators.pushConfig,
  };
  const configFile = join(emulators.dir, `${id}.yaml`);
  writeFileSync(configFile, JSON.stringify(config, null, 2)); // JSON is YAML
  const server = spawnTracked({
    name: id,
    cmd: process.execPath,
    args: ['--conditions=source', '--import', 'tsx', 'packages/server/src/cli/main.ts', 'serve', '--config', configFile],
    cwd: root,
    logBase: join(emulators.dir, id),
    maxLifetimeSec: duration + 600,
  });
  return { id, sipPort, adminPort, pids: () => processTree(server.pid).map((p) => p.pid), stop: () => stopTracked(server, 5000).then(() => undefined) };
}

const nodeA = await startNode('node-a');
const nodeB = await startNode('node-b');
const processes = { 'node A (calls)': () => nodeA.pids(), 'node B (phones)': () => nodeB.pids(), 'redis-server': () => processTree(redis.pid).map((p) => p.pid) };
const before: Record<string, CpuSample> = {};
const after: Record<string, CpuSample> = {};
let report: FleetReport;
try {
  report = await runFleet({
    server: `udp:127.0.0.1:${nodeB.sipPort}`,
    callServer: `udp:127.0.0.1:${nodeA.sipPort}`,
    admin: `127.0.0.1:${nodeA.adminPort}`,
    emulators,
    phones,
    rate,
    durationSec: duration,
    loss: 0,
    launchDelayMs: [100, 300],
    ...WAKE_SCENARIO,
    log: (line) => process.stderr.write(`wake-cluster: ${line}\n`),
    onCallsStart: () => {
      for (const [name, pids] of Object.entries(processes)) before[name] = cpuSample(pids());
    },
    onCallsEnd: () => {
      for (const [name, pids] of Object.entries(processes)) after[name] = cpuSample(pids());
    },
  });
} finally {
  await nodeA.stop();
  await nodeB.stop();
  await stopTracked(redis, 5000);
  await emulators.close();
}

const calls = report.calls.attempted - report.calls.skippedNoFreePhone;
const cpu = Object.fromEntries(
  Object.keys(processes).map((name) => {
    const us = before[name] && after[name] ? cpuDelta(before[name], after[name]).us : 0;
    return [name, { cpuUsPerCall: calls > 0 ? Math.round((us / calls) * 10) / 10 : null }];
  }),
);
const command = `node --conditions=source --import tsx bench/wake-cluster.ts --phones ${phones} --rate ${rate} --duration ${duration}`;
const summary = {
  command,
  machine: cpuInfo(),
  versions: versions(),
  phones,
  rate,
  durationSec: duration,
  calls: report.calls,
  wakeLatency: report.wakeLatency,
  serverTimeline: report.serverTimeline,
  pushes: report.push,
  ghosts: report.ghosts,
  cpu,
};
writeFileSync(join(outDir, 'wake-cluster.json'), JSON.stringify(summary, null, 2));
const pct = (p: Percentiles) => `${p.p50 ?? '—'} / ${p.p90 ?? '—'} / ${p.p99 ?? '—'}`;
const md = [
  '# Wake across two nodes sharing Redis',
  '',
  `Generated by \`${command}\` (${new Date().toISOString()}).`,
  '',
  `Phones register with node B (UDP); every call reaches node A, which pushes, holds the call, hears from B that the phone registered, and delivers it through B. ${phones} phones (half iOS, half Android), ${rate} calls/s for ${duration} s, every phone answers after 300–1000 ms.`,
  '',
  '| measure | value |',
  '|---|---:|',
  `| calls placed | ${calls} |`,
  `| connected / expected to connect | ${report.calls.connected} / ${report.calls.expectedToConnect} (${report.calls.connectedShare === null ? '—' : (report.calls.connectedShare * 100).toFixed(2)} %) |`,
  `| final statuses at the caller | ${Object.entries(report.calls.finalStatus).map(([k, v]) => `${k}: ${v}`).join(', ')} |`,
  `| INVITE at node A → the phone rings, ms (p50 / p90 / p99) | ${pct(report.wakeLatency.ring)} |`,
  `| INVITE at node A → INVITE at the phone, ms | ${pct(report.wakeLatency.inviteDelivered)} |`,
  ...Object.entries(cpu).map(([name, c]) => `| CPU per call, ${name}, µs | ${c.cpuUsPerCall ?? '—'} |`),
  '',
  '```',
  formatFleetReport(report),
  '```',
  '',
].join('\n');
writeFileSync(join(outDir, 'wake-cluster.md'), md);
process.stdout.write(md);
