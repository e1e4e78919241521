/**
 * SIP.js adapter: the coordinator's SipPort on top of SIP.js 0.21 (`sip.js`), a real SIP
 * user agent over WebSocket (RFC 7118) for browsers and React Native.
 *
 * SIP.js is a peer, not a dependency: only its types are imported here, and the app passes
 * the runtime classes in (`import { UserAgent, Registerer, Inviter } from 'sip.js'`).
 * No Node-only imports: this file runs in a browser, in React Native and in Node.
 *
 * How SIP.js is bent to RFC 8599 (see docs/sipjs.md):
 * - SIP.js builds its Contact once, in the UserAgent constructor, from
 *   `contactName`/`contactParams`, and uses that same Contact in REGISTER, INVITE and in
 *   2xx answers. Putting the push parameters in `contactParams` therefore (a) leaks the
 *   push token to every callee and caller (RFC 8599 §13: a UA must not put `pn-*` other
 *   than `pn-purr` in non-REGISTER requests), and (b) cannot be changed for a new token
 *   without building a new UserAgent (new Contact, new registration). Re-creating only the
 *   Registerer does not help: it reads the UserAgent's Contact.
 * - So the adapter wraps `userAgent.contact.toString`: when SIP.js renders the Contact for a
 *   REGISTER (`toString({ register: true })`, used by `Registerer` for registrations,
 *   its own refreshes and unregistration), the current `pn-provider`/`pn-prid`/`pn-param`
 *   (+ extra) are added to the Contact URI; everywhere else the Contact is SIP.js's plain
 *   one. A new token takes effect on the next REGISTER of the same Registerer (same
 *   Call-ID, next CSeq, same `+sip.instance`/`reg-id`), which the registrar treats as a
 *   refresh of the same binding with new push data.
 * - The Registerer gets `regId` (default 1), so the REGISTER carries `+sip.instance` and
 *   `reg-id` (RFC 5626): after a wake the device registers from a new WebSocket and the
 *   registrar updates the same binding instead of adding one.
 * - Sleeping is the transport going away (the OS kills the socket of a suspended app;
 *   tests call `userAgent.transport.disconnect()`, or `userAgent.stop()` with
 *   `gracefulShutdown: false`). `register()` reconnects (or restarts a stopped UserAgent)
 *   before it sends the REGISTER. Do not `stop()` a UserAgent with the default
 *   `gracefulShutdown: true` when the app goes to the background: SIP.js then unregisters
 *   (Expires: 0) and the server can no longer wake the phone.
 *
 * Media: SIP.js needs a SessionDescriptionHandler. Apps use SIP.js's
 * `Web.defaultSessionDescriptionHandlerFactory()` in browsers (and with
 * react-native-webrtc's globals registered in React Native). Where there is no WebRTC
 * (Node, tests), `staticSessionDescriptionHandlerFactory()` below produces and accepts a
 * fixed SDP: signalling works, no media flows.
 */
import type {
  Bye,
  Cancel,
  Emitter,
  Invitation,
  Inviter,
  InviterOptions,
  Registerer,
  RegistererOptions,
  Session,
  SessionDescriptionHandler,
  SessionDescriptionHandlerFactory,
  UserAgent,
  UserAgentOptions,
} from 'sip.js';
import type {
  IncomingInvite,
  PushContactParams,
  RegistrationState,
  SipCallState,
  SipDelegate,
  SipPort,
} from '../ports.js';
import { parseReasonHeader } from '../reason.js';

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

/** The SIP.js runtime classes the adapter needs (pass `import * as SIP from 'sip.js'`). */
export interface SipJsClasses {
  readonly UserAgent: typeof UserAgent;
  readonly Registerer: typeof Registerer;
  readonly Inviter: typeof Inviter;
}

