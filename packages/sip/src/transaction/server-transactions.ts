/**
 * Server transactions (RFC 3261 §17.2, RFC 6026 §7.1).
 *
 * INVITE server transaction (§17.2.1, Figure 7 as amended by RFC 6026 Figure 5):
 *
 *                     |INVITE, pass to TU
 *   INVITE      +-----V------+  101-199 from TU: send
 *   resend last | Proceeding |-----------+
 *   provisional +------------+<----------+
 *        |  300-699 from TU |        | 2xx from TU: send
 *        |  send response   |        V
 *        |          +------------+  +-----------+  2xx from TU: send
 *        |          | Completed  |  |  Accepted |<-+ INVITE: absorb
 *        |  Timer G +------------+  +-----------+--+ ACK: to TU
 *        |  resend    |  ACK    |Timer H   | Timer L
 *        |            V         |(no ACK)  V
 *        |     +-----------+    |     +------------+
 *        |     | Confirmed |----+---->| Terminated |
 *        |     +-----------+ Timer I  +------------+
 *
 * Non-INVITE server transaction (§17.2.2, Figure 8): Trying -> Proceeding -> Completed
 * (Timer J absorbs request retransmissions) -> Terminated.
 */

import type { SipRequest, SipResponse } from '../message/message.js';
import { timeout64, timerIK, timerJ } from './timers.js';
import { type Destination, Transaction, type TransactionContext, TransactionState as S } from './transaction.js';

export interface ServerTransactionUser {
  /** Timer H fired: no ACK came for a non-2xx final response. */
  onTimeout?(transaction: ServerTransaction): void;
  onTransportError?(transaction: ServerTransaction, error: unknown): void;
  onTerminated?(transaction: ServerTransaction): void;
  /** RFC 6026 §7.1: an ACK for a 2xx matched this transaction in Accepted. */
  onAck?(ack: SipRequest, transaction: ServerTransaction): void;
}

export abstract class ServerTransaction extends Transaction {
  readonly method: string;
  /** Status of the last response sent (0: none yet). */
  lastStatus = 0;
  protected lastResponseBytes: Buffer | undefined = undefined;
  user: ServerTransactionUser;
  /**
   * What the core keeps for this transaction (the proxy: its call, its relay, or a lookup
   * in progress), as pjsip's mod_data: held with the transaction instead of in a Map beside
   * the layer's. A short-lived entry in a long-lived Map made V8 promote a call's objects out
   * of the young generation (BENCHMARKS.md, "Where the time goes").
   */
  coreData: unknown = undefined;
  // Released in Accepted (see release()): thousands of answered INVITEs wait out Timer L.
  private requestRef: SipRequest | undefined;

  protected constructor(key: string, request: SipRequest, destination: Destination, ctx: TransactionContext, user: ServerTransactionUser, initial: S) {
    super(key, initial, destination, ctx);
    this.requestRef = request;
    this.method = request.method;
    this.user = user;
  }

  /** The request, until the transaction has no more use for it (Accepted, after a 2xx). */
  get request(): SipRequest {
    if (this.requestRef === undefined) throw new Error(`${this.method} server transaction ${this.key}: request already released`);
    return this.requestRef;
  }

  /** In Accepted only INVITE retransmissions (absorbed) and new 2xx from the TU remain. */
  protected release(): void {
    this.requestRef = undefined;
    this.lastResponseBytes = undefined;
  }

  /** Send a response from the TU through this transaction. */
  abstract respond(response: SipResponse): void;
  /** A retransmission of the request (or an ACK) matched this transaction. */
  abstract receiveRequest(request: SipRequest): void;

  get isFinal(): boolean {
    return this.lastStatus >= 200;
  }

  protected sendResponse(response: SipResponse): void {
    this.lastStatus = response.status;
    const bytes = response.toBuffer();
    // Only a resend in Proceeding or Completed uses them; in Accepted each 2xx comes from the TU.
    if (this.state !== S.Accepted) this.lastResponseBytes = bytes;
    this.transmit(bytes);
  }

  protected resendLast(): void {
    if (this.lastResponseBytes) this.transmit(this.lastResponseBytes);
  }

  protected override onTransportError(error: unknown): void {
    this.user.onTransportError?.(this, error);
  }

  protected override onTerminated(): void {
    this.user.onTerminated?.(this);
  }
}

