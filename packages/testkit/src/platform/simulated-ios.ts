/**
 * A simulated iPhone: CallKit (SimulatedCallUi with CallKit's rules) plus PushKit.
 *
 * What it enforces, as iOS 13+ does:
 * - A VoIP push must be reported to CallKit before the push handler returns. If the
 *   handler returns (or throws) without a report, the app is "killed" (`kills` counts it,
 *   with iOS's log line) and after `maxReportFailures` such failures VoIP pushes are no
 *   longer delivered (`voipBlocked`) until `reinstall()`. Any reportNewIncomingCall counts,
 *   even one refused with callUUIDAlreadyExists or a DND filter: the app did post the call.
 *   (The process is not actually torn down: the same app object keeps running, so tests can
 *   go on and assert `kills === 0`.)
 * - Actions time out if not completed within `actionTimeoutMs` (default 10 s; Apple does
 *   not document the value): the app gets provider(_:timedOutPerforming:), and completing
 *   the action afterwards is recorded as a violation.
 * - The audio session is activated only after an answer action is fulfilled or an
 *   outgoing call started, and on unhold only when it is not already active (iOS does not
 *   call didActivate again on unhold when the session stayed active, Apple forum 694836).
 * - iOS 26.4's `PKVoIPPushMetadata.mustReport` can be simulated with `mustReport: false`.
 */
import type { IncomingPush, PushHandler, PushPort } from '@pushcall/client';
import { SimulatedCallUi } from './simulated-call-ui.js';
import type { SimulatedCallUiOptions } from './simulated-call-ui.js';

export interface SimulatedIosOptions extends Omit<SimulatedCallUiOptions, 'activateAudioOnUnhold'> {
  /** Unreported VoIP pushes before iOS stops delivering them. Default 3. */
  readonly maxReportFailures?: number;
}

export interface VoipDeliveryResult {
  /** False when iOS no longer delivers VoIP pushes to this app. */
  readonly delivered: boolean;
  /** The handler reported a call before returning. */
  readonly reported: boolean;
  readonly killed: boolean;
}

export const IOS_KILL_MESSAGE =
  'Killing app because it never posted an incoming call to the system after receiving a PushKit VoIP push callback.';
export const IOS_BLOCKED_MESSAGE = 'will not be launched because it failed to report an incoming call too many times';

export class SimulatedIos extends SimulatedCallUi {
  private handler: PushHandler | undefined;
  private readonly maxReportFailures: number;
  private reportFailures = 0;
  /** How many times iOS killed the app for not reporting a VoIP push. */
  kills = 0;
  /** iOS stopped delivering VoIP pushes to the app. */
  voipBlocked = false;
  /** VoIP pushes dropped because of `voipBlocked`. */
  droppedPushes = 0;
  /** VoIP pushes delivered to the app. */
  deliveredPushes = 0;

  /** The PushKit side, as a PushPort for the coordinator. */
  readonly push: PushPort = {
    setHandler: (handler) => {
      this.handler = handler;
    },
  };

  constructor(options: SimulatedIosOptions) {
    super({ actionTimeoutMs: 10_000, ...options, activateAudioOnUnhold: 'ifInactive', name: options.name ?? 'ios' });
    this.maxReportFailures = options.maxReportFailures ?? 3;
  }

  /** The CallKit side, as a CallUiPort for the coordinator (this object itself). */
  get callUi(): SimulatedCallUi {
    return this;
  }

  /**
   * APNs delivers a VoIP push (the dictionary: `{ aps: {...}, pushcall: {...} }`).
   * pushRegistry(_:didReceiveIncomingPushWith:for:completion:) runs synchronously here.
   */
  deliverVoipPush(dictionary: unknown, options: { mustReport?: boolean } = {}): VoipDeliveryResult {
    if (this.voipBlocked) {
      this.droppedPushes++;
      this.note('VoIP push not delivered', undefined, IOS_BLOCKED_MESSAGE);
      return { delivered: false, reported: false, killed: false };
    }
    this.deliveredPushes++;
    const mustReport = options.mustReport ?? true;
    const before = this.reportAttempts;
    let threw: unknown;
    this.note('VoIP push delivered');
    const push: IncomingPush = { raw: dictionary, transport: 'apns-voip', mustReport };
    try {
      if (this.handler) this.handler.onPush(push);
    } catch (e) {
      threw = e;
    }
    const reported = this.reportAttempts > before;
    const killed = threw !== undefined || (mustReport && !reported);
    if (killed) this.kill(threw !== undefined ? `push handler threw: ${String(threw)}` : IOS_KILL_MESSAGE);
    return { delivered: true, reported, killed };
  }

  /**
   * A regular APNs notification (alert or background, not PushKit) reaches the app:
   * `application(_:didReceiveRemoteNotification:fetchCompletionHandler:)`. iOS requires no
   * call report for these.
   */
  deliverRemoteNotification(dictionary: unknown): void {
    this.note('remote notification delivered');
    this.handler?.onPush({ raw: dictionary, transport: 'apns-alert', mustReport: false });
  }

  /** didUpdate pushCredentials: a (new) VoIP token, hex. */
  deliverToken(tokenHex: string): void {
    this.note('didUpdatePushCredentials', undefined, tokenHex);
    this.handler?.onTokenUpdated(tokenHex);
  }

  /** didInvalidatePushTokenFor. */
  invalidateToken(): void {
    this.note('didInvalidatePushTokenFor');
    this.handler?.onTokenInvalidated();
  }

  /** Reinstalling clears iOS's penalty (react-native-voip-push-notification #102). */
  reinstall(): void {
    this.reportFailures = 0;
    this.voipBlocked = false;
    this.note('app reinstalled');
  }

  private kill(reason: string): void {
    this.kills++;
    this.reportFailures++;
    this.violation(`app killed: ${reason}`);
    if (this.reportFailures >= this.maxReportFailures && !this.voipBlocked) {
      this.voipBlocked = true;
      this.note('VoIP pushes blocked', undefined, IOS_BLOCKED_MESSAGE);
    }
  }
}
