/**
 * The stateful forking proxy (RFC 3261 §16) with wake-on-call (RFC 8599 §5.6.2).
 *
 * An out-of-dialog INVITE or MESSAGE for a local AOR becomes a ProxyCall that forks to
 * every binding in parallel: live bindings get the request at once, push bindings get a
 * push and a held branch that is released when the device registers again. Requests in a
 * dialog are loose-routed (RFC 3261 §16.4, §16.12) over the flows the devices keep open.
 */

import {
  type Clock,
  type Destination,
  type Flow,
  InviteClientTransaction,
  type InviteServerTransaction,
  type ServerTransaction,
  type SipRequest,
  type SipResponse,
  type TimerHandle,
  SipUri,
  type TransactionLayer,
  type TransportProtocol,
  createResponse,
  hash40Joined,
  header,
  newBranch,
  parseSipUriStrict,
  quote,
  randomToken,
} from '@pushcall/sip';
import type { DigestAuthenticator } from '../auth/digest.js';
import { StoreError } from '../errors.js';
import { type AuthFailureLimiter, TOO_MANY_FAILURES } from '../auth/failure-limit.js';
import type { PushcallConfig } from '../config/schema.js';
import { type GruuTarget, gruuTarget } from '../location/gruu.js';
import type { Binding, BindingStore } from '../location/types.js';
import type { Logger } from '../observability/logger.js';
import type { ServerMetrics } from '../observability/metrics.js';
import { buildRefreshPayload } from '../push/payload.js';
import { deliveredInOtherEnvironment } from '../push/types.js';
import { removeIfTokenUnchanged } from '../location/push-followups.js';
import { cancelledElsewhere, finishedClientUser, NON_INVITE_WAKE_CAP_MS, ProxyCall, type Pusher, toPushBinding, wantsIdPrivacy } from './call.js';
import { RateLimiter } from './limits.js';
import { isTrusted } from './net.js';
import { bindingDestination, isLiveBinding, isOwnUri, looseRouteTo, nodeRouteFor, outboundFlow, popOwnRoutes, recordRouteFor, resolveUri, resolveUriAll, restoreStrictRoute, retargetToBinding, RouteSigner } from './routing.js';
import { SipResolver } from './dns.js';
import { CallTimelines } from './timeline.js';
import { type OfflineMessages, deviceKey } from './offline-messages.js';
import { type RegEventNotifier, isRegSubscribe } from '../registrar/reg-event.js';
import { type WakeWaiter, WakeRegistry } from './wake.js';

/** Our branch ids carry a loop-detection hash (RFC 3261 §16.6 step 8, §16.3 step 4). */
const BRANCH_PREFIX = 'z9hG4bKpc';

export interface ProxyOptions {
  config: PushcallConfig;
  layer: TransactionLayer;
  store: BindingStore;
  clock: Clock;
  logger: Logger;
  metrics: ServerMetrics;
  auth?: DigestAuthenticator;
  /** Blocks addresses that fail authentication too often (auth.failureLimit). */
  authFailures?: AuthFailureLimiter;
  pusher?: Pusher;
  isLocalDomain(host: string): boolean;
}

/** RFC 3261 §16.6 step 11: Timer C, "greater than 3 minutes". */
const TIMER_C_MS = 181_000;
/** An INVITE server transaction's `coreData` while its bindings are read, and once a CANCEL came meanwhile. */
const IN_LOOKUP = Symbol('in binding lookup');
/** The CANCEL that came during the lookup, with its RFC 3326 Reason values. */
class CancelledInLookup {
  constructor(readonly reasons: string[]) {}
}

/**
 * 503 with Retry-After (RFC 3261 §21.5.4): this server cannot take the request now (shutting
 * down, its binding store not answering); a UA tries again later or another server of the
 * SRV set (RFC 3263 §4.3).
 */
export function unavailableFor(request: SipRequest, reason: string): SipResponse {
  return createResponse(request, 503, { reason, headers: [['Retry-After', '5']] });
}

/** The reason phrase of a 503 for a binding store that did not answer (StoreError). */
export const STORE_UNAVAILABLE = 'Binding store unavailable';

/** A re-INVITE held for a sleeping device (RFC 8599 §6.2.3) as its server transaction's `coreData`: its CANCEL ends the hold. */
class HeldInDialogInvite {
  constructor(readonly cancel: () => void) {}
}

export class ProxyCore {
  readonly config: PushcallConfig;
  readonly layer: TransactionLayer;
  readonly store: BindingStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: ServerMetrics;
  readonly auth: DigestAuthenticator | undefined;
  private readonly authFailures: AuthFailureLimiter | undefined;
  /** Signs our Record-Route and Path entries; only signed ones count as ours. */
  readonly routeSigner: RouteSigner;
  pusher: Pusher | undefined;
  /** The reg event package's notifier (registrar.regEvent), attached by the server. */
  regEvents: RegEventNotifier | undefined;
  /** Offline messages (proxy.offlineMessages), once the server attached their store. */
  offline: OfflineMessages | undefined;
  readonly wake = new WakeRegistry();
  /** RFC 3263 lookups for host names (config `dns`). */
  readonly resolver: SipResolver;
  /**
   * The transports NAPTR records may choose (RFC 3263 §4.1): those we listen on. A function,
   * called only when NAPTR is consulted, not for every request routed to an address.
   */
  private readonly usableTransports = (): TransportProtocol[] => {
    const protocols = new Set(this.layer.listeners.map((t) => t.protocol));
    return (['udp', 'tcp', 'tls'] as const).filter((p) => protocols.has(p));
  };
  readonly timelines: CallTimelines;

  /**
   * Calls in progress. Each INVITE server transaction's `coreData` says what it is to the
   * proxy, for its CANCEL: its ProxyCall, the client transaction of a single-branch relay
   * (upstream, in dialog), or IN_LOOKUP / CancelledInLookup while its bindings are read.
   */
  private callCount = 0;
  /** One VoIP push per call per device: `${callId}|${device}` -> expiry (ms). */
  private readonly pushedDevices = new Map<string, number>();
  private readonly calleeLimiter: RateLimiter;
  private readonly callerLimiter: RateLimiter;
  readonly isLocalDomain: (host: string) => boolean;