/** Allowed state changes (shared by every instance: a proxy holds thousands). */
const INVITE_SERVER_TRANSITIONS = {
  [S.Proceeding]: [S.Accepted, S.Completed, S.Terminated],
  [S.Accepted]: [S.Terminated],
  [S.Completed]: [S.Confirmed, S.Terminated],
  [S.Confirmed]: [S.Terminated],
};

export class InviteServerTransaction extends ServerTransaction {
  protected readonly transitions = INVITE_SERVER_TRANSITIONS;

  constructor(key: string, request: SipRequest, destination: Destination, ctx: TransactionContext, user: ServerTransactionUser) {
    super(key, request, destination, ctx, user, S.Proceeding);
  }

  respond(response: SipResponse): void {
    const status = response.status;
    switch (this.state) {
      case S.Proceeding:
        this.sendResponse(response);
        if (status >= 200 && status < 300) {
          this.stateTransition(S.Accepted);
          this.release();
          // RFC 6026 Timer L: absorb INVITE retransmissions, let 2xx retransmissions through.
          this.startTimer(timeout64(this.ctx.timers), () => this.stateTransition(S.Terminated));
        } else if (status >= 300) {
          this.stateTransition(S.Completed);
          if (!this.reliable) this.scheduleG(this.ctx.timers.T1);
          // Timer H: wait for the ACK.
          this.startTimer(timeout64(this.ctx.timers), () => {
            if (this.state !== S.Completed) return;
            this.endedBy = 'timeout';
            this.user.onTimeout?.(this);
            this.stateTransition(S.Terminated);
          });
        }
        break;
      case S.Accepted:
        // The TU (a UAS core or a proxy forwarding retransmissions) may resend 2xx.
        if (status >= 200 && status < 300) this.sendResponse(response);
        break;
      default:
        break;
    }
  }

  private scheduleG(interval: number): void {
    this.startTimer(interval, () => {
      if (this.state !== S.Completed) return;
      this.resendLast();
      this.scheduleG(Math.min(interval * 2, this.ctx.timers.T2));
    });
  }

  receiveRequest(request: SipRequest): void {
    if (request.method === 'ACK') {
      if (this.state === S.Completed) {
        this.stateTransition(S.Confirmed);
        this.startTimer(timerIK(this.ctx.timers, this.reliable), () => this.stateTransition(S.Terminated));
      } else if (this.state === S.Accepted) {
        this.user.onAck?.(request, this);
      }
      return;
    }
    // INVITE retransmission: resend the last provisional (Proceeding) or final (Completed).
    if (this.state === S.Proceeding || this.state === S.Completed) this.resendLast();
  }
}

/** Allowed state changes (shared by every instance: a proxy holds thousands). */
const NON_INVITE_SERVER_TRANSITIONS = {
  [S.Trying]: [S.Proceeding, S.Completed, S.Terminated],
  [S.Proceeding]: [S.Completed, S.Terminated],
  [S.Completed]: [S.Terminated],
};

export class NonInviteServerTransaction extends ServerTransaction {
  protected readonly transitions = NON_INVITE_SERVER_TRANSITIONS;

  constructor(key: string, request: SipRequest, destination: Destination, ctx: TransactionContext, user: ServerTransactionUser) {
    super(key, request, destination, ctx, user, S.Trying);
  }

  respond(response: SipResponse): void {
    if (this.state !== S.Trying && this.state !== S.Proceeding) return;
    this.sendResponse(response);
    if (response.status < 200) {
      if (this.state === S.Trying) this.stateTransition(S.Proceeding);
      return;
    }
    this.stateTransition(S.Completed);
    const retire = this.ctx.sender.retire;
    if (!this.reliable && retire && this.lastResponseBytes) {
      // Timer J is kept by the layer's compact completed-response cache.
      retire.call(this.ctx.sender, this.key, this.lastResponseBytes);
      this.stateTransition(S.Terminated);
      return;
    }
    // Timer J: absorb retransmissions for 64*T1 over UDP, then forget.
    this.startTimer(timerJ(this.ctx.timers, this.reliable), () => this.stateTransition(S.Terminated));
  }

  receiveRequest(_request: SipRequest): void {
    // §17.2.2: in Trying the retransmission is absorbed; afterwards the last response is resent.
    if (this.state === S.Proceeding || this.state === S.Completed) this.resendLast();
  }
}
