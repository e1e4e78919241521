/**
 * React Native adapter: the CallUiPort and PushPort on top of `react-native-callkeep`
 * (CallKit / ConnectionService) and `react-native-voip-push-notification` (PushKit).
 *
 * The packages are not dependencies of the SDK: the app passes the modules in, and only
 * the members used here are declared below (structurally, after their published typings).
 *
 * Facts of those libraries the adapter is built around:
 * - JavaScript cannot report a VoIP push inside the PushKit callback (the bridge is
 *   asynchronous, and a killed app has no JS yet). So on iOS the AppDelegate reports every
 *   VoIP push natively, with `RNCallKeep.reportNewIncomingCall`, under the UUID derived
 *   from the payload's call_id exactly as `callUuid()` does (Swift in docs/react-native.md).
 *   When the push then reaches JS, the coordinator's report of that UUID is *adopted*: the
 *   adapter does not call displayIncomingCall again (which would ring a second time, or
 *   resurrect a call that already ended), it only updates the display.
 * - While JS was not running, both libraries buffer their events and deliver them in one
 *   `didLoadWithEvents` batch each, in no guaranteed order relative to each other. An
 *   answer or end tapped on the lock screen can therefore reach JS before the push that
 *   created the call; such actions are held until the coordinator knows the UUID (or
 *   `orphanActionGraceMs` passes).
 * - callkeep fulfils CXAnswerCallAction (and the other actions) natively, at once. The
 *   coordinator still holds the SIP side until the INVITE is answered, but the system UI
 *   shows "connected" early on iOS; on Android the Connection is made active
 *   (`setCurrentCallActive`) only when the coordinator fulfils the answer.
 * - CallKit UUID strings come back uppercase from native code; the adapter lowercases.
 */
import { decodePush } from '../payload.js';
import type {
  Action,
  AnswerAction,
  CallDetails,
  CallUiDelegate,
  CallUiPort,
  Clock,
  EndAction,
  IncomingPush,
  PushHandler,
  PushPort,
  ReportIncomingError,
  ReportIncomingResult,
  SetHeldAction,
  SetMutedAction,
  StartAction,
  TimerHandle,
} from '../ports.js';
import type { EndReason } from '../reason.js';
import { INVALID_PUSH_UUID, callUuid, normalizeUuid } from '../uuid.js';

// ---------------------------------------------------------------------------------------
// Structural types of react-native-callkeep (index.d.ts, 4.3.x)
// ---------------------------------------------------------------------------------------

export type CallKeepEventName =
  | 'didReceiveStartCallAction'
  | 'answerCall'
  | 'endCall'
  | 'didActivateAudioSession'
  | 'didDeactivateAudioSession'
  | 'didDisplayIncomingCall'
  | 'didPerformSetMutedCallAction'
  | 'didToggleHoldCallAction'
  | 'didResetProvider'
  | 'didLoadWithEvents'
  | 'createIncomingConnectionFailed';

export type CallKeepDisplayErrorCode = 'Unentitled' | 'CallUUIDAlreadyExists' | 'FilteredByDoNotDisturb' | 'FilteredByBlockList' | 'Unknown';

export interface CallKeepEventArgs {
  didReceiveStartCallAction: { handle: string; callUUID?: string; name?: string };
  answerCall: { callUUID: string };
  endCall: { callUUID: string };
  didActivateAudioSession: unknown;
  didDeactivateAudioSession: unknown;
  didDisplayIncomingCall: {
    error?: string;
    errorCode?: CallKeepDisplayErrorCode;
    callUUID: string;
    handle?: string;
    localizedCallerName?: string;
    hasVideo?: '1' | '0';
    fromPushKit?: '1' | '0';
    payload?: unknown;
  };
  didPerformSetMutedCallAction: { muted: boolean; callUUID: string };
  didToggleHoldCallAction: { hold: boolean; callUUID: string };
  didResetProvider: unknown;
  /** Native sends an array of { name, data }; the typings say { events }. Both accepted. */
  didLoadWithEvents: CallKeepInitialEvent[] | { events: CallKeepInitialEvent[] };
  createIncomingConnectionFailed: { callUUID: string; handle?: string; name?: string };
}

/** Buffered event as native code stores it (name = native event name). */
export interface CallKeepInitialEvent {
  readonly name: string;
  readonly data: unknown;
}