  constructor(options: ProxyOptions) {
    this.config = options.config;
    this.layer = options.layer;
    this.store = options.store;
    this.clock = options.clock;
    this.logger = options.logger;
    this.metrics = options.metrics;
    this.auth = options.auth;
    this.authFailures = options.authFailures;
    this.routeSigner = new RouteSigner(this.config.auth.nonceSecret);
    this.resolver = new SipResolver({ servers: this.config.dns.servers, cacheMs: this.config.dns.cacheSeconds * 1000 });
    this.pusher = options.pusher;
    this.isLocalDomain = options.isLocalDomain;
    this.timelines = new CallTimelines(this.clock, this.config.proxy.timelineMaxCalls, this.config.proxy.timelineRetentionSeconds * 1000);
    this.calleeLimiter = new RateLimiter(this.clock, this.config.limits.perCalleePerMinute);
    this.callerLimiter = new RateLimiter(this.clock, this.config.limits.perCallerPerMinute);
  }

  get activeCalls(): number {
    return this.callCount;
  }

  /** Shutting down (PushcallServer.drain): new calls get 503 + Retry-After; dialogs and held calls go on. */
  draining = false;

  // ----- entry points from the transaction layer ---------------------------------------

  onRequest(request: SipRequest, tx: ServerTransaction, flow: Flow): void {
    this.route(request, tx, flow).catch((error: unknown) => {
      this.logger.error({ err: error, method: request.method }, 'proxy error');
      if (tx.isFinal) return;
      // As for a REGISTER (server.ts): a store that does not answer is temporary.
      if (error instanceof StoreError) this.metrics.storeUnavailable.inc({ operation: 'route' });
      tx.respond(error instanceof StoreError ? unavailableFor(request, STORE_UNAVAILABLE) : createResponse(request, 500, { reason: 'Proxy error' }));
    });
  }

  onCancel(cancel: SipRequest, tx: ServerTransaction, invite: InviteServerTransaction | undefined): void {
    const data = invite?.coreData;
    if (data instanceof HeldInDialogInvite) {
      // §16.10 for a request nothing was sent for yet: 200 to the CANCEL, 487 to the INVITE,
      // and no delivery when the device wakes.
      tx.respond(createResponse(cancel, 200));
      data.cancel();
      return;
    }
    const call = data instanceof ProxyCall ? data : undefined;
    const relayed = data instanceof InviteClientTransaction ? data : undefined;
    if (relayed) {
      // §16.10 for a single-branch relay (a call to the PBX): pass the CANCEL and its
      // RFC 3326 Reason on; the next hop's 487 comes back through the INVITE's transaction.
      tx.respond(createResponse(cancel, 200));
      const reason = cancel.getAll('reason');
      this.layer.cancel(relayed, reason.map((r) => ['Reason', r] as [string, string]));
      return;
    }
    if (invite && (data === IN_LOOKUP || data instanceof CancelledInLookup)) {
      // The INVITE is still in its binding lookup: remember the CANCEL; route() answers 487,
      // deliverForNode() delivers and cancels.
      invite.coreData = new CancelledInLookup(cancel.getAll('reason'));
      tx.respond(createResponse(cancel, 200));
      return;
    }
    if (!call) {
      tx.respond(createResponse(cancel, 481));
      return;
    }
    // §16.10: answer the CANCEL, then cancel every pending branch.
    tx.respond(createResponse(cancel, 200));
    call.cancelByCaller(cancel.get('reason'), cancelledElsewhere(cancel));
  }

  /** An ACK for a 2xx (end to end): forward statelessly along the route set (§16.11). */
  onAck(ack: SipRequest, flow: Flow): void {
    this.forwardStateless(ack, flow).catch((error: unknown) => this.logger.debug({ err: (error as Error).message }, 'ACK not forwarded'));
  }

  /** A response that matches no client transaction (a 2xx retransmission late): §16.11. */
  onStrayResponse(response: SipResponse): void {
    const vias = response.vias;
    if (vias.length < 2) return;
    const top = vias[0];
    if (!top.branch?.startsWith(BRANCH_PREFIX)) return;
    const next = vias[1];
    const forwarded = response.clone();
    forwarded.removeFirstValue('via');
    const port = typeof next.rport === 'number' ? next.rport : (next.port ?? 5060);
    const address = next.received ?? (next.host.startsWith('[') ? next.host.slice(1, -1) : next.host);
    const protocol = next.transport.toLowerCase() as Destination['protocol'];
    void this.layer.sendStateless(forwarded, { protocol, address, port }).catch(() => undefined);
  }

  /**
   * A device registered, here or through another node: release the branches held for it
   * (RFC 8599 §5.6.2). `receivedAt`: when its REGISTER arrived here (monotonic ms).
   */
  onRegistered(binding: Binding, receivedAt?: number): void {
    if (this.wake.size === 0) return;
    // Early forward (RFC 8599 §5.6.2): the registrar accepted the REGISTER; release now.
    this.wake.registered(binding, receivedAt);
  }

  // ----- routing ---------------------------------------------------------------------------

  /** Where a URI leads (RFC 3263, with this proxy's resolver and transports): the first server. */
  locate(uri: SipUri): Promise<Destination> {
    return resolveUri(uri, undefined, this.resolver, this.usableTransports);
  }

  /** Every server a URI leads to, in the order to try them (RFC 3263 §4.3 failover). */
  locateAll(uri: SipUri): Promise<Destination[]> {
    return resolveUriAll(uri, undefined, this.resolver, this.usableTransports);
  }

