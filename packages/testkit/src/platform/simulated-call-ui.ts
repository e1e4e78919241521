/**
 * A simulated system call UI (CallKit's CXProvider/CXCallController, or Android's
 * ConnectionService), shared by SimulatedIos and SimulatedAndroid. It implements the client
 * SDK's CallUiPort, plays the user through `user*` methods, and records everything so
 * tests can assert the platform's rules were obeyed:
 *
 * - every accepted incoming report is one *incarnation* of a UUID; a UUID may be reported
 *   again only after its previous incarnation ended (otherwise callUUIDAlreadyExists);
 * - every incarnation ends exactly once: by reportEnded, by the user's fulfilled end
 *   action, or by a failed start action; a second end is a violation;
 * - actions are completed (fulfilled or failed) exactly once, and before their timeout
 *   when the platform has one (CallKit); a late completion is a violation;
 * - the audio session is activated only once a call is connected (answer fulfilled) or an
 *   outgoing call started, and on unhold when it is not active.
 *
 * Time comes from an injected Clock, so it runs on FakeClock.
 */
import type {
  Action,
  AnswerAction,
  CallDetails,
  CallUiDelegate,
  CallUiPort,
  Clock,
  EndAction,
  EndReason,
  ReportIncomingError,
  ReportIncomingResult,
  SetHeldAction,
  SetMutedAction,
  StartAction,
  TimerHandle,
} from '@pushcall/client';

/** A shared counter to order events across simulated components (UI, SIP, push). */
export type Sequence = () => number;

export function createSequence(): Sequence {
  let n = 0;
  return () => ++n;
}

export type SimCallState =
  /** Incoming, shown, not answered. */
  | 'ringing'
  /** Outgoing, start requested, start action not yet fulfilled. */
  | 'starting'
  /** Outgoing, connecting reported or start fulfilled. */
  | 'connecting'
  /** Connected: answer fulfilled or outgoing connected. */
  | 'connected'
  | 'ended';

export type SimEndedBy = 'reportEnded' | 'endAction' | 'startFailed' | 'reset';

/** One incarnation of a UUID in the system UI. */
export interface SimCall {
  readonly uuid: string;
  readonly incarnation: number;
  readonly direction: 'incoming' | 'outgoing';
  state: SimCallState;
  details: CallDetails;
  held: boolean;
  muted: boolean;
  /** An answer action for it was failed (the app must still end it). */
  answerFailed: boolean;
  readonly shownAt: number;
  answeredAt: number | undefined;
  endedAt: number | undefined;
  endedBy: SimEndedBy | undefined;
  /** reportEnded's reason, or 'local' for the user's end action, 'failed' for a failed start. */
  endReason: EndReason | 'local' | undefined;
  /** When the test said the server had ended this call (for ghost-ring measurement). */
  serverEndedAt: number | undefined;
  /** Whether it was still ringing when the server ended it. */
  ringingWhenServerEnded: boolean;
}

export type SimActionStatus = 'pending' | 'fulfilled' | 'failed' | 'timedOut';

export interface SimActionRecord {
  readonly seq: number;
  readonly kind: Action['kind'];
  readonly uuid: string;
  readonly createdAt: number;
  status: SimActionStatus;
  completedAt: number | undefined;
  /** Sequence number at completion (fulfil/fail), for ordering against SIP events. */
  completedSeq: number | undefined;
}

export interface SimLogEntry {
  readonly seq: number;
  readonly at: number;
  readonly what: string;
  readonly uuid?: string;
  readonly detail?: string;
}

export interface SimulatedCallUiOptions {
  readonly clock: Clock;
  /** Shared ordering counter; one is created when absent. */
  readonly sequence?: Sequence;
  /**
   * Actions not completed within this time are timed out (provider(_:timedOutPerforming:)).
   * Undefined = no timeout (Android).
   */
  readonly actionTimeoutMs?: number;
  /** Delay between a call connecting and didActivate. Default 20 ms. */
  readonly audioActivationDelayMs?: number;
  /** UUIDs for user-started calls. Default: uuid-like counter values. */
  readonly newUuid?: () => string;
  /** Whether unhold always re-activates the audio session (Android) or only when inactive (iOS). */
  readonly activateAudioOnUnhold?: 'always' | 'ifInactive';
  /** Name used in log lines. */
  readonly name?: string;
}

