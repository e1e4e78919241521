/**
 * Push gateway benchmark: the APNs client (packages/server/src/push/apns.ts) against the APNs
 * emulator over loopback HTTP/2 + TLS, token auth.
 *
 *   node --conditions=source --import tsx bench/push.ts [--pushes 50000] [--rate 1000] [--seconds 10] [--pool 2] [--window 2000] [--emulators 2]
 *
 * The emulator runs in child processes (`--emulators`, sharing one port, one connection
 * each; see EmulatorFleet) so client and server do not share one loop; their CPU is
 * reported so a run shows which side was the limit. Phases:
 *  0. baselines: a bare node:http2 client and a bare H2Connection (the gateway's HTTP/2
 *     client without the gateway), same requests and window.
 *  1. throughput: N pushes, at most `window` in flight; pushes/s = N / wall time.
 *  2. steady: `rate` pushes/s for `seconds` s; client latency of send() (call → outcome) and
 *     the emulator's handling time for the same apns-id (stream headers received → response
 *     written); "added" = client latency − emulator handling, per push.
 * Prints JSON and a markdown table; writes the markdown to bench/results/push.md.
 */

import { execSync } from 'node:child_process';
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { once } from 'node:events';
import { cpus, loadavg } from 'node:os';
import http2 from 'node:http2';
import { createPrivateKey, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flagValue } from './lib/args.js';

type TlsMaterial = import('../packages/testkit/src/emulators/util.js').TlsMaterial;

interface EmuInit {
  keyId: string;
  teamId: string;
  publicKey: string;
  bundleIds: string[];
  tls: TlsMaterial;
}

type FromWorker =
  | { type: 'ready'; url: string; caPem: string }
  | { type: 'timings'; timings: number[]; ids: (string | undefined)[]; stats: Record<string, number> }
  | { type: 'cpu'; us: number }
  | { type: 'ok' };

type ToWorker = { type: 'reset' } | { type: 'timings' } | { type: 'cpu' } | { type: 'close' };

async function emulatorWorker(init: EmuInit): Promise<void> {
  const { ApnsEmulator } = await import('../packages/testkit/src/emulators/apns-emulator.js');
  const emu = await new ApnsEmulator({ keys: [init], record: false, recordTimings: true, maxConcurrentStreams: 1000, tls: init.tls }).start();
  const send = (m: FromWorker) => process.send!(m);
  process.on('message', async (m: ToWorker) => {
    if (m.type === 'reset') {
      emu.resetRecords();
      send({ type: 'ok' });
    }
    if (m.type === 'timings') send({ type: 'timings', timings: emu.timings, ids: emu.timingIds, stats: { ...emu.stats } });
    if (m.type === 'cpu') {
      const u = process.cpuUsage();
      send({ type: 'cpu', us: u.user + u.system });
    }
    if (m.type === 'close') {
      await emu.close();
      process.disconnect();
    }
  });
  send({ type: 'ready', url: emu.url, caPem: emu.caPem });
}

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function dist(values: number[]) {
  const s = [...values].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { n: s.length, p50: r(pct(s, 50)), p90: r(pct(s, 90)), p99: r(pct(s, 99)), p999: r(pct(s, 99.9)), max: r(s[s.length - 1] ?? NaN), mean: r(s.reduce((a, b) => a + b, 0) / (s.length || 1)) };
}

