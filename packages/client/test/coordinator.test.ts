import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IllegalTransitionError, TRANSITIONS, callUuid, checkTransition, isClientError } from '../src/index.js';
import { androidHarness, apns, iosHarness, payload } from './support/harness.js';

const CID = 'call-1@pbx.example.com';
const U = callUuid(CID);

describe('push → CallKit (iOS rules)', () => {
  test('reports a push to CallKit before the handler returns, with the payload caller', () => {
    const h = iosHarness();
    const r = h.push(CID);
    assert.deepEqual(r, { delivered: true, reported: true, killed: false });
    assert.equal(h.ios.kills, 0);
    const c = h.ios.call(U)!;
    assert.equal(c.state, 'ringing');
    assert.equal(c.details.displayName, 'Alice');
    assert.equal(h.coordinator.call(U)!.state, 'pushed');
    // and refreshes the registration so the server can deliver the INVITE
    assert.equal(h.sip.ops('register').length, 1);
  });

  test('a malformed push is reported as "Unknown caller" and ended at once', () => {
    const h = iosHarness();
    for (const body of [null, 'garbage', { aps: {} }, { pushcall: '{broken' }, { pushcall: { v: 1, type: 'call' } }]) {
      const r = h.ios.deliverVoipPush(body);
      assert.equal(r.killed, false, JSON.stringify(body));
    }
    assert.equal(h.ios.kills, 0);
    assert.ok(h.ios.history.length >= 1);
    for (const c of h.ios.history) {
      assert.equal(c.details.displayName, 'Unknown caller');
      assert.equal(c.state, 'ended');
      assert.equal(c.endReason, 'failed');
    }
    assert.equal(h.ios.liveCalls().length, 0);
    assert.ok(h.events.some((e) => e.type === 'error' && e.error.code === 'CLIENT_ERR_INVALID_PAYLOAD'));
  });

  test('a malformed push with a readable call_id maps to that call UUID', () => {
    const h = iosHarness();
    h.ios.deliverVoipPush({ pushcall: { v: 1, type: 'call', call_id: CID, video: 'perhaps' } });
    assert.equal(h.ios.call(U)!.endReason, 'failed');
  });

  test('an expired push (sent_at + ttl < now) is reported and ended immediately', () => {
    const h = iosHarness();
    h.push(CID, { sent_at: h.clock.now() - 31_000, ttl: 30 });
    const c = h.ios.call(U)!;
    assert.equal(c.state, 'ended');
    assert.equal(c.endReason, 'failed');
    assert.equal(h.ios.kills, 0);
    // a late INVITE for it is turned away
    h.sip.receiveInvite({ callId: CID });
    assert.equal(h.sip.finalResponses.get(CID), 480);
  });

  test('duplicate VoIP pushes are reported again (iOS demands it) but ring once', () => {
    const h = iosHarness();
    h.push(CID);
    h.push(CID);
    h.push(CID);
    assert.equal(h.ios.kills, 0);
    assert.equal(h.ios.incarnations(U), 1);
    assert.equal(h.ios.ringingCalls().length, 1);
  });

  test('a late VoIP push for a call that already ended is reported and ended at once', () => {
    const h = iosHarness();
    h.push(CID);
    h.sip.receiveInvite({ callId: CID });
    h.sip.receiveCancel(CID, 'SIP;cause=200;text="Call completed elsewhere"');
    h.push(CID);
    assert.equal(h.ios.kills, 0);
    assert.equal(h.ios.incarnations(U), 2);
    assert.equal(h.ios.call(U)!.state, 'ended');
    assert.equal(h.ios.call(U)!.endReason, 'answeredElsewhere');
    assert.deepEqual(h.ios.violations, []);
  });

  test('iOS 26.4 mustReport=false: a duplicate needs no report', () => {
    const h = iosHarness();
    h.push(CID);
    const r = h.ios.deliverVoipPush(apns(payload(CID, {}, h.clock)), { mustReport: false });
    assert.equal(r.killed, false);
  });
});

