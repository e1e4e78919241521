/** The Timer J response store: bytes back exactly, across slabs, two generations, bounded size. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CompletedResponses } from '../../src/transaction/completed-responses.js';

const response = (i: number, size: number) => Buffer.from(`SIP/2.0 200 OK\r\nCall-ID: ${i}\r\n`.padEnd(size, 'x'));

describe('CompletedResponses', () => {
  it('returns every response byte for byte, across many 1 MiB slabs and up to a 64 KiB datagram', () => {
    const store = new CompletedResponses(1_000_000);
    const sizes = [1, 300, 1_300, 65_535, 9_000];
    for (let i = 0; i < 5_000; i++) store.add(`k${i}`, response(i, sizes[i % sizes.length]));
    assert.equal(store.size, 5_000);
    for (let i = 0; i < 5_000; i++) assert.deepEqual(store.get(`k${i}`), response(i, sizes[i % sizes.length]), `k${i}`);
    assert.equal(store.get('missing'), undefined);
  });

  it('keeps an entry through one rotation, forgets it at the second', () => {
    const store = new CompletedResponses(100);
    store.add('a', response(1, 50));
    assert.equal(store.rotate(), true);
    assert.deepEqual(store.get('a'), response(1, 50));
    assert.equal(store.rotate(), false);
    assert.equal(store.get('a'), undefined);
    assert.equal(store.size, 0);
  });

  it('rotates early at the limit, so at most two generations of `limit` entries are kept', () => {
    const store = new CompletedResponses(10);
    let early = 0;
    for (let i = 0; i < 35; i++) if (store.add(`k${i}`, response(i, 100))) early++;
    assert.equal(early, 3);
    assert.equal(store.size, 15); // k20..k29 (full, rotated) + k30..k34
    assert.equal(store.get('k19'), undefined);
    assert.deepEqual(store.get('k20'), response(20, 100));
    assert.deepEqual(store.get('k34'), response(34, 100));
  });

  it('ignores what cannot be a datagram (64 KiB or more)', () => {
    const store = new CompletedResponses(10);
    store.add('big', Buffer.alloc(65_536));
    assert.equal(store.get('big'), undefined);
  });
});
