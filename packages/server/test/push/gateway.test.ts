import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import webpush from 'web-push';
import { ApnsEmulator, FcmEmulator, makeApnsKey } from '../../../testkit/src/emulators/index.js';
import { createPushGateway, parsePushConfig } from '../../src/push/config.js';
import { PushConfigError, PushPayloadError } from '../../src/push/errors.js';
import type { PushEvent } from '../../src/push/events.js';
import { buildPayload } from '../../src/push/payload.js';
import { redactToken } from '../../src/push/types.js';
import type { PushBinding } from '../../src/push/types.js';
import { registerPushCommand, runPushCommand } from '../../src/cli/push-command.js';
import { Command } from 'commander';

const call = buildPayload({ type: 'call', callId: 'gw-1', fromUri: 'sip:bob@x', to: 'sip:alice@x' });

test('redactToken keeps 6 + 4 characters', () => {
  assert.equal(redactToken('0123456789abcdef0123'), '012345…0123');
  assert.equal(redactToken('short'), '…');
  assert.equal(redactToken(undefined), '');
});

test('config schema: errors are PushConfigError with every problem listed', () => {
  assert.throws(() => parsePushConfig({ apns: { keyFile: 'k.p8' } }), (e: unknown) => e instanceof PushConfigError && e.code === 'PUSH_ERR_CONFIG' && /keyId and teamId/.test(e.message));
  assert.throws(() => parsePushConfig({ fcm: {} }), PushConfigError);
  assert.throws(() => parsePushConfig({ webhooks: { apns: { url: 'https://x', secret: 'x'.repeat(16) } } }), PushConfigError);
  assert.throws(() => parsePushConfig({ webpush: { vapidPublicKey: 'a', vapidPrivateKey: 'b', subject: 'ops@example.com' } }), PushConfigError);
  const ok = parsePushConfig({ apns: { certFile: 'c.pem', keyFile: 'k.pem' } });
  assert.equal(ok.apns!.poolSize, 2);
  assert.equal(ok.apns!.voipExpirationSeconds, 30);
});

test('gateway from config: dispatch to APNs, FCM, webhook; unsupported provider; metrics', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pushcall-gw-'));
  const key = makeApnsKey({ teamId: 'TEAM123456', bundleIds: ['com.example.app'] });
  const apns = await new ApnsEmulator({ keys: [key] }).start();
  const fcm = await new FcmEmulator().start();
  const sa = fcm.createServiceAccount('gw-project');
  await writeFile(join(dir, 'key.p8'), key.privateKeyPem);
  await writeFile(join(dir, 'sa.json'), JSON.stringify(sa));
  const vapid = webpush.generateVAPIDKeys();
  const registry = new Registry();
  const events: PushEvent[] = [];
  const gw = await createPushGateway({
    apns: { keyFile: join(dir, 'key.p8'), keyId: key.keyId, teamId: key.teamId, endpoints: { production: apns.url, sandbox: apns.url }, caFile: apns.caFile, pingIntervalMs: 0 },
    fcm: { serviceAccountFile: join(dir, 'sa.json'), endpoint: fcm.url },
    webpush: { vapidPublicKey: vapid.publicKey, vapidPrivateKey: vapid.privateKey, subject: 'mailto:ops@example.com' },
    webhooks: { mypush: { url: 'http://127.0.0.1:9/unused', secret: 'x'.repeat(20) } },
  }, { registry, hooks: { outcome: (e) => events.push(e) } });
  try {
    assert.deepEqual(gw.supportedProviders().sort(), ['apns', 'fcm', 'mypush', 'webpush']);
    // RFC 8599 §5.4: only the provider that signs with VAPID has a key to advertise.
    assert.equal(gw.vapidPublicKey('webpush'), vapid.publicKey);
    assert.equal(gw.vapidPublicKey('apns'), undefined);
    assert.equal(gw.vapidPublicKey('mypush'), undefined);
    const a: PushBinding = { bindingId: '1', aor: 'sip:alice@x', provider: 'apns', prid: 'ab'.repeat(32), param: 'TEAM123456.com.example.app.voip', registeredAt: 0 };
    const f: PushBinding = { bindingId: '2', aor: 'sip:alice@x', provider: 'fcm', prid: 'fcm-token-1', registeredAt: 0 };
    const x: PushBinding = { bindingId: '3', aor: 'sip:alice@x', provider: 'carrier-pigeon', prid: 'coo', registeredAt: 0 };
    assert.ok((await gw.sendCall(a, call)).ok);
    assert.ok((await gw.sendCall(f, call)).ok);
    assert.ok((await gw.sendAlert(a, buildPayload({ type: 'missed_call', callId: 'gw-1', fromUri: 'sip:bob@x', to: 'sip:alice@x' }))).ok);
    const u = await gw.sendCall(x, call);
    assert.ok(!u.ok && u.error === 'PUSH_UNSUPPORTED_PROVIDER');
    assert.throws(() => gw.sendCall(a, buildPayload({ type: 'missed_call', callId: 'c', fromUri: 'f', to: 't' })), PushPayloadError);
    const text = await registry.metrics();
    assert.match(text, /pushcall_push_total\{provider="apns",outcome="ok"\} 2/);
    assert.match(text, /pushcall_push_total\{provider="fcm",outcome="ok"\} 1/);
    assert.match(text, /pushcall_push_total\{provider="carrier-pigeon",outcome="PUSH_UNSUPPORTED_PROVIDER"\} 1/);
    assert.match(text, /pushcall_push_send_seconds_count\{provider="apns"\} 2/);
    assert.equal(events.length, 4);
    assert.ok(!JSON.stringify(events).includes('ab'.repeat(32)));
  } finally {
    await gw.close();
    await apns.close();
    await fcm.close();
  }
});

