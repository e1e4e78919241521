// Linux /proc readers for the SIP benchmark: CPU time, memory and UDP socket drops of the
// server under test (single process like node, or a forking one like Kamailio), plus the
// machine description and tool versions that go into the results.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgrp: number;
  /** user + system CPU time of the whole process (all threads), in clock ticks */
  ticks: number;
}

let clkTck: number | undefined;
/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat (almost always 100). */
export function clockTicksPerSecond(): number {
  if (clkTck === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number.parseInt((r.stdout ?? '').trim(), 10);
    clkTck = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clkTck;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // process gone, or not permitted
  }
}

/** Parse /proc/<pid>/stat. The comm field is in parentheses and may contain spaces. */
export function readProcStat(pid: number): ProcStat | undefined {
  const text = readText(`/proc/${pid}/stat`);
  if (text === undefined) return undefined;
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < 0) return undefined;
  const comm = text.slice(open + 1, close);
  // fields after ")": 3=state 4=ppid 5=pgrp ... 14=utime 15=stime (1-based, man 5 proc)
  const rest = text.slice(close + 2).split(' ');
  const f = (n: number): string => rest[n - 3] ?? '0';
  return {
    pid,
    comm,
    state: f(3),
    ppid: Number(f(4)),
    pgrp: Number(f(5)),
    ticks: Number(f(14)) + Number(f(15)),
  };
}

export function allPids(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (/^\d+$/.test(name)) out.push(Number(name));
  }
  return out;
}

/**
 * The live (non-zombie) processes of a server: the root, every descendant (by parent pid),
 * and every process in the root's process group when the root leads one (the harness spawns
 * servers detached, so each server is its own group: Kamailio's forked children stay in it).
 */
export function processTree(rootPid: number): ProcStat[] {
  const stats = new Map<number, ProcStat>();
  for (const pid of allPids()) {
    const s = readProcStat(pid);
    if (s !== undefined) stats.set(pid, s);
  }
  const root = stats.get(rootPid);
  if (root === undefined || root.state === 'Z') return [];
  const children = new Map<number, number[]>();
  for (const s of stats.values()) {
    const list = children.get(s.ppid) ?? [];
    list.push(s.pid);
    children.set(s.ppid, list);
  }
  const picked = new Set<number>([rootPid]);
  const queue = [rootPid];
  while (queue.length > 0) {
    const p = queue.pop() as number;
    for (const c of children.get(p) ?? []) {
      if (!picked.has(c)) {
        picked.add(c);
        queue.push(c);
      }
    }
  }
  if (root.pgrp === rootPid) {
    for (const s of stats.values()) if (s.pgrp === rootPid) picked.add(s.pid);
  }
  return [...picked].map((p) => stats.get(p)).filter((s): s is ProcStat => s !== undefined && s.state !== 'Z');
}

/**
 * /proc/<pid>/task/<tid>/schedstat summed over all threads: its first field (ns on CPU) and
 * its third (time slices run: each wake-up or preemption starts one).
 */
function schedStat(pid: number): { ns: number; slices: number } {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return { ns: 0, slices: 0 };
  }
  let ns = 0;
  let slices = 0;
  for (const tid of tids) {
    const t = readText(`/proc/${pid}/task/${tid}/schedstat`);
    if (t === undefined) continue;
    const fields = t.split(' ');
    ns += Number(fields[0]) || 0;
    slices += Number(fields[2]) || 0;
  }
  return { ns, slices };
}

export interface CpuSample {
  /** wall clock, ms (performance.now) */
  at: number;
  pids: number[];
  /** utime+stime from /proc/<pid>/stat summed over processes, in µs (10 ms granularity per process) */
  statUs: number;
  /** on-CPU time from per-thread schedstat, in µs (ns granularity; 0 if the kernel lacks it) */
  schedUs: number;
  /** time slices run, all threads (schedstat; 0 if the kernel lacks it) */
  slices: number;
}

/** CPU time of a set of processes (all threads). Take one before and one after a step. */
export function cpuSample(pids: number[]): CpuSample {
  const hz = clockTicksPerSecond();
  let ticks = 0;
  let ns = 0;
  let slices = 0;
  for (const pid of pids) {
    const s = readProcStat(pid);
    if (s === undefined) continue;
    ticks += s.ticks;
    const sched = schedStat(pid);
    ns += sched.ns;
    slices += sched.slices;
  }
  return { at: performance.now(), pids: [...pids], statUs: (ticks * 1e6) / hz, schedUs: ns / 1e3, slices };
}

export interface CpuDelta {
  /** the figure to use: schedstat when available for every process, else stat ticks */
  us: number;
  statUs: number;
  schedUs: number;
  source: 'schedstat' | 'stat';
  /** time slices the server's threads ran: about one per wake-up */
  slices: number;
  wallMs: number;
}

/** CPU used between two samples; only processes present in both count (fresh server: same set). */
export function cpuDelta(before: CpuSample, after: CpuSample): CpuDelta {
  const statUs = Math.max(0, after.statUs - before.statUs);
  const schedUs = Math.max(0, after.schedUs - before.schedUs);
  // schedstat can be compiled out (then all zeros); trust it only when it saw time
  const useSched = schedUs > 0 && after.schedUs > 0;
  return {
    us: useSched ? schedUs : statUs,
    statUs,
    schedUs,
    source: useSched ? 'schedstat' : 'stat',
    slices: Math.max(0, after.slices - before.slices),
    wallMs: after.at - before.at,
  };
}

