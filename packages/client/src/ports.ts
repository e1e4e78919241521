/**
 * The ports: what the app, an adapter or a simulator provides to the CallCoordinator.
 *
 * Every port is a plain interface with a `setDelegate`/`setHandler` method through which
 * the coordinator receives the port's events. Ports are synchronous where the platform is
 * (CallKit's report must happen inside the PushKit callback), and event-driven where it is
 * not (SIP responses arrive later).
 */
import type { EndReason, SipReason } from './reason.js';

// ---------------------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------------------

export interface TimerHandle {
  cancel(): void;
}

/** Injected time. Structurally compatible with `@pushcall/sip`'s Clock and FakeClock. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
}

// ---------------------------------------------------------------------------------------
// Call UI (CallKit CXProvider / CXCallController, Android ConnectionService)
// ---------------------------------------------------------------------------------------

export type HandleType = 'generic' | 'number' | 'email';

/** What the system UI shows for a call (CXCallUpdate / Connection address + name). */
export interface CallDetails {
  /** The remote party's address: a SIP URI, a number, ... */
  readonly handle: string;
  readonly handleType: HandleType;
  readonly displayName: string;
  readonly video: boolean;
}

/** Why the system UI refused an incoming call (CXErrorCodeIncomingCallError). */
export type ReportIncomingError =
  | 'unknown'
  | 'unentitled'
  | 'callUUIDAlreadyExists'
  | 'filteredByDoNotDisturb'
  | 'filteredByBlockList';

export type ReportIncomingResult = { readonly ok: true } | { readonly ok: false; readonly error: ReportIncomingError };

interface ActionBase {
  /** Lowercase UUID of the call the action is about. */
  readonly uuid: string;
  /** Tell the system the action succeeded. Calling it twice, or after fail, is ignored by adapters. */
  fulfill(): void;
  /** Tell the system the action failed. */
  fail(): void;
}
/** CXAnswerCallAction / Connection.onAnswer. */
export interface AnswerAction extends ActionBase {
  readonly kind: 'answer';
}
/** CXEndCallAction (decline while ringing, hang up when connected) / onReject, onDisconnect. */
export interface EndAction extends ActionBase {
  readonly kind: 'end';
}
/** CXStartCallAction (from the app, Recents, Siri) / onCreateOutgoingConnection. */
export interface StartAction extends ActionBase {
  readonly kind: 'start';
  readonly handle: string;
  readonly video: boolean;
  readonly displayName?: string;
}
/** CXSetHeldCallAction / onHold, onUnhold. */
export interface SetHeldAction extends ActionBase {
  readonly kind: 'setHeld';
  readonly onHold: boolean;
}
/** CXSetMutedCallAction / onCallAudioStateChanged (mute). */
export interface SetMutedAction extends ActionBase {
  readonly kind: 'setMuted';
  readonly muted: boolean;
}
export type Action = AnswerAction | EndAction | StartAction | SetHeldAction | SetMutedAction;

/** Events from the system call UI to the coordinator (CXProviderDelegate). */
export interface CallUiDelegate {
  onAnswer(action: AnswerAction): void;
  onEnd(action: EndAction): void;
  onStart(action: StartAction): void;
  onSetHeld(action: SetHeldAction): void;
  onSetMuted(action: SetMutedAction): void;
  /** provider(_:didActivate:). Audio may start now, not before. */
  onAudioSessionActivated(): void;
  /** provider(_:didDeactivate:). */
  onAudioSessionDeactivated(): void;
  /** provider(_:timedOutPerforming:): the system gave up on an action we held too long. */
  onActionTimedOut(action: Action): void;
  /**
   * A report accepted synchronously was refused later (CallKit's completion handler, or a
   * native report whose error reached JS afterwards).
   */
  onIncomingReportFailed(uuid: string, error: ReportIncomingError): void;
  /** providerDidReset: the system dropped every call. */
  onReset(): void;
}

export interface CallUiPort {
  setDelegate(delegate: CallUiDelegate): void;
  /**
   * reportNewIncomingCall. Must return synchronously: on iOS it is called inside the PushKit
   * callback. An adapter that learns the outcome later returns ok and, on failure, calls
   * `onIncomingReportFailed`.
   */
  reportIncoming(uuid: string, details: CallDetails): ReportIncomingResult;
  /** reportCall(with:updated:) — replace placeholder details once the INVITE is known. */
  updateCallDetails(uuid: string, details: CallDetails): void;
  /** reportOutgoingCall(with:startedConnectingAt:). */
  reportOutgoingConnecting(uuid: string): void;
  /** reportOutgoingCall(with:connectedAt:). */
  reportOutgoingConnected(uuid: string): void;
  /** reportCall(with:endedAt:reason:) — an end the user did not ask for. */
  reportEnded(uuid: string, reason: EndReason): void;
  /**
   * App-initiated transactions (CXCallController.request). The system answers each with
   * the corresponding action through the delegate.
   */
  requestStart(uuid: string, handle: string, video: boolean): void;
  requestAnswer(uuid: string): void;
  requestEnd(uuid: string): void;
  requestHold(uuid: string, onHold: boolean): void;
  requestMute(uuid: string, muted: boolean): void;
}

