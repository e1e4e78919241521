/**
 * The registration event package (RFC 3680): a subscriber (the user's own app, a PBX that
 * must know whether a user can be reached) SUBSCRIBEs to an AOR with `Event: reg` and gets a
 * NOTIFY with the AOR's registrations (application/reginfo+xml) at once and after every
 * change: a device registered, refreshed, unregistered, replaced or expired. pushcall is
 * the notifier (RFC 6665 §4.2): the subscription is a dialog of its own.
 *
 * Every NOTIFY carries the full state (RFC 3680 §5.1 allows it; the `version` attribute
 * counts them), plus the contacts that just ended, in state `terminated` with their event.
 * A sleeping push device is registered: its binding is there until it expires; its
 * Contact's `pn-*` parameters are left out of the document (a push token is a secret), its
 * push provider is given as an `unknown-param`.
 *
 * Subscriptions live in memory on the node that accepted them: a restart ends them (the
 * subscriber's refresh then gets 481 and it subscribes again, RFC 6665 §4.1.2.2).
 */

import {
  type Clock,
  type Destination,
  type Flow,
  type ServerTransaction,
  type SipRequest,
  SipRequest as Request,
  type SipResponse,
  SipUri,
  type TimerHandle,
  type TransactionLayer,
  createResponse,
  hash40,
  header,
  newTag,
  parseSipUriStrict,
} from '@pushcall/sip';
import type { Binding, BindingStore } from '../location/types.js';
import type { Logger } from '../observability/logger.js';
import { stripAllPushParams } from './push-params.js';

export const REGINFO_TYPE = 'application/reginfo+xml';
/** RFC 3680 §4.1: the default duration of a reg subscription. */
const DEFAULT_EXPIRES = 3761;

export interface RegEventSettings {
  maxExpires: number;
  minExpires: number;
  maxPerUser: number;
  maxTotal: number;
}

export interface RegEventOptions {
  layer: TransactionLayer;
  store: BindingStore;
  clock: Clock;
  logger: Logger;
  settings: RegEventSettings;
}

/** What happened to a contact (RFC 3680 §5.3 `event`). */
export type ContactEvent = 'registered' | 'refreshed' | 'unregistered' | 'deactivated' | 'expired';

interface Subscription {
  key: string;
  aor: string;
  callId: string;
  localTag: string;
  /** The subscriber's From header value (its tag included): the To of our NOTIFYs. */
  remote: string;
  remoteTag: string;
  /** Where NOTIFYs go: the subscriber's Contact, over the flow it subscribed on. */
  remoteTarget: string;
  destination: Destination;
  /** The SUBSCRIBE's Record-Route, as our NOTIFYs' Route set (RFC 3261 §12.1.1). */
  routeSet: string[];
  contact: string;
  cseq: number;
  version: number;
  expiresAt: number;
  timer: TimerHandle | undefined;
  /** A NOTIFY is in flight; `dirty`: the state changed meanwhile, send again when it completes. */
  sending: boolean;
  dirty: boolean;
  /** Contacts that ended since the last NOTIFY, to report once as terminated. */
  ended: Array<{ binding: Binding; event: ContactEvent }>;
  /** The contacts' last events (registered or refreshed), by binding id. */
  events: Map<string, ContactEvent>;
  /**
   * Bindings reported registered that the store may not show yet (another node tells of a
   * registration as it accepts it, before its write): part of the next NOTIFY either way.
   */
  registered: Map<string, Binding>;
  terminated?: string;
}

/** Is this SUBSCRIBE for the reg event package (RFC 6665 §8.2.1: the package name, no parameters)? */
export function isRegSubscribe(request: SipRequest): boolean {
  if (request.method !== 'SUBSCRIBE') return false;
  const event = request.get('event'); // the compact form `o` too
  return event !== undefined && event.split(';')[0].trim().toLowerCase() === 'reg';
}

export class RegEventNotifier {
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly byAor = new Map<string, Set<Subscription>>();
  /**
   * Told when an AOR gets its first subscription here and loses its last (multi-node: the
   * cluster then tells this node of the AOR's changes at other nodes).
   */
  watcher: { subscribed(aor: string): void; unsubscribed(aor: string): void } | undefined;