function statusKb(pid: number, field: string): number {
  const t = readText(`/proc/${pid}/status`);
  const m = t?.match(new RegExp(`^${field}:\\s+(\\d+)\\s*kB`, 'm'));
  return m ? Number(m[1]) : 0;
}

export interface MemSample {
  /** sum of VmRSS (counts shared memory once per process: overstates a forking server) */
  rssKb: number;
  /** sum of Pss from smaps_rollup (shared pages divided among sharers: the fair total) */
  pssKb: number;
  processes: number;
}

export function memSample(pids: number[]): MemSample {
  let rss = 0;
  let pss = 0;
  let n = 0;
  for (const pid of pids) {
    const r = statusKb(pid, 'VmRSS');
    if (r === 0 && readText(`/proc/${pid}/status`) === undefined) continue;
    n++;
    rss += r;
    const roll = readText(`/proc/${pid}/smaps_rollup`);
    const m = roll?.match(/^Pss:\s+(\d+)\s*kB/m);
    pss += m ? Number(m[1]) : r;
  }
  return { rssKb: rss, pssKb: pss, processes: n };
}

export interface UdpPortStats {
  sockets: number;
  /** kernel receive-queue overflow drops, summed over the sockets bound to the port */
  drops: number;
  /** bytes waiting in the receive queues right now */
  rxQueue: number;
  inodes: number[];
}

/**
 * Sockets bound to a local UDP port, from /proc/net/udp and /proc/net/udp6
 * (`local_address` is HEXIP:HEXPORT, `drops` is the last column). Counters belong to the
 * socket: read them before its owner exits.
 */
export function udpPortStats(port: number): UdpPortStats {
  const out: UdpPortStats = { sockets: 0, drops: 0, rxQueue: 0, inodes: [] };
  const want = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    const text = readText(file);
    if (text === undefined) continue;
    const lines = text.split('\n');
    const header = (lines[0] ?? '').trim().split(/\s+/);
    const dropsIdx = header.indexOf('drops');
    for (const line of lines.slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const local = cols[1] ?? '';
      if (local.slice(local.lastIndexOf(':') + 1).toUpperCase() !== want) continue;
      out.sockets++;
      // header "tx_queue rx_queue" is one column "TX:RX" in the data rows, and
      // "tr tm->when" is one "TR:WHEN" column, so the data row is shorter than the header:
      // drops is the last data column either way.
      const drops = Number(cols[cols.length - 1]);
      out.drops += Number.isFinite(drops) && dropsIdx >= 0 ? drops : 0;
      const q = (cols[4] ?? '0:0').split(':');
      out.rxQueue += Number.parseInt(q[1] ?? '0', 16) || 0;
      out.inodes.push(Number(cols[9]));
    }
  }
  return out;
}

export interface CpuInfo {
  model: string;
  nproc: number;
  kernel: string;
  memTotalMb: number;
}

export function cpuInfo(): CpuInfo {
  const text = readText('/proc/cpuinfo') ?? '';
  const m = text.match(/^model name\s*:\s*(.+)$/m);
  const nprocOut = spawnSync('nproc', [], { encoding: 'utf8' }).stdout ?? '';
  const nproc = Number.parseInt(nprocOut.trim(), 10);
  return {
    model: m?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown',
    nproc: Number.isFinite(nproc) ? nproc : cpus().length,
    kernel: release(),
    memTotalMb: Math.round(totalmem() / 1048576),
  };
}

function firstLine(cmd: string, args: string[], pattern?: RegExp): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) return null;
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const hit = pattern ? lines.find((l) => pattern.test(l)) : lines[0];
  return hit ?? null;
}

export interface Versions {
  node: string;
  sipp: string | null;
  kamailio: string | null;
}

export function versions(): Versions {
  return {
    node: process.version,
    sipp: firstLine('sipp', ['-v'], /SIPp v/)?.replace(/\.$/, '') ?? null,
    kamailio: firstLine('kamailio', ['-v'], /^version:/)?.replace(/^version:\s*/, '') ?? null,
  };
}

export interface SystemCpuSample {
  at: number;
  busyTicks: number;
  stealTicks: number;
}

/** Whole-machine CPU from /proc/stat: busy (everything but idle/iowait) and steal ticks. */
export function systemCpuSample(): SystemCpuSample {
  const line = (readText('/proc/stat') ?? '').split('\n')[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  return { at: performance.now(), busyTicks: user + nice + system + irq + softirq + steal, stealTicks: steal };
}

/** Machine busy and steal time between two samples, in cores (nproc = all busy). */
export function systemCpuDelta(a: SystemCpuSample, b: SystemCpuSample): { busyCores: number; stealCores: number } {
  const sec = Math.max((b.at - a.at) / 1000, 1e-3);
  const hz = clockTicksPerSecond();
  return { busyCores: (b.busyTicks - a.busyTicks) / hz / sec, stealCores: (b.stealTicks - a.stealTicks) / hz / sec };
}
