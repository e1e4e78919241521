/**
 * CallCoordinator: reconciles the push, the system call UI (CallKit / ConnectionService)
 * and SIP signalling, one explicit state machine per call (see state.ts for the diagram).
 *
 * The rules it enforces by construction (issue 6):
 * - A VoIP push is reported to the call UI synchronously, always. A malformed payload is
 *   reported as "Unknown caller" and ended at once; an expired one (sent_at + ttl < now)
 *   is reported and ended at once.
 * - The call UUID is UUID v5 of the SIP Call-ID, so push-first and INVITE-first converge and
 *   duplicate pushes / INVITEs are idempotent.
 * - The INVITE's caller details replace the payload's placeholder details.
 * - Answer before INVITE: the answer action is held until the INVITE came and its 200 OK
 *   was sent, then fulfilled; failed if the INVITE does not come in time. Decline before
 *   INVITE: the INVITE is rejected with 603 when it arrives.
 * - No INVITE within `noInviteTimeoutMs` of the push: ended as failed. A registration
 *   failure ends every call still waiting for its INVITE.
 * - CANCEL maps its RFC 3326 Reason to the end reason (reason.ts).
 * - Audio is enabled only while the system audio session is active, and re-enabled on
 *   unhold (where iOS does not call didActivate again).
 * - Outgoing calls go through the start action (connecting → connected).
 * - Concurrent calls are independent records; do-not-disturb / block list → 486 for this
 *   device only.
 * - A new push token re-registers with the new pn-prid; an invalidated one unregisters.
 */
import { ActionError, HandlerError, InvalidPayloadError, ReportFailedError, SipPortError, UnknownCallError } from './errors.js';
import type { ClientError } from './errors.js';
import { decodePush, isExpired } from './payload.js';
import type { PushPayload, RefreshPush } from './payload.js';
import type {
  Action,
  AnswerAction,
  CallDetails,
  CallUiDelegate,
  CallUiPort,
  Clock,
  EndAction,
  IncomingInvite,
  IncomingPush,
  PushContactParams,
  PushHandler,
  PushPort,
  RegistrationState,
  ReportIncomingError,
  SetHeldAction,
  SetMutedAction,
  SipCallState,
  SipDelegate,
  SipPort,
  StartAction,
  TimerHandle,
} from './ports.js';
import { endReasonForCancel } from './reason.js';
import type { EndReason, SipReason } from './reason.js';
import { checkTransition, isLive, isRinging } from './state.js';
import type { CallState } from './state.js';
import { callUuid, INVALID_PUSH_UUID, normalizeUuid, randomUuid } from './uuid.js';

// ---------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------

/** How push tokens become RFC 8599 Contact params. */
export interface PushConfig {
  /** `pn-provider`: 'apns' | 'fcm' | 'webpush' | ... */
  readonly provider: string;
  /** `pn-param`: '<TEAMID>.<bundle>.voip' (APNs) or the Firebase project id (FCM). */
  readonly param: string;
  /** Extra Contact URI params, e.g. { 'pn-apns-env': 'sandbox' } for development builds. */
  readonly extra?: Readonly<Record<string, string>>;
}

/** APNs VoIP push config. `sandbox: true` for development-signed builds. */
export function apnsPushConfig(opts: { teamId: string; bundleId: string; sandbox?: boolean }): PushConfig {
  return {
    provider: 'apns',
    param: `${opts.teamId}.${opts.bundleId}.voip`,
    ...(opts.sandbox ? { extra: { 'pn-apns-env': 'sandbox' } } : {}),
  };
}

/** FCM config: pn-param is the Firebase project id. */
export function fcmPushConfig(projectId: string): PushConfig {
  return { provider: 'fcm', param: projectId };
}

export interface CallCoordinatorOptions {
  readonly ui: CallUiPort;
  readonly push: PushPort;
  readonly sip: SipPort;
  readonly clock: Clock;
  /** Needed to register with push params; without it tokens are kept but not registered. */
  readonly pushConfig?: PushConfig;
  /** A token persisted from a previous run (PushKit may not repeat it at launch). */
  readonly initialToken?: string;
  /**
   * How long a pushed call waits for its INVITE before it is ended as failed. Default
   * 15 000 ms: Linphone's `push_incoming_call_timeout` and Siprix's timer; the server's
   * wake timeout is shorter, so by then the server has given up on this device.
   */
  readonly noInviteTimeoutMs?: number;
  /** How long a held answer waits for the SIP 200 OK to be sent. Default 10 000 ms. */
  readonly answerTimeoutMs?: number;
  /**
   * Local ring timeout (ends with `unanswered`, rejects 480). The server owns the ring
   * timeout and CANCELs (pushcall: 60 s); this is the failsafe for a CANCEL that never
   * arrives (the freshly woken phone lost its connection after the INVITE), so that CallKit
   * does not ring forever. Default 120 000 ms; 0 turns it off.
   */
  readonly ringTimeoutMs?: number;
  /** Clock skew tolerated when checking sent_at + ttl. Default 0 ms. */
  readonly expiryGraceMs?: number;
  /** How long ended calls are kept (late INVITEs, late pushes, timelines). Default 10 min. */
  readonly retainEndedMs?: number;
  /** Name shown for malformed pushes. Default 'Unknown caller'. */
  readonly unknownCallerName?: string;
  /** Throw IllegalTransitionError instead of reporting it. Default false; tests use true. */
  readonly strict?: boolean;
  /** UUIDs for app-started outgoing calls. Default: random v4. */
  readonly newUuid?: () => string;
}

export type CallDirection = 'incoming' | 'outgoing';

export type TimelineLane = 'push' | 'ui' | 'sip' | 'timer' | 'app';

/** One step of a call's history, for ladder diagrams and debugging. */
export interface TimelineEntry {
  /** Clock time (ms). */
  readonly at: number;
  /** Global order across all calls. */
  readonly seq: number;
  /** Which side of the coordinator the step is on. */
  readonly lane: TimelineLane;
  /** 'in' = towards the coordinator, 'out' = from it, 'state' = a transition. */
  readonly dir: 'in' | 'out' | 'state';
  readonly what: string;
  readonly detail?: string;
  /** The call's state after the step. */
  readonly state: CallState;
}

export interface CallSnapshot {
  readonly uuid: string;
  readonly callId: string | undefined;
  readonly direction: CallDirection;
  readonly state: CallState;
  readonly details: CallDetails;
  readonly held: boolean;
  readonly muted: boolean;
  readonly pushSeen: boolean;
  readonly inviteSeen: boolean;
  /** Set once ended: the reason shown (or that would have been shown) by the UI. */
  readonly endReason: EndReason | undefined;
  /** 'ui' = reportEnded; 'user' = the user's end action; 'silent' = never shown / UI already gone. */
  readonly endedBy: 'ui' | 'user' | 'silent' | undefined;
  readonly createdAt: number;
  readonly endedAt: number | undefined;
}

