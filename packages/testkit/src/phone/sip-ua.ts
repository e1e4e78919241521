/**
 * A small SIP user agent on pushcall's own stack: what a phone app's SIP engine does,
 * enough to be a faithful peer in tests, the demo and the fleet. It registers with RFC 8599
 * Contact parameters (digest auth), answers or rejects INVITEs, handles CANCEL with its
 * Reason, BYE and MESSAGE, and places calls. It implements the client SDK's SipPort.
 *
 * Every request goes to the configured server (an outbound proxy, as phones do).
 * `sleep()` closes the socket like a suspended app; `register()` after a wake opens a
 * new one on a new port, which is exactly what the server must cope with.
 */

import {
  type AuthValue,
  type Clock,
  type Flow,
  type InviteClientTransaction,
  type InviteServerTransaction,
  type ServerTransaction,
  type SipRequest,
  type SipResponse,
  TransactionLayer,
  type TransactionLayerUser,
  createResponse,
  createTransport,
  header,
  newBranch,
  newCallId,
  newTag,
  SipRequest as Request,
  systemClock,
} from '@pushcall/sip';
import type {
  IncomingInvite,
  PushContactParams,
  RegistrationState,
  SipCallState,
  SipDelegate,
  SipPort,
  SipReason,
} from '@pushcall/client';
import { digestAuthorization, pickChallenge } from './digest-client.js';

export interface SipUaOptions {
  user: string;
  domain: string;
  password?: string;
  server: { protocol: 'udp' | 'tcp' | 'ws'; address: string; port: number };
  /** RFC 5626 instance id (urn:uuid:...): the device's identity across wakes. */
  instanceId: string;
  expires?: number;
  displayName?: string;
  clock?: Clock;
  userAgent?: string;
  /** Answer every INVITE automatically (caller-side peers, desk phones). */
  autoAnswerMs?: number;
  /** Waking from sleep takes this long before the first packet (launch, radio, DNS). */
  wakeDelayMs?: number;
  /** The loopback address to send from (default 127.0.0.1): another source address for the server. */
  localAddress?: string;
}

interface Dialog {
  callId: string;
  localTag: string;
  remoteTag: string;
  localUri: string;
  remoteUri: string;
  remoteTarget: string;
  routeSet: string[];
  localCSeq: number;
  outgoing: boolean;
}

interface IncomingCall {
  invite: SipRequest;
  tx: InviteServerTransaction;
  localTag: string;
  answered: boolean;
  ended: boolean;
}

export interface UaEvents {
  onMessage?(from: string, body: string, callId: string): void;
  onRequest?(request: SipRequest): void;
}

const SDP = (video: boolean) =>
  Buffer.from(
    ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 40000 RTP/AVP 0', 'a=sendrecv', ...(video ? ['m=video 40002 RTP/AVP 96'] : [])].join('\r\n') + '\r\n',
  );

export class SipUserAgent implements SipPort, TransactionLayerUser {
  readonly options: SipUaOptions;
  private readonly clock: Clock;
  private layer: TransactionLayer | undefined;
  private delegate: SipDelegate | undefined;
  readonly events: UaEvents = {};
  private pushParams: PushContactParams | undefined;
  private registerCallId = newCallId();
  private registerCSeq = 1;
  private readonly incoming = new Map<string, IncomingCall>();
  private readonly dialogs = new Map<string, Dialog>();
  private readonly outgoing = new Map<string, { tx: InviteClientTransaction; request: SipRequest }>();
  /** Calls whose 2xx has been ACKed (stops 2xx retransmission). */
  private readonly acked = new Set<string>();
  private readonly acks = new Map<string, SipRequest>();
  /** Everything received, for assertions. */
  readonly received: SipRequest[] = [];
  registered = false;

  constructor(options: SipUaOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
  }

  get aor(): string {
    return `sip:${this.options.user}@${this.options.domain}`;
  }

  get awake(): boolean {
    return this.layer !== undefined;
  }

  setDelegate(delegate: SipDelegate): void {
    this.delegate = delegate;
  }

