import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildPayload, buildRefreshPayload, encodeApns, encodeFcmData, encodeJson, encodeRefresh, truncateUtf8, validatePayload, validateRefreshPayload, PAYLOAD_LIMITS } from '../../src/push/payload.js';
import { PushPayloadError } from '../../src/push/errors.js';

const base = { type: 'call' as const, callId: 'a84b4c76e66710@pc33.example.com', fromUri: 'sip:bob@example.com', fromName: 'Bob', to: 'sip:alice@example.com' };

test('buildPayload produces exactly the v1 fields', () => {
  const p = buildPayload({ ...base, video: true, sentAt: 1_700_000_000_000, ttl: 30 });
  assert.deepEqual(p, { v: 1, type: 'call', call_id: base.callId, from_uri: base.fromUri, from_name: 'Bob', to: base.to, video: true, sent_at: 1_700_000_000_000, ttl: 30 });
  assert.throws(() => validatePayload({ ...p, v: 2 }), PushPayloadError);
  assert.throws(() => buildPayload({ ...base, callId: '' }), PushPayloadError);
});

test('APNs VoIP body: {"aps":{}, "pushcall": payload}; alert kinds carry aps.alert', () => {
  const p = buildPayload({ ...base, sentAt: 1 });
  const v = encodeApns(p, { voip: true });
  assert.ok(v.ok);
  assert.deepEqual(JSON.parse(v.value), { aps: {}, pushcall: p });
  const m = buildPayload({ ...base, type: 'answered_elsewhere', sentAt: 1 });
  const a = encodeApns(m, { voip: false });
  assert.ok(a.ok);
  assert.deepEqual(JSON.parse(a.value).aps, { alert: { title: 'Call answered elsewhere', body: 'Bob' }, 'thread-id': base.callId });
});

test('FCM data: one string value; web JSON envelope', () => {
  const p = buildPayload({ ...base, sentAt: 1 });
  const f = encodeFcmData(p);
  assert.ok(f.ok);
  assert.deepEqual(Object.keys(f.value), ['pushcall']);
  assert.deepEqual(JSON.parse(f.value.pushcall), p);
  const j = encodeJson(p);
  assert.ok(j.ok && JSON.parse(j.value).pushcall.call_id === base.callId);
});

test('oversize: text then display name are truncated (UTF-8 safe) to fit each limit', () => {
  const p = buildPayload({ ...base, type: 'message', fromName: 'Ä'.repeat(3000), text: '😀'.repeat(3000), sentAt: 1 });
  for (const [r, limit] of [[encodeApns(p, { voip: true }), PAYLOAD_LIMITS.apnsVoip], [encodeApns(p, { voip: false }), PAYLOAD_LIMITS.apnsAlert], [encodeFcmData(p), PAYLOAD_LIMITS.fcmData]] as const) {
    assert.ok(r.ok, 'fits after truncation');
    assert.ok(r.bytes <= limit);
    assert.ok(r.truncated);
    assert.ok(!r.payload.text || r.payload.text.endsWith('…'));
    assert.ok(!/\uFFFD/.test(JSON.stringify(r.payload)));
  }
  const huge = buildPayload({ ...base, callId: 'x'.repeat(6000) });
  const r = encodeApns(huge, { voip: true });
  assert.ok(!r.ok && r.limit === 5120);
});

test('truncateUtf8 never splits a code point', () => {
  assert.equal(truncateUtf8('abcdef', 10), 'abcdef');
  assert.equal(truncateUtf8('😀😀😀', 8), '😀…');
  assert.ok(Buffer.byteLength(truncateUtf8('ÄÄÄÄÄÄ', 7)) <= 7);
});

test('refresh payload (RFC 8599 §5.5): only v, type, to, sent_at, ttl; silent on every carrier; an absurd AOR is too large', () => {
  const clock = { now: () => 1_732_615_200_123.4 } as never;
  const p = buildRefreshPayload({ to: 'sip:alice@example.com', ttl: 119.7 }, clock);
  assert.deepEqual(p, { v: 1, type: 'refresh', to: 'sip:alice@example.com', sent_at: 1_732_615_200_123, ttl: 119 });
  assert.throws(() => buildRefreshPayload({ to: '', ttl: 120 }), PushPayloadError);
  assert.throws(() => validateRefreshPayload({ ...p, type: 'call' }), PushPayloadError);
  const apns = encodeRefresh(p, 'apns');
  assert.ok(apns.ok);
  assert.deepEqual(JSON.parse(apns.value), { aps: { 'content-available': 1 }, pushcall: p });
  const fcm = encodeRefresh(p, 'fcm');
  assert.ok(fcm.ok);
  assert.deepEqual(JSON.parse(fcm.value.pushcall), p);
  const json = encodeRefresh(p, 'json');
  assert.ok(json.ok);
  assert.deepEqual(JSON.parse(json.value), { pushcall: p });
  const huge = buildRefreshPayload({ to: `sip:${'a'.repeat(5000)}@example.com`, ttl: 120 }, clock);
  const tooLarge = encodeRefresh(huge, 'apns');
  assert.equal(tooLarge.ok, false);
  assert.equal(!tooLarge.ok && tooLarge.limit, 4096);
});
