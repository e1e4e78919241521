/**
 * One proxied INVITE or MESSAGE and its branches (RFC 3261 §16.6–16.10, RFC 8599 §5.6.2).
 *
 * Branch lifecycle:
 *
 *   push binding:  pushing ──accepted──> waiting ──device registers──> calling ─> proceeding ─> done
 *                     │                     │ wake timeout: 480            (live branch from here)
 *                     └─push failed: 480────┴──────────────────────────────────────────────> done
 *   live binding:  calling ──1xx──> proceeding ──final──> done
 *
 * A branch cancelled while its device sleeps (caller hung up, answered or declined
 * elsewhere) keeps waiting: when the device registers it still gets the INVITE, followed at
 * once by a CANCEL carrying the RFC 3326 Reason, so the phone's CallKit call ends with the
 * right reason instead of ringing on (the "ghost call").
 */

import {
  type ClientTransaction,
  type ClientTransactionUser,
  type ContactValue,
  type Destination,
  type Flow,
  InviteClientTransaction,
  type ReasonValue,
  type ServerTransaction,
  type SipRequest,
  type SipResponse,
  NameAddr,
  SipParseError,
  SipUri,
  type TimerHandle,
  createResponse,
  newTag,
} from '@pushcall/sip';
import { setPushEnvironment } from '../location/push-followups.js';
import { redactProviderText } from '../observability/redact.js';
import type { Binding, PushRegistration } from '../location/types.js';
import type { PushPayload, RefreshPayload } from '../push/payload.js';
import { buildPayload } from '../push/payload.js';
import { type PushBinding, type PushOutcome, type SendOptions, deliveredInOtherEnvironment } from '../push/types.js';
import type { RateLimiter } from './limits.js';
import { type DeviceTarget, type ProxyCore, deviceTargets } from './proxy.js';
import { retargetToBinding } from './routing.js';
import type { CallTimeline } from './timeline.js';
import type { WakeWaiter } from './wake.js';

/** What the proxy needs from the push gateway. */
export interface Pusher {
  supportedProviders(): string[];
  sendCall(binding: PushBinding, payload: PushPayload, opts?: SendOptions): Promise<PushOutcome>;
  sendAlert(binding: PushBinding, payload: PushPayload, opts?: SendOptions): Promise<PushOutcome>;
  sendRefresh(binding: PushBinding, payload: RefreshPayload, opts?: SendOptions): Promise<PushOutcome>;
  /** RFC 8599 §5.4 `+sip.vapid`: the provider's VAPID public key, if it signs with one. */
  vapidPublicKey?(provider: string): string | undefined;
}

/** RFC 3326 Reason values sent in CANCELs. */
export const REASON_ANSWERED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"';
export const reasonDeclined = (status: number) => `SIP;cause=${status};text="${status === 600 ? 'Busy Everywhere' : 'Declined'}"`;

/** Non-INVITE transactions time out after 64*T1 = 32 s: a held non-INVITE request must be answered before. */
export const NON_INVITE_WAKE_CAP_MS = 25_000;
/** Users a call may be redirected to by 3xx responses (ProxyCall.recurse), a bound on forwarding loops and fan-out. */
const MAX_REDIRECT_TARGETS = 5;
/** A wake timeout that falls while its MESSAGE is being kept for later looks again after this. */
const KEEPING_RECHECK_MS = 50;
/** After a caller's CANCEL, wait this long for branches' 487 before answering 487 ourselves. */
const CANCEL_GRACE_MS = 2_000;

type BranchState = 'pushing' | 'waiting' | 'calling' | 'proceeding' | 'done';

interface FinalResult {
  status: number;
  reason: string;
  response?: SipResponse;
}

let branchSeq = 0;

export class Branch implements WakeWaiter {
  readonly id: string;
  binding: Binding;
  state: BranchState;
  tx: ClientTransaction | undefined = undefined;
  destination: Destination | undefined = undefined;
  final: FinalResult | undefined = undefined;
  /** undefined: not cancelled; null: plain CANCEL; string: the Reason header to send. */
  cancelReason: string | null | undefined = undefined;
  cancelSent = false;
  pushAccepted = false;
  woke = false;
  pushedAt = 0;
  wakeTimer: TimerHandle | undefined = undefined;
  readonly kind: 'live' | 'push';

  constructor(
    private readonly call: ProxyCall,
    binding: Binding,
    kind: 'live' | 'push',
    /** The device's other flows not tried yet, most recent first (RFC 5626 §5.3). */
    readonly spareFlows: Binding[] = [],
  ) {
    this.id = `b${++branchSeq}`;
    this.binding = binding;
    this.kind = kind;
    this.state = kind === 'push' ? 'pushing' : 'calling';
  }

  /** Monotonic ms when the waking REGISTER arrived. */
  registerReceivedAt: number | undefined = undefined;
  /** The binding it woke with while its MESSAGE was being kept for later (ProxyCall.keepForLater). */
  wokeWhileKeeping: Binding | undefined = undefined;
  /** Its 3xx was followed to every Contact in it (ProxyCall.recurse). */
  followed = false;

  wake(binding: Binding, registerReceivedAt?: number): void {
    this.registerReceivedAt = registerReceivedAt;
    this.call.onWake(this, binding);
  }

  get pending(): boolean {
    return this.final === undefined;
  }
}