  /** Open a fresh socket (a new local port), as an app does when it resumes. */
  async open(): Promise<void> {
    if (this.layer) return;
    const layer = new TransactionLayer(this, { clock: this.clock });
    const p = this.options.server.protocol;
    const transport = layer.addTransport((events) => createTransport({ protocol: p, address: this.options.localAddress ?? '127.0.0.1', port: 0, clock: this.clock }, events));
    if (p === 'udp') await transport.listen();
    this.layer = layer;
  }

  /** The app is suspended: its socket is gone; nothing can reach it. */
  async sleep(): Promise<void> {
    const layer = this.layer;
    this.layer = undefined;
    this.registered = false;
    await layer?.close();
  }

  private get contactHost(): string {
    const t = this.layer?.listeners[0];
    const address = this.options.localAddress ?? '127.0.0.1';
    return t && t.localPort ? `${address}:${t.localPort}` : address;
  }

  private contactUri(withPush: boolean): string {
    const transport = this.options.server.protocol === 'udp' ? '' : `;transport=${this.options.server.protocol}`;
    let uri = `sip:${this.options.user}@${this.contactHost}${transport}`;
    if (withPush && this.pushParams) {
      const p = this.pushParams;
      uri += `;pn-provider=${p.pnProvider};pn-prid=${p.pnPrid}`;
      if (p.pnParam) uri += `;pn-param=${p.pnParam}`;
      for (const [k, v] of Object.entries(p.extra ?? {})) uri += `;${k}=${v}`;
    }
    return uri;
  }

  private destination() {
    const s = this.options.server;
    return { protocol: s.protocol, address: s.address, port: s.port } as const;
  }

  // ----- registration ------------------------------------------------------------------

  register(params: PushContactParams | undefined): void {
    if (params) this.pushParams = params;
    void this.registerAsync(this.options.expires ?? 600).catch((error: unknown) => {
      this.delegate?.onRegistration({ state: 'failed', reason: (error as Error).message });
    });
  }

  /** RFC 5626 §3.5.1 CRLF keep-alive ping on the flow to the server (a foreground app's habit). */
  async keepAlive(): Promise<void> {
    if (!this.layer) throw new Error('user agent is asleep');
    await this.layer.send(Buffer.from('\r\n\r\n'), this.destination());
  }

  unregister(): void {
    void this.registerAsync(0).catch(() => undefined);
  }

  /** REGISTER and resolve with the final response (after answering one 401). */
  async registerAsync(expires: number): Promise<SipResponse> {
    if (!this.layer && this.options.wakeDelayMs) {
      const delay = this.options.wakeDelayMs;
      await new Promise<void>((resolve) => this.clock.setTimeout(resolve, delay));
    }
    await this.open();
    const withPush = expires > 0;
    const build = (auth?: string) => {
      const contact = `<${this.contactUri(withPush)}>;+sip.instance="<${this.options.instanceId}>";reg-id=1`;
      const headers = [
        header('Max-Forwards', '70'),
        header('From', `<${this.aor}>;tag=${newTag()}`),
        header('To', `<${this.aor}>`),
        header('Call-ID', this.registerCallId),
        header('CSeq', `${this.registerCSeq++} REGISTER`),
        header('Contact', contact),
        header('Expires', String(expires)),
        header('Supported', 'path, outbound'),
        header('User-Agent', this.options.userAgent ?? 'pushcall-testkit'),
      ];
      if (auth) headers.push(header('Authorization', auth));
      return new Request('REGISTER', `sip:${this.options.domain}`, headers);
    };
    let response = await this.send(build());
    if (response.status === 401 && this.options.password) {
      const challenge = pickChallenge(response.authHeaders('www-authenticate'));
      if (challenge) response = await this.send(build(digestAuthorization(challenge, this.options.user, this.options.password, 'REGISTER', `sip:${this.options.domain}`)));
    }
    const state: RegistrationState =
      response.status >= 200 && response.status < 300
        ? expires > 0
          ? { state: 'registered' }
          : { state: 'unregistered' }
        : { state: 'failed', code: response.status, reason: response.reason };
    this.registered = state.state === 'registered';
    this.delegate?.onRegistration(state);
    return response;
  }

