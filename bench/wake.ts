/**
 * Wake at scale: 5,000 sleeping simulated phones, 100 calls/s for 60 s, against a pushcall
 * server running in a process of its own (so its CPU and memory are read from /proc for
 * that process alone), once without injected loss and once with 2 % UDP loss between the
 * phones and the server.
 *
 *   node --conditions=source --import tsx bench/wake.ts            # full: 5000 phones, 100/s, 60 s, loss 0 and 2 %
 *   node --conditions=source --import tsx bench/wake.ts --quick    # 1000 phones, 50/s, 15 s
 *   options: --phones N --rate R --duration S --losses 0,0.02 --launch-delay 100-300 --store sqlite|memory
 *            --timelines N (proxy.timelineMaxCalls, default 50000) --heap-every S (the server's heap after
 *            a full GC every S seconds of the call phase, through its inspector on loopback: a soak test)
 *
 * Layout: this process runs the fleet (phones, callers, the impairment relay) and the
 * APNs/FCM emulators (they deliver pushes to the phones in-process); the server is
 * `pushcall serve` with a generated config pointing at those emulators. Results:
 * bench/results/wake.json and bench/results/wake.md; the chart: bench/wake-chart.ts.
 */

import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type FleetReport, type Percentiles, formatFleetReport, hiResClock, runFleet, startFleetEmulators } from '../packages/testkit/src/fleet/index.js';
import { freePort } from '../packages/testkit/src/sipp/run.js';
import { cpuDelta, cpuInfo, cpuSample, type CpuSample, memSample, processTree, udpPortStats, versions } from './lib/proc.js';
import { connectHeapSampler } from './lib/inspector-heap.js';
import { WAKE_SCENARIO } from './lib/wake-scenario.js';
import { spawnTracked, stopTracked } from './lib/spawned.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const value = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = flag('--quick');
const phones = Number(value('--phones') ?? (quick ? 1000 : 5000));
const rate = Number(value('--rate') ?? (quick ? 50 : 100));
const duration = Number(value('--duration') ?? (quick ? 15 : 60));
const losses = (value('--losses') ?? '0,0.02').split(',').map(Number);
const launch = (value('--launch-delay') ?? '100-300').split('-').map(Number) as [number, number];
const store = value('--store') ?? 'sqlite';
const outDir = value('--out') ?? join(root, 'bench/results');
/** Seconds between samples of the server's heap after a full GC (through its inspector); 0: none. */
const heapEvery = Number(value('--heap-every') ?? 0);
const timelineMaxCalls = Number(value('--timelines') ?? 50_000);

interface RunResult {
  loss: number;
  phones: number;
  rate: number;
  durationSec: number;
  attempted: number;
  connected: number;
  expectedToConnect: number;
  connectedShare: number | null;
  finalStatus: Record<string, number>;
  skippedNoFreePhone: number;
  /** The phone answered (its call connected) but the caller never got the 200 OK. */
  answeredOnPhoneNotConnected: number;
  appKills: number;
  ghosts: FleetReport['ghosts'];
  /** From the server's timelines (monotonic offsets, sub-millisecond). */
  proxyAdded: { inviteToPush: Percentiles; registerToInvite: Percentiles; pushRequest: Percentiles } | null;
  /** Measured in the fleet process (sub-ms clock; includes loopback and the fleet's event loop). */
  blackBox: FleetReport['proxyBlackBox'];
  wakeLatency: FleetReport['wakeLatency'];
  /** CDF points: the k-th percentile (k = 1..100) of each wake latency, ms. */
  cdf: { ring: number[]; inviteDelivered: number[]; answered: number[] };
  server: {
    cpuSecondsDuringCalls: number;
    cpuCores: number;
    cpuUsPerCall: number | null;
    cpuSource: string;
    rssMbAfterRegister: number;
    rssMbPeak: number;
    rssMbEnd: number;
    udpDrops: number;
    bindings: number;
  };
  fleetCpuCores: number;
  registerSeconds: number;
  drainSeconds: number;
  relay: FleetReport['relay'];
  pushes: FleetReport['push'];
}

