/**
 * The transaction layer (RFC 3261 §17) sitting on the transports (§18): parses inbound
 * bytes, stamps received/rport on requests (§18.2.1, RFC 3581), matches requests and
 * responses to transactions (§17.1.3, §17.2.3, with the RFC 2543 fallback), absorbs
 * retransmissions, and hands new requests, CANCELs, 2xx-ACKs and stray responses to the
 * core above it. It also sends: through client transactions or statelessly.
 */

import { type SipParseError, TransportError, isSipError } from '../errors.js';
import { createInviteCompanion, createResponse } from '../message/factory.js';
import { Via } from '../message/headers.js';
import { type SipMessage, SipRequest, type SipResponse } from '../message/message.js';
import { type AnswerableParseError, type ParseLimits, parseMessage } from '../message/parser.js';
import type { Flow, InboundMessage, Transport, TransportEvents, TransportProtocol } from '../transport/types.js';
import { VIA_TRANSPORT } from '../transport/types.js';
import { type Clock, systemClock } from '../util/clock.js';
import { newBranch } from '../util/random.js';
import { detachString, hash40Joined } from '../util/strings.js';
import { CompletedResponses } from './completed-responses.js';
import {
  type ClientTransaction,
  type ClientTransactionUser,
  InviteClientTransaction,
  NonInviteClientTransaction,
  clientKey,
} from './client-transactions.js';
import {
  InviteServerTransaction,
  NonInviteServerTransaction,
  type ServerTransaction,
  type ServerTransactionUser,
} from './server-transactions.js';
import { DEFAULT_TIMERS, type TimerConfig } from './timers.js';
import { type Destination, type Transaction, type TransactionContext, type TransactionSender, TransactionState } from './transaction.js';

/** What `sendStateless` returns for a message already handed to the network. */
const SENT: Promise<string | undefined> = Promise.resolve(undefined);

/** Sends a response to a request answered without a transaction (§8.2.7), to where §18.2.2 says. */
export type StatelessReply = (response: SipResponse) => void;

/** What the core (registrar, proxy, UA) implements. */
export interface TransactionLayerUser {
  /** A new request (not ACK, not CANCEL) with its server transaction. */
  onRequest(request: SipRequest, transaction: ServerTransaction, flow: Flow): void;
  /** A CANCEL (§9.2): `invite` is the INVITE server transaction it targets, if any. */
  onCancel(cancel: SipRequest, transaction: ServerTransaction, invite: InviteServerTransaction | undefined, flow: Flow): void;
  /**
   * Requests to answer without a server transaction (RFC 3261 §8.2.7, a stateless UAS), e.g.
   * REGISTER: no transaction, no Timer J copy of the response. Every retransmission then
   * reaches the TU again, which must answer it as it answered the first (a registrar that is
   * idempotent for a repeated Call-ID/CSeq does). Such requests go to `onStatelessRequest`,
   * with `request.localTag` set to a To-tag derived from the request, so the answer to a
   * retransmission carries the same tag (§8.2.7).
   */
  answerStatelessly?(request: SipRequest): boolean;
  onStatelessRequest?(request: SipRequest, reply: StatelessReply, flow: Flow): void;
  /** An ACK that matched no transaction: the ACK for a 2xx (end to end). */
  onAck(ack: SipRequest, flow: Flow): void;
  /** A response that matched no client transaction (§17.1.3; a proxy forwards it, §16.11). */
  onStrayResponse?(response: SipResponse, flow: Flow): void;
  onFlowClosed?(flow: Flow): void;
  /** Malformed input (after a 400 was sent when possible). */
  onParseError?(error: unknown, flow: Flow, answered: boolean): void;
  onWarning?(warning: { code: string; message: string; flow?: Flow }): void;
}

export interface TransactionLayerOptions {
  clock?: Clock;
  timers?: Partial<TimerConfig>;
  limits?: Partial<ParseLimits>;
  /** Host written in Via/Record-Route when a transport is bound to a wildcard address. */
  advertisedHost?: string;
  /** Completed non-INVITE UDP responses kept per generation (Timer J cache); default 50,000. */
  completedCacheLimit?: number;
}

export type TransportFactory = (events: TransportEvents) => Transport;

export class TransactionLayer implements TransactionSender {
  readonly clock: Clock;
  readonly timers: TimerConfig;
  private readonly limits: Partial<ParseLimits> | undefined;
  private readonly advertisedHost: string | undefined;
  private readonly transports: Transport[] = [];
  private readonly serverTransactions = new Map<string, ServerTransaction>();
  /**
   * Completed non-INVITE server transactions over UDP, as final-response bytes, in two
   * generations rotated every 64*T1: an entry lives between one and two Timer J periods.
   */
  private readonly completed: CompletedResponses;
  private rotation: { cancel(): void } | undefined;
  private readonly clientTransactions = new Map<string, ClientTransaction>();
  private readonly ctx: TransactionContext;
  user: TransactionLayerUser;