test('CLI `pushcall push` against the APNs emulator prints status and apns-id; failure exits 1', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pushcall-cli-'));
  const key = makeApnsKey({ teamId: 'TEAM123456', bundleIds: ['com.example.app'] });
  const emu = await new ApnsEmulator({ keys: [key], environment: 'sandbox' }).start();
  await writeFile(join(dir, 'key.p8'), key.privateKeyPem);
  const lines: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(' '));
  try {
    const program = new Command().exitOverride();
    registerPushCommand(program);
    const token = 'cd'.repeat(32);
    await program.parseAsync(['push', '--provider', 'apns', '--token', token, '--param', 'TEAM123456.com.example.app.voip', '--sandbox',
      '--key-file', join(dir, 'key.p8'), '--key-id', key.keyId, '--team-id', key.teamId, '--endpoint', emu.url, '--ca-file', emu.caFile,
      '--payload', '{"from_name":"CLI Bob"}'], { from: 'user' });
    assert.equal(process.exitCode ?? 0, 0);
    assert.ok(lines.includes('status: 200'), lines.join('\n'));
    assert.ok(lines.some((l) => l === `apns-id: ${emu.received[0].apnsId}`));
    assert.ok(lines.some((l) => l.startsWith('apns-unique-id: ')));
    assert.equal((emu.received[0].payload as { pushcall: { from_name: string } }).pushcall.from_name, 'CLI Bob');
    lines.length = 0;
    // --kind refresh: the silent push sent before a binding expires (RFC 8599 §5.5).
    const refreshCode = await runPushCommand({ provider: 'apns', token, param: 'TEAM123456.com.example.app.voip', sandbox: true, kind: 'refresh',
      keyFile: join(dir, 'key.p8'), keyId: key.keyId, teamId: key.teamId, endpoint: emu.url, caFile: emu.caFile, timeout: '5000', payload: '{"to":"sip:alice@example.com","ttl":120}' });
    assert.equal(refreshCode, 0, lines.join('\n'));
    const refresh = emu.received[1];
    assert.equal(refresh.pushType, 'background');
    assert.equal(refresh.priority, 5);
    assert.equal(refresh.topic, 'com.example.app');
    assert.deepEqual(refresh.payload, { aps: { 'content-available': 1 }, pushcall: { v: 1, type: 'refresh', to: 'sip:alice@example.com', sent_at: (refresh.payload as { pushcall: { sent_at: number } }).pushcall.sent_at, ttl: 120 } });
    lines.length = 0;
    emu.unregister(token, Date.now());
    const code = await runPushCommand({ provider: 'apns', token, param: 'TEAM123456.com.example.app.voip', sandbox: true, kind: 'alert',
      keyFile: join(dir, 'key.p8'), keyId: key.keyId, teamId: key.teamId, endpoint: emu.url, caFile: emu.caFile, timeout: '5000' });
    assert.equal(code, 1);
    assert.ok(lines.includes('status: 410'));
    assert.ok(lines.includes('reason: Unregistered'));
    assert.equal(await runPushCommand({ provider: 'apns', token, kind: 'voip', timeout: '5000' }), 2);
    // Bad flags are usage errors (exit 2) naming the flag, never a stack trace.
    const errors: string[] = [];
    const origError = console.error;
    console.error = (...a: unknown[]) => errors.push(a.join(' '));
    try {
      const base = { provider: 'apns', token, param: 'TEAM123456.com.example.app.voip', kind: 'voip', keyFile: join(dir, 'key.p8'), keyId: key.keyId, teamId: key.teamId } as const;
      assert.equal(await runPushCommand({ ...base, timeout: 'abc' }), 2);
      assert.equal(await runPushCommand({ ...base, timeout: '5000', endpoint: 'notaurl' }), 2);
      assert.equal(await runPushCommand({ ...base, timeout: '5000', keyFile: dir }), 2);
      assert.match(errors.join('\n'), /--timeout must be a whole number/);
      assert.match(errors.join('\n'), /--endpoint must be an absolute URL/);
      assert.match(errors.join('\n'), /EISDIR/);
    } finally {
      console.error = origError;
    }
  } finally {
    console.log = orig;
    process.exitCode = 0;
    await emu.close();
  }
});
