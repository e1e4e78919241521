/**
 * A real redis-server (Debian package `redis-server`) on loopback for the multi-node tests:
 * no persistence, a port of its own, stopped with the test. Restartable on the same port,
 * so a test can take Redis away under a running pushcall and bring it back.
 */

import { type ChildProcess, spawn } from 'node:child_process';
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

export async function startRedisServer(options: { port?: number; timeoutMs?: number } = {}): Promise<RedisServerHandle> {
  const port = options.port ?? (await freePort());
  const timeoutMs = options.timeoutMs ?? 10_000;
  let child: ChildProcess | undefined = await launch(port, timeoutMs);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      const running = child;
      child = undefined;
      if (running) await terminate(running);
    },
    async restart() {
      if (child) throw new Error('redis-server is running');
      child = await launch(port, timeoutMs);
    },
  };
}

function launch(port: number, timeoutMs: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
      if (output.includes('Ready to accept connections')) {
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
