/**
 * Helpers for the proxy tests: a raw UDP SIP peer (full control over every byte, for the
 * RFC 3261 §16.3 checks and for peers that must sit on another loopback address), SIP
 * user agents from the testkit, and small waiting utilities.
 */
import { type Socket, createSocket } from 'node:dgram';
import { randomUUID } from 'node:crypto';
import { type SipMessage, SipRequest, type SipResponse, createResponse, parseMessage } from '@pushcall/sip';
import type { SipDelegate } from '@pushcall/client';
import { type Lab, SipUserAgent, type SipUaOptions } from '../../src/index.js';

export { sleep, waitFor } from '../support/wait.js';

let seq = 0;
export const uniq = (prefix: string) => `${prefix}-${process.pid}-${++seq}-${Date.now().toString(36)}`;

/** Build a SIP message text with CRLFs and a correct Content-Length. */
export function sipText(startLine: string, headers: Array<string | false | undefined>, body = ''): string {
  const lines = [startLine, ...headers.filter((h): h is string => typeof h === 'string')];
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

export const SDP = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 40000 RTP/AVP 0', ''].join('\r\n');

/**
 * A UDP socket that speaks raw SIP: send any text, record and await every parsed message.
 * Bind it to another loopback address (127.0.0.2, ...) to be a different host.
 */
export class RawUdpPeer {
  readonly messages: SipMessage[] = [];
  private readonly waiters: Array<{ match: (m: SipMessage) => boolean; resolve: (m: SipMessage) => void }> = [];
  /** Answer every request this peer receives with this function, if set. */
  onRequest: ((request: SipRequest, peer: RawUdpPeer) => void) | undefined;

  private constructor(
    private readonly socket: Socket,
    readonly address: string,
    readonly port: number,
  ) {
    socket.on('message', (data) => {
      let message: SipMessage;
      try {
        message = parseMessage(data);
      } catch {
        return;
      }
      this.messages.push(message);
      for (const w of [...this.waiters]) {
        if (w.match(message)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(message);
        }
      }
      if (message instanceof SipRequest) this.onRequest?.(message, this);
    });
  }

  static async open(address = '127.0.0.1'): Promise<RawUdpPeer> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, address, () => resolve());
    });
    return new RawUdpPeer(socket, address, socket.address().port);
  }

  get hostPort(): string {
    return `${this.address}:${this.port}`;
  }

  send(message: string | SipMessage, to: { address: string; port: number }): Promise<void> {
    const data = typeof message === 'string' ? Buffer.from(message) : message.toBuffer();
    return new Promise((resolve, reject) => this.socket.send(data, to.port, to.address, (e) => (e ? reject(e) : resolve())));
  }

  /** The first message (already received or still to come) matching `match`. */
  wait<T extends SipMessage = SipMessage>(match: (m: SipMessage) => boolean, timeoutMs = 5000, what = 'a SIP message'): Promise<T> {
    const found = this.messages.find(match);
    if (found) return Promise.resolve(found as T);
    return new Promise<T>((resolve, reject) => {
      const waiter = {
        match,
        resolve: (m: SipMessage) => {
          clearTimeout(timer);
          resolve(m as T);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`${this.hostPort}: timed out waiting for ${what}; got ${this.messages.map(startLineOf).join(' | ')}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** A final response (>= 200) for `callId` and CSeq method. */
  final(callId: string, method = 'INVITE', timeoutMs = 5000): Promise<SipResponse> {
    return this.wait<SipResponse>(
      (m) => !m.isRequest && (m as SipResponse).status >= 200 && m.callId === callId && m.cseq.method === method,
      timeoutMs,
      `final response to ${method} ${callId}`,
    );
  }

  responses(callId: string): SipResponse[] {
    return this.messages.filter((m): m is SipResponse => !m.isRequest && m.callId === callId);
  }

  requests(method?: string): SipRequest[] {
    return this.messages.filter((m): m is SipRequest => m instanceof SipRequest && (method === undefined || m.method === method));
  }

  /** Answer `request` (a UAS): copies Via/From/To/Call-ID/CSeq, and Record-Route for 1xx/2xx. */
  respond(request: SipRequest, status: number, options: { toTag?: string; headers?: Array<[string, string]>; body?: string } = {}): Promise<void> {
    const headers: Array<[string, string]> = [];
    if (status > 100 && status < 300) for (const rr of request.getAll('record-route')) headers.push(['Record-Route', rr]);
    if (status > 100 && status < 300 && request.method === 'INVITE') headers.push(['Contact', `<sip:uas@${this.hostPort}>`]);
    headers.push(...(options.headers ?? []));
    const response = createResponse(request, status, {
      toTag: options.toTag ?? 'rawtag',
      headers,
      body: options.body !== undefined ? Buffer.from(options.body) : undefined,
      contentType: options.body !== undefined ? 'application/sdp' : undefined,
    });
    // The response goes where the top Via says (RFC 3261 §18.2.2; rport when present).
    const via = request.via;
    const port = typeof via.rport === 'number' ? via.rport : (via.port ?? 5060);
    const address = via.received ?? via.host;
    return this.send(response, { address, port });
  }

  close(): void {
    this.socket.close();
  }
}

export function startLineOf(m: SipMessage): string {
  return m.isRequest ? `${(m as SipRequest).method} ${(m as SipRequest).uriText}` : `${(m as SipResponse).status} ${(m as SipResponse).reason}`;
}

/** An INVITE text from a raw peer. */
export function inviteText(o: {
  from: RawUdpPeer;
  target: string;
  callId: string;
  branch?: string;
  fromUser?: string;
  fromHost?: string;
  cseq?: number;
  maxForwards?: number | null;
  extra?: string[];
  method?: string;
}): string {
  const method = o.method ?? 'INVITE';
  const fromHost = o.fromHost ?? o.from.address;
  return sipText(
    `${method} ${o.target} SIP/2.0`,
    [
      `Via: SIP/2.0/UDP ${o.from.hostPort};branch=${o.branch ?? `z9hG4bK${randomUUID().slice(0, 12)}`};rport`,
      o.maxForwards === null ? undefined : `Max-Forwards: ${o.maxForwards ?? 70}`,
      `From: <sip:${o.fromUser ?? 'caller'}@${fromHost}>;tag=${o.callId.slice(0, 8)}f`,
      `To: <${o.target}>`,
      `Call-ID: ${o.callId}`,
      `CSeq: ${o.cseq ?? 1} ${method}`,
      `Contact: <sip:${o.fromUser ?? 'caller'}@${o.from.hostPort}>`,
      ...(o.extra ?? []),
      method === 'INVITE' ? 'Content-Type: application/sdp' : undefined,
    ],
    method === 'INVITE' ? SDP : '',
  );
}

/** ACK for a non-2xx final response (same branch as the INVITE, RFC 3261 §17.1.1.3). */
export function ackFor(invite: string, response: SipResponse): string {
  const lines = invite.split('\r\n');
  const requestLine = lines[0].replace(/^INVITE/, 'ACK');
  const keep = lines.filter((l) => /^(Via|From|Call-ID|Max-Forwards):/i.test(l));
  const cseq = lines.find((l) => /^CSeq:/i.test(l))!.replace('INVITE', 'ACK');
  return sipText(requestLine, [...keep, `To: ${response.get('to')}`, cseq]);
}

/** A SIP UA for the lab (loopback), registered for `user`. */
export async function registeredUa(lab: Lab, user: string, extra: Partial<SipUaOptions> = {}): Promise<SipUserAgent> {
  const ua = new SipUserAgent({
    user,
    domain: '127.0.0.1',
    server: lab.address(extra.server?.protocol ?? 'udp'),
    instanceId: `urn:uuid:${randomUUID()}`,
    ...extra,
  });
  const response = await ua.registerAsync(600);
  if (response.status !== 200) throw new Error(`REGISTER ${user}: ${response.status} ${response.reason}`);
  return ua;
}

/** A UA that only places calls (no REGISTER). */
export function callerUa(lab: Lab, user: string, extra: Partial<SipUaOptions> = {}): SipUserAgent {
  return new SipUserAgent({
    user,
    domain: '127.0.0.1',
    server: lab.address('udp'),
    instanceId: `urn:uuid:${randomUUID()}`,
    ...extra,
  });
}

/** A delegate that records provisional statuses and ignores the rest. */
export function recordingDelegate(): SipDelegate & { progress: number[]; cancels: Array<{ callId: string; reasons: unknown[] }> } {
  const d = {
    progress: [] as number[],
    cancels: [] as Array<{ callId: string; reasons: unknown[] }>,
    onInvite() {},
    onCancel(callId: string, reasons: readonly unknown[]) {
      d.cancels.push({ callId, reasons: [...reasons] });
    },
    onBye() {},
    onCallState(_callId: string, state: { state: string; code?: number }) {
      if (state.state === 'progress' && state.code !== undefined) d.progress.push(state.code);
    },
    onRegistration() {},
  };
  return d as never;
}

/** Fetch JSON (or text) from the lab's admin API. */
export async function admin(lab: Lab, path: string): Promise<{ status: number; text: string; json: () => any }> {
  const res = await fetch(`http://${lab.server.adminAddress}${path}`);
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) };
}

/**
 * A REGISTER for `user` from a raw peer (open auth), answered: `headers` are its Contact,
 * Expires and anything else (none: a query); resolves with the final response.
 */
export async function sendRegister(lab: Lab, peer: RawUdpPeer, user: string, headers: string[]): Promise<SipResponse> {
  const callId = uniq('reg');
  await peer.send(
    sipText('REGISTER sip:127.0.0.1 SIP/2.0', [
      `Via: SIP/2.0/UDP ${peer.hostPort};branch=z9hG4bK${randomUUID().slice(0, 12)};rport`,
      'Max-Forwards: 70',
      `From: <sip:${user}@127.0.0.1>;tag=r${seq}`,
      `To: <sip:${user}@127.0.0.1>`,
      `Call-ID: ${callId}`,
      'CSeq: 1 REGISTER',
      ...headers,
    ]),
    lab.address('udp'),
  );
  return peer.final(callId, 'REGISTER');
}

/** REGISTER `contact` for `user` from a raw peer (open auth); resolves after the 200. */
export async function registerRaw(lab: Lab, peer: RawUdpPeer, user: string, contact = `sip:${user}@${peer.hostPort}`, expires = 600): Promise<SipResponse> {
  const response = await sendRegister(lab, peer, user, [`Contact: <${contact}>`, `Expires: ${expires}`]);
  if (response.status !== 200) throw new Error(`REGISTER ${user}: ${response.status} ${response.reason}`);
  return response;
}

/** A raw UAS that answers every INVITE with `status` after `delayMs` (180 first). */
export async function rawUas(lab: Lab, user: string, status: number, delayMs = 50, extraHeaders: Array<[string, string]> = []): Promise<RawUdpPeer> {
  const peer = await RawUdpPeer.open();
  peer.onRequest = (request) => {
    if (request.method === 'INVITE') {
      void peer.respond(request, 180);
      setTimeout(() => void peer.respond(request, status, { headers: extraHeaders, body: status < 300 ? SDP : undefined }), delayMs);
    } else if (request.method === 'CANCEL') {
      void peer.respond(request, 200);
    } else if (request.method !== 'ACK') {
      void peer.respond(request, 200);
    }
  };
  await registerRaw(lab, peer, user);
  return peer;
}

/** CANCEL for an INVITE sent as `invite` text (same Via branch, RFC 3261 §9.1). */
export function cancelFor(invite: string, reason?: string): string {
  const lines = invite.split('\r\n');
  const requestLine = lines[0].replace(/^INVITE/, 'CANCEL');
  const keep = lines.filter((l) => /^(Via|From|To|Call-ID|Max-Forwards):/i.test(l));
  const cseq = lines.find((l) => /^CSeq:/i.test(l))!.replace('INVITE', 'CANCEL');
  return sipText(requestLine, [...keep, cseq, reason ? `Reason: ${reason}` : undefined]);
}

/** A call placed from a raw peer: `ringing` resolves on 180, `final` on the final response. */
export async function rawCall(lab: Lab, from: RawUdpPeer, target: string, o: Partial<Parameters<typeof inviteText>[0]> = {}) {
  const callId = o.callId ?? uniq('call');
  const text = inviteText({ from, target, callId, ...o });
  await from.send(text, lab.address('udp'));
  const final = from.final(callId, 'INVITE', 30_000).then(async (r) => {
    if (r.status >= 300) await from.send(ackFor(text, r), lab.address('udp'));
    return r;
  });
  return {
    callId,
    text,
    final,
    ringing: () => from.wait<SipResponse>((m) => !m.isRequest && m.callId === callId && (m as SipResponse).status === 180, 5000, `180 for ${callId}`),
    cancel: async (reason?: string) => {
      await from.send(cancelFor(text, reason), lab.address('udp'));
      return from.final(callId, 'CANCEL');
    },
  };
}

export interface PushUaOptions {
  provider: 'apns' | 'fcm';
  /** The whole pn-prid (a token, or the Flexisip `tok1:voip&tok2:remote` form). */
  prid: string;
  param?: string;
  protocol?: 'udp' | 'tcp' | 'ws';
  extra?: Record<string, string>;
}

/** A UA registered with RFC 8599 push parameters (stays awake until closed). */
export async function pushUa(lab: Lab, user: string, o: PushUaOptions, uaExtra: Partial<SipUaOptions> = {}): Promise<{ ua: SipUserAgent; register: SipResponse }> {
  const ua = new SipUserAgent({
    user,
    domain: '127.0.0.1',
    server: lab.address(o.protocol ?? 'udp'),
    instanceId: `urn:uuid:${randomUUID()}`,
    ...uaExtra,
  });
  const param = o.param ?? (o.provider === 'apns' ? 'TEAM123456.com.example.pushcall.voip' : 'pushcall-lab');
  (ua as unknown as { pushParams: unknown }).pushParams = { pnProvider: o.provider, pnPrid: o.prid, pnParam: param, extra: o.extra };
  const register = await ua.registerAsync(600);
  if (register.status !== 200) throw new Error(`REGISTER ${user}: ${register.status} ${register.reason}`);
  return { ua, register };
}