  private async route(request: SipRequest, tx: ServerTransaction, flow: Flow): Promise<void> {
    const receivedAt = this.clock.monotonic();
    // RFC 3325 §5: an identity asserted from outside the trust domain (pushcall and its
    // trusted peers) is not believed, nor passed on: a caller could otherwise put any name on
    // the callee's lock screen.
    if (request.has('p-asserted-identity') && !isTrusted(flow.remoteAddress, this.config.auth.trustedPeers)) request.remove('p-asserted-identity');
    // §16.3 step 3: Max-Forwards.
    const maxForwards = request.maxForwards ?? 70;
    if (maxForwards <= 0) return tx.respond(createResponse(request, 483));
    // §16.3 step 4: loop detection with our branch hash.
    if (this.isLoop(request)) return tx.respond(createResponse(request, 482));
    // §16.3 step 5: Proxy-Require.
    if (request.proxyRequire.length > 0) {
      return tx.respond(createResponse(request, 420, { headers: [['Unsupported', request.proxyRequire.join(', ')]] }));
    }
    if (request.method === 'INVITE') tx.respond(createResponse(request, 100));

    const { remaining, flows, removed, verified, recipientBinding, deliverTo } = this.ownRoutes(request);
    // Another node sent this for a device whose flow ends here (multi-node).
    if (deliverTo !== undefined) return this.deliverForNode(request, tx, flow, removed, deliverTo);
    // A reg-event subscription's refresh (RFC 3680): its dialog ends here, at the notifier.
    const regEvents = this.regEvents !== undefined && isRegSubscribe(request) ? this.regEvents : undefined;
    if (regEvents && request.to.tag !== undefined && remaining.length === 0 && request.uri instanceof SipUri && isOwnUri(this.layer, request.uri, this.config.advertisedHost)) {
      return regEvents.refresh(request, tx, flow);
    }
    // In a dialog, or routed elsewhere by a Route set: follow it. A request whose only
    // Route was us is an initial request to process here.
    if (request.to.tag !== undefined || remaining.length > 0) {
      // Only a dialog we record-routed (a signed Route entry of ours) is relayed as it is; a
      // request with a To-tag or a Route set but none of our entries would otherwise make
      // pushcall an open relay to any host: its sender must authenticate like a caller.
      if (!verified && this.authenticateCaller(request, tx, flow) === null) return;
      return this.forwardInDialog(request, tx, flow, remaining, removed, verified, flows, recipientBinding);
    }

    // Draining before a shutdown: new requests go elsewhere (RFC 3261 §21.5.4, RFC 3263 §4.3
    // makes the client try the next server of the SRV set); dialogs and held calls finish here.
    if (this.draining) return tx.respond(unavailableFor(request, 'Shutting down'));

    const uri = request.uri;
    if (!(uri instanceof SipUri)) return tx.respond(createResponse(request, 416));

    // A request for a device behind us with its pn-* parameters in the Request-URI: the
    // registrar we front routed it through our Path (RFC 8599 §5.6.2). Wake that device.
    const push = uri.push;
    if (push?.prid) {
      const provider = push.provider.toLowerCase().replace(/\.(dev|sandbox)$/, '');
      const now = this.clock.now();
      const devices = (await this.store.findByPushToken(provider, push.prid)).filter((b) => b.expiresAt > now && b.push);
      if (devices.length > 0) {
        const caller = this.authenticateCaller(request, tx, flow);
        if (caller === null) return;
        return this.startCall(request, tx, flow, devices[0].aor, devices, caller, receivedAt);
      }
    }

    if (!this.isLocalDomain(uri.hostname) || uri.user === undefined) {
      if (this.config.proxy.upstream) return this.forwardUpstream(request, tx, flow);
      return tx.respond(createResponse(request, 404, { reason: 'Not a local domain' }));
    }

    if (request.method !== 'INVITE' && request.method !== 'MESSAGE' && request.method !== 'OPTIONS' && request.method !== 'SUBSCRIBE' && request.method !== 'NOTIFY' && request.method !== 'REFER' && request.method !== 'INFO') {
      return tx.respond(createResponse(request, 405, { headers: [['Allow', 'INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, MESSAGE']] }));
    }

    // Strangers must not make phones ring: authenticate callers unless trusted.
    const caller = this.authenticateCaller(request, tx, flow);
    if (caller === null) return;
    // RFC 3680: a SUBSCRIBE to an AOR's registrations is for the registrar, not its devices.
    if (regEvents) return regEvents.subscribe(request, tx, flow, uri.toAor(), caller);

    // RFC 5627 §5.5: a GRUU reaches its one instance only (woken like any other device).
    const gruu = gruuTarget(uri);
    if (gruu?.kind === 'unknown') return tx.respond(createResponse(request, 404, { reason: 'Unknown GRUU' }));
    const aor = uri.toAor();
    const { value: found, cancelled } = await this.readBeforeCancel(tx, () =>
      gruu === undefined ? this.store.lookup(aor, this.clock.now()).then((bindings) => ({ aor, bindings })) : this.gruuBindings(gruu),
    );
    if (cancelled) return tx.respond(createResponse(request, 487));
    if (found.bindings.length === 0) return tx.respond(createResponse(request, 480, { reason: gruu ? 'GRUU has no current registration' : 'Not registered' }));

    this.startCall(request, tx, flow, found.aor, found.bindings, caller, receivedAt);
  }

  /**
   * Read the store for an INVITE while a CANCEL may arrive (a network store answers after
   * the event-loop turn): the transaction's `coreData` says so meanwhile, and onCancel
   * answers the CANCEL and leaves it here with its Reason values (§16.10).
   */
  private async readBeforeCancel<T>(tx: ServerTransaction, read: () => Promise<T>): Promise<{ value: T; cancelled: CancelledInLookup | undefined }> {
    tx.coreData = IN_LOOKUP;
    try {
      const value = await read();
      return { value, cancelled: tx.coreData instanceof CancelledInLookup ? tx.coreData : undefined };
    } finally {
      tx.coreData = undefined;
    }
  }

  /** The current bindings of the instance a GRUU names, and its AOR. */
  private async gruuBindings(gruu: Exclude<GruuTarget, { kind: 'unknown' }>): Promise<{ aor: string; bindings: Binding[] }> {
    const now = this.clock.now();
    let aor: string;
    let instanceId: string | undefined;
    if (gruu.kind === 'public') {
      aor = gruu.aor;
      instanceId = gruu.instanceId;
    } else {
      const named = await this.store.get(gruu.bindingId);
      if (named === undefined || named.expiresAt <= now) return { aor: '', bindings: [] };
      aor = named.aor;
      instanceId = named.instanceId;
    }
    const bindings = await this.store.lookup(aor, now);
    return { aor, bindings: bindings.filter((b) => b.instanceId !== undefined && b.instanceId === instanceId) };
  }

  /**
   * §16.4 for a request that reached us: when a strict router (RFC 2543) before us put our
   * Record-Route entry in the Request-URI and the remote target last in the Route set, put
   * them back; then remove the Route entries that are us. `verified`: the request was routed
   * through entries of ours, every one signed by us (RouteSigner): a dialog we record-routed.
   * Only then does it name the binding of the device it goes to.
   */
  private ownRoutes(request: SipRequest): ReturnType<typeof popOwnRoutes> {
    const strictEntry = restoreStrictRoute(this.layer, request, this.config.advertisedHost);
    const routing = popOwnRoutes(this.layer, request.routes, this.routeSigner, this.config.advertisedHost);
    if (strictEntry === undefined) return routing.verified ? routing : { ...routing, recipientBinding: undefined, deliverTo: undefined };
    const strict = this.routeSigner.verify(strictEntry);
    if (strict?.flow) routing.flows.push(strict.flow);
    const verified = strict !== undefined && (routing.removed === 0 || routing.verified);
    return { ...routing, verified, recipientBinding: verified ? routing.recipientBinding : undefined, deliverTo: verified ? routing.deliverTo : undefined };
  }