describe('push ↔ INVITE matching by Call-ID', () => {
  test('push then INVITE converge on one call; the INVITE caller replaces the placeholder', () => {
    const h = iosHarness();
    h.push(CID, { from_name: 'Alice (push)' });
    h.sip.receiveInvite({ callId: CID, fromDisplayName: 'Alice Liddell', fromUri: 'sip:alice@wonderland.example' });
    assert.equal(h.ios.incarnations(U), 1);
    const c = h.ios.call(U)!;
    assert.equal(c.details.displayName, 'Alice Liddell');
    assert.equal(c.details.handle, 'sip:alice@wonderland.example');
    assert.equal(h.coordinator.call(U)!.state, 'ringing');
  });

  test('INVITE then push converge too (the push is late)', () => {
    const h = iosHarness();
    h.sip.receiveInvite({ callId: CID, fromDisplayName: 'Alice' });
    assert.equal(h.ios.call(U)!.state, 'ringing');
    h.push(CID);
    assert.equal(h.ios.incarnations(U), 1);
    assert.equal(h.ios.kills, 0);
  });

  test('a duplicate INVITE is idempotent', () => {
    const h = iosHarness();
    h.push(CID);
    h.sip.receiveInvite({ callId: CID });
    h.sip.receiveInvite({ callId: CID }, { duplicate: true });
    assert.equal(h.ios.incarnations(U), 1);
    assert.equal(h.coordinator.call(U)!.state, 'ringing');
  });

  test('two overlapping calls keep their own UUIDs', () => {
    const h = iosHarness();
    h.push('a@x');
    h.push('b@x');
    h.sip.receiveInvite({ callId: 'b@x', fromDisplayName: 'Bea' });
    h.sip.receiveInvite({ callId: 'a@x', fromDisplayName: 'Al' });
    assert.equal(h.ios.call(callUuid('a@x'))!.details.displayName, 'Al');
    assert.equal(h.ios.call(callUuid('b@x'))!.details.displayName, 'Bea');
  });
});

describe('answer and decline', () => {
  test('defers CXAnswerCallAction until the SIP 200 OK was sent', () => {
    const h = iosHarness();
    h.push(CID);
    h.sip.receiveInvite({ callId: CID });
    h.ios.userAnswers(U);
    const action = h.ios.actions.find((a) => a.kind === 'answer')!;
    assert.equal(action.status, 'pending', 'not fulfilled before the 200 OK');
    assert.equal(h.sip.ops('answer').length, 1);
    h.clock.advance(500);
    h.sip.completeAnswer(CID);
    assert.equal(action.status, 'fulfilled');
    assert.ok(action.completedSeq! > h.sip.answerSentSeq(CID)!);
    assert.equal(h.ios.call(U)!.state, 'connected');
    assert.equal(h.coordinator.call(U)!.state, 'active');
  });

  test('answer before the INVITE: the action is held, the INVITE is answered on arrival, then fulfilled', () => {
    const h = iosHarness();
    h.push(CID);
    h.ios.userAnswers(U);
    assert.equal(h.coordinator.call(U)!.state, 'answerPending');
    assert.equal(h.sip.ops('answer').length, 0);
    h.clock.advance(3_000);
    h.sip.receiveInvite({ callId: CID });
    assert.equal(h.sip.ops('answer').length, 1, 'answered as soon as the INVITE came');
    const action = h.ios.actions.find((a) => a.kind === 'answer')!;
    assert.equal(action.status, 'pending');
    h.sip.completeAnswer(CID);
    assert.equal(action.status, 'fulfilled');
    assert.deepEqual(h.ios.violations, []);
  });

  test('answer before the INVITE fails the action and ends as failed when the INVITE never comes', () => {
    const h = iosHarness({}, { actionTimeoutMs: 60_000 });
    h.push(CID);
    h.clock.advance(2_000);
    h.ios.userAnswers(U);
    h.clock.advance(12_999);
    assert.equal(h.ios.call(U)!.state, 'ringing');
    h.clock.advance(1);
    const action = h.ios.actions.find((a) => a.kind === 'answer')!;
    assert.equal(action.status, 'failed');
    assert.equal(h.ios.call(U)!.state, 'ended');
    assert.equal(h.ios.call(U)!.endReason, 'failed');
    h.sip.receiveInvite({ callId: CID });
    assert.equal(h.sip.finalResponses.get(CID), 480);
  });

  test("CallKit's answer-action timeout ends the call as failed and hangs up", () => {
    const h = iosHarness({}, { actionTimeoutMs: 5_000 });
    h.push(CID);
    h.sip.receiveInvite({ callId: CID });
    h.ios.userAnswers(U);
    h.clock.advance(5_000);
    assert.equal(h.ios.call(U)!.endReason, 'failed');
    assert.equal(h.sip.ops('hangup').length, 1);
    h.sip.completeAnswer(CID); // too late: ignored
    assert.deepEqual(h.ios.violations, []);
  });

  test('decline before the INVITE: the INVITE is rejected with 603 when it arrives', () => {
    const h = iosHarness();
    h.push(CID);
    h.ios.userDeclines(U);
    assert.equal(h.ios.call(U)!.endedBy, 'endAction');
    h.sip.receiveInvite({ callId: CID });
    assert.equal(h.sip.finalResponses.get(CID), 603);
    assert.equal(h.ios.incarnations(U), 1, 'never rings again');
  });

  test('decline while ringing sends 603 and fulfils the end action (no reportEnded)', () => {
    const h = iosHarness();
    h.sip.receiveInvite({ callId: CID });
    h.ios.userDeclines(U);
    assert.equal(h.sip.finalResponses.get(CID), 603);
    assert.equal(h.ios.call(U)!.endedBy, 'endAction');
    assert.deepEqual(h.ios.violations, []);
  });
});