export class ProxyCall {
  readonly proxy: ProxyCore;
  readonly request: SipRequest;
  readonly serverTx: ServerTransaction;
  readonly inbound: Flow;
  readonly aor: string;
  readonly caller: string;
  readonly timeline: CallTimeline;
  readonly branches: Branch[] = [];
  readonly isInvite: boolean;
  private readonly startedAt: number;
  private readonly localTag = newTag();
  private finalSent = false;
  private answered = false;
  /** The branch whose 2xx was forwarded. */
  private winner: Branch | undefined = undefined;
  /** The transactions that outlive the call no longer point at it (see retireWhenDone()). */
  private retired = false;
  private cancelled = false;
  private cancelledElsewhere: 'answered' | 'declined' | undefined = undefined;
  private ringingSent = false;
  /** The caller's own binding when it is a registered device on a connection (Record-Route pc-bind). */
  private callerBindingId: Promise<string | undefined> | undefined;
  private ringTimer: TimerHandle | undefined;
  private graceTimer: TimerHandle | undefined;
  /** Sequential forking (§16.6): the targets of the lower q-values, not started yet, highest first. */
  private readonly laterGroups: Array<readonly DeviceTarget[]> = [];
  /** The AORs this call was sent to: its own, and those a 3xx added (§16.5: never twice). */
  private readonly targetAors = new Set<string>();
  private groupTimer: TimerHandle | undefined;
  /** Offline messages: when a MESSAGE whose devices sleep on is answered 202 and kept. */
  private acceptTimer: TimerHandle | undefined;
  private keeping = false;

  constructor(
    proxy: ProxyCore,
    request: SipRequest,
    serverTx: ServerTransaction,
    inbound: Flow,
    aor: string,
    targets: readonly DeviceTarget[],
    caller: string,
    receivedAt = proxy.clock.monotonic(),
  ) {
    this.proxy = proxy;
    this.request = request;
    this.serverTx = serverTx;
    this.inbound = inbound;
    this.aor = aor;
    this.caller = caller;
    this.isInvite = request.method === 'INVITE';
    this.startedAt = proxy.clock.now();
    this.targetAors.add(aor);
    this.timeline = proxy.timelines.start(request.callId, request.method, request.from.uri.toString(), aor, receivedAt);
    proxy.timelines.record(this.timeline, this.isInvite ? 'invite-in' : 'message-in', {
      from: `${inbound.protocol}:${inbound.remoteAddress}:${inbound.remotePort}`,
      caller,
    });
    const groups: Array<readonly DeviceTarget[]> = this.isInvite && proxy.config.proxy.forking === 'sequential' ? groupByQ(targets) : [targets];
    this.addBranches(groups[0] ?? []);
    this.laterGroups.push(...groups.slice(1));
  }

  private addBranches(targets: readonly DeviceTarget[]): Branch[] {
    const added = targets.map(({ binding, spares }) => new Branch(this, binding, this.wantsPush(binding) ? 'push' : 'live', spares));
    this.branches.push(...added);
    return added;
  }

  /** Push when the binding has push data and no live flow we trust (RFC 8599 §5.6.2 opt. 2). */
  private wantsPush(binding: Binding): boolean {
    const pusher = this.proxy.pusher;
    if (!binding.push || !pusher || !pusher.supportedProviders().includes(binding.push.provider)) return false;
    if (this.request.method !== 'INVITE' && this.request.method !== 'MESSAGE') return false;
    return !this.proxy.isLive(binding);
  }

  /** Pushes this call may send: the later groups of a sequential search count now, not half-way. */
  get pushCount(): number {
    return this.branches.filter((b) => b.kind === 'push').length + this.laterGroups.flat().filter((t) => this.wantsPush(t.binding)).length;
  }

  /**
   * Who the rate limits count this call against: the callee's AOR, and the caller. A trusted
   * peer (the PBX) carries many callers: each calling party it asserts is limited, not the
   * PBX as one caller (60 calls a minute for a whole company is not abuse).
   */
  get limitKeys(): { callee: string; caller: string } {
    const from = this.request.from.uri;
    const caller = this.caller.startsWith('trusted:') ? `${this.caller}|${from instanceof SipUri ? from.toAor() : from.toString()}` : this.caller;
    return { callee: this.aor, caller };
  }

  /** Abuse limits, checked only for requests that would trigger pushes. */
  checkLimits(calleeLimiter: RateLimiter, callerLimiter: RateLimiter): SipResponse | undefined {
    const pushes = this.pushCount;
    if (pushes === 0) return undefined;
    const limits = this.proxy.config.limits;
    if (this.proxy.wake.countForAor(this.aor) + pushes > limits.maxHeldPerAor) return this.busy(486, 30, 'Too many held calls for this user');
    if (this.proxy.wake.size + pushes > limits.maxHeldTotal) return this.busy(503, 30, 'Too many held calls');
    const keys = this.limitKeys;
    return this.rateRefusal(calleeLimiter.take(keys.callee), callerLimiter.take(keys.caller));
  }

  /** The response for rate-limit waits (ms, 0: allowed) of the callee and the caller, if either is over. */
  rateRefusal(calleeWaitMs: number, callerWaitMs: number): SipResponse | undefined {
    if (calleeWaitMs > 0) return this.busy(486, calleeWaitMs / 1000, 'Too many calls to this user');
    if (callerWaitMs > 0) return this.busy(503, callerWaitMs / 1000, 'Too many calls from this caller');
    return undefined;
  }

  private busy(status: number, seconds: number, reason: string): SipResponse {
    return createResponse(this.request, status, { reason, headers: [['Retry-After', String(Math.max(1, Math.ceil(seconds)))]] });
  }

  /** Its final response was sent (the caller cancelled before it started, or it ended). */
  get isFinished(): boolean {
    return this.finalSent;
  }

  /** An abuse limit refused the call (checkLimits): answer, and end its timeline as `refused`. */
  refuse(response: SipResponse): void {
    const proxy = this.proxy;
    this.finalSent = true;
    this.serverTx.respond(response);
    proxy.timelines.record(this.timeline, 'response-out', { status: response.status, reason: response.reason });
    proxy.timelines.end(this.timeline, 'refused', response.status);
    proxy.metrics.countCall('refused');
  }