export type CoordinatorEvent =
  | { readonly type: 'transition'; readonly uuid: string; readonly from: CallState; readonly to: CallState; readonly cause: string }
  | { readonly type: 'timeline'; readonly uuid: string; readonly entry: TimelineEntry }
  | { readonly type: 'message'; readonly payload: PushPayload }
  | { readonly type: 'missedCall'; readonly payload: PushPayload }
  /** The server asked for a binding refresh (RFC 8599 §5.5); the coordinator re-registered. */
  | { readonly type: 'refreshPush'; readonly payload: RefreshPush }
  | { readonly type: 'registration'; readonly state: RegistrationState }
  | { readonly type: 'error'; readonly error: ClientError; readonly uuid?: string };

export type CoordinatorListener = (event: CoordinatorEvent) => void;

export interface Observable<T> {
  subscribe(listener: (value: T) => void): () => void;
}

// ---------------------------------------------------------------------------------------
// Internal record
// ---------------------------------------------------------------------------------------

interface CallRecord {
  readonly uuid: string;
  callId: string | undefined;
  readonly direction: CallDirection;
  state: CallState;
  details: CallDetails;
  /** The UI currently shows this call (an accepted report or start, not yet ended). */
  uiShown: boolean;
  pushSeen: boolean;
  inviteSeen: boolean;
  held: boolean;
  muted: boolean;
  answerActions: AnswerAction[];
  endReason: EndReason | undefined;
  endedBy: 'ui' | 'user' | 'silent' | undefined;
  /** Final response for an INVITE that arrives after the record ended. */
  lateInviteCode: number;
  readonly createdAt: number;
  endedAt: number | undefined;
  timer: TimerHandle | undefined;
  readonly timeline: TimelineEntry[];
}

const DEFAULTS = {
  noInviteTimeoutMs: 15_000,
  answerTimeoutMs: 10_000,
  ringTimeoutMs: 120_000,
  expiryGraceMs: 0,
  retainEndedMs: 10 * 60_000,
  unknownCallerName: 'Unknown caller',
};

/** Codes used on the SIP side. */
const SIP = {
  loopDetected: 482,
  busyHere: 486,
  decline: 603,
  temporarilyUnavailable: 480,
};

function userPart(uri: string): string {
  const m = /^(?:sips?|tel):([^@;>]+)/i.exec(uri.replace(/^.*</, ''));
  return m ? m[1] : uri;
}

function outgoingEndReason(code: number | undefined): EndReason {
  // The callee refused (busy, decline) → the remote ended it; anything else is a failure.
  return code === 486 || code === 600 || code === 603 ? 'remoteEnded' : 'failed';
}

// ---------------------------------------------------------------------------------------
// The coordinator
// ---------------------------------------------------------------------------------------

export class CallCoordinator {
  private readonly ui: CallUiPort;
  private readonly sip: SipPort;
  private readonly clock: Clock;
  private readonly opts: typeof DEFAULTS & { strict: boolean; pushConfig: PushConfig | undefined; newUuid: () => string };
  private readonly records = new Map<string, CallRecord>();
  private readonly byCallId = new Map<string, string>();
  private readonly listeners = new Set<CoordinatorListener>();
  private seq = 0;
  private token: string | undefined;
  /** iOS: the remote-notification (alert) token, registered beside the PushKit token. */
  private alertToken: string | undefined;
  private registration: RegistrationState['state'] | 'none' = 'none';
  private audioSessionActive = false;
  private audioEnabled = false;
  private disposed = false;
  private reportCount = 0;

  /** Observer of transitions, timeline steps, messages, registration and errors. */
  readonly events: Observable<CoordinatorEvent> = {
    subscribe: (listener) => {
      this.listeners.add(listener);
      return () => this.listeners.delete(listener);
    },
  };

  constructor(options: CallCoordinatorOptions) {
    this.ui = options.ui;
    this.sip = options.sip;
    this.clock = options.clock;
    this.opts = {
      noInviteTimeoutMs: options.noInviteTimeoutMs ?? DEFAULTS.noInviteTimeoutMs,
      answerTimeoutMs: options.answerTimeoutMs ?? DEFAULTS.answerTimeoutMs,
      ringTimeoutMs: options.ringTimeoutMs ?? DEFAULTS.ringTimeoutMs,
      expiryGraceMs: options.expiryGraceMs ?? DEFAULTS.expiryGraceMs,
      retainEndedMs: options.retainEndedMs ?? DEFAULTS.retainEndedMs,
      unknownCallerName: options.unknownCallerName ?? DEFAULTS.unknownCallerName,
      strict: options.strict ?? false,
      pushConfig: options.pushConfig,
      newUuid: options.newUuid ?? randomUuid,
    };
    this.token = options.initialToken;

    const uiDelegate: CallUiDelegate = {
      onAnswer: (a) => this.guard('ui answer', () => this.onAnswer(a)),
      onEnd: (a) => this.guard('ui end', () => this.onEnd(a)),
      onStart: (a) => this.guard('ui start', () => this.onStart(a)),
      onSetHeld: (a) => this.guard('ui hold', () => this.onSetHeld(a)),
      onSetMuted: (a) => this.guard('ui mute', () => this.onSetMuted(a)),
      onAudioSessionActivated: () => this.guard('audio on', () => this.onAudioActivated()),
      onAudioSessionDeactivated: () => this.guard('audio off', () => this.onAudioDeactivated()),
      onActionTimedOut: (a) => this.guard('action timeout', () => this.onActionTimedOut(a)),
      onIncomingReportFailed: (uuid, error) => this.guard('report failed', () => this.onReportFailed(uuid, error)),
      onReset: () => this.guard('reset', () => this.onReset()),
    };
    const pushHandler: PushHandler = {
      onPush: (p) => this.onPush(p),
      onTokenUpdated: (t) => this.guard('token', () => this.onTokenUpdated(t)),
      onTokenInvalidated: () => this.guard('token invalidated', () => this.onTokenInvalidated()),
    };
    const sipDelegate: SipDelegate = {
      onInvite: (i) => this.guard('INVITE', () => this.onInvite(i)),
      onCancel: (c, r) => this.guard('CANCEL', () => this.onCancel(c, r)),
      onBye: (c) => this.guard('BYE', () => this.onBye(c)),
      onCallState: (c, s) => this.guard('call state', () => this.onCallState(c, s)),
      onRegistration: (s) => this.guard('registration', () => this.onRegistration(s)),
    };
    this.ui.setDelegate(uiDelegate);
    options.push.setHandler(pushHandler);
    this.sip.setDelegate(sipDelegate);
  }

  // -------------------------------------------------------------------------------------
  // App API
  // -------------------------------------------------------------------------------------

  /** Register with the current token (call at launch once the UA is configured). */
  start(): void {
    if (this.token !== undefined) this.registerWith(this.token, 'app start');
  }

