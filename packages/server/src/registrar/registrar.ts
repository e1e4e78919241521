/**
 * The registrar (RFC 3261 §10.3) with RFC 8599 push bindings, RFC 5626 instance identity
 * and RFC 3327 Path. `handle()` turns a REGISTER into a response; the store is changed only
 * when the whole request is valid, so a rejected REGISTER never alters bindings.
 */

import {
  type Clock,
  type ContactValue,
  type Flow,
  type SipRequest,
  type SipResponse,
  SipParseError,
  SipUri,
  createResponse,
  detachString,
  quote,
  randomToken,
  sipUriEquals,
  parseSipUriStrict,
} from '@pushcall/sip';
import type { DigestAuthenticator } from '../auth/digest.js';
import { type AuthFailureLimiter, TOO_MANY_FAILURES } from '../auth/failure-limit.js';
import type { PushcallConfig } from '../config/schema.js';
import { gruusOf } from '../location/gruu.js';
import type { Binding, BindingStore, PushRegistration } from '../location/types.js';
import { type PushInspection, type PushInspectionOptions, inspectPushParams } from './push-params.js';

/** Extensions the registrar understands in Require (RFC 3261 §8.2.2.3). */
const SUPPORTED_EXTENSIONS = ['path', 'outbound', 'gruu'];
const NO_PATH: string[] = [];

/** The Date header changes once a second; format it once a second. */
let dateCache = { second: -1, text: '' };
function httpDate(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== dateCache.second) dateCache = { second, text: new Date(second * 1000).toUTCString() };
  return dateCache.text;
}

export interface RegistrationEvent {
  binding: Binding;
  /** The binding this one replaced (same instance, or same Contact URI), if any. */
  previous?: Binding;
  request: SipRequest;
  /** Monotonic ms when the REGISTER reached the registrar (wake latency accounting). */
  receivedAt: number;
}

export interface RegistrarHooks {
  /** A valid REGISTER for this binding was accepted; the store commit is under way. */
  onAccepted?(event: RegistrationEvent): void;
  /** After the store committed a new or refreshed binding. */
  onRegistered?(event: RegistrationEvent): void;
  onRemoved?(binding: Binding, reason: 'unregistered' | 'replaced' | 'same-token'): void;
  /** Every REGISTER outcome, for metrics. */
  onOutcome?(status: number, request: SipRequest): void;
}

export interface RegistrarOptions {
  config: PushcallConfig;
  store: BindingStore;
  clock: Clock;
  nodeId: string;
  /** Where other nodes reach this one (multi-node), kept with every binding's flow. */
  nodeUri?: string;
  auth?: DigestAuthenticator;
  /** Blocks addresses that fail authentication too often (auth.failureLimit). */
  authFailures?: AuthFailureLimiter;
  supportedProviders: () => readonly string[];
  /** RFC 8599 §5.4: the VAPID public key to advertise (`+sip.vapid`) for a PNS type, if any. */
  vapidPublicKey?: (provider: string) => string | undefined;
  hooks?: RegistrarHooks;
  /**
   * Push-proxy mode (`registrar.upstream`): send a REGISTER to the real registrar and
   * resolve with its final response. Provided by the server (a client transaction).
   */
  forwardRegister?: (request: SipRequest) => Promise<SipResponse>;
}

interface PlannedContact {
  contact: ContactValue;
  uri: SipUri;
  expires: number;
  inspection: PushInspection;
  push?: PushRegistration;
  /** The Contact's reg-id where RFC 5626 §6 lets it count (with `+sip.instance`, outbound processing applies). */
  regId?: number;
}

/**
 * RFC 5626 §6: outbound processing applies when the registrar is the UA's first hop (its
 * Via is the only one) or the edge proxy that is (the last Path entry: each proxy puts its
 * own on top, RFC 3327 §5.1) says it supports outbound with `ob`.
 */
function outboundProcessing(request: SipRequest): { applies: boolean; firstHop: boolean } {
  if (isFirstHop(request)) return { applies: true, firstHop: true };
  const edge = request.paths.at(-1)?.uri;
  return { applies: edge instanceof SipUri && edge.params.has('ob'), firstHop: false };
}

/** A Contact's reg-id where RFC 5626 §6 lets it count: with `+sip.instance`, when outbound processing applies. */
function countedRegId(contact: ContactValue, outbound: { applies: boolean }): number | undefined {
  return outbound.applies && contact.instance !== undefined ? contact.regId : undefined;
}