/** Native event names (the `name` of buffered events) → JS event names. */
export const CALLKEEP_NATIVE_EVENTS: Readonly<Record<string, CallKeepEventName>> = {
  RNCallKeepDidReceiveStartCallAction: 'didReceiveStartCallAction',
  RNCallKeepPerformAnswerCallAction: 'answerCall',
  RNCallKeepPerformEndCallAction: 'endCall',
  RNCallKeepDidActivateAudioSession: 'didActivateAudioSession',
  RNCallKeepDidDeactivateAudioSession: 'didDeactivateAudioSession',
  RNCallKeepDidDisplayIncomingCall: 'didDisplayIncomingCall',
  RNCallKeepDidPerformSetMutedCallAction: 'didPerformSetMutedCallAction',
  RNCallKeepDidToggleHoldAction: 'didToggleHoldCallAction',
  RNCallKeepProviderReset: 'didResetProvider',
  RNCallKeepOnIncomingConnectionFailed: 'createIncomingConnectionFailed',
};

/** The members of `RNCallKeep` (default export) the adapter uses. */
export interface CallKeepModule {
  // `any` keeps the real module (a generic, per-event-typed method) assignable.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  addEventListener(type: CallKeepEventName, handler: (args: any) => void): void;
  removeEventListener(type: CallKeepEventName): void;
  displayIncomingCall(
    uuid: string,
    handle: string,
    localizedCallerName?: string,
    handleType?: 'generic' | 'number' | 'email',
    hasVideo?: boolean,
    options?: object,
  ): void;
  updateDisplay(uuid: string, displayName: string, handle: string, options?: object): void;
  /** reasons: 1 failed, 2 remoteEnded, 3 unanswered, 4 answeredElsewhere, 5 declinedElsewhere (iOS; 2 on Android), 6 missed (Android). */
  reportEndCallWithUUID(uuid: string, reason: number): void;
  answerIncomingCall(uuid: string): void;
  endCall(uuid: string): void;
  setMutedCall(uuid: string, muted: boolean): void;
  setOnHold(uuid: string, held: boolean): void;
  startCall(uuid: string, handle: string, contactIdentifier?: string, handleType?: 'generic' | 'number' | 'email', hasVideo?: boolean): void;
  reportConnectingOutgoingCallWithUUID(uuid: string): void;
  reportConnectedOutgoingCallWithUUID(uuid: string): void;
  /** Android only: move the Connection to ACTIVE. */
  setCurrentCallActive?(uuid: string): void;
}

// ---------------------------------------------------------------------------------------
// Structural types of react-native-voip-push-notification (index.d.ts, 3.x)
// ---------------------------------------------------------------------------------------

export type VoipPushEventName = 'register' | 'notification' | 'didLoadWithEvents';

export const VOIP_PUSH_NATIVE_EVENTS = {
  register: 'RNVoipPushRemoteNotificationsRegisteredEvent',
  notification: 'RNVoipPushRemoteNotificationReceivedEvent',
  didLoadWithEvents: 'RNVoipPushDidLoadWithEvents',
} as const;

export interface VoipPushModule {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  addEventListener(type: VoipPushEventName, handler: (args: any) => void): void;
  removeEventListener(type: VoipPushEventName): void;
  registerVoipToken(): void;
  onVoipNotificationCompleted(uuid: string): void;
}

// ---------------------------------------------------------------------------------------
// The adapter
// ---------------------------------------------------------------------------------------

export interface ReactNativeAdapterOptions {
  readonly platform: 'ios' | 'android';
  readonly callKeep: CallKeepModule;
  /** iOS: the PushKit bridge. Android pushes come through `handleFcmData`. */
  readonly voipPush?: VoipPushModule;
  readonly clock: Clock;
  /** Hold actions for UUIDs not known yet this long, then give up. Default 5000 ms. */
  readonly orphanActionGraceMs?: number;
  /**
   * Call `onVoipNotificationCompleted(uuid)` after the coordinator handled a push. Only if
   * the AppDelegate stored the completion with `addCompletionHandler` instead of calling
   * it. Default false (the documented AppDelegate calls it after the native report).
   */
  readonly completePushFromJs?: boolean;
  /** Call `registerVoipToken()` at construction. Default true on iOS. */
  readonly registerVoipToken?: boolean;
}

const DISPLAY_ERRORS: Readonly<Record<CallKeepDisplayErrorCode, ReportIncomingError>> = {
  Unentitled: 'unentitled',
  CallUUIDAlreadyExists: 'callUUIDAlreadyExists',
  FilteredByDoNotDisturb: 'filteredByDoNotDisturb',
  FilteredByBlockList: 'filteredByBlockList',
  Unknown: 'unknown',
};