  /**
   * iOS: the remote-notification device token (`didRegisterForRemoteNotificationsWithDeviceToken`,
   * hex), or undefined when it was revoked. The registration then carries both tokens
   * (`pn-prid=<voip>:voip&<alert>:remote`), so the server can send what must not go over
   * PushKit: missed-call alerts and refresh pushes before the binding expires (RFC 8599 §5.5).
   */
  setAlertToken(token: string | undefined): void {
    this.guard('alert token', () => {
      if (token === this.alertToken) return;
      this.alertToken = token;
      // Like a new PushKit token: register at once (the token alone waits for one).
      if (this.token !== undefined) this.registerWith(this.token, 'alert token updated');
    });
  }

  /** Start an outgoing call through the system UI; returns its UUID. */
  startCall(target: string, options: { video?: boolean } = {}): string {
    const uuid = normalizeUuid(this.opts.newUuid());
    this.ui.requestStart(uuid, target, options.video ?? false);
    return uuid;
  }

  /** Answer from in-app UI (goes through the system UI's answer action). */
  answer(uuid: string): void {
    this.ui.requestAnswer(normalizeUuid(uuid));
  }

  /** Decline or hang up from in-app UI (through the system UI's end action). */
  hangup(uuid: string): void {
    this.ui.requestEnd(normalizeUuid(uuid));
  }

  setHeld(uuid: string, onHold: boolean): void {
    this.ui.requestHold(normalizeUuid(uuid), onHold);
  }

  setMuted(uuid: string, muted: boolean): void {
    this.ui.requestMute(normalizeUuid(uuid), muted);
  }

  /** The UUID a Call-ID maps to (same derivation as native code). */
  uuidForCallId(callId: string): string {
    return this.byCallId.get(callId) ?? callUuid(callId);
  }

  call(uuid: string): CallSnapshot | undefined {
    const rec = this.records.get(normalizeUuid(uuid));
    return rec ? this.snapshot(rec) : undefined;
  }

  calls(): CallSnapshot[] {
    return [...this.records.values()].map((r) => this.snapshot(r));
  }

  /** Read-only history of one call (kept while the record is retained). */
  timeline(uuid: string): readonly TimelineEntry[] {
    return this.records.get(normalizeUuid(uuid))?.timeline.slice() ?? [];
  }

  get registrationState(): RegistrationState['state'] | 'none' {
    return this.registration;
  }

  get currentToken(): string | undefined {
    return this.token;
  }

  get audio(): { readonly sessionActive: boolean; readonly enabled: boolean } {
    return { sessionActive: this.audioSessionActive, enabled: this.audioEnabled };
  }

  /** Cancel every timer. The coordinator ignores events afterwards. */
  dispose(): void {
    this.disposed = true;
    for (const rec of this.records.values()) this.clearTimer(rec);
    this.listeners.clear();
  }

  // -------------------------------------------------------------------------------------
  // Push
  // -------------------------------------------------------------------------------------

  private onPush(push: IncomingPush): void {
    // Report first, think later: nothing before `report` may be slow or throw.
    const reportsBefore = this.reportCount;
    try {
      if (this.disposed) {
        if (push.mustReport && this.uiReport(INVALID_PUSH_UUID, this.unknownDetails()).ok) {
          this.ui.reportEnded(INVALID_PUSH_UUID, 'failed');
        }
        return;
      }
      const decoded = decodePush(push.raw);
      if (!decoded.ok) {
        const uuid = decoded.callId !== undefined ? callUuid(decoded.callId) : INVALID_PUSH_UUID;
        const err = new InvalidPayloadError(`${decoded.reason}: ${decoded.detail}`);
        if (push.mustReport) {
          const details = { ...this.unknownDetails(), ...(decoded.fromName ? { displayName: decoded.fromName } : {}) };
          this.reportAndEndAtOnce(uuid, decoded.callId, details, 'failed', `malformed push (${decoded.reason})`, push);
        }
        this.emit({ type: 'error', error: err, uuid });
        return;
      }
      if (decoded.refresh) {
        this.onRefreshPush(decoded.refresh, push);
        return;
      }
      const p = decoded.payload;
      const uuid = callUuid(p.call_id);
      if (p.type !== 'call') {
        this.onNonCallPush(p, uuid, push);
        return;
      }
      this.onCallPush(p, uuid, push);
    } catch (e) {
      if (push.mustReport && this.reportCount === reportsBefore) {
        // Last resort: never let a push go unreported.
        try {
          const r = this.uiReport(INVALID_PUSH_UUID, this.unknownDetails());
          if (r.ok) this.ui.reportEnded(INVALID_PUSH_UUID, 'failed');
        } catch {
          /* nothing more we can do */
        }
      }
      if (this.opts.strict) throw e;
      this.emit({ type: 'error', error: new HandlerError(`push handler: ${String(e)}`, { cause: e }) });
    }
  }

  /**
   * RFC 8599 §4.1.3: every push gets a binding-refresh REGISTER, and this push asks for
   * nothing else. The server sends it silently (never PushKit); if one still came as a VoIP
   * push, iOS requires a reported call, so it is reported and ended at once.
   */
  private onRefreshPush(p: RefreshPush, push: IncomingPush): void {
    if (push.mustReport) {
      this.reportAndEndAtOnce(INVALID_PUSH_UUID, undefined, this.unknownDetails(), 'failed', 'refresh push sent as a VoIP push', push);
    }
    this.refreshRegistration('refresh push');
    this.emit({ type: 'refreshPush', payload: p });
  }

  private onCallPush(p: PushPayload, uuid: string, push: IncomingPush): void {
    const now = this.clock.now();
    const details = this.detailsFromPayload(p);
    const expired = isExpired(p, now, this.opts.expiryGraceMs);
    const existing = this.records.get(uuid);

    if (!existing) {
      this.sweep();
      const rec = this.create(uuid, 'incoming', p.call_id, details);
      rec.pushSeen = true;
      this.note(rec, 'push', 'in', `${push.transport} push (call)`, `from ${p.from_uri}${expired ? ', expired' : ''}`);
      if (!push.mustReport && expired) {
        // Nothing forces us to show it (Android): do not ring for a call that is over.
        this.endRecord(rec, { by: 'silent', reason: 'failed', lateInviteCode: SIP.temporarilyUnavailable }, 'expired push');
        return;
      }
      const result = this.reportIncoming(rec, details);
      if (result !== 'shown') return;
      this.transition(rec, 'pushed', 'push reported');
      if (expired) {
        this.endRecord(rec, { by: 'ui', reason: 'failed', lateInviteCode: SIP.temporarilyUnavailable }, 'expired push');
        return;
      }
      this.arm(rec, this.opts.noInviteTimeoutMs, 'no INVITE', () => this.onNoInvite(rec));
      this.refreshRegistration('push');
      return;
    }

    existing.pushSeen = true;
    this.note(existing, 'push', 'in', `${push.transport} push (duplicate)`);
    if (!push.mustReport) return;
    if (existing.state === 'ended') {
      this.reReportEnded(existing, details);
    } else {
      // Live already: report again to satisfy iOS; the UI answers callUUIDAlreadyExists.
      const r = this.safeUi('reportIncoming', () => this.uiReport(uuid, existing.details));
      this.note(existing, 'ui', 'out', 'reportNewIncomingCall (again)', r && !r.ok ? r.error : 'ok');
    }
  }

