// The SIP benchmark: pushcall vs Kamailio, in the same run, on this machine.
//
//   node --conditions=source --import tsx bench/sip-compare.ts [--quick] [options]
//
// (a) REGISTER/UDP with a new user per REGISTER at step rates, (b) proxied calls
// SIPp UAC -> server -> SIPp UAS at step rates. A fresh server per step; the servers take
// turns at each rate. Writes bench/results/sip-compare.{json,md} and the SVG charts.
// Run with --help for the options.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeCharts } from './charts.js';
import {
  cpuDelta,
  cpuInfo,
  cpuSample,
  memSample,
  type SystemCpuSample,
  systemCpuDelta,
  systemCpuSample,
  udpPortStats,
  versions,
} from './lib/proc.js';
import {
  type BenchSection,
  type CallStep,
  type CompareResult,
  renderMarkdown,
  round,
  type StepBase,
  type StepError,
  summarize,
} from './lib/report.js';
import {
  BENCH_DIR,
  PUSHCALL_MAIN,
  buildPushcall,
  REPO_ROOT,
  pushcallAvailable,
  type ServerHandle,
  startKamailio,
  startNodeFloor,
  startPushcall,
  startPushcallWithRedis,
} from './lib/servers.js';
import { type SippResult, SippRun, runSipp, scenario, writeRegisterCsv } from './lib/sipp.js';
import { stopAll } from './lib/spawned.js';

const ALL_SERVERS = ['pushcall', 'pushcall-redis', 'kamailio-tlsf', 'kamailio-packaged', 'node-floor', 'node-floor-batch', 'node-relay-floor', 'node-register-floor', 'node-proxy-floor'] as const;
type ServerName = (typeof ALL_SERVERS)[number];

const HELP = `usage: node --conditions=source --import tsx bench/sip-compare.ts [options]

  --quick                    5 s steps (default 15 s)
  --duration <s>             seconds per step (REGISTER and calls)
  --register-rates <list>    default 2000,5000,10000,15000,20000,25000,30000
  --call-rates <list>        default 200,500,1000,2000
  --common-register-rate <n> rate at which CPU/REGISTER is compared (default 10000)
  --common-call-rate <n>     rate at which CPU/call is compared (default 1000)
  --servers <list>           default pushcall,kamailio-tlsf,kamailio-packaged; also node-floor,
                             node-floor-batch (canned 200), node-relay-floor (bare relay) and
                             node-register-floor (parse, one SQLite row, a 200),
                             node-proxy-floor (a minimal stateful proxy on pushcall's parser), and
                             pushcall-redis (store.type redis; redis-server's CPU counted too)
                             (pushcall is skipped, with a note, if its CLI does not exist yet)
  --only register|calls      run one part only
  --no-early-stop            run every rate even after two consecutive failing steps
  --repeat <n>               run each rate n times, servers interleaved within each repeat;
                             the summary quotes the median CPU per op and every repeat's ratio
  --plain-contact            REGISTER without pn-* Contact parameters (scenarios/register-plain.xml)
  --pushcall-config <file>   pushcall YAML (default bench/pushcall-bench.yaml)
  --call-pause <ms>          pause between ACK and BYE (SIPp -d), default 0
  --kamailio-children <n>    Kamailio UDP workers (cfg default 4)
  --kamailio-shm <MB>        Kamailio shared memory (default: sized from the step's registrations)
  --out <prefix>             default bench/results/sip-compare (writes .json and .md; charts next to it)
  --keep-tmp                 keep the work directory (SIPp CSVs, logs, generated cfgs)
  --pushcall-source          run pushcall's TypeScript sources through tsx instead of the
                             compiled CLI (the default builds it first: scripts/build.mjs)
  --pushcall-port / --kamailio-port / --sipp-port / --uas-port / --uac-port <n>
`;

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    'register-rates': { type: 'string' },
    'call-rates': { type: 'string' },
    'common-register-rate': { type: 'string', default: '10000' },
    'common-call-rate': { type: 'string', default: '1000' },
    servers: { type: 'string', default: ALL_SERVERS.join(',') },
    only: { type: 'string' },
    'no-early-stop': { type: 'boolean', default: false },
    repeat: { type: 'string', default: '1' },
    'call-pause': { type: 'string', default: '0' },
    'plain-contact': { type: 'boolean', default: false },
    'pushcall-config': { type: 'string' },
    'kamailio-children': { type: 'string' },
    'kamailio-shm': { type: 'string' },
    out: { type: 'string', default: join(BENCH_DIR, 'results', 'sip-compare') },
    'keep-tmp': { type: 'boolean', default: false },
    'pushcall-source': { type: 'boolean', default: false },
    'pushcall-port': { type: 'string', default: '5080' },
    'kamailio-port': { type: 'string', default: '5070' },
    'sipp-port': { type: 'string', default: '5061' },
    'uas-port': { type: 'string', default: '5090' },
    'uac-port': { type: 'string', default: '5091' },
    help: { type: 'boolean', default: false },
  },
  allowPositionals: false,
});

