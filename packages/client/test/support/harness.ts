/** Test wiring: coordinator + simulated iOS/Android + FakeSipPort on a FakeClock. */
import { FakeClock } from '../../../sip/src/util/clock.js';
import { SimulatedAndroid, SimulatedIos, createSequence } from '../../../testkit/src/platform/index.js';
import { CallCoordinator, apnsPushConfig, fcmPushConfig } from '../../src/index.js';
import type { CallCoordinatorOptions, CoordinatorEvent, PushPayload } from '../../src/index.js';
import { FakeSipPort } from './fake-sip.js';

export const T0 = 1_700_000_000_000;

export function payload(callId: string, over: Partial<PushPayload> = {}, clock?: { now(): number }): PushPayload {
  return {
    v: 1,
    type: 'call',
    call_id: callId,
    from_name: 'Alice',
    from_uri: 'sip:alice@example.com',
    to: 'sip:bob@example.com',
    video: false,
    sent_at: clock ? clock.now() : T0,
    ttl: 30,
    ...over,
  };
}

export function apns(p: PushPayload): Record<string, unknown> {
  return { aps: {}, pushcall: p };
}

type Extra = Partial<Omit<CallCoordinatorOptions, 'ui' | 'push' | 'sip' | 'clock'>>;

export function iosHarness(extra: Extra = {}, iosOpts: { actionTimeoutMs?: number; maxReportFailures?: number } = {}) {
  const clock = new FakeClock(T0);
  const sequence = createSequence();
  const ios = new SimulatedIos({ clock, sequence, ...iosOpts });
  const sip = new FakeSipPort({ sequence, audioAllowed: () => ios.audioSessionActive });
  const events: CoordinatorEvent[] = [];
  const coordinator = new CallCoordinator({
    ui: ios,
    push: ios.push,
    sip,
    clock,
    strict: true,
    pushConfig: apnsPushConfig({ teamId: 'TEAM123456', bundleId: 'com.example.app' }),
    ...extra,
  });
  coordinator.events.subscribe((e) => events.push(e));
  const push = (callId: string, over: Partial<PushPayload> = {}) => ios.deliverVoipPush(apns(payload(callId, over, clock)));
  return { clock, ios, sip, coordinator, events, push, sequence };
}

export function androidHarness(extra: Extra = {}) {
  const clock = new FakeClock(T0);
  const sequence = createSequence();
  const android = new SimulatedAndroid({ clock, sequence });
  const sip = new FakeSipPort({ sequence, audioAllowed: () => android.audioSessionActive });
  const coordinator = new CallCoordinator({
    ui: android,
    push: android.push,
    sip,
    clock,
    strict: true,
    pushConfig: fcmPushConfig('pushcall-demo'),
    ...extra,
  });
  const push = (callId: string, over: Partial<PushPayload> = {}) =>
    android.deliverFcm({ pushcall: JSON.stringify(payload(callId, over, clock)) });
  return { clock, android, sip, coordinator, push, sequence };
}
