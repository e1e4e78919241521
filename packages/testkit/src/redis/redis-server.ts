/**
 * A real redis-server (Debian package `redis-server`) on loopback for the multi-node tests:
 * no persistence, a port of its own, stopped with the test. Restartable on the same port,
 * so a test can take Redis away under a running pushcall and bring it back. Also a replica
 * (`replicaOf`) and a Sentinel watching a primary, for failover tests.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../sipp/run.js';

export interface RedisServerHandle {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Stop the server (its data is gone: nothing is persisted). */
  stop(): Promise<void>;
  /** Start it again on the same port (after `stop`). */
  restart(): Promise<void>;
}

export async function startRedisServer(options: { port?: number; timeoutMs?: number; replicaOf?: number } = {}): Promise<RedisServerHandle> {
  const port = options.port ?? (await freePort());
  const timeoutMs = options.timeoutMs ?? 10_000;
  // Its own directory: a replica writes the primary's snapshot to disk while it syncs, even
  // with `--save ''` (a dump.rdb in the working directory otherwise).
  const dir = mkdtempSync(join(tmpdir(), 'pushcall-redis-'));
  const args = ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'];
  if (options.replicaOf !== undefined) args.push('--replicaof', '127.0.0.1', String(options.replicaOf));
  const start = () => {
    mkdirSync(dir, { recursive: true }); // again after a stop
    return launch(args, 'Ready to accept connections', timeoutMs);
  };
  let child: ChildProcess | undefined = await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      const running = child;
      child = undefined;
      if (running) await terminate(running);
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      if (child) throw new Error('redis-server is running');
      child = await start();
    },
  };
}

/**
 * A Redis Sentinel (redis-server in sentinel mode) watching the primary on `primaryPort` as
 * `masterName`, with a quorum of one and short timeouts, so that a test sees a failover in
 * seconds.
 */
export async function startRedisSentinel(options: { primaryPort: number; masterName: string; timeoutMs?: number }): Promise<RedisServerHandle> {
  const port = await freePort();
  const file = join(mkdtempSync(join(tmpdir(), 'pushcall-sentinel-')), 'sentinel.conf');
  writeFileSync(
    file,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `sentinel monitor ${options.masterName} 127.0.0.1 ${options.primaryPort} 1`,
      `sentinel down-after-milliseconds ${options.masterName} 1000`,
      `sentinel failover-timeout ${options.masterName} 5000`,
      '',
    ].join('\n'),
  );
  const child = await launch([file, '--sentinel'], '+monitor master', options.timeoutMs ?? 10_000);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: () => terminate(child),
    restart: () => Promise.reject(new Error('a Sentinel is not restarted')),
  };
}

function launch(args: string[], readyLine: string, timeoutMs: number): Promise<ChildProcess> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => fail(new Error(`redis-server did not start within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    const onError = (error: Error) => fail(new Error(`redis-server could not run (apt-get install -y redis-server): ${error.message}`));
    const onExit = (code: number | null) => fail(new Error(`redis-server exited (${code}) before it was ready:\n${output}`));
    child.on('error', onError);
    child.on('exit', onExit);
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(readyLine)) {
        clearTimeout(timer);
        child.off('exit', onExit);
        child.off('error', onError);
        resolve(child);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  });
}

function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