if (opt.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const int = (s: string | undefined, name: string): number => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: not a non-negative integer: ${s}`);
  return n;
};
const list = (s: string, name: string): number[] => s.split(',').map((x) => int(x.trim(), name));

const durationSec = opt.duration !== undefined ? int(opt.duration, 'duration') : opt.quick ? 5 : 15;
const registerRates = list(opt['register-rates'] ?? '2000,5000,10000,15000,20000,25000,30000', 'register-rates');
const callRates = list(opt['call-rates'] ?? '200,500,1000,2000', 'call-rates');
const commonRegisterRate = int(opt['common-register-rate'], 'common-register-rate');
const commonCallRate = int(opt['common-call-rate'], 'common-call-rate');
const earlyStop = !opt['no-early-stop'];
const repeat = int(opt.repeat, 'repeat');
const callPauseMs = int(opt['call-pause'], 'call-pause');
const ports = {
  pushcall: int(opt['pushcall-port'], 'pushcall-port'),
  kamailio: int(opt['kamailio-port'], 'kamailio-port'),
  sipp: int(opt['sipp-port'], 'sipp-port'),
  uas: int(opt['uas-port'], 'uas-port'),
  uac: int(opt['uac-port'], 'uac-port'),
};
const outPrefix = resolve(opt.out);
const runRegister = opt.only === undefined || opt.only === 'register';
const runCalls = opt.only === undefined || opt.only === 'calls';
if (opt.only !== undefined && !runRegister && !runCalls) throw new Error(`--only: register or calls, not ${opt.only}`);

const notes: string[] = [];
const requested = opt.servers.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
for (const s of requested) {
  if (!(ALL_SERVERS as readonly string[]).includes(s)) throw new Error(`--servers: unknown server ${s} (${ALL_SERVERS.join(', ')})`);
}
let servers = requested as ServerName[];
if (servers.includes('pushcall') && !pushcallAvailable()) {
  const msg = `pushcall was NOT benchmarked: its server CLI ${relative(REPO_ROOT, PUSHCALL_MAIN)} does not exist yet. Kamailio only.`;
  console.warn(`\n*** ${msg}\n`);
  notes.push(msg);
  servers = servers.filter((s) => s !== 'pushcall');
}
// The floors always run on the compiled packages (bench/lib/servers.ts compiledFloor); pushcall
// unless --pushcall-source.
if (servers.some((s) => s.endsWith('-floor')) || (servers.some((s) => s.startsWith('pushcall')) && !opt['pushcall-source'])) buildPushcall();
if (servers.length === 0) {
  console.error('no server to benchmark');
  process.exit(2);
}

const workDir = mkdtempSync(join(tmpdir(), 'pushcall-sip-bench-'));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);

// ------------------------------------------------------------------------------ servers

function kamailioShmMb(registrations: number): number {
  if (opt['kamailio-shm'] !== undefined) return int(opt['kamailio-shm'], 'kamailio-shm');
  // ~1 KB of shm per contact with the pn-* Contact (more with q_malloc's debug headers);
  // 3 KB/registration + 256 MB keeps save() from failing for lack of memory (the package
  // default of 64 MB fills up after ~50k users and turns into 500s that are not overload).
  return Math.min(8192, Math.max(512, 256 + Math.ceil((registrations * 3) / 1024)));
}

async function startServer(name: ServerName, registrations: number, lifetimeSec: number): Promise<ServerHandle> {
  // Not SIP servers: the cost of Node's UDP path alone: a canned 200 (for REGISTER), a bare
  // relay (for calls).
  if (name === 'node-floor') return startNodeFloor({ udpPort: ports.pushcall + 5, workDir, io: 'dgram', maxLifetimeSec: lifetimeSec });
  if (name === 'node-floor-batch') return startNodeFloor({ udpPort: ports.pushcall + 6, workDir, io: 'batch', maxLifetimeSec: lifetimeSec });
  if (name === 'node-relay-floor') return startNodeFloor({ udpPort: ports.pushcall + 7, workDir, io: 'relay', maxLifetimeSec: lifetimeSec });
  // The least a persisting registrar on this stack can do: parse, one SQLite row, a 200.
  if (name === 'node-register-floor') return startNodeFloor({ udpPort: ports.pushcall + 8, workDir, io: 'register', maxLifetimeSec: lifetimeSec });
  // The least a stateful proxy on this stack can do: parse and serialize every message, two transaction Maps.
  if (name === 'node-proxy-floor') return startNodeFloor({ udpPort: ports.pushcall + 4, workDir, io: 'proxy', maxLifetimeSec: lifetimeSec });
  if (name === 'pushcall-redis') {
    return startPushcallWithRedis({
      udpPort: ports.pushcall + 9,
      redisPort: ports.pushcall + 10,
      workDir,
      maxLifetimeSec: lifetimeSec,
      configPath: opt['pushcall-config'] !== undefined ? resolve(opt['pushcall-config']) : undefined,
      fromSource: opt['pushcall-source'],
    });
  }
  if (name === 'pushcall') {
    return startPushcall({
      udpPort: ports.pushcall,
      workDir,
      maxLifetimeSec: lifetimeSec,
      configPath: opt['pushcall-config'] !== undefined ? resolve(opt['pushcall-config']) : undefined,
      fromSource: opt['pushcall-source'],
    });
  }
  return startKamailio({
    port: ports.kamailio,
    variant: name === 'kamailio-tlsf' ? 'tlsf' : 'packaged',
    workDir,
    shmMb: kamailioShmMb(registrations),
    children: opt['kamailio-children'] !== undefined ? int(opt['kamailio-children'], 'kamailio-children') : undefined,
    maxLifetimeSec: lifetimeSec,
  });
}

/** Samples the server's memory and socket drops while a step runs. */
class ServerMonitor {
  rssPeakKb = 0;
  drops = 0;
  readonly sysBefore: SystemCpuSample = systemCpuSample();
  sysAfter: SystemCpuSample = this.sysBefore;
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly h: ServerHandle) {
    this.timer = setInterval(() => this.sample(), 500);
    this.sample();
  }
  sample(): void {
    const m = memSample(this.h.pids());
    this.rssPeakKb = Math.max(this.rssPeakKb, m.rssKb);
    const u = udpPortStats(this.h.port);
    if (u.sockets > 0) this.drops = Math.max(this.drops, u.drops);
  }
  stop(): void {
    clearInterval(this.timer);
    this.sysAfter = systemCpuSample();
    this.sample();
  }
}

function baseStep(
  server: ServerName,
  h: ServerHandle,
  rate: number,
  planned: number,
  uac: SippResult,
  cpu: ReturnType<typeof cpuDelta>,
  mon: ServerMonitor,
  extraRetrans: number,
  extraFailed: number,
  clientCpuUsPerOp: number | null,
  clientDrops: number,
): StepBase {
  const s = uac.stats;
  const mem = memSample(h.pids());
  const retrans = s.retransmissions + extraRetrans;
  const retransPct = s.created > 0 ? (100 * retrans) / s.created : 0;
  const serverDrops = mon.drops;
  const failed = s.failed + extraFailed;
  const notes: string[] = [];
  if (!h.probeAnswered) notes.push('server did not answer the OPTIONS readiness probe');
  if (s.created < planned) notes.push(`SIPp created only ${s.created} of ${planned} calls before its timeout`);
  if (clientDrops > 0) notes.push(`SIPp's own socket dropped ${clientDrops} datagrams`);
  const unexpected = Object.entries(uac.unexpected).sort((a, b) => b[1] - a[1]);
  if (unexpected.length > 0) {
    notes.push(`unexpected messages at SIPp (first 1 MB of its error log): ${unexpected.slice(0, 5).map(([k, v]) => `${v}× "${k}"`).join(', ')}`);
  }
  const sustained = failed === 0 && s.unfinished === 0 && s.created >= planned && retransPct < 0.1 && serverDrops === 0;
  return {
    server,
    offeredRate: rate,
    durationSec,
    plannedCalls: planned,
    created: s.created,
    successful: s.successful,
    failed,
    failedBy: s.failedBy,
    unfinished: s.unfinished,
    retransmissions: retrans,
    retransPct: round(retransPct, 4),
    achievedRate: round(s.achievedRate, 1),
    successRate: round(s.successRate, 1),
    serverSocketDrops: serverDrops,
    clientSocketDrops: clientDrops,
    serverCpuUs: Math.round(cpu.us),
    serverCpuStatUs: Math.round(cpu.statUs),
    cpuSource: cpu.source,
    serverCpuUsPerOp: s.successful > 0 ? round(cpu.us / s.successful, 2) : null,
    serverSlicesPerOp: s.successful > 0 && cpu.slices > 0 ? round(cpu.slices / s.successful, 2) : null,
    serverCores: round(cpu.us / 1000 / Math.max(cpu.wallMs, 1), 3),
    machineBusyCores: round(systemCpuDelta(mon.sysBefore, mon.sysAfter).busyCores, 2),
    machineStealCores: round(systemCpuDelta(mon.sysBefore, mon.sysAfter).stealCores, 2),
    serverRssKb: mem.rssKb,
    serverRssPeakKb: Math.max(mon.rssPeakKb, mem.rssKb),
    serverPssKb: mem.pssKb,
    serverProcesses: mem.processes,
    clientCpuUsPerOp: clientCpuUsPerOp === null ? null : round(clientCpuUsPerOp, 2),
    sustained,
    clientLimited: s.achievedRate < 0.97 * rate,
    sippCommand: uac.command,
    serverCommand: h.command,
    notes,
  };
}