/** callkeep's numeric end reasons (CONSTANTS.END_CALL_REASONS). */
export function callKeepEndReason(reason: EndReason, platform: 'ios' | 'android'): number {
  switch (reason) {
    case 'failed':
      return 1;
    case 'remoteEnded':
      return 2;
    case 'unanswered':
      return 3;
    case 'answeredElsewhere':
      return 4;
    case 'declinedElsewhere':
      return platform === 'ios' ? 5 : 2;
  }
}

type Delivery = (ui: CallUiDelegate, push: PushHandler) => void;

interface Orphan {
  readonly deliver: () => void;
  readonly kind: Action['kind'];
}

export class ReactNativeCallAdapter {
  readonly callUi: CallUiPort;
  readonly push: PushPort;

  private readonly platform: 'ios' | 'android';
  private readonly callKeep: CallKeepModule;
  private readonly voipPush: VoipPushModule | undefined;
  private readonly clock: Clock;
  private readonly graceMs: number;
  private readonly completeFromJs: boolean;

  private uiDelegate: CallUiDelegate | undefined;
  private pushHandler: PushHandler | undefined;
  /** Events that arrived before the coordinator attached. */
  private readonly backlog: Delivery[] = [];
  /** UUIDs the coordinator reported, started or was asked to start. */
  private readonly known = new Set<string>();
  /** UUIDs the AppDelegate reported natively and the coordinator has not adopted yet. */
  private readonly native = new Map<string, { error?: ReportIncomingError }>();
  /** Start requests by UUID (to know the video flag when the start action comes back). */
  private readonly starts = new Map<string, { video: boolean }>();
  private readonly orphans = new Map<string, { items: Orphan[]; timer: TimerHandle }>();
  private depth = 0;
  private disposed = false;

  constructor(options: ReactNativeAdapterOptions) {
    this.platform = options.platform;
    this.callKeep = options.callKeep;
    this.voipPush = options.voipPush;
    this.clock = options.clock;
    this.graceMs = options.orphanActionGraceMs ?? 5_000;
    this.completeFromJs = options.completePushFromJs ?? false;

    this.callUi = {
      setDelegate: (d) => {
        this.uiDelegate = d;
        this.drainBacklog();
      },
      reportIncoming: (uuid, details) => this.reportIncoming(normalizeUuid(uuid), details),
      updateCallDetails: (uuid, details) => this.callKeep.updateDisplay(normalizeUuid(uuid), details.displayName, details.handle),
      reportOutgoingConnecting: (uuid) => this.callKeep.reportConnectingOutgoingCallWithUUID(normalizeUuid(uuid)),
      reportOutgoingConnected: (uuid) => {
        const u = normalizeUuid(uuid);
        this.callKeep.reportConnectedOutgoingCallWithUUID(u);
        if (this.platform === 'android') this.callKeep.setCurrentCallActive?.(u);
      },
      reportEnded: (uuid, reason) => {
        const u = normalizeUuid(uuid);
        this.callKeep.reportEndCallWithUUID(u, callKeepEndReason(reason, this.platform));
        this.forget(u);
      },
      requestStart: (uuid, handle, video) => {
        const u = normalizeUuid(uuid);
        this.known.add(u);
        this.starts.set(u, { video });
        this.callKeep.startCall(u, handle, handle, 'generic', video);
      },
      requestAnswer: (uuid) => this.callKeep.answerIncomingCall(normalizeUuid(uuid)),
      requestEnd: (uuid) => this.callKeep.endCall(normalizeUuid(uuid)),
      requestHold: (uuid, onHold) => this.callKeep.setOnHold(normalizeUuid(uuid), onHold),
      requestMute: (uuid, muted) => this.callKeep.setMutedCall(normalizeUuid(uuid), muted),
    };
    this.push = {
      setHandler: (h) => {
        this.pushHandler = h;
        this.drainBacklog();
      },
    };

    const ck = this.callKeep;
    ck.addEventListener('answerCall', (a: CallKeepEventArgs['answerCall']) => this.onCallKeep('answerCall', a));
    ck.addEventListener('endCall', (a: CallKeepEventArgs['endCall']) => this.onCallKeep('endCall', a));
    ck.addEventListener('didReceiveStartCallAction', (a: CallKeepEventArgs['didReceiveStartCallAction']) =>
      this.onCallKeep('didReceiveStartCallAction', a),
    );
    ck.addEventListener('didActivateAudioSession', (a: unknown) => this.onCallKeep('didActivateAudioSession', a));
    ck.addEventListener('didDeactivateAudioSession', (a: unknown) => this.onCallKeep('didDeactivateAudioSession', a));
    ck.addEventListener('didDisplayIncomingCall', (a: CallKeepEventArgs['didDisplayIncomingCall']) => this.onCallKeep('didDisplayIncomingCall', a));
    ck.addEventListener('didPerformSetMutedCallAction', (a: CallKeepEventArgs['didPerformSetMutedCallAction']) =>
      this.onCallKeep('didPerformSetMutedCallAction', a),
    );
    ck.addEventListener('didToggleHoldCallAction', (a: CallKeepEventArgs['didToggleHoldCallAction']) => this.onCallKeep('didToggleHoldCallAction', a));
    ck.addEventListener('didResetProvider', (a: unknown) => this.onCallKeep('didResetProvider', a));
    ck.addEventListener('createIncomingConnectionFailed', (a: CallKeepEventArgs['createIncomingConnectionFailed']) =>
      this.onCallKeep('createIncomingConnectionFailed', a),
    );
    ck.addEventListener('didLoadWithEvents', (a: CallKeepEventArgs['didLoadWithEvents']) => this.onCallKeepBatch(a));

    const vp = this.voipPush;
    if (vp) {
      vp.addEventListener('register', (token: string) => this.onVoipToken(token));
      vp.addEventListener('notification', (payload: unknown) => this.onVoipNotification(payload));
      vp.addEventListener('didLoadWithEvents', (events: CallKeepInitialEvent[]) => this.onVoipBatch(events));
      if (options.registerVoipToken ?? this.platform === 'ios') vp.registerVoipToken();
    }
  }

