import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IncomingPush } from '@pushcall/client';
import { FakeClock } from '../../../sip/src/util/clock.js';
import { SimulatedAndroid } from '../../src/platform/index.js';

function collect(android: SimulatedAndroid, report = false): IncomingPush[] {
  const got: IncomingPush[] = [];
  android.push.setHandler({
    onPush: (p) => {
      got.push(p);
      if (report) android.reportIncoming(`00000000-0000-5000-8000-${String(got.length).padStart(12, '0')}`, {
        handle: 'sip:a@x',
        handleType: 'generic',
        displayName: 'A',
        video: false,
      });
    },
    onTokenUpdated: () => {},
    onTokenInvalidated: () => {},
  });
  return got;
}

test('FCM data messages carry only strings', () => {
  const android = new SimulatedAndroid({ clock: new FakeClock() });
  collect(android);
  assert.throws(() => android.deliverFcm({ pushcall: { v: 1 } as unknown as string }), TypeError);
});

test('high priority is delivered in Doze, normal priority waits for the end of Doze', () => {
  const android = new SimulatedAndroid({ clock: new FakeClock(), dozing: true });
  const got = collect(android);
  assert.equal(android.deliverFcm({ pushcall: '{}' }, { priority: 'high' }).delivered, true);
  assert.deepEqual(android.deliverFcm({ pushcall: '{"n":2}' }, { priority: 'normal' }), { delivered: false, downgraded: false, queued: true });
  assert.equal(got.length, 1);
  android.exitDoze();
  assert.equal(got.length, 2);
  assert.equal(got[0].transport, 'fcm');
  assert.equal(got[0].mustReport, false);
});

test('deprioritisation: high-priority messages that show nothing are downgraded after n', () => {
  const android = new SimulatedAndroid({ clock: new FakeClock(), deprioritizeAfter: 2, dozing: true });
  collect(android);
  android.deliverFcm({ a: '1' });
  android.deliverFcm({ a: '2' });
  assert.equal(android.deprioritized, true);
  assert.deepEqual(android.deliverFcm({ a: '3' }), { delivered: false, downgraded: true, queued: true });
});

test('showing a call keeps high priority', () => {
  const android = new SimulatedAndroid({ clock: new FakeClock(), deprioritizeAfter: 1 });
  collect(android, true);
  android.deliverFcm({ a: '1' });
  android.deliverFcm({ a: '2' });
  assert.equal(android.deprioritized, false);
  assert.equal(android.highPriorityWithoutUi, 0);
});

test('ConnectionService-like UI: no action timeouts; unhold always regains audio focus', () => {
  const clock = new FakeClock();
  const android = new SimulatedAndroid({ clock });
  const audio: string[] = [];
  let answer: { fulfill(): void } | undefined;
  android.setDelegate({
    onAnswer: (a) => (answer = a),
    onEnd: (a) => a.fulfill(),
    onStart: (a) => a.fulfill(),
    onSetHeld: (a) => a.fulfill(),
    onSetMuted: (a) => a.fulfill(),
    onAudioSessionActivated: () => audio.push('on'),
    onAudioSessionDeactivated: () => audio.push('off'),
    onActionTimedOut: () => assert.fail('Telecom does not time out actions'),
    onIncomingReportFailed: () => {},
    onReset: () => {},
  });
  const U = '12345678-1234-5234-8234-123456789012';
  android.reportIncoming(U, { handle: 'sip:a@x', handleType: 'generic', displayName: 'A', video: false });
  android.userAnswers(U);
  clock.advance(120_000);
  answer!.fulfill();
  clock.advance(20);
  android.userHolds(U);
  android.userUnholds(U);
  clock.advance(20);
  assert.deepEqual(audio, ['on', 'on']);
});