describe('ghost calls', () => {
  test('no INVITE within 15 s of the push ends the call as failed', () => {
    const h = iosHarness();
    h.push(CID);
    h.clock.advance(14_999);
    assert.equal(h.ios.call(U)!.state, 'ringing');
    h.clock.advance(1);
    assert.equal(h.ios.call(U)!.state, 'ended');
    assert.equal(h.ios.call(U)!.endReason, 'failed');
  });

  test('the no-INVITE timeout is configurable', () => {
    const h = iosHarness({ noInviteTimeoutMs: 5_000 });
    h.push(CID);
    h.clock.advance(5_000);
    assert.equal(h.ios.call(U)!.state, 'ended');
  });

  test('a registration failure ends calls still waiting for their INVITE, not ringing ones', () => {
    const h = iosHarness();
    h.push('wait@x');
    h.push('here@x');
    h.sip.receiveInvite({ callId: 'here@x' });
    h.sip.registration({ state: 'failed', code: 503 });
    assert.equal(h.ios.call(callUuid('wait@x'))!.endReason, 'failed');
    assert.equal(h.ios.call(callUuid('here@x'))!.state, 'ringing');
  });

  for (const [reason, expected] of [
    ['SIP;cause=200;text="Call completed elsewhere"', 'answeredElsewhere'],
    ['SIP;cause=600;text="Busy Everywhere"', 'declinedElsewhere'],
    ['SIP;cause=603;text="Decline"', 'declinedElsewhere'],
    ['SIP;cause=487;text="Request terminated"', 'remoteEnded'],
    [undefined, 'remoteEnded'],
  ] as const) {
    test(`cancel before wake: INVITE then CANCEL (${reason ?? 'no Reason'}) ends the call at once as ${expected}`, () => {
      const h = iosHarness();
      h.push(CID);
      h.clock.advance(1_000);
      h.ios.serverEnded(U);
      h.clock.advance(1_500);
      h.sip.receiveInvite({ callId: CID });
      h.sip.receiveCancel(CID, reason);
      const c = h.ios.call(U)!;
      assert.equal(c.state, 'ended');
      assert.equal(c.endReason, expected);
      assert.equal(h.ios.ghostRingMs(U), 1_500);
    });
  }

  test('answered_elsewhere / declined_elsewhere / missed_call pushes end a ringing call', () => {
    for (const [type, expected] of [
      ['answered_elsewhere', 'answeredElsewhere'],
      ['declined_elsewhere', 'declinedElsewhere'],
      ['missed_call', 'remoteEnded'],
    ] as const) {
      const h = androidHarness();
      h.push(CID);
      h.android.deliverFcm({ pushcall: JSON.stringify(payload(CID, { type }, h.clock)) });
      assert.equal(h.android.call(U)!.endReason, expected, type);
    }
  });

  test('an elsewhere push that overtakes the call push leaves a tombstone: the VoIP push is reported and ended at once', () => {
    const h = iosHarness();
    h.coordinator; // the alert push is delivered as a regular notification: mustReport=false
    h.ios.deliverVoipPush(apns(payload(CID, { type: 'answered_elsewhere' }, h.clock)), { mustReport: false });
    assert.equal(h.ios.history.length, 0);
    h.push(CID);
    assert.equal(h.ios.kills, 0);
    assert.equal(h.ios.call(U)!.state, 'ended');
    assert.equal(h.ios.call(U)!.endReason, 'answeredElsewhere');
  });

  test('missed_call pushes are surfaced to the app', () => {
    const h = androidHarness();
    const seen: string[] = [];
    h.coordinator.events.subscribe((e) => {
      if (e.type === 'missedCall' || e.type === 'message') seen.push(e.type);
    });
    h.android.deliverFcm({ pushcall: JSON.stringify(payload(CID, { type: 'missed_call' }, h.clock)) });
    h.android.deliverFcm({ pushcall: JSON.stringify(payload('m@x', { type: 'message', text: 'hi' }, h.clock)) });
    assert.deepEqual(seen, ['missedCall', 'message']);
  });

  test('a refresh push (RFC 8599 §5.5) re-registers with the push params and shows nothing', () => {
    const h = androidHarness();
    h.android.deliverToken('fcm-token-1');
    const registersBefore = h.sip.ops('register').length;
    const seen: string[] = [];
    h.coordinator.events.subscribe((e) => {
      if (e.type === 'refreshPush') seen.push(e.payload.to);
    });
    const refresh = { v: 1, type: 'refresh', to: 'sip:alice@example.com', sent_at: h.clock.now(), ttl: 120 };
    h.android.deliverFcm({ pushcall: JSON.stringify(refresh) });
    const registers = h.sip.ops('register');
    assert.equal(registers.length, registersBefore + 1);
    assert.equal(registers.at(-1)!.params?.pnPrid, 'fcm-token-1');
    assert.deepEqual(seen, ['sip:alice@example.com']);
    assert.equal(h.coordinator.calls().length, 0, 'no call record');
    assert.equal(h.android.liveCalls().length, 0, 'nothing shown');
  });

  test('iOS: with the remote-notification token, both tokens are registered (two-token form); a refresh on it re-registers', () => {
    const h = iosHarness();
    const voip = 'aa'.repeat(32);
    const alert = 'bb'.repeat(32);
    h.ios.deliverToken(voip);
    assert.equal(h.sip.ops('register').at(-1)!.params?.pnPrid, voip);
    h.coordinator.setAlertToken(alert);
    const both = h.sip.ops('register').at(-1)!.params;
    assert.equal(both?.pnPrid, `${voip}:voip&${alert}:remote`);
    assert.equal(both?.pnParam, 'TEAM123456.com.example.app.voip&remote');
    const before = h.sip.ops('register').length;
    h.coordinator.setAlertToken(alert); // the same token again: nothing to do
    assert.equal(h.sip.ops('register').length, before);
    // A refresh arrives as a background notification on the alert token: no CallKit report.
    h.ios.deliverRemoteNotification({ aps: { 'content-available': 1 }, pushcall: { v: 1, type: 'refresh', to: 'sip:a@example.com', sent_at: h.clock.now(), ttl: 120 } });
    assert.equal(h.sip.ops('register').length, before + 1);
    assert.equal(h.sip.ops('register').at(-1)!.params?.pnPrid, `${voip}:voip&${alert}:remote`);
    assert.equal(h.ios.history.length, 0, 'nothing shown');
    h.coordinator.setAlertToken(undefined);
    assert.equal(h.sip.ops('register').at(-1)!.params?.pnPrid, voip);
  });

  test('a refresh push that arrives as a VoIP push is still reported (iOS rule) and ended at once', () => {
    const h = iosHarness();
    const r = h.ios.deliverVoipPush({ aps: {}, pushcall: { v: 1, type: 'refresh', to: 'sip:bob@example.com', sent_at: h.clock.now(), ttl: 120 } });
    assert.equal(r.killed, false);
    assert.equal(h.ios.kills, 0);
    assert.equal(h.ios.liveCalls().length, 0);
    assert.equal(h.sip.ops('register').length, 1);
  });
});