  private onNonCallPush(p: PushPayload, uuid: string, push: IncomingPush): void {
    const rec = this.records.get(uuid);
    const reason: EndReason | undefined =
      p.type === 'answered_elsewhere'
        ? 'answeredElsewhere'
        : p.type === 'declined_elsewhere'
          ? 'declinedElsewhere'
          : p.type === 'missed_call'
            ? 'remoteEnded'
            : undefined;

    if (rec) this.note(rec, 'push', 'in', `${push.transport} push (${p.type})`);
    if (p.type === 'message') {
      this.emit({ type: 'message', payload: p });
      // RFC 8599 §4.1.3: every push MUST trigger a binding-refresh REGISTER; the held
      // MESSAGE is delivered once it succeeds.
      this.refreshRegistration('push');
    }
    if (p.type === 'missed_call') this.emit({ type: 'missedCall', payload: p });

    if (push.mustReport) {
      // A non-call type should never come as a VoIP push, but if it does iOS still wants
      // a report. Live calls: report again (already exists). Otherwise report and end.
      if (rec && isLive(rec.state)) {
        const r = this.safeUi('reportIncoming', () => this.uiReport(uuid, rec.details));
        this.note(rec, 'ui', 'out', 'reportNewIncomingCall (again)', r && !r.ok ? r.error : 'ok');
      } else if (rec) {
        this.reReportEnded(rec, this.detailsFromPayload(p), reason);
      } else {
        this.reportAndEndAtOnce(uuid, p.call_id, this.detailsFromPayload(p), reason ?? 'failed', `VoIP push of type ${p.type}`, push);
        return;
      }
    }
    if (reason === undefined) return;

    if (!rec) {
      // The call push has not arrived yet (or never will): leave a tombstone so a late
      // call push or INVITE for this Call-ID is ended with the right reason.
      this.sweep();
      const tomb = this.create(uuid, 'incoming', p.call_id, this.detailsFromPayload(p));
      this.note(tomb, 'push', 'in', `${push.transport} push (${p.type}) before the call`);
      this.endRecord(tomb, { by: 'silent', reason, lateInviteCode: SIP.temporarilyUnavailable }, p.type);
      return;
    }
    switch (rec.state) {
      case 'pushed':
      case 'answerPending':
      case 'ringing':
        if (rec.inviteSeen && rec.callId) this.sipCall(rec, 'reject 480', () => this.sip.reject(rec.callId!, SIP.temporarilyUnavailable));
        this.endRecord(rec, { by: 'ui', reason, lateInviteCode: SIP.temporarilyUnavailable }, p.type);
        return;
      case 'answering':
        if (rec.callId) this.sipCall(rec, 'hangup', () => this.sip.hangup(rec.callId!));
        this.endRecord(rec, { by: 'ui', reason, lateInviteCode: SIP.temporarilyUnavailable }, p.type);
        return;
      default:
        // Connected here (the push is stale), outgoing, or already ended: nothing to do.
        return;
    }
  }

  /** Report a call only to end it immediately (malformed / expired / non-call VoIP push). */
  private reportAndEndAtOnce(
    uuid: string,
    callId: string | undefined,
    details: CallDetails,
    reason: EndReason,
    cause: string,
    push: IncomingPush,
  ): void {
    const existing = this.records.get(uuid);
    if (existing) {
      if (isLive(existing.state)) {
        const r = this.safeUi('reportIncoming', () => this.uiReport(uuid, existing.details));
        this.note(existing, 'ui', 'out', 'reportNewIncomingCall (again)', r && !r.ok ? r.error : 'ok');
      } else {
        this.reReportEnded(existing, details, reason);
      }
      return;
    }
    this.sweep();
    const rec = this.create(uuid, 'incoming', callId, details);
    rec.pushSeen = true;
    this.note(rec, 'push', 'in', `${push.transport} push`, cause);
    if (this.reportIncoming(rec, details) !== 'shown') return;
    this.transition(rec, 'pushed', 'push reported');
    this.endRecord(rec, { by: 'ui', reason, lateInviteCode: SIP.temporarilyUnavailable }, cause);
  }

  /** A VoIP push for a call that already ended here: iOS wants a report; end it at once. */
  private reReportEnded(rec: CallRecord, details: CallDetails, reason?: EndReason): void {
    const r = this.safeUi('reportIncoming', () => this.uiReport(rec.uuid, details));
    this.note(rec, 'ui', 'out', 'reportNewIncomingCall (late push)', r && !r.ok ? r.error : 'ok');
    if (r && r.ok) {
      const why = reason ?? rec.endReason ?? 'failed';
      this.safeUi('reportEnded', () => this.ui.reportEnded(rec.uuid, why));
      this.note(rec, 'ui', 'out', 'reportCall(endedAt:)', `${why} (late push for an ended call)`);
    }
  }

  // -------------------------------------------------------------------------------------
  // SIP
  // -------------------------------------------------------------------------------------

