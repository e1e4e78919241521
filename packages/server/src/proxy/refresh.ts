/**
 * Refresh pushes (RFC 8599 §5.5): a push binding about to expire gets a push that makes the
 * app send a binding-refresh REGISTER, `leadSeconds` before expiry (the RFC recommends at
 * least 120 s). While no REGISTER comes, the push is repeated every `retryIntervalSeconds`,
 * up to `retries` times: one lost push would otherwise unregister the device (OpenSIPS #2873).
 * A UA that advertised `+sip.pnsreg` was told to refresh `pnsregSeconds` (> lead) before
 * expiry, so it is pushed only when that refresh did not come (the MAY of §5.5).
 *
 * One clock timer serves every binding: due bindings sit in 100 ms buckets, and a min-heap
 * of bucket slots arms the timer for the earliest. A REGISTER moves its binding to
 * a new bucket. Whether to push is decided when the bucket comes due, from the store, so a
 * binding that expired or was removed is never pushed again (§5.5 MUST NOT).
 *
 * Only bindings this node owns are refreshed (with a shared store, each node pushes its own,
 * and one node those of the nodes that are gone: `adopt`), and only those with a token that
 * may receive a silent push: FCM, Web Push and webhook tokens, and for APNs the alert
 * ("remote") token. A PushKit token cannot be used: iOS
 * requires every VoIP push to report a call.
 */

import type { Clock, TimerHandle } from '@pushcall/sip';
import type { Binding, BindingStore } from '../location/types.js';
import type { Logger } from '../observability/logger.js';
import type { ServerMetrics } from '../observability/metrics.js';
import { buildRefreshPayload } from '../push/payload.js';
import { type PushOutcome, deliveredInOtherEnvironment } from '../push/types.js';
import { removeIfTokenUnchanged } from '../location/push-followups.js';
import { type Pusher, canTakeAlertPush, toPushBinding } from './call.js';

export interface RefreshSettings {
  leadSeconds: number;
  retries: number;
  retryIntervalSeconds: number;
}

export interface BindingRefresherOptions extends RefreshSettings {
  store: BindingStore;
  clock: Clock;
  logger: Logger;
  metrics: ServerMetrics;
  nodeId: string;
  /** The push gateway, once attached. */
  pusher: () => Pusher | undefined;
}

/** Node timers overflow past 2^31 ms; a binding may live a week, so wake up at least daily. */
const MAX_TIMER_MS = 24 * 3600 * 1000;
/** Bucket width: fine enough for lifetimes of seconds in tests, coarse enough to share buckets. */
const SLOT_MS = 100;
/**
 * Refresh pushes in flight at once. Many can fall due together (a fleet that registered in the
 * same minute, or every overdue binding after a restart); they go out at this pace instead of
 * all at once.
 */
const MAX_IN_FLIGHT = 200;

export class BindingRefresher {
  /** Due slot -> binding ids. An emptied bucket stays until its slot, so every heap entry has one. */
  private readonly buckets = new Map<number, Set<string>>();
  /** Binding id -> its slot and attempt, packed in one number (slot * 16 + attempt): no object per binding. */
  private readonly scheduled = new Map<string, number>();
  private readonly slots = new MinHeap();
  private timer: TimerHandle | undefined;
  private armedFor = Infinity;
  private closed = false;
  /** Due and waiting until fewer than MAX_IN_FLIGHT pushes are under way: [binding id, attempt]. */
  private readonly ready: Array<[string, number]> = [];
  private readyHead = 0;
  private inFlight = 0;
  /** Gone nodes whose bindings this node refreshes (multi-node). */
  private readonly adopted = new Set<string>();

  constructor(private readonly options: BindingRefresherOptions) {}

  /** Bindings with a refresh push scheduled (or due and waiting their turn). */
  get size(): number {
    return this.scheduled.size + this.ready.length - this.readyHead;
  }

  /** Schedule every binding already in the store (after a restart). */
  async start(): Promise<void> {
    const { store, nodeId } = this.options;
    // A shared store: this node's bindings only, not the whole cluster's.
    for (const binding of store.forNode ? await store.forNode(nodeId) : await store.all()) this.track(binding);
  }

  /**
   * Multi-node: refresh the bindings registered through `nodeId`, a node that is gone, as if
   * they were this node's. Returns how many were scheduled.
   */
  async adopt(nodeId: string): Promise<number> {
    const { store } = this.options;
    if (this.closed || !store.forNode) return 0;
    this.adopted.add(nodeId);
    let count = 0;
    for (const binding of await store.forNode(nodeId)) {
      if (!this.adopted.has(nodeId)) break; // released meanwhile
      this.track(binding);
      if (this.scheduled.has(binding.id)) count++;
    }
    return count;
  }

  /** The node is back (or another adopts it): its bindings are dropped as they come due. */
  release(nodeId: string): void {
    this.adopted.delete(nodeId);
  }

  /** A binding was registered or refreshed: (re)schedule its refresh push. */
  track(binding: Binding): void {
    if (this.closed) return;
    if (!this.eligible(binding)) {
      this.untrack(binding.id);
      return;
    }
    this.place(binding.id, binding.expiresAt - this.options.leadSeconds * 1000, 0);
  }