describe('connected calls', () => {
  function connected() {
    const h = iosHarness();
    h.push(CID);
    h.sip.receiveInvite({ callId: CID });
    h.ios.userAnswers(U);
    h.sip.completeAnswer(CID);
    return h;
  }

  test('audio starts only after CallKit activates the audio session', () => {
    const h = connected();
    assert.equal(h.sip.audioEnabled, false, 'not before didActivate');
    h.clock.advance(20);
    assert.equal(h.ios.audioSessionActive, true);
    assert.equal(h.sip.audioEnabled, true);
    assert.deepEqual(h.sip.violations, []);
  });

  test('unhold re-enables audio although iOS does not call didActivate again', () => {
    const h = connected();
    h.clock.advance(20);
    h.ios.userHolds(U);
    assert.deepEqual(h.sip.ops('hold').map((o) => o.onHold), [true]);
    const audioOpsBefore = h.sip.ops('audio').length;
    const activationsBefore = h.ios.audioHistory.length;
    h.ios.userUnholds(U);
    h.clock.advance(100);
    assert.equal(h.ios.audioHistory.length, activationsBefore, 'no new didActivate');
    assert.equal(h.sip.ops('audio').length, audioOpsBefore + 1);
    assert.equal(h.sip.ops('audio').at(-1)!.enabled, true);
  });

  test('audio interruption disables audio; its end re-enables it', () => {
    const h = connected();
    h.clock.advance(20);
    h.ios.interruptAudio();
    assert.equal(h.sip.audioEnabled, false);
    h.ios.endAudioInterruption();
    h.clock.advance(20);
    assert.equal(h.sip.audioEnabled, true);
  });

  test('remote BYE ends the call with remoteEnded', () => {
    const h = connected();
    h.sip.receiveBye(CID);
    assert.equal(h.ios.call(U)!.endReason, 'remoteEnded');
  });

  test('the user hangs up: BYE, end action fulfilled, no reportEnded', () => {
    const h = connected();
    h.ios.userEnds(U);
    assert.equal(h.sip.ops('hangup').length, 1);
    assert.equal(h.ios.call(U)!.endedBy, 'endAction');
    assert.deepEqual(h.ios.violations, []);
  });

  test('mute and unmute are applied through SIP', () => {
    const h = connected();
    h.ios.userMutes(U, true);
    assert.deepEqual(h.sip.ops('mute').map((o) => o.muted), [true]);
    assert.equal(h.ios.call(U)!.muted, true);
    h.ios.userMutes(U, false);
    assert.deepEqual(h.sip.ops('mute').map((o) => o.muted), [true, false], 'the microphone comes back');
    assert.equal(h.ios.call(U)!.muted, false);
  });

  test('a call still ringing after ringTimeoutMs (120 s by default: its CANCEL was lost) ends unanswered with 480', () => {
    const h = iosHarness();
    h.push(CID);
    h.sip.receiveInvite({ callId: CID });
    assert.equal(h.ios.call(U)!.state, 'ringing');
    h.clock.advance(119_999);
    assert.equal(h.ios.call(U)!.state, 'ringing');
    h.clock.advance(1);
    assert.equal(h.ios.call(U)!.endReason, 'unanswered');
    assert.deepEqual(h.sip.ops('reject').map((o) => o.code), [480]);
    assert.deepEqual(h.ios.violations, []);
  });

  test('call waiting: answering a second call holds the first (Hold & Accept)', () => {
    const h = connected();
    h.clock.advance(20);
    const U2 = callUuid('second@x');
    h.sip.receiveInvite({ callId: 'second@x', fromDisplayName: 'Bob' });
    h.ios.userAnswers(U2);
    h.sip.completeAnswer('second@x');
    assert.equal(h.ios.call(U)!.held, true);
    assert.equal(h.ios.call(U2)!.state, 'connected');
    h.ios.userEnds(U2);
    h.ios.userUnholds(U);
    assert.equal(h.ios.call(U)!.held, false);
    h.clock.advance(50);
    assert.equal(h.sip.audioEnabled, true);
    assert.deepEqual([...h.ios.violations, ...h.sip.violations], []);
  });
});