  private onInvite(inv: IncomingInvite): void {
    // Our own outgoing call coming back to us (we called our own AOR, or a group we are in):
    // its records are keyed by a random UUID, so only the Call-ID finds it. Taking the INVITE
    // as a new incoming call would repoint the Call-ID and strand the outgoing one.
    const outgoing = this.byCallId.get(inv.callId);
    if (outgoing !== undefined && this.records.get(outgoing)?.direction === 'outgoing') {
      this.emit({ type: 'error', error: new SipPortError(`INVITE reuses the Call-ID of outgoing call ${outgoing}`), uuid: outgoing });
      this.safeSip('reject 482 (own call)', () => this.sip.reject(inv.callId, SIP.loopDetected));
      return;
    }
    const uuid = callUuid(inv.callId);
    const rec = this.records.get(uuid);
    if (!rec) {
      this.sweep();
      const details = this.detailsFromInvite(inv, undefined);
      const fresh = this.create(uuid, 'incoming', inv.callId, details);
      fresh.inviteSeen = true;
      this.note(fresh, 'sip', 'in', 'INVITE', `from ${inv.fromUri}`);
      if (this.reportIncoming(fresh, details) !== 'shown') return;
      // Armed before the transition: a listener may answer synchronously, and its answer
      // timer must not be cleared by the ring timer armed after it.
      this.armRing(fresh);
      this.transition(fresh, 'ringing', 'INVITE reported');
      return;
    }
    if (rec.direction === 'outgoing') {
      this.emit({ type: 'error', error: new SipPortError(`INVITE reuses the Call-ID of outgoing call ${uuid}`), uuid });
      return;
    }
    if (rec.inviteSeen) {
      this.note(rec, 'sip', 'in', 'INVITE (duplicate, ignored)');
      return;
    }
    rec.inviteSeen = true;
    rec.callId = inv.callId;
    this.byCallId.set(inv.callId, uuid);
    this.note(rec, 'sip', 'in', 'INVITE', `from ${inv.fromUri}`);
    switch (rec.state) {
      case 'pushed': {
        this.clearTimer(rec);
        rec.details = this.detailsFromInvite(inv, rec.details);
        this.safeUi('updateCallDetails', () => this.ui.updateCallDetails(uuid, rec.details));
        this.note(rec, 'ui', 'out', 'reportCall(updated:)', rec.details.displayName);
        this.armRing(rec);
        this.transition(rec, 'ringing', 'INVITE for pushed call');
        return;
      }
      case 'answerPending': {
        this.clearTimer(rec);
        rec.details = this.detailsFromInvite(inv, rec.details);
        this.safeUi('updateCallDetails', () => this.ui.updateCallDetails(uuid, rec.details));
        this.note(rec, 'ui', 'out', 'reportCall(updated:)', rec.details.displayName);
        this.transition(rec, 'answering', 'INVITE for early-answered call');
        this.sipAnswer(rec);
        return;
      }
      case 'ended': {
        this.note(rec, 'sip', 'out', `${rec.lateInviteCode} (call already ended here)`);
        this.sipCall(rec, `reject ${rec.lateInviteCode}`, () => this.sip.reject(inv.callId, rec.lateInviteCode));
        return;
      }
      default:
        this.emit({ type: 'error', error: new SipPortError(`INVITE for call ${uuid} in state ${rec.state}`), uuid });
    }
  }

  private onCancel(callId: string, reasons: readonly SipReason[]): void {
    const rec = this.recordForCallId(callId);
    if (!rec) return;
    const reason = endReasonForCancel(reasons);
    const text = reasons.map((r) => `${r.protocol}${r.cause !== undefined ? `;cause=${r.cause}` : ''}`).join(', ');
    this.note(rec, 'sip', 'in', 'CANCEL', text || 'no Reason');
    switch (rec.state) {
      case 'pushed':
      case 'answerPending':
      case 'ringing':
      case 'answering':
        this.endRecord(rec, { by: 'ui', reason, lateInviteCode: SIP.temporarilyUnavailable }, 'CANCEL');
        return;
      default:
        return; // connected (CANCEL too late) or already ended
    }
  }

  private onBye(callId: string): void {
    const rec = this.recordForCallId(callId);
    if (!rec) return;
    this.note(rec, 'sip', 'in', 'BYE');
    if (rec.state === 'active' || rec.state === 'answering' || rec.state === 'dialing') {
      this.endRecord(rec, { by: 'ui', reason: 'remoteEnded', lateInviteCode: SIP.temporarilyUnavailable }, 'BYE');
    }
  }

  private onCallState(callId: string, st: SipCallState): void {
    const rec = this.recordForCallId(callId);
    if (!rec) return;
    switch (st.state) {
      case 'answered':
        this.note(rec, 'sip', 'out', '200 OK sent');
        if (rec.state !== 'answering') return; // ended meanwhile: the hangup already went out
        this.clearTimer(rec);
        this.transition(rec, 'active', '200 OK sent');
        for (const a of rec.answerActions.splice(0)) {
          this.safeUi('fulfill answer', () => a.fulfill());
          this.note(rec, 'ui', 'out', 'CXAnswerCallAction.fulfill');
        }
        this.applyMute(rec);
        return;
      case 'progress':
        this.note(rec, 'sip', 'in', `${st.code}`);
        return;
      case 'established':
        this.note(rec, 'sip', 'in', '200 OK (outgoing)');
        if (rec.state !== 'dialing') return;
        this.safeUi('reportOutgoingConnected', () => this.ui.reportOutgoingConnected(rec.uuid));
        this.note(rec, 'ui', 'out', 'reportOutgoingCall(connectedAt:)');
        this.transition(rec, 'active', 'outgoing established');
        this.applyMute(rec);
        return;
      case 'failed': {
        this.note(rec, 'sip', 'in', 'failed', `${st.code ?? ''} ${st.reason ?? ''}`.trim());
        if (!isLive(rec.state)) return;
        const reason = rec.direction === 'outgoing' && rec.state === 'dialing' ? outgoingEndReason(st.code) : 'failed';
        if (rec.state === 'active' && rec.callId) this.sipCall(rec, 'hangup', () => this.sip.hangup(rec.callId!));
        this.endRecord(rec, { by: 'ui', reason, lateInviteCode: SIP.temporarilyUnavailable }, 'SIP failure');
        return;
      }
    }
  }

  private onRegistration(state: RegistrationState): void {
    this.registration = state.state;
    this.emit({ type: 'registration', state });
    if (state.state !== 'failed') return;
    for (const rec of [...this.records.values()]) {
      if (rec.state === 'pushed' || rec.state === 'answerPending') {
        this.note(rec, 'sip', 'in', 'REGISTER failed', `${state.code ?? ''} ${state.reason ?? ''}`.trim());
        this.endRecord(rec, { by: 'ui', reason: 'failed', lateInviteCode: SIP.temporarilyUnavailable }, 'registration failed');
      }
    }
  }

  // -------------------------------------------------------------------------------------
  // Call UI actions
  // -------------------------------------------------------------------------------------

  private onAnswer(action: AnswerAction): void {
    const rec = this.records.get(normalizeUuid(action.uuid));
    if (!rec) {
      this.failAction(action, 'unknown call');
      this.emit({ type: 'error', error: new UnknownCallError(action.uuid, 'answer') });
      return;
    }
    this.note(rec, 'ui', 'in', 'CXAnswerCallAction');
    switch (rec.state) {
      case 'pushed':
        rec.answerActions.push(action);
        this.transition(rec, 'answerPending', 'answered before INVITE');
        this.note(rec, 'ui', 'state', 'answer held until the INVITE is answered');
        return;
      case 'ringing':
        rec.answerActions.push(action);
        this.clearTimer(rec);
        this.transition(rec, 'answering', 'answered');
        this.sipAnswer(rec);
        return;
      case 'answerPending':
      case 'answering':
        // One answer is already held; fulfilling a second one too would complete an action
        // on a call the first already connected. The duplicate fails, the first stands.
        if (rec.answerActions.length > 0) this.failAction(action, 'answer already in progress');
        else rec.answerActions.push(action);
        return;
      case 'active':
        action.fulfill();
        return;
      default:
        this.failAction(action, `call is ${rec.state}`);
    }
  }