/** We are the UA's first hop: its Via is the only one. */
function isFirstHop(request: SipRequest): boolean {
  return request.values('via').length === 1;
}

/** An option tag is in a Supported or Require list (tags compare case-insensitively, RFC 3261 §19.2). */
export function hasOptionTag(tags: readonly string[], tag: string): boolean {
  return tags.some((t) => t.toLowerCase() === tag);
}

/** The UA asked for outbound (RFC 5626 §4.2): `Supported: outbound`. */
function wantsOutbound(request: SipRequest): boolean {
  return hasOptionTag(request.supported, 'outbound');
}

/**
 * A REGISTER that reached us straight from a UA asking for outbound (reg-id with
 * `+sip.instance`, `Supported: outbound`): forwarding it, we are its edge proxy (RFC 5626 §5.1).
 */
export function outboundEdgeFor(request: SipRequest): boolean {
  if (!isFirstHop(request) || !wantsOutbound(request)) return false;
  const contacts = request.contacts;
  return contacts !== '*' && contacts.some((c) => c.regId !== undefined && c.instance !== undefined);
}

/** The stored Contact `stored` is the one a REGISTER Contact `uri` names (RFC 3261 §10.3 step 7, RFC 8599 §5.3). */
function contactMatches(stored: SipUri, uri: SipUri, pridlessRemoval: boolean): boolean {
  if (!pridlessRemoval) return sipUriEquals(stored, uri, { pushParamsMustMatch: true });
  return sipUriEquals(stored, uri) && stored.param('pn-provider') === uri.param('pn-provider') && stored.param('pn-param') === uri.param('pn-param');
}

export class Registrar {
  private readonly config: PushcallConfig;
  private readonly store: BindingStore;
  private readonly clock: Clock;
  private readonly nodeId: string;
  private readonly nodeUri: string | undefined;
  private readonly auth: DigestAuthenticator | undefined;
  private readonly supportedProviders: () => readonly string[];
  private readonly options: RegistrarOptions;
  hooks: RegistrarHooks;
  private inspection: PushInspectionOptions | undefined = undefined;
  /**
   * Per-AOR serialization: an AOR is here while one of its REGISTERs is processed, with the
   * REGISTERs queued behind it (null: none, the common case). No promise is kept here: an
   * in-flight promise held in this long-lived Map made V8 promote about 2 KB per REGISTER
   * out of the young generation (bench/register-inprocess.ts with --trace-gc-nvp).
   */
  private readonly busy = new Map<string, Array<() => void> | null>();

  constructor(options: RegistrarOptions) {
    this.config = options.config;
    this.store = options.store;
    this.clock = options.clock;
    this.nodeId = options.nodeId;
    this.nodeUri = options.nodeUri;
    this.auth = options.auth;
    this.supportedProviders = options.supportedProviders;
    this.options = options;
    this.hooks = options.hooks ?? {};
  }

  isLocalDomain(host: string): boolean {
    const domains = this.config.domains;
    return domains.length === 0 || domains.some((d) => d.toLowerCase() === host.toLowerCase());
  }

  async handle(request: SipRequest, flow: Flow): Promise<SipResponse> {
    let response: SipResponse;
    const receivedAt = this.clock.monotonic();
    try {
      response = await this.process(request, flow, receivedAt);
    } catch (error) {
      if (!(error instanceof SipParseError)) throw error;
      response = createResponse(request, 400, { reason: error.reason });
    }
    this.hooks.onOutcome?.(response.status, request);
    return response;
  }