// ---------------------------------------------------------------------------------------
// Push (PushKit VoIP, FCM data, Web Push, webhook relay)
// ---------------------------------------------------------------------------------------

/** `apns-alert`: a regular (alert or background) APNs notification, not PushKit. */
export type PushTransport = 'apns-voip' | 'apns-alert' | 'fcm' | 'webpush' | 'webhook';

export interface IncomingPush {
  /** The push body in any shape `decodePush` accepts. */
  readonly raw: unknown;
  readonly transport: PushTransport;
  /**
   * True when the platform kills the app unless a call is reported before the handler
   * returns (iOS PushKit VoIP; false when iOS 26.4's `PKVoIPPushMetadata.mustReport` says
   * so). Android FCM: false.
   */
  readonly mustReport: boolean;
}

export interface PushHandler {
  /** Synchronous: the coordinator reports to the call UI before it returns. */
  onPush(push: IncomingPush): void;
  /** A new (or first) push token: hex for APNs, the registration token for FCM. */
  onTokenUpdated(token: string): void;
  /** didInvalidatePushTokenFor / FCM token deleted: the token must not be used any more. */
  onTokenInvalidated(): void;
}

export interface PushPort {
  setHandler(handler: PushHandler): void;
}

// ---------------------------------------------------------------------------------------
// SIP user agent
// ---------------------------------------------------------------------------------------

/** RFC 8599 parameters the UA puts in its REGISTER Contact. */
export interface PushContactParams {
  /** `pn-provider`: 'apns', 'fcm', 'webpush', ... */
  readonly pnProvider: string;
  /** `pn-prid`: the push token. */
  readonly pnPrid: string;
  /** `pn-param`: '<TEAMID>.<bundle>.voip' for APNs, the project id for FCM. */
  readonly pnParam: string;
  /** Extra Contact URI params, e.g. { 'pn-apns-env': 'sandbox' }. */
  readonly extra?: Readonly<Record<string, string>>;
}

export interface IncomingInvite {
  readonly callId: string;
  readonly fromUri: string;
  readonly fromDisplayName?: string;
  readonly toUri?: string;
  /** The offer has a video m-line. */
  readonly video: boolean;
}

/** Call state changes the UA reports for a call the coordinator asked it to act on. */
export type SipCallState =
  /** Incoming: the 200 OK to the INVITE has been sent (answer succeeded locally). */
  | { readonly state: 'answered' }
  /** Outgoing: a provisional response (180, 183). */
  | { readonly state: 'progress'; readonly code: number }
  /** Outgoing: 2xx received, dialog confirmed. */
  | { readonly state: 'established' }
  /** Answer could not be sent, outgoing got a final error, transport lost, ... */
  | { readonly state: 'failed'; readonly code?: number; readonly reason?: string };

export type RegistrationState =
  | { readonly state: 'registered' }
  | { readonly state: 'failed'; readonly code?: number; readonly reason?: string }
  | { readonly state: 'unregistered' };

export interface SipDelegate {
  /** A new INVITE (retransmissions are absorbed by the UA's transaction layer). */
  onInvite(invite: IncomingInvite): void;
  /** CANCEL of a pending INVITE, with its parsed Reason headers (possibly empty). */
  onCancel(callId: string, reasons: readonly SipReason[]): void;
  /** BYE from the remote party. */
  onBye(callId: string): void;
  onCallState(callId: string, state: SipCallState): void;
  onRegistration(state: RegistrationState): void;
}

export interface SipPort {
  setDelegate(delegate: SipDelegate): void;
  /**
   * REGISTER now (or refresh). `params` are the push params to put in the Contact;
   * undefined = keep whatever the UA has (used to refresh after a push).
   */
  register(params: PushContactParams | undefined): void;
  /** REGISTER with Expires: 0 for this device's binding. */
  unregister(): void;
  /** Send 200 OK to the INVITE; report `answered` (or `failed`) through onCallState. */
  answer(callId: string, options: { readonly video: boolean }): void;
  /** Final non-2xx response to an INVITE not yet answered (486, 603, 480...). */
  reject(callId: string, code: number): void;
  /** End a call in any other state: BYE when confirmed, CANCEL when outgoing and early. */
  hangup(callId: string): void;
  /** Send an INVITE; returns its Call-ID synchronously. */
  invite(target: string, options: { readonly video: boolean }): { readonly callId: string };
  /** re-INVITE with a=sendonly / a=sendrecv. */
  hold(callId: string, onHold: boolean): void;
  /** Stop / resume sending microphone audio. */
  mute(callId: string, muted: boolean): void;
  /**
   * Open or close the audio device (Twilio's `audioDevice.isEnabled`, Linphone's
   * `activateAudioSession`). The coordinator enables it only while the system audio
   * session is active.
   */
  setAudioEnabled(enabled: boolean): void;
}
