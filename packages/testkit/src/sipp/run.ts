/**
 * Run SIPp (Debian package `sip-tester`) as a real SIP peer: a scenario (file or inline
 * XML), loopback only, bounded in calls and time. Used by the end-to-end tests and the
 * benchmarks.
 */

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SippOptions {
  /** Scenario XML text, or a path with `scenarioFile`. */
  scenario?: string;
  scenarioFile?: string;
  /** `127.0.0.1:5060` */
  remote: string;
  transport?: 'udp' | 'tcp';
  /** Number of calls (scenario runs). */
  calls?: number;
  /** Calls per second. */
  rate?: number;
  /** Max simultaneous calls (SIPp -l). */
  limit?: number;
  /** `-key name value` substitutions ([name] in the scenario). */
  keys?: Record<string, string>;
  /** Injection CSV text (first line SEQUENTIAL/RANDOM). */
  csv?: string;
  /** Local port (0 = SIPp picks). */
  localPort?: number;
  timeoutMs?: number;
  extraArgs?: string[];
}

export interface SippResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** SIPp's error log (unexpected messages, timeouts). */
  errors: string;
  successful: number;
  failed: number;
}

/** A scenario shipped in packages/testkit/scenarios, with `[name]` placeholders filled in. */
export function scenario(name: string, vars: Record<string, string | number> = {}): string {
  let text = readFileSync(new URL(`../../scenarios/${name}.xml`, import.meta.url), 'utf8');
  for (const [k, v] of Object.entries(vars)) text = text.split(`[${k}]`).join(String(v));
  return text;
}

export function sippAvailable(): boolean {
  return spawnSync('sh', ['-c', 'command -v sipp'], { stdio: 'ignore' }).status === 0;
}

/** A free loopback UDP+TCP port for SIPp's local socket (SIPp's own default is 5060). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const { createSocket } = await import('node:dgram');
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const ok = await new Promise<boolean>((resolve) => {
      const sock = createSocket('udp4');
      sock.once('error', () => resolve(false));
      sock.bind(port, '127.0.0.1', () => sock.close(() => resolve(true)));
    });
    if (ok) return port;
  }
}

export async function runSipp(options: SippOptions): Promise<SippResult> {
  const localPort = options.localPort ?? (await freePort());
  return runSippOn({ ...options, localPort });
}

function runSippOn(options: SippOptions): Promise<SippResult> {
  const dir = mkdtempSync(join(tmpdir(), 'sipp-'));
  let scenarioFile = options.scenarioFile;
  if (!scenarioFile) {
    scenarioFile = join(dir, 'scenario.xml');
    writeFileSync(scenarioFile, options.scenario ?? '');
  }
  const [host] = options.remote.split(':');
  if (!/^(127\.\d+\.\d+\.\d+|\[?::1\]?|localhost)$/.test(host)) throw new Error(`SIPp target must be loopback, got ${options.remote}`);
  const errorFile = join(dir, 'errors.log');
  const statFile = join(dir, 'stats.csv');
  const args = [
    options.remote,
    '-sf', scenarioFile,
    '-i', '127.0.0.1',
    '-p', String(options.localPort ?? 0),
    '-t', options.transport === 'tcp' ? 't1' : 'u1',
    '-m', String(options.calls ?? 1),
    '-r', String(options.rate ?? 10),
    '-l', String(options.limit ?? 100),
    '-nostdin',
    '-nd',
    '-timeout', `${Math.ceil((options.timeoutMs ?? 20_000) / 1000)}s`,
    '-timeout_error',
    '-trace_err', '-error_file', errorFile,
    '-trace_stat', '-stf', statFile, '-fd', '1',
  ];
  if (options.csv) {
    const csvFile = join(dir, 'inject.csv');
    writeFileSync(csvFile, options.csv);
    args.push('-inf', csvFile);
  }
  for (const [k, v] of Object.entries(options.keys ?? {})) args.push('-key', k, v);
  if (options.extraArgs) args.push(...options.extraArgs);

  return new Promise((resolve, reject) => {
    const child = spawn('sipp', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), (options.timeoutMs ?? 20_000) + 5000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      let errors = '';
      try {
        errors = spawnSync('cat', [errorFile]).stdout.toString();
      } catch {
        /* no error file */
      }
      const stats = parseStats(statFile);
      resolve({ exitCode: code, stdout, stderr, errors, ...stats });
    });
  });
}

function parseStats(file: string): { successful: number; failed: number } {
  const text = spawnSync('cat', [file]).stdout?.toString() ?? '';
  const lines = text.trim().split('\n');
  if (lines.length < 2) return { successful: 0, failed: 0 };
  const head = lines[0].split(';');
  const last = lines[lines.length - 1].split(';');
  const col = (name: string) => Number(last[head.indexOf(name)] ?? 0);
  return { successful: col('SuccessfulCall(C)'), failed: col('FailedCall(C)') };
}
