/**
 * Client transactions (RFC 3261 §17.1, RFC 6026 §7.2).
 *
 * INVITE client transaction (§17.1.1, Figure 5 as amended by RFC 6026 Figure 3):
 *
 *                  |INVITE from TU
 *        Timer A   |INVITE sent          Timer B fires / transport err.
 *        INVITE  +-V---------+           inform TU
 *        sent    |  Calling  |------------------------------+
 *          +-----|           |---------------+              |
 *          +---->+-----------+ 2xx to TU      |              |
 *                  | 1xx to TU                |              |
 *                  V                          V              |
 *              +-----------+  2xx to TU  +-----------+        |
 *     1xx ---->| Proceeding|------------>|  Accepted |<- 2xx  |
 *     to TU    +-----------+             +-----------+  to TU |
 *                  | 300-699: ACK sent,        | Timer M      |
 *                  | resp. to TU               V              |
 *              +-----------+             +-----------+        |
 *   300-699 -> | Completed |--Timer D--->| Terminated|<-------+
 *   ACK sent   +-----------+             +-----------+
 *
 * Non-INVITE client transaction (§17.1.2, Figure 6): Trying -> Proceeding -> Completed
 * -> Terminated, Timer E retransmits (T1 doubling to T2), Timer F times out, Timer K
 * absorbs response retransmissions.
 */

import { TransactionTimeoutError } from '../errors.js';
import { createInviteCompanion } from '../message/factory.js';
import type { SipRequest, SipResponse } from '../message/message.js';
import { detachString } from '../util/strings.js';
import { timeout64, timerD, timerIK } from './timers.js';
import { type Destination, Transaction, type TransactionContext, TransactionState as S } from './transaction.js';

export interface ClientTransactionUser {
  /** Every response the TU must see: provisional, final, and 2xx retransmissions (RFC 6026). */
  onResponse(response: SipResponse, transaction: ClientTransaction): void;
  /** Timer B / F fired: the TU should act as if a 408 was received (§8.1.3.1). */
  onTimeout?(transaction: ClientTransaction, error: TransactionTimeoutError): void;
  onTransportError?(transaction: ClientTransaction, error: unknown): void;
  onTerminated?(transaction: ClientTransaction): void;
}

export abstract class ClientTransaction extends Transaction {
  readonly branch: string;
  readonly method: string;
  protected user: ClientTransactionUser;
  // Released once a final response arrived (see release()): a proxy keeps thousands of
  // finished transactions for 64*T1 and they must not hold every message of every call.
  private requestRef: SipRequest | undefined;
  protected requestBytes: Buffer | undefined;

  protected constructor(
    request: SipRequest,
    branch: string,
    destination: Destination,
    ctx: TransactionContext,
    user: ClientTransactionUser,
    initial: S,
  ) {
    super(clientKey(branch, request.method), initial, destination, ctx);
    this.requestRef = request;
    this.method = request.method;
    this.branch = branch;
    this.user = user;
    this.requestBytes = request.toBuffer();
  }

  /** The request, until a final response arrived (nothing needs it after that). */
  get request(): SipRequest {
    if (this.requestRef === undefined) throw new Error(`${this.method} client transaction ${this.key}: request already released`);
    return this.requestRef;
  }

  /**
   * Hand the rest of this transaction's life to another TU (e.g. a proxy whose call is over
   * and only forwards 2xx retransmissions), so the first one can be collected.
   */
  setUser(user: ClientTransactionUser): void {
    this.user = user;
  }

  /** A final response arrived: only the key, the destination and the ACK (if any) are still needed. */
  protected release(): void {
    this.requestRef = undefined;
    this.requestBytes = undefined;
  }

  abstract start(): void;
  abstract receiveResponse(response: SipResponse): void;

  protected override onTransportError(error: unknown): void {
    this.user.onTransportError?.(this, error);
  }

  protected override onTerminated(): void {
    this.user.onTerminated?.(this);
  }

  protected timeout(): void {
    this.endedBy = 'timeout';
    this.user.onTimeout?.(this, new TransactionTimeoutError(`${this.method} transaction timed out (${this.key})`));
    if (this.state !== S.Terminated) this.stateTransition(S.Terminated);
  }
}

/** §17.1.3: responses match a client transaction by top-Via branch and CSeq method. */
export function clientKey(branch: string, method: string): string {
  return detachString(`${branch}|${method === 'ACK' ? 'INVITE' : method}`);
}

/** Allowed state changes (shared by every instance: a proxy holds thousands). */
const INVITE_CLIENT_TRANSITIONS = {
  [S.Calling]: [S.Proceeding, S.Accepted, S.Completed, S.Terminated],
  [S.Proceeding]: [S.Accepted, S.Completed, S.Terminated],
  [S.Accepted]: [S.Terminated],
  [S.Completed]: [S.Terminated],
};

export class InviteClientTransaction extends ClientTransaction {
  protected readonly transitions = INVITE_CLIENT_TRANSITIONS;
  private ackBytes: Buffer | undefined;
  private cancelRequested: ((tx: InviteClientTransaction) => void) | undefined;

  constructor(request: SipRequest, branch: string, destination: Destination, ctx: TransactionContext, user: ClientTransactionUser) {
    super(request, branch, destination, ctx, user, S.Calling);
  }

  start(): void {
    this.transmit(this.requestBytes!);
    // Timer A: retransmit over unreliable transports, doubling each time (§17.1.1.2).
    if (!this.reliable) this.scheduleA(this.ctx.timers.T1);
    // Timer B: give up after 64*T1.
    this.startTimer(timeout64(this.ctx.timers), () => {
      if (this.state === S.Calling) this.timeout();
    });
  }

