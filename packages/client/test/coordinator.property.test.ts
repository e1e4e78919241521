/**
 * Property-based tests: random interleavings of pushes (valid, malformed, expired,
 * duplicate, elsewhere), INVITEs (before/after the push, duplicated, cancel-before-wake),
 * CANCEL with each Reason, BYE, answer, decline, the 200 OK going out, hold/unhold, mute,
 * audio interruptions, time passing, token changes, registration failures and outgoing
 * calls, on a simulated iPhone (and Android), checking after every step that:
 *
 *  1. the app is never killed (every VoIP push reported before the handler returns);
 *  2. every reported call ends exactly once (no platform violation), and at the end all do;
 *  3. a CANCEL that reaches a ringing call ends it at once with the Reason's end reason;
 *  4. nothing keeps ringing after the server said the call ended: at once when the signal
 *     reaches the phone, within the no-INVITE timeout when it cannot;
 *  5. an answer action is fulfilled only after the SIP 200 OK was sent;
 *  6. no call is reported twice: a UUID rings at most once; a later report of the same
 *     UUID (late duplicate push) is ended in the same instant;
 *  7. audio is never enabled while the system audio session is inactive;
 *  8. a registration failure leaves no call waiting for its INVITE;
 *  9. the coordinator never makes an illegal transition (strict mode throws).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FakeClock } from '../../sip/src/util/clock.js';
import { SimulatedAndroid, SimulatedIos, createSequence } from '../../testkit/src/platform/index.js';
import type { SimulatedCallUi } from '../../testkit/src/platform/index.js';
import { CallCoordinator, apnsPushConfig, callUuid, endReasonForCancelHeader } from '../src/index.js';
import { FakeSipPort } from './support/fake-sip.js';
import { T0, apns, payload } from './support/harness.js';

/** Replay a failure: FC_SEED=<seed> [FC_PATH=<path>] (printed by fast-check when a property fails). */
const replay = process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), ...(process.env.FC_PATH ? { path: process.env.FC_PATH } : {}) } : {};

const CALLS = ['c0@pbx', 'c1@pbx', 'c2@pbx'];
const REASONS = [
  'SIP;cause=200;text="Call completed elsewhere"',
  'SIP;cause=600;text="Busy Everywhere"',
  'SIP;cause=603;text="Decline"',
  'SIP;cause=487;text="Request terminated"',
  undefined,
] as const;
const NO_INVITE_MS = 15_000;

type Cmd =
  | { k: 'push'; i: number; variant: 'valid' | 'malformed' | 'malformedWithId' | 'expired' }
  | { k: 'elsewhere'; i: number; type: 'answered_elsewhere' | 'declined_elsewhere' | 'missed_call' }
  | { k: 'invite'; i: number }
  | { k: 'serverEnds'; i: number; r: number }
  | { k: 'answer'; i: number }
  | { k: 'decline'; i: number }
  | { k: 'sent200'; i: number }
  | { k: 'bye'; i: number }
  | { k: 'hold'; i: number; on: boolean }
  | { k: 'mute'; i: number }
  | { k: 'advance'; ms: number }
  | { k: 'interrupt' }
  | { k: 'resume' }
  | { k: 'token'; t: number }
  | { k: 'invalidate' }
  | { k: 'regFail' }
  | { k: 'regOk' }
  | { k: 'dial' }
  | { k: 'remoteAnswers' }
  | { k: 'remoteRejects'; code: number }
  | { k: 'dnd'; on: boolean }
  | { k: 'answerFails'; i: number }
  | { k: 'reset' };