  start(): void {
    const cfg = this.proxy.config.proxy;
    if (this.isInvite) {
      this.ringTimer = this.proxy.clock.setTimeout(() => this.ringTimeout(), cfg.ringTimeoutSeconds * 1000);
    } else if (this.proxy.offline && cfg.offlineMessages.enabled && this.branches.some((b) => b.kind === 'push')) {
      // Armed before the wake timers, so that at equal delays it comes first.
      const delay = Math.min(cfg.offlineMessages.acceptAfterSeconds * 1000, this.wakeTimeoutMs());
      this.acceptTimer = this.proxy.clock.setTimeout(() => void this.keepForLater(), delay);
    }
    this.startBranches(this.branches);
  }

  private startBranches(branches: readonly Branch[]): void {
    if (this.laterGroups.length > 0) {
      const seconds = this.proxy.config.proxy.sequentialGroupSeconds;
      this.groupTimer = this.proxy.clock.setTimeout(() => this.groupTimeout(branches), seconds * 1000);
    }
    for (const branch of branches) {
      if (branch.kind === 'push') void this.push(branch);
      else this.sendTo(branch, branch.binding);
    }
  }

  /** §16.6: the current group rang long enough; cancel what is left of it and go on. */
  private groupTimeout(group: readonly Branch[]): void {
    if (this.finalSent || this.cancelled) return;
    for (const b of group) this.cancelBranch(b, null);
    this.checkDone();
  }

  /**
   * §16.6 sequential search: the next q-value's targets, once the current ones all failed
   * (or rang for `sequentialGroupSeconds`). Not after a 6xx (§16.7 step 5), nor once the
   * caller cancelled. True when a group was started.
   */
  private startNextGroup(): boolean {
    if (this.laterGroups.length === 0 || this.cancelled) return false;
    if (this.branches.some((b) => b.final !== undefined && b.final.status >= 600)) return false;
    this.groupTimer?.cancel();
    const group = this.laterGroups.shift()!;
    this.proxy.timelines.record(this.timeline, 'next-group', { targets: group.length, left: this.laterGroups.length });
    this.startBranches(this.addBranches(group));
    return true;
  }

  // ----- pushing and waking ------------------------------------------------------------

  private wakeTimeoutMs(): number {
    const ms = this.proxy.config.proxy.wakeTimeoutSeconds * 1000;
    return this.isInvite ? ms : Math.min(ms, NON_INVITE_WAKE_CAP_MS);
  }

  private async push(branch: Branch): Promise<void> {
    const proxy = this.proxy;
    const binding = branch.binding;
    const push = binding.push!;
    // Hold first: a device that wakes before the push request returns must not be missed.
    proxy.wake.add(branch);
    proxy.metrics.heldCalls.set(proxy.wake.size);
    branch.wakeTimer = proxy.clock.setTimeout(() => this.wakeTimeout(branch), this.wakeTimeoutMs());
    branch.pushedAt = proxy.clock.now();

    // One VoIP push per call per device (retransmissions never get here; the same call
    // forked to us twice, or to two nodes of a cluster, does). The device's registration
    // still releases this branch: the other node's push wakes it.
    const first = await proxy.claimPush(this.request.callId, binding);
    if (branch.state === 'done') return;
    if (!first) {
      branch.state = 'waiting';
      proxy.timelines.record(this.timeline, 'push-deduplicated', { provider: push.provider }, branch.id);
      return;
    }

    const payload = this.payload(this.isInvite ? 'call' : 'message');
    proxy.timelines.record(this.timeline, 'push-sent', { provider: push.provider, kind: payload.type, environment: push.environment }, branch.id);
    const target = toPushBinding(binding, this.isInvite ? 'call' : 'alert');
    let outcome: PushOutcome;
    if (!target) {
      outcome = { ok: false, provider: push.provider, error: 'PUSH_BAD_TOKEN', reason: 'No alert token for a non-call push', removeBinding: false, latencyMs: 0 };
    } else {
      try {
        outcome = this.isInvite
          ? await proxy.pusher!.sendCall(target, payload, { deadlineMs: 5000 })
          : await proxy.pusher!.sendAlert(target, payload, { deadlineMs: 5000 });
      } catch (error) {
        outcome = { ok: false, provider: push.provider, error: 'PUSH_UNAVAILABLE', reason: (error as Error).message, removeBinding: false, latencyMs: 0 };
      }
    }

    // Delivered through the other APNs environment: the push went out; fix the binding.
    if (!outcome.ok && deliveredInOtherEnvironment(outcome)) {
      const environment = outcome.actualEnvironment;
      if (environment !== undefined) {
        setPushEnvironment(proxy.store, binding, environment).catch((error: unknown) =>
          proxy.logger.error({ err: error, aor: binding.aor, binding: binding.id }, 'cannot record the APNs environment of a binding'),
        );
      }
      outcome = { ok: true, provider: outcome.provider, id: outcome.id, latencyMs: outcome.latencyMs, status: 200, environment: outcome.actualEnvironment };
    }

    if (outcome.ok) {
      proxy.timelines.record(this.timeline, 'push-accepted', { provider: outcome.provider, id: outcome.id, latencyMs: round(outcome.latencyMs) }, branch.id);
      branch.pushAccepted = true;
      if (branch.state === 'pushing') branch.state = 'waiting';
      if (this.isInvite && proxy.config.proxy.ringingOnPush && !this.ringingSent && !this.finalSent) {
        this.ringingSent = true;
        this.serverTx.respond(createResponse(this.request, 180, { toTag: this.localTag }));
        proxy.timelines.record(this.timeline, 'ringing', { by: 'push' });
      }
      return;
    }

    proxy.timelines.record(
      this.timeline,
      'push-failed',
      { provider: outcome.provider, error: outcome.error, reason: redactProviderText(outcome.reason), status: outcome.status, removeBinding: outcome.removeBinding },
      branch.id,
    );
    if (outcome.removeBinding) proxy.removeDeadBinding(binding, outcome.reason);
    // RFC 8599 §5.6.2: a failed push request rejects the held request (404/480).
    if (branch.state === 'pushing' || branch.state === 'waiting') {
      this.releaseWaiter(branch);
      // The caller learns the outcome code, not the provider's text (which can quote the token).
      if (branch.final === undefined) branch.final = { status: 480, reason: `Push failed (${outcome.error})` };
      branch.state = 'done';
      this.checkDone();
    }
  }

