// Running SIPp for the benchmark and reading its statistics.
//
// Flags that matter on this machine (see /work/shared/reference/benchmarking.md):
//   -i 127.0.0.1        else SIPp writes the host's other address into Via/Contact
//   -l <max open calls> explicit: the default (3 x call length x rate) throttles SIPp itself
//                       instead of showing server overload
//   -nd                 no default behaviour (no BYE/CANCEL on timeout, no auto-answers)
//   -buff_size 4194304  4 MiB socket buffers (rmem_max here is 4 MiB)
//   -trace_stat -fd 1 -stf <csv>   one statistics row per second, plus a final one at exit
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuDelta, cpuSample, type CpuSample, udpPortStats } from './proc.js';
import { findProgram, spawnTracked, stopTracked, tail, type Spawned } from './spawned.js';

export const SCENARIO_DIR = fileURLToPath(new URL('../scenarios/', import.meta.url));
export const scenario = (name: string): string => join(SCENARIO_DIR, name);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Injection file for register.xml: SEQUENTIAL, one line per REGISTER,
 * field0 = user (unique), field1 = 64-hex APNs-style device token (pn-prid).
 */
export async function writeRegisterCsv(path: string, count: number, userPrefix: string): Promise<void> {
  const out = createWriteStream(path);
  let failure: Error | undefined;
  out.on('error', (e) => {
    failure = e;
  });
  const write = async (s: string) => {
    if (failure) throw failure;
    if (!out.write(s)) await new Promise<void>((resolve) => out.once('drain', resolve));
  };
  await write('SEQUENTIAL\n');
  const chunk = 4096;
  for (let i = 0; i < count; i += chunk) {
    const n = Math.min(chunk, count - i);
    const rnd = randomBytes(32 * n).toString('hex');
    let s = '';
    for (let j = 0; j < n; j++) s += `${userPrefix}${i + j};${rnd.slice(j * 64, j * 64 + 64)}\n`;
    await write(s);
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

export interface SippSample {
  /** seconds since SIPp start */
  t: number;
  created: number;
  successful: number;
  failed: number;
  retransmissions: number;
  current: number;
}

export interface SippStats {
  /** final cumulative counters */
  created: number;
  successful: number;
  failed: number;
  retransmissions: number;
  /** calls still open when SIPp stopped (neither successful nor failed) */
  unfinished: number;
  outOfCallMsgs: number;
  deadCallMsgs: number;
  /** non-zero Failed* counters, by SIPp's column name without "(C)" */
  failedBy: Record<string, number>;
  targetRate: number;
  elapsedSec: number;
  /** calls created per second while SIPp was still creating calls (what was really offered) */
  achievedRate: number;
  /** successful calls per second over the same window */
  successRate: number;
  /** length of that window, s */
  creationSec: number;
  samples: SippSample[];
}

function epochOf(field: string | undefined): number {
  // "2026-11-26<TAB>10:10:10.054025<TAB>1795687810.054025"
  const parts = (field ?? '').split('\t');
  return Number(parts[parts.length - 1]);
}

/** Parse a SIPp -trace_stat CSV (';'-separated, header row, one row per -fd period). */
export function parseStatCsv(text: string): SippStats {
  const lines = text.split('\n').filter((l) => l.trim().length > 0);
  if (lines.length < 2) throw new Error('SIPp statistics file has no data rows');
  const header = (lines[0] as string).split(';');
  const rows = lines.slice(1).map((l) => {
    const cols = l.split(';');
    const row = new Map<string, string>();
    header.forEach((h, i) => row.set(h, cols[i] ?? ''));
    return row;
  });
  const num = (row: Map<string, string>, col: string): number => Number(row.get(col) ?? 0) || 0;
  const start = epochOf(rows[0]?.get('StartTime'));
  const samples: SippSample[] = rows.map((r) => ({
    t: epochOf(r.get('CurrentTime')) - start,
    created: num(r, 'TotalCallCreated'),
    successful: num(r, 'SuccessfulCall(C)'),
    failed: num(r, 'FailedCall(C)'),
    retransmissions: num(r, 'Retransmissions(C)'),
    current: num(r, 'CurrentCall'),
  }));
  const last = rows[rows.length - 1] as Map<string, string>;
  const final = samples[samples.length - 1] as SippSample;
  const failedBy: Record<string, number> = {};
  for (const h of header) {
    if (h.startsWith('Failed') && h.endsWith('(C)') && h !== 'FailedCall(C)') {
      const v = num(last, h);
      if (v > 0) failedBy[h.slice(0, -3)] = v;
    }
  }
  // Creation window: from the first row to the last row before the final count was reached.
  const first = samples[0] as SippSample;
  let k = -1;
  for (let i = 0; i < samples.length; i++) if ((samples[i] as SippSample).created < final.created) k = i;
  let achievedRate: number;
  let successRate: number;
  let creationSec: number;
  const sk = k >= 1 ? (samples[k] as SippSample) : undefined;
  if (sk !== undefined && sk.t - first.t >= 0.5) {
    creationSec = sk.t - first.t;
    achievedRate = (sk.created - first.created) / creationSec;
    successRate = (sk.successful - first.successful) / creationSec;
  } else {
    // everything was created within the first period
    const done = samples[k + 1] ?? final;
    creationSec = Math.max(done.t - first.t, 1e-3);
    achievedRate = final.created / creationSec;
    successRate = done.successful / creationSec;
  }
  // A window ending at the last row misses nothing; but if creation ran to the end (SIPp
  // could not finish in time), fall back to the whole run.
  if (k === samples.length - 1) {
    creationSec = Math.max(final.t - first.t, 1e-3);
    achievedRate = final.created / creationSec;
    successRate = final.successful / creationSec;
  }
  const created = final.created;
  return {
    created,
    successful: final.successful,
    failed: final.failed,
    retransmissions: final.retransmissions,
    unfinished: Math.max(0, created - final.successful - final.failed),
    outOfCallMsgs: num(last, 'OutOfCallMsgs(C)'),
    deadCallMsgs: num(last, 'DeadCallMsgs(C)'),
    failedBy,
    targetRate: num(last, 'TargetRate'),
    elapsedSec: final.t,
    achievedRate,
    successRate,
    creationSec,
    samples,
  };
}

export interface SippOptions {
  /** label for log files */
  name: string;
  scenarioFile: string;
  /** "host:port" of the peer (omit for a UAS that only answers) */
  remote?: string;
  localPort: number;
  /** calls per second (-r), per 1 s (-rp 1000) */
  rate?: number;
  /** total calls (-m): the run ends when they are all done */
  calls: number;
  /** max simultaneous calls (-l) */
  maxOpen: number;
  /** global timeout (-timeout), seconds: SIPp quits even if calls are still open */
  timeoutSec: number;
  workDir: string;
  injectFile?: string;
  /** -s: the user part of the Request-URI ([service]) */
  service?: string;
  /** -key name value: [name] in the scenario */
  keys?: Record<string, string>;
  /** -d: length of <pause/> in ms */
  pauseMs?: number;
  extraArgs?: string[];
}

export function sippArgs(o: SippOptions, statPath: string, screenPath: string, errorPath: string): string[] {
  const a: string[] = [];
  if (o.remote) a.push(o.remote);
  a.push('-sf', o.scenarioFile);
  a.push('-i', '127.0.0.1', '-p', String(o.localPort), '-t', 'u1');
  a.push('-nd', '-buff_size', '4194304');
  a.push('-l', String(o.maxOpen), '-m', String(o.calls));
  if (o.rate !== undefined) a.push('-r', String(o.rate), '-rp', '1000');
  a.push('-timeout', `${Math.ceil(o.timeoutSec)}s`);
  a.push('-nostdin', '-trace_stat', '-fd', '1', '-stf', statPath, '-trace_screen', '-screen_file', screenPath);
  // unexpected messages (e.g. a 401/555 instead of 200), capped at 1 MB
  a.push('-trace_err', '-error_file', errorPath, '-max_log_size', '1048576');
  if (o.injectFile) a.push('-inf', o.injectFile);
  if (o.service) a.push('-s', o.service);
  for (const [k, v] of Object.entries(o.keys ?? {})) a.push('-key', k, v);
  if (o.pauseMs !== undefined) a.push('-d', String(o.pauseMs));
  a.push(...(o.extraArgs ?? []));
  return a;
}

export interface SippResult {
  name: string;
  command: string;
  exitCode: number;
  stats: SippStats;
  /** SIPp's own CPU per created call, µs (sampled every 250 ms: approximate) */
  clientCpuUsPerCall: number | null;
  /** kernel drops on SIPp's own socket (its receive buffer overflowed) */
  clientSocketDrops: number;
  /** first lines of unexpected messages, with counts (from the -trace_err log, first 1 MB) */
  unexpected: Record<string, number>;
  stderrTail: string;
}

/** Count the start lines ("SIP/2.0 555 Push Notification Service Not Supported") in a SIPp error log. */
export function unexpectedMessages(path: string): Record<string, number> {
  if (!existsSync(path)) return {};
  const out: Record<string, number> = {};
  // "...: Continuing call on unexpected message for Call-Id '...': while expecting '200' (index 1), received 'SIP/2.0 555 ..."
  for (const m of readFileSync(path, 'utf8').matchAll(/received '(SIP\/2\.0 \d{3} [^\r\n']*|[A-Z]+ [^ \r\n']+ SIP\/2\.0)/g)) {
    const key = (m[1] as string).replace(/^([A-Z]+) [^ ]+ SIP\/2\.0$/, '$1 request');
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

/** A running SIPp instance (UAC or UAS). */
export class SippRun {
  readonly proc: Spawned;
  readonly command: string;
  private readonly statPath: string;
  private readonly errorPath: string;
  private readonly o: SippOptions;
  private sampler: NodeJS.Timeout;
  private cpuFirst: CpuSample | undefined;
  private cpuLast: CpuSample | undefined;
  private drops = 0;

  constructor(o: SippOptions) {
    if (udpPortStats(o.localPort).sockets > 0) {
      throw new Error(`udp port ${o.localPort} (SIPp ${o.name}) is already in use by another process`);
    }
    this.o = o;
    this.statPath = join(o.workDir, `${o.name}.stat.csv`);
    this.errorPath = join(o.workDir, `${o.name}.errors.log`);
    const args = sippArgs(o, this.statPath, join(o.workDir, `${o.name}.screen.log`), this.errorPath);
    this.command = ['sipp', ...args].join(' ');
    this.proc = spawnTracked({
      name: o.name,
      cmd: 'sipp',
      args,
      cwd: o.workDir,
      logBase: join(o.workDir, o.name),
      maxLifetimeSec: o.timeoutSec + 30,
      nofile: Math.max(65536, o.maxOpen + 4096),
    });
    this.sampler = setInterval(() => this.sample(), 250);
    this.sample();
  }

  private sample(): void {
    const pid = findProgram(this.proc, 'sipp');
    if (pid !== undefined) {
      const s = cpuSample([pid]);
      if (this.cpuFirst === undefined) this.cpuFirst = s;
      this.cpuLast = s;
    }
    const u = udpPortStats(this.o.localPort);
    if (u.sockets > 0) this.drops = Math.max(this.drops, u.drops);
  }

  /** Wait for SIPp to finish on its own (all -m calls done, or -timeout). */
  async wait(): Promise<SippResult> {
    const code = await this.proc.exited;
    return this.finish(code);
  }

  /** Ask SIPp to stop (SIGUSR1 = smooth quit, like pressing q), force after graceMs. */
  async stop(graceMs = 4000): Promise<SippResult> {
    const pid = findProgram(this.proc, 'sipp');
    if (pid !== undefined && this.proc.isRunning()) {
      try {
        process.kill(pid, 'SIGUSR1');
      } catch {
        /* gone */
      }
      const deadline = Date.now() + graceMs;
      while (this.proc.isRunning() && Date.now() < deadline) await sleep(50);
    }
    const code = await stopTracked(this.proc, 1000);
    return this.finish(code);
  }

  private finish(exitCode: number): SippResult {
    clearInterval(this.sampler);
    if (!existsSync(this.statPath)) {
      throw new Error(
        `SIPp (${this.o.name}) wrote no statistics, exit ${exitCode}\n  ${this.command}\n${tail(this.proc.stderrPath)}\n${tail(this.proc.stdoutPath)}`,
      );
    }
    const stats = parseStatCsv(readFileSync(this.statPath, 'utf8'));
    let clientCpuUsPerCall: number | null = null;
    if (this.cpuFirst && this.cpuLast && stats.created > 0) {
      clientCpuUsPerCall = cpuDelta(this.cpuFirst, this.cpuLast).us / stats.created;
    }
    return {
      name: this.o.name,
      command: this.command,
      exitCode,
      stats,
      clientCpuUsPerCall,
      clientSocketDrops: this.drops,
      unexpected: unexpectedMessages(this.errorPath),
      stderrTail: tail(this.proc.stderrPath, 5),
    };
  }
}

/** Run SIPp to completion. */
export function runSipp(o: SippOptions): Promise<SippResult> {
  return new SippRun(o).wait();
}