  constructor(user: TransactionLayerUser, options: TransactionLayerOptions = {}) {
    this.user = user;
    this.clock = options.clock ?? systemClock;
    this.timers = { ...DEFAULT_TIMERS, ...options.timers };
    this.limits = options.limits;
    this.advertisedHost = options.advertisedHost;
    this.completed = new CompletedResponses(options.completedCacheLimit ?? 50_000);
    this.ctx = { clock: this.clock, timers: this.timers, sender: this };
  }

  /** Attach a transport; the factory receives the layer's event handlers. */
  addTransport(factory: TransportFactory): Transport {
    const transport = factory({
      onMessage: (message) => this.receive(message),
      onFlowClosed: (flow) => this.user.onFlowClosed?.(flow),
      onWarning: (warning) => this.user.onWarning?.(warning),
    });
    this.transports.push(transport);
    return transport;
  }

  get listeners(): readonly Transport[] {
    return this.transports;
  }

  transportFor(protocol: TransportProtocol, family?: 4 | 6): Transport | undefined {
    let fallback: Transport | undefined;
    for (const t of this.transports) {
      if (t.protocol !== protocol) continue;
      const isV6 = t.localAddress.includes(':');
      if (family === undefined || (family === 6) === isV6) return t;
      fallback ??= t;
    }
    return fallback;
  }

  /** The transport of `protocol` for the family of `address` (an IPv6 address has a ':'). */
  transportForAddress(protocol: TransportProtocol, address: string): Transport | undefined {
    return this.transportFor(protocol, address.includes(':') ? 6 : 4);
  }

  /** The host:port this node writes into Via / Record-Route for a transport. */
  sentBy(transport: Transport): { host: string; port: number } {
    let host = transport.localAddress;
    if (host === '0.0.0.0' || host === '::') host = this.advertisedHost ?? '127.0.0.1';
    if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
    return { host, port: transport.localPort };
  }

  get serverTransactionCount(): number {
    return this.serverTransactions.size;
  }

  get clientTransactionCount(): number {
    return this.clientTransactions.size;
  }

  // ----- inbound -------------------------------------------------------------------------

  receive({ data, flow }: InboundMessage): void {
    let message: SipMessage;
    try {
      message = parseMessage(data, { stream: flow.protocol === 'tcp' || flow.protocol === 'tls', limits: this.limits });
    } catch (error) {
      this.rejectMalformed(error, flow);
      return;
    }
    if (message instanceof SipRequest) this.receiveRequest(message, flow);
    else this.receiveResponse(message as SipResponse, flow);
  }

  private rejectMalformed(error: unknown, flow: Flow): void {
    let answered = false;
    const partial = (error as AnswerableParseError).request;
    if (isSipError(error) && partial && partial.method !== 'ACK') {
      try {
        const reason = (error as SipParseError).reason ?? 'Bad Request';
        // Stamped first: the 400 copies the Via, and tells a UA behind NAT its address (RFC 3581).
        this.stampVia(partial, flow);
        const status = error.code === 'SIP_ERR_LIMIT' ? 513 : ((error as SipParseError).status ?? 400);
        const response = createResponse(partial, status, { reason: sanitizeReason(reason) });
        this.deliver(response.toBuffer(), this.responseDestination(partial, flow));
        answered = true;
      } catch {
        // Not enough of the request was readable to answer: drop it (§16.3, §18.3).
      }
    }
    this.user.onParseError?.(error, flow, answered);
  }

  private receiveRequest(request: SipRequest, flow: Flow): void {
    if (this.user.onStatelessRequest && this.user.answerStatelessly?.(request)) {
      this.receiveStateless(request, flow);
      return;
    }
    const top = request.via;
    const key = serverKey(request, top);

    const existing = this.serverTransactions.get(key);
    if (existing) {
      // RFC 6026 §7.1: an ACK for a 2xx is end to end even when it matches the INVITE's
      // transaction (a UA that reused the branch, an RFC 2543 peer): it goes to the core.
      if (request.method === 'ACK' && existing.state === TransactionState.Accepted) {
        this.stampVia(request, flow);
        this.user.onAck(request, flow);
        return;
      }
      existing.receiveRequest(request);
      return;
    }
    const completed = this.completed.get(key);
    if (completed) {
      // §17.2.2: a retransmission in Completed gets the final response again, sent where
      // the first one went (the same Via, as received now).
      this.stampVia(request, flow);
      this.deliver(completed, this.responseDestination(request, flow));
      return;
    }
    this.stampVia(request, flow);
    if (request.method === 'ACK') {
      // Either absorbed above (non-2xx ACK) or end to end (2xx ACK, §17.1.1.3 / RFC 6026).
      this.user.onAck(request, flow);
      return;
    }
    const destination = this.responseDestination(request, flow);
    const noUser: ServerTransactionUser = {};
    if (request.method === 'INVITE') {
      const tx = new InviteServerTransaction(key, request, destination, this.ctx, noUser);
      this.serverTransactions.set(key, tx);
      this.user.onRequest(request, tx, flow);
      return;
    }
    const tx = new NonInviteServerTransaction(key, request, destination, this.ctx, noUser);
    this.serverTransactions.set(key, tx);
    if (request.method === 'CANCEL') {
      // §9.2: the CANCEL matches the INVITE transaction with the same key but method INVITE.
      const invite = this.serverTransactions.get(serverKey(request, top, 'INVITE'));
      this.user.onCancel(request, tx, invite instanceof InviteServerTransaction ? invite : undefined, flow);
      return;
    }
    this.user.onRequest(request, tx, flow);
  }

