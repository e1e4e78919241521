/** A reg-event subscriber (RFC 3680) by hand: SUBSCRIBE and NOTIFY on a raw UDP socket, every header visible. */
import { randomBytes, randomUUID } from 'node:crypto';
import { type Socket, createSocket } from 'node:dgram';
import { type SipMessage, type SipRequest, type SipResponse, createResponse, isRequest, parseMessage } from '@pushcall/sip';
import { waitFor } from './wait.js';

/** A subscriber on a UDP socket of its own: it answers every NOTIFY with `notifyStatus`. */
export class Subscriber {
  readonly requests: SipRequest[] = [];
  readonly responses: SipResponse[] = [];
  notifyStatus = 200;
  /** How long it takes to answer a NOTIFY. */
  notifyDelayMs = 0;
  private closed = false;
  private socket!: Socket;
  private cseq = 1;
  readonly callId = `${randomUUID()}@subscriber`;
  readonly tag = randomBytes(4).toString('hex');
  port = 0;

  constructor(
    private readonly server: number,
    readonly user: string,
  ) {}

  async open(): Promise<void> {
    this.socket = createSocket('udp4');
    this.socket.on('message', (data) => {
      let message: SipMessage;
      try {
        message = parseMessage(data);
      } catch {
        return;
      }
      if (isRequest(message)) {
        const request = message;
        // A retransmission (UDP, while the answer is held back) is answered, not counted again.
        if (!this.requests.some((r) => r.method === request.method && r.cseq.seq === request.cseq.seq)) this.requests.push(request);
        const answer = () => !this.closed && this.socket.send(createResponse(request, this.notifyStatus).toBuffer(), this.server, '127.0.0.1');
        if (this.notifyDelayMs > 0) setTimeout(answer, this.notifyDelayMs);
        else answer();
      } else this.responses.push(message as SipResponse);
    });
    await new Promise<void>((r) => this.socket.bind(0, '127.0.0.1', () => r()));
    this.port = this.socket.address().port;
  }

  /** SUBSCRIBE to `target`'s registrations; in the dialog when `toTag` (to `requestUri`). */
  async subscribe(target: string, options: { expires?: number; accept?: string; toTag?: string; requestUri?: string } = {}): Promise<SipResponse> {
    const cseq = this.cseq++;
    const lines = [
      `SUBSCRIBE ${options.requestUri ?? target} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
      'Max-Forwards: 70',
      `From: <sip:${this.user}@127.0.0.1>;tag=${this.tag}`,
      `To: <${target}>${options.toTag ? `;tag=${options.toTag}` : ''}`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${cseq} SUBSCRIBE`,
      `Contact: <sip:${this.user}@127.0.0.1:${this.port}>`,
      'Event: reg',
      `Accept: ${options.accept ?? 'application/reginfo+xml'}`,
      ...(options.expires !== undefined ? [`Expires: ${options.expires}`] : []),
      'Content-Length: 0',
      '',
      '',
    ];
    const before = this.responses.length;
    this.socket.send(Buffer.from(lines.join('\r\n')), this.server, '127.0.0.1');
    await waitFor(() => this.responses.slice(before).some((r) => r.cseq.seq === cseq && r.status >= 200), 3000, 'the SUBSCRIBE response');
    return this.responses.slice(before).find((r) => r.cseq.seq === cseq && r.status >= 200)!;
  }

  async nextNotify(count: number): Promise<SipRequest> {
    await waitFor(() => this.requests.filter((r) => r.method === 'NOTIFY').length >= count, 3000, `NOTIFY #${count}`);
    return this.requests.filter((r) => r.method === 'NOTIFY')[count - 1];
  }

  close(): void {
    this.closed = true;
    this.socket.close();
  }
}
