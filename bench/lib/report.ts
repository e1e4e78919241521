// Result types of bench/sip-compare.ts and the markdown rendering of bench/results/sip-compare.md.
import type { CpuInfo, Versions } from './proc.js';

export interface StepBase {
  server: string;
  /** rate asked of SIPp (-r), per second */
  offeredRate: number;
  durationSec: number;
  /** -m: calls SIPp was told to make */
  plannedCalls: number;
  created: number;
  successful: number;
  failed: number;
  failedBy: Record<string, number>;
  unfinished: number;
  retransmissions: number;
  /** retransmissions per 100 calls created (UAC + UAS for calls) */
  retransPct: number;
  /** calls created per second while creating: what SIPp really offered */
  achievedRate: number;
  /** successful calls per second over the same window: the throughput */
  successRate: number;
  /** kernel drops on the server's UDP socket(s) during the step */
  serverSocketDrops: number;
  /** kernel drops on SIPp's socket(s) */
  clientSocketDrops: number;
  serverCpuUs: number;
  /** the same from /proc/<pid>/stat utime+stime (10 ms granularity per process), cross-check */
  serverCpuStatUs: number;
  cpuSource: 'schedstat' | 'stat';
  /** server CPU per successful operation (REGISTER, or whole call), µs */
  serverCpuUsPerOp: number | null;
  /**
   * CPU time slices the server's threads ran per successful operation (schedstat): about the
   * wake-ups an operation costs, each of which starts on cold caches.
   */
  serverSlicesPerOp: number | null;
  /** server CPU / wall time over the step, in cores (2 = both cores of this machine) */
  serverCores: number;
  /** whole machine (server + SIPp + anything else running), in cores, and hypervisor steal */
  machineBusyCores: number;
  machineStealCores: number;
  serverRssKb: number;
  serverRssPeakKb: number;
  serverPssKb: number;
  serverProcesses: number;
  /** SIPp's own CPU per call, µs (UAC + UAS for calls; approximate) */
  clientCpuUsPerOp: number | null;
  /** 0 failed, 0 unfinished, < 0.1 % retransmissions, no server socket drops */
  sustained: boolean;
  /** SIPp created calls at < 97 % of the offered rate: the harness, not the server, was the limit */
  clientLimited: boolean;
  sippCommand: string;
  serverCommand: string;
  notes: string[];
}

export interface CallStep extends StepBase {
  uasFailed: number;
  uasRetransmissions: number;
  uasUnexpected: number;
}

export interface StepError {
  server: string;
  offeredRate: number;
  error: string;
}

export interface ServerSummary {
  server: string;
  /** the sustained step with the highest throughput */
  highestSustained: { offeredRate: number; achievedRate: number; successRate: number; clientLimited: boolean } | null;
  /** the lowest offered rate that was not sustained */
  firstFailing: number | null;
  /** server CPU per op at the common rate, the median over repeats (null if not run or failed) */
  cpuUsPerOpAtCommonRate: number | null;
  /** every repeat at the common rate, in run order (one value without --repeat) */
  cpuUsPerOpAtCommonRateRuns: number[];
  commonRateSustained: boolean | null;
}

export interface BenchSection<S> {
  rates: number[];
  durationSec: number;
  commonRate: number;
  steps: S[];
  errors: StepError[];
  summary: ServerSummary[];
}

export interface CompareResult {
  tool: 'bench/sip-compare.ts';
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: CpuInfo;
  versions: Versions & { pushcall: string | null };
  servers: string[];
  notes: string[];
  /** REGISTER Contact: with pn-provider/pn-prid/pn-param, or plain (--plain-contact) */
  registerContact: 'pn' | 'plain';
  register?: BenchSection<StepBase>;
  calls?: BenchSection<CallStep>;
}

/**
 * Per server: the highest rate sustained in every repeat, the lowest not sustained in some
 * repeat, and the median CPU per op over the repeats at the common rate.
 */
export function summarize<S extends StepBase>(servers: string[], steps: S[], commonRate: number): ServerSummary[] {
  return servers.map((server) => {
    const mine = steps.filter((s) => s.server === server).sort((a, b) => a.offeredRate - b.offeredRate);
    const allSustained = (rate: number) => mine.every((s) => s.offeredRate !== rate || s.sustained);
    let best: S | undefined;
    for (const s of mine) if (allSustained(s.offeredRate) && (best === undefined || s.successRate > best.successRate)) best = s;
    const failing = mine.find((s) => !s.sustained);
    const atCommon = mine.filter((s) => s.offeredRate === commonRate && s.serverCpuUsPerOp !== null);
    const runs = atCommon.map((s) => s.serverCpuUsPerOp as number);
    const common = atCommon.length > 0 ? atCommon[medianIndex(runs)] : undefined;
    return {
      server,
      highestSustained: best
        ? {
            offeredRate: best.offeredRate,
            achievedRate: round(best.achievedRate),
            successRate: round(best.successRate),
            clientLimited: best.clientLimited,
          }
        : null,
      firstFailing: failing?.offeredRate ?? null,
      cpuUsPerOpAtCommonRate: common?.serverCpuUsPerOp ?? null,
      cpuUsPerOpAtCommonRateRuns: runs,
      commonRateSustained: atCommon.length > 0 ? allSustained(commonRate) : null,
    };
  });
}

