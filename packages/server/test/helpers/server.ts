import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConfigInput, validateConfig } from '../../src/config/load.js';
import { PushcallServer } from '../../src/server.js';
import type { Clock } from '@pushcall/sip';

export const TEST_USERS = [
  { username: 'alice', password: 'alice-secret' },
  { username: 'bob', password: 'bob-secret' },
];

export function tempDir(prefix = 'pushcall-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A real server on loopback with ephemeral ports and a SQLite store in a temp dir. */
export async function startTestServer(
  overrides: Partial<ConfigInput> = {},
  options: { dataDir?: string; providers?: string[]; clock?: Clock } = {},
): Promise<PushcallServer> {
  const config = validateConfig({
    listen: ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0'],
    dataDir: options.dataDir ?? tempDir(),
    admin: { listen: '127.0.0.1:0' },
    log: { level: 'silent' },
    ...overrides,
    auth: { users: TEST_USERS, ...(overrides.auth as object) },
  });
  const server = new PushcallServer({ config, supportedProviders: options.providers ?? ['apns', 'fcm', 'webpush'], clock: options.clock });
  await server.start();
  return server;
}

/** Send one datagram from a fresh loopback socket and wait for the first reply. */
export async function udpExchange(port: number, text: string, timeoutMs = 2000): Promise<string | undefined> {
  const { createSocket } = await import('node:dgram');
  const socket = createSocket('udp4');
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.close();
      resolve(undefined);
    }, timeoutMs);
    socket.once('message', (msg) => {
      clearTimeout(timer);
      socket.close();
      resolve(msg.toString());
    });
    socket.bind(0, '127.0.0.1', () => socket.send(Buffer.from(text), port, '127.0.0.1'));
  });
}