  /**
   * Fork to `bindings` unless an abuse limit refuses the call: this node's limits, then, in a
   * cluster, the cluster's (`rateLimitInCluster`), so that spreading calls over the nodes
   * does not multiply what a caller may do.
   */
  private startCall(request: SipRequest, tx: ServerTransaction, flow: Flow, aor: string, bindings: Binding[], caller: string, receivedAt: number): void {
    const call = new ProxyCall(this, request, tx, flow, aor, deviceTargets(bindings), caller, receivedAt);
    const refusal = call.checkLimits(this.calleeLimiter, this.callerLimiter);
    if (refusal) return call.refuse(refusal);
    if (request.method === 'INVITE') {
      // From here a CANCEL finds the call: one that comes during the cluster's check ends it
      // with 487 before it starts.
      tx.coreData = call;
      this.callCount++;
    }
    if (this.rateLimitInCluster === undefined || call.pushCount === 0) return call.start();
    void this.startAfterClusterLimits(call);
  }

  private async startAfterClusterLimits(call: ProxyCall): Promise<void> {
    const { limits } = this.config;
    const keys = call.limitKeys;
    const wait = (kind: 'callee' | 'caller', key: string, limit: number) =>
      this.rateLimitInCluster!(kind, key, limit).catch((error: unknown) => {
        // Redis away: this node's own limits stand (checked above).
        this.logger.debug({ err: (error as Error).message }, 'cluster rate limit not checked');
        return 0;
      });
    const [calleeWait, callerWait] = await Promise.all([wait('callee', keys.callee, limits.perCalleePerMinute), wait('caller', keys.caller, limits.perCallerPerMinute)]);
    if (call.isFinished) return;
    const refusal = call.rateRefusal(calleeWait, callerWait);
    if (!refusal) return call.start();
    if (call.serverTx.coreData === call) {
      call.serverTx.coreData = undefined;
      this.callCount--;
    }
    call.refuse(refusal);
  }

  /**
   * Multi-node: count one call against `key`'s one-minute window of `limit` across the
   * cluster; the ms until the window resets when it is over, else 0. Set by the server.
   */
  rateLimitInCluster: ((kind: 'callee' | 'caller', key: string, limit: number) => Promise<number>) | undefined;

  /** Returns the caller identity (username or trusted peer), or null after a 407/403. */
  private authenticateCaller(request: SipRequest, tx: ServerTransaction, flow: Flow): string | null {
    if (isTrusted(flow.remoteAddress, this.config.auth.trustedPeers)) return `trusted:${flow.remoteAddress}`;
    if (this.config.auth.mode === 'open' || !this.auth) return `open:${request.from.uri.toString()}`;
    const limiter = this.authFailures;
    if (limiter && limiter.blockedFor(flow.remoteAddress) > 0) {
      tx.respond(createResponse(request, 403, { reason: TOO_MANY_FAILURES }));
      return null;
    }
    const result = this.auth.verify(request.authHeaders('proxy-authorization'), request.method, request.uriText);
    if (result.outcome === 'challenge') {
      tx.respond(createResponse(request, 407, { headers: this.auth.challenges(result.stale).map((c) => ['Proxy-Authenticate', c]) }));
      return null;
    }
    const from = request.from.uri;
    if (result.outcome === 'forbidden' || !(from instanceof SipUri) || from.userUnescaped !== result.username) {
      limiter?.recordFailure(flow.remoteAddress);
      tx.respond(createResponse(request, 403, { reason: result.outcome === 'forbidden' ? result.reason : 'From does not match the credentials' }));
      return null;
    }
    return result.username;
  }

  callEnded(call: ProxyCall): void {
    if (call.serverTx.coreData !== call) return;
    call.serverTx.coreData = undefined;
    this.callCount--;
  }

  /**
   * True (and remembered) the first time a device is pushed for a Call-ID on this node; in a
   * cluster, also the first time on any node (the same call forked to two nodes), through
   * `claimPushInCluster`.
   */
  async claimPush(callId: string, binding: Binding): Promise<boolean> {
    const key = `${callId}|${deviceKey(binding)}`;
    const ttlMs = this.config.proxy.ringTimeoutSeconds * 1000;
    const now = this.clock.now();
    const until = this.pushedDevices.get(key);
    if (until !== undefined && until > now) return false;
    this.pushedDevices.set(key, now + ttlMs);
    if (this.pushedDevices.size > 50_000) for (const [k, t] of this.pushedDevices) if (t <= now) this.pushedDevices.delete(k);
    if (this.claimPushInCluster === undefined) return true;
    try {
      return await this.claimPushInCluster(key, ttlMs);
    } catch (error) {
      // Better a second push than a phone left asleep: push when Redis does not answer.
      this.logger.warn({ err: (error as Error).message, aor: binding.aor }, 'cannot claim the push in the cluster; pushing anyway');
      return true;
    }
  }

  /**
   * Multi-node: true when no other node has pushed this device for this call (`key` is
   * Call-ID and device) within `ttlMs`. Set by the server when it joins a cluster.
   */
  claimPushInCluster: ((key: string, ttlMs: number) => Promise<boolean>) | undefined;

  /** A push said the binding's token is dead: remove it if it still carries that token. */
  removeDeadBinding(binding: Binding, reason: string): void {
    removeIfTokenUnchanged(this.store, binding).then(
      (removed) => {
        if (removed) this.logger.info({ aor: binding.aor, binding: binding.id, reason }, 'binding removed after push failure');
      },
      (error: unknown) => this.logger.error({ err: error, aor: binding.aor, binding: binding.id }, 'cannot remove a binding after push failure'),
    );
  }

  // ----- forwarding helpers ----------------------------------------------------------------

  /** Branch id with the loop-detection hash of the request (§16.6 step 8). */
  branchFor(request: SipRequest): string {
    return `${BRANCH_PREFIX}${this.loopHash(request)}.${randomToken(10)}`;
  }

  /**
   * §16.6 step 8: the part of our branch that changes whenever a field that decides where the
   * request goes changes, so that §16.3 step 4 can tell a loop from a spiral.
   */
  private loopHash(request: SipRequest): string {
    const routes = request.getAll('route');
    return hash40Joined([
      request.uriText,
      request.from.tag ?? '',
      request.to.tag ?? '',
      request.callId,
      String(request.cseq.seq),
      request.get('proxy-require') ?? '',
      routes.length === 0 ? '' : routes.join(','),
    ]);
  }