  private releaseWaiter(branch: Branch): void {
    branch.wakeTimer?.cancel();
    branch.wakeTimer = undefined;
    this.proxy.wake.remove(branch);
    this.proxy.metrics.heldCalls.set(this.proxy.wake.size);
  }

  /**
   * Who is calling, for the push (the lock screen, CallKit): the P-Asserted-Identity of a
   * trusted peer (RFC 3325 §9.1: the PBX asserts the real caller, whose From may be a trunk
   * or anonymous), else the From. Not when the caller asked for privacy (`Privacy: id`,
   * RFC 3325 §7): the device then shows the From, anonymous as the caller made it.
   */
  private callerIdentity(): { uri: string; name: string | undefined } {
    const from = this.request.from;
    if (this.caller.startsWith('trusted:') && !wantsIdPrivacy(this.request)) {
      const asserted = this.request.values('p-asserted-identity')[0];
      if (asserted !== undefined) {
        try {
          const pai = NameAddr.parse(asserted, 'P-Asserted-Identity');
          return { uri: pai.uri.toString(), name: pai.displayName ?? from.displayName };
        } catch (error) {
          // A malformed assertion: fall back to the From (the call itself is fine).
          if (!(error instanceof SipParseError)) throw error;
        }
      }
    }
    return { uri: from.uri.toString(), name: from.displayName };
  }

  private payload(type: PushPayload['type'], text?: string): PushPayload {
    const caller = this.callerIdentity();
    let body = text;
    if (type === 'message' && body === undefined && (this.request.contentType ?? '').startsWith('text/plain')) {
      body = this.request.body.toString('utf8').slice(0, 200);
    }
    return buildPayload(
      {
        type,
        callId: this.request.callId,
        fromUri: caller.uri,
        fromName: caller.name,
        to: this.aor,
        video: this.isInvite && /\bm=video\b/.test(this.request.body.toString('latin1')),
        ttl: Math.round(this.wakeTimeoutMs() / 1000),
        text: body,
      },
      this.proxy.clock,
    );
  }

  /** The device registered again (RFC 8599 §5.6.2 step 4): forward the held request. */
  onWake(branch: Branch, binding: Binding): void {
    const proxy = this.proxy;
    branch.wakeTimer?.cancel();
    branch.wakeTimer = undefined;
    proxy.metrics.heldCalls.set(proxy.wake.size);
    branch.woke = true;
    proxy.timelines.record(
      this.timeline,
      'device-registered',
      { afterPushMs: round(proxy.clock.now() - branch.pushedAt), transport: binding.flow.protocol },
      branch.id,
    );
    if (branch.cancelReason !== undefined) {
      // Cancel before wake: deliver, then CANCEL at once with the Reason (INVITE only).
      if (this.isInvite) this.sendTo(branch, binding, branch.cancelReason);
      else branch.state = 'done';
      return;
    }
    if (branch.state === 'done') return;
    if (this.keeping) {
      branch.wokeWhileKeeping = binding;
      return;
    }
    this.sendTo(branch, binding);
  }

  /**
   * Offline messages: the devices pushed for this MESSAGE slept through it. Keep it for them
   * (each gets it when it registers again) and answer 202 Accepted (RFC 3428 §7: accepted,
   * not yet delivered). Not while a device reached directly, or one that woke, may still
   * answer; if the message cannot be kept, the call goes on as before (480 in the end).
   */
  private async keepForLater(): Promise<void> {
    this.acceptTimer = undefined;
    const offline = this.proxy.offline;
    if (this.finalSent || this.keeping || !offline) return;
    if (this.branches.some((b) => b.state === 'calling' || b.state === 'proceeding')) return;
    const sleepers = this.branches.filter((b) => b.state === 'pushing' || b.state === 'waiting');
    if (sleepers.length === 0) return;
    this.keeping = true;
    const outcome = await offline.keep(this.request, this.aor, sleepers.map((b) => b.binding));
    this.keeping = false;
    const woke = sleepers.filter((b) => b.wokeWhileKeeping !== undefined);
    if (outcome !== 'stored' || this.finalSent) {
      for (const b of woke) if (b.state !== 'done') this.sendTo(b, b.wokeWhileKeeping!);
      return;
    }
    this.proxy.timelines.record(this.timeline, 'kept-offline', { devices: sleepers.length });
    for (const b of sleepers) {
      b.wakeTimer?.cancel();
      b.wakeTimer = undefined;
      this.releaseWaiter(b);
      b.state = 'done';
      b.final ??= { status: 202, reason: 'Accepted' };
    }
    this.sendFinal({ status: 202, reason: 'Accepted' }, 'kept-offline');
    // Registered while the message was being kept: delivered from the store now.
    for (const b of woke) void offline.deliverTo(b.wokeWhileKeeping!).catch(() => undefined);
  }