  private async process(request: SipRequest, flow: Flow, receivedAt: number): Promise<SipResponse> {
    // §10.3 step 1: the Request-URI names the domain of the registrar.
    const ruri = request.uri;
    if (!(ruri instanceof SipUri)) return createResponse(request, 416);
    if (!this.isLocalDomain(ruri.hostname)) return createResponse(request, 404, { reason: 'Domain not served here' });

    // Step 2: Require.
    const required = request.require;
    if (required.length > 0) {
      const unsupported = required.filter((t) => !SUPPORTED_EXTENSIONS.includes(t.toLowerCase()));
      if (unsupported.length > 0) return createResponse(request, 420, { headers: [['Unsupported', unsupported.join(', ')]] });
    }

    // Step 4: the AOR comes from To.
    const to = request.to.uri;
    if (!(to instanceof SipUri) || to.user === undefined) return createResponse(request, 404, { reason: 'To must be a SIP URI with a user' });
    if (!this.isLocalDomain(to.hostname)) return createResponse(request, 404, { reason: 'Domain not served here' });
    const aor = to.toAor();

    // In front of another registrar (RFC 8599 §5.6.1), that registrar authenticates.
    if (this.options.forwardRegister && this.config.registrar.upstream) {
      return this.forwardToRegistrar(request, flow, aor, receivedAt, this.options.forwardRegister);
    }

    // Step 3: authenticate; an AOR is registered only with its own credentials.
    if (this.config.auth.mode === 'digest') {
      if (!this.auth) return createResponse(request, 500, { reason: 'Authentication not configured' });
      const limiter = this.options.authFailures;
      if (limiter && limiter.blockedFor(flow.remoteAddress) > 0) return createResponse(request, 403, { reason: TOO_MANY_FAILURES });
      const result = this.auth.verify(request.authHeaders('authorization'), 'REGISTER', request.uriText);
      if (result.outcome === 'challenge') {
        return createResponse(request, 401, { headers: this.auth.challenges(result.stale, to.userUnescaped).map((c) => ['WWW-Authenticate', c]) });
      }
      if (result.outcome === 'forbidden' || result.username !== to.userUnescaped) {
        limiter?.recordFailure(flow.remoteAddress);
        return createResponse(request, 403, { reason: result.outcome === 'forbidden' ? result.reason : 'Credentials do not match the AOR' });
      }
    }

    return this.serialized(aor, () => this.update(request, flow, aor, receivedAt));
  }

  /**
   * Push proxy in front of another registrar (RFC 8599 §5.6.1.1, the "mid-registrar"): add
   * `Feature-Caps: *;+sip.pns` for each push provider we will serve and a Path to ourselves
   * (RFC 3327, so requests for the device come through us), forward, and on the registrar's
   * 2xx keep the binding locally (push data and flow) and answer with our Feature-Caps.
   * Unsupported providers are forwarded untouched (SHOULD), or get 555 when `lastHop`.
   */
  private async forwardToRegistrar(
    request: SipRequest,
    flow: Flow,
    aor: string,
    receivedAt: number,
    forward: (request: SipRequest) => Promise<SipResponse>,
  ): Promise<SipResponse> {
    // RFC 3261 §16.3 step 3: a request that may not go any further is not forwarded.
    const maxForwards = request.maxForwards ?? 70;
    if (maxForwards === 0) return createResponse(request, 483);
    const contacts = request.contacts;
    const providers = new Set<string>();
    if (contacts !== '*') {
      for (const contact of contacts) {
        if (!(contact.uri instanceof SipUri)) continue;
        const inspection = this.inspect(contact.uri, request);
        if (inspection.kind === 'malformed') return createResponse(request, 400, { reason: inspection.reason });
        if (inspection.kind === 'unsupported' && this.config.registrar.lastHop) return createResponse(request, 555);
        if (inspection.kind === 'push') {
          // §5.6.1.1 step 3: too brief to push before the binding ends gets 423 here, before
          // the registrar is told (+sip.pns) that pushcall will push (update()'s rule).
          const expires = this.requestedExpiry(contact, request);
          const min = this.minExpiry(true);
          if (expires !== 0 && expires < min) return createResponse(request, 423, { headers: [['Min-Expires', String(min)]] });
          providers.add(inspection.registration.provider);
        }
        if (inspection.kind === 'query') {
          for (const p of inspection.provider === '' ? this.supportedProviders() : [inspection.provider]) {
            if (this.supportedProviders().includes(p)) providers.add(p);
          }
        }
      }
    }
    const out = request.clone();
    out.set('Max-Forwards', String(maxForwards - 1));
    // §5.6.1.1: the REGISTER forwarded carries sip.pns, so no proxy further on pushes too.
    for (const p of providers) out.append('Feature-Caps', `*;+sip.pns=${quote(p)}`);
    const upstream = await forward(out);
    const response = upstream.clone();
    response.removeFirstValue('via');
    // A non-2xx changes nothing; nor does a fetch of the bindings (no Contact).
    if (upstream.status < 200 || upstream.status >= 300 || (contacts !== '*' && contacts.length === 0)) return response;

    // The registrar accepted: keep the push binding here too (flow, token), so a request
    // that comes back through our Path with the pn-* parameters can wake the device; and
    // apply removals and refreshes of the bindings kept here, whether or not they carry
    // pn-* (RFC 8599 §5.5: no push once the registrar has removed or expired a binding).
    const local = await this.serialized(aor, async () => {
      const existing = await this.store.lookup(aor, this.clock.now());
      const localRequest = this.localRegister(request, upstream, existing);
      return localRequest ? this.update(localRequest, flow, aor, receivedAt) : response;
    });
    if (local !== response && local.status >= 200 && local.status < 300) {
      for (const fc of local.getAll('feature-caps')) if (!response.getAll('feature-caps').includes(fc)) response.append('Feature-Caps', fc);
    }
    // RFC 5626 §5.4: the edge proxy tells the UA how often to keep its flow alive.
    const flowTimer = this.flowTimerSeconds(request, flow, isFirstHop(request));
    if (flowTimer !== undefined && hasOptionTag(response.require, 'outbound') && !response.has('flow-timer')) {
      response.append('Flow-Timer', String(flowTimer));
    }
    return response;
  }

