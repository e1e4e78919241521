/** The branch's loop-detection hash (RFC 3261 §16.6 step 8): stable, 10 hex digits, and any change in a routing field changes it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hash40, hash40Joined } from '../../src/index.js';

test('hash40 is deterministic, 10 lowercase hex digits', () => {
  const text = 'sip:bob@example.com\nabc\n\ncall-1@host\n1\n\n';
  assert.equal(hash40(text), hash40(text));
  assert.match(hash40(text), /^[0-9a-f]{10}$/);
  assert.match(hash40(''), /^[0-9a-f]{10}$/);
});

test('hash40: one changed character, or moved field separators, give another hash', () => {
  const base = 'sip:bob@example.com\nabc\n\ncall-1@host\n1\n\n';
  const seen = new Set([hash40(base)]);
  for (let i = 0; i < base.length; i++) {
    const changed = base.slice(0, i) + String.fromCharCode(base.charCodeAt(i) ^ 1) + base.slice(i + 1);
    seen.add(hash40(changed));
  }
  seen.add(hash40('sip:bob@example.com\nab\nc\ncall-1@host\n1\n\n'));
  assert.equal(seen.size, base.length + 2);
});

test('hash40: no collision among 20,000 Request-URIs that differ in one counter', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 20_000; i++) seen.add(hash40(`sip:user${i}@example.com\nfrom\n\ncall@host\n1\n\n`));
  assert.equal(seen.size, 20_000);
});

test('hash40Joined(parts) is hash40 of the parts joined with newlines, without building the join', () => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: 'binary' }), { minLength: 1, maxLength: 8 }), (parts) => {
      assert.equal(hash40Joined(parts), hash40(parts.join('\n')));
    }),
    { numRuns: 500 },
  );
  // Moving a separator is another input: ['a', 'bc'] is not ['ab', 'c'].
  assert.notEqual(hash40Joined(['a', 'bc']), hash40Joined(['ab', 'c']));
});