  private isLoop(request: SipRequest): boolean {
    const vias = request.vias;
    if (vias.length < 2) return false;
    let hash: string | undefined;
    for (const via of vias) {
      const branch = via.branch;
      if (!branch?.startsWith(BRANCH_PREFIX)) continue;
      if (!isOwnUri(this.layer, new SipUri({ host: via.host, port: via.port }), this.config.advertisedHost)) continue;
      hash ??= this.loopHash(request);
      if (branch.slice(BRANCH_PREFIX.length, BRANCH_PREFIX.length + 10) === hash) return true;
    }
    return false;
  }

  /** Prepare a copy of `request` for forwarding (§16.6 steps 1–7). */
  prepareForward(request: SipRequest): SipRequest {
    const out = request.clone();
    out.set('Max-Forwards', String((request.maxForwards ?? 70) - 1));
    // §22.3: credentials for our realm are consumed here, not forwarded.
    if (this.auth && out.has('proxy-authorization')) {
      const kept = out.getAll('proxy-authorization').filter((v) => !v.includes(`realm="${this.auth?.realm}"`));
      out.remove('proxy-authorization');
      for (const v of kept) out.append('Proxy-Authorization', v);
    }
    return out;
  }

  /**
   * Add Record-Route (§16.6 step 4). When the request enters on one transport and leaves on
   * another (UDP in, WebSocket out), two entries are added (RFC 5658), the one facing the
   * callee on top; a connection-oriented callee flow is remembered in that entry, with the
   * callee's binding when the callee is a registered device (`calleeBinding`).
   */
  addRecordRoute(out: SipRequest, inbound: Flow, destination: Destination, required = false, calleeBinding?: string, callerBinding?: string): void {
    if (!this.config.proxy.recordRoute && !required) return;
    const inT = this.layer.transportForAddress(inbound.protocol, inbound.localAddress);
    const outT = this.layer.transportForAddress(destination.protocol, destination.address);
    if (!inT || !outT) return;
    // Each connection-oriented side gets its own entry with its flow, so that requests in
    // the dialog reach a caller on TCP/WS too (over the connection it called from), not
    // only the callee. A device's binding needs an entry of its own too: only the entry
    // facing the recipient tells which side a request goes to (routing.ts popOwnRoutes).
    const calleeToken = destination.protocol !== 'udp' ? destination.connectionId : undefined;
    const callerToken = inbound.protocol !== 'udp' ? inbound.connectionId : undefined;
    const binding = calleeToken !== undefined ? calleeBinding : undefined;
    if (inT !== outT || (callerToken !== undefined && callerToken !== calleeToken) || binding !== undefined) {
      out.prepend('Record-Route', recordRouteFor(this.layer, inT, this.routeSigner, callerToken, callerToken !== undefined ? callerBinding : undefined));
    }
    out.prepend('Record-Route', recordRouteFor(this.layer, outT, this.routeSigner, calleeToken, binding));
  }

  /**
   * RFC 3325 §6 and §5 on a request leaving us: a caller pushcall authenticated gets a
   * P-Asserted-Identity with that identity (replacing any it sent), so a PBX behind us and the
   * callee's phone know who calls; a trusted peer's assertion is kept. Towards the devices
   * (outside the trust domain) no assertion goes when the caller asked for `Privacy: id`.
   */
  assertIdentity(out: SipRequest, request: SipRequest, caller: string, towardTrustedPeer: boolean): void {
    if (!caller.startsWith('trusted:') && !caller.startsWith('open:')) {
      // authenticateCaller checked that the From's user is the authenticated one.
      const from = request.from;
      out.remove('p-asserted-identity');
      if (from.uri instanceof SipUri) {
        const identity = `${from.uri.scheme}:${from.uri.user}@${from.uri.host}`;
        out.append('P-Asserted-Identity', `${from.displayName ? `${quote(from.displayName)} ` : ''}<${identity}>`);
      }
    }
    if (!towardTrustedPeer && wantsIdPrivacy(request)) out.remove('p-asserted-identity');
  }

  /**
   * The binding of a registered device that sent `request` over its connection (a call
   * between two apps), for the Record-Route entry facing it. Only a binding on that very
   * connection counts, so a forged From changes nothing.
   */
  async callerBinding(request: SipRequest, inbound: Flow): Promise<string | undefined> {
    if (inbound.protocol === 'udp' || inbound.connectionId === undefined) return undefined;
    const from = request.from.uri;
    if (!(from instanceof SipUri) || from.user === undefined || !this.isLocalDomain(from.hostname)) return undefined;
    const bindings = await this.store.lookup(from.toAor(), this.clock.now());
    return bindings.find((b) => b.flow.connectionId === inbound.connectionId)?.id;
  }

  /**
   * Where an in-dialog request for a device goes: the connection recorded for it, unless the
   * device has registered from another open connection since (a network handover; the old
   * connection may be gone, or not yet known to be dead), where its binding now leads.
   */
  private async dialogFlowDestination(out: SipRequest, flows: string[], inbound: Flow, recipientBinding: string | undefined): Promise<Destination | undefined> {
    const recorded = outboundFlow(flows, inbound.connectionId);
    if (recipientBinding !== undefined) {
      // Only a refinement of the recorded flow: a store that does not answer (Redis away)
      // must not stop a dialog in progress.
      const device = await this.store.get(recipientBinding).catch(() => undefined);
      const current = device !== undefined && device.expiresAt > this.clock.now() ? device : undefined;
      // Re-registered through another node (multi-node): its new connection is there.
      if (current !== undefined && this.routeThroughOwner(out, current)) {
        this.metrics.dialogRetargets.inc({ reason: 'moved' });
        return this.locate(out.routes[0].uri as SipUri);
      }
      // A connection id means something only on the node that holds it.
      const moved = current?.flow.nodeId === this.config.node.id ? current.flow.connectionId : undefined;
      if (moved !== undefined && moved !== recorded && moved !== inbound.connectionId) {
        const destination = this.flowDestination(moved);
        if (destination !== undefined) {
          this.metrics.dialogRetargets.inc({ reason: 'moved' });
          return destination;
        }
      }
    }
    return this.flowDestination(recorded);
  }