  /**
   * Push-proxy mode: the REGISTER to apply to the bindings kept here once the registrar
   * answered `upstream` (a 2xx), or undefined when none of it concerns them. Kept: the
   * contacts pushcall serves (push or query for a supported provider) and those naming a
   * binding kept here (removals, refreshes without pn-*); each with the expiry the
   * registrar granted (§5.6.1.1 step 5), 0 (removed here) when the 2xx does not list it or
   * grants less than `minPushExpires` (no push could come in time: the 2xx then goes
   * back without +sip.pns).
   */
  private localRegister(request: SipRequest, upstream: SipResponse, existing: readonly Binding[]): SipRequest | undefined {
    const contacts = request.contacts;
    if (contacts === '*') return existing.length > 0 ? request : undefined;
    let granted: readonly ContactValue[] = [];
    let grantedDefault: number | undefined;
    try {
      const listed = upstream.contacts;
      if (listed !== '*') granted = listed;
      grantedDefault = upstream.expires;
    } catch (error) {
      // A 2xx we cannot read grants nothing we can rely on: removed here.
      if (!(error instanceof SipParseError)) throw error;
    }
    const supported = this.supportedProviders();
    const outbound = outboundProcessing(request);
    const kept: string[] = [];
    for (const contact of contacts) {
      const uri = contact.uri;
      if (!(uri instanceof SipUri)) continue;
      const inspection = this.inspect(uri, request);
      const push = inspection.kind === 'push';
      const ours = push || (inspection.kind === 'query' && (inspection.provider === '' ? supported.length > 0 : supported.includes(inspection.provider)));
      const expires = Registrar.grantedExpiry(contact, uri, granted, grantedDefault);
      const local = expires >= this.minExpiry(push) ? expires : 0;
      if (!ours && !findMatch(existing, { contact, uri, expires: local, inspection, regId: countedRegId(contact, outbound) })) continue;
      const rewritten = contact.clone();
      rewritten.params.set('expires', String(local));
      kept.push(rewritten.toString());
    }
    if (kept.length === 0) return undefined;
    const out = request.clone();
    out.remove('Contact');
    for (const c of kept) out.append('Contact', c);
    return out;
  }

  /**
   * The expiry a registrar's 2xx grants the REGISTER Contact `contact` (RFC 3261 §10.3 step
   * 8): that of its Contact with the same instance and reg-id (RFC 5626), else the same URI
   * with the same pn-* (RFC 8599 §5.3); its `expires`, else the Expires header. 0 when the
   * 2xx does not list it, or says nothing readable about its expiry.
   */
  private static grantedExpiry(contact: ContactValue, uri: SipUri, granted: readonly ContactValue[], grantedDefault: number | undefined): number {
    const instance = contact.instance;
    for (const g of granted) {
      if (!(g.uri instanceof SipUri)) continue;
      try {
        const same =
          instance !== undefined && g.instance !== undefined
            ? g.instance === instance && (g.regId ?? null) === (contact.regId ?? null)
            : sipUriEquals(g.uri, uri, { pushParamsMustMatch: true });
        if (same) return g.expires ?? grantedDefault ?? 0;
      } catch (error) {
        // A malformed reg-id or expires in the 2xx: not a grant we can rely on.
        if (!(error instanceof SipParseError)) throw error;
      }
    }
    return 0;
  }

