/**
 * `pushcall serve` as a process, from the TypeScript sources (npm start) and compiled
 * (`npm run build`, what deployments and the SIP benchmark run): it starts on the given
 * listener, registers phones, and on SIGTERM exits 0 with every acknowledged binding on disk.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SqliteBindingStore } from '../../src/location/sqlite-store.js';
import { tempDir, udpExchange } from '../helpers/server.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const DIST_MAIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const BUILD = new URL('../../../../scripts/build.mjs', import.meta.url).pathname;
const REPO = new URL('../../../../', import.meta.url).pathname;

async function freeUdpPort(): Promise<number> {
  const { createSocket } = await import('node:dgram');
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('SIGTERM stops pushcall serve cleanly and keeps every acknowledged binding', () => serveAndStop(['--conditions=source', '--import', 'tsx', MAIN]));

test('the compiled CLI (npm run build) serves and stops the same way', () => {
  execFileSync(process.execPath, [BUILD], { cwd: REPO, stdio: 'pipe' });
  return serveAndStop([DIST_MAIN]);
});

async function serveAndStop(entry: string[]): Promise<void> {
  const dir = tempDir();
  const configFile = join(dir, 'pushcall.yaml');
  writeFileSync(configFile, 'auth:\n  mode: open\nadmin:\n  enabled: false\nlog:\n  level: info\n');
  const port = await freeUdpPort();
  const child = spawn(process.execPath, [...entry, 'serve', '--config', configFile, '--listen', `udp:127.0.0.1:${port}`, '--data-dir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    for (let i = 0; i < 100 && !out.includes('pushcall listening'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, /pushcall listening/);
    const replies: string[] = [];
    for (let i = 0; i < 20; i++) {
      const reply = await udpExchange(
        port,
        [
          'REGISTER sip:127.0.0.1 SIP/2.0',
          `Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKsig${i};rport`,
          'Max-Forwards: 70',
          `From: <sip:user${i}@127.0.0.1>;tag=${i}`,
          `To: <sip:user${i}@127.0.0.1>`,
          `Call-ID: sigterm-${i}`,
          'CSeq: 1 REGISTER',
          `Contact: <sip:user${i}@127.0.0.1:9>`,
          'Expires: 600',
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n'),
      );
      replies.push(reply ?? '');
    }
    assert.ok(replies.every((r) => r.startsWith('SIP/2.0 200 OK')), 'every REGISTER acknowledged');
    child.kill('SIGTERM');
    assert.equal(await exited, 0, out);
    assert.match(out, /pushcall stopped/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  const store = new SqliteBindingStore(join(dir, 'bindings.sqlite'));
  const all = await store.all();
  await store.close();
  assert.equal(all.length, 20, 'all 20 acknowledged bindings are on disk after SIGTERM');
}
