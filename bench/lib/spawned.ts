// Every process the benchmark starts goes through here, so that all of them are stopped at
// the end, on an error, and on Ctrl-C / SIGTERM.
//
// Each process is started detached (its own process group, so forked children such as
// Kamailio's workers can be signalled as a group) under coreutils `timeout`, a hard cap on
// its lifetime that holds even if this harness itself is SIGKILLed.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { processTree } from './proc.js';

export interface Spawned {
  name: string;
  /** pid of the group leader (the `timeout` wrapper) */
  pid: number;
  child: ChildProcess;
  stdoutPath: string;
  stderrPath: string;
  /** resolves with the exit code (or 128+signal) of the wrapper when it exits */
  exited: Promise<number>;
  isRunning(): boolean;
}

const live = new Set<Spawned>();

export interface SpawnOptions {
  name: string;
  cmd: string;
  args: string[];
  cwd: string;
  /** stdout/stderr go to <logBase>.out / <logBase>.err */
  logBase: string;
  /** hard cap on the lifetime, seconds: the `timeout` wrapper kills the group after it */
  maxLifetimeSec: number;
  env?: NodeJS.ProcessEnv;
  /** raise RLIMIT_NOFILE first (SIPp keeps one call object per open call) */
  nofile?: number;
}

export function spawnTracked(o: SpawnOptions): Spawned {
  installCleanupHandlers();
  const stdoutPath = `${o.logBase}.out`;
  const stderrPath = `${o.logBase}.err`;
  const out = openSync(stdoutPath, 'w');
  const err = openSync(stderrPath, 'w');
  const inner = o.nofile
    ? ['sh', '-c', `ulimit -n ${o.nofile} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`, 'sh', o.cmd, ...o.args]
    : [o.cmd, ...o.args];
  const child = spawn('timeout', ['--kill-after=5', `${Math.ceil(o.maxLifetimeSec)}`, ...inner], {
    cwd: o.cwd,
    env: o.env ?? process.env,
    detached: true,
    stdio: ['ignore', out, err],
  });
  closeSync(out);
  closeSync(err);
  if (child.pid === undefined) throw new Error(`could not start ${o.cmd}`);
  let running = true;
  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => {
      running = false;
      live.delete(s);
      resolve(code ?? 128 + (signal ? signalNumber(signal) : 0));
    });
    child.once('error', () => {
      running = false;
      live.delete(s);
      resolve(-1);
    });
  });
  const s: Spawned = {
    name: o.name,
    pid: child.pid,
    child,
    stdoutPath,
    stderrPath,
    exited,
    isRunning: () => running,
  };
  live.add(s);
  return s;
}

function signalNumber(sig: NodeJS.Signals): number {
  const table: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGUSR1: 10, SIGTERM: 15 };
  return table[sig] ?? 0;
}

function killGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    /* group already gone */
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Stop a process and its group: SIGTERM to the wrapper (forwarded to the program, which
 * stops its own children), then SIGKILL to the whole group after `graceMs`.
 */
export async function stopTracked(s: Spawned, graceMs = 5000): Promise<number> {
  if (s.isRunning()) {
    try {
      process.kill(s.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    const deadline = Date.now() + graceMs;
    while (s.isRunning() && Date.now() < deadline) await sleep(50);
  }
  // children may outlive the leader (or ignore SIGTERM): kill what is left of the group
  const leftovers = () => processTree(s.pid).length > 0 || groupAlive(s.pid);
  if (s.isRunning() || leftovers()) {
    killGroup(s.pid, 'SIGKILL');
    const deadline = Date.now() + 3000;
    while ((s.isRunning() || groupAlive(s.pid)) && Date.now() < deadline) await sleep(50);
  }
  return s.exited;
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Synchronous last resort (process 'exit', signals): SIGKILL every tracked group. */
export function killAllNow(): void {
  for (const s of live) killGroup(s.pid, 'SIGKILL');
  live.clear();
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((s) => stopTracked(s, 2000)));
}

let installed = false;
function installCleanupHandlers(): void {
  if (installed) return;
  installed = true;
  process.once('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: stopping ${live.size} benchmark process group(s)\n`);
      killAllNow();
      process.exit(128 + signalNumber(sig));
    });
  }
}

export function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** The first live descendant of a tracked wrapper whose comm matches (e.g. the real sipp). */
export function findProgram(s: Spawned, comm: string): number | undefined {
  return processTree(s.pid).find((p) => p.comm === comm && p.pid !== s.pid)?.pid;
}
