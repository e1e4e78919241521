import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodePush, isExpired, toApnsDictionary, toFcmData } from '../src/payload.js';
import type { PushPayload } from '../src/payload.js';

const p: PushPayload = {
  v: 1,
  type: 'call',
  call_id: 'abc@host',
  from_name: 'Alice',
  from_uri: 'sip:alice@example.com',
  to: 'sip:bob@example.com',
  video: true,
  sent_at: 1_700_000_000_000,
  ttl: 30,
};

test('decodes the APNs, FCM and Web Push / webhook shapes to the same payload', () => {
  const shapes: unknown[] = [
    toApnsDictionary(p),
    { aps: { 'content-available': 1 }, pushcall: p },
    toFcmData(p),
    { pushcall: p },
    JSON.stringify({ pushcall: p }),
    { data: toFcmData(p) }, // RemoteMessage
    { dictionaryPayload: toApnsDictionary(p) },
  ];
  for (const s of shapes) {
    const d = decodePush(s);
    assert.ok(d.ok, JSON.stringify(s));
    assert.deepEqual(d.payload, p);
  }
});

test('accepts numbers and booleans flattened to strings', () => {
  const flat = { ...p, v: '1', video: 'true', sent_at: String(p.sent_at), ttl: '30' };
  const d = decodePush({ pushcall: JSON.stringify(flat) });
  assert.ok(d.ok && d.payload);
  assert.equal(d.payload.video, true);
  assert.equal(d.payload.ttl, 30);
});

test('a refresh push (RFC 8599 §5.5) decodes without call fields, in every envelope', () => {
  const refresh = { v: 1, type: 'refresh', to: 'sip:alice@example.com', sent_at: 1_732_615_200_000, ttl: 120 };
  for (const raw of [{ pushcall: refresh }, { pushcall: JSON.stringify(refresh) }, { data: { pushcall: JSON.stringify(refresh) } }, { aps: { 'content-available': 1 }, pushcall: refresh }, refresh]) {
    const d = decodePush(raw);
    assert.ok(d.ok && d.refresh, JSON.stringify(raw));
    assert.equal(d.payload, undefined);
    assert.deepEqual(d.refresh, refresh);
  }
  // A refresh push must still say which AOR and when it stops mattering.
  for (const [field, value] of [['to', ''], ['ttl', -1], ['sent_at', 'soon']] as const) {
    const d = decodePush({ pushcall: { ...refresh, [field]: value } });
    assert.equal(d.ok, false, field);
    assert.equal(!d.ok && d.reason, 'bad_field');
  }
});

test('malformed payloads yield a typed invalid result and salvage the Call-ID', () => {
  const cases: [unknown, string][] = [
    [null, 'not_an_object'],
    [42, 'not_an_object'],
    ['{not json', 'bad_json'],
    [{ aps: {} }, 'no_pushcall_key'],
    [{ pushcall: '{oops' }, 'bad_json'],
    [{ pushcall: { ...p, v: 0 } }, 'unsupported_version'],
    [{ pushcall: { ...p, type: 'dance' } }, 'bad_type'],
    [{ pushcall: { ...p, call_id: '' } }, 'missing_call_id'],
    [{ pushcall: { ...p, video: 'maybe' } }, 'bad_field'],
    [{ pushcall: { ...p, sent_at: 'yesterday' } }, 'bad_field'],
    [{ pushcall: { ...p, from_uri: 7 } }, 'bad_field'],
  ];
  for (const [raw, reason] of cases) {
    const d = decodePush(raw);
    assert.equal(d.ok, false, JSON.stringify(raw));
    if (!d.ok) assert.equal(d.reason, reason, JSON.stringify(raw));
  }
  const d = decodePush({ pushcall: { ...p, video: 'maybe' } });
  assert.ok(!d.ok && d.callId === 'abc@host' && d.fromName === 'Alice');
});

test('a later payload version with extra fields still decodes', () => {
  const d = decodePush({ pushcall: { ...p, v: 2, priority: 'urgent' } });
  assert.ok(d.ok);
});

test('expiry: sent_at + ttl in the past', () => {
  assert.equal(isExpired(p, p.sent_at + 30_000), false);
  assert.equal(isExpired(p, p.sent_at + 30_001), true);
  assert.equal(isExpired(p, p.sent_at + 30_001, 5_000), false);
});

test('the decoder never throws, whatever it is given', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.anything(),
        fc.record({ pushcall: fc.anything() }),
        fc.record({ pushcall: fc.dictionary(fc.constantFrom('v', 'type', 'call_id', 'video', 'sent_at', 'ttl', 'from_uri', 'to'), fc.anything()) }),
        fc.string().map((s) => ({ pushcall: s })),
      ),
      (raw) => {
        const d = decodePush(raw);
        assert.equal(typeof d.ok, 'boolean');
      },
    ),
    { numRuns: 1000 },
  );
});