function cdf(values: number[]): number[] {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return [];
  return Array.from({ length: 100 }, (_, k) => Math.round(v[Math.min(v.length - 1, Math.ceil(((k + 1) / 100) * v.length) - 1)] * 10) / 10);
}

async function runOnce(loss: number): Promise<RunResult> {
  const emulators = await startFleetEmulators({ apns: { clock: hiResClock }, fcm: { clock: hiResClock } });
  const sipPort = await freePort();
  const adminPort = await freePort();
  const config = {
    listen: [`udp:127.0.0.1:${sipPort}`],
    dataDir: emulators.dir,
    admin: { listen: `127.0.0.1:${adminPort}` },
    log: { level: 'warn' },
    store: { type: store },
    auth: { mode: 'open' },
    proxy: { wakeTimeoutSeconds: 10, ringTimeoutSeconds: 30, timelineMaxCalls },
    limits: { perCalleePerMinute: 1000, perCallerPerMinute: 1_000_000, maxHeldPerAor: 50, maxHeldTotal: 100_000 },
    push: emulators.pushConfig,
  };
  const configFile = join(emulators.dir, 'pushcall.yaml');
  writeFileSync(configFile, JSON.stringify(config, null, 2)); // JSON is YAML
  const inspect = heapEvery > 0 ? ['--inspect=127.0.0.1:0'] : [];
  const serverArgs = [...inspect, '--conditions=source', '--import', 'tsx', 'packages/server/src/cli/main.ts', 'serve', '--config', configFile];
  const server = spawnTracked({
    name: 'pushcall',
    cmd: process.execPath,
    args: serverArgs,
    cwd: root,
    logBase: join(emulators.dir, 'server'),
    maxLifetimeSec: duration + 600,
  });
  const serverPids = () => processTree(server.pid).map((p) => p.pid);
  let before: CpuSample | undefined;
  let after: CpuSample | undefined;
  let fleetCpuBefore = process.cpuUsage();
  let fleetWallBefore = performance.now();
  let fleetCores = 0;
  let rssAfterRegister = 0;
  let rssPeak = 0;
  let rssTimer: NodeJS.Timeout | undefined;
  let dropsBefore = 0;
  let dropsAfter = 0;
  const heapSamples: Array<{ seconds: number; heapMB: number; rssMB: number }> = [];
  let heapTimer: NodeJS.Timeout | undefined;
  let heapStart = 0;
  const heap = heapEvery > 0 ? await connectHeapSampler(server.stderrPath) : undefined;
  try {
    const report = await runFleet({
      server: `udp:127.0.0.1:${sipPort}`,
      admin: `127.0.0.1:${adminPort}`,
      emulators,
      phones,
      rate,
      durationSec: duration,
      loss,
      launchDelayMs: launch,
      ...WAKE_SCENARIO,
      log: (line) => process.stderr.write(`wake-bench: ${line}\n`),
      onCallsStart: () => {
        before = cpuSample(serverPids());
        rssAfterRegister = memSample(serverPids()).rssKb;
        dropsBefore = udpPortStats(sipPort).drops;
        fleetCpuBefore = process.cpuUsage();
        fleetWallBefore = performance.now();
        rssTimer = setInterval(() => {
          rssPeak = Math.max(rssPeak, memSample(serverPids()).rssKb);
        }, 500);
        rssTimer.unref();
        if (heap) {
          heapStart = performance.now();
          const takeSample = () =>
            void heap.sample().then((bytes) => {
              heapSamples.push({ seconds: Math.round((performance.now() - heapStart) / 1000), heapMB: Math.round(bytes / 1e5) / 10, rssMB: Math.round(memSample(serverPids()).rssKb / 102.4) / 10 });
              process.stderr.write(`wake-bench: heap after full GC ${heapSamples.at(-1)!.heapMB} MB at ${heapSamples.at(-1)!.seconds} s\n`);
            });
          takeSample();
          heapTimer = setInterval(takeSample, heapEvery * 1000);
        }
      },
      onCallsEnd: () => {
        after = cpuSample(serverPids());
        dropsAfter = udpPortStats(sipPort).drops;
        const u = process.cpuUsage(fleetCpuBefore);
        fleetCores = (u.user + u.system) / 1000 / (performance.now() - fleetWallBefore);
        if (rssTimer) clearInterval(rssTimer);
        if (heapTimer) clearInterval(heapTimer);
      },
    });
    if (heap) heapSamples.push({ seconds: Math.round((performance.now() - heapStart) / 1000), heapMB: Math.round((await heap.sample()) / 1e5) / 10, rssMB: Math.round(memSample(serverPids()).rssKb / 102.4) / 10 });
    const rssEnd = memSample(serverPids()).rssKb;
    rssPeak = Math.max(rssPeak, rssEnd);
    let bindings = 0;
    try {
      const res = await fetch(`http://127.0.0.1:${adminPort}/api/bindings`);
      bindings = ((await res.json()) as { bindings: unknown[] }).bindings.length;
    } catch {
      /* admin gone */
    }
    process.stderr.write(formatFleetReport(report) + '\n');
    const delta = before && after ? cpuDelta(before, after) : undefined;
    const st = report.serverTimeline;
    return {
      loss,
      phones,
      rate,
      durationSec: duration,
      attempted: report.calls.attempted,
      connected: report.calls.connected,
      expectedToConnect: report.calls.expectedToConnect,
      connectedShare: report.calls.connectedShare,
      finalStatus: report.calls.finalStatus,
      skippedNoFreePhone: report.calls.skippedNoFreePhone,
      answeredOnPhoneNotConnected: report.records.filter((r) => r.phoneConnected && !(r.finalStatus !== undefined && r.finalStatus < 300)).length,
      appKills: report.appKills,
      ghosts: report.ghosts,
      proxyAdded: st ? { inviteToPush: st.inviteToPush, registerToInvite: st.registerToInvite, pushRequest: st.pushRequest } : null,
      blackBox: report.proxyBlackBox,
      wakeLatency: report.wakeLatency,
      cdf: {
        ring: cdf(report.records.map((r) => r.ringMs).filter((v): v is number => v !== undefined)),
        inviteDelivered: cdf(report.records.map((r) => r.inviteMs).filter((v): v is number => v !== undefined)),
        answered: cdf(report.records.map((r) => r.answerMs).filter((v): v is number => v !== undefined)),
      },
      server: {
        cpuSecondsDuringCalls: delta ? Math.round(delta.us / 1e4) / 100 : 0,
        cpuCores: delta ? Math.round((delta.us / 1000 / delta.wallMs) * 1000) / 1000 : 0,
        cpuUsPerCall: delta && report.calls.attempted > 0 ? Math.round(delta.us / report.calls.attempted) : null,
        cpuSource: delta?.source ?? 'n/a',
        rssMbAfterRegister: Math.round(rssAfterRegister / 102.4) / 10,
        rssMbPeak: Math.round(rssPeak / 102.4) / 10,
        rssMbEnd: Math.round(rssEnd / 102.4) / 10,
        udpDrops: dropsAfter - dropsBefore,
        bindings,
        ...(heap && { heapAfterGc: heapSamples, timelineMaxCalls }),
      },
      fleetCpuCores: Math.round(fleetCores * 1000) / 1000,
      registerSeconds: report.phones.registerSeconds,
      drainSeconds: report.drainSeconds,
      relay: report.relay,
      pushes: report.push,
    };
  } finally {
    if (rssTimer) clearInterval(rssTimer);
    if (heapTimer) clearInterval(heapTimer);
    heap?.close();
    await stopTracked(server);
    await emulators.close();
    rmSync(emulators.dir, { recursive: true, force: true });
  }
}