  untrack(id: string): void {
    const entry = this.scheduled.get(id);
    if (entry === undefined) return;
    this.scheduled.delete(id);
    this.buckets.get(Math.floor(entry / 16))?.delete(id);
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  private eligible(binding: Binding): boolean {
    const node = binding.flow.nodeId;
    return binding.push !== undefined && canTakeAlertPush(binding.push) && (node === this.options.nodeId || this.adopted.has(node));
  }

  private place(id: string, dueAtMs: number, attempt: number): void {
    this.untrack(id);
    const slot = Math.ceil(dueAtMs / SLOT_MS);
    let bucket = this.buckets.get(slot);
    if (!bucket) {
      bucket = new Set();
      this.buckets.set(slot, bucket);
      this.slots.push(slot);
    }
    bucket.add(id);
    this.scheduled.set(id, slot * 16 + attempt);
    if (slot < this.armedFor) this.arm();
  }

  private arm(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.armedFor = Infinity;
    const next = this.slots.peek();
    if (next === undefined || this.closed) return;
    this.armedFor = next;
    const delay = Math.min(Math.max(0, next * SLOT_MS - this.options.clock.now()), MAX_TIMER_MS);
    this.timer = this.options.clock.setTimeout(() => this.fire(), delay);
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const nowSlot = Math.floor(this.options.clock.now() / SLOT_MS);
    while (this.slots.size > 0 && this.slots.peek()! <= nowSlot) {
      const slot = this.slots.pop()!;
      const bucket = this.buckets.get(slot);
      this.buckets.delete(slot);
      if (!bucket) continue;
      for (const id of bucket) {
        this.ready.push([id, (this.scheduled.get(id) ?? 0) % 16]);
        this.scheduled.delete(id);
      }
    }
    this.pump();
    this.arm();
  }

  /** Start due refreshes while fewer than MAX_IN_FLIGHT are under way. */
  private pump(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.readyHead < this.ready.length && !this.closed) {
      const [id, attempt] = this.ready[this.readyHead++];
      this.inFlight++;
      this.refresh(id, attempt)
        .catch((error: unknown) => this.options.logger.error({ err: error, binding: id }, 'refresh push failed'))
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
    if (this.readyHead === this.ready.length) {
      this.ready.length = 0;
      this.readyHead = 0;
    }
  }

  private async refresh(id: string, attempt: number): Promise<void> {
    // Re-registered while it waited its turn: the new schedule supersedes this one.
    if (this.scheduled.has(id)) return;
    const { store, clock, logger, metrics } = this.options;
    const binding = await store.get(id);
    const now = clock.now();
    // §5.5: a binding that expired or was removed gets no further push to its PRID.
    if (!binding || binding.expiresAt <= now || !this.eligible(binding)) return;
    // Refreshed since it was scheduled (e.g. through another node): wait for the new time.
    const dueAt = binding.expiresAt - this.options.leadSeconds * 1000;
    if (attempt === 0 && dueAt > now + 1000) {
      this.place(id, dueAt, 0);
      return;
    }
    const pusher = this.options.pusher();
    const target = toPushBinding(binding, 'alert');
    if (!pusher || !target) return;
    const payload = buildRefreshPayload({ to: binding.aor, ttl: (binding.expiresAt - now) / 1000 }, clock);
    let outcome: PushOutcome;
    try {
      outcome = await pusher.sendRefresh(target, payload, { deadlineMs: 5000 });
    } catch (error) {
      outcome = { ok: false, provider: target.provider, error: 'PUSH_UNAVAILABLE', reason: (error as Error).message, removeBinding: false, latencyMs: 0 };
    }
    // Delivered through the other APNs environment: it went out (the call path learns the fix).
    const delivered = outcome.ok || deliveredInOtherEnvironment(outcome);
    metrics.refreshPushes.inc({ provider: target.provider, outcome: outcome.ok ? 'ok' : outcome.error });
    logger.debug({ aor: binding.aor, binding: id, provider: target.provider, attempt, ok: delivered, error: outcome.ok ? undefined : outcome.error }, 'refresh push');
    if (!outcome.ok && outcome.removeBinding) {
      if (await removeIfTokenUnchanged(store, binding)) logger.info({ aor: binding.aor, binding: id, reason: outcome.reason }, 'binding removed after refresh push failure');
      return;
    }
    // A REGISTER that came while the push was in flight has rescheduled the binding.
    if (this.scheduled.has(id) || this.closed) return;
    const retryAt = clock.now() + this.options.retryIntervalSeconds * 1000;
    if (attempt + 1 > this.options.retries || retryAt >= binding.expiresAt) return;
    this.place(id, retryAt, attempt + 1);
  }
}

/** A binary min-heap of numbers. */
class MinHeap {
  private readonly items: number[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): number | undefined {
    return this.items[0];
  }

  push(value: number): void {
    const items = this.items;
    let i = items.push(value) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent] <= value) break;
      items[i] = items[parent];
      i = parent;
    }
    items[i] = value;
  }

  pop(): number | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && items[right] < items[left] ? right : left;
      if (items[child] >= last) break;
      items[i] = items[child];
      i = child;
    }
    items[i] = last;
    return top;
  }
}