function norm(uuid: string): string {
  return uuid.toLowerCase();
}

export class SimulatedCallUi implements CallUiPort {
  protected delegate: CallUiDelegate | undefined;
  protected readonly clock: Clock;
  readonly sequence: Sequence;
  private readonly actionTimeoutMs: number | undefined;
  private readonly audioDelayMs: number;
  private readonly activateOnUnhold: 'always' | 'ifInactive';
  private readonly newUuid: () => string;
  private uuidCounter = 0;

  /** Every incarnation, in order. */
  readonly history: SimCall[] = [];
  /** Every action delivered to the app. */
  readonly actions: SimActionRecord[] = [];
  /** Everything, for debugging and ladder diagrams. */
  readonly log: SimLogEntry[] = [];
  /** Rule breaks by the app. Tests assert this stays empty. */
  readonly violations: string[] = [];

  /** Report attempts (any outcome), for the PushKit rule. */
  protected reportAttempts = 0;
  private audioActive = false;
  private audioTimer: TimerHandle | undefined;
  /** Activation/deactivation history: [seq, active]. */
  readonly audioHistory: { seq: number; at: number; active: boolean }[] = [];

  doNotDisturb = false;
  readonly blockedHandles = new Set<string>();
  entitled = true;

  constructor(options: SimulatedCallUiOptions) {
    this.clock = options.clock;
    this.sequence = options.sequence ?? createSequence();
    this.actionTimeoutMs = options.actionTimeoutMs;
    this.audioDelayMs = options.audioActivationDelayMs ?? 20;
    this.activateOnUnhold = options.activateAudioOnUnhold ?? 'ifInactive';
    this.newUuid =
      options.newUuid ??
      (() => {
        const n = (++this.uuidCounter).toString(16).padStart(12, '0');
        return `00000000-0000-4000-8000-${n}`;
      });
  }

  // -------------------------------------------------------------------------------------
  // Queries
  // -------------------------------------------------------------------------------------

  /** The latest incarnation of a UUID. */
  call(uuid: string): SimCall | undefined {
    const u = norm(uuid);
    for (let i = this.history.length - 1; i >= 0; i--) if (this.history[i].uuid === u) return this.history[i];
    return undefined;
  }

  /** Calls not ended. */
  liveCalls(): SimCall[] {
    return this.history.filter((c) => c.state !== 'ended');
  }

  /** Incoming calls the user sees ringing right now. */
  ringingCalls(): SimCall[] {
    return this.history.filter((c) => c.state === 'ringing');
  }

  get audioSessionActive(): boolean {
    return this.audioActive;
  }

  /**
   * How long a call kept ringing after the server had ended it (`serverEnded`), in ms: up
   * to its end, or to now if it still rings. 0 when it was not ringing then.
   */
  ghostRingMs(uuid: string): number {
    const c = this.call(uuid);
    if (!c || c.serverEndedAt === undefined || !c.ringingWhenServerEnded) return 0;
    const until = c.state === 'ringing' ? this.clock.now() : (c.answeredAt ?? c.endedAt ?? this.clock.now());
    return Math.max(0, until - c.serverEndedAt);
  }

  /** A new incarnation of `uuid`, shown now. */
  private addCall(uuid: string, direction: SimCall['direction'], state: SimCall['state'], details: SimCall['details']): void {
    this.history.push({
      uuid,
      incarnation: this.incarnations(uuid) + 1,
      direction,
      state,
      details,
      held: false,
      muted: false,
      answerFailed: false,
      shownAt: this.clock.now(),
      answeredAt: undefined,
      endedAt: undefined,
      endedBy: undefined,
      endReason: undefined,
      serverEndedAt: undefined,
      ringingWhenServerEnded: false,
    });
  }

  /** Number of incarnations (accepted reports or starts) of a UUID. */
  incarnations(uuid: string): number {
    const u = norm(uuid);
    return this.history.filter((c) => c.uuid === u).length;
  }

  pendingActions(): SimActionRecord[] {
    return this.actions.filter((a) => a.status === 'pending');
  }

