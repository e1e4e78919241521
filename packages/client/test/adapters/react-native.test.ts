/**
 * The React Native adapter, driven by recorded event sequences replayed through fake
 * callkeep / voip-push modules (no device here). Each sequence is what the native side
 * emits in that situation, UUIDs uppercase as NSUUID prints them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeClock } from '../../../sip/src/util/clock.js';
import { ReactNativeCallAdapter } from '../../src/adapters/react-native.js';
import { CallCoordinator, INVALID_PUSH_UUID, apnsPushConfig, callUuid, fcmPushConfig } from '../../src/index.js';
import { FakeSipPort } from '../support/fake-sip.js';
import { FakeCallKeep, FakeVoipPush, replay } from '../support/fake-rn.js';
import type { Recorded } from '../support/fake-rn.js';
import { T0, payload } from '../support/harness.js';

const CID = 'killed-app-call@pbx';
const U = callUuid(CID);
const UPPER = U.toUpperCase();
const TOKEN = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';

function setup(platform: 'ios' | 'android' = 'ios') {
  const clock = new FakeClock(T0);
  const callKeep = new FakeCallKeep();
  const voip = platform === 'ios' ? new FakeVoipPush() : undefined;
  const adapter = new ReactNativeCallAdapter({ platform, callKeep, ...(voip ? { voipPush: voip } : {}), clock });
  const sip = new FakeSipPort();
  const coordinator = new CallCoordinator({
    ui: adapter.callUi,
    push: adapter.push,
    sip,
    clock,
    strict: true,
    pushConfig: platform === 'ios' ? apnsPushConfig({ teamId: 'TEAM', bundleId: 'com.example' }) : fcmPushConfig('proj'),
  });
  return { clock, callKeep, voip, adapter, sip, coordinator };
}

const dict = (over = {}) => ({ aps: {}, pushcall: payload(CID, over) });

/** The app was killed; AppDelegate reported the push natively; JS boots and gets the batches. */
const KILLED_VOIP_BATCH: Recorded = {
  from: 'voip',
  event: 'didLoadWithEvents',
  data: [
    { name: 'RNVoipPushRemoteNotificationsRegisteredEvent', data: TOKEN },
    { name: 'RNVoipPushRemoteNotificationReceivedEvent', data: dict() },
  ],
};
const KILLED_CALLKEEP_BATCH: Recorded = {
  from: 'callkeep',
  event: 'didLoadWithEvents',
  data: [
    {
      name: 'RNCallKeepDidDisplayIncomingCall',
      data: { callUUID: UPPER, handle: 'sip:alice@example.com', localizedCallerName: 'Alice', hasVideo: '0', fromPushKit: '1', payload: dict() },
    },
  ],
};
const KILLED_CALLKEEP_BATCH_WITH_ANSWER: Recorded = {
  from: 'callkeep',
  event: 'didLoadWithEvents',
  data: [
    ...(KILLED_CALLKEEP_BATCH.data as unknown[]),
    { name: 'RNCallKeepDidActivateAudioSession', data: {} },
    { name: 'RNCallKeepPerformAnswerCallAction', data: { callUUID: UPPER } },
  ],
};