  /** Requests inside a dialog, and pre-routed requests (§16.12 loose routing). */
  private async forwardInDialog(
    request: SipRequest,
    tx: ServerTransaction,
    inbound: Flow,
    remaining: ReturnType<typeof popOwnRoutes>['remaining'],
    removed: number,
    verified: boolean,
    flows: string[],
    recipientBinding: string | undefined,
  ): Promise<void> {
    const out = this.prepareForward(request);
    for (let i = 0; i < removed; i++) out.removeFirstValue('route');
    if (remaining.length === 0) {
      const device = await this.gruuDevice(request);
      if (device === 'unknown') return tx.respond(createResponse(request, 404, { reason: 'Unknown GRUU' }));
      if (device === 'gone') return tx.respond(createResponse(request, 480, { reason: 'GRUU has no current registration' }));
      if (device !== undefined) {
        if (!retargetToBinding(out, device)) return tx.respond(createResponse(request, 480, { reason: 'Unusable contact' }));
        if (device.push && !this.isLive(device)) {
          return this.holdInDialog(request, out, tx, device);
        }
        return this.relay(request, out, tx, await this.deviceDestination(out, device));
      }
    }
    if (remaining.length === 0 && verified) {
      const device = await this.sleepingPurrDevice(request);
      if (device) return this.holdInDialog(request, out, tx, device);
    }
    let destination: Destination;
    let alternatives: Destination[] = [];
    if (remaining.length > 0) {
      const next = remaining[0].uri;
      if (!(next instanceof SipUri)) return tx.respond(createResponse(request, 416));
      [destination, ...alternatives] = await this.locateAll(next);
    } else {
      const uri = request.uri;
      if (!(uri instanceof SipUri)) return tx.respond(createResponse(request, 416));
      // A flow token leads to a device's connection, unless it is where this came from.
      destination = (await this.dialogFlowDestination(out, flows, inbound, recipientBinding)) ?? (await this.locate(uri));
    }
    if (request.method === 'INVITE' && verified) this.addRecordRoute(out, inbound, destination);
    this.relay(request, out, tx, destination, alternatives);
  }

  /**
   * Where `out`, retargeted to `device` (retargetToBinding), goes: the first hop of its Path,
   * else the node that owns its flow (routeThroughOwner), else its flow.
   */
  deviceDestination(out: SipRequest, device: Binding): Promise<Destination> | Destination {
    return device.path.length > 0 || this.routeThroughOwner(out, device) ? this.locate(out.routes[0].uri as SipUri) : this.directDestination(device);
  }

  /**
   * Multi-node (DESIGN.md §6): a device registered through another node is reached through
   * that node. Its connection exists only there, and a NAT lets only that node's packets
   * in. Prepends the signed entry that node delivers by (nodeRouteFor); false for a device
   * of this node, or one registered without `node.uri`.
   */
  routeThroughOwner(out: SipRequest, device: Binding): boolean {
    if (!this.heldByAnotherNode(device)) return false;
    out.prepend('Route', nodeRouteFor(device.flow.nodeUri!, device.id, this.routeSigner));
    this.metrics.nodeRelays.inc({ direction: 'out' });
    return true;
  }

  /**
   * Multi-node: is this node alive (a live claim in Redis)? Set by the server when it joins
   * a cluster; a device whose node is gone is reached directly, if at all.
   */
  nodeAlive: ((nodeId: string, lastHeardAt: number) => boolean) | undefined;

  /** The device registered through another node (multi-node) that is alive and holds its flow. */
  private heldByAnotherNode(device: Binding): boolean {
    return device.flow.nodeId !== this.config.node.id && device.flow.nodeUri !== undefined && (this.nodeAlive?.(device.flow.nodeId, device.updatedAt) ?? true);
  }

  /**
   * Where a binding's flow leads from this node (routing.ts bindingDestination). A
   * connection id means something only on the node that holds it: the flow of a device
   * registered through a node that is gone is its address alone (UDP reaches it if its NAT
   * lets us; a connection-oriented one is unreachable, and gets 480).
   */
  directDestination(device: Binding): Destination {
    const destination = bindingDestination(device);
    return device.flow.nodeId === this.config.node.id ? destination : { ...destination, connectionId: undefined };
  }

  /**
   * A device to call without a push (routing.ts isLiveBinding). Never one whose flow another
   * node holds: only that node could tell, and a push reaches the device either way.
   */
  isLive(device: Binding, now = this.clock.now()): boolean {
    return !this.heldByAnotherNode(device) && isLiveBinding(this.layer, device, now, this.config.proxy.liveFlowSeconds * 1000);
  }

  /**
   * The other end of routeThroughOwner: a request another node sent through us for a device
   * whose flow ends here. Relayed to the device's current flow, record-routed (its dialog's
   * requests need this node's flow token), or 480 when the device is no longer registered here.
   */
  private async deliverForNode(request: SipRequest, tx: ServerTransaction, inbound: Flow, removed: number, bindingId: string): Promise<void> {
    const out = this.prepareForward(request);
    for (let i = 0; i < removed; i++) out.removeFirstValue('route');
    const { value: device, cancelled } = await this.readBeforeCancel(tx, () => this.store.get(bindingId));
    if (device === undefined || device.expiresAt <= this.clock.now() || device.flow.nodeId !== this.config.node.id) {
      return tx.respond(createResponse(request, 480, { reason: 'Device no longer registered on this node' }));
    }
    const destination = bindingDestination(device);
    if (destination.connectionId !== undefined && !this.layer.transportFor(destination.protocol)?.hasConnection(destination.connectionId)) {
      return tx.respond(createResponse(request, 480, { reason: 'Device connection closed' }));
    }
    this.metrics.nodeRelays.inc({ direction: 'in' });
    if (request.method === 'INVITE') this.addRecordRoute(out, inbound, destination, true, device.id);
    this.relay(request, out, tx, destination);
    // Cancelled while the binding was read (a ghost call: the other node sends INVITE and
    // CANCEL back to back): the device still gets both, so that its CallKit call ends.
    if (cancelled && tx.coreData instanceof InviteClientTransaction) {
      this.layer.cancel(tx.coreData, cancelled.reasons.map((r) => ['Reason', r] as [string, string]));
    }
  }

  /**
   * RFC 5627 §5.5: the device a request with no Route left is for, when its remote target is
   * a GRUU of ours: that instance's most recently refreshed binding, wherever the device is
   * now (a phone woken by a push is on a new connection, which a flow token recorded at the
   * start of the dialog does not know). 'unknown': a `gr` URI we never issued; 'gone': the
   * instance has no current binding.
   */
  private async gruuDevice(request: SipRequest): Promise<Binding | 'unknown' | 'gone' | undefined> {
    const uri = request.uri;
    if (!(uri instanceof SipUri) || !this.isLocalDomain(uri.hostname)) return undefined;
    const gruu = gruuTarget(uri);
    if (gruu === undefined) return undefined;
    if (gruu.kind === 'unknown') return 'unknown';
    const device = deviceTargets((await this.gruuBindings(gruu)).bindings)[0]?.binding;
    if (device === undefined) return 'gone';
    this.metrics.dialogRetargets.inc({ reason: 'gruu' });
    return device;
  }