  // -------------------------------------------------------------------------------------
  // CallUiPort (what the app calls)
  // -------------------------------------------------------------------------------------

  setDelegate(delegate: CallUiDelegate): void {
    this.delegate = delegate;
  }

  reportIncoming(uuid: string, details: CallDetails): ReportIncomingResult {
    const u = norm(uuid);
    this.reportAttempts++;
    const refuse = (error: ReportIncomingError): ReportIncomingResult => {
      this.note('reportNewIncomingCall refused', u, error);
      return { ok: false, error };
    };
    if (!this.entitled) return refuse('unentitled');
    const live = this.call(u);
    if (live && live.state !== 'ended') return refuse('callUUIDAlreadyExists');
    if (this.doNotDisturb) return refuse('filteredByDoNotDisturb');
    if (this.blockedHandles.has(details.handle)) return refuse('filteredByBlockList');
    this.addCall(u, 'incoming', 'ringing', details);
    this.note('reportNewIncomingCall', u, details.displayName);
    return { ok: true };
  }

  updateCallDetails(uuid: string, details: CallDetails): void {
    const c = this.call(uuid);
    if (!c || c.state === 'ended') {
      this.note('reportCall(updated:) ignored (no live call)', norm(uuid));
      return;
    }
    c.details = details;
    this.note('reportCall(updated:)', c.uuid, details.displayName);
  }

  reportOutgoingConnecting(uuid: string): void {
    const c = this.call(uuid);
    if (!c || c.direction !== 'outgoing' || c.state === 'ended') {
      this.violation(`reportOutgoingConnecting for ${uuid}, which is not a live outgoing call`);
      return;
    }
    if (c.state === 'starting') c.state = 'connecting';
    this.note('reportOutgoingCall(startedConnectingAt:)', c.uuid);
  }

  reportOutgoingConnected(uuid: string): void {
    const c = this.call(uuid);
    if (!c || c.direction !== 'outgoing' || c.state === 'ended') {
      this.violation(`reportOutgoingConnected for ${uuid}, which is not a live outgoing call`);
      return;
    }
    c.state = 'connected';
    c.answeredAt = this.clock.now();
    this.note('reportOutgoingCall(connectedAt:)', c.uuid);
  }

  reportEnded(uuid: string, reason: EndReason): void {
    const c = this.call(uuid);
    if (!c) {
      this.violation(`reportEnded(${reason}) for ${uuid}, which was never reported`);
      return;
    }
    if (c.state === 'ended') {
      this.violation(`reportEnded(${reason}) for ${c.uuid}, already ended (${c.endedBy}/${c.endReason})`);
      return;
    }
    this.endCall(c, 'reportEnded', reason);
    this.note('reportCall(endedAt:reason:)', c.uuid, reason);
  }

  requestStart(uuid: string, handle: string, video: boolean): void {
    this.startOutgoing(norm(uuid), handle, video);
  }

  requestAnswer(uuid: string): void {
    this.userAnswers(uuid);
  }

  requestEnd(uuid: string): void {
    this.userEnds(uuid);
  }

  requestHold(uuid: string, onHold: boolean): void {
    if (onHold) this.userHolds(uuid);
    else this.userUnholds(uuid);
  }

  requestMute(uuid: string, muted: boolean): void {
    this.userMutes(uuid, muted);
  }

  // -------------------------------------------------------------------------------------
  // The user (and the system) acting
  // -------------------------------------------------------------------------------------

  /**
   * The user taps Answer. With another connected call, iOS offers "Hold & Accept" or
   * "End & Accept": the other calls get a hold (or end) action first.
   */
  userAnswers(uuid: string, options: { others?: 'hold' | 'end' } = {}): void {
    const c = this.call(uuid);
    if (!c || c.state !== 'ringing' || c.answerFailed) {
      this.note('answer tap ignored (not ringing)', norm(uuid));
      return;
    }
    for (const other of this.liveCalls()) {
      if (other === c || other.state !== 'connected' || other.held) continue;
      if (options.others === 'end') this.userEnds(other.uuid);
      else this.userHolds(other.uuid);
    }
    this.deliver<AnswerAction>('answer', c.uuid, {}, (d, a) => d.onAnswer(a));
  }