describe('iOS, killed app: the push was reported natively in AppDelegate', () => {
  for (const [name, seq] of [
    ['voip batch first', [KILLED_VOIP_BATCH, KILLED_CALLKEEP_BATCH]],
    ['callkeep batch first', [KILLED_CALLKEEP_BATCH, KILLED_VOIP_BATCH]],
  ] as const) {
    test(`adopts the native call, never displays it again (${name})`, () => {
      const h = setup();
      replay(seq, h.callKeep, h.voip);
      assert.equal(h.callKeep.called('displayIncomingCall').length, 0, 'no second report');
      assert.equal(h.coordinator.call(U)!.state, 'pushed');
      assert.equal(h.sip.lastRegisterParams()!.pnPrid, TOKEN);
      assert.equal(h.voip!.calls[0].method, 'registerVoipToken');
      // The INVITE arrives and updates the display.
      h.sip.receiveInvite({ callId: CID, fromDisplayName: 'Alice L.' });
      assert.deepEqual(h.callKeep.called('updateDisplay').at(-1)!.args, [U, 'Alice L.', 'sip:alice@example.com']);
    });
  }

  test('an answer buffered before the push reached JS is held, then applied: 200 OK when the INVITE comes', () => {
    const h = setup();
    replay([KILLED_CALLKEEP_BATCH_WITH_ANSWER, KILLED_VOIP_BATCH], h.callKeep, h.voip);
    assert.equal(h.coordinator.call(U)!.state, 'answerPending');
    assert.equal(h.sip.ops('audio').length, 1, 'audio device enabled once the session is active');
    h.sip.receiveInvite({ callId: CID });
    assert.equal(h.sip.ops('answer').length, 1);
    h.sip.completeAnswer(CID);
    assert.equal(h.coordinator.call(U)!.state, 'active');
  });

  test('a native report filtered by do-not-disturb: the INVITE gets 486, nothing is displayed', () => {
    const h = setup();
    replay(
      [
        {
          from: 'callkeep',
          event: 'didDisplayIncomingCall',
          data: { callUUID: UPPER, fromPushKit: '1', errorCode: 'FilteredByDoNotDisturb', error: 'filtered' },
        },
        { from: 'voip', event: 'notification', data: dict() },
      ],
      h.callKeep,
      h.voip,
    );
    h.sip.receiveInvite({ callId: CID });
    assert.equal(h.sip.finalResponses.get(CID), 486);
    assert.equal(h.callKeep.called('displayIncomingCall').length, 0);
    assert.equal(h.callKeep.called('reportEndCallWithUUID').length, 0);
  });

  test('the DND error arriving after adoption is forwarded too', () => {
    const h = setup();
    replay(
      [
        { from: 'voip', event: 'notification', data: dict() },
        { from: 'callkeep', event: 'didDisplayIncomingCall', data: { callUUID: UPPER, fromPushKit: '1', errorCode: 'FilteredByDoNotDisturb' } },
      ],
      h.callKeep,
      h.voip,
    );
    assert.equal(h.coordinator.call(U)!.state, 'ended');
    h.sip.receiveInvite({ callId: CID });
    assert.equal(h.sip.finalResponses.get(CID), 486);
  });

  test('a malformed push, reported natively as Unknown caller, is ended from JS under the fixed UUID', () => {
    const h = setup();
    replay([{ from: 'voip', event: 'notification', data: { aps: {}, pushcall: 'garbage' } }], h.callKeep, h.voip);
    assert.equal(h.callKeep.called('displayIncomingCall').length, 0);
    assert.deepEqual(h.callKeep.called('reportEndCallWithUUID')[0].args, [INVALID_PUSH_UUID, 1]);
  });

  test('an expired push is ended at once (reason 1 = failed)', () => {
    const h = setup();
    h.clock.advance(120_000);
    replay([{ from: 'voip', event: 'notification', data: dict({ sent_at: T0, ttl: 30 }) }], h.callKeep, h.voip);
    assert.deepEqual(h.callKeep.called('reportEndCallWithUUID')[0].args, [U, 1]);
  });

  test('an answer for a call JS never hears about is given up after the grace period', () => {
    const h = setup();
    const ghost = 'DEADBEEF-0000-5000-8000-000000000000';
    replay([{ from: 'callkeep', event: 'answerCall', data: { callUUID: ghost } }], h.callKeep, h.voip);
    h.clock.advance(4_999);
    assert.equal(h.callKeep.called('reportEndCallWithUUID').length, 0);
    h.clock.advance(1);
    assert.deepEqual(h.callKeep.called('reportEndCallWithUUID')[0].args, [ghost.toLowerCase(), 1]);
  });
});