  private receiveStateless(request: SipRequest, flow: Flow): void {
    this.stampVia(request, flow);
    request.localTag = statelessTag(request);
    const destination = this.responseDestination(request, flow);
    this.user.onStatelessRequest!(
      request,
      (response) => this.deliver(response.toBuffer(), destination),
      flow,
    );
  }

  private receiveResponse(response: SipResponse, flow: Flow): void {
    const branch = response.via.branch;
    const tx = branch ? this.clientTransactions.get(clientKey(branch, response.cseq.method)) : undefined;
    if (tx) tx.receiveResponse(response);
    else this.user.onStrayResponse?.(response, flow);
  }

  /**
   * §18.2.1: add `received` when the sent-by host differs from the source address;
   * RFC 3581 §4: fill an empty `rport` with the source port (and then always add received).
   */
  private stampVia(request: SipRequest, flow: Flow): void {
    const top = request.via;
    const wantsRport = top.params.has('rport');
    const sentByHost = top.host.startsWith('[') ? top.host.slice(1, -1) : top.host;
    const needsReceived = wantsRport || sentByHost !== flow.remoteAddress;
    // `received` is ours to write (§18.2.1): one the sender wrote itself would choose where
    // UDP responses go (responseDestination), to any address or host name it likes.
    if (!needsReceived && !top.params.has('received')) return;
    const via = top.clone();
    if (needsReceived) via.params.set('received', flow.remoteAddress);
    else via.params.delete('received');
    if (wantsRport) via.params.set('rport', String(flow.remotePort));
    request.replaceTopVia(via);
  }

  /** §18.2.2 with RFC 3581: where responses to this request go. */
  responseDestination(request: SipRequest, flow: Flow): Destination {
    if (flow.protocol === 'tcp' || flow.protocol === 'tls') {
      // §18.2.2: over the connection the request came on; should it be gone, a new one goes
      // to the source address and the sent-by port (default 5060/5061), where the peer
      // listens, not to the ephemeral port its connection came from.
      const port = request.via.port ?? (flow.protocol === 'tls' ? 5061 : 5060);
      return { protocol: flow.protocol, address: flow.remoteAddress, port, connectionId: flow.connectionId };
    }
    if (flow.protocol !== 'udp') {
      // WebSocket peers do not listen (RFC 7118 §5): only their connection reaches them.
      return { protocol: flow.protocol, address: flow.remoteAddress, port: flow.remotePort, connectionId: flow.connectionId };
    }
    const via = request.via;
    const rport = via.rport;
    const port = typeof rport === 'number' ? rport : (via.port ?? 5060);
    const address = via.received ?? flow.remoteAddress;
    return { protocol: 'udp', address, port };
  }

  // ----- outbound ------------------------------------------------------------------------

  /**
   * Send a request through a new client transaction. A top Via with a fresh branch is
   * added (RFC 3261 §8.1.1.7, §16.6 step 8) for the transport that will carry it.
   */
  request(request: SipRequest, destination: Destination, user: ClientTransactionUser, branch = newBranch()): ClientTransaction {
    const transport = this.requireTransport(destination);
    this.addVia(request, transport, branch);
    const tx =
      request.method === 'INVITE'
        ? new InviteClientTransaction(request, branch, destination, this.ctx, user)
        : new NonInviteClientTransaction(request, branch, destination, this.ctx, user);
    this.clientTransactions.set(tx.key, tx);
    tx.start();
    return tx;
  }

  /**
   * §9.1: CANCEL a pending INVITE client transaction. Sent once a provisional response has
   * arrived (deferred until then); `extraHeaders` carries e.g. an RFC 3326 Reason.
   */
  cancel(invite: InviteClientTransaction, extraHeaders: Array<[string, string]> = [], user: ClientTransactionUser = { onResponse() {} }): boolean {
    return invite.whenCancellable((tx) => {
      const cancel = createInviteCompanion(tx.request, 'CANCEL', tx.request.get('to') ?? '', extraHeaders);
      const ctx = new NonInviteClientTransaction(cancel, tx.branch, tx.destination, this.ctx, user);
      this.clientTransactions.set(ctx.key, ctx);
      ctx.start();
    });
  }