  /**
   * REGISTERs of one AOR run one after the other; the common case (no other REGISTER of
   * this AOR in flight) starts at once.
   */
  private async serialized(aor: string, run: () => Promise<SipResponse>): Promise<SipResponse> {
    const queued = this.busy.get(aor);
    if (queued === undefined) this.busy.set(aor, null);
    else await new Promise<void>((resolve) => (queued === null ? this.busy.set(aor, [resolve]) : queued.push(resolve)));
    try {
      return await run();
    } finally {
      // Hand the AOR to the next REGISTER in line, or release it.
      const waiting = this.busy.get(aor);
      const next = waiting?.shift();
      if (next === undefined) this.busy.delete(aor);
      else {
        if (waiting!.length === 0) this.busy.set(aor, null);
        next();
      }
    }
  }

  /** §10.3 step 7: the Contact's expires, else the Expires header, else the default. */
  private requestedExpiry(contact: ContactValue, request: SipRequest): number {
    return contact.expires ?? request.expires ?? this.config.registrar.defaultExpires;
  }

  /** The shortest expiry accepted: a push binding must outlive a refresh push (RFC 8599 §5.6.1.1). */
  private minExpiry(push: boolean): number {
    return push ? this.config.registrar.minPushExpires : this.config.registrar.minExpires;
  }

  private inspect(uri: SipUri, request: SipRequest): PushInspection {
    const providers = this.supportedProviders();
    // Built again only when the push gateway's providers change, not per Contact.
    if (this.inspection?.supportedProviders !== providers) {
      this.inspection = {
        supportedProviders: providers,
        apnsDefaultEnvironment: this.config.registrar.apnsDefaultEnvironment,
        apnsLegacyTeamId: this.config.registrar.apnsLegacyTeamId,
        tokenHeader: this.config.registrar.tokenHeader,
      };
    }
    return inspectPushParams(uri, request, this.inspection);
  }