  /** Android: hand over an FCM data message (`remoteMessage.data`). */
  handleFcmData(data: Readonly<Record<string, string>>): void {
    this.deliver((_, push) => push.onPush({ raw: data, transport: 'fcm', mustReport: false }));
  }

  /**
   * iOS: a regular remote notification (alert or background, not PushKit) whose body has a
   * `pushcall` member: a refresh push (RFC 8599 §5.5) or a missed-call alert. Its token goes
   * to `coordinator.setAlertToken`.
   */
  handleRemoteNotification(payload: unknown): void {
    const body = this.unwrapNotification(payload);
    this.deliver((_, push) => push.onPush({ raw: body, transport: 'apns-alert', mustReport: false }));
  }

  /** Android: FirebaseMessaging token (getToken / onTokenRefresh). */
  fcmTokenUpdated(token: string): void {
    this.deliver((_, push) => push.onTokenUpdated(token));
  }

  /**
   * The token is no longer valid. PushKit's didInvalidatePushTokenFor is not bridged by
   * react-native-voip-push-notification: forward it from native code yourself.
   */
  pushTokenInvalidated(): void {
    this.deliver((_, push) => push.onTokenInvalidated());
  }

  /** Remove every listener and cancel timers. */
  dispose(): void {
    this.disposed = true;
    for (const name of [
      'answerCall',
      'endCall',
      'didReceiveStartCallAction',
      'didActivateAudioSession',
      'didDeactivateAudioSession',
      'didDisplayIncomingCall',
      'didPerformSetMutedCallAction',
      'didToggleHoldCallAction',
      'didResetProvider',
      'createIncomingConnectionFailed',
      'didLoadWithEvents',
    ] as const) {
      this.callKeep.removeEventListener(name);
    }
    if (this.voipPush) for (const name of ['register', 'notification', 'didLoadWithEvents'] as const) this.voipPush.removeEventListener(name);
    for (const o of this.orphans.values()) o.timer.cancel();
    this.orphans.clear();
  }

  // -------------------------------------------------------------------------------------
  // CallUiPort.reportIncoming
  // -------------------------------------------------------------------------------------

  private reportIncoming(uuid: string, details: CallDetails): ReportIncomingResult {
    this.known.add(uuid);
    const nativeReport = this.native.get(uuid);
    if (nativeReport) {
      // Reported by the AppDelegate already: adopt it, never display it twice.
      this.native.delete(uuid);
      if (nativeReport.error) return { ok: false, error: nativeReport.error };
      this.callKeep.updateDisplay(uuid, details.displayName, details.handle);
      return { ok: true };
    }
    this.callKeep.displayIncomingCall(uuid, details.handle, details.displayName, details.handleType, details.video);
    // The outcome arrives later as didDisplayIncomingCall (fromPushKit '0').
    return { ok: true };
  }