  /** Decline while ringing. */
  userDeclines(uuid: string): void {
    this.userEnds(uuid);
  }

  /** Hang up / decline. */
  userEnds(uuid: string): void {
    const c = this.call(uuid);
    if (!c || c.state === 'ended') {
      this.note('end tap ignored (no live call)', norm(uuid));
      return;
    }
    this.deliver<EndAction>('end', c.uuid, {}, (d, a) => d.onEnd(a));
  }

  userHolds(uuid: string): void {
    this.setHeld(uuid, true);
  }

  userUnholds(uuid: string): void {
    this.setHeld(uuid, false);
  }

  userMutes(uuid: string, muted = true): void {
    const c = this.call(uuid);
    if (!c || c.state === 'ended') return;
    this.deliver<SetMutedAction>('setMuted', c.uuid, { muted }, (d, a) => d.onSetMuted(a));
  }

  /** The user starts a call from Recents / Contacts / Siri; returns its UUID. */
  userStartsCall(handle: string, options: { video?: boolean } = {}): string {
    const uuid = norm(this.newUuid());
    this.startOutgoing(uuid, handle, options.video ?? false);
    return uuid;
  }

  /** Another app (a cellular call) takes the audio session. */
  interruptAudio(): void {
    this.cancelAudioTimer();
    if (this.audioActive) this.setAudio(false);
  }

  /** The interruption ended: the session comes back if a call is connected. */
  endAudioInterruption(): void {
    if (!this.audioActive && this.liveCalls().some((c) => c.state === 'connected' && !c.held)) this.scheduleAudio(true);
  }

  /** The system resets the provider (providerDidReset): every call is gone. */
  resetProvider(): void {
    for (const c of this.liveCalls()) this.endCall(c, 'reset', 'failed');
    this.note('providerDidReset');
    this.delegate?.onReset();
    if (this.audioActive) this.setAudio(false);
  }

  /** The test says: the server has ended this call now (CANCEL sent, answered elsewhere...). */
  serverEnded(uuid: string): void {
    const c = this.call(uuid);
    if (!c || c.serverEndedAt !== undefined) return;
    c.serverEndedAt = this.clock.now();
    c.ringingWhenServerEnded = c.state === 'ringing';
  }

  // -------------------------------------------------------------------------------------
  // Internals
  // -------------------------------------------------------------------------------------

  private setHeld(uuid: string, onHold: boolean): void {
    const c = this.call(uuid);
    if (!c || c.state === 'ended') return;
    this.deliver<SetHeldAction>('setHeld', c.uuid, { onHold }, (d, a) => d.onSetHeld(a));
  }

  private startOutgoing(uuid: string, handle: string, video: boolean): void {
    const live = this.call(uuid);
    if (live && live.state !== 'ended') {
      this.violation(`start requested with the UUID of live call ${uuid}`);
      return;
    }
    this.addCall(uuid, 'outgoing', 'starting', { handle, handleType: 'generic', displayName: handle, video });
    this.deliver<StartAction>('start', uuid, { handle, video }, (d, a) => d.onStart(a));
  }

  private deliver<A extends Action>(
    kind: A['kind'],
    uuid: string,
    extra: Record<string, unknown>,
    send: (d: CallUiDelegate, a: A) => void,
  ): void {
    const rec: SimActionRecord = {
      seq: this.sequence(),
      kind,
      uuid,
      createdAt: this.clock.now(),
      status: 'pending',
      completedAt: undefined,
      completedSeq: undefined,
    };
    this.actions.push(rec);
    let timer: TimerHandle | undefined;
    const complete = (status: 'fulfilled' | 'failed'): void => {
      if (rec.status !== 'pending') {
        this.violation(`${kind} action for ${uuid} completed (${status}) after it was ${rec.status}`);
        return;
      }
      timer?.cancel();
      rec.status = status;
      rec.completedAt = this.clock.now();
      rec.completedSeq = this.sequence();
      this.note(`${kind} action ${status}`, uuid);
      this.onActionCompleted(rec, status, extra);
    };
    const action = { kind, uuid, ...extra, fulfill: () => complete('fulfilled'), fail: () => complete('failed') } as unknown as A;
    if (this.actionTimeoutMs !== undefined) {
      timer = this.clock.setTimeout(() => {
        if (rec.status !== 'pending') return;
        rec.status = 'timedOut';
        rec.completedAt = this.clock.now();
        this.note(`${kind} action timed out`, uuid);
        this.onActionTimedOut(rec);
        this.delegate?.onActionTimedOut(action);
      }, this.actionTimeoutMs);
    }
    this.note(`${kind} action delivered`, uuid);
    if (!this.delegate) {
      this.note('no delegate: action dropped', uuid);
      return;
    }
    send(this.delegate, action);
  }

