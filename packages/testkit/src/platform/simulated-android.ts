/**
 * A simulated Android phone: FCM data messages plus a ConnectionService-like call UI
 * (the same CallUiPort as CallKit: addNewIncomingCall ≈ reportIncoming, Connection
 * onAnswer/onReject/onDisconnect/onHold/onUnhold ≈ actions, setDisconnected(cause) ≈
 * reportEnded).
 *
 * What it models:
 * - FCM data messages: every value must be a string (FCM rejects others).
 * - Priority: high-priority messages are delivered at once, even in Doze; normal-priority
 *   ones wait while the device dozes and arrive on `exitDoze()`.
 * - Deprioritisation: FCM may downgrade high-priority messages of an app that does not
 *   show anything user-visible for them. With `deprioritizeAfter: n`, after n high-priority
 *   messages that led to no call UI, further high-priority messages are treated as normal.
 *   Off by default (apps show their own notifications for messages and missed calls).
 * - No action timeouts (Telecom does not time out onAnswer), no kill rule.
 * - The audio focus is (re)gained when a call connects and on every unhold.
 */
import type { IncomingPush, PushHandler, PushPort } from '@pushcall/client';
import { SimulatedCallUi } from './simulated-call-ui.js';
import type { SimulatedCallUiOptions } from './simulated-call-ui.js';

export interface SimulatedAndroidOptions extends Omit<SimulatedCallUiOptions, 'activateAudioOnUnhold' | 'actionTimeoutMs'> {
  readonly deprioritizeAfter?: number;
  /** Start dozing. Default false. */
  readonly dozing?: boolean;
}

export type FcmPriority = 'high' | 'normal';

export interface FcmDeliveryResult {
  readonly delivered: boolean;
  /** Delivered with an effective priority of normal because of deprioritisation. */
  readonly downgraded: boolean;
  readonly queued: boolean;
}

export class SimulatedAndroid extends SimulatedCallUi {
  private handler: PushHandler | undefined;
  private readonly deprioritizeAfter: number | undefined;
  private queue: Record<string, string>[] = [];
  dozing: boolean;
  /** High-priority messages after which no call UI was shown. */
  highPriorityWithoutUi = 0;
  deprioritized = false;
  deliveredMessages = 0;

  readonly push: PushPort = {
    setHandler: (handler) => {
      this.handler = handler;
    },
  };

  constructor(options: SimulatedAndroidOptions) {
    super({ ...options, activateAudioOnUnhold: 'always', name: options.name ?? 'android' });
    this.deprioritizeAfter = options.deprioritizeAfter;
    this.dozing = options.dozing ?? false;
  }

  get callUi(): SimulatedCallUi {
    return this;
  }

  /** FCM delivers a data message (`{ pushcall: "<json>" }`) to FirebaseMessagingService. */
  deliverFcm(data: Record<string, string>, options: { priority?: FcmPriority } = {}): FcmDeliveryResult {
    for (const [k, v] of Object.entries(data)) {
      if (typeof v !== 'string') throw new TypeError(`FCM data values must be strings (key ${k})`);
    }
    const requested = options.priority ?? 'high';
    const downgraded = requested === 'high' && this.deprioritized;
    const effective: FcmPriority = downgraded ? 'normal' : requested;
    if (this.dozing && effective === 'normal') {
      this.queue.push(data);
      this.note('FCM message queued (Doze)', undefined, requested);
      return { delivered: false, downgraded, queued: true };
    }
    this.dispatch(data, effective);
    return { delivered: true, downgraded, queued: false };
  }

  enterDoze(): void {
    this.dozing = true;
    this.note('Doze on');
  }

  /** Leaving Doze (or a maintenance window) flushes queued normal-priority messages. */
  exitDoze(): void {
    this.dozing = false;
    this.note('Doze off');
    for (const data of this.queue.splice(0)) this.dispatch(data, 'normal');
  }

  /** FirebaseMessagingService.onNewToken. */
  deliverToken(token: string): void {
    this.note('onNewToken', undefined, token);
    this.handler?.onTokenUpdated(token);
  }

  /** The token was deleted (deleteToken / app data cleared). */
  invalidateToken(): void {
    this.note('token deleted');
    this.handler?.onTokenInvalidated();
  }

  private dispatch(data: Record<string, string>, priority: FcmPriority): void {
    this.deliveredMessages++;
    const before = this.reportAttempts;
    this.note('FCM message delivered', undefined, priority);
    const push: IncomingPush = { raw: data, transport: 'fcm', mustReport: false };
    try {
      this.handler?.onPush(push);
    } catch (e) {
      this.violation(`onMessageReceived threw: ${String(e)}`);
    }
    if (priority === 'high' && this.reportAttempts === before) {
      this.highPriorityWithoutUi++;
      if (this.deprioritizeAfter !== undefined && this.highPriorityWithoutUi >= this.deprioritizeAfter) this.deprioritized = true;
    }
  }
}