  private async update(request: SipRequest, flow: Flow, aor: string, receivedAt: number): Promise<SipResponse> {
    const now = this.clock.now();
    const existing = await this.store.lookup(aor, now);
    const contacts = request.contacts;
    const callId = request.callId;
    const cseq = request.cseq.seq;
    // ok() reads Supported for the 2xx: parsed now, so that a malformed one gets its 400
    // before the store changes, not after (a rejected REGISTER never alters bindings).
    void request.supported;

    // Step 6: `Contact: *` removes every binding, and only with Expires: 0.
    if (contacts === '*') {
      if (request.expires !== 0) return createResponse(request, 400, { reason: 'Contact * requires Expires: 0' });
      for (const b of existing) {
        if (b.callId === callId && cseq <= b.cseq) return createResponse(request, 400, { reason: 'Out-of-order CSeq for this binding' });
      }
      await this.store.apply(aor, { upsert: [], remove: existing.map((b) => b.id) });
      for (const b of existing) this.hooks.onRemoved?.(b, 'unregistered');
      return this.ok(request, [], [], request.values('path'));
    }

    // A query: no Contact, answer with the current bindings (§10.3 step 8).
    if (contacts.length === 0) return this.ok(request, existing, [], request.values('path'));

    // Step 7: plan every contact first; any error aborts the whole request.
    const planned: PlannedContact[] = [];
    // Worked out for the first Contact with a reg-id: most REGISTERs have none.
    let outbound: { applies: boolean; firstHop: boolean } | undefined;
    let registering = 0;
    let registeringWithRegId = false;
    // PNS types for the 2xx's Feature-Caps: a handful at most, so an array, not a Set.
    const featureCapsProviders: string[] = [];
    let queryAll = false;
    for (const contact of contacts) {
      const uri = contact.uri;
      if (!(uri instanceof SipUri)) return createResponse(request, 400, { reason: 'Contact must be a SIP or SIPS URI' });
      let expires = this.requestedExpiry(contact, request);
      const inspection = this.inspect(uri, request);
      let push: PushRegistration | undefined;
      switch (inspection.kind) {
        case 'malformed':
          return createResponse(request, 400, { reason: inspection.reason });
        case 'unsupported':
          // RFC 8599 §5.6.1.1: as the last PNS-capable hop we MAY answer 555.
          if (this.config.registrar.lastHop) return createResponse(request, 555);
          break;
        case 'query':
          // §4.1.5: to an empty-provider query, 555 means "no PNS type supported at all".
          if (inspection.provider === '') {
            if (this.supportedProviders().length === 0 && this.config.registrar.lastHop) return createResponse(request, 555);
            queryAll = true;
          }
          else if (this.supportedProviders().includes(inspection.provider)) addOnce(featureCapsProviders, inspection.provider);
          else if (this.config.registrar.lastHop) return createResponse(request, 555);
          break;
        case 'push':
          // §4.1.2: a removal carries no pn-prid; one that does is still a removal at expires 0.
          push = inspection.registration;
          break;
        default:
          break;
      }
      if (expires !== 0) {
        const min = this.minExpiry(push !== undefined);
        // RFC 3261 §10.3 step 7 and RFC 8599 §5.6.1.1: too brief gets 423 with Min-Expires.
        if (expires < min) return createResponse(request, 423, { headers: [['Min-Expires', String(min)]] });
        expires = Math.min(expires, this.config.registrar.maxExpires);
      }
      if (push && expires > 0) addOnce(featureCapsProviders, push.provider);
      // RFC 5626 §6: a reg-id counts only with +sip.instance and outbound processing; a UA
      // that asked for outbound through an edge proxy without it learns so from a 439.
      let regId: number | undefined;
      if (contact.regId !== undefined && contact.instance !== undefined) {
        regId = countedRegId(contact, (outbound ??= outboundProcessing(request)));
        if (regId === undefined && wantsOutbound(request)) return createResponse(request, 439);
      }
      if (expires > 0) {
        registering++;
        if (regId !== undefined) registeringWithRegId = true;
      }
      planned.push({ contact, uri, expires, inspection, push, regId });
    }
    // RFC 5626 §6: a registration with a reg-id registers one flow.
    if (registering > 1 && registeringWithRegId) return createResponse(request, 400, { reason: 'Only one Contact may register with a reg-id' });
    if (queryAll) for (const p of this.supportedProviders()) addOnce(featureCapsProviders, p);

    const upsert: Binding[] = [];
    const remove: string[] = [];
    const events: RegistrationEvent[] = [];
    const removedEvents: Array<[Binding, 'unregistered' | 'replaced' | 'same-token']> = [];
    const pathValues = request.values('path');
    const path = pathValues.length === 0 ? NO_PATH : pathValues;
    let pnsregRequested = false;
    /** RFC 8599 §6.2.1: the newest PURR per PNS type, for the 2xx. */
    const purrs = this.config.registrar.purr.enabled ? new Map<string, string>() : undefined;

    for (const p of planned) {
      const match = findMatch(existing, p);
      if (match && match.callId === request.callId && cseq <= match.cseq) {
        // The same CSeq again is a retransmission whose response the transaction layer no
        // longer holds: answer it again, changing nothing (idempotent, as stateless
        // registrars do). A lower CSeq is out of order (§10.3 step 7).
        if (cseq === match.cseq) {
          if (match.push && match.purrs) purrs?.set(match.push.provider, match.purrs[0]);
          return this.ok(request, existing, featureCapsProviders, path, pnsregRequested || existing.some((b) => b.pnsreg && b.push), purrs);
        }
        return createResponse(request, 400, { reason: 'Out-of-order CSeq for this binding' });
      }
      if (p.expires === 0) {
        if (match) {
          remove.push(match.id);
          removedEvents.push([match, 'unregistered']);
        }
        continue;
      }
      const sameToken = match?.push && p.push && match.push.provider === p.push.provider && match.push.prid === p.push.prid;
      // Keep an APNs environment learned from a sandbox/production mix-up (proxy/call.ts)
      // unless the client now says which one it uses.
      if (sameToken && p.push && match?.push?.environment && !p.push.environmentDeclared) {
        p.push = { ...p.push, environment: match.push.environment };
      }
      const hasPnsreg = p.contact.params.has('+sip.pnsreg');
      if (hasPnsreg && p.push) pnsregRequested = true;
      // A binding lives for hours: its strings are copies, so it does not keep the text of
      // the REGISTER it came from alive (see detachString).
      const binding: Binding = {
        id: match?.id ?? randomToken(12),
        aor: detachString(aor),
        contact: detachString(p.uri.toString()),
        instanceId: detachOptional(p.contact.instance),
        regId: p.regId,
        q: p.contact.q,
        callId: detachString(request.callId),
        cseq,
        expiresAt: now + p.expires * 1000,
        registeredAt: sameToken && match ? match.registeredAt : now,
        updatedAt: now,
        path: path === NO_PATH ? NO_PATH : path.map(detachString),
        flow: {
          protocol: flow.protocol,
          remoteAddress: flow.remoteAddress,
          remotePort: flow.remotePort,
          localAddress: flow.localAddress,
          localPort: flow.localPort,
          connectionId: flow.connectionId,
          nodeId: this.nodeId,
          nodeUri: this.nodeUri,
        },
        push: p.push && detachPush(p.push),
        pnsreg: hasPnsreg,
        userAgent: detachOptional(request.userAgent),
      };
      if (purrs) Object.assign(binding, this.purrsFor(p.push, match, now));
      if (binding.push && binding.purrs) purrs?.set(binding.push.provider, binding.purrs[0]);
      upsert.push(binding);
      events.push({ binding, previous: match, request, receivedAt });
      // A new binding with the push token of another instance's binding replaces it: the
      // app was reinstalled (new instance id) and would otherwise be pushed twice. Limited
      // to the same AOR so a stolen token cannot unregister someone else's device. Not the
      // same instance's other flows (RFC 5626 §4.2, another reg-id, e.g. IPv4 and IPv6):
      // they share the device's token and are meant to coexist.
      if (p.push) {
        for (const other of existing) {
          if (other.id === binding.id || remove.includes(other.id)) continue;
          if (other.instanceId !== undefined && other.instanceId === binding.instanceId) continue;
          if (other.push?.provider === p.push.provider && other.push.prid === p.push.prid) {
            remove.push(other.id);
            removedEvents.push([other, 'same-token']);
          }
        }
      }
    }

    // The AOR's bindings once this REGISTER is applied: the untouched ones, then the new or refreshed.
    const current: Binding[] = [];
    for (const b of existing) if (!remove.includes(b.id) && !upsert.some((u) => u.id === b.id)) current.push(b);
    if (current.length + upsert.length > this.config.registrar.maxBindingsPerAor) {
      return createResponse(request, 403, { reason: `Too many contacts (max ${this.config.registrar.maxBindingsPerAor})` });
    }
    for (const b of upsert) current.push(b);

    // RFC 8599 §5.6.2 "early forward": this registrar has authenticated the REGISTER and
    // accepted it, so requests held for the device may go now, without waiting for the
    // store's group commit (the INVITE may then reach the phone before the 200 OK, which the
    // RFC allows).
    for (const e of events) this.hooks.onAccepted?.(e);
    await this.store.apply(aor, { upsert, remove });
    for (const [b, reason] of removedEvents) this.hooks.onRemoved?.(b, reason);
    for (const e of events) this.hooks.onRegistered?.(e);
    const response = this.ok(request, current, featureCapsProviders, path, pnsregRequested, purrs);
    if (outbound !== undefined && upsert.some((b) => b.regId !== undefined)) {
      const flowTimer = this.flowTimerSeconds(request, flow, outbound.firstHop);
      if (flowTimer !== undefined) response.append('Flow-Timer', String(flowTimer));
    }
    return response;
  }