  constructor(private readonly options: RegEventOptions) {}

  get size(): number {
    return this.subscriptions.size;
  }

  /**
   * An initial SUBSCRIBE to `aor` from `subscriber` (as the proxy authenticated it: a user
   * name, `open:<From URI>` or `trusted:<address>`). Only the user itself or a trusted peer
   * may watch an AOR (RFC 3680 §5.2: the registrar authorizes).
   */
  subscribe(request: SipRequest, tx: ServerTransaction, flow: Flow, aor: string, subscriber: string): void {
    const { settings } = this.options;
    if (!mayWatch(subscriber, aor, request)) return tx.respond(createResponse(request, 403, { reason: 'Not allowed to watch this user' }));
    const refusal = this.checkRequest(request);
    if (refusal) return tx.respond(refusal);
    const expires = this.grantedExpires(request);
    if (expires === undefined) return tx.respond(createResponse(request, 423, { headers: [['Min-Expires', String(settings.minExpires)]] }));
    const remoteTarget = request.contacts;
    if (remoteTarget === '*' || remoteTarget.length !== 1) return tx.respond(createResponse(request, 400, { reason: 'SUBSCRIBE needs one Contact' }));
    const remoteTag = request.from.tag;
    if (remoteTag === undefined) return tx.respond(createResponse(request, 400, { reason: 'From has no tag' }));
    const forAor = this.byAor.get(aor);
    if (expires > 0 && ((forAor?.size ?? 0) >= settings.maxPerUser || this.subscriptions.size >= settings.maxTotal)) {
      return tx.respond(createResponse(request, 403, { reason: 'Too many subscriptions to this user' }));
    }
    const localTag = newTag();
    const sub: Subscription = {
      key: keyOf(request.callId, localTag, remoteTag),
      aor,
      callId: request.callId,
      localTag,
      remote: request.get('from')!,
      remoteTag,
      remoteTarget: remoteTarget[0].uri.toString(),
      destination: destinationOf(flow),
      routeSet: request.getAll('record-route'),
      contact: this.contactFor(flow),
      cseq: 0,
      version: 0,
      expiresAt: this.options.clock.now() + expires * 1000,
      timer: undefined,
      sending: false,
      dirty: false,
      ended: [],
      events: new Map(),
      registered: new Map(),
    };
    tx.respond(this.accepted(request, sub, expires));
    if (expires === 0) {
      // A fetch (RFC 6665 §4.4.3): one NOTIFY with the state, and the subscription is over.
      sub.terminated = 'timeout';
      void this.notify(sub);
      return;
    }
    this.subscriptions.set(sub.key, sub);
    if (forAor) forAor.add(sub);
    else {
      this.byAor.set(aor, new Set([sub]));
      this.watcher?.subscribed(aor);
    }
    this.arm(sub);
    void this.notify(sub);
  }

  /**
   * A reg SUBSCRIBE inside a dialog addressed to us: a refresh, or Expires 0 to end it
   * (RFC 6665 §4.1.2.2-3); 481 for a subscription we do not have.
   */
  refresh(request: SipRequest, tx: ServerTransaction, flow: Flow): void {
    const sub = this.subscriptions.get(keyOf(request.callId, request.to.tag ?? '', request.from.tag ?? ''));
    if (!sub) return tx.respond(createResponse(request, 481, { reason: 'Subscription does not exist' }));
    const refusal = this.checkRequest(request);
    if (refusal) return tx.respond(refusal);
    const expires = this.grantedExpires(request);
    if (expires === undefined) return tx.respond(createResponse(request, 423, { headers: [['Min-Expires', String(this.options.settings.minExpires)]] }));
    sub.destination = destinationOf(flow);
    sub.expiresAt = this.options.clock.now() + expires * 1000;
    tx.respond(this.accepted(request, sub, expires));
    if (expires === 0) {
      this.end(sub, 'timeout');
      return;
    }
    this.arm(sub);
    void this.notify(sub);
  }

  /** A contact of `aor` changed: its subscribers get the new state. */
  changed(aor: string, binding: Binding, event: ContactEvent): void {
    const subs = this.byAor.get(aor);
    if (!subs) return;
    for (const sub of subs) {
      if (event === 'registered' || event === 'refreshed') {
        sub.events.set(binding.id, event);
        sub.registered.set(binding.id, binding);
      } else {
        sub.events.delete(binding.id);
        sub.registered.delete(binding.id);
        sub.ended.push({ binding, event });
      }
      void this.notify(sub);
    }
  }

