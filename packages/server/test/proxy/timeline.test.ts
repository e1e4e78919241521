/** Call timelines are bounded by count and by age, oldest first, and never drop an unfinished call for age. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '@pushcall/sip';
import { CallTimelines } from '../../src/proxy/timeline.js';

test('at most maxCalls timelines are kept, the oldest go first', () => {
  const timelines = new CallTimelines(new FakeClock(), 100, 3_600_000);
  for (let i = 0; i < 5_000; i++) timelines.end(timelines.start(`call-${i}@host`, 'INVITE', 'sip:a@x', 'sip:b@x'), 'answered', 200);
  assert.equal(timelines.list(1_000).length, 100);
  assert.equal(timelines.get('call-4899@host'), undefined);
  assert.equal(timelines.get('call-4900@host')?.finalStatus, 200);
  assert.equal(timelines.get('call-4999@host')?.outcome, 'answered');
});

test('finished timelines older than the retention go; unfinished ones stay', () => {
  const clock = new FakeClock();
  const timelines = new CallTimelines(clock, 10_000, 60_000);
  const ongoing = timelines.start('ongoing@host', 'INVITE', 'sip:a@x', 'sip:b@x');
  timelines.end(timelines.start('old@host', 'INVITE', 'sip:a@x', 'sip:b@x'), 'answered', 200);
  clock.advance(61_000);
  timelines.start('new@host', 'INVITE', 'sip:a@x', 'sip:b@x');
  // The unfinished call at the head keeps its place: age alone never drops a call in progress.
  assert.ok(timelines.get('ongoing@host'));
  timelines.end(ongoing, 'cancelled', 487);
  clock.advance(61_000);
  timelines.start('newer@host', 'INVITE', 'sip:a@x', 'sip:b@x');
  assert.equal(timelines.get('ongoing@host'), undefined);
  assert.equal(timelines.get('old@host'), undefined);
  assert.ok(timelines.get('newer@host'));
});

test('a Call-ID seen again gets its own key; a key used again after eviction belongs to the new call', () => {
  const timelines = new CallTimelines(new FakeClock(), 2, 3_600_000);
  const first = timelines.start('same@host', 'INVITE', 'sip:a@x', 'sip:b@x');
  const second = timelines.start('same@host', 'INVITE', 'sip:a@x', 'sip:b@x');
  assert.equal(timelines.get('same@host'), first);
  assert.equal(timelines.get('same@host#2'), second);
  timelines.start('other-1@host', 'INVITE', 'sip:a@x', 'sip:b@x'); // evicts same@host
  const again = timelines.start('same@host', 'INVITE', 'sip:a@x', 'sip:b@x'); // evicts same@host#2
  assert.equal(timelines.get('same@host'), again);
  timelines.start('other-2@host', 'INVITE', 'sip:a@x', 'sip:b@x'); // evicts other-1, the oldest left
  assert.equal(timelines.get('same@host'), again);
  assert.equal(timelines.get('other-1@host'), undefined);
});