const fmtP = (p: Percentiles | undefined | null, k: 'p50' | 'p99') => (p && p[k] !== null ? String(p[k]) : '-');

function markdown(runs: RunResult[], command: string): string {
  const m = cpuInfo();
  const v = versions();
  const load = loadavg().map((l) => l.toFixed(2)).join(', ');
  const lines = [
    '# Wake at scale (pushcall, simulated phone fleet, loopback)',
    '',
    `Machine: ${m.model}, ${m.nproc} CPU, ${m.memTotalMb} MB, Linux ${m.kernel}; Node ${v.node}. Load average at the end: ${load} (the machine is shared: other workloads ran at the same time, so latency tails are pessimistic).`,
    '',
    `Command: \`${command}\``,
    '',
    `${phones} sleeping phones (half iOS, half Android), each a full SimulatedPhone (SIP UA + client SDK coordinator + simulated iOS/Android), ` +
      `${rate} calls/s for ${duration} s from 20 caller UAs; every call wakes a phone by push (APNs/FCM emulators), the app re-registers ` +
      `after a launch delay of ${launch[0]}–${launch[1]} ms, the user answers 300–1000 ms after the phone rings, the caller hangs up after 500 ms. ` +
      'The server is `pushcall serve` (SQLite store, UDP) in its own process; the fleet, the callers and the emulators share a second process. ' +
      'UDP loss is injected between the phones and the server (each direction) by the fleet\'s impairment relay.',
    '',
    '| UDP loss | calls | connected | connected share | target | final statuses | answered on the phone, no 200 at the caller | ghost calls | app kills |',
    '|---:|---:|---:|---:|---|---|---:|---:|---:|',
  ];
  for (const r of runs) {
    const target = r.loss === 0 ? 1 : 0.999;
    const share = r.connectedShare ?? 0;
    lines.push(
      `| ${(r.loss * 100).toFixed(0)} % | ${r.attempted} | ${r.connected} | **${(share * 100).toFixed(2)} %** | ≥ ${(target * 100).toFixed(1)} %: ${share >= target ? 'met' : 'NOT met'} | ${Object.entries(r.finalStatus)
        .map(([k, n]) => `${k}×${n}`)
        .join(', ')} | ${r.answeredOnPhoneNotConnected} | ${r.ghosts.count} | ${r.appKills} |`,
    );
  }
  if (runs.some((r) => r.answeredOnPhoneNotConnected > 0)) {
    lines.push(
      '',
      '**Why calls fail under loss:** in every failed call the phone answered, but its 200 OK was lost between phone and server and never ' +
        'retransmitted: the simulated phone\'s SIP UA (`packages/testkit/src/phone/sip-ua.ts`, `answer()`) sends the 2xx once, and the transaction ' +
        'layer leaves 2xx retransmission to the UAS core (RFC 3261 §13.3.1.4, RFC 6026). The caller gives up after 15 s (487). The server\'s share ' +
        'is not involved (0 socket drops; the proxy forwards 2xx retransmissions). Fixing the UA (retransmit the 2xx at T1 doubling to T2 until the ' +
        'ACK, BYE after 64·T1) should bring the lossy run to the target; the share without loss is unaffected.',
    );
  }
  lines.push('', '## Proxy-added latency (server timelines, ms, from the server monotonic clock)', '');
  lines.push('| UDP loss | INVITE in → push sent p50 | p99 | REGISTER received → INVITE forwarded p50 | p99 | push request to APNs/FCM p50 | p99 |');
  lines.push('|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of runs) {
    const a = r.proxyAdded;
    lines.push(
      `| ${(r.loss * 100).toFixed(0)} % | ${fmtP(a?.inviteToPush, 'p50')} | ${fmtP(a?.inviteToPush, 'p99')} | ${fmtP(a?.registerToInvite, 'p50')} | ${fmtP(a?.registerToInvite, 'p99')} | ${fmtP(a?.pushRequest, 'p50')} | ${fmtP(a?.pushRequest, 'p99')} |`,
    );
  }
  lines.push('', 'Black box, measured in the fleet process (sub-ms clock; includes loopback, the relay and the fleet\'s own event loop, which is loaded):', '');
  lines.push('| UDP loss | caller INVITE sent → push at emulator p50 | p99 | phone REGISTER sent → INVITE at phone p50 | p99 |');
  lines.push('|---:|---:|---:|---:|---:|');
  for (const r of runs) {
    const b = r.blackBox;
    lines.push(`| ${(r.loss * 100).toFixed(0)} % | ${fmtP(b.inviteToPushAtEmulator, 'p50')} | ${fmtP(b.inviteToPushAtEmulator, 'p99')} | ${fmtP(b.registerSentToInviteAtPhone, 'p50')} | ${fmtP(b.registerSentToInviteAtPhone, 'p99')} |`);
  }
  lines.push('', '## Wake latency seen by the phone and the caller (ms)', '');
  lines.push('| UDP loss | INVITE → phone rings p50 | p99 | INVITE → INVITE at the phone p50 | p99 | INVITE → answered p50 | p99 |');
  lines.push('|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of runs) {
    const w = r.wakeLatency;
    lines.push(
      `| ${(r.loss * 100).toFixed(0)} % | ${fmtP(w.ring, 'p50')} | ${fmtP(w.ring, 'p99')} | ${fmtP(w.inviteDelivered, 'p50')} | ${fmtP(w.inviteDelivered, 'p99')} | ${fmtP(w.answered, 'p50')} | ${fmtP(w.answered, 'p99')} |`,
    );
  }
  lines.push('', '"Answered" includes the simulated user\'s 300–1000 ms answer delay; "INVITE at the phone" includes the launch delay.', '');
  lines.push('## Server process (during the call phase)', '');
  lines.push('| UDP loss | CPU (cores) | CPU µs per call | RSS after register (MB) | RSS peak (MB) | RSS end (MB) | bindings | socket drops | fleet process CPU (cores) |');
  lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of runs) {
    const s = r.server;
    lines.push(
      `| ${(r.loss * 100).toFixed(0)} % | ${s.cpuCores} | ${s.cpuUsPerCall ?? '-'} | ${s.rssMbAfterRegister} | ${s.rssMbPeak} | ${s.rssMbEnd} | ${s.bindings} | ${s.udpDrops} | ${r.fleetCpuCores} |`,
    );
  }
  lines.push('', `CPU from /proc (${runs[0]?.server.cpuSource ?? 'n/a'}) for the server process tree only. Per call: one push, one REGISTER, INVITE/100/180/180/200/ACK forwarded, BYE/200.`, '');
  lines.push('![wake latency](wake-latency.svg)', '');
  return lines.join('\n');
}

const runs: RunResult[] = [];
for (const loss of losses) {
  process.stderr.write(`wake-bench: run with ${(loss * 100).toFixed(1)} % UDP loss: ${phones} phones, ${rate} calls/s, ${duration} s\n`);
  runs.push(await runOnce(loss));
}
const command = `node --conditions=source --import tsx bench/wake.ts ${args.join(' ')}`.trim();
mkdirSync(outDir, { recursive: true });
const result = { benchmark: 'wake', date: new Date().toISOString(), machine: cpuInfo(), versions: versions(), command, quick, runs };
writeFileSync(join(outDir, 'wake.json'), JSON.stringify(result, null, 2) + '\n');
writeFileSync(join(outDir, 'wake.md'), markdown(runs, command));
process.stdout.write(markdown(runs, command));