  private wakeTimeout(branch: Branch): void {
    const proxy = this.proxy;
    // A MESSAGE being kept for later: the keeping decides (202, or back to waiting); look again soon.
    if (this.keeping) {
      branch.wakeTimer = proxy.clock.setTimeout(() => this.wakeTimeout(branch), KEEPING_RECHECK_MS);
      return;
    }
    branch.wakeTimer = undefined;
    proxy.wake.remove(branch);
    proxy.metrics.heldCalls.set(proxy.wake.size);
    if (branch.state !== 'pushing' && branch.state !== 'waiting') return;
    proxy.timelines.record(this.timeline, 'wake-timeout', { waitedMs: round(proxy.clock.now() - branch.pushedAt) }, branch.id);
    branch.state = 'done';
    // RFC 8599 §5.6.2 step 7: the bucket timer expired: 480.
    if (branch.final === undefined) branch.final = { status: 480, reason: 'Device did not wake' };
    this.checkDone();
  }

  // ----- forwarding to a device -----------------------------------------------------------

  /** Send the request to `binding` on `branch` (§16.6); with `cancelWith`, CANCEL it right away. */
  private sendTo(branch: Branch, binding: Binding, cancelWith?: string | null): void {
    const proxy = this.proxy;
    branch.binding = binding;
    branch.state = 'calling';
    const out = proxy.prepareForward(this.request);
    proxy.assertIdentity(out, this.request, this.caller, false);
    // A binding whose pushes another proxy handles (it put +sip.pns in the REGISTER) keeps its
    // pn-* parameters: that proxy wakes the device by them (RFC 8599 §5.6.2).
    if (!retargetToBinding(out, binding)) {
      branch.final = { status: 480, reason: 'Unusable contact' };
      branch.state = 'done';
      this.checkDone();
      return;
    }
    void this.resolveAndSend(branch, out, cancelWith);
  }

  private async resolveAndSend(branch: Branch, out: SipRequest, cancelWith: string | null | undefined): Promise<void> {
    const proxy = this.proxy;
    // Only a caller on a connection can have one (and only then is there anything to await).
    const callerBinding = this.inbound.protocol === 'udp' ? undefined : await (this.callerBindingId ??= proxy.callerBinding(this.request, this.inbound));
    // Through its Path, or through the node holding its flow (multi-node), else straight to it.
    let dest = await proxy.deviceDestination(out, branch.binding);
    // A connection-oriented device whose connection is gone cannot be reached: 480.
    if (dest.protocol !== 'udp' && dest.connectionId && !proxy.layer.transportFor(dest.protocol)?.hasConnection(dest.connectionId)) {
      dest = { ...dest, connectionId: undefined };
    }
    branch.destination = dest;
    // RFC 8599 §6.2.2: a dialog with a device that holds PURRs is record-routed whatever the
    // method, so that its mid-dialog requests come through us and can wake it.
    const purrDialog = proxy.config.registrar.purr.enabled && (branch.binding.purrs?.length ?? 0) > 0;
    if (this.isInvite || purrDialog) proxy.addRecordRoute(out, this.inbound, dest, purrDialog, branch.binding.id, callerBinding);
    const woke = branch.woke;
    const tx = proxy.layer.request(
      out,
      dest,
      {
        onResponse: (response) => this.onBranchResponse(branch, response),
        onTimeout: () => this.onBranchFailure(branch, 408, 'Request Timeout'),
        onTransportError: () => this.onBranchFailure(branch, 480, 'Device unreachable'),
      },
      proxy.branchFor(this.request),
    );
    branch.tx = tx;
    const detail: Record<string, unknown> = { to: `${dest.protocol}:${dest.address}:${dest.port}`, woke, cancelAfter: cancelWith !== undefined };
    // Proxy-added latency on the wake path: REGISTER received -> held INVITE handed to the transport.
    if (woke && branch.registerReceivedAt !== undefined) detail.sinceRegisterMs = round3(proxy.clock.monotonic() - branch.registerReceivedAt);
    proxy.timelines.record(this.timeline, 'request-out', detail, branch.id);
    if (woke && cancelWith === undefined) {
      proxy.metrics.wakeLatency.observe({ provider: branch.binding.push?.provider ?? 'none' }, (proxy.clock.now() - this.startedAt) / 1000);
    }
    // Cancelled on the way (the route lookup above may wait for DNS): cancel it now too.
    const cancelReason = cancelWith !== undefined ? cancelWith : branch.cancelReason;
    if (cancelReason !== undefined) this.cancelBranch(branch, cancelReason);
  }

  private onBranchResponse(branch: Branch, response: SipResponse): void {
    this.handleBranchResponse(branch, response);
    this.retireWhenDone();
  }

