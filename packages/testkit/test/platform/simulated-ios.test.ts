import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CallUiDelegate, PushHandler } from '@pushcall/client';
import { FakeClock } from '../../../sip/src/util/clock.js';
import { IOS_KILL_MESSAGE, SimulatedIos } from '../../src/platform/index.js';

const details = { handle: 'sip:a@x', handleType: 'generic' as const, displayName: 'A', video: false };
const U = '11111111-1111-5111-8111-111111111111';

function noopDelegate(over: Partial<CallUiDelegate> = {}): CallUiDelegate {
  return {
    onAnswer: () => {},
    onEnd: (a) => a.fulfill(),
    onStart: (a) => a.fulfill(),
    onSetHeld: (a) => a.fulfill(),
    onSetMuted: (a) => a.fulfill(),
    onAudioSessionActivated: () => {},
    onAudioSessionDeactivated: () => {},
    onActionTimedOut: () => {},
    onIncomingReportFailed: () => {},
    onReset: () => {},
    ...over,
  };
}

function handler(onPush: PushHandler['onPush']): PushHandler {
  return { onPush, onTokenUpdated: () => {}, onTokenInvalidated: () => {} };
}

test('kills the app when a VoIP push is not reported before the handler returns', () => {
  const ios = new SimulatedIos({ clock: new FakeClock() });
  ios.push.setHandler(handler(() => {}));
  const r = ios.deliverVoipPush({ aps: {} });
  assert.deepEqual(r, { delivered: true, reported: false, killed: true });
  assert.equal(ios.kills, 1);
  assert.ok(ios.violations[0].includes(IOS_KILL_MESSAGE));
});

test('reporting later (asynchronously) is too late', async () => {
  const clock = new FakeClock();
  const ios = new SimulatedIos({ clock });
  ios.setDelegate(noopDelegate());
  ios.push.setHandler(handler(() => clock.setTimeout(() => ios.reportIncoming(U, details), 0)));
  assert.equal(ios.deliverVoipPush({}).killed, true);
  clock.advance(1);
  assert.equal(ios.kills, 1);
});

test('after repeated failures VoIP pushes are no longer delivered, until reinstall', () => {
  const ios = new SimulatedIos({ clock: new FakeClock(), maxReportFailures: 3 });
  let calls = 0;
  ios.push.setHandler(handler(() => void calls++));
  for (let i = 0; i < 3; i++) ios.deliverVoipPush({});
  assert.equal(ios.voipBlocked, true);
  assert.deepEqual(ios.deliverVoipPush({}), { delivered: false, reported: false, killed: false });
  assert.equal(calls, 3);
  assert.equal(ios.droppedPushes, 1);
  ios.reinstall();
  ios.deliverVoipPush({});
  assert.equal(calls, 4);
});

test('a handler that throws is a crash, counted as a kill', () => {
  const ios = new SimulatedIos({ clock: new FakeClock() });
  ios.push.setHandler(
    handler(() => {
      throw new Error('boom');
    }),
  );
  assert.equal(ios.deliverVoipPush({}).killed, true);
});

test('any report counts, even one refused as a duplicate or by do-not-disturb', () => {
  const ios = new SimulatedIos({ clock: new FakeClock() });
  ios.push.setHandler(handler(() => ios.reportIncoming(U, details)));
  assert.equal(ios.deliverVoipPush({}).killed, false);
  assert.equal(ios.deliverVoipPush({}).killed, false); // callUUIDAlreadyExists
  ios.doNotDisturb = true;
  ios.push.setHandler(handler(() => ios.reportIncoming('22222222-2222-5222-8222-222222222222', details)));
  assert.equal(ios.deliverVoipPush({}).killed, false);
  assert.equal(ios.kills, 0);
});

test('mustReport=false (iOS 26.4 metadata) spares an unreported push', () => {
  const ios = new SimulatedIos({ clock: new FakeClock() });
  ios.push.setHandler(handler(() => {}));
  assert.equal(ios.deliverVoipPush({}, { mustReport: false }).killed, false);
});