  /** Send a request in a new client transaction; resolves with the final response. */
  private send(request: SipRequest, onProvisional?: (r: SipResponse) => void): Promise<SipResponse> {
    const layer = this.layer;
    if (!layer) return Promise.reject(new Error('user agent is asleep'));
    return new Promise((resolve, reject) => {
      layer.request(request, this.destination(), {
        onResponse: (r) => {
          if (r.status < 200) onProvisional?.(r);
          else resolve(r);
        },
        onTimeout: () => reject(new Error(`${request.method} timed out`)),
        onTransportError: (_tx, e) => reject(e instanceof Error ? e : new Error(String(e))),
      });
    });
  }

  // ----- incoming ------------------------------------------------------------------------

  onRequest(request: SipRequest, tx: ServerTransaction): void {
    this.received.push(request);
    this.events.onRequest?.(request);
    const callId = request.callId;
    switch (request.method) {
      case 'INVITE': {
        if (request.to.tag) {
          tx.respond(createResponse(request, 200, { body: SDP(false), contentType: 'application/sdp', headers: [['Contact', `<${this.contactUri(false)}>`]] }));
          return;
        }
        const call: IncomingCall = { invite: request, tx: tx as InviteServerTransaction, localTag: newTag(), answered: false, ended: false };
        this.incoming.set(callId, call);
        tx.respond(createResponse(request, 180, { toTag: call.localTag, headers: [['Contact', `<${this.contactUri(false)}>`]] }));
        const info: IncomingInvite = {
          callId,
          fromUri: request.from.uri.toString(),
          fromDisplayName: request.from.displayName,
          toUri: request.to.uri.toString(),
          video: /\bm=video\b/.test(request.body.toString('latin1')),
        };
        this.delegate?.onInvite(info);
        if (this.options.autoAnswerMs !== undefined) {
          this.clock.setTimeout(() => this.answer(callId, { video: false }), this.options.autoAnswerMs);
        }
        return;
      }
      case 'BYE': {
        tx.respond(createResponse(request, this.dialogs.has(callId) ? 200 : 481));
        this.forgetCall(callId);
        if (this.dialogs.delete(callId)) this.delegate?.onBye(callId);
        return;
      }
      case 'MESSAGE':
        tx.respond(createResponse(request, 200));
        this.events.onMessage?.(request.from.uri.toString(), request.body.toString('utf8'), callId);
        return;
      case 'OPTIONS':
        tx.respond(createResponse(request, 200));
        return;
      default:
        tx.respond(createResponse(request, 501));
    }
  }

  onCancel(cancel: SipRequest, tx: ServerTransaction, invite: InviteServerTransaction | undefined): void {
    this.received.push(cancel);
    const call = this.incoming.get(cancel.callId);
    if (!invite || !call || call.answered || call.ended) {
      tx.respond(createResponse(cancel, call ? 200 : 481));
      return;
    }
    tx.respond(createResponse(cancel, 200));
    call.ended = true;
    invite.respond(createResponse(call.invite, 487, { toTag: call.localTag }));
    const reasons: SipReason[] = cancel.reasons.map((r) => ({ protocol: r.protocol, cause: r.cause, text: r.text }));
    this.delegate?.onCancel(cancel.callId, reasons);
  }

  onAck(ack: SipRequest): void {
    this.received.push(ack);
    this.acked.add(ack.callId);
  }

  // ----- SipPort actions ---------------------------------------------------------------