  private handleBranchResponse(branch: Branch, response: SipResponse): void {
    const proxy = this.proxy;
    const status = response.status;
    if (status === 100) {
      if (branch.state === 'calling') branch.state = 'proceeding';
      return;
    }
    if (status < 200) {
      if (branch.state === 'calling') branch.state = 'proceeding';
      if (branch.cancelReason !== undefined || this.finalSent) return;
      if (!this.ringingSent || status !== 180) proxy.timelines.record(this.timeline, 'response-in', { status }, branch.id);
      if (status === 180) this.ringingSent = true;
      this.serverTx.respond(stripTopVia(response));
      return;
    }
    // RFC 5626 §5.3: 430 Flow Failed: the device's other flow, if it has one.
    if (status === 430 && branch.state !== 'done' && this.tryNextFlow(branch, status, response.reason)) return;
    const firstFinal = branch.state !== 'done';
    branch.state = 'done';
    if (firstFinal) proxy.timelines.record(this.timeline, 'response-in', { status, reason: response.reason }, branch.id);

    if (status < 300) {
      if (branch.cancelReason !== undefined || (this.finalSent && !this.answered)) {
        // A 2xx on a branch whose call is over: close that dialog (ACK + BYE).
        if (this.isInvite && firstFinal && branch.destination) proxy.hangUpStray2xx(this.request, response, branch.destination, branch.cancelReason ?? null);
        return;
      }
      if (this.answered && !firstFinal) {
        this.serverTx.respond(stripTopVia(response)); // 2xx retransmission (RFC 6026)
        return;
      }
      if (this.answered) {
        // Another branch also answered: ours won; close this one (§16.7 step 5 note).
        if (this.isInvite && branch.destination) proxy.hangUpStray2xx(this.request, response, branch.destination, REASON_ANSWERED_ELSEWHERE);
        return;
      }
      branch.final = { status, reason: response.reason, response };
      this.answered = true;
      this.winner = branch;
      this.sendFinal(branch.final, 'answered');
      if (this.isInvite) this.cancelOthers(branch, REASON_ANSWERED_ELSEWHERE);
      else this.dropWaiters();
      return;
    }

    if (!firstFinal) return;
    branch.final ??= { status, reason: response.reason, response };
    if (branch.cancelReason !== undefined) {
      this.checkDone();
      return;
    }
    // §16.7 step 5: a 6xx ends the search: forward it, cancel the rest (declined elsewhere).
    if (status >= 600 && !this.finalSent) {
      this.sendFinal(branch.final, 'declined');
      if (this.isInvite) this.cancelOthers(branch, reasonDeclined(status));
      else this.dropWaiters();
      return;
    }
    if (status < 400 && proxy.config.proxy.recurseOnRedirect && !this.finalSent) {
      this.recurse(branch, response).catch((error: unknown) => {
        proxy.logger.warn({ err: (error as Error).message, callId: this.request.callId }, 'redirect not followed');
        this.checkDone();
      });
      return;
    }
    this.checkDone();
  }

  /**
   * §16.5 and §16.7 step 5: follow a branch's 3xx to the users of our domains it names (call
   * forwarding to another user, whose phones are woken like any other), at most
   * MAX_REDIRECT_TARGETS per call, never to a user already tried. The Contacts followed leave
   * the 3xx; one with none left does not compete for the best response. Other Contacts stay
   * in it for the caller.
   */
  private async recurse(branch: Branch, response: SipResponse): Promise<void> {
    const proxy = this.proxy;
    let contacts: readonly ContactValue[] = [];
    try {
      const listed = response.contacts;
      // q-values order the targets (§16.6); a malformed one ranks last.
      const q = (c: ContactValue) => {
        try {
          return c.q ?? 1;
        } catch {
          return 0;
        }
      };
      if (listed !== '*') contacts = [...listed].sort((a, b) => q(b) - q(a));
    } catch (error) {
      if (!(error instanceof SipParseError)) throw error;
    }
    const aors: string[] = [];
    const kept: string[] = [];
    for (const contact of contacts) {
      const uri = contact.uri;
      const local = uri instanceof SipUri && uri.user !== undefined && proxy.isLocalDomain(uri.hostname);
      const aor = local ? uri.toAor() : undefined;
      if (aor !== undefined && !this.targetAors.has(aor) && this.targetAors.size < MAX_REDIRECT_TARGETS) {
        this.targetAors.add(aor);
        aors.push(aor);
      } else if (aor === undefined || !this.targetAors.has(aor)) kept.push(contact.toString());
    }
    if (aors.length === 0) return this.checkDone();
    const now = proxy.clock.now();
    const targets = deviceTargets((await Promise.all(aors.map((aor) => proxy.store.lookup(aor, now)))).flat());
    // Users with no device registered: nothing to follow; the 3xx stays as it came.
    if (this.finalSent || this.cancelled || targets.length === 0) return this.checkDone();
    proxy.timelines.record(this.timeline, 'redirect', { status: response.status, to: aors.join(', ') }, branch.id);
    if (kept.length === 0) branch.followed = true;
    else {
      const rest = response.clone();
      rest.remove('contact');
      for (const c of kept) rest.append('Contact', c);
      branch.final = { status: response.status, reason: response.reason, response: rest };
    }
    this.startBranches(this.addBranches(targets));
  }

  private onBranchFailure(branch: Branch, status: number, reason: string): void {
    if (branch.state === 'done') return;
    if (this.tryNextFlow(branch, status, reason)) return;
    branch.state = 'done';
    branch.final ??= { status, reason };
    this.proxy.timelines.record(this.timeline, 'response-in', { status, reason, local: true }, branch.id);
    this.checkDone();
    this.retireWhenDone();
  }

  /**
   * RFC 5626 §5.3: the flow to a device failed (430 Flow Failed, a transport error, no
   * answer): send the request over the device's next most recent flow instead of failing
   * the branch. Only while the call is still open and the branch not cancelled.
   */
  private tryNextFlow(branch: Branch, status: number, reason: string): boolean {
    if (this.finalSent || branch.cancelReason !== undefined) return false;
    const next = branch.spareFlows.shift();
    if (next === undefined) return false;
    this.proxy.timelines.record(this.timeline, 'flow-failover', { status, reason, to: `${next.flow.protocol}:${next.flow.remoteAddress}:${next.flow.remotePort}` }, branch.id);
    branch.tx = undefined;
    branch.destination = undefined;
    this.sendTo(branch, next);
    return true;
  }

  /**
   * The final response is sent and every branch has its own: what is left are client
   * transactions waiting out Timer M (the winner, RFC 6026) or Timer D, 64*T1 over UDP. Give
   * them small TUs (the winner forwards 2xx retransmissions, the others need nothing) so the
   * call, its branches and their messages can be collected now rather than 32 s later.
   */
  private retireWhenDone(): void {
    if (this.retired || !this.finalSent || this.branches.some((b) => b.state !== 'done')) return;
    this.retired = true;
    const serverTx = this.serverTx;
    for (const b of this.branches) {
      if (b.tx === undefined) continue;
      b.tx.setUser(finishedClientUser(serverTx, b === this.winner && this.isInvite));
    }
  }