const sippTimeout = (d: number) => Math.ceil(d * 1.5) + 40; // + UDP retransmission drain (up to ~32 s)
const maxOpen = (rate: number) => Math.max(2000, rate * 20);

// ------------------------------------------------------------------------------ REGISTER

async function registerStep(server: ServerName, rate: number, csv: string): Promise<StepBase> {
  const planned = rate * durationSec;
  const h = await startServer(server, planned, sippTimeout(durationSec) + 120);
  try {
    const mon = new ServerMonitor(h);
    const before = cpuSample(h.pids());
    const uac = await runSipp({
      name: `reg-${server}-${rate}`,
      scenarioFile: scenario(opt['plain-contact'] ? 'register-plain.xml' : 'register.xml'),
      remote: `127.0.0.1:${h.port}`,
      localPort: ports.sipp,
      rate,
      calls: planned,
      maxOpen: maxOpen(rate),
      timeoutSec: sippTimeout(durationSec),
      workDir,
      injectFile: csv,
    });
    const after = cpuSample(before.pids);
    mon.stop();
    if (!h.proc.isRunning()) throw new Error(`${server} died during the step\n${h.logTail(30)}`);
    return baseStep(server, h, rate, planned, uac, cpuDelta(before, after), mon, 0, 0, uac.clientCpuUsPerCall, uac.clientSocketDrops);
  } finally {
    await h.stop();
  }
}

