/**
 * Every call leaves a timeline: INVITE in, each push (provider, outcome, latency), the
 * device's REGISTER, INVITE out, responses, CANCEL/BYE, the end. Kept in memory for a
 * while (bounded count and age) and served by the admin API.
 */

import { type Clock, detachString } from '@pushcall/sip';

export type TimelineEventKind =
  | 'invite-in'
  | 'message-in'
  | 'trying'
  | 'branch-live'
  | 'push-sent'
  | 'push-accepted'
  | 'push-failed'
  | 'push-deduplicated'
  | 'ringing'
  | 'device-registered'
  | 'request-out'
  | 'flow-failover'
  | 'response-in'
  | 'response-out'
  | 'cancel-in'
  | 'cancel-out'
  | 'wake-timeout'
  | 'ring-timeout'
  | 'next-group'
  | 'redirect'
  | 'alert-push'
  | 'kept-offline'
  | 'ack'
  | 'bye'
  | 'ended';

export interface TimelineEvent {
  /** ms since the epoch. */
  at: number;
  /** ms since the call started. */
  offsetMs: number;
  kind: TimelineEventKind;
  branch?: string;
  detail?: Record<string, unknown>;
}

export interface CallTimeline {
  /** Monotonic ms at the start, for sub-millisecond offsets. */
  readonly startedMono: number;
  callId: string;
  method: string;
  from: string;
  to: string;
  startedAt: number;
  endedAt?: number;
  outcome?: string;
  finalStatus?: number;
  events: TimelineEvent[];
}

export class CallTimelines {
  private readonly calls = new Map<string, CallTimeline>();
  // Keys oldest first, consumed from `head`: trimming the oldest entries of a Map by iterating
  // it walks every deleted slot again until V8 rehashes, which grew with each trimmed call.
  private order: string[] = [];
  private head = 0;

  constructor(
    private readonly clock: Clock,
    private readonly maxCalls: number,
    private readonly retentionMs: number,
  ) {}

  /** `receivedAt`: monotonic ms when the request arrived (defaults to now). */
  start(callId: string, method: string, from: string, to: string, receivedAt = this.clock.monotonic()): CallTimeline {
    // Kept for an hour: copies that do not hold the whole INVITE text alive (see detachString).
    const key = detachString(this.keyFor(callId));
    const timeline: CallTimeline = { startedMono: receivedAt, callId: key === callId ? key : detachString(callId), method, from: detachString(from), to: detachString(to), startedAt: this.clock.now(), events: [] };
    this.calls.set(key, timeline);
    this.order.push(key);
    this.trim();
    return timeline;
  }

  /** A second INVITE with the same Call-ID (forked to us twice) gets its own timeline key. */
  private keyFor(callId: string): string {
    if (!this.calls.has(callId)) return callId;
    let i = 2;
    while (this.calls.has(`${callId}#${i}`)) i++;
    return `${callId}#${i}`;
  }

  record(timeline: CallTimeline, kind: TimelineEventKind, detail?: Record<string, unknown>, branch?: string): void {
    const at = this.clock.now();
    // Offsets from the monotonic clock: sub-millisecond, immune to wall-clock steps.
    const offsetMs = Math.round((this.clock.monotonic() - timeline.startedMono) * 1000) / 1000;
    const event: TimelineEvent = { at, offsetMs, kind };
    if (branch !== undefined) event.branch = branch;
    if (detail !== undefined) event.detail = detail;
    timeline.events.push(event);
  }

  end(timeline: CallTimeline, outcome: string, finalStatus: number | undefined): void {
    if (timeline.endedAt !== undefined) return;
    timeline.endedAt = this.clock.now();
    timeline.outcome = outcome;
    timeline.finalStatus = finalStatus;
    this.record(timeline, 'ended', { outcome, status: finalStatus });
  }

  get(callId: string): CallTimeline | undefined {
    return this.calls.get(callId);
  }

  list(limit = 100): CallTimeline[] {
    return [...this.calls.values()].slice(-limit).reverse();
  }

  private trim(): void {
    const cutoff = this.clock.now() - this.retentionMs;
    while (this.head < this.order.length) {
      // Keys are unique among the timelines kept (keyFor), and leave `calls` only here, from
      // the head: the key at the head is always still there.
      const key = this.order[this.head];
      const timeline = this.calls.get(key)!;
      if (this.calls.size <= this.maxCalls && (timeline.endedAt === undefined || timeline.endedAt >= cutoff)) break;
      this.calls.delete(key);
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
  }
}