  /** Shutting down: every subscription ends (RFC 6665 §4.2.2, reason noresource). */
  close(): void {
    for (const sub of [...this.subscriptions.values()]) this.end(sub, 'noresource');
  }

  private checkRequest(request: SipRequest): SipResponse | undefined {
    const accept = request.getAll('accept');
    if (accept.length > 0 && !accept.join(',').toLowerCase().split(',').some((t) => t.split(';')[0].trim() === REGINFO_TYPE)) {
      return createResponse(request, 406, { headers: [['Accept', REGINFO_TYPE]] });
    }
    return undefined;
  }

  /** The subscription's duration in seconds, capped; undefined when too brief (423). */
  private grantedExpires(request: SipRequest): number | undefined {
    const { maxExpires, minExpires } = this.options.settings;
    const asked = request.expires ?? DEFAULT_EXPIRES;
    if (asked === 0) return 0;
    if (asked < minExpires) return undefined;
    return Math.min(asked, maxExpires);
  }

  private accepted(request: SipRequest, sub: Subscription, expires: number): SipResponse {
    return createResponse(request, 200, { toTag: sub.localTag, headers: [['Expires', String(expires)], ['Contact', sub.contact]] });
  }

  private contactFor(flow: Flow): string {
    const { layer } = this.options;
    const transport = layer.transportForAddress(flow.protocol, flow.localAddress) ?? layer.listeners[0];
    const at = layer.sentBy(transport);
    return `<sip:${at.host}:${at.port}${flow.protocol === 'udp' ? '' : `;transport=${flow.protocol}`}>`;
  }

  private arm(sub: Subscription): void {
    sub.timer?.cancel();
    sub.timer = this.options.clock.setTimeout(() => this.end(sub, 'timeout'), Math.max(0, sub.expiresAt - this.options.clock.now()));
  }

  /** End a subscription with a last NOTIFY (`terminated;reason=`). */
  private end(sub: Subscription, reason: string): void {
    this.forget(sub);
    sub.terminated = reason;
    void this.notify(sub);
  }

  private forget(sub: Subscription): void {
    sub.timer?.cancel();
    sub.timer = undefined;
    this.subscriptions.delete(sub.key);
    const forAor = this.byAor.get(sub.aor);
    if (!forAor?.delete(sub) || forAor.size > 0) return;
    this.byAor.delete(sub.aor);
    this.watcher?.unsubscribed(sub.aor);
  }

  /** Send the current state; one NOTIFY at a time per subscription, the latest state last. */
  private async notify(sub: Subscription): Promise<void> {
    if (sub.sending) {
      sub.dirty = true;
      return;
    }
    sub.sending = true;
    sub.dirty = false;
    const { clock, store, logger } = this.options;
    let bindings: Binding[];
    try {
      bindings = [...(await store.lookup(sub.aor, clock.now()))];
    } catch (error) {
      logger.warn({ err: (error as Error).message, aor: sub.aor }, 'reg event: cannot read the bindings');
      sub.sending = false;
      return;
    }
    const ended = sub.ended.splice(0);
    const now = clock.now();
    for (const b of sub.registered.values()) if (b.expiresAt > now && !bindings.some((c) => c.id === b.id)) bindings.push(b);
    sub.registered.clear();
    const body = reginfo(sub.aor, sub.version++, sub.events, bindings, ended, now);
    const state = sub.terminated !== undefined ? `terminated;reason=${sub.terminated}` : `active;expires=${Math.max(0, Math.round((sub.expiresAt - clock.now()) / 1000))}`;
    const notify = new Request(
      'NOTIFY',
      sub.remoteTarget,
      [
        header('Max-Forwards', '70'),
        ...sub.routeSet.map((r) => header('Route', r)),
        header('From', `<${sub.aor}>;tag=${sub.localTag}`),
        header('To', sub.remote),
        header('Call-ID', sub.callId),
        header('CSeq', `${++sub.cseq} NOTIFY`),
        header('Contact', sub.contact),
        header('Event', 'reg'),
        header('Subscription-State', state),
        header('Content-Type', REGINFO_TYPE),
      ],
      Buffer.from(body, 'utf8'),
    );
    const done = (gone: boolean) => {
      sub.sending = false;
      // RFC 6665 §4.2.2: a NOTIFY that fails for good (481, a timeout) ends the subscription.
      if (gone) return this.forget(sub);
      // Changed, or ended, while this one was on its way: the latest state goes now.
      if (sub.dirty) void this.notify(sub);
    };
    try {
      this.options.layer.request(notify, sub.destination, {
        onResponse: (response) => {
          if (response.status >= 200) done(response.status >= 300 && response.status !== 401 && response.status !== 407);
        },
        onTimeout: () => done(true),
        onTransportError: () => done(true),
      });
    } catch (error) {
      logger.warn({ err: (error as Error).message, aor: sub.aor }, 'reg event: cannot send NOTIFY');
      done(true);
    }
  }
}