test('CallKit refusals: duplicate UUID, DND, block list, unentitled', () => {
  const ios = new SimulatedIos({ clock: new FakeClock() });
  assert.deepEqual(ios.reportIncoming(U, details), { ok: true });
  assert.deepEqual(ios.reportIncoming(U.toUpperCase(), details), { ok: false, error: 'callUUIDAlreadyExists' });
  ios.blockedHandles.add('sip:spam@x');
  assert.deepEqual(ios.reportIncoming('33333333-3333-5333-8333-333333333333', { ...details, handle: 'sip:spam@x' }), {
    ok: false,
    error: 'filteredByBlockList',
  });
  ios.doNotDisturb = true;
  assert.equal((ios.reportIncoming('44444444-4444-5444-8444-444444444444', details) as { error: string }).error, 'filteredByDoNotDisturb');
  ios.entitled = false;
  assert.equal((ios.reportIncoming('55555555-5555-5555-8555-555555555555', details) as { error: string }).error, 'unentitled');
});

test('an unfulfilled answer action times out; completing it afterwards is a violation', () => {
  const clock = new FakeClock();
  const ios = new SimulatedIos({ clock, actionTimeoutMs: 8_000 });
  let held: { fulfill(): void } | undefined;
  const timedOut: string[] = [];
  ios.setDelegate(noopDelegate({ onAnswer: (a) => (held = a), onActionTimedOut: (a) => timedOut.push(a.kind) }));
  ios.reportIncoming(U, details);
  ios.userAnswers(U);
  clock.advance(7_999);
  assert.deepEqual(timedOut, []);
  clock.advance(1);
  assert.deepEqual(timedOut, ['answer']);
  assert.equal(ios.actions[0].status, 'timedOut');
  held!.fulfill();
  assert.equal(ios.violations.length, 1);
});

test('audio session: activated only after the answer is fulfilled, deactivated when the last call ends', () => {
  const clock = new FakeClock();
  const ios = new SimulatedIos({ clock });
  const audio: string[] = [];
  let held: { fulfill(): void } | undefined;
  ios.setDelegate(
    noopDelegate({
      onAnswer: (a) => (held = a),
      onAudioSessionActivated: () => audio.push('on'),
      onAudioSessionDeactivated: () => audio.push('off'),
    }),
  );
  ios.reportIncoming(U, details);
  ios.userAnswers(U);
  clock.advance(1_000);
  assert.deepEqual(audio, [], 'not while the answer is held');
  held!.fulfill();
  assert.equal(ios.call(U)!.state, 'connected');
  clock.advance(20);
  assert.deepEqual(audio, ['on']);
  ios.userHolds(U);
  ios.userUnholds(U);
  clock.advance(50);
  assert.deepEqual(audio, ['on'], 'no didActivate on unhold while the session stayed active (iOS quirk)');
  ios.interruptAudio();
  ios.userHolds(U);
  ios.userUnholds(U);
  clock.advance(50);
  assert.deepEqual(audio, ['on', 'off', 'on'], 'unhold activates an inactive session');
  ios.reportEnded(U, 'remoteEnded');
  clock.advance(50);
  assert.deepEqual(audio, ['on', 'off', 'on', 'off']);
});

test('every call ends exactly once: a second end is a violation', () => {
  const ios = new SimulatedIos({ clock: new FakeClock() });
  ios.setDelegate(noopDelegate());
  ios.reportIncoming(U, details);
  ios.userDeclines(U);
  assert.equal(ios.call(U)!.endedBy, 'endAction');
  ios.reportEnded(U, 'remoteEnded');
  assert.equal(ios.violations.length, 1);
  ios.reportEnded('66666666-6666-5666-8666-666666666666', 'failed');
  assert.equal(ios.violations.length, 2, 'ending a call never reported');
});

test('ghostRingMs: how long a call rang after the server ended it', () => {
  const clock = new FakeClock();
  const ios = new SimulatedIos({ clock });
  ios.reportIncoming(U, details);
  clock.advance(1_000);
  ios.serverEnded(U);
  clock.advance(4_000);
  assert.equal(ios.ghostRingMs(U), 4_000);
  ios.reportEnded(U, 'answeredElsewhere');
  clock.advance(10_000);
  assert.equal(ios.ghostRingMs(U), 4_000);
});

test('outgoing: start request → start action → connecting → connected', () => {
  const ios = new SimulatedIos({ clock: new FakeClock() });
  ios.setDelegate(noopDelegate());
  const uuid = ios.userStartsCall('sip:b@x');
  assert.equal(ios.call(uuid)!.state, 'connecting');
  ios.reportOutgoingConnected(uuid);
  assert.equal(ios.call(uuid)!.state, 'connected');
  ios.reportOutgoingConnected('77777777-7777-5777-8777-777777777777');
  assert.equal(ios.violations.length, 1);
});