  /** Send without a transaction (ACK for 2xx, forwarded responses, §16.7 step 10). */
  sendStateless(message: SipMessage, destination: Destination): Promise<string | undefined> {
    const data = message.toBuffer();
    return this.sendNow(data, destination) ? SENT : this.send(data, destination);
  }

  /** Send now when the transport can (see Transport.sendNow); false: use send(). */
  sendNow(data: Buffer, destination: Destination): boolean {
    return this.transportForAddress(destination.protocol, destination.address)?.sendNow?.(destination.address, destination.port, data) ?? false;
  }

  /** Send a response with no one to tell if it fails (the peer retransmits: §17.2). */
  private deliver(data: Buffer, destination: Destination): void {
    if (!this.sendNow(data, destination)) void this.send(data, destination).catch(() => undefined);
  }

  /** Add a Via for the given destination's transport (stateless forwarding). */
  addVia(request: SipRequest, transport: Transport, branch: string): void {
    const { host, port } = this.sentBy(transport);
    const value = `SIP/2.0/${VIA_TRANSPORT[transport.protocol]} ${host}:${port};branch=${branch};rport`;
    request.prepend('Via', value);
  }

  requireTransport(destination: Destination): Transport {
    const transport = this.transportForAddress(destination.protocol, destination.address);
    if (!transport) throw new TransportError(`No ${destination.protocol} transport configured`);
    return transport;
  }

  async send(data: Buffer, destination: Destination): Promise<string | undefined> {
    const transport = this.requireTransport(destination);
    const flow = await transport.send(
      { address: destination.address, port: destination.port, connectionId: destination.connectionId, serverName: destination.serverName },
      data,
    );
    return flow.connectionId;
  }

  retire(key: string, response: Buffer): void {
    // Rotated early when full: bounded memory under flood. A retransmission older than the
    // cache reaches the TU again, which must (and the registrar does) treat it idempotently.
    this.completed.add(key, response);
    if (this.rotation === undefined) this.scheduleRotation();
  }

  private scheduleRotation(): void {
    this.rotation = this.clock.setTimeout(() => {
      if (this.completed.rotate()) this.scheduleRotation();
      else this.rotation = undefined;
    }, 64 * this.timers.T1);
  }

  get completedTransactionCount(): number {
    return this.completed.size;
  }

  release(transaction: Transaction): void {
    if (this.serverTransactions.get(transaction.key) === transaction) this.serverTransactions.delete(transaction.key);
    else if (this.clientTransactions.get(transaction.key) === transaction) this.clientTransactions.delete(transaction.key);
  }

  async listen(): Promise<void> {
    for (const t of this.transports) await t.listen();
  }

  async close(): Promise<void> {
    this.rotation?.cancel();
    this.completed.clear();
    for (const tx of [...this.serverTransactions.values(), ...this.clientTransactions.values()]) tx.terminate();
    await Promise.all(this.transports.map((t) => t.close()));
  }
}

/**
 * §17.2.3: with the magic cookie, match on branch + sent-by + method (ACK matches INVITE).
 * Without it (RFC 2543 peers), fall back to Request-URI, From tag, Call-ID, CSeq number and
 * top Via.
 */
export function serverKey(request: SipRequest, top: Via, methodOverride?: string): string {
  const method = methodOverride ?? (request.method === 'ACK' ? 'INVITE' : request.method);
  const branch = top.branch;
  if (branch && branch.startsWith('z9hG4bK')) {
    return detachString(`${branch}|${top.host.toLowerCase()}:${top.port ?? ''}|${method}`);
  }
  const viaText = `${top.transport} ${top.host}:${top.port ?? ''};${branch ?? ''}`;
  return detachString(`2543|${request.uriText}|${request.from.tag ?? ''}|${request.callId}|${request.cseq.seq}|${viaText}|${method}`);
}

/** Reason phrases must be TEXT-UTF8 without CR/LF (§25.1). */
function sanitizeReason(reason: string): string {
  return reason.replace(/[\r\n]+/g, ' ').slice(0, 120);
}

/**
 * §8.2.7: a stateless UAS derives its To-tag from the request, so that a retransmission is
 * answered with the same tag. The branch, Call-ID, From-tag and CSeq identify the request.
 */
function statelessTag(request: SipRequest): string {
  return `sl${hash40Joined([request.via.branch ?? '', request.callId, request.from.tag ?? '', String(request.cseq.seq)])}`;
}