// ------------------------------------------------------------------------------ calls

async function callStep(server: ServerName, rate: number): Promise<CallStep> {
  const planned = rate * durationSec;
  const h = await startServer(server, 1000, sippTimeout(durationSec) + 120);
  let uas: SippRun | undefined;
  try {
    // Register the callee FROM the UAS's own port (then start the UAS on it): a registrar that
    // routes to the flow the REGISTER came from (RFC 5626 / NAT-friendly, like pushcall) would
    // otherwise send the INVITEs to whichever port registered. Contact also points at the UAS.
    const reg = await runSipp({
      name: `reg-callee-${server}-${rate}`,
      scenarioFile: scenario('register-callee.xml'),
      remote: `127.0.0.1:${h.port}`,
      localPort: ports.uas,
      rate: 1,
      calls: 1,
      maxOpen: 10,
      timeoutSec: 15,
      workDir,
      keys: { callee: 'callee', contact_port: String(ports.uas) },
    });
    if (reg.stats.successful !== 1) {
      const why = Object.keys(reg.unexpected).join(', ') || JSON.stringify(reg.stats.failedBy);
      throw new Error(`callee registration failed at ${server} (SIPp exit ${reg.exitCode}): ${why} ${reg.stderrTail}`);
    }
    uas = new SippRun({
      name: `uas-${server}-${rate}`,
      scenarioFile: scenario('uas-call.xml'),
      localPort: ports.uas,
      calls: planned,
      maxOpen: maxOpen(rate),
      timeoutSec: sippTimeout(durationSec) + 15,
      workDir,
    });
    await sleep(300);
    if (!uas.proc.isRunning()) throw new Error(`UAS SIPp exited at start: ${(await uas.stop()).stderrTail}`);
    const mon = new ServerMonitor(h);
    const before = cpuSample(h.pids());
    const uac = await runSipp({
      name: `uac-${server}-${rate}`,
      scenarioFile: scenario('uac-call.xml'),
      remote: `127.0.0.1:${h.port}`,
      localPort: ports.uac,
      rate,
      calls: planned,
      maxOpen: maxOpen(rate),
      timeoutSec: sippTimeout(durationSec),
      workDir,
      service: 'callee',
      pauseMs: callPauseMs,
    });
    const after = cpuSample(before.pids);
    mon.stop();
    const uasRes = await uas.stop(3000);
    uas = undefined;
    if (!h.proc.isRunning()) throw new Error(`${server} died during the step\n${h.logTail(30)}`);
    const clientCpu =
      uac.clientCpuUsPerCall === null ? null : uac.clientCpuUsPerCall + ((uasRes.clientCpuUsPerCall ?? 0) * uasRes.stats.created) / Math.max(uac.stats.created, 1);
    const base = baseStep(
      server,
      h,
      rate,
      planned,
      uac,
      cpuDelta(before, after),
      mon,
      uasRes.stats.retransmissions,
      0,
      clientCpu,
      uac.clientSocketDrops + uasRes.clientSocketDrops,
    );
    const uasUnexpected = uasRes.stats.failedBy.FailedUnexpectedMessage ?? 0;
    if (uasRes.stats.failed > 0) {
      base.notes.push(`UAS failed ${uasRes.stats.failed} calls ${JSON.stringify(uasRes.stats.failedBy)}`);
      base.sustained = false;
    }
    return { ...base, uasFailed: uasRes.stats.failed, uasRetransmissions: uasRes.stats.retransmissions, uasUnexpected };
  } finally {
    if (uas) await uas.stop(500).catch(() => undefined);
    await h.stop();
  }
}