  /**
   * RFC 5626 §4.4.1 / §5.4: the keep-alive interval pushcall asks of an outbound UA whose
   * connection ends here (it is the UA's edge): none over UDP, where nothing counts as live.
   */
  private flowTimerSeconds(request: SipRequest, flow: Flow, firstHop: boolean): number | undefined {
    if (!firstHop || flow.protocol === 'udp' || !wantsOutbound(request)) return undefined;
    const seconds = this.config.registrar.flowTimerSeconds ?? Math.max(1, Math.floor(this.config.proxy.liveFlowSeconds * 0.75));
    return seconds > 0 ? seconds : undefined;
  }

  /**
   * RFC 8599 §6.2.1 (with `registrar.purr` on): a push binding's PURRs, unforgeable (128
   * random bits) and anonymous. A new one every `purr.rotateSeconds` even when nothing
   * changed, so that a PURR does not identify a device for long; the last `purr.keep` stay
   * valid for the dialogs using them.
   */
  private purrsFor(push: PushRegistration | undefined, previous: Binding | undefined, now: number): Pick<Binding, 'purrs' | 'purrIssuedAt'> {
    const config = this.config.registrar.purr;
    if (!push) return {};
    const kept = previous?.purrs;
    if (kept && kept.length > 0 && previous.purrIssuedAt !== undefined && now - previous.purrIssuedAt < config.rotateSeconds * 1000) {
      return { purrs: kept, purrIssuedAt: previous.purrIssuedAt };
    }
    return { purrs: [randomToken(16), ...(kept ?? [])].slice(0, config.keep), purrIssuedAt: now };
  }