describe('outgoing calls', () => {
  test('start action → INVITE → connecting → 200 → connected', () => {
    const h = iosHarness();
    const uuid = h.coordinator.startCall('sip:carol@example.com');
    const callId = h.sip.ops('invite')[0].callId;
    assert.equal(h.ios.call(uuid)!.state, 'connecting');
    assert.equal(h.ios.actions.find((a) => a.kind === 'start')!.status, 'fulfilled');
    h.sip.remoteRinging(callId);
    h.sip.remoteAnswers(callId);
    assert.equal(h.ios.call(uuid)!.state, 'connected');
    h.clock.advance(20);
    assert.equal(h.sip.audioEnabled, true);
  });

  test('from Recents (system-started): the same path', () => {
    const h = iosHarness();
    const uuid = h.ios.userStartsCall('sip:dave@example.com', { video: true });
    assert.equal(h.coordinator.call(uuid)!.state, 'dialing');
  });

  test('our own call coming back to us (we called our AOR) is refused 482; the outgoing call carries on', () => {
    const h = iosHarness();
    const uuid = h.coordinator.startCall('sip:me@example.com');
    const callId = h.sip.ops('invite')[0].callId;
    h.sip.receiveInvite({ callId });
    assert.deepEqual(h.sip.ops('reject').map((o) => [o.callId, o.code]), [[callId, 482]]);
    assert.deepEqual(h.ios.ringingCalls(), [], 'nothing rings');
    h.sip.remoteAnswers(callId);
    assert.equal(h.ios.call(uuid)!.state, 'connected');
    assert.equal(h.coordinator.call(uuid)!.state, 'active');
  });

  test('busy → remoteEnded; server error → failed', () => {
    const h = iosHarness();
    const a = h.coordinator.startCall('sip:busy@example.com');
    h.sip.remoteRejects(h.sip.ops('invite')[0].callId, 486);
    assert.equal(h.ios.call(a)!.endReason, 'remoteEnded');
    const b = h.coordinator.startCall('sip:broken@example.com');
    h.sip.remoteRejects(h.sip.ops('invite')[1].callId, 503);
    assert.equal(h.ios.call(b)!.endReason, 'failed');
  });
});