describe('iOS, app running', () => {
  test('INVITE first: displayIncomingCall with the derived UUID (lowercase), later native echo ignored', () => {
    const h = setup();
    h.sip.receiveInvite({ callId: CID, fromDisplayName: 'Alice', video: true });
    assert.deepEqual(h.callKeep.called('displayIncomingCall')[0].args, [U, 'sip:alice@example.com', 'Alice', 'generic', true]);
    replay([{ from: 'callkeep', event: 'didDisplayIncomingCall', data: { callUUID: UPPER, fromPushKit: '0' } }], h.callKeep, h.voip);
    assert.equal(h.coordinator.call(U)!.state, 'ringing');
  });

  test('CANCEL with Reason cause=200 → reportEndCallWithUUID(uuid, 4)', () => {
    const h = setup();
    replay([{ from: 'voip', event: 'notification', data: dict() }], h.callKeep, h.voip);
    h.sip.receiveInvite({ callId: CID });
    h.sip.receiveCancel(CID, 'SIP;cause=200;text="Call completed elsewhere"');
    assert.deepEqual(h.callKeep.called('reportEndCallWithUUID')[0].args, [U, 4]);
  });

  test('CANCEL with cause=603 → 5 (declinedElsewhere) on iOS', () => {
    const h = setup();
    h.sip.receiveInvite({ callId: CID });
    h.sip.receiveCancel(CID, 'SIP;cause=603');
    assert.deepEqual(h.callKeep.called('reportEndCallWithUUID')[0].args, [U, 5]);
  });

  test('the adapter forgets a call once it ended, by the server or by the user (nothing kept per call)', () => {
    const h = setup();
    const sizes = () => {
      const a = h.adapter as unknown as { known: Set<string>; starts: Map<string, unknown> };
      return [a.known.size, a.starts.size];
    };
    h.sip.receiveInvite({ callId: CID });
    h.sip.receiveCancel(CID);
    assert.deepEqual(sizes(), [0, 0], 'ended by the caller');
    const out = h.coordinator.startCall('sip:bob@example.com');
    replay([{ from: 'callkeep', event: 'didReceiveStartCallAction', data: { callUUID: out.toUpperCase(), handle: 'sip:bob@example.com' } }], h.callKeep, h.voip);
    h.coordinator.hangup(out);
    replay([{ from: 'callkeep', event: 'endCall', data: { callUUID: out.toUpperCase() } }], h.callKeep, h.voip);
    assert.deepEqual(sizes(), [0, 0], 'ended by the user');
  });

  test('decline from the lock screen: 603, no reportEndCallWithUUID', () => {
    const h = setup();
    h.sip.receiveInvite({ callId: CID });
    replay([{ from: 'callkeep', event: 'endCall', data: { callUUID: UPPER } }], h.callKeep, h.voip);
    assert.equal(h.sip.finalResponses.get(CID), 603);
    assert.equal(h.callKeep.called('reportEndCallWithUUID').length, 0);
  });

  test('hangup from the app goes through RNCallKeep.endCall and its endCall event', () => {
    const h = setup();
    h.sip.receiveInvite({ callId: CID });
    replay([{ from: 'callkeep', event: 'answerCall', data: { callUUID: UPPER } }], h.callKeep, h.voip);
    h.sip.completeAnswer(CID);
    h.coordinator.hangup(U);
    assert.deepEqual(h.callKeep.called('endCall')[0].args, [U]);
    assert.equal(h.sip.ops('hangup').length, 1);
    assert.equal(h.coordinator.call(U)!.state, 'ended');
  });

  test('hold, unhold and mute events become actions; unhold re-enables audio', () => {
    const h = setup();
    h.sip.receiveInvite({ callId: CID });
    replay(
      [
        { from: 'callkeep', event: 'answerCall', data: { callUUID: UPPER } },
        { from: 'callkeep', event: 'didActivateAudioSession' },
      ],
      h.callKeep,
      h.voip,
    );
    h.sip.completeAnswer(CID);
    replay(
      [
        { from: 'callkeep', event: 'didToggleHoldCallAction', data: { hold: true, callUUID: UPPER } },
        { from: 'callkeep', event: 'didToggleHoldCallAction', data: { hold: false, callUUID: UPPER } },
        { from: 'callkeep', event: 'didPerformSetMutedCallAction', data: { muted: true, callUUID: UPPER } },
      ],
      h.callKeep,
      h.voip,
    );
    assert.deepEqual(h.sip.ops('hold').map((o) => o.onHold), [true, false]);
    assert.deepEqual(h.sip.ops('mute').map((o) => o.muted), [true]);
    assert.deepEqual(h.sip.ops('audio').map((o) => o.enabled), [true, true]);
  });

  test('outgoing: startCall → didReceiveStartCallAction → INVITE → connecting → connected', () => {
    const h = setup();
    const uuid = h.coordinator.startCall('sip:carol@example.com', { video: true });
    assert.deepEqual(h.callKeep.called('startCall')[0].args, [uuid, 'sip:carol@example.com', 'sip:carol@example.com', 'generic', true]);
    const callId = h.sip.ops('invite')[0].callId;
    assert.deepEqual(h.callKeep.called('reportConnectingOutgoingCallWithUUID')[0].args, [uuid]);
    h.sip.remoteAnswers(callId);
    assert.deepEqual(h.callKeep.called('reportConnectedOutgoingCallWithUUID')[0].args, [uuid]);
  });

  test('a token update re-registers; invalidation (forwarded from native) unregisters', () => {
    const h = setup();
    replay([{ from: 'voip', event: 'register', data: TOKEN }], h.callKeep, h.voip);
    assert.deepEqual(h.sip.lastRegisterParams(), { pnProvider: 'apns', pnPrid: TOKEN, pnParam: 'TEAM.com.example.voip' });
    h.adapter.pushTokenInvalidated();
    assert.equal(h.sip.ops('unregister').length, 1);
  });

  test('dispose removes every listener', () => {
    const h = setup();
    h.adapter.dispose();
    assert.equal(h.callKeep.listeners.size, 0);
    assert.equal(h.voip!.listeners.size, 0);
  });
});