async function main(): Promise<void> {
  const { makeApnsKey } = await import('../packages/testkit/src/emulators/apns-emulator.js');
  const { selfSignedServerCert } = await import('../packages/testkit/src/emulators/util.js');
  const { ApnsProvider } = await import('../packages/server/src/push/apns.js');
  const { buildPayload } = await import('../packages/server/src/push/payload.js');

  const PUSHES = arg('pushes', 50_000);
  const RATE = arg('rate', 1000);
  const SECONDS = arg('seconds', 10);
  const POOL = arg('pool', 2);
  const EMULATORS = arg('emulators', 2);
  const WINDOW = arg('window', 2000);

  const key = makeApnsKey({ teamId: 'TEAM123456', bundleIds: ['com.example.app'] });
  const fleet = await EmulatorFleet.start({ keyId: key.keyId, teamId: key.teamId, publicKey: key.publicKey, bundleIds: key.bundleIds, tls: await selfSignedServerCert() }, EMULATORS);
  const ready = fleet.ready;

  const provider = new ApnsProvider({
    auth: { kind: 'token', key: key.privateKeyPem, keyId: key.keyId, teamId: key.teamId },
    endpoints: { production: ready.url },
    ca: ready.caPem,
    poolSize: POOL,
    pingIntervalMs: 0,
  });
  const binding = (i: number) => ({
    bindingId: `b${i}`, aor: `sip:user${i}@example.com`, provider: 'apns', prid: (i % 100_000).toString(16).padStart(64, '0'),
    param: 'TEAM123456.com.example.app.voip', environment: 'production' as const, registeredAt: 0,
  });
  const payload = (i: number) => buildPayload({ type: 'call', callId: `bench-${i}@pushcall.example`, fromUri: 'sip:caller@example.com', fromName: 'Bench Caller', to: `sip:user${i}@example.com`, video: false, ttl: 30 });

  // Warm-up: open sessions, confirm auth, JIT.
  for (let round = 0; round < 3; round++) {
    await Promise.all(Array.from({ length: 2000 }, (_, i) => provider.sendCall(binding(i), payload(i))));
  }

  const emulatorCpuUs = () => fleet.cpuUs();

  // ---- 0. baselines: bare clients, same requests, same emulator ----
  const baseline = await rawBaseline(ready.url, ready.caPem, key, Math.min(PUSHES, 30_000), WINDOW, POOL);
  console.error(`raw node:http2 baseline: ${baseline.pushesPerSecond} req/s`);
  const h2Baseline = await h2ConnectionBaseline(ready.url, ready.caPem, key, Math.min(PUSHES, 30_000), WINDOW, POOL);
  console.error(`raw H2Connection baseline: ${h2Baseline.pushesPerSecond} req/s`);

  // ---- 1. throughput ----
  await fleet.reset();
  let failed = 0;
  const emuCpu0 = await emulatorCpuUs();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await runWindowed(PUSHES, WINDOW, (i) => provider.sendCall(binding(i), payload(i)).then((o) => {
    if (!o.ok) failed++;
  }));
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const emuCpu = (await emulatorCpuUs()) - emuCpu0;
  const throughput = {
    pushes: PUSHES, failed, seconds: Math.round(wall * 1000) / 1000, pushesPerSecond: Math.round(PUSHES / wall), window: WINDOW, poolSize: POOL, emulatorProcesses: EMULATORS,
    gatewayCpuUsPerPush: Math.round(((cpu.user + cpu.system) / PUSHES) * 10) / 10,
    emulatorCpuUsPerPush: Math.round((emuCpu / PUSHES) * 10) / 10,
    emulatorCores: Math.round((emuCpu / 1e6 / wall) * 100) / 100,
  };
  console.error(`throughput: ${throughput.pushesPerSecond} pushes/s (${PUSHES} in ${throughput.seconds}s, ${failed} failed)`);

  // ---- 2. steady rate ----
  await fleet.reset();
  await new Promise((r) => setTimeout(r, 200));
  const total = RATE * SECONDS;
  const client = new Map<string, number>();
  const clientAll: number[] = [];
  let steadyFailed = 0;
  let sent = 0;
  const pending: Promise<void>[] = [];
  const s0 = performance.now();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - s0) / 1000) * RATE));
      while (sent < due) {
        const i = 1_000_000 + sent++;
        const a = performance.now();
        pending.push(provider.sendCall(binding(i), payload(i)).then((o) => {
          const ms = performance.now() - a;
          clientAll.push(ms);
          if (o.ok && o.id) client.set(o.id, ms);
          else steadyFailed++;
        }));
      }
      if (sent >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  await Promise.all(pending);
  const steadySeconds = (performance.now() - s0) / 1000;
  const emuById = new Map<string, number>();
  for (const t of await fleet.timings()) t.ids.forEach((id, k) => id && emuById.set(id, t.timings[k]));
  const added: number[] = [];
  const emuMatched: number[] = [];
  for (const [id, ms] of client) {
    const e = emuById.get(id);
    if (e === undefined) continue;
    emuMatched.push(e);
    added.push(ms - e);
  }
  const steady = {
    rate: RATE, seconds: SECONDS, pushes: total, failed: steadyFailed, achievedRate: Math.round(total / steadySeconds),
    clientMs: dist(clientAll), emulatorMs: dist(emuMatched), addedMs: dist(added),
  };

  await provider.close();
  await fleet.close();

  const machine = {
    nproc: Number(execSync('nproc').toString().trim()),
    cpu: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
  };
  const command = `node --conditions=source --import tsx bench/push.ts${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}`;
  const result = { machine, command, baseline, h2Baseline, throughput, steady, targets: { pushesPerSecond: 20_000, p99AddedMs: 2 } };
  console.log(JSON.stringify(result, null, 2));

  const row = (name: string, d: ReturnType<typeof dist>) => `| ${name} | ${d.p50} | ${d.p90} | ${d.p99} | ${d.p999} | ${d.max} | ${d.mean} |`;
  const md = [
    '# Push gateway benchmark (APNs client → APNs emulator, loopback)',
    '',
    `Machine: ${machine.nproc} CPU (${machine.cpu}), Node ${machine.node}. Emulator in ${EMULATORS} separate process(es) sharing one port (node:cluster, one connection each, like one APNs hostname served by several machines); HTTP/2 over TLS, token auth (ES256), pool ${POOL} sessions.`,
    '',
    `Command: \`${command}\``,
    '',
    '## Throughput',
    '',
    '| pushes | in flight (max) | seconds | pushes/s | failed | target |',
    '|---:|---:|---:|---:|---:|---|',
    `| ${PUSHES} | ${WINDOW} | ${throughput.seconds} | **${throughput.pushesPerSecond}** | ${failed} | ≥ 20,000 pushes/s: ${throughput.pushesPerSecond >= 20_000 ? 'met' : 'NOT met'} |`,
    '',
    `CPU per push during this phase: gateway process ${throughput.gatewayCpuUsPerPush} µs, emulator processes together ${throughput.emulatorCpuUsPerPush} µs (${throughput.emulatorCores} cores busy).`,
    '',
    `Baselines on the same run, same requests, same emulator, same window, ${POOL} connections, pre-signed JWT, no pool or payload logic:`,
    `a bare \`node:http2\` client **${baseline.pushesPerSecond} req/s**; a bare \`H2Connection\` (the gateway's own HTTP/2 client) **${h2Baseline.pushesPerSecond} req/s**.`,
    '',
    `Load average when the run ended: ${machine.loadavg.join(', ')} (the machine is shared with other workloads).`,
    '',
    `## Latency at a steady ${RATE} pushes/s for ${SECONDS} s (achieved ${steady.achievedRate}/s, ${steadyFailed} failed)`,
    '',
    '| ms | p50 | p90 | p99 | p99.9 | max | mean |',
    '|---|---:|---:|---:|---:|---:|---:|',
    row('client send() → outcome', steady.clientMs),
    row('emulator handling (headers in → response out)', steady.emulatorMs),
    row('**added** (client − emulator, per push)', steady.addedMs),
    '',
    `Target p99 added < 2 ms: ${steady.addedMs.p99 < 2 ? 'met' : 'NOT met'}. "Added" includes the loopback TLS/HTTP/2 round trip, the client's`,
    'payload encoding, semaphore and stream bookkeeping; it excludes only the emulator\'s own handling time.',
    '',
  ].join('\n');
  console.log('\n' + md);
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'push.md');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, md);
}

