/**
 * The common base of the four RFC 3261 §17 state machines: one guarded state transition
 * that checks an allow-list and clears timers in one place, and a send path that turns a
 * transport failure into the §17.1.4 / §17.2.4 "transport error" event.
 */

import type { SipMessage } from '../message/message.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { TimerConfig } from './timers.js';

export enum TransactionState {
  Calling = 'Calling',
  Trying = 'Trying',
  Proceeding = 'Proceeding',
  /** RFC 6026 §7.1/§7.2: a 2xx was sent/received for an INVITE. */
  Accepted = 'Accepted',
  Completed = 'Completed',
  Confirmed = 'Confirmed',
  Terminated = 'Terminated',
}

/** Where a transaction sends: resolved by the core, used as-is by the transport layer. */
export interface Destination {
  readonly protocol: 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';
  readonly address: string;
  readonly port: number;
  /** Prefer this existing connection (RFC 5626 flow reuse; responses over the same flow). */
  readonly connectionId?: string;
  readonly serverName?: string;
}

/** What a transaction needs from the layer below it. */
export interface TransactionSender {
  /** Resolves with the connection used (for connection-oriented transports). */
  send(data: Buffer, destination: Destination): Promise<string | undefined>;
  /** Sent at once without a promise (a UDP datagram the kernel took), or false: use send(). */
  sendNow?(data: Buffer, destination: Destination): boolean;
  /** The layer forgets a terminated transaction. */
  release(transaction: Transaction): void;
  /**
   * A non-INVITE server transaction in Completed over UDP only has to answer request
   * retransmissions with its final response until Timer J. The layer keeps just the bytes
   * (see CompletedResponses; a few hundred bytes instead of the whole transaction and
   * request), which is what lets a registrar hold 64*T1 worth of REGISTERs at tens of
   * thousands a second.
   */
  retire?(key: string, response: Buffer): void;
}

export interface TransactionContext {
  readonly clock: Clock;
  readonly timers: TimerConfig;
  readonly sender: TransactionSender;
}

export abstract class Transaction {
  state: TransactionState;
  readonly key: string;
  destination: Destination;
  readonly reliable: boolean;
  protected readonly ctx: TransactionContext;
  private timerHandles: TimerHandle[] | null = null;
  /** Set when the transaction ended by timeout or transport error (for the TU and logs). */
  endedBy: 'timeout' | 'transport-error' | 'normal' | undefined = undefined;

  protected constructor(key: string, initial: TransactionState, destination: Destination, ctx: TransactionContext) {
    this.key = key;
    this.state = initial;
    this.destination = destination;
    this.reliable = destination.protocol !== 'udp';
    this.ctx = ctx;
  }

  /** Allowed transitions per state; anything else is a bug and throws. */
  protected abstract readonly transitions: Readonly<Partial<Record<TransactionState, readonly TransactionState[]>>>;

  protected stateTransition(next: TransactionState): void {
    const allowed = this.transitions[this.state];
    if (!allowed || !allowed.includes(next)) {
      throw new Error(`Invalid transaction state transition ${this.state} -> ${next} (${this.constructor.name})`);
    }
    this.clearTimers();
    this.state = next;
    if (next === TransactionState.Terminated) {
      this.endedBy ??= 'normal';
      this.ctx.sender.release(this);
      this.onTerminated();
    }
  }

  protected startTimer(delayMs: number, fire: () => void): void {
    const handle = this.ctx.clock.setTimeout(fire, delayMs);
    if (this.timerHandles === null) this.timerHandles = [handle];
    else this.timerHandles.push(handle);
  }

  private clearTimers(): void {
    if (this.timerHandles === null) return;
    for (const h of this.timerHandles) h.cancel();
    this.timerHandles = null;
  }

  protected transmit(data: Buffer): void {
    if (this.ctx.sender.sendNow?.(data, this.destination)) return;
    this.ctx.sender.send(data, this.destination).then(
      (connectionId) => {
        if (connectionId && this.destination.connectionId !== connectionId) {
          this.destination = { ...this.destination, connectionId };
        }
      },
      (error: unknown) => this.transportError(error),
    );
  }

  protected transportError(error: unknown): void {
    if (this.state === TransactionState.Terminated) return;
    this.endedBy = 'transport-error';
    this.onTransportError(error);
    // The TU may have terminated the transaction from inside the callback.
    if ((this.state as TransactionState) !== TransactionState.Terminated) this.stateTransition(TransactionState.Terminated);
  }

  /** Terminate now (e.g. the layer is shutting down). */
  terminate(): void {
    if (this.state !== TransactionState.Terminated) this.stateTransition(TransactionState.Terminated);
  }

  protected abstract onTransportError(error: unknown): void;
  protected abstract onTerminated(): void;
}

export type AnyMessage = SipMessage;