describe('Android', () => {
  test('FCM data → displayIncomingCall; the Connection goes active only when the 200 OK was sent', () => {
    const h = setup('android');
    h.adapter.handleFcmData({ pushcall: JSON.stringify(payload(CID, { sent_at: h.clock.now() })) });
    assert.equal(h.callKeep.called('displayIncomingCall').length, 1);
    replay([{ from: 'callkeep', event: 'answerCall', data: { callUUID: U } }], h.callKeep);
    assert.equal(h.callKeep.called('setCurrentCallActive').length, 0);
    h.sip.receiveInvite({ callId: CID });
    assert.equal(h.callKeep.called('setCurrentCallActive').length, 0);
    h.sip.completeAnswer(CID);
    assert.deepEqual(h.callKeep.called('setCurrentCallActive')[0].args, [U]);
  });

  test('iOS: a refresh push as a remote notification re-registers and shows nothing', () => {
    const h = setup('ios');
    h.voip!.emit('register', TOKEN);
    h.coordinator.setAlertToken('cc'.repeat(32));
    const before = h.sip.ops('register').length;
    h.adapter.handleRemoteNotification({ getData: () => ({ aps: { 'content-available': 1 }, pushcall: { v: 1, type: 'refresh', to: 'sip:a@example.com', sent_at: h.clock.now(), ttl: 120 } }) });
    assert.equal(h.sip.ops('register').length, before + 1);
    assert.equal(h.sip.ops('register').at(-1)!.params?.pnPrid, `${TOKEN}:voip&${'cc'.repeat(32)}:remote`);
    assert.equal(h.callKeep.called('displayIncomingCall').length, 0);
  });

  test('declinedElsewhere maps to callkeep 2 on Android', () => {
    const h = setup('android');
    h.adapter.handleFcmData({ pushcall: JSON.stringify(payload(CID, { sent_at: h.clock.now() })) });
    h.sip.receiveInvite({ callId: CID });
    h.sip.receiveCancel(CID, 'SIP;cause=600');
    assert.deepEqual(h.callKeep.called('reportEndCallWithUUID')[0].args, [U, 2]);
  });

  test('createIncomingConnectionFailed ends the call silently and rejects the INVITE', () => {
    const h = setup('android');
    h.sip.receiveInvite({ callId: CID });
    replay([{ from: 'callkeep', event: 'createIncomingConnectionFailed', data: { callUUID: U } }], h.callKeep);
    assert.equal(h.sip.finalResponses.get(CID), 480);
  });

  test('FCM token → pn-provider=fcm', () => {
    const h = setup('android');
    h.adapter.fcmTokenUpdated('fcm-tok');
    assert.deepEqual(h.sip.lastRegisterParams(), { pnProvider: 'fcm', pnPrid: 'fcm-tok', pnParam: 'proj' });
  });
});
