/**
 * The per-call state machine of the CallCoordinator: states, the allow-list of edges, and
 * the single guarded transition function. Every state change of a call goes through
 * `checkTransition`; an edge not listed here is a bug.
 *
 * ```
 *                      push (reported)                INVITE (reported)
 *                 ┌──────────────────── idle ───────────────────────┐
 *                 │                      │ │ start action            │
 *                 v                      │ └──────────┐              v
 *   ┌────────  pushed ──── INVITE ───────┼────────────┼─────────> ringing ──────┐
 *   │             │  (update details)    │            │              │          │
 *   │             │ answer action        │            v              │ answer   │
 *   │             v (held, not fulfilled)│         dialing           │ action   │
 *   │       answerPending ── INVITE ─────┼──┐         │              v          │
 *   │             │        (SIP answer)  │  └──────> answering <─────┘          │
 *   │             │                      │            │ 200 OK sent             │
 *   │             │                      │            │ (fulfil answer)         │
 *   │             │                      │            v                         │
 *   │             │                      │         active <── 2xx (dialing)     │
 *   │             │                      │            │                         │
 *   v             v                      v            v                         v
 *  ─┴─────────────┴───────────────────── ended ───────┴─────────────────────────┴─
 *    no INVITE in time (failed) · registration failed (failed) · decline (603 later)
 *    CANCEL + Reason (answeredElsewhere / declinedElsewhere / remoteEnded) · BYE
 *    elsewhere pushes · DND/block (486, never shown) · expired/malformed push (failed)
 * ```
 *
 * `ended` is terminal. A record stays in `ended` for a while (a tombstone) so that a late
 * INVITE is rejected with the right code (603 after a decline, 486 after do-not-disturb,
 * 480 otherwise) and a late duplicate push is reported and ended at once.
 */
import { IllegalTransitionError } from './errors.js';

export type CallState =
  /** Record created; nothing shown yet. Left within the same event. */
  | 'idle'
  /** Incoming, reported from a push; waiting for the INVITE (no-INVITE timer running). */
  | 'pushed'
  /** Incoming, the user answered before the INVITE; the answer action is held. */
  | 'answerPending'
  /** Incoming, INVITE received and shown; waiting for the user. */
  | 'ringing'
  /** Incoming, SIP answer requested; the answer action is held until the 200 OK is sent. */
  | 'answering'
  /** Outgoing, INVITE sent; reported as connecting. */
  | 'dialing'
  /** Connected (held and muted are flags on the call). */
  | 'active'
  /** Terminal. */
  | 'ended';

export const CALL_STATES: readonly CallState[] = ['idle', 'pushed', 'answerPending', 'ringing', 'answering', 'dialing', 'active', 'ended'];

/** The allow-list: from → the states it may move to. */
export const TRANSITIONS: Readonly<Record<CallState, readonly CallState[]>> = {
  idle: ['pushed', 'ringing', 'dialing', 'ended'],
  pushed: ['ringing', 'answerPending', 'ended'],
  answerPending: ['answering', 'ended'],
  ringing: ['answering', 'ended'],
  answering: ['active', 'ended'],
  dialing: ['active', 'ended'],
  active: ['ended'],
  ended: [],
};

/** States in which the call is live (not ended, and past creation). */
export function isLive(state: CallState): boolean {
  return state !== 'ended' && state !== 'idle';
}

/** States in which the call is incoming and not yet connected (the phone rings). */
export function isRinging(state: CallState): boolean {
  return state === 'pushed' || state === 'answerPending' || state === 'ringing' || state === 'answering';
}

export function canTransition(from: CallState, to: CallState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Throws IllegalTransitionError when the edge is not allowed. */
export function checkTransition(uuid: string, from: CallState, to: CallState, cause: string): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(uuid, from, to, cause);
}