  private onEnd(action: EndAction): void {
    const rec = this.records.get(normalizeUuid(action.uuid));
    if (!rec) {
      // Let the UI drop a call we do not know rather than leave it stuck.
      action.fulfill();
      return;
    }
    this.note(rec, 'ui', 'in', 'CXEndCallAction');
    const callId = rec.callId;
    switch (rec.state) {
      case 'pushed':
      case 'answerPending':
        this.endRecord(rec, { by: 'user', reason: undefined, lateInviteCode: SIP.decline }, 'declined before INVITE');
        break;
      case 'ringing':
        if (callId) this.sipCall(rec, 'reject 603', () => this.sip.reject(callId, SIP.decline));
        this.note(rec, 'sip', 'out', '603 Decline');
        this.endRecord(rec, { by: 'user', reason: undefined, lateInviteCode: SIP.decline }, 'declined');
        break;
      case 'answering':
      case 'dialing':
      case 'active':
        if (callId) this.sipCall(rec, 'hangup', () => this.sip.hangup(callId));
        this.note(rec, 'sip', 'out', rec.state === 'dialing' ? 'CANCEL' : 'BYE');
        this.endRecord(rec, { by: 'user', reason: undefined, lateInviteCode: SIP.temporarilyUnavailable }, 'user hung up');
        break;
      default:
        break;
    }
    action.fulfill();
    this.note(rec, 'ui', 'out', 'CXEndCallAction.fulfill');
  }

  private onStart(action: StartAction): void {
    const uuid = normalizeUuid(action.uuid);
    if (this.records.has(uuid)) {
      this.failAction(action, 'UUID already used');
      return;
    }
    this.sweep();
    const details: CallDetails = {
      handle: action.handle,
      handleType: 'generic',
      displayName: action.displayName ?? userPart(action.handle),
      video: action.video,
    };
    const rec = this.create(uuid, 'outgoing', undefined, details);
    this.note(rec, 'ui', 'in', 'CXStartCallAction', action.handle);
    let callId: string;
    try {
      callId = this.sip.invite(action.handle, { video: action.video }).callId;
    } catch (e) {
      this.emit({ type: 'error', error: new SipPortError(`invite failed: ${String(e)}`, { cause: e }), uuid });
      this.endRecord(rec, { by: 'silent', reason: 'failed', lateInviteCode: SIP.temporarilyUnavailable }, 'INVITE could not be sent');
      this.failAction(action, 'INVITE could not be sent');
      return;
    }
    rec.callId = callId;
    this.byCallId.set(callId, uuid);
    rec.uiShown = true;
    this.note(rec, 'sip', 'out', 'INVITE', callId);
    this.transition(rec, 'dialing', 'start action');
    this.safeUi('reportOutgoingConnecting', () => this.ui.reportOutgoingConnecting(uuid));
    this.note(rec, 'ui', 'out', 'reportOutgoingCall(startedConnectingAt:)');
    action.fulfill();
    this.note(rec, 'ui', 'out', 'CXStartCallAction.fulfill');
  }

  private onSetHeld(action: SetHeldAction): void {
    const rec = this.records.get(normalizeUuid(action.uuid));
    if (!rec || rec.state !== 'active' || !rec.callId) {
      this.failAction(action, rec ? `call is ${rec.state}` : 'unknown call');
      return;
    }
    this.note(rec, 'ui', 'in', action.onHold ? 'CXSetHeldCallAction(hold)' : 'CXSetHeldCallAction(unhold)');
    const callId = rec.callId;
    this.sipCall(rec, 'hold', () => this.sip.hold(callId, action.onHold));
    rec.held = action.onHold;
    action.fulfill();
    if (!action.onHold && this.audioSessionActive) {
      // iOS does not call didActivate again on unhold (Apple forum 694836): re-enable.
      this.setAudio(true, 'unhold');
    }
  }

  private onSetMuted(action: SetMutedAction): void {
    const rec = this.records.get(normalizeUuid(action.uuid));
    if (!rec || !isLive(rec.state)) {
      this.failAction(action, rec ? `call is ${rec.state}` : 'unknown call');
      return;
    }
    this.note(rec, 'ui', 'in', action.muted ? 'CXSetMutedCallAction(mute)' : 'CXSetMutedCallAction(unmute)');
    rec.muted = action.muted;
    if ((rec.state === 'active' || rec.state === 'dialing') && rec.callId) {
      const callId = rec.callId;
      this.sipCall(rec, action.muted ? 'mute' : 'unmute', () => this.sip.mute(callId, action.muted));
    }
    action.fulfill();
  }

  private onAudioActivated(): void {
    this.audioSessionActive = true;
    for (const rec of this.records.values()) if (isLive(rec.state)) this.note(rec, 'ui', 'in', 'didActivate audioSession');
    this.setAudio(true, 'didActivate');
  }

  private onAudioDeactivated(): void {
    this.audioSessionActive = false;
    for (const rec of this.records.values()) if (isLive(rec.state)) this.note(rec, 'ui', 'in', 'didDeactivate audioSession');
    if (this.audioEnabled) this.setAudio(false, 'didDeactivate');
  }

  private onActionTimedOut(action: Action): void {
    const rec = this.records.get(normalizeUuid(action.uuid));
    if (!rec) return;
    this.note(rec, 'ui', 'in', `${action.kind} action timed out`);
    if (action.kind !== 'answer') return;
    rec.answerActions = rec.answerActions.filter((a) => a !== action);
    if (rec.state === 'answerPending' || rec.state === 'answering') {
      if (rec.state === 'answering' && rec.callId) this.sipCall(rec, 'hangup', () => this.sip.hangup(rec.callId!));
      this.endRecord(rec, { by: 'ui', reason: 'failed', lateInviteCode: SIP.temporarilyUnavailable }, 'answer action timed out');
    }
  }

  private onReportFailed(uuid: string, error: ReportIncomingError): void {
    const rec = this.records.get(normalizeUuid(uuid));
    if (!rec || error === 'callUUIDAlreadyExists') return;
    this.note(rec, 'ui', 'in', 'report refused', error);
    if (!isLive(rec.state)) return;
    this.emit({ type: 'error', error: new ReportFailedError(rec.uuid, error), uuid: rec.uuid });
    rec.uiShown = false; // the UI never showed it: no reportEnded
    const code = this.codeForRefusal(error);
    if (rec.callId && rec.inviteSeen) {
      if (rec.state === 'ringing') this.sipCall(rec, `reject ${code}`, () => this.sip.reject(rec.callId!, code));
      else if (rec.state === 'answering' || rec.state === 'active') this.sipCall(rec, 'hangup', () => this.sip.hangup(rec.callId!));
    }
    this.endRecord(rec, { by: 'silent', reason: 'failed', lateInviteCode: code }, `report refused (${error})`);
  }

