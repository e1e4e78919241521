/** AuthFailureLimiter on a fake clock: the window, the block, the off switch, the bounded table. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '@pushcall/sip';
import { AuthFailureLimiter } from '../../src/auth/failure-limit.js';

describe('AuthFailureLimiter', () => {
  it('maxFailures in one window block for blockSeconds; failures in separate windows never do', () => {
    const clock = new FakeClock();
    const blocked: string[] = [];
    const limiter = new AuthFailureLimiter({ maxFailures: 3, windowSeconds: 60, blockSeconds: 600, clock, onBlock: (a) => blocked.push(a) });
    assert.equal(limiter.recordFailure('198.51.100.1'), false);
    assert.equal(limiter.recordFailure('198.51.100.1'), false);
    clock.advance(60_000); // a new window: the count starts again
    assert.equal(limiter.recordFailure('198.51.100.1'), false);
    assert.equal(limiter.recordFailure('198.51.100.1'), false);
    assert.equal(limiter.blockedFor('198.51.100.1'), 0);
    assert.equal(limiter.recordFailure('198.51.100.1'), true);
    assert.equal(limiter.blockedFor('198.51.100.1'), 600);
    assert.equal(limiter.recordFailure('198.51.100.1'), false, 'already blocked: not again, not longer');
    assert.deepEqual(blocked, ['198.51.100.1']);
    assert.equal(limiter.blockedFor('198.51.100.2'), 0);
    clock.advance(599_000);
    assert.equal(limiter.blockedFor('198.51.100.1'), 1);
    clock.advance(1_000);
    assert.equal(limiter.blockedFor('198.51.100.1'), 0);
  });

  it('maxFailures 0 is off', () => {
    const limiter = new AuthFailureLimiter({ maxFailures: 0, windowSeconds: 60, blockSeconds: 600, clock: new FakeClock() });
    for (let i = 0; i < 100; i++) assert.equal(limiter.recordFailure('198.51.100.1'), false);
    assert.equal(limiter.size, 0);
  });

  it('the table is bounded: finished entries go first, then the oldest, and a blocked address stays blocked while there is room', () => {
    const clock = new FakeClock();
    const limiter = new AuthFailureLimiter({ maxFailures: 2, windowSeconds: 60, blockSeconds: 600, clock, maxTracked: 3 });
    limiter.recordFailure('10.0.0.1');
    limiter.recordFailure('10.0.0.1'); // blocked
    limiter.recordFailure('10.0.0.2');
    clock.advance(61_000); // 10.0.0.2's window is over and it was never blocked
    limiter.recordFailure('10.0.0.3');
    limiter.recordFailure('10.0.0.4'); // full: 10.0.0.2 is dropped, not the blocked one
    assert.equal(limiter.size, 3);
    assert.ok(limiter.blockedFor('10.0.0.1') > 0);
    for (let i = 5; i < 50; i++) limiter.recordFailure(`10.0.0.${i}`);
    assert.ok(limiter.size <= 3, `bounded: ${limiter.size}`);
  });
});