export interface SipJsAdapterOptions {
  /** SIP.js's classes: `{ UserAgent, Registerer, Inviter }` from 'sip.js'. */
  readonly sip: SipJsClasses;
  /**
   * A UserAgent the app configured (uri, transportOptions.server, credentials, SDH
   * factory). The adapter takes over its `delegate.onInvite` and its REGISTER Contact.
   * Either this or `userAgentOptions`.
   */
  readonly userAgent?: UserAgent;
  /** Or: options the adapter builds the UserAgent from (with `sip.UserAgent`). */
  readonly userAgentOptions?: UserAgentOptions;
  /**
   * Registerer options (expires, extraHeaders, registrar...). `regId` defaults to 1 so the
   * REGISTER carries `+sip.instance` and `reg-id` (RFC 5626); set `regId: 0` to omit them.
   */
  readonly registererOptions?: RegistererOptions;
  /** `sessionDescriptionHandlerOptions` for answers and outgoing calls; gets `{audio, video}` constraints. */
  readonly mediaConstraints?: (video: boolean) => object;
  /** Open / close the audio device (the coordinator calls it on CallKit's audio activation). */
  readonly onAudioEnabled?: (enabled: boolean) => void;
  /** Every error the adapter swallowed (a SIP.js promise that rejected), for logging. */
  readonly onError?: (error: unknown, context: string) => void;
}

/** What the registrar said in the last 2xx to a REGISTER. */
export interface RegistrationInfo {
  /** Raw `Feature-Caps` header values (RFC 6809), e.g. `*;+sip.pns="apns"`. */
  readonly featureCaps: readonly string[];
  /** The push notification services the registrar supports for us (`+sip.pns`). */
  readonly pns: readonly string[];
  /** Contact header values of the 2xx (every binding of the AOR). */
  readonly contacts: readonly string[];
  readonly statusCode: number;
}

// ---------------------------------------------------------------------------------------
// Helpers (exported for tests and for apps that build their own glue)
// ---------------------------------------------------------------------------------------

/** RFC 8599 Contact URI parameters, in order: pn-provider, pn-prid, pn-param, extra. */
export function pushContactUriParams(params: PushContactParams): string {
  let out = `;pn-provider=${params.pnProvider};pn-prid=${escapeParamValue(params.pnPrid)}`;
  if (params.pnParam) out += `;pn-param=${escapeParamValue(params.pnParam)}`;
  for (const [k, v] of Object.entries(params.extra ?? {})) out += v === '' ? `;${k}` : `;${k}=${escapeParamValue(v)}`;
  return out;
}

/**
 * RFC 3261 §25.1 `paramchar` = param-unreserved / unreserved / escaped. APNs tokens (hex)
 * and FCM tokens (`[A-Za-z0-9_:-]`) pass through untouched; anything else is %-escaped.
 */