  private onReset(): void {
    for (const rec of [...this.records.values()]) {
      if (!isLive(rec.state)) continue;
      this.note(rec, 'ui', 'in', 'providerDidReset');
      rec.uiShown = false;
      if (rec.callId && rec.inviteSeen && rec.state === 'ringing') {
        this.sipCall(rec, 'reject 480', () => this.sip.reject(rec.callId!, SIP.temporarilyUnavailable));
      } else if (rec.callId && (rec.state === 'answering' || rec.state === 'active' || rec.state === 'dialing')) {
        this.sipCall(rec, 'hangup', () => this.sip.hangup(rec.callId!));
      }
      this.endRecord(rec, { by: 'silent', reason: 'failed', lateInviteCode: SIP.temporarilyUnavailable }, 'provider reset');
    }
    this.audioSessionActive = false;
    if (this.audioEnabled) this.setAudio(false, 'provider reset');
  }

  // -------------------------------------------------------------------------------------
  // Tokens and registration
  // -------------------------------------------------------------------------------------

  private onTokenUpdated(token: string): void {
    if (token === this.token && this.registration === 'registered') return;
    this.token = token;
    this.registerWith(token, 'token updated');
  }

  private onTokenInvalidated(): void {
    this.token = undefined;
    this.safeSip('unregister', () => this.sip.unregister());
  }

  private contactParams(token: string): PushContactParams | undefined {
    const cfg = this.opts.pushConfig;
    if (!cfg) return undefined;
    const extra = cfg.extra ? { extra: cfg.extra } : {};
    // The two-token APNs form (Flexisip's, which pushcall reads): services after the bundle.
    if (this.alertToken !== undefined && cfg.provider === 'apns' && cfg.param.endsWith('.voip')) {
      return { pnProvider: cfg.provider, pnPrid: `${token}:voip&${this.alertToken}:remote`, pnParam: `${cfg.param}&remote`, ...extra };
    }
    return { pnProvider: cfg.provider, pnPrid: token, pnParam: cfg.param, ...extra };
  }

  private registerWith(token: string, why: string): void {
    const params = this.contactParams(token);
    if (!params) {
      this.emit({ type: 'error', error: new SipPortError(`${why}: no pushConfig, cannot build pn-* params`) });
      return;
    }
    this.safeSip('register', () => this.sip.register(params));
  }

  private refreshRegistration(why: string): void {
    const params = this.token !== undefined ? this.contactParams(this.token) : undefined;
    this.safeSip(`register (${why})`, () => this.sip.register(params));
  }

  // -------------------------------------------------------------------------------------
  // Timers
  // -------------------------------------------------------------------------------------

  private onNoInvite(rec: CallRecord): void {
    if (rec.state !== 'pushed' && rec.state !== 'answerPending') return;
    this.note(rec, 'timer', 'in', `no INVITE after ${this.opts.noInviteTimeoutMs} ms`);
    this.endRecord(rec, { by: 'ui', reason: 'failed', lateInviteCode: SIP.temporarilyUnavailable }, 'no INVITE in time');
  }

  private armRing(rec: CallRecord): void {
    if (this.opts.ringTimeoutMs <= 0) return;
    this.arm(rec, this.opts.ringTimeoutMs, 'ring timeout', () => {
      if (rec.state !== 'ringing' || !rec.callId) return;
      this.note(rec, 'timer', 'in', 'ring timeout');
      const callId = rec.callId;
      this.sipCall(rec, 'reject 480', () => this.sip.reject(callId, SIP.temporarilyUnavailable));
      this.endRecord(rec, { by: 'ui', reason: 'unanswered', lateInviteCode: SIP.temporarilyUnavailable }, 'ring timeout');
    });
  }

  private arm(rec: CallRecord, ms: number, what: string, fire: () => void): void {
    this.clearTimer(rec);
    rec.timer = this.clock.setTimeout(() => {
      rec.timer = undefined;
      if (this.disposed) return;
      this.guard(`timer ${what}`, fire);
    }, ms);
  }

  private clearTimer(rec: CallRecord): void {
    rec.timer?.cancel();
    rec.timer = undefined;
  }

  // -------------------------------------------------------------------------------------
  // Helpers
  // -------------------------------------------------------------------------------------

  private sipAnswer(rec: CallRecord): void {
    const callId = rec.callId!;
    this.arm(rec, this.opts.answerTimeoutMs, 'answer', () => {
      if (rec.state !== 'answering') return;
      this.note(rec, 'timer', 'in', `200 OK not sent after ${this.opts.answerTimeoutMs} ms`);
      this.sipCall(rec, 'hangup', () => this.sip.hangup(callId));
      this.endRecord(rec, { by: 'ui', reason: 'failed', lateInviteCode: SIP.temporarilyUnavailable }, 'answer timed out');
    });
    this.note(rec, 'sip', 'out', 'answer (200 OK)');
    const ok = this.sipCall(rec, 'answer', () => this.sip.answer(callId, { video: rec.details.video }));
    if (!ok && rec.state === 'answering') {
      this.endRecord(rec, { by: 'ui', reason: 'failed', lateInviteCode: SIP.temporarilyUnavailable }, 'answer failed');
    }
  }

  /** A call that connects while muted (the user muted while it rang or dialed) starts muted. */
  private applyMute(rec: CallRecord): void {
    if (!rec.muted || !rec.callId) return;
    const callId = rec.callId;
    this.sipCall(rec, 'mute', () => this.sip.mute(callId, true));
  }

  private setAudio(enabled: boolean, why: string): void {
    if (enabled && !this.audioSessionActive) return; // never before activation
    this.audioEnabled = enabled;
    this.safeSip(`audio ${enabled ? 'on' : 'off'} (${why})`, () => this.sip.setAudioEnabled(enabled));
  }

  /** Report to the UI and handle a refusal. Returns 'shown' when the call is on screen. */
  private reportIncoming(rec: CallRecord, details: CallDetails): 'shown' | 'refused' {
    let result: ReturnType<CallUiPort['reportIncoming']>;
    try {
      result = this.uiReport(rec.uuid, details);
    } catch (e) {
      this.emit({ type: 'error', error: new HandlerError(`reportIncoming threw: ${String(e)}`, { cause: e }), uuid: rec.uuid });
      result = { ok: false, error: 'unknown' };
    }
    this.note(rec, 'ui', 'out', 'reportNewIncomingCall', result.ok ? details.displayName : result.error);
    // The UI already has this UUID (reported natively before JS ran): adopt it.
    if (result.ok || result.error === 'callUUIDAlreadyExists') {
      rec.uiShown = true;
      return 'shown';
    }
    const code = this.codeForRefusal(result.error);
    this.emit({ type: 'error', error: new ReportFailedError(rec.uuid, result.error), uuid: rec.uuid });
    if (rec.inviteSeen && rec.callId) {
      const callId = rec.callId;
      this.note(rec, 'sip', 'out', `${code} (${result.error})`);
      this.sipCall(rec, `reject ${code}`, () => this.sip.reject(callId, code));
    }
    this.endRecord(rec, { by: 'silent', reason: 'failed', lateInviteCode: code }, `report refused (${result.error})`);
    return 'refused';
  }

