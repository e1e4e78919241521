/**
 * A scriptable SipPort for tests only. It records what the coordinator asked of the SIP
 * user agent and lets a test play the network: INVITEs, CANCELs with Reason headers, BYEs,
 * registration outcomes, and the moment the 200 OK to an answered INVITE goes out.
 *
 * It also checks the UA-side rules a real stack would enforce (answer/reject only an INVITE
 * that exists and has no final response yet) and records violations.
 */
import { parseReasonHeader } from '../../src/reason.js';
import type {
  IncomingInvite,
  PushContactParams,
  RegistrationState,
  SipDelegate,
  SipPort,
} from '../../src/ports.js';

export type FakeSipOp =
  | { op: 'register'; params: PushContactParams | undefined }
  | { op: 'unregister' }
  | { op: 'answer'; callId: string }
  | { op: '200 sent'; callId: string }
  | { op: 'reject'; callId: string; code: number }
  | { op: 'hangup'; callId: string }
  | { op: 'invite'; callId: string; target: string }
  | { op: 'hold'; callId: string; onHold: boolean }
  | { op: 'mute'; callId: string; muted: boolean }
  | { op: 'audio'; enabled: boolean };

export type FakeSipLogEntry = FakeSipOp & { seq: number };

type InviteState = 'pending' | 'answering' | 'answered' | 'rejected' | 'cancelled' | 'ended';

export interface FakeSipPortOptions {
  /** Shared ordering counter (the simulated platform's). */
  readonly sequence?: () => number;
  /** Send the 200 OK as soon as `answer` is called (synchronously). Default false. */
  readonly autoAnswer?: boolean;
  /** Consulted on setAudioEnabled(true); a false answer is recorded as a violation. */
  readonly audioAllowed?: () => boolean;
}

export class FakeSipPort implements SipPort {
  delegate: SipDelegate | undefined;
  readonly log: FakeSipLogEntry[] = [];
  readonly violations: string[] = [];
  /** Incoming INVITEs by Call-ID and their UAS state. */
  readonly invites = new Map<string, InviteState>();
  /** Outgoing calls by Call-ID. */
  readonly outgoing = new Map<string, 'calling' | 'established' | 'ended'>();
  /** Final codes sent for incoming INVITEs. */
  readonly finalResponses = new Map<string, number>();
  audioEnabled = false;
  autoAnswer: boolean;
  private readonly sequence: () => number;
  private readonly audioAllowed: (() => boolean) | undefined;
  private callCounter = 0;

  constructor(options: FakeSipPortOptions = {}) {
    let n = 0;
    this.sequence = options.sequence ?? (() => ++n);
    this.autoAnswer = options.autoAnswer ?? false;
    this.audioAllowed = options.audioAllowed;
  }

  private record(op: FakeSipOp): void {
    this.log.push({ ...op, seq: this.sequence() });
  }

  ops<K extends FakeSipOp['op']>(op: K): Extract<FakeSipLogEntry, { op: K }>[] {
    return this.log.filter((e) => e.op === op) as Extract<FakeSipLogEntry, { op: K }>[];
  }

  /** Sequence number at which the 200 OK for `callId` was sent, if it was. */
  answerSentSeq(callId: string): number | undefined {
    return this.ops('200 sent').find((e) => e.callId === callId)?.seq;
  }

  // --- SipPort ---------------------------------------------------------------------------

  setDelegate(delegate: SipDelegate): void {
    this.delegate = delegate;
  }

  register(params: PushContactParams | undefined): void {
    this.record({ op: 'register', params });
  }

  unregister(): void {
    this.record({ op: 'unregister' });
  }

  answer(callId: string): void {
    this.record({ op: 'answer', callId });
    const st = this.invites.get(callId);
    if (st !== 'pending') {
      this.violations.push(`answer(${callId}) in UAS state ${st ?? 'unknown'}`);
      return;
    }
    this.invites.set(callId, 'answering');
    if (this.autoAnswer) this.completeAnswer(callId);
  }

  reject(callId: string, code: number): void {
    this.record({ op: 'reject', callId, code });
    const st = this.invites.get(callId);
    if (st !== 'pending') {
      // Rejecting an INVITE that already has a final response is a no-op in a real UA.
      return;
    }
    this.invites.set(callId, 'rejected');
    this.finalResponses.set(callId, code);
  }