  /** The 2xx: every current binding with its remaining expiry (§10.3 step 8). */
  private ok(request: SipRequest, bindings: Binding[], providers: readonly string[], path: readonly string[], pnsreg = false, purrs?: ReadonlyMap<string, string>): SipResponse {
    const now = this.clock.now();
    const headers: Array<[string, string]> = [];
    // RFC 5627 §5.4: a UA that supports GRUU learns those of every instance listed.
    const gruu = bindings.length > 0 && hasOptionTag(request.supported, 'gruu');
    for (const b of bindings) {
      const remaining = Math.max(0, Math.round((b.expiresAt - now) / 1000));
      let value = `<${b.contact}>;expires=${remaining}`;
      const gruus = gruu ? gruusOf(b, b.callId) : undefined;
      if (gruus !== undefined) value += `;pub-gruu=${quote(gruus.pub)};temp-gruu=${quote(gruus.temp)}`;
      if (b.instanceId !== undefined) value += `;+sip.instance=${quote(b.instanceId)}`;
      if (b.regId !== undefined) value += `;reg-id=${b.regId}`;
      if (b.q !== undefined) value += `;q=${b.q}`;
      headers.push(['Contact', value]);
    }
    // RFC 3327 §5.3: the Path vector is echoed in the 200.
    for (const p of path) headers.push(['Path', p]);
    if (bindings.some((b) => b.regId !== undefined) && wantsOutbound(request)) headers.push(['Require', 'outbound']);
    // RFC 8599 §5.4: one Feature-Caps per PNS type, add-ons in the same header.
    for (const provider of providers) {
      let fc = `*;+sip.pns=${quote(provider)}`;
      // §5.6.1.1 / §5.6.1.2: the VAPID key of a provider that uses one, in its own header.
      const vapid = this.options.vapidPublicKey?.(provider);
      if (vapid !== undefined) fc += `;+sip.vapid=${quote(vapid)}`;
      if (pnsreg) fc += `;+sip.pnsreg=${quote(String(this.config.registrar.pnsregSeconds))}`;
      const purr = purrs?.get(provider);
      if (purr !== undefined) fc += `;+sip.pnspurr=${quote(purr)}`;
      headers.push(['Feature-Caps', fc]);
    }
    headers.push(['Date', httpDate(now)]);
    return createResponse(request, 200, { headers });
  }
}

/**
 * The stored binding a planned Contact names: RFC 5626 §6, the same instance (and reg-id)
 * is the same binding wherever it is now; without an instance, the same Contact URI. RFC
 * 8599 §4.1.2: a removal carries no pn-prid, so it matches on the rest of the URI
 * (pn-provider and pn-param still equal) instead of on all pn-* parameters.
 */
function findMatch(existing: readonly Binding[], p: PlannedContact): Binding | undefined {
  if (existing.length === 0) return undefined;
  const instanceId = p.contact.instance;
  if (instanceId !== undefined) {
    const regId = p.regId ?? null;
    for (const b of existing) if (b.instanceId === instanceId && (b.regId ?? null) === regId) return b;
    return undefined;
  }
  const pridlessRemoval = p.expires === 0 && !p.uri.params.has('pn-prid');
  for (const b of existing) if (b.instanceId === undefined && contactMatches(parseSipUriStrict(b.contact), p.uri, pridlessRemoval)) return b;
  return undefined;
}

function addOnce(list: string[], value: string): void {
  if (!list.includes(value)) list.push(value);
}

function detachOptional(text: string | undefined): string | undefined {
  return text === undefined ? undefined : detachString(text);
}

function detachPush(push: PushRegistration): PushRegistration {
  const out: PushRegistration = { ...push, provider: detachString(push.provider), prid: detachString(push.prid) };
  if (push.param !== undefined) out.param = detachString(push.param);
  if (push.alertPrid !== undefined) out.alertPrid = detachString(push.alertPrid);
  return out;
}