  /** Every reportNewIncomingCall goes through here (counted for the push handler's safety net). */
  private uiReport(uuid: string, details: CallDetails): ReturnType<CallUiPort['reportIncoming']> {
    this.reportCount++;
    return this.ui.reportIncoming(uuid, details);
  }

  private codeForRefusal(error: ReportIncomingError): number {
    // DND and block list: busy for this device only; other devices keep ringing (Linphone).
    return error === 'filteredByDoNotDisturb' || error === 'filteredByBlockList' ? SIP.busyHere : SIP.temporarilyUnavailable;
  }

  /**
   * The one way a call ends. `by`: 'ui' → reportEnded(reason) when the UI shows it;
   * 'user' → the user's end action (the caller fulfils it; no reportEnded);
   * 'silent' → never shown or the UI already dropped it.
   */
  private endRecord(
    rec: CallRecord,
    how: { by: 'ui' | 'user' | 'silent'; reason: EndReason | undefined; lateInviteCode: number },
    cause: string,
  ): void {
    if (rec.state === 'ended') return;
    this.clearTimer(rec);
    const shown = rec.uiShown;
    rec.uiShown = false;
    rec.endedBy = how.by === 'ui' && !shown ? 'silent' : how.by;
    rec.endReason = how.reason;
    rec.lateInviteCode = how.lateInviteCode;
    rec.endedAt = this.clock.now();
    this.transition(rec, 'ended', cause);
    for (const a of rec.answerActions.splice(0)) {
      this.failAction(a, cause);
      this.note(rec, 'ui', 'out', 'CXAnswerCallAction.fail', cause);
    }
    if (how.by === 'ui' && shown && how.reason) {
      const reason = how.reason;
      this.safeUi('reportEnded', () => this.ui.reportEnded(rec.uuid, reason));
      this.note(rec, 'ui', 'out', 'reportCall(endedAt:)', reason);
    }
  }

  private transition(rec: CallRecord, to: CallState, cause: string): void {
    const from = rec.state;
    try {
      checkTransition(rec.uuid, from, to, cause);
    } catch (e) {
      if (this.opts.strict) throw e;
      this.emit({ type: 'error', error: e as ClientError, uuid: rec.uuid });
      return;
    }
    rec.state = to;
    this.note(rec, 'app', 'state', `${from} → ${to}`, cause);
    this.emit({ type: 'transition', uuid: rec.uuid, from, to, cause });
  }

  private create(uuid: string, direction: CallDirection, callId: string | undefined, details: CallDetails): CallRecord {
    const rec: CallRecord = {
      uuid,
      callId,
      direction,
      state: 'idle',
      details,
      uiShown: false,
      pushSeen: false,
      inviteSeen: false,
      held: false,
      muted: false,
      answerActions: [],
      endReason: undefined,
      endedBy: undefined,
      lateInviteCode: SIP.temporarilyUnavailable,
      createdAt: this.clock.now(),
      endedAt: undefined,
      timer: undefined,
      timeline: [],
    };
    this.records.set(uuid, rec);
    if (callId !== undefined) this.byCallId.set(callId, uuid);
    return rec;
  }

  private recordForCallId(callId: string): CallRecord | undefined {
    const uuid = this.byCallId.get(callId) ?? callUuid(callId);
    return this.records.get(uuid);
  }

  /** Drop ended records older than retainEndedMs. */
  private sweep(): void {
    const limit = this.clock.now() - this.opts.retainEndedMs;
    for (const [uuid, rec] of this.records) {
      if (rec.state === 'ended' && rec.endedAt !== undefined && rec.endedAt < limit) {
        this.records.delete(uuid);
        if (rec.callId !== undefined && this.byCallId.get(rec.callId) === uuid) this.byCallId.delete(rec.callId);
      }
    }
  }

  private detailsFromPayload(p: PushPayload): CallDetails {
    return {
      handle: p.from_uri,
      handleType: 'generic',
      displayName: p.from_name || userPart(p.from_uri) || this.opts.unknownCallerName,
      video: p.video,
    };
  }

  private detailsFromInvite(inv: IncomingInvite, previous: CallDetails | undefined): CallDetails {
    return {
      handle: inv.fromUri,
      handleType: 'generic',
      displayName: inv.fromDisplayName || previous?.displayName || userPart(inv.fromUri) || this.opts.unknownCallerName,
      video: inv.video,
    };
  }

  private unknownDetails(): CallDetails {
    return { handle: 'unknown', handleType: 'generic', displayName: this.opts.unknownCallerName, video: false };
  }

  private failAction(action: Action, why: string): void {
    this.safeUi(`fail ${action.kind}`, () => action.fail());
    this.emit({ type: 'error', error: new ActionError(action.uuid, action.kind, why), uuid: action.uuid });
  }

  private note(rec: CallRecord, lane: TimelineLane, dir: TimelineEntry['dir'], what: string, detail?: string): void {
    const entry: TimelineEntry = {
      at: this.clock.now(),
      seq: ++this.seq,
      lane,
      dir,
      what,
      ...(detail !== undefined && detail !== '' ? { detail } : {}),
      state: rec.state,
    };
    rec.timeline.push(entry);
    this.emit({ type: 'timeline', uuid: rec.uuid, entry });
  }

  private snapshot(rec: CallRecord): CallSnapshot {
    return {
      uuid: rec.uuid,
      callId: rec.callId,
      direction: rec.direction,
      state: rec.state,
      details: rec.details,
      held: rec.held,
      muted: rec.muted,
      pushSeen: rec.pushSeen,
      inviteSeen: rec.inviteSeen,
      endReason: rec.endReason,
      endedBy: rec.endedBy,
      createdAt: rec.createdAt,
      endedAt: rec.endedAt,
    };
  }

  private emit(event: CoordinatorEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        /* a listener's bug must not break call handling */
      }
    }
  }

  /** Run a port call; on throw, report and return false. */
  private sipCall(rec: CallRecord, what: string, fn: () => void): boolean {
    try {
      fn();
      return true;
    } catch (e) {
      this.emit({ type: 'error', error: new SipPortError(`${what} threw: ${String(e)}`, { cause: e }), uuid: rec.uuid });
      return false;
    }
  }

  private safeSip(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.emit({ type: 'error', error: new SipPortError(`${what} threw: ${String(e)}`, { cause: e }) });
    }
  }

  private safeUi<T>(what: string, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (e) {
      this.emit({ type: 'error', error: new HandlerError(`call UI ${what} threw: ${String(e)}`, { cause: e }) });
      return undefined;
    }
  }

  /** Entry points: in strict mode errors propagate (tests); otherwise they become events. */
  private guard(what: string, fn: () => void): void {
    if (this.disposed) return;
    if (this.opts.strict) {
      fn();
      return;
    }
    try {
      fn();
    } catch (e) {
      this.emit({ type: 'error', error: new HandlerError(`${what}: ${String(e)}`, { cause: e }) });
    }
  }
}