  answer(callId: string, _options?: { readonly video: boolean }): void {
    const call = this.incoming.get(callId);
    if (!call || call.answered || call.ended) {
      this.delegate?.onCallState(callId, { state: 'failed', reason: 'no such call' });
      return;
    }
    call.answered = true;
    const invite = call.invite;
    const ok = createResponse(invite, 200, {
      toTag: call.localTag,
      body: SDP(false),
      contentType: 'application/sdp',
      headers: [['Contact', `<${this.contactUri(false)}>`], ...invite.getAll('record-route').map((r) => ['Record-Route', r] as [string, string])],
    });
    call.tx.respond(ok);
    // RFC 3261 §13.3.1.4: the UAS core retransmits the 2xx (T1 doubling to T2) until the
    // ACK arrives, and ends the dialog with a BYE if none came within 64*T1.
    const T1 = 500;
    const T2 = 4000;
    const started = this.clock.now();
    const retransmit = (interval: number) => {
      this.clock.setTimeout(() => {
        if (this.acked.has(callId) || !this.dialogs.has(callId)) return;
        if (this.clock.now() - started >= 64 * T1) {
          this.hangup(callId);
          return;
        }
        call.tx.respond(ok);
        retransmit(Math.min(interval * 2, T2));
      }, interval);
    };
    retransmit(T1);
    this.dialogs.set(callId, {
      callId,
      localTag: call.localTag,
      remoteTag: invite.from.tag ?? '',
      localUri: invite.to.uri.toString(),
      remoteUri: invite.from.uri.toString(),
      remoteTarget: contactOf(invite) ?? invite.from.uri.toString(),
      routeSet: invite.values('record-route'),
      localCSeq: 1,
      outgoing: false,
    });
    this.delegate?.onCallState(callId, { state: 'answered' });
  }

  reject(callId: string, code: number): void {
    const call = this.incoming.get(callId);
    if (!call || call.answered || call.ended) return;
    call.ended = true;
    call.tx.respond(createResponse(call.invite, code, { toTag: call.localTag }));
  }

  hangup(callId: string): void {
    const dialog = this.dialogs.get(callId);
    if (dialog) {
      this.dialogs.delete(callId);
      this.forgetCall(callId);
      void this.send(this.inDialog(dialog, 'BYE')).catch(() => undefined);
      return;
    }
    const out = this.outgoing.get(callId);
    if (out && this.layer) {
      this.layer.cancel(out.tx);
      return;
    }
    this.reject(callId, 486);
  }

  private inDialog(dialog: Dialog, method: string): SipRequest {
    const headers = [
      header('Max-Forwards', '70'),
      header('From', `<${dialog.localUri}>;tag=${dialog.localTag}`),
      header('To', `<${dialog.remoteUri}>;tag=${dialog.remoteTag}`),
      header('Call-ID', dialog.callId),
      header('CSeq', `${++dialog.localCSeq} ${method}`),
    ];
    for (const r of dialog.routeSet) headers.push(header('Route', r));
    return new Request(method, dialog.remoteTarget, headers);
  }

  invite(target: string, options: { readonly video: boolean }): { readonly callId: string } {
    const callId = newCallId();
    void this.call(target, { video: options.video, callId }).catch(() => undefined);
    return { callId };
  }

  /** Place a call; resolves with the final response (ACKs a 2xx and keeps the dialog). */
  async call(target: string, options: { video?: boolean; callId?: string; headers?: Array<[string, string]> } = {}): Promise<SipResponse> {
    await this.open();
    const callId = options.callId ?? newCallId();
    const fromTag = newTag();
    let cseq = 1;
    const build = (auth?: string) => {
      const headers = [
        header('Max-Forwards', '70'),
        header('From', `${this.options.displayName ? `"${this.options.displayName}" ` : ''}<${this.aor}>;tag=${fromTag}`),
        header('To', `<${target}>`),
        header('Call-ID', callId),
        header('CSeq', `${cseq++} INVITE`),
        header('Contact', `<${this.contactUri(false)}>`),
        header('Content-Type', 'application/sdp'),
      ];
      for (const [n, v] of options.headers ?? []) headers.push(header(n, v));
      if (auth) headers.push(header('Proxy-Authorization', auth));
      return new Request('INVITE', target, headers, SDP(options.video ?? false));
    };
    const attempt = (request: SipRequest) =>
      new Promise<SipResponse>((resolve, reject) => {
        const layer = this.layer;
        if (!layer) return reject(new Error('asleep'));
        const tx = layer.request(request, this.destination(), {
          onResponse: (r) => {
            if (r.status < 200) this.delegate?.onCallState(callId, { state: 'progress', code: r.status });
            else if (r.status < 300 && ackSent) void this.resendAck(callId);
            else resolve(r);
          },
          onTimeout: () => reject(new Error('INVITE timed out')),
          onTransportError: (_t, e) => reject(e as Error),
        }) as InviteClientTransaction;
        this.outgoing.set(callId, { tx, request });
      });
    let ackSent = false;
    let response = await attempt(build());
    if ((response.status === 407 || response.status === 401) && this.options.password) {
      const challenge = pickChallenge(response.authHeaders(response.status === 407 ? 'proxy-authenticate' : 'www-authenticate') as AuthValue[]);
      if (challenge) response = await attempt(build(digestAuthorization(challenge, this.options.user, this.options.password, 'INVITE', target)));
    }
    this.outgoing.delete(callId);
    if (response.status >= 200 && response.status < 300) {
      const dialog: Dialog = {
        callId,
        localTag: fromTag,
        remoteTag: response.to.tag ?? '',
        localUri: this.aor,
        remoteUri: target,
        remoteTarget: contactOf(response) ?? target,
        routeSet: response.values('record-route').reverse(),
        localCSeq: cseq,
        outgoing: true,
      };
      this.dialogs.set(callId, dialog);
      const ack = this.inDialog(dialog, 'ACK');
      ack.set('CSeq', `${cseq - 1} ACK`);
      dialog.localCSeq = cseq - 1;
      if (this.layer) {
        this.layer.addVia(ack, this.layer.requireTransport(this.destination()), newBranch());
        this.acks.set(callId, ack);
        ackSent = true;
        await this.layer.sendStateless(ack, this.destination());
      }
      this.delegate?.onCallState(callId, { state: 'established' });
    } else {
      this.delegate?.onCallState(callId, { state: 'failed', code: response.status, reason: response.reason });
    }
    return response;
  }