/**
 * Starts `send(i)` for i = 0…n-1 with at most `window` unsettled (and, when given, only while
 * `canStart(i)`; a settled send starts the next ones); resolves when all n have settled.
 */
function runWindowed(n: number, window: number, send: (i: number) => Promise<unknown>, canStart: (i: number) => boolean = () => true): Promise<void> {
  return new Promise<void>((resolve) => {
    let started = 0;
    let done = 0;
    const launch = () => {
      while (started < n && started - done < window && canStart(started)) {
        const i = started++;
        void send(i).then(() => {
          if (++done === n) resolve();
          else launch();
        });
      }
    };
    launch();
  });
}

type BenchKey = { keyId: string; teamId: string; privateKeyPem: string };

/** The baselines sign their provider token once, up front (the gateway's minter is not measured there). */
function baselineJwt(key: BenchKey): Promise<string> {
  return new SignJWT({ iss: key.teamId, iat: Math.floor(Date.now() / 1000) }).setProtectedHeader({ alg: 'ES256', kid: key.keyId }).sign(createPrivateKey(key.privateKeyPem));
}

/** A call payload of the gateway's shape, encoded once for every baseline request. */
function baselineBody(): string {
  return JSON.stringify({ aps: {}, pushcall: { v: 1, type: 'call', call_id: 'baseline@pushcall.example', from_name: 'Bench Caller', from_uri: 'sip:caller@example.com', to: 'sip:user@example.com', video: false, sent_at: Date.now(), ttl: 30 } });
}