  // ----- cancelling -----------------------------------------------------------------------

  private cancelOthers(except: Branch | undefined, reason: string | null): void {
    for (const b of this.branches) if (b !== except) this.cancelBranch(b, reason);
  }

  /** CANCEL a live branch (§16.10); mark a held one for cancel-on-wake. */
  private cancelBranch(branch: Branch, reason: string | null): void {
    const proxy = this.proxy;
    if (branch.cancelSent || branch.state === 'done') return;
    // The first reason sticks: a call answered elsewhere stays "answered elsewhere".
    if (branch.cancelReason === undefined) branch.cancelReason = reason;
    const why = branch.cancelReason;
    if ((branch.state === 'calling' || branch.state === 'proceeding') && branch.tx instanceof InviteClientTransaction) {
      branch.cancelSent = true;
      if (proxy.layer.cancel(branch.tx, why ? [['Reason', why]] : [])) {
        proxy.timelines.record(this.timeline, 'cancel-out', { reason: why ?? 'caller cancelled' }, branch.id);
      }
      return;
    }
    if (branch.state === 'pushing' || branch.state === 'waiting') {
      // The device sleeps: keep waiting so it gets INVITE + CANCEL when it wakes.
      branch.final ??= { status: 487, reason: 'Request Terminated' };
      if (!this.isInvite) {
        this.releaseWaiter(branch);
        branch.state = 'done';
      }
    }
  }

  /**
   * The caller's CANCEL (§16.10), with its Reason passed on (a PBX says "answered elsewhere").
   * `elsewhere`: what that Reason says happened (RFC 3326 cause 200 or 6xx), so that the
   * devices that slept through it get no "missed call" alert for a call that was taken.
   */
  cancelByCaller(reasonHeader: string | undefined, elsewhere?: 'answered' | 'declined'): void {
    if (this.finalSent || this.cancelled) return;
    this.cancelled = true;
    this.cancelledElsewhere = elsewhere;
    this.proxy.timelines.record(this.timeline, 'cancel-in', reasonHeader ? { reason: reasonHeader } : undefined);
    this.cancelOthers(undefined, reasonHeader ?? null);
    const livePending = this.branches.some((b) => b.tx !== undefined && b.state !== 'done');
    if (!livePending) {
      this.sendFinal({ status: 487, reason: 'Request Terminated' }, 'cancelled');
      return;
    }
    this.graceTimer = this.proxy.clock.setTimeout(() => {
      if (!this.finalSent) this.sendFinal({ status: 487, reason: 'Request Terminated' }, 'cancelled');
    }, CANCEL_GRACE_MS);
  }

  private ringTimeout(): void {
    if (this.finalSent) return;
    this.proxy.timelines.record(this.timeline, 'ring-timeout');
    this.cancelOthers(undefined, null);
    this.sendFinal({ status: 408, reason: 'Request Timeout' }, 'no-answer');
  }

  private dropWaiters(): void {
    for (const b of this.branches) {
      if (b.state === 'pushing' || b.state === 'waiting') {
        this.releaseWaiter(b);
        b.state = 'done';
      }
    }
  }

  // ----- completing ---------------------------------------------------------------------

  /** All branches final: forward the best response (§16.7 step 6). */
  private checkDone(): void {
    if (this.finalSent) return;
    if (this.branches.some((b) => b.final === undefined)) return;
    if (this.startNextGroup()) return;
    // §16.10: a cancelled INVITE ends 487 even when a branch ended otherwise (one that never
    // answered the CANCEL times out, §9.1).
    if (this.cancelled) return this.sendFinal({ status: 487, reason: 'Request Terminated' }, 'cancelled');
    // §16.7 step 5: a 3xx whose every Contact was followed is not a response of its own.
    const results = this.branches.filter((b) => !b.followed).map((b) => b.final!);
    const best = withAllChallenges(chooseBest(results), results);
    this.sendFinal(best, best.status === 480 ? 'unavailable' : 'failed');
  }

  private sendFinal(result: FinalResult, outcome: string): void {
    if (this.finalSent) return;
    this.finalSent = true;
    this.ringTimer?.cancel();
    this.graceTimer?.cancel();
    this.groupTimer?.cancel();
    this.acceptTimer?.cancel();
    const proxy = this.proxy;
    let response: SipResponse;
    // §16.7 step 6: a 503 is not forwarded as such (the caller would take it as this proxy
    // being overloaded and stop retrying through it): it becomes 500, from a branch too.
    if (result.status === 503) response = createResponse(this.request, 500, { reason: 'Server Internal Error', toTag: result.response?.to.tag ?? this.localTag });
    else if (result.response) response = stripTopVia(result.response);
    else response = createResponse(this.request, result.status, { reason: result.reason, toTag: this.localTag });
    this.serverTx.respond(response);
    proxy.timelines.record(this.timeline, 'response-out', { status: response.status, reason: response.reason });
    proxy.timelines.end(this.timeline, outcome, response.status);
    proxy.metrics.countCall(outcome);
    proxy.callEnded(this);
    // No "missed call" notice when someone declined on purpose on another device, here or
    // (the caller's CANCEL says so) behind the PBX.
    const endedAs = this.cancelledElsewhere ?? outcome;
    if (endedAs !== 'answered' && endedAs !== 'declined') this.missedCallAlerts();
    else if (proxy.config.proxy.answeredElsewhereAlert) this.alertSleepers('answered_elsewhere');
    this.retireWhenDone();
  }