  hangup(callId: string): void {
    this.record({ op: 'hangup', callId });
    if (this.invites.has(callId)) this.invites.set(callId, 'ended');
    if (this.outgoing.has(callId)) this.outgoing.set(callId, 'ended');
  }

  invite(target: string): { callId: string } {
    const callId = `out-${++this.callCounter}@fake`;
    this.outgoing.set(callId, 'calling');
    this.record({ op: 'invite', callId, target });
    return { callId };
  }

  hold(callId: string, onHold: boolean): void {
    this.record({ op: 'hold', callId, onHold });
  }

  mute(callId: string, muted: boolean): void {
    this.record({ op: 'mute', callId, muted });
  }

  setAudioEnabled(enabled: boolean): void {
    this.record({ op: 'audio', enabled });
    if (enabled && this.audioAllowed && !this.audioAllowed()) {
      this.violations.push('audio enabled while the system audio session is not active');
    }
    this.audioEnabled = enabled;
  }

  // --- the network -----------------------------------------------------------------------

  /** An INVITE arrives. A retransmission of a known Call-ID is absorbed like a real UA would... */
  receiveInvite(invite: Partial<IncomingInvite> & { callId: string }, options: { duplicate?: boolean } = {}): void {
    const known = this.invites.has(invite.callId);
    if (known && !options.duplicate) return;
    if (!known) this.invites.set(invite.callId, 'pending');
    this.delegate?.onInvite({ fromUri: 'sip:alice@example.com', video: false, ...invite });
  }

  /** CANCEL for a pending INVITE (ignored, as in SIP, once a final response was sent). */
  receiveCancel(callId: string, reason?: string | string[]): boolean {
    const st = this.invites.get(callId);
    if (st !== 'pending' && st !== 'answering') return false;
    this.invites.set(callId, 'cancelled');
    this.finalResponses.set(callId, 487);
    this.delegate?.onCancel(callId, parseReasonHeader(reason));
    return true;
  }

  /** BYE for an established dialog. */
  receiveBye(callId: string): boolean {
    if (this.invites.get(callId) === 'answered') {
      this.invites.set(callId, 'ended');
      this.delegate?.onBye(callId);
      return true;
    }
    if (this.outgoing.get(callId) === 'established') {
      this.outgoing.set(callId, 'ended');
      this.delegate?.onBye(callId);
      return true;
    }
    return false;
  }

  /** The 200 OK for an INVITE being answered goes out. */
  completeAnswer(callId: string): boolean {
    if (this.invites.get(callId) !== 'answering') return false;
    this.invites.set(callId, 'answered');
    this.finalResponses.set(callId, 200);
    this.record({ op: '200 sent', callId });
    this.delegate?.onCallState(callId, { state: 'answered' });
    return true;
  }

  /** Complete every pending answer. */
  completeAnswers(): void {
    for (const [callId, st] of this.invites) if (st === 'answering') this.completeAnswer(callId);
  }

  failAnswer(callId: string, code = 500): boolean {
    if (this.invites.get(callId) !== 'answering') return false;
    this.invites.set(callId, 'ended');
    this.delegate?.onCallState(callId, { state: 'failed', code });
    return true;
  }

  remoteRinging(callId: string): void {
    this.delegate?.onCallState(callId, { state: 'progress', code: 180 });
  }

  remoteAnswers(callId: string): boolean {
    if (this.outgoing.get(callId) !== 'calling') return false;
    this.outgoing.set(callId, 'established');
    this.delegate?.onCallState(callId, { state: 'established' });
    return true;
  }

  remoteRejects(callId: string, code = 486): boolean {
    if (this.outgoing.get(callId) !== 'calling') return false;
    this.outgoing.set(callId, 'ended');
    this.delegate?.onCallState(callId, { state: 'failed', code });
    return true;
  }

  registration(state: RegistrationState): void {
    this.delegate?.onRegistration(state);
  }

  lastRegisterParams(): PushContactParams | undefined {
    const regs = this.ops('register');
    return regs.length ? regs[regs.length - 1].params : undefined;
  }
}
