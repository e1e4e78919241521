/**
 * The live heap of another Node process after a full garbage collection, read through its
 * inspector (the process is started with `--inspect=127.0.0.1:0`, loopback only). RSS alone
 * cannot tell a leak from V8 letting its heap grow before it collects; the heap after a
 * forced full GC can.
 *   const heap = await connectHeapSampler(stderrPath); await heap.sample(); heap.close();
 */
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';

export interface HeapSampler {
  /** Full GC in the target, then its used heap in bytes. */
  sample(): Promise<number>;
  close(): void;
}

export async function connectHeapSampler(stderrPath: string, timeoutMs = 20_000): Promise<HeapSampler> {
  const deadline = Date.now() + timeoutMs;
  let url: string | undefined;
  while (url === undefined) {
    url = /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(readFileSync(stderrPath, 'utf8'))?.[1];
    if (url !== undefined) break;
    if (Date.now() > deadline) throw new Error(`no inspector URL in ${stderrPath}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const socket = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  let nextId = 1;
  const pending = new Map<number, (result: unknown) => void>();
  socket.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { id?: number; result?: unknown };
    if (message.id === undefined) return; // an event, not an answer
    pending.get(message.id)?.(message.result);
    pending.delete(message.id);
  });
  const call = (method: string): Promise<unknown> =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      socket.send(JSON.stringify({ id, method }));
    });
  return {
    async sample() {
      await call('HeapProfiler.collectGarbage');
      const usage = (await call('Runtime.getHeapUsage')) as { usedSize: number };
      return usage.usedSize;
    },
    close: () => socket.close(),
  };
}