  /** Devices that were pushed and never woke get a "missed call" alert (never a VoIP push). */
  private missedCallAlerts(): void {
    if (!this.isInvite || !this.proxy.config.proxy.missedCallAlert) return;
    this.alertSleepers('missed_call');
  }

  private alertSleepers(type: 'missed_call' | 'answered_elsewhere'): void {
    const proxy = this.proxy;
    const identity = this.callerIdentity();
    const text = type === 'missed_call' ? `Missed call from ${identity.name ?? identity.uri}` : `Answered on another device`;
    for (const b of this.branches) {
      if (!b.pushAccepted || b.woke) continue;
      const target = toPushBinding(b.binding, 'alert');
      if (!target || !proxy.pusher) continue;
      const payload = this.payload(type, text);
      void proxy.pusher.sendAlert(target, payload).then((outcome) => {
        proxy.timelines.record(this.timeline, 'alert-push', { type, ok: outcome.ok, provider: outcome.provider }, b.id);
      });
    }
  }
}

/** RFC 3323 §4.2 / RFC 3325 §7: the caller asked that its identity be withheld (`Privacy: id`). */
export function wantsIdPrivacy(request: SipRequest): boolean {
  return request.values('privacy').some((v) => v.split(';').some((p) => p.trim().toLowerCase() === 'id'));
}

/** §16.6: targets by q-value, highest first (a Contact without q counts as 1.0); equal q-values ring together. */
function groupByQ(targets: readonly DeviceTarget[]): DeviceTarget[][] {
  const byQ = new Map<number, DeviceTarget[]>();
  for (const t of targets) {
    const q = t.binding.q ?? 1;
    const group = byQ.get(q);
    if (group) group.push(t);
    else byQ.set(q, [t]);
  }
  return [...byQ].sort((a, b) => b[0] - a[0]).map(([, group]) => group);
}

/** The TU of a finished call's losing branches: their final response is already handled. */
const FINISHED_BRANCH = { onResponse(): void {} };

/**
 * The TU a client transaction keeps once the server side has its final response, so that what
 * waits out Timer M / D / K no longer holds the call: the INVITE branch whose 2xx won forwards
 * 2xx retransmissions (RFC 6026 §8.4), any other needs nothing.
 */
export function finishedClientUser(serverTx: ServerTransaction, forward2xx: boolean): ClientTransactionUser {
  if (!forward2xx) return FINISHED_BRANCH;
  return {
    onResponse: (response) => {
      if (response.status >= 200 && response.status < 300) serverTx.respond(stripTopVia(response));
    },
  };
}

function stripTopVia(response: SipResponse): SipResponse {
  const out = response.clone();
  out.removeFirstValue('via');
  return out;
}

/**
 * §16.7 step 7: a 401 or 407 chosen as the best response carries the WWW-Authenticate and
 * Proxy-Authenticate values of every other 401 and 407, unchanged, so that the caller can
 * answer every challenge at once.
 */
export function withAllChallenges(best: FinalResult, results: readonly FinalResult[]): FinalResult {
  if ((best.status !== 401 && best.status !== 407) || !best.response) return best;
  let response: SipResponse | undefined;
  for (const other of results) {
    if (other === best || !other.response || (other.status !== 401 && other.status !== 407)) continue;
    for (const h of other.response.headers) {
      if (h.key !== 'www-authenticate' && h.key !== 'proxy-authenticate') continue;
      response ??= best.response.clone();
      response.append(h.name, h.value);
    }
  }
  return response ? { ...best, response } : best;
}

/** §16.7 step 6: a 6xx if any, else the lowest class; 503 becomes 500 when sent. */
export function chooseBest(results: FinalResult[]): FinalResult {
  const rank = (r: FinalResult): number => {
    const s = r.status;
    if (s >= 600) return 0;
    if (s < 400) return 1;
    if (s < 500) {
      // Prefer what tells the caller most: busy/declined, auth, then the generic unavailable.
      if (s === 486) return 2;
      if (s === 401 || s === 407) return 3;
      if (s === 487) return 6;
      if (s === 480 || s === 408) return 5;
      return 4;
    }
    return 7;
  };
  return [...results].sort((a, b) => rank(a) - rank(b))[0];
}

/**
 * Whether a binding can take an alert or silent push: a PushKit (VoIP) token cannot, so an APNs
 * binding needs its alert ("remote") token.
 */
export function canTakeAlertPush(p: PushRegistration): boolean {
  return p.provider !== 'apns' || p.alertPrid !== undefined;
}

/** The push gateway's view of a binding; alerts to APNs need the alert ("remote") token. */
export function toPushBinding(binding: Binding, use: 'call' | 'alert'): PushBinding | undefined {
  const p = binding.push;
  if (!p) return undefined;
  let prid = p.prid;
  if (use === 'alert' && p.provider === 'apns') {
    if (!canTakeAlertPush(p)) return undefined;
    prid = p.alertPrid!;
  }
  return { bindingId: binding.id, aor: binding.aor, provider: p.provider, prid, param: p.param, environment: p.environment, registeredAt: binding.registeredAt };
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

/** What a CANCEL's RFC 3326 Reason says happened elsewhere: SIP cause 200 or 6xx. */
export function cancelledElsewhere(cancel: SipRequest): 'answered' | 'declined' | undefined {
  let reasons: ReasonValue[];
  try {
    reasons = cancel.reasons;
  } catch {
    return undefined; // a malformed Reason is passed on as written, and read as a plain cancel
  }
  const cause = reasons.find((r) => r.protocol.toUpperCase() === 'SIP')?.cause;
  if (cause === 200) return 'answered';
  if (cause !== undefined && cause >= 600 && cause < 700) return 'declined';
  return undefined;
}