const idx = fc.integer({ min: 0, max: CALLS.length - 1 });
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant('push' as const), i: idx, variant: fc.constantFrom('valid', 'valid', 'valid', 'malformed', 'malformedWithId', 'expired') }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('elsewhere' as const), i: idx, type: fc.constantFrom('answered_elsewhere', 'declined_elsewhere', 'missed_call') }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('invite' as const), i: idx }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('serverEnds' as const), i: idx, r: fc.integer({ min: 0, max: REASONS.length - 1 }) }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('answer' as const), i: idx }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('decline' as const), i: idx }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('sent200' as const), i: idx }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('bye' as const), i: idx }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('hold' as const), i: idx, on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('mute' as const), i: idx }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('advance' as const), ms: fc.oneof(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 20_000 })) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'interrupt' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'resume' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('token' as const), t: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'invalidate' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'regFail' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'regOk' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'dial' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'remoteAnswers' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('remoteRejects' as const), code: fc.constantFrom(486, 503, 603) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('dnd' as const), on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('answerFails' as const), i: idx }) },
  { weight: 1, arbitrary: fc.constant({ k: 'reset' as const }) },
);

/** What the server knows about each call towards this device. */
interface ServerCall {
  inviteDelivered: boolean;
  ended: boolean;
  reason: string | undefined;
}