// ------------------------------------------------------------------------------ driver

function describe(s: StepBase): string {
  return (
    `${s.server.padEnd(17)} offered ${String(s.offeredRate).padStart(6)}/s sent ${s.achievedRate.toFixed(0).padStart(6)}/s ok ${s.successRate.toFixed(0).padStart(6)}/s ` +
    `failed ${s.failed} unfinished ${s.unfinished} retrans ${s.retransPct.toFixed(3)}% drops ${s.serverSocketDrops} ` +
    `cpu ${s.serverCpuUsPerOp?.toFixed(1) ?? '—'} µs/op ${s.serverSlicesPerOp?.toFixed(2) ?? '—'} wake-ups/op (${s.serverCores.toFixed(2)} cores, machine ${s.machineBusyCores.toFixed(2)}) sipp ${s.clientCpuUsPerOp?.toFixed(1) ?? '—'} µs/op ` +
    `pss ${(s.serverPssKb / 1024).toFixed(0)} MB ${s.sustained ? (s.clientLimited ? 'OK (SIPp-limited)' : 'OK') : 'NOT SUSTAINED'}`
  );
}

async function runSection<S extends StepBase>(
  label: string,
  rates: number[],
  commonRate: number,
  step: (server: ServerName, rate: number) => Promise<S>,
): Promise<BenchSection<S>> {
  const steps: S[] = [];
  const errors: StepError[] = [];
  const consecutiveBad = new Map<ServerName, number>();
  for (const rate of rates) {
    for (let run = 1; run <= repeat; run++) {
      for (const server of servers) {
        if (earlyStop && (consecutiveBad.get(server) ?? 0) >= 2) {
          log(`${label} ${server} ${rate}/s: skipped (two consecutive steps not sustained)`);
          continue;
        }
        log(`${label} ${server} ${rate}/s for ${durationSec} s${repeat > 1 ? ` (repeat ${run} of ${repeat})` : ''} ...`);
        try {
          const s = await step(server, rate);
          steps.push(s);
          log(`  ${describe(s)}`);
          for (const n of s.notes) log(`  note: ${n}`);
          const bad = !s.sustained && !(s.clientLimited && s.failed === 0 && s.serverSocketDrops === 0);
          consecutiveBad.set(server, bad ? (consecutiveBad.get(server) ?? 0) + 1 : 0);
        } catch (e) {
          const msg = e instanceof Error ? e.message : String(e);
          log(`  ERROR: ${msg}`);
          errors.push({ server, offeredRate: rate, error: msg });
          consecutiveBad.set(server, (consecutiveBad.get(server) ?? 0) + 1);
        }
        await sleep(1000);
      }
    }
  }
  return { rates, durationSec, commonRate, steps, errors, summary: summarize(servers, steps, commonRate) };
}

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const command = `node --conditions=source --import tsx bench/sip-compare.ts ${process.argv.slice(2).join(' ')}`.trim();
  const machine = cpuInfo();
  const ver = versions();
  if (ver.sipp === null) throw new Error('sipp not found: apt-get install -y sip-tester');
  if (servers.some((s) => s.startsWith('kamailio')) && ver.kamailio === null) {
    throw new Error('kamailio not found: apt-get install -y kamailio');
  }
  log(`machine: ${machine.model}, nproc ${machine.nproc}; ${ver.sipp}; kamailio ${ver.kamailio}; node ${ver.node}`);
  log(`servers: ${servers.join(', ')}; ${durationSec} s per step; work dir ${workDir}`);

  const result: CompareResult = {
    tool: 'bench/sip-compare.ts',
    startedAt,
    finishedAt: '',
    command,
    machine,
    versions: { ...ver, pushcall: servers.includes('pushcall') ? (opt['pushcall-source'] ? 'workspace (packages/server sources, via tsx)' : 'workspace (packages/server, compiled by scripts/build.mjs)') : null },
    servers,
    notes,
    registerContact: opt['plain-contact'] ? 'plain' : 'pn',
  };

  if (runRegister) {
    const csvs = new Map<number, string>();
    result.register = await runSection('REGISTER', registerRates, commonRegisterRate, async (server, rate) => {
      let csv = csvs.get(rate);
      if (csv === undefined) {
        csv = join(workDir, `users-${rate}.csv`);
        await writeRegisterCsv(csv, rate * durationSec, `u${rate}x`);
        csvs.set(rate, csv);
      }
      return registerStep(server, rate, csv);
    });
    for (const csv of csvs.values()) rmSync(csv, { force: true });
  }
  if (runCalls) {
    result.calls = await runSection<CallStep>('CALLS', callRates, commonCallRate, callStep);
  }
  result.finishedAt = new Date().toISOString();

  mkdirSync(dirname(outPrefix), { recursive: true });
  writeFileSync(`${outPrefix}.json`, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(`${outPrefix}.md`, renderMarkdown(result));
  const charts = writeCharts(result, dirname(outPrefix));
  log(`wrote ${relative(process.cwd(), `${outPrefix}.json`)}, ${relative(process.cwd(), `${outPrefix}.md`)}, ${charts.map((c) => relative(process.cwd(), c)).join(', ')}`);
  for (const [name, sec] of [['REGISTER', result.register], ['calls', result.calls]] as const) {
    if (!sec) continue;
    for (const s of sec.summary) {
      const hs = s.highestSustained;
      log(
        `${name} ${s.server}: highest sustained ${hs ? `${hs.offeredRate}/s offered, ${hs.successRate}/s ok${hs.clientLimited ? ' (SIPp-limited)' : ''}` : 'none'}; ` +
          `CPU at ${sec.commonRate}/s: ${s.cpuUsPerOpAtCommonRate ?? '—'} µs/op`,
      );
    }
  }
}

try {
  await main();
} catch (e) {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exitCode = 1;
} finally {
  await stopAll();
  if (!opt['keep-tmp']) rmSync(workDir, { recursive: true, force: true });
  else log(`kept ${workDir}`);
}