  /** A dialog ended: its 2xx/ACK retransmission state goes with it. */
  private forgetCall(callId: string): void {
    this.acked.delete(callId);
    this.acks.delete(callId);
  }

  /** A 2xx came again: our ACK was lost (RFC 3261 §13.2.2.4): send the same ACK again. */
  private async resendAck(callId: string): Promise<void> {
    const ack = this.acks.get(callId);
    if (ack && this.layer) await this.layer.sendStateless(ack, this.destination()).catch(() => undefined);
  }

  /** Cancel an outgoing call that is still ringing (the caller hangs up). */
  cancelCall(callId: string, reason?: string): boolean {
    const out = this.outgoing.get(callId);
    if (!out || !this.layer) return false;
    return this.layer.cancel(out.tx, reason ? [['Reason', reason]] : []);
  }

  /** Send a MESSAGE (RFC 3428); resolves with the final response. */
  async message(target: string, text: string): Promise<SipResponse> {
    await this.open();
    const build = (auth?: string) => {
      const headers = [
        header('Max-Forwards', '70'),
        header('From', `<${this.aor}>;tag=${newTag()}`),
        header('To', `<${target}>`),
        header('Call-ID', newCallId()),
        header('CSeq', '1 MESSAGE'),
        header('Content-Type', 'text/plain;charset=utf-8'),
      ];
      if (auth) headers.push(header('Proxy-Authorization', auth));
      return new Request('MESSAGE', target, headers, Buffer.from(text, 'utf8'));
    };
    let response = await this.send(build());
    if (response.status === 407 && this.options.password) {
      const challenge = pickChallenge(response.authHeaders('proxy-authenticate'));
      if (challenge) response = await this.send(build(digestAuthorization(challenge, this.options.user, this.options.password, 'MESSAGE', target)));
    }
    return response;
  }

  hold(): void {}
  mute(): void {}
  setAudioEnabled(): void {}

  onStrayResponse(): void {}
  onParseError(): void {}
  onFlowClosed(_flow: Flow): void {}

  async close(): Promise<void> {
    await this.sleep();
  }

  /** Tests: the call's state as seen by this UA. */
  callState(callId: string): SipCallState | undefined {
    if (this.dialogs.has(callId)) return { state: 'established' };
    const c = this.incoming.get(callId);
    if (!c) return undefined;
    return c.ended ? { state: 'failed' } : c.answered ? { state: 'answered' } : { state: 'progress', code: 180 };
  }
}

function contactOf(message: SipRequest | SipResponse): string | undefined {
  const contacts = message.contacts;
  if (contacts === '*' || contacts.length === 0) return undefined;
  return contacts[0].uri.toString();
}