export function escapeParamValue(value: string): string {
  return value.replace(/[^A-Za-z0-9\-_.!~*'()[\]/:&+$]/gu, (ch) => encodeURIComponent(ch));
}

/**
 * Insert URI parameters into a rendered Contact (`<sip:u@h;transport=ws;ob>;+sip.instance=...`)
 * right before the `>` that closes the URI. A Contact without angle brackets gets them.
 */
export function addContactUriParams(contact: string, uriParams: string): string {
  const open = contact.indexOf('<');
  if (open < 0) {
    const semi = contact.indexOf(';');
    const uri = semi < 0 ? contact : contact.slice(0, semi);
    const rest = semi < 0 ? '' : contact.slice(semi);
    return `<${uri.trim()}${uriParams}>${rest}`;
  }
  const close = contact.indexOf('>', open);
  if (close < 0) return contact + uriParams;
  return contact.slice(0, close) + uriParams + contact.slice(close);
}

/** The SDP offer has a video m-line with a non-zero port. */
export function sdpHasVideo(sdp: string | undefined): boolean {
  if (!sdp) return false;
  return /^m=video +(\d+)/m.test(sdp) && !/^m=video +0[ /]/m.test(sdp);
}

/** `+sip.pns` values of Feature-Caps headers (RFC 8599 §5.4 / RFC 6809). */
export function pnsFromFeatureCaps(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const v of values) {
    for (const m of v.matchAll(/\+sip\.pns="([^"]*)"/gi)) out.push(...m[1].split(',').map((s) => s.trim()).filter(Boolean));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// A static SessionDescriptionHandler (no WebRTC: Node, tests)
// ---------------------------------------------------------------------------------------

export interface StaticSdhOptions {
  /** Address written in o= and c=. Default 127.0.0.1. */
  readonly address?: string;
  /** Audio port. Default 40000 (video: port + 2). */
  readonly port?: number;
}

/** A SessionDescriptionHandler that exposes what it was asked, for tests. */
export interface StaticSessionDescriptionHandler extends SessionDescriptionHandler {
  readonly remoteSdp: string | undefined;
  readonly held: boolean;
  readonly senderEnabled: boolean;
  readonly receiverEnabled: boolean;
  enableSenderTracks(enable: boolean): void;
  enableReceiverTracks(enable: boolean): void;
}

/**
 * SessionDescriptionHandlerFactory producing a fixed PCMU (and, when the session asks for
 * video or the offer has video, VP8) SDP. `sessionDescriptionHandlerOptions.hold` gives
 * `a=sendonly` (RFC 3264 §8.4), as SIP.js's Web handler does. No media is sent.
 */
export function staticSessionDescriptionHandlerFactory(options: StaticSdhOptions = {}): SessionDescriptionHandlerFactory {
  const address = options.address ?? '127.0.0.1';
  const port = options.port ?? 40000;
  let version = 0;
  return () => {
    const sessionId = String(Math.floor(Math.random() * 1e9));
    let remote: string | undefined;
    let held = false;
    let senderEnabled = true;
    let receiverEnabled = true;
    const sdh: StaticSessionDescriptionHandler = {
      get remoteSdp() {
        return remote;
      },
      get held() {
        return held;
      },
      get senderEnabled() {
        return senderEnabled;
      },
      get receiverEnabled() {
        return receiverEnabled;
      },
      close() {},
      getDescription(sdhOptions?: { constraints?: object; hold?: boolean }) {
        held = sdhOptions?.hold === true;
        const constraints = sdhOptions?.constraints as { video?: unknown } | undefined;
        const video = constraints?.video !== undefined ? Boolean(constraints.video) : sdpHasVideo(remote);
        const dir = held ? 'a=sendonly' : 'a=sendrecv';
        const lines = [
          'v=0',
          `o=- ${sessionId} ${++version} IN IP4 ${address}`,
          's=-',
          `c=IN IP4 ${address}`,
          't=0 0',
          `m=audio ${port} RTP/AVP 0 101`,
          'a=rtpmap:0 PCMU/8000',
          'a=rtpmap:101 telephone-event/8000',
          dir,
          ...(video ? [`m=video ${port + 2} RTP/AVP 96`, 'a=rtpmap:96 VP8/90000', dir] : []),
        ];
        return Promise.resolve({ body: `${lines.join('\r\n')}\r\n`, contentType: 'application/sdp' });
      },
      hasDescription(contentType: string) {
        return contentType === 'application/sdp';
      },
      setDescription(sdp: string) {
        remote = sdp;
        return Promise.resolve();
      },
      sendDtmf() {
        return false;
      },
      enableSenderTracks(enable: boolean) {
        senderEnabled = enable;
      },
      enableReceiverTracks(enable: boolean) {
        receiverEnabled = enable;
      },
    };
    return sdh;
  };
}

// ---------------------------------------------------------------------------------------
// The adapter
// ---------------------------------------------------------------------------------------

/** SIP.js SessionState / RegistererState / UserAgentState values (string enums). */
const S = { Initial: 'Initial', Establishing: 'Establishing', Established: 'Established', Terminating: 'Terminating', Terminated: 'Terminated' } as const;

interface CallEntry {
  readonly callId: string;
  readonly session: Invitation | Inviter;
  readonly outgoing: boolean;
  /** We asked for the end (reject, hangup): no report. */
  endedLocally: boolean;
  /** Something was already reported as the end (CANCEL, BYE, failure). */
  endReported: boolean;
  answered: boolean;
  muted: boolean;
}

type ContactToString = (options?: { anonymous?: boolean; outbound?: boolean; register?: boolean }) => string;

export class SipJsAdapter implements SipPort {
  readonly userAgent: UserAgent;
  private readonly sip: SipJsClasses;
  private readonly options: SipJsAdapterOptions;
  private delegate: SipDelegate | undefined;
  private registerer: Registerer | undefined;
  private pushParams: PushContactParams | undefined;
  private readonly calls = new Map<string, CallEntry>();
  private registering: Promise<void> | undefined;
  private pending: 'register' | 'unregister' | undefined;
  /** The push params an unregister() retires once its REGISTER is out. */
  private retiredParams: PushContactParams | undefined = undefined;
  private waiters: Array<(state: RegistrationState) => void> = [];
  private audioEnabled = false;
  private disposed = false;
  private lastInfo: RegistrationInfo | undefined;
  private lastReported: RegistrationState['state'] | undefined;

  constructor(options: SipJsAdapterOptions) {
    if (!options.userAgent === !options.userAgentOptions) throw new TypeError('SipJsAdapter: pass exactly one of userAgent, userAgentOptions');
    this.options = options;
    this.sip = options.sip;
    this.userAgent = options.userAgent ?? new options.sip.UserAgent(options.userAgentOptions);
    const previous = this.userAgent.delegate ?? {};
    this.userAgent.delegate = { ...previous, onInvite: (invitation) => this.onInvitation(invitation) };
    this.hookContact();
  }

  /** The push params currently put in REGISTER Contacts. */
  get contactParams(): PushContactParams | undefined {
    return this.pushParams;
  }

  /** What the registrar answered last (Feature-Caps tell whether it will push, RFC 8599 §5.4). */
  get registration(): RegistrationInfo | undefined {
    return this.lastInfo;
  }

  /** The SIP.js session of a call, for media (remote streams, DTMF). */
  session(callId: string): Session | undefined {
    return this.calls.get(callId)?.session;
  }

  setDelegate(delegate: SipDelegate): void {
    this.delegate = delegate;
  }

  // ----- registration -------------------------------------------------------------------

  register(params: PushContactParams | undefined): void {
    if (params) this.pushParams = params;
    this.schedule('register');
  }

  unregister(): void {
    // The token is gone (invalidated): once the removal (which still names it, RFC 8599
    // §4.1.2) is out, a later REGISTER without new params must not bring it back.
    this.retiredParams = this.pushParams;
    this.schedule('unregister');
  }

  /** REGISTER now; resolves with the outcome of that REGISTER (or of a later one queued behind it). */
  registerAndWait(params?: PushContactParams): Promise<RegistrationState> {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.register(params);
    });
  }

  /**
   * REGISTERs are serialised (RFC 3261 §10.2: no new REGISTER before the previous one got
   * its final response; SIP.js throws RequestPendingError otherwise). A request made while
   * one is in flight is sent once it completes, with the then-current params.
   */
  private schedule(kind: 'register' | 'unregister'): void {
    if (this.disposed) return;
    if (this.registering) {
      this.pending = kind;
      return;
    }
    this.registering = this.run(kind)
      .catch((error: unknown) => {
        this.report({ state: 'failed', reason: errorText(error) });
        this.options.onError?.(error, kind);
      })
      .finally(() => {
        this.registering = undefined;
        const next = this.pending;
        this.pending = undefined;
        if (next) this.schedule(next);
      });
  }

  private async run(kind: 'register' | 'unregister'): Promise<void> {
    if (kind === 'register') return this.send(kind);
    try {
      await this.send(kind);
    } finally {
      // Unless new params came meanwhile (register() replaced them).
      if (this.retiredParams !== undefined && this.pushParams === this.retiredParams) this.pushParams = undefined;
      this.retiredParams = undefined;
    }
  }

  private async send(kind: 'register' | 'unregister'): Promise<void> {
    await this.connect();
    const registerer = this.currentRegisterer();
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (state: RegistrationState, info?: RegistrationInfo) => {
        if (settled) return;
        settled = true;
        clearTimeout(watchdog);
        off();
        if (info) this.lastInfo = info;
        this.report(state);
        resolve();
      };
      // SIP.js calls the request delegate on the plain paths only. A 423 is retried inside
      // SIP.js without it, and a 2xx without "our" Contact is dropped with just a state
      // change; so watch the state too (deferred: on the plain paths the state changes
      // first and the delegate, which carries the response, follows synchronously).
      const listener = (state: string) => {
        const defer = (fn: () => void) => void Promise.resolve().then(fn);
        if (state === 'Registered' && kind === 'register') defer(() => settle({ state: 'registered' }));
        if (state === 'Unregistered') defer(() => settle(kind === 'register' ? { state: 'failed', reason: 'REGISTER response dropped by SIP.js' } : { state: 'unregistered' }));
      };
      registerer.stateChange.addListener(listener);
      // And when SIP.js stops waiting for a final response: a 2xx without "our" Contact is
      // dropped with no state change at all when the Registerer was already Unregistered.
      // (`waiting`/`waitingChange` are private in 0.21; without them the watchdog decides.)
      const internals = registerer as unknown as { readonly waiting?: boolean; readonly waitingChange?: Emitter<boolean> };
      const onWaiting = (waiting: boolean) => {
        if (waiting) return;
        void Promise.resolve().then(() => {
          if (internals.waiting) return; // SIP.js sent a new REGISTER itself (423 retry)
          const ok = kind === 'register' ? registerer.state === 'Registered' : registerer.state !== 'Registered';
          if (ok) settle(kind === 'register' ? { state: 'registered' } : { state: 'unregistered' });
          else settle({ state: 'failed', reason: 'REGISTER response dropped by SIP.js (no Contact of ours, or no expires)' });
        });
      };
      internals.waitingChange?.addListener(onWaiting);
      const off = () => {
        registerer.stateChange.removeListener(listener);
        internals.waitingChange?.removeListener(onWaiting);
      };
      // Timer F is 32 s; SIP.js then reports a 408 itself. This only catches a lost path.
      const watchdog = setTimeout(() => settle({ state: 'failed', reason: 'no final response to REGISTER' }), 40_000);
      const requestDelegate = {
        onAccept: (response: { message: IncomingMessageLike }) =>
          settle(kind === 'register' ? { state: 'registered' } : { state: 'unregistered' }, infoFrom(response.message)),
        onReject: (response: { message: IncomingMessageLike }) =>
          settle({ state: 'failed', code: response.message.statusCode, reason: response.message.reasonPhrase }),
        onRedirect: (response: { message: IncomingMessageLike }) =>
          settle({ state: 'failed', code: response.message.statusCode, reason: response.message.reasonPhrase }),
      };
      const sent =
        kind === 'register'
          ? registerer.register({ requestDelegate })
          : // Same Contact (pn-* included; RFC 8599 §4.1.2 allows either) and, through
            // +sip.instance/reg-id, the same binding. SIP.js sends it even when it does not
            // think it is registered (after a restart), which is what we want.
            registerer.unregister({ requestDelegate });
      sent.catch((error: unknown) => {
        settled = true;
        clearTimeout(watchdog);
        off();
        reject(error);
      });
    });
  }

  private registererDefaults(): RegistererOptions {
    const o = this.options.registererOptions ?? {};
    return { ...o, regId: o.regId ?? 1, logConfiguration: false };
  }

  private currentRegisterer(): Registerer {
    if (!this.registerer || this.registerer.state === 'Terminated') {
      // A graceful UserAgent.stop() disposes (and unregisters) Registerers: start over.
      this.registerer = new this.sip.Registerer(this.userAgent, this.registererDefaults());
      this.registerer.stateChange.addListener((state) => {
        // Expired without a refresh, or a SIP.js-initiated refresh was refused.
        if (state === 'Unregistered' && this.lastReported === 'registered' && !this.registering) this.report({ state: 'unregistered' });
      });
    }
    return this.registerer;
  }

  /** Reconnect a dropped WebSocket, or start a stopped UserAgent (the wake). */
  private async connect(): Promise<void> {
    const ua = this.userAgent;
    if (ua.state !== 'Started') {
      await ua.start();
      return;
    }
    if (!ua.isConnected()) await ua.reconnect();
  }

  private report(state: RegistrationState): void {
    // A failure with a newer REGISTER queued is not the last word (a cold start's first
    // REGISTER may fail while the connection comes up): the coordinator ends every call still
    // waiting for its INVITE on a failure.
    if (state.state === 'failed' && this.pending) return;
    this.lastReported = state.state;
    this.delegate?.onRegistration(state);
    if (this.pending) return; // a newer REGISTER is queued: waiters get its outcome
    for (const resolve of this.waiters.splice(0)) resolve(state);
  }

  /** Add the push params to the Contact SIP.js renders for REGISTER, and only there. */
  private hookContact(): void {
    const contact = this.userAgent.contact as { toString: ContactToString };
    const original: ContactToString = contact.toString.bind(contact);
    contact.toString = (options) => {
      const rendered = original(options);
      if (!options?.register || !this.pushParams) return rendered;
      return addContactUriParams(rendered, pushContactUriParams(this.pushParams));
    };
  }

  // ----- incoming calls -------------------------------------------------------------------

  private onInvitation(invitation: Invitation): void {
    const callId = invitation.request.callId;
    if (this.calls.has(callId)) {
      // Same Call-ID, new transaction (a fork reaching us twice): one call is enough.
      void invitation.reject({ statusCode: 482 }).catch(() => undefined);
      return;
    }
    const entry: CallEntry = { callId, session: invitation, outgoing: false, endedLocally: false, endReported: false, answered: false, muted: false };
    this.calls.set(callId, entry);
    invitation.delegate = {
      onCancel: (cancel: Cancel) => {
        if (entry.endReported) return;
        entry.endReported = true;
        this.delegate?.onCancel(callId, parseReasonHeader(cancel.request.getHeaders('reason')));
      },
      onBye: (bye: Bye) => this.onRemoteBye(entry, bye),
    };
    invitation.stateChange.addListener((state) => this.onSessionState(entry, state));
    const remote = invitation.remoteIdentity;
    const info: IncomingInvite = {
      callId,
      fromUri: remote.uri.toString(),
      ...(remote.displayName ? { fromDisplayName: remote.displayName } : {}),
      toUri: invitation.localIdentity.uri.toString(),
      video: sdpHasVideo(invitation.body),
    };
    this.delegate?.onInvite(info);
    if (invitation.state === S.Terminated && !entry.endReported) {
      // The CANCEL arrived while SIP.js was still sending its 180 (before onInvite): its
      // Reason is lost; the call is over all the same.
      entry.endReported = true;
      this.delegate?.onCancel(callId, []);
    }
  }

  private onRemoteBye(entry: CallEntry, bye: Bye): void {
    // With a delegate.onBye SIP.js leaves the 200 to us.
    void bye.accept().catch((e: unknown) => this.options.onError?.(e, 'BYE 200'));
    if (entry.endReported || entry.endedLocally) return;
    entry.endReported = true;
    this.delegate?.onBye(entry.callId);
  }

  private onSessionState(entry: CallEntry, state: string): void {
    if (state === S.Established && entry.outgoing && !entry.answered) {
      entry.answered = true;
      this.applyMedia(entry);
      return;
    }
    if (state !== S.Terminated) return;
    this.calls.delete(entry.callId);
    // SIP.js changes the state before it calls the request delegate (an Inviter's final
    // error response, with its code): let that report first.
    void Promise.resolve().then(() => {
      if (entry.endReported || entry.endedLocally) return;
      entry.endReported = true;
      // Ended by SIP.js itself: no-answer timer, ACK never came, transport gone.
      this.callState(entry.callId, { state: 'failed', reason: entry.answered ? 'session terminated' : 'not answered' });
    });
  }

  answer(callId: string, options: { readonly video: boolean }): void {
    const entry = this.calls.get(callId);
    const session = entry?.session;
    if (!entry || entry.outgoing || !session || session.state !== S.Initial) {
      this.callState(callId, { state: 'failed', reason: entry ? `cannot answer in state ${session?.state}` : 'no such call' });
      return;
    }
    const invitation = session as Invitation;
    invitation
      .accept({ sessionDescriptionHandlerOptions: this.sdhOptions(options.video) })
      .then(() => {
        entry.answered = true;
        this.applyMedia(entry);
        this.callState(callId, { state: 'answered' });
      })
      .catch((error: unknown) => {
        this.options.onError?.(error, 'accept');
        if (entry.endReported) return;
        entry.endReported = true;
        this.callState(callId, { state: 'failed', reason: errorText(error) });
      });
  }

  reject(callId: string, code: number): void {
    const entry = this.calls.get(callId);
    if (!entry || entry.outgoing) return;
    const s = entry.session.state;
    if (s !== S.Initial && s !== S.Establishing) return;
    entry.endedLocally = true;
    (entry.session as Invitation).reject({ statusCode: code }).catch((e: unknown) => this.options.onError?.(e, 'reject'));
  }

  hangup(callId: string): void {
    const entry = this.calls.get(callId);
    if (!entry) return;
    const session = entry.session;
    entry.endedLocally = true;
    const fail = (e: unknown) => this.options.onError?.(e, 'hangup');
    switch (session.state) {
      case S.Initial:
      case S.Establishing:
        if (entry.outgoing) (session as Inviter).cancel().catch(fail);
        else (session as Invitation).reject({ statusCode: 486 }).catch(fail);
        return;
      case S.Established:
        session.bye().catch(fail);
        return;
      default:
        return;
    }
  }

  // ----- outgoing calls -------------------------------------------------------------------

  invite(target: string, options: { readonly video: boolean }): { readonly callId: string } {
    const uri = this.sip.UserAgent.makeURI(target);
    if (!uri) throw new TypeError(`not a SIP URI: ${target}`);
    const inviterOptions: InviterOptions = { sessionDescriptionHandlerOptions: this.sdhOptions(options.video) };
    const inviter = new this.sip.Inviter(this.userAgent, uri, inviterOptions);
    const callId = inviter.request.callId;
    const entry: CallEntry = { callId, session: inviter, outgoing: true, endedLocally: false, endReported: false, answered: false, muted: false };
    this.calls.set(callId, entry);
    inviter.delegate = { onBye: (bye: Bye) => this.onRemoteBye(entry, bye) };
    inviter.stateChange.addListener((state) => this.onSessionState(entry, state));
    const send = () =>
      inviter.invite({
        requestDelegate: {
          onProgress: (r: { message: IncomingMessageLike }) => this.callState(callId, { state: 'progress', code: r.message.statusCode ?? 0 }),
          onAccept: () => this.callState(callId, { state: 'established' }),
          onReject: (r: { message: IncomingMessageLike }) => {
            if (entry.endReported || entry.endedLocally) return;
            entry.endReported = true;
            this.callState(callId, { state: 'failed', code: r.message.statusCode, reason: r.message.reasonPhrase });
          },
        },
      });
    void this.connect()
      .then(send)
      .catch((error: unknown) => {
        this.options.onError?.(error, 'invite');
        if (entry.endReported) return;
        entry.endReported = true;
        this.calls.delete(callId);
        this.callState(callId, { state: 'failed', reason: errorText(error) });
      });
    return { callId };
  }

  // ----- media (best effort) ----------------------------------------------------------------

  /** re-INVITE with a=sendonly / a=sendrecv, as SIP.js's SessionManager does it. */
  hold(callId: string, onHold: boolean): void {
    const entry = this.calls.get(callId);
    if (!entry || entry.session.state !== S.Established) return;
    const session = entry.session;
    const base = session.sessionDescriptionHandlerOptionsReInvite as object | undefined;
    session.sessionDescriptionHandlerOptionsReInvite = { ...base, hold: onHold } as object;
    session.invite().catch((e: unknown) => this.options.onError?.(e, 'hold'));
  }

  mute(callId: string, muted: boolean): void {
    const entry = this.calls.get(callId);
    if (!entry) return;
    entry.muted = muted;
    this.applyMedia(entry);
  }

  setAudioEnabled(enabled: boolean): void {
    this.audioEnabled = enabled;
    this.options.onAudioEnabled?.(enabled);
    for (const entry of this.calls.values()) this.applyMedia(entry);
  }

  /** Web SDH (and the static one) have enableSenderTracks / enableReceiverTracks. */
  private applyMedia(entry: CallEntry): void {
    const sdh = entry.session.sessionDescriptionHandler as
      | (SessionDescriptionHandler & { enableSenderTracks?(on: boolean): void; enableReceiverTracks?(on: boolean): void })
      | undefined;
    if (!sdh || entry.session.state !== S.Established) return;
    sdh.enableReceiverTracks?.(this.audioEnabled);
    sdh.enableSenderTracks?.(this.audioEnabled && !entry.muted);
  }

  private sdhOptions(video: boolean): object {
    return this.options.mediaConstraints?.(video) ?? { constraints: { audio: true, video } };
  }

  private callState(callId: string, state: SipCallState): void {
    this.delegate?.onCallState(callId, state);
  }

  /**
   * Stop for good: end calls, unregister when `unregister` (default false: a sleeping
   * phone keeps its push binding), stop the UserAgent.
   */
  async dispose(options: { unregister?: boolean } = {}): Promise<void> {
    if (this.disposed) return;
    if (options.unregister) {
      this.unregister();
      await this.registering;
    }
    this.disposed = true;
    await this.registering?.catch(() => undefined);
    for (const entry of this.calls.values()) this.hangup(entry.callId);
    if (!options.unregister) {
      // Keep the binding: stop SIP.js without its graceful unregistration.
      (this.userAgent.configuration as { gracefulShutdown: boolean }).gracefulShutdown = false;
      (this.registerer as unknown as { clearTimers?(): void } | undefined)?.clearTimers?.();
    }
    await this.userAgent.stop();
  }
}

// ---------------------------------------------------------------------------------------

/** The members of SIP.js's IncomingResponseMessage the adapter reads. */
interface IncomingMessageLike {
  readonly statusCode?: number;
  readonly reasonPhrase?: string;
  getHeaders(name: string): string[];
}

function infoFrom(message: IncomingMessageLike): RegistrationInfo {
  const featureCaps = message.getHeaders('feature-caps');
  return {
    featureCaps,
    pns: pnsFromFeatureCaps(featureCaps),
    contacts: message.getHeaders('contact'),
    statusCode: message.statusCode ?? 0,
  };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