/** Index of the median value (the lower middle one for an even count). */
function medianIndex(values: number[]): number {
  const order = values.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  return order[Math.floor((order.length - 1) / 2)][1];
}

export function round(x: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

const fmtInt = (x: number | null | undefined): string =>
  x === null || x === undefined || !Number.isFinite(x) ? '—' : Math.round(x).toLocaleString('en-US');
const fmtFixed = (x: number | null | undefined, digits: number): string =>
  x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits);
const fmt1 = (x: number | null | undefined): string => fmtFixed(x, 1);
const fmtPct = (x: number): string => (x === 0 ? '0' : x < 0.01 ? '<0.01' : x.toFixed(2));
const mb = (kb: number): string => (kb / 1024).toFixed(0);

function stepTable(steps: StepBase[], opName: string): string[] {
  const out = [
    `| server | offered /s | sent /s | ${opName} ok /s | failed | unfinished | retrans % | server drops | server CPU µs/${opName} | server wake-ups/${opName} | server cores | machine busy cores | SIPp µs/${opName} | RSS MB (sum) | PSS MB | verdict |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  const sorted = [...steps].sort((a, b) => a.offeredRate - b.offeredRate || a.server.localeCompare(b.server));
  for (const s of sorted) {
    const verdict = s.sustained ? (s.clientLimited ? 'ok (SIPp-limited)' : 'ok') : 'NOT sustained';
    out.push(
      `| ${s.server} | ${fmtInt(s.offeredRate)} | ${fmtInt(s.achievedRate)} | ${fmtInt(s.successRate)} | ${fmtInt(s.failed)} | ${fmtInt(s.unfinished)} | ${fmtPct(s.retransPct)} | ${fmtInt(s.serverSocketDrops)} | ${fmt1(s.serverCpuUsPerOp)} | ${fmtFixed(s.serverSlicesPerOp, 2)} | ${s.serverCores.toFixed(2)} | ${s.machineBusyCores.toFixed(2)}${s.machineStealCores >= 0.05 ? ` (steal ${s.machineStealCores.toFixed(2)})` : ''} | ${fmt1(s.clientCpuUsPerOp)} | ${mb(s.serverRssPeakKb)} | ${mb(s.serverPssKb)} | ${verdict} |`,
    );
  }
  return out;
}

function summaryTable(section: BenchSection<StepBase>, opName: string): string[] {
  const out = [
    `| server | highest sustained: offered /s | sent /s | ok /s | first failing offered /s | server CPU µs/${opName} at ${fmtInt(section.commonRate)}/s |`,
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const s of section.summary) {
    const h = s.highestSustained;
    const lim = h?.clientLimited ? ' (SIPp-limited)' : '';
    const common =
      s.cpuUsPerOpAtCommonRate === null ? '—' : `${fmt1(s.cpuUsPerOpAtCommonRate)}${s.commonRateSustained ? '' : ' (not sustained)'}`;
    out.push(
      `| ${s.server} | ${h ? fmtInt(h.offeredRate) : 'none'}${lim} | ${h ? fmtInt(h.achievedRate) : '—'} | ${h ? fmtInt(h.successRate) : '—'} | ${fmtInt(s.firstFailing)} | ${common} |`,
    );
  }
  const ref = section.summary.find((s) => s.server.startsWith('kamailio') && s.cpuUsPerOpAtCommonRate !== null);
  const pc = section.summary.find((s) => s.server === 'pushcall' && s.cpuUsPerOpAtCommonRate !== null);
  if (ref && pc && ref.cpuUsPerOpAtCommonRate && pc.cpuUsPerOpAtCommonRate) {
    out.push(
      '',
      `CPU ratio at ${fmtInt(section.commonRate)}/s: pushcall / ${ref.server} = ${(pc.cpuUsPerOpAtCommonRate / ref.cpuUsPerOpAtCommonRate).toFixed(2)}×` +
        (pc.cpuUsPerOpAtCommonRateRuns.length > 1 ? ' (medians)' : ''),
    );
    const n = Math.min(pc.cpuUsPerOpAtCommonRateRuns.length, ref.cpuUsPerOpAtCommonRateRuns.length);
    if (n > 1) {
      const perRun = Array.from({ length: n }, (_, i) => `${fmt1(pc.cpuUsPerOpAtCommonRateRuns[i])} / ${fmt1(ref.cpuUsPerOpAtCommonRateRuns[i])} = ${(pc.cpuUsPerOpAtCommonRateRuns[i] / ref.cpuUsPerOpAtCommonRateRuns[i]).toFixed(2)}×`);
      out.push('', `Each repeat (servers interleaved): ${perRun.join('; ')}.`);
    }
  }
  return out;
}

export function renderMarkdown(r: CompareResult): string {
  const L: string[] = [];
  L.push('# SIP benchmark: pushcall vs Kamailio', '');
  L.push(`Generated by \`bench/sip-compare.ts\` — ${r.startedAt} → ${r.finishedAt}.`, '');
  L.push('Command:', '', '```sh', r.command, '```', '');
  L.push('## Machine and versions', '');
  L.push(`- CPU: ${r.machine.model}, nproc = ${r.machine.nproc} (kernel ${r.machine.kernel}, ${r.machine.memTotalMb} MB RAM)`);
  L.push('- Network: loopback only (127.0.0.1); SIPp and the server share the same cores.');
  L.push(`- node ${r.versions.node}; ${r.versions.sipp ?? 'sipp: not found'}; ${r.versions.kamailio ?? "kamailio: not found"}; pushcall: ${r.versions.pushcall ?? 'not run'}`);
  L.push(`- Servers: ${r.servers.join(', ')}`, '');
  if (r.notes.length > 0) {
    L.push('## Notes', '');
    for (const n of r.notes) L.push(`- ${n}`);
    L.push('');
  }
  L.push('## Method', '');
  L.push(
    '- A fresh server process per step; servers take turns at each rate. SIPp with `-i 127.0.0.1 -nd -buff_size 4194304`, explicit `-l`, `-r <rate> -rp 1000 -m <rate × duration>`.',
    '- **sent /s**: calls SIPp actually created per second while creating (from its `-trace_stat` rows); **ok /s**: successful ones over the same window.',
    '- **retrans %**: SIPp retransmissions per 100 calls (for calls: UAC + UAS). **server drops**: `drops` of the server socket in `/proc/net/udp{,6}`.',
    '- **server CPU**: utime+stime of every server process and thread (per-thread schedstat when available), delta over the step, divided by successful operations. Kamailio: the main process and all forked children.',
    '- **machine busy cores**: all CPU time on the machine during the step (`/proc/stat`): server + SIPp + other sessions\' work; drops while it is well below nproc point at scheduling/bursts or neighbours, not at a saturated server.',
    '- **RSS MB (sum)**: peak of the summed VmRSS (counts Kamailio\'s shared memory once per process); **PSS MB**: summed Pss at the end of the step (shared pages split fairly).',
    '- **sustained**: 0 failed, 0 unfinished, < 0.1 % retransmissions, 0 server socket drops. "SIPp-limited": SIPp sent < 97 % of the offered rate (it costs 25–34 µs CPU per REGISTER itself on these 2 cores), so compare CPU per operation past that point.',
    '',
  );
  if (r.register) {
    const contact = r.registerContact === 'plain' ? 'plain Contact without pn-*' : 'Contact with pn-provider=apns, pn-prid, pn-param';
    L.push(`## REGISTER / UDP (unique users, ${contact}, ${r.register.durationSec} s per step)`, '');
    L.push(...summaryTable(r.register, 'REGISTER'), '');
    L.push(...stepTable(r.register.steps, 'REGISTER'), '');
    for (const e of r.register.errors) L.push(`- error: ${e.server} at ${e.offeredRate}/s: ${e.error.split('\n')[0]}`);
    L.push('');
  }
  if (r.calls) {
    L.push(`## Proxied calls / UDP (SIPp UAC → server → SIPp UAS; INVITE/100/180/200/ACK/BYE/200, ${r.calls.durationSec} s per step)`, '');
    L.push(...summaryTable(r.calls, 'call'), '');
    L.push(...stepTable(r.calls.steps, 'call'), '');
    for (const e of r.calls.errors) L.push(`- error: ${e.server} at ${e.offeredRate}/s: ${e.error.split('\n')[0]}`);
    L.push('');
  }
  L.push('Charts: `sip-compare-register.svg`, `sip-compare-register-cpu.svg`, `sip-compare-calls.svg`, `sip-compare-calls-cpu.svg` (regenerate with `node --conditions=source --import tsx bench/charts.ts`).', '');
  return L.join('\n');
}