  private onActionCompleted(rec: SimActionRecord, status: 'fulfilled' | 'failed', extra: Record<string, unknown>): void {
    const c = this.call(rec.uuid);
    if (!c) return;
    switch (rec.kind) {
      case 'answer':
        if (status === 'failed') {
          if (c.state === 'ringing') c.answerFailed = true;
          return;
        }
        if (c.state !== 'ringing') {
          this.violation(`answer fulfilled for ${c.uuid} in state ${c.state}`);
          return;
        }
        c.state = 'connected';
        c.answeredAt = this.clock.now();
        if (!this.audioActive) this.scheduleAudio(true);
        return;
      case 'end':
        if (status === 'fulfilled' && c.state !== 'ended') this.endCall(c, 'endAction', 'local');
        return;
      case 'start':
        if (status === 'failed') {
          if (c.state !== 'ended') this.endCall(c, 'startFailed', 'failed');
          return;
        }
        if (c.state === 'starting') c.state = 'connecting';
        if (!this.audioActive) this.scheduleAudio(true);
        return;
      case 'setHeld':
        if (status !== 'fulfilled') return;
        c.held = extra.onHold === true;
        if (!c.held && (this.activateOnUnhold === 'always' || !this.audioActive)) this.scheduleAudio(true);
        return;
      case 'setMuted':
        if (status === 'fulfilled') c.muted = extra.muted === true;
        return;
    }
  }

  /** Hook for subclasses (iOS ends the call in the UI? no — it only records). */
  protected onActionTimedOut(rec: SimActionRecord): void {
    if (rec.kind === 'answer') {
      const c = this.call(rec.uuid);
      if (c && c.state === 'ringing') c.answerFailed = true;
    }
  }

  private endCall(c: SimCall, by: SimEndedBy, reason: EndReason | 'local'): void {
    c.state = 'ended';
    c.endedAt = this.clock.now();
    c.endedBy = by;
    c.endReason = reason;
    if (this.audioActive && !this.liveCalls().some((x) => x.state === 'connected' || x.state === 'connecting')) {
      this.scheduleAudio(false);
    }
  }

  private scheduleAudio(active: boolean): void {
    this.cancelAudioTimer();
    this.audioTimer = this.clock.setTimeout(() => {
      this.audioTimer = undefined;
      if (active) {
        // Still a reason to activate? (the call may have ended meanwhile)
        if (!this.liveCalls().some((c) => c.state === 'connected' || c.state === 'connecting')) return;
        this.setAudio(true, true);
      } else if (this.audioActive && !this.liveCalls().some((c) => c.state === 'connected' || c.state === 'connecting')) {
        this.setAudio(false);
      }
    }, this.audioDelayMs);
  }

  private cancelAudioTimer(): void {
    this.audioTimer?.cancel();
    this.audioTimer = undefined;
  }

  private setAudio(active: boolean, force = false): void {
    if (active === this.audioActive && !force) return;
    this.audioActive = active;
    this.audioHistory.push({ seq: this.sequence(), at: this.clock.now(), active });
    this.note(active ? 'didActivate audioSession' : 'didDeactivate audioSession');
    if (active) this.delegate?.onAudioSessionActivated();
    else this.delegate?.onAudioSessionDeactivated();
  }

  protected violation(text: string): void {
    this.violations.push(text);
    this.note('VIOLATION', undefined, text);
  }

  protected note(what: string, uuid?: string, detail?: string): void {
    this.log.push({
      seq: this.sequence(),
      at: this.clock.now(),
      what,
      ...(uuid !== undefined ? { uuid } : {}),
      ...(detail !== undefined ? { detail } : {}),
    });
  }
}
