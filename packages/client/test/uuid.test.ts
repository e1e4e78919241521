import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  INVALID_PUSH_NAME,
  INVALID_PUSH_UUID,
  NAMESPACE_DNS,
  NAMESPACE_URL,
  PUSHCALL_CALL_ID_NAMESPACE,
  callUuid,
  isUuid,
  randomUuid,
  sha1,
  utf8Encode,
  uuidV5,
} from '../src/uuid.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('SHA-1 matches the FIPS 180 test vectors', () => {
  assert.equal(hex(sha1(utf8Encode('abc'))), 'a9993e364706816aba3e25717850c26c9cd0d89d');
  assert.equal(hex(sha1(utf8Encode(''))), 'da39a3ee5e6b4b0d3255bfef95601890afd80709');
  assert.equal(
    hex(sha1(utf8Encode('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))),
    '84983e441c3bd26ebaae4aa1f95129e5e54670f1',
  );
  assert.equal(hex(sha1(new Uint8Array(1_000_000).fill(0x61))), '34aa973cd4c4daa4f61eeb2bdbad27316534016f');
});

test('SHA-1 agrees with node:crypto on random inputs (block boundaries included)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      assert.equal(hex(sha1(bytes)), createHash('sha1').update(bytes).digest('hex'));
    }),
    { numRuns: 300 },
  );
  for (const n of [55, 56, 57, 63, 64, 65, 119, 120, 128]) {
    const b = new Uint8Array(n).fill(n);
    assert.equal(hex(sha1(b)), createHash('sha1').update(b).digest('hex'), `length ${n}`);
  }
});

test('utf8Encode agrees with TextEncoder, surrogate pairs and lone surrogates included', () => {
  const enc = new TextEncoder();
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 50 }), (s) => {
      assert.deepEqual(utf8Encode(s), enc.encode(s));
    }),
    { numRuns: 300 },
  );
  assert.deepEqual(utf8Encode('\ud800x'), enc.encode('\ud800x'));
  assert.deepEqual(utf8Encode('😀é'), enc.encode('😀é'));
});

test('UUID v5 matches the RFC 9562 example (DNS namespace, www.example.com)', () => {
  assert.equal(uuidV5('www.example.com', NAMESPACE_DNS), '2ed6657d-e927-568b-95e1-2665a8aea6a2');
  // Python: uuid.uuid5(uuid.NAMESPACE_URL, 'http://python.org/')
  assert.equal(uuidV5('http://python.org/', NAMESPACE_URL), '4c565f0d-3f5a-5890-b41b-20cf47701c5e');
});

test('call UUIDs: v5 of the Call-ID in the fixed pushcall namespace, lowercase, stable', () => {
  assert.equal(PUSHCALL_CALL_ID_NAMESPACE, '9bab9046-1483-4e3c-aa85-1348e0b64f65');
  const u = callUuid('a84b4c76e66710@pc33.atlanta.com');
  // Pinned: native code (Swift/Kotlin in docs/react-native.md) must produce the same value.
  assert.equal(u, '91a491cf-c238-5395-88b9-e0416d7ddc92');
  assert.equal(u, u.toLowerCase());
  assert.equal(u[14], '5');
  assert.ok('89ab'.includes(u[19]));
  assert.notEqual(callUuid('A84b4c76e66710@pc33.atlanta.com'), u, 'Call-IDs are case-sensitive');
  assert.equal(INVALID_PUSH_UUID, uuidV5(INVALID_PUSH_NAME, PUSHCALL_CALL_ID_NAMESPACE));
  assert.equal(INVALID_PUSH_UUID, 'a64461b4-a05b-51db-80c1-43b61c77b475');
});

test('random UUIDs are valid v4', () => {
  for (let i = 0; i < 50; i++) {
    const u = randomUuid();
    assert.ok(isUuid(u));
    assert.equal(u[14], '4');
  }
});

test('packages/client/src has no Node-only imports', async () => {
  const { readdirSync, readFileSync, statSync } = await import('node:fs');
  const { join } = await import('node:path');
  const root = new URL('../src/', import.meta.url).pathname;
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
  for (const file of walk(root).filter((f) => f.endsWith('.ts'))) {
    const src = readFileSync(file, 'utf8');
    assert.doesNotMatch(src, /from ['"]node:/, file);
    assert.doesNotMatch(src, /\bBuffer\b/, file);
    assert.doesNotMatch(src, /\bprocess\./, file);
  }
});