  private scheduleA(interval: number): void {
    this.startTimer(interval, () => {
      if (this.state !== S.Calling || this.requestBytes === undefined) return;
      this.transmit(this.requestBytes);
      this.scheduleA(interval * 2);
    });
  }

  /**
   * §9.1: a CANCEL may be sent only once a provisional response arrived; until then the
   * request is remembered and `send` runs on the first 1xx. Returns false when it is too
   * late (a final response has been received).
   */
  whenCancellable(send: (tx: InviteClientTransaction) => void): boolean {
    if (this.state === S.Proceeding) {
      this.sendCancel(send);
      return true;
    }
    if (this.state === S.Calling) {
      this.cancelRequested = () => this.sendCancel(send);
      return true;
    }
    return false;
  }

  /**
   * §9.1: when no final response comes within 64*T1 of the CANCEL, the INVITE is taken as
   * cancelled and the transaction destroyed (the TU sees a timeout). Without this, a peer that
   * rang and then vanished would keep the transaction, and whatever it points at, forever:
   * Timer B covers only the Calling state.
   */
  private sendCancel(send: (tx: InviteClientTransaction) => void): void {
    send(this);
    this.startTimer(timeout64(this.ctx.timers), () => {
      if (this.state === S.Proceeding) this.timeout();
    });
  }

  receiveResponse(response: SipResponse): void {
    const status = response.status;
    switch (this.state) {
      case S.Calling:
      case S.Proceeding:
        if (status < 200) {
          if (this.state === S.Calling) {
            this.stateTransition(S.Proceeding);
            // Timer B stays meaningful only in Calling; in Proceeding the TU's own timer
            // (proxy Timer C, UA ring timeout) governs (§17.1.1.2).
          }
          this.user.onResponse(response, this);
          const pending = this.cancelRequested;
          this.cancelRequested = undefined;
          pending?.(this);
        } else if (status < 300) {
          this.stateTransition(S.Accepted);
          this.release();
          // RFC 6026 Timer M: stay to pass 2xx retransmissions to the TU.
          this.startTimer(timeout64(this.ctx.timers), () => this.stateTransition(S.Terminated));
          this.user.onResponse(response, this);
        } else {
          this.stateTransition(S.Completed);
          this.ackBytes = this.buildAck(response).toBuffer();
          this.release();
          this.transmit(this.ackBytes);
          this.startTimer(timerD(this.reliable), () => this.stateTransition(S.Terminated));
          this.user.onResponse(response, this);
        }
        break;
      case S.Accepted:
        if (status >= 200 && status < 300) this.user.onResponse(response, this);
        break;
      case S.Completed:
        // §17.1.1.2: retransmissions of the final response are answered with the ACK again.
        if (status >= 300 && this.ackBytes) this.transmit(this.ackBytes);
        break;
      default:
        break;
    }
  }

  /** §17.1.1.3: the ACK for a non-2xx final response belongs to this transaction. */
  private buildAck(response: SipResponse): SipRequest {
    return createInviteCompanion(this.request, 'ACK', response.get('to') ?? '');
  }

}

/** Allowed state changes (shared by every instance: a proxy holds thousands). */
const NON_INVITE_CLIENT_TRANSITIONS = {
  [S.Trying]: [S.Proceeding, S.Completed, S.Terminated],
  [S.Proceeding]: [S.Completed, S.Terminated],
  [S.Completed]: [S.Terminated],
};

export class NonInviteClientTransaction extends ClientTransaction {
  protected readonly transitions = NON_INVITE_CLIENT_TRANSITIONS;

  constructor(request: SipRequest, branch: string, destination: Destination, ctx: TransactionContext, user: ClientTransactionUser) {
    super(request, branch, destination, ctx, user, S.Trying);
  }

  private startedAt = 0;

  start(): void {
    this.startedAt = this.ctx.clock.monotonic();
    this.transmit(this.requestBytes!);
    if (!this.reliable) this.scheduleE(this.ctx.timers.T1);
    // Timer F.
    this.startTimer(timeout64(this.ctx.timers), () => {
      if (this.state === S.Trying || this.state === S.Proceeding) this.timeout();
    });
  }

  private scheduleE(interval: number): void {
    this.startTimer(interval, () => {
      if ((this.state !== S.Trying && this.state !== S.Proceeding) || this.requestBytes === undefined) return;
      this.transmit(this.requestBytes);
      // §17.1.2.2: in Proceeding the interval is T2; in Trying it doubles up to T2.
      const next = this.state === S.Proceeding ? this.ctx.timers.T2 : Math.min(interval * 2, this.ctx.timers.T2);
      this.scheduleE(next);
    });
  }

  receiveResponse(response: SipResponse): void {
    if (this.state === S.Trying || this.state === S.Proceeding) {
      if (response.status < 200) {
        if (this.state === S.Trying) {
          // Keep Timer F and E: move state without clearing them by re-arming after.
          this.moveToProceeding();
        }
        this.user.onResponse(response, this);
      } else {
        this.stateTransition(S.Completed);
        this.release();
        this.startTimer(timerIK(this.ctx.timers, this.reliable), () => this.stateTransition(S.Terminated));
        this.user.onResponse(response, this);
      }
    }
    // Completed: absorb retransmissions (Timer K).
  }

  private moveToProceeding(): void {
    // The guarded transition clears timers; re-arm E at T2 and F for the remaining time.
    this.stateTransition(S.Proceeding);
    if (!this.reliable) this.scheduleE(this.ctx.timers.T2);
    const remaining = Math.max(0, timeout64(this.ctx.timers) - (this.ctx.clock.monotonic() - this.startedAt));
    this.startTimer(remaining, () => {
      if (this.state === S.Proceeding) this.timeout();
    });
  }
}