/** A bare node:http2 client: the ceiling for this machine, emulator and window. */
async function rawBaseline(url: string, ca: string, key: BenchKey, n: number, window: number, pool: number) {
  const jwt = await baselineJwt(key);
  const sessions = Array.from({ length: pool }, () => http2.connect(url, { ca }));
  const body = baselineBody();
  const one = (s: http2.ClientHttp2Session, i: number) => new Promise<void>((resolve) => {
    const st = s.request({ ':method': 'POST', ':path': `/3/device/${(i % 100_000).toString(16).padStart(64, '0')}`, authorization: `bearer ${jwt}`, 'apns-topic': 'com.example.app.voip', 'apns-push-type': 'voip', 'apns-priority': '10', 'apns-expiration': '0', 'apns-id': randomUUID(), [http2.sensitiveHeaders]: ['authorization', ':path'] } as http2.OutgoingHttpHeaders);
    st.on('response', () => {});
    st.resume();
    st.on('close', () => resolve());
    st.on('error', () => {});
    st.end(body);
  });
  // Authenticate each session (one stream until then), then wait for the raised stream limit.
  for (const s of sessions) await one(s, 0);
  await new Promise((r) => setTimeout(r, 50));
  const t0 = performance.now();
  await runWindowed(n, window, (i) => one(sessions[i % pool], i));
  const secs = (performance.now() - t0) / 1000;
  for (const s of sessions) s.close();
  return { requests: n, seconds: Math.round(secs * 1000) / 1000, pushesPerSecond: Math.round(n / secs) };
}