describe('do-not-disturb and block list', () => {
  test('DND: the INVITE is answered 486 (this device only) and nothing rings', () => {
    const h = iosHarness();
    h.ios.doNotDisturb = true;
    h.sip.receiveInvite({ callId: CID });
    assert.equal(h.sip.finalResponses.get(CID), 486);
    assert.equal(h.ios.history.length, 0);
  });

  test('DND on a pushed call: the push counts as reported; the later INVITE gets 486', () => {
    const h = iosHarness();
    h.ios.doNotDisturb = true;
    h.push(CID);
    assert.equal(h.ios.kills, 0);
    h.sip.receiveInvite({ callId: CID });
    assert.equal(h.sip.finalResponses.get(CID), 486);
  });

  test('blocked caller → 486', () => {
    const h = iosHarness();
    h.ios.blockedHandles.add('sip:spam@example.com');
    h.sip.receiveInvite({ callId: CID, fromUri: 'sip:spam@example.com' });
    assert.equal(h.sip.finalResponses.get(CID), 486);
  });
});

describe('push tokens and registration', () => {
  test('a token registers with RFC 8599 params; a new token re-registers; invalidation unregisters', () => {
    const h = iosHarness();
    h.ios.deliverToken('aabbcc');
    assert.deepEqual(h.sip.lastRegisterParams(), {
      pnProvider: 'apns',
      pnPrid: 'aabbcc',
      pnParam: 'TEAM123456.com.example.app.voip',
    });
    h.sip.registration({ state: 'registered' });
    h.ios.deliverToken('aabbcc');
    assert.equal(h.sip.ops('register').length, 1, 'same token, registered: no REGISTER');
    h.ios.deliverToken('ddeeff');
    assert.equal(h.sip.lastRegisterParams()!.pnPrid, 'ddeeff');
    h.ios.invalidateToken();
    assert.equal(h.sip.ops('unregister').length, 1);
    assert.equal(h.coordinator.currentToken, undefined);
  });

  test('sandbox builds add pn-apns-env=sandbox', async () => {
    const { apnsPushConfig } = await import('../src/index.js');
    const h = iosHarness({ pushConfig: apnsPushConfig({ teamId: 'T', bundleId: 'b', sandbox: true }) });
    h.ios.deliverToken('01');
    assert.deepEqual(h.sip.lastRegisterParams()!.extra, { 'pn-apns-env': 'sandbox' });
  });

  test('FCM: pn-provider=fcm, pn-param=<project id>', () => {
    const h = androidHarness();
    h.android.deliverToken('fcm-token-1');
    assert.deepEqual(h.sip.lastRegisterParams(), { pnProvider: 'fcm', pnPrid: 'fcm-token-1', pnParam: 'pushcall-demo' });
  });
});

