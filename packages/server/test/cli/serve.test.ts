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
import { validateConfig } from '../../src/config/load.js';
import { TEST_USERS, startTestServer, tempDir, udpExchange } from '../helpers/server.js';

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

test('SIGHUP reloads the configuration: trusted peers apply at once, a bad file changes nothing, other changes are reported as needing a restart', async () => {
  const dir = tempDir();
  const configFile = join(dir, 'pushcall.yaml');
  const base = 'admin:\n  enabled: false\nlog:\n  level: info\nauth:\n  users:\n    - { username: alice, password: alice-secret }\n';
  writeFileSync(configFile, base);
  const port = await freeUdpPort();
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', MAIN, 'serve', '--config', configFile, '--listen', `udp:127.0.0.1:${port}`, '--data-dir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  /** The final response to an INVITE from a stranger (the 100 Trying comes first). */
  const finalOf = async (i: number): Promise<string> => {
    const { createSocket } = await import('node:dgram');
    const socket = createSocket('udp4');
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    const local = socket.address().port;
    try {
      const final = new Promise<string>((resolve) => {
        socket.on('message', (m) => {
          const text = m.toString();
          if (!/^SIP\/2\.0 1\d\d /.test(text)) resolve(text);
        });
        setTimeout(() => resolve(''), 3000);
      });
      const text = [
        'INVITE sip:nobody@127.0.0.1 SIP/2.0',
        `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bKhup${i};rport`,
        'Max-Forwards: 70',
        `From: <sip:pbx@127.0.0.1>;tag=h${i}`,
        'To: <sip:nobody@127.0.0.1>',
        `Call-ID: sighup-${i}`,
        'CSeq: 1 INVITE',
        `Contact: <sip:pbx@127.0.0.1:${local}>`,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      socket.send(text, port, '127.0.0.1');
      return await final;
    } finally {
      socket.close();
    }
  };
  const waitFor = async (text: string) => {
    for (let i = 0; i < 100 && !out.includes(text); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(out.includes(text), `${text} in:\n${out}`);
  };
  try {
    await waitFor('pushcall listening');
    assert.match(await finalOf(1), /^SIP\/2\.0 407 /, 'a stranger is challenged');

    writeFileSync(configFile, `${base}  trustedPeers: [127.0.0.1]\n`);
    child.kill('SIGHUP');
    await waitFor('"applied":["auth.trustedPeers"]');
    assert.match(await finalOf(2), /^SIP\/2\.0 480 /, 'now trusted: no challenge, and nobody is registered');

    writeFileSync(configFile, `${base}  trustedPeers: [not-an-address]\n`);
    child.kill('SIGHUP');
    await waitFor('configuration not reloaded');
    assert.match(out, /auth\.trustedPeers\.0: expected an IPv4\/IPv6 address/);
    assert.match(await finalOf(3), /^SIP\/2\.0 480 /, 'the bad file changed nothing');

    writeFileSync(configFile, `${base}  trustedPeers: [127.0.0.1]\nregistrar:\n  minExpires: 120\n`);
    child.kill('SIGHUP');
    await waitFor('"needsRestart":["registrar"]');
    child.kill('SIGTERM');
    assert.equal(await exited, 0, out);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('reload applies users, trusted peers and the log level; lists the rest as needing a restart', async () => {
  const server = await startTestServer();
  try {
    assert.equal(server.auth?.hasUser('carol'), false);
    const next = validateConfig({
      ...structuredClone(server.config),
      auth: { ...structuredClone(server.config.auth), users: [...TEST_USERS, { username: 'carol', password: 'carol-secret' }], trustedPeers: ['10.0.0.0/8'] },
      log: { level: 'debug' },
      registrar: { ...structuredClone(server.config.registrar), minExpires: 90 },
    } as never);
    const result = server.reload(next);
    assert.deepEqual(result.applied.sort(), ['auth.trustedPeers', 'auth.users', 'log.level']);
    assert.deepEqual(result.needsRestart, ['registrar']);
    assert.equal(server.auth?.hasUser('carol'), true);
    assert.equal(server.auth?.hasUser('alice'), true);
    assert.deepEqual(server.config.auth.trustedPeers, ['10.0.0.0/8']);
    assert.equal(server.logger.level, 'debug');
    assert.equal(server.config.registrar.minExpires, 60, 'not applied: needs a restart');
  } finally {
    await server.stop();
  }
});