  /**
   * RFC 8599 §6.2.3: the device an in-dialog request is for, when its Request-URI carries a
   * PURR we issued and the device has no live flow (the same test as for an INVITE).
   */
  private async sleepingPurrDevice(request: SipRequest): Promise<Binding | undefined> {
    if (!this.config.registrar.purr.enabled) return undefined;
    const uri = request.uri;
    const purr = uri instanceof SipUri ? uri.param('pn-purr') : undefined;
    if (!purr) return undefined;
    const device = await this.store.findByPurr(purr);
    const now = this.clock.now();
    if (!device?.push || device.expiresAt <= now) return undefined;
    return this.isLive(device, now) ? undefined : device;
  }

  /**
   * RFC 8599 §6.2.3: hold an in-dialog request for a sleeping device, push it (silently: a
   * VoIP push must bring a new call), and forward the request when the device registers
   * again, to where it registered from. Failures use transaction-only codes (RFC 5057; §6.2.3
   * SHOULD): 503 when the push cannot be sent, 408 when the device does not register in time.
   */
  private holdInDialog(request: SipRequest, out: SipRequest, tx: ServerTransaction, device: Binding): void {
    const pusher = this.pusher;
    const target = toPushBinding(device, 'alert');
    if (!pusher || !target) return tx.respond(createResponse(request, 503, { reason: 'Device asleep and has no token for a silent push' }));
    const timeoutMs = Math.min(this.config.proxy.wakeTimeoutSeconds * 1000, request.method === 'INVITE' ? Infinity : NON_INVITE_WAKE_CAP_MS);
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      if (tx.coreData instanceof HeldInDialogInvite) tx.coreData = undefined;
      timer.cancel();
      this.wake.remove(waiter);
      this.metrics.heldCalls.set(this.wake.size);
      return true;
    };
    const waiter: WakeWaiter = {
      binding: device,
      wake: (woken) => {
        if (!settle()) return;
        // Its Path, the node it registered through (it may have woken at another), or its flow.
        void Promise.resolve(this.deviceDestination(out, woken)).then(
          (destination) => this.relay(request, out, tx, destination),
          () => tx.respond(createResponse(request, 480, { reason: 'Device unreachable' })),
        );
      },
    };
    const timer = this.clock.setTimeout(() => {
      if (settle()) tx.respond(createResponse(request, 408, { reason: 'Device did not wake' }));
    }, timeoutMs);
    this.wake.add(waiter);
    this.metrics.heldCalls.set(this.wake.size);
    if (request.method === 'INVITE') {
      tx.coreData = new HeldInDialogInvite(() => {
        if (settle()) tx.respond(createResponse(request, 487));
      });
    }
    const payload = buildRefreshPayload({ to: device.aor, ttl: timeoutMs / 1000 }, this.clock);
    pusher.sendRefresh(target, payload, { deadlineMs: 5000 }).then(
      (outcome) => {
        if (outcome.ok || deliveredInOtherEnvironment(outcome)) return;
        if (outcome.removeBinding) this.removeDeadBinding(device, outcome.reason);
        if (settle()) tx.respond(createResponse(request, 503, { reason: `Push failed (${outcome.error})` }));
      },
      (error: unknown) => {
        if (settle()) tx.respond(createResponse(request, 503, { reason: 'Push failed (PUSH_UNAVAILABLE)' }));
      },
    );
  }

  /**
   * The destination for an open connection-oriented flow, without resolving the Request-URI:
   * the device's Contact may not be resolvable at all (a WebSocket client's `*.invalid`
   * host, RFC 7118 §5), and only the connection reaches it anyway.
   */
  private flowDestination(flowId: string | undefined): Destination | undefined {
    if (!flowId) return undefined;
    const protocol = flowId.split(':')[0] as Destination['protocol'];
    const transport = this.layer.transportFor(protocol);
    if (!transport?.hasConnection(flowId)) return undefined;
    const flow = (transport as Partial<{ getFlow(id: string): Flow | undefined }>).getFlow?.(flowId);
    return { protocol, address: flow?.remoteAddress ?? transport.localAddress, port: flow?.remotePort ?? 0, connectionId: flowId };
  }

  /** In front of a PBX: non-local requests go to the configured upstream (outbound proxy). */
  private async forwardUpstream(request: SipRequest, tx: ServerTransaction, inbound: Flow): Promise<void> {
    const upstream = this.config.proxy.upstream;
    if (!upstream) return tx.respond(createResponse(request, 404));
    const caller = this.authenticateCaller(request, tx, inbound);
    if (caller === null) return;
    const out = this.prepareForward(request);
    const parsed = parseSipUriStrict(upstream);
    // A PBX cluster behind SRV records: the next server when one fails (RFC 3263 §4.3).
    const [destination, ...alternatives] = await this.locateAll(parsed);
    out.prepend('Route', looseRouteTo(parsed));
    this.assertIdentity(out, request, caller, true);
    this.addRecordRoute(out, inbound, destination, false, undefined, request.method === 'INVITE' ? await this.callerBinding(request, inbound) : undefined);
    this.relay(request, out, tx, destination, alternatives);
  }

  /** Single-branch stateful relay: responses go back through the server transaction. */
  private relay(request: SipRequest, out: SipRequest, tx: ServerTransaction, destination: Destination, alternatives: readonly Destination[] = []): void {
    // RFC 3261 §16.6 step 11, §16.8: Timer C. A next hop that rang and then went silent gets
    // a CANCEL; the transaction layer gives up 64*T1 after it (§9.1). (A forked call has its
    // ring timeout instead.)
    let timerC: TimerHandle | undefined;
    const armTimerC = (): void => {
      timerC?.cancel();
      timerC = this.clock.setTimeout(() => {
        timerC = undefined;
        if (!tx.isFinal && client instanceof InviteClientTransaction) this.layer.cancel(client);
      }, TIMER_C_MS);
    };
    const done = (): void => {
      timerC?.cancel();
      timerC = undefined;
      if (tx.coreData === client) tx.coreData = undefined;
    };
    // RFC 3263 §4.3: after a transport error, a timeout or a 503 before any provisional
    // response, the next server is tried with an untouched copy (each client transaction
    // adds its own Via).
    const spare = alternatives.length > 0 ? out.clone() : undefined;
    let provisional = false;
    const failover = (): boolean => {
      if (!spare || provisional || tx.isFinal) return false;
      done();
      this.relay(request, spare, tx, alternatives[0], alternatives.slice(1));
      return true;
    };
    const client = this.layer.request(
      out,
      destination,
      {
        onResponse: (response) => {
          if (response.status === 100) return;
          if (response.status < 200) {
            provisional = true;
            if (client instanceof InviteClientTransaction) armTimerC();
          }
          if (response.status >= 200) {
            done();
            client.setUser(finishedClientUser(tx, response.status < 300 && client instanceof InviteClientTransaction));
          }
          if (response.status === 503) {
            if (failover()) return;
            // §16.7 step 6: a next hop's 503 goes back as 500 (not "this proxy is overloaded").
            return tx.respond(createResponse(request, 500, { toTag: response.to.tag }));
          }
          const back = response.clone();
          back.removeFirstValue('via');
          tx.respond(back);
        },
        onTimeout: () => {
          if (failover()) return;
          done();
          if (!tx.isFinal) tx.respond(createResponse(request, 408));
        },
        onTransportError: () => {
          if (failover()) return;
          done();
          if (!tx.isFinal) tx.respond(createResponse(request, 503, { reason: 'Next hop unreachable' }));
        },
      },
      this.branchFor(request),
    );
    if (client instanceof InviteClientTransaction && !tx.isFinal) {
      tx.coreData = client;
      armTimerC();
    }
  }

  private async forwardStateless(request: SipRequest, inbound: Flow): Promise<void> {
    const { remaining, flows, removed, verified, recipientBinding, deliverTo } = this.ownRoutes(request);
    // An ACK cannot be challenged: without a signed Route of ours (a dialog we record-routed)
    // it is relayed only for senders that need no authentication (see route()).
    if (!verified && this.config.proxy.recordRoute && this.auth && !isTrusted(inbound.remoteAddress, this.config.auth.trustedPeers)) return;
    const out = this.prepareForward(request);
    for (let i = 0; i < removed; i++) out.removeFirstValue('route');
    let destination: Destination;
    const device = deliverTo === undefined && remaining.length === 0 ? await this.gruuDevice(request) : undefined;
    if (deliverTo !== undefined) {
      // The ACK of a call another node sent through us (a GRUU's dialog, multi-node).
      const owned = await this.store.get(deliverTo);
      if (owned === undefined) return;
      destination = bindingDestination(owned);
    } else if (typeof device === 'object') {
      // An ACK to a sleeping device is not held: the 2xx it answers came from an awake one.
      if (!retargetToBinding(out, device)) return;
      destination = await this.deviceDestination(out, device);
    } else if (device !== undefined) return;
    else if (remaining.length > 0 && remaining[0].uri instanceof SipUri) destination = await this.locate(remaining[0].uri);
    else {
      const uri = request.uri;
      if (!(uri instanceof SipUri)) return;
      destination = (await this.dialogFlowDestination(out, flows, inbound, recipientBinding)) ?? (await this.locate(uri));
    }
    const transport = this.layer.requireTransport(destination);
    this.layer.addVia(out, transport, this.branchFor(request));
    await this.layer.sendStateless(out, destination);
  }

  /**
   * Answer a stray 2xx on a branch whose call is over: ACK it, then BYE (RFC 3261 §13.3.1.4
   * as UAC). `reason`: the RFC 3326 Reason the BYE carries, what happened to the call
   * (answered or declined elsewhere, as the branch's CANCEL said); null for none (the caller
   * hung up).
   */
  hangUpStray2xx(invite: SipRequest, response: SipResponse, destination: Destination, reason: string | null): void {
    const contact = response.contacts;
    if (contact === '*' || contact.length === 0 || !(contact[0].uri instanceof SipUri)) return;
    const target = contact[0].uri.toString();
    const routes = response.values('record-route').reverse();
    const base = [
      header('Max-Forwards', '70'),
      header('From', invite.get('from') ?? ''),
      header('To', response.get('to') ?? ''),
      header('Call-ID', invite.callId),
    ];
    const make = (method: string, cseq: number) => {
      const headers = [...base.map((h) => ({ ...h })), header('CSeq', `${cseq} ${method}`)];
      for (const r of routes) headers.push(header('Route', r));
      if (method === 'BYE' && reason !== null) headers.push(header('Reason', reason));
      return new (invite.constructor as typeof SipRequest)(method, target, headers);
    };
    const ack = make('ACK', invite.cseq.seq);
    this.layer.addVia(ack, this.layer.requireTransport(destination), newBranch());
    void this.layer.sendStateless(ack, destination).catch(() => undefined);
    this.layer.request(make('BYE', invite.cseq.seq + 1), destination, { onResponse() {} });
  }

  newCallToken(): string {
    return randomToken(4);
  }
}