describe('Android (FCM + ConnectionService-like UI)', () => {
  test('a high-priority data message rings through the same coordinator', () => {
    const h = androidHarness();
    h.push(CID);
    assert.equal(h.android.call(U)!.state, 'ringing');
    h.sip.receiveInvite({ callId: CID });
    h.android.userAnswers(U);
    h.sip.completeAnswer(CID);
    h.clock.advance(20);
    assert.equal(h.sip.audioEnabled, true);
  });

  test('an expired data message does not ring at all (nothing forces a report)', () => {
    const h = androidHarness();
    h.push(CID, { sent_at: h.clock.now() - 60_000, ttl: 30 });
    assert.equal(h.android.history.length, 0);
    h.sip.receiveInvite({ callId: CID });
    assert.equal(h.sip.finalResponses.get(CID), 480);
  });

  test('a malformed data message is dropped without UI', () => {
    const h = androidHarness();
    h.android.deliverFcm({ pushcall: '{nope' });
    assert.equal(h.android.history.length, 0);
  });
});

describe('state machine', () => {
  test('ended is terminal and every state has an allow-list', () => {
    assert.deepEqual(TRANSITIONS.ended, []);
    assert.throws(() => checkTransition('u', 'ended', 'ringing', 'test'), IllegalTransitionError);
    try {
      checkTransition('u', 'active', 'pushed', 'test');
    } catch (e) {
      assert.ok(isClientError(e));
      assert.equal(e.code, 'CLIENT_ERR_ILLEGAL_TRANSITION');
    }
  });

  test('the timeline tells the story of a call, for ladder diagrams', () => {
    const h = iosHarness();
    h.push(CID);
    h.ios.userAnswers(U);
    h.sip.receiveInvite({ callId: CID });
    h.sip.completeAnswer(CID);
    const whats = h.coordinator.timeline(U).map((e) => e.what);
    const order = ['apns-voip push (call)', 'reportNewIncomingCall', 'CXAnswerCallAction', 'INVITE', 'answer (200 OK)', '200 OK sent', 'CXAnswerCallAction.fulfill'];
    let i = 0;
    for (const w of whats) if (w === order[i]) i++;
    assert.equal(i, order.length, whats.join(' | '));
    const seqs = h.coordinator.timeline(U).map((e) => e.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  });

  test('provider reset ends every call and hangs up SIP', () => {
    const h = iosHarness();
    h.sip.receiveInvite({ callId: CID });
    h.ios.userAnswers(U);
    h.sip.completeAnswer(CID);
    h.push('other@x');
    h.ios.resetProvider();
    assert.equal(h.coordinator.call(U)!.state, 'ended');
    assert.equal(h.coordinator.call(callUuid('other@x'))!.state, 'ended');
    assert.equal(h.sip.ops('hangup').length, 1);
    assert.deepEqual(h.ios.violations, []);
  });

  test('a throwing event listener does not break call handling', () => {
    const h = iosHarness();
    h.coordinator.events.subscribe(() => {
      throw new Error('app bug');
    });
    h.push(CID);
    assert.equal(h.ios.kills, 0);
    assert.equal(h.ios.call(U)!.state, 'ringing');
  });
});