function run(platform: 'ios' | 'android', cmds: Cmd[]): void {
  const clock = new FakeClock(T0);
  const sequence = createSequence();
  const ios = platform === 'ios' ? new SimulatedIos({ clock, sequence }) : undefined;
  const android = platform === 'android' ? new SimulatedAndroid({ clock, sequence }) : undefined;
  const ui: SimulatedCallUi = (ios ?? android)!;
  const sip = new FakeSipPort({ sequence, audioAllowed: () => ui.audioSessionActive });
  const coordinator = new CallCoordinator({
    ui,
    push: (ios ?? android)!.push,
    sip,
    clock,
    strict: true,
    retainEndedMs: 24 * 3600_000,
    pushConfig: apnsPushConfig({ teamId: 'TEAM', bundleId: 'app' }),
  });
  const server: ServerCall[] = CALLS.map(() => ({ inviteDelivered: false, ended: false, reason: undefined }));
  const uuidToCallId = new Map(CALLS.map((c) => [callUuid(c), c]));
  const outgoing: string[] = [];
  const trace: string[] = [];

  const deliver = (body: unknown, callIdx?: number): void => {
    if (ios) {
      const r = ios.deliverVoipPush(body);
      assert.equal(r.killed, false, 'app killed: push not reported before the handler returned');
    } else {
      const data = typeof body === 'object' && body && 'pushcall' in body ? { pushcall: JSON.stringify((body as { pushcall: unknown }).pushcall) } : { pushcall: String(body) };
      android!.deliverFcm(data);
    }
    // A push for a call the server has already ended (delayed by APNs/FCM).
    if (callIdx !== undefined && server[callIdx].ended) ui.serverEnded(callUuid(CALLS[callIdx]));
  };

  const cancelReached = (i: number, reason: string | undefined, wasRinging: boolean): void => {
    const c = ui.call(callUuid(CALLS[i]));
    if (!wasRinging || !c) return;
    assert.equal(c.state, 'ended', `${CALLS[i]} still ${c.state} after CANCEL`);
    if (c.endedBy === 'reportEnded') assert.equal(c.endReason, endReasonForCancelHeader(reason), `${CALLS[i]} wrong end reason`);
  };

  const step = (cmd: Cmd): void => {
    trace.push(JSON.stringify(cmd));
    switch (cmd.k) {
      case 'push': {
        const cid = CALLS[cmd.i];
        if (cmd.variant === 'valid') deliver(apns(payload(cid, {}, clock)), cmd.i);
        else if (cmd.variant === 'expired') deliver(apns(payload(cid, { sent_at: clock.now() - 120_000, ttl: 60 })), cmd.i);
        else if (cmd.variant === 'malformed') deliver({ aps: {}, pushcall: '{"v":1,' });
        else deliver({ aps: {}, pushcall: { v: 1, type: 'call', call_id: cid, video: 'maybe' } }, cmd.i);
        return;
      }
      case 'elsewhere': {
        const body = apns(payload(CALLS[cmd.i], { type: cmd.type }, clock));
        if (ios) ios.deliverVoipPush(body, { mustReport: false }); // alert push: no report required
        else android!.deliverFcm({ pushcall: JSON.stringify(body.pushcall) });
        return;
      }
      case 'invite': {
        const s = server[cmd.i];
        const cid = CALLS[cmd.i];
        if (s.inviteDelivered) {
          sip.receiveInvite({ callId: cid }, { duplicate: true });
          return;
        }
        s.inviteDelivered = true;
        const wasRinging = ui.call(callUuid(cid))?.state === 'ringing';
        sip.receiveInvite({ callId: cid, fromDisplayName: `Caller ${cmd.i}` });
        if (s.ended) {
          // Cancel before wake: the server delivers the INVITE and CANCELs it at once.
          const ringingNow = ui.call(callUuid(cid))?.state === 'ringing';
          if (sip.receiveCancel(cid, s.reason)) cancelReached(cmd.i, s.reason, wasRinging || ringingNow);
        }
        return;
      }
      case 'serverEnds': {
        const s = server[cmd.i];
        if (s.ended) return;
        s.ended = true;
        s.reason = REASONS[cmd.r];
        const uuid = callUuid(CALLS[cmd.i]);
        const wasRinging = ui.call(uuid)?.state === 'ringing';
        ui.serverEnded(uuid);
        if (sip.receiveCancel(CALLS[cmd.i], s.reason)) cancelReached(cmd.i, s.reason, wasRinging);
        else sip.receiveBye(CALLS[cmd.i]);
        return;
      }
      case 'answer':
        ui.userAnswers(callUuid(CALLS[cmd.i]));
        return;
      case 'decline':
        ui.userDeclines(callUuid(CALLS[cmd.i]));
        return;
      case 'sent200':
        sip.completeAnswer(CALLS[cmd.i]);
        return;
      case 'bye':
        sip.receiveBye(CALLS[cmd.i]);
        return;
      case 'hold':
        if (cmd.on) ui.userHolds(callUuid(CALLS[cmd.i]));
        else ui.userUnholds(callUuid(CALLS[cmd.i]));
        return;
      case 'mute':
        ui.userMutes(callUuid(CALLS[cmd.i]), true);
        return;
      case 'advance':
        clock.advance(cmd.ms);
        return;
      case 'interrupt':
        ui.interruptAudio();
        return;
      case 'resume':
        ui.endAudioInterruption();
        return;
      case 'token':
        (ios ?? android)!.deliverToken(`token-${cmd.t}`);
        return;
      case 'invalidate':
        (ios ?? android)!.invalidateToken();
        return;
      case 'regFail':
        sip.registration({ state: 'failed', code: 503 });
        for (const c of coordinator.calls()) {
          assert.ok(c.state !== 'pushed' && c.state !== 'answerPending', `registration failure left ${c.uuid} in ${c.state}`);
        }
        return;
      case 'regOk':
        sip.registration({ state: 'registered' });
        return;
      case 'dial':
        outgoing.push(coordinator.startCall('sip:carol@example.com'));
        return;
      case 'remoteAnswers': {
        const inv = sip.ops('invite').at(-1);
        if (inv) sip.remoteAnswers(inv.callId);
        return;
      }
      case 'remoteRejects': {
        const inv = sip.ops('invite').at(-1);
        if (inv) sip.remoteRejects(inv.callId, cmd.code);
        return;
      }
      case 'dnd':
        ui.doNotDisturb = cmd.on;
        return;
      case 'answerFails':
        sip.failAnswer(CALLS[cmd.i]);
        return;
      case 'reset':
        ui.resetProvider();
        return;
    }
  };

  const check = (): void => {
    if (ios) assert.equal(ios.kills, 0, 'killed');
    assert.deepEqual(ui.violations, [], 'platform violations');
    assert.deepEqual(sip.violations, [], 'SIP / audio violations');
    // 4. ghost ring bounded by the no-INVITE timeout
    for (const c of ui.history) {
      const ghost = ui.ghostRingMs(c.uuid);
      assert.ok(ghost <= NO_INVITE_MS, `${c.uuid} rang ${ghost} ms after the server ended it`);
    }
    // 5. answer fulfilled only after the 200 OK went out
    for (const a of ui.actions) {
      if (a.kind !== 'answer' || a.status !== 'fulfilled') continue;
      const callId = uuidToCallId.get(a.uuid);
      assert.ok(callId, 'answer fulfilled for an unknown call');
      const sent = sip.answerSentSeq(callId!);
      assert.ok(sent !== undefined && sent < a.completedSeq!, `answer for ${callId} fulfilled before its 200 OK`);
    }
    // 6. no call reported twice
    const byUuid = new Map<string, typeof ui.history>();
    for (const c of ui.history) byUuid.set(c.uuid, [...(byUuid.get(c.uuid) ?? []), c]);
    for (const [uuid, list] of byUuid) {
      assert.ok(list.filter((c) => c.state !== 'ended').length <= 1, `${uuid} live twice`);
      for (const c of list.slice(1)) {
        assert.equal(c.state, 'ended', `${uuid} rings a second time`);
        assert.equal(c.endedAt, c.shownAt, `${uuid}: second report not ended at once`);
      }
    }
  };

  try {
    for (const cmd of cmds) {
      step(cmd);
      check();
    }
    // Finale: the server ends everything, time passes; every call must be over.
    ui.doNotDisturb = false;
    for (let i = 0; i < CALLS.length; i++) step({ k: 'serverEnds', i, r: 3 });
    for (const c of sip.ops('invite')) {
      if (!sip.remoteRejects(c.callId, 487)) sip.receiveBye(c.callId);
    }
    clock.advance(NO_INVITE_MS + 60_000);
    check();
    assert.deepEqual(ui.liveCalls().map((c) => `${c.uuid} ${c.state}`), [], 'calls never ended');
    assert.deepEqual(ui.pendingActions().map((a) => `${a.kind} ${a.uuid}`), [], 'actions never completed');
    for (const c of coordinator.calls()) assert.equal(c.state, 'ended', `coordinator still has ${c.uuid} in ${c.state}`);
  } catch (e) {
    (e as Error).message += `\ntrace:\n  ${trace.join('\n  ')}`;
    throw e;
  } finally {
    coordinator.dispose();
  }
}