/** The gateway's HTTP/2 client without the gateway: what the emulator allows a lean client. */
async function h2ConnectionBaseline(url: string, ca: string, key: BenchKey, n: number, window: number, pool: number) {
  const { H2Connection } = await import('../packages/server/src/push/h2/index.js');
  const tls = await import('node:tls');
  const jwt = await baselineJwt(key);
  const u = new URL(url);
  const conns = await Promise.all(Array.from({ length: pool }, async () => {
    const socket = tls.connect({ host: u.hostname, port: Number(u.port), ca, ALPNProtocols: ['h2'] });
    socket.setNoDelay(true);
    const c = new H2Connection(socket);
    await once(c, 'connect');
    return c;
  }));
  const body = baselineBody();
  const one = (c: InstanceType<typeof H2Connection>, i: number) => new Promise<void>((resolve) => {
    const end = () => resolve();
    c.request([
      [':method', 'POST'], [':scheme', 'https'], [':authority', u.host], [':path', `/3/device/${(i % 100_000).toString(16).padStart(64, '0')}`],
      ['authorization', `bearer ${jwt}`], ['apns-topic', 'com.example.app.voip'], ['apns-push-type', 'voip'], ['apns-priority', '10'],
      ['apns-expiration', '0'], ['apns-id', randomUUID()],
    ], body, { onResponse() {}, onData() {}, onEnd: end, onClose: end });
  });
  // Authenticate each connection (one stream until then), then wait for the raised stream limit.
  for (const c of conns) await one(c, 0);
  await new Promise((r) => setTimeout(r, 50));
  const t0 = performance.now();
  // The bare connection does not queue: start a request only where the server allows a stream.
  const conn = (i: number) => conns[i % pool];
  await runWindowed(n, window, (i) => one(conn(i), i), (i) => conn(i).inFlight < conn(i).remoteMaxConcurrentStreams);
  const secs = (performance.now() - t0) / 1000;
  for (const c of conns) c.destroy();
  return { requests: n, seconds: Math.round(secs * 1000) / 1000, pushesPerSecond: Math.round(n / secs) };
}

/**
 * The emulator as `count` processes sharing one TLS port through node:cluster (the primary
 * hands each new connection to the next process in turn), the way APNs serves one hostname
 * from many machines. Each connection, with its stream limit, token and 20-minute rule,
 * lives in one process, as it does at Apple.
 */
class EmulatorFleet {
  private readonly waiters = new Map<Worker, ((m: FromWorker) => void)[]>();

  private constructor(private readonly workers: Worker[], readonly ready: Extract<FromWorker, { type: 'ready' }>) {}

  static async start(init: EmuInit, count: number): Promise<EmulatorFleet> {
    cluster.setupPrimary({ exec: fileURLToPath(import.meta.url), args: ['--emulator', JSON.stringify(init)], execArgv: process.execArgv });
    const workers: Worker[] = [];
    const all: Extract<FromWorker, { type: 'ready' }>[] = [];
    for (let i = 0; i < count; i++) {
      const w = cluster.fork();
      w.on('error', (e) => {
        console.error('emulator process failed', e);
        process.exit(1);
      });
      workers.push(w);
      // One at a time: the first binds the port, the rest share its handle.
      const [ready] = await once(w, 'message');
      all.push(ready as Extract<FromWorker, { type: 'ready' }>);
    }
    if (new Set(all.map((r) => r.url)).size !== 1) throw new Error(`emulator processes listen on different ports: ${all.map((r) => r.url).join(', ')}`);
    const fleet = new EmulatorFleet(workers, all[0]);
    for (const w of workers) {
      fleet.waiters.set(w, []);
      w.on('message', (m: FromWorker) => fleet.waiters.get(w)!.shift()?.(m));
    }
    return fleet;
  }

  private ask<T extends FromWorker>(m: ToWorker): Promise<T[]> {
    return Promise.all(this.workers.map((w) => new Promise<T>((resolve) => {
      this.waiters.get(w)!.push((r) => resolve(r as T));
      w.send(m);
    })));
  }

  async cpuUs(): Promise<number> {
    return (await this.ask<Extract<FromWorker, { type: 'cpu' }>>({ type: 'cpu' })).reduce((a, r) => a + r.us, 0);
  }

  timings(): Promise<Extract<FromWorker, { type: 'timings' }>[]> {
    return this.ask({ type: 'timings' });
  }

  async reset(): Promise<void> {
    await this.ask({ type: 'reset' });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => {
      const exited = once(w, 'exit');
      w.send({ type: 'close' } satisfies ToWorker);
      return exited;
    }));
  }
}

const emulatorInit = flagValue('--emulator');
if (emulatorInit !== undefined) {
  await emulatorWorker(JSON.parse(emulatorInit) as EmuInit);
} else {
  await main();
}