  // -------------------------------------------------------------------------------------
  // Event intake
  // -------------------------------------------------------------------------------------

  private onVoipToken(token: string): void {
    this.deliver((_, push) => push.onTokenUpdated(token));
  }

  /**
   * The call is over in the OS UI: its UUID need not be remembered (one entry per call for
   * the app's lifetime otherwise). A late action for it is held as an orphan and dropped.
   */
  private forget(uuid: string): void {
    this.known.delete(uuid);
    this.starts.delete(uuid);
  }

  private onVoipNotification(payload: unknown): void {
    const dict = this.unwrapNotification(payload);
    const decoded = decodePush(dict);
    const callId = decoded.ok ? decoded.payload?.call_id : decoded.callId;
    const uuid = callId !== undefined ? callUuid(callId) : INVALID_PUSH_UUID;
    // The AppDelegate reported this push natively under the same UUID (see docs).
    if (!this.native.has(uuid)) this.native.set(uuid, {});
    const push: IncomingPush = { raw: dict, transport: 'apns-voip', mustReport: true };
    this.deliver((_, handler) => handler.onPush(push));
    if (this.completeFromJs) this.voipPush?.onVoipNotificationCompleted(uuid);
  }

  private onVoipBatch(events: unknown): void {
    if (!Array.isArray(events)) return;
    for (const e of events as CallKeepInitialEvent[]) {
      if (e?.name === VOIP_PUSH_NATIVE_EVENTS.register && typeof e.data === 'string') this.onVoipToken(e.data);
      else if (e?.name === VOIP_PUSH_NATIVE_EVENTS.notification) this.onVoipNotification(e.data);
    }
  }

  private onCallKeepBatch(arg: CallKeepEventArgs['didLoadWithEvents']): void {
    const events = Array.isArray(arg) ? arg : Array.isArray(arg?.events) ? arg.events : [];
    for (const e of events) {
      const name = CALLKEEP_NATIVE_EVENTS[e?.name] ?? (e?.name as CallKeepEventName);
      if (name === 'didLoadWithEvents') continue;
      this.onCallKeep(name, e.data);
    }
  }

  private onCallKeep(name: CallKeepEventName, raw: unknown): void {
    const data = (raw ?? {}) as Record<string, unknown>;
    const uuidOf = (): string => normalizeUuid(String(data.callUUID ?? ''));
    switch (name) {
      case 'answerCall': {
        const uuid = uuidOf();
        this.action<AnswerAction>('answer', uuid, {}, (d, a) => d.onAnswer(a));
        return;
      }
      case 'endCall': {
        const uuid = uuidOf();
        this.action<EndAction>('end', uuid, {}, (d, a) => d.onEnd(a));
        this.forget(uuid);
        return;
      }
      case 'didReceiveStartCallAction': {
        const uuid = data.callUUID ? uuidOf() : undefined;
        if (!uuid) return; // very old callkeep versions: no UUID, nothing to correlate
        this.known.add(uuid);
        const handle = String(data.handle ?? '');
        const video = this.starts.get(uuid)?.video ?? false;
        this.starts.delete(uuid);
        const name = typeof data.name === 'string' && data.name ? data.name : undefined;
        this.action<StartAction>('start', uuid, { handle, video, ...(name ? { displayName: name } : {}) }, (d, a) => d.onStart(a));
        return;
      }
      case 'didActivateAudioSession':
        this.deliver((d) => d.onAudioSessionActivated());
        return;
      case 'didDeactivateAudioSession':
        this.deliver((d) => d.onAudioSessionDeactivated());
        return;
      case 'didPerformSetMutedCallAction':
        this.action<SetMutedAction>('setMuted', uuidOf(), { muted: data.muted === true }, (d, a) => d.onSetMuted(a));
        return;
      case 'didToggleHoldCallAction':
        this.action<SetHeldAction>('setHeld', uuidOf(), { onHold: data.hold === true }, (d, a) => d.onSetHeld(a));
        return;
      case 'didResetProvider':
        this.deliver((d) => d.onReset());
        return;
      case 'createIncomingConnectionFailed': {
        const uuid = uuidOf();
        this.deliver((d) => d.onIncomingReportFailed(uuid, 'unknown'));
        return;
      }
      case 'didDisplayIncomingCall': {
        const uuid = uuidOf();
        const code = data.errorCode as CallKeepDisplayErrorCode | undefined;
        const error = code ? DISPLAY_ERRORS[code] ?? 'unknown' : typeof data.error === 'string' && data.error ? 'unknown' : undefined;
        const fromPushKit = data.fromPushKit === '1' || data.fromPushKit === 1 || data.fromPushKit === true;
        if (fromPushKit && !this.known.has(uuid)) {
          // Native report seen before the coordinator adopted it: remember its outcome.
          this.native.set(uuid, error ? { error } : (this.native.get(uuid) ?? {}));
          return;
        }
        if (error && error !== 'callUUIDAlreadyExists') this.deliver((d) => d.onIncomingReportFailed(uuid, error));
        return;
      }
      case 'didLoadWithEvents':
        return;
    }
  }