test('invariants hold on a simulated iPhone under random interleavings', () => {
  fc.assert(
    fc.property(fc.array(cmdArb, { minLength: 1, maxLength: 60 }), (cmds) => run('ios', cmds)),
    { numRuns: 400, ...replay },
  );
});

test('invariants hold on a simulated Android phone under random interleavings', () => {
  fc.assert(
    fc.property(fc.array(cmdArb, { minLength: 1, maxLength: 60 }), (cmds) => run('android', cmds)),
    { numRuns: 200, ...replay },
  );
});

test('ghost calls, every Reason, answer races: a focused interleaving per call', () => {
  // Push / INVITE / answer / CANCEL for one call in every order.
  const events = ['push', 'invite', 'answer', 'serverEnds', 'sent200'] as const;
  fc.assert(
    fc.property(
      fc.shuffledSubarray([...events], { minLength: events.length, maxLength: events.length }),
      fc.integer({ min: 0, max: REASONS.length - 1 }),
      fc.integer({ min: 0, max: 16_000 }),
      (order, r, gap) => {
        const cmds: Cmd[] = [];
        for (const e of order) {
          if (e === 'push') cmds.push({ k: 'push', i: 0, variant: 'valid' });
          else if (e === 'serverEnds') cmds.push({ k: 'serverEnds', i: 0, r });
          else cmds.push({ k: e, i: 0 });
          cmds.push({ k: 'advance', ms: gap / 4 });
        }
        run('ios', cmds);
      },
    ),
    { numRuns: 300, ...replay },
  );
});