/** A target of a call: a binding, and the other flows of its device to fall back to. */
export interface DeviceTarget {
  binding: Binding;
  /** The device's other flows, most recently refreshed first (RFC 5626 §5.3). */
  spares: Binding[];
}

/**
 * RFC 5626 §5.3: a device registered over several flows (reg-id 1 and 2, e.g. two edge
 * proxies or IPv4 and IPv6) is one target: the request goes over one flow only, the most
 * recently refreshed, or it would ring (or be pushed) once per flow; the others are where it
 * goes when that flow fails. Bindings without an instance id are each a target of their own.
 * Targets come in the lookup's order, which the rest of the proxy keeps.
 */
export function deviceTargets(bindings: readonly Binding[]): DeviceTarget[] {
  const key = (b: Binding) => `${b.aor}\u0000${b.instanceId}`;
  const flows = new Map<string, Binding[]>();
  if (bindings.length > 1) {
    for (const b of bindings) {
      if (b.instanceId === undefined) continue;
      const group = flows.get(key(b));
      if (group) group.push(b);
      else flows.set(key(b), [b]);
    }
  }
  const targets: DeviceTarget[] = [];
  for (const b of bindings) {
    const group = b.instanceId === undefined ? undefined : flows.get(key(b));
    if (group === undefined || group.length === 1) {
      targets.push({ binding: b, spares: [] });
      continue;
    }
    // Stable: among flows refreshed at the same time, the first in the lookup wins.
    const ranked = [...group].sort((x, y) => y.updatedAt - x.updatedAt);
    if (ranked[0] === b) targets.push({ binding: b, spares: ranked.slice(1) });
  }
  return targets;
}