/** The user itself (digest name or, in open mode, the From AOR) or a trusted peer. */
function mayWatch(subscriber: string, aor: string, request: SipRequest): boolean {
  if (subscriber.startsWith('trusted:')) return true;
  const target = parseSipUriStrict(aor);
  if (subscriber.startsWith('open:')) {
    const from = request.from.uri;
    return from instanceof SipUri && from.toAor() === aor;
  }
  return subscriber === target.userUnescaped;
}

function keyOf(callId: string, localTag: string, remoteTag: string): string {
  return `${callId}\n${localTag}\n${remoteTag}`;
}

function destinationOf(flow: Flow): Destination {
  return { protocol: flow.protocol, address: flow.remoteAddress, port: flow.remotePort, connectionId: flow.connectionId };
}

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** RFC 3680 §5.4: the AOR's registration as application/reginfo+xml, full state. */
export function reginfo(
  aor: string,
  version: number,
  events: ReadonlyMap<string, ContactEvent>,
  bindings: readonly Binding[],
  ended: ReadonlyArray<{ binding: Binding; event: ContactEvent }>,
  now: number,
): string {
  const state = bindings.length > 0 ? 'active' : ended.length > 0 ? 'terminated' : 'init';
  const contacts = [
    ...bindings.map((b) => contactXml(b, 'active', events.get(b.id) ?? 'registered', Math.max(0, Math.round((b.expiresAt - now) / 1000)))),
    ...ended.filter((e) => !bindings.some((b) => b.id === e.binding.id)).map((e) => contactXml(e.binding, 'terminated', e.event, 0)),
  ];
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="${version}" state="full">`,
    `  <registration aor="${xml(aor)}" id="${xml(registrationId(aor))}" state="${state}">`,
    ...contacts,
    '  </registration>',
    '</reginfo>',
    '',
  ].join('\n');
}

function contactXml(b: Binding, state: 'active' | 'terminated', event: ContactEvent, expires: number): string {
  let uri = b.contact;
  if (b.push) {
    try {
      uri = stripAllPushParams(parseSipUriStrict(b.contact)).toString();
    } catch {
      uri = b.contact.replace(/;pn-[^;>?]*/gi, '');
    }
  }
  const params = [
    // As the Contact carried it: `<urn:uuid:…>`, angle brackets included (RFC 5626 §4.1).
    ...(b.instanceId !== undefined ? [`      <unknown-param name="+sip.instance">${xml(b.instanceId.startsWith('<') ? b.instanceId : `<${b.instanceId}>`)}</unknown-param>`] : []),
    ...(b.push ? [`      <unknown-param name="pn-provider">${xml(b.push.provider)}</unknown-param>`] : []),
  ];
  const q = b.q !== undefined ? ` q="${b.q}"` : '';
  return [
    `    <contact id="${xml(b.id)}" state="${state}" event="${event}"${state === 'active' ? ` expires="${expires}"` : ''}${q} callid="${xml(b.callId)}">`,
    `      <uri>${xml(uri)}</uri>`,
    ...params,
    '    </contact>',
  ].join('\n');
}

/** A stable id for the registration element of an AOR (RFC 3680 §5.4.1). */
function registrationId(aor: string): string {
  return `r${hash40(aor)}`;
}