  // -------------------------------------------------------------------------------------
  // Actions
  // -------------------------------------------------------------------------------------

  /**
   * Wrap a callkeep event as an Action. callkeep has already fulfilled the native action,
   * so fulfil/fail mostly do nothing; where they mean something it is done here:
   * - Android answer fulfilled → setCurrentCallActive (the Connection goes ACTIVE now);
   * - start failed → the call is ended in the UI (callkeep showed it connecting).
   */
  private action<A extends Action>(kind: A['kind'], uuid: string, extra: Record<string, unknown>, send: (d: CallUiDelegate, a: A) => void): void {
    let done = false;
    const action = {
      kind,
      uuid,
      ...extra,
      fulfill: () => {
        if (done) return;
        done = true;
        if (kind === 'answer' && this.platform === 'android') this.callKeep.setCurrentCallActive?.(uuid);
      },
      fail: () => {
        if (done) return;
        done = true;
        if (kind === 'start') this.callKeep.reportEndCallWithUUID(uuid, 1);
      },
    } as unknown as A;
    const deliver = (): void => this.deliver((d) => send(d, action));
    if (kind === 'start' || this.known.has(uuid)) {
      deliver();
      return;
    }
    // Not known yet (the push is still on its way through the other module's batch).
    let entry = this.orphans.get(uuid);
    if (!entry) {
      const timer = this.clock.setTimeout(() => this.expireOrphans(uuid), this.graceMs);
      entry = { items: [], timer };
      this.orphans.set(uuid, entry);
    }
    entry.items.push({ deliver, kind });
  }

  private expireOrphans(uuid: string): void {
    const entry = this.orphans.get(uuid);
    if (!entry || this.disposed) return;
    this.orphans.delete(uuid);
    // No push or INVITE ever told us about this call: deliver anyway (the coordinator fails
    // unknown answers and fulfils unknown ends), and make sure the native call goes away.
    for (const o of entry.items) o.deliver();
    if (entry.items.some((o) => o.kind === 'answer') && !this.known.has(uuid)) this.callKeep.reportEndCallWithUUID(uuid, 1);
  }

  private flushOrphans(): void {
    for (const [uuid, entry] of [...this.orphans]) {
      if (!this.known.has(uuid)) continue;
      this.orphans.delete(uuid);
      entry.timer.cancel();
      for (const o of entry.items) o.deliver();
    }
  }

  // -------------------------------------------------------------------------------------
  // Delivery
  // -------------------------------------------------------------------------------------

  private deliver(fn: Delivery): void {
    if (this.disposed) return;
    if (!this.uiDelegate || !this.pushHandler) {
      this.backlog.push(fn);
      return;
    }
    this.depth++;
    try {
      fn(this.uiDelegate, this.pushHandler);
    } finally {
      this.depth--;
    }
    // Only at the outermost level: actions held for a UUID the coordinator just learned.
    if (this.depth === 0 && this.orphans.size > 0) this.flushOrphans();
  }

  private drainBacklog(): void {
    if (!this.uiDelegate || !this.pushHandler) return;
    for (const fn of this.backlog.splice(0)) this.deliver(fn);
  }

  private unwrapNotification(payload: unknown): unknown {
    // Older versions of the library hand JS an object with getData(); newer a plain dict.
    const p = payload as { getData?: () => unknown } | null;
    if (p && typeof p.getData === 'function') return p.getData();
    return payload;
  }
}
