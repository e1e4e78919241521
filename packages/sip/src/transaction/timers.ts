/**
 * RFC 3261 §17 timer values (Table 4) and RFC 6026 additions. Durations in milliseconds.
 * A transaction layer takes a `TimerConfig` so deployments (and tests) can change T1/T2/T4.
 */

export interface TimerConfig {
  /** RTT estimate (default 500 ms). */
  T1: number;
  /** Maximum retransmit interval for non-INVITE requests and INVITE responses (4 s). */
  T2: number;
  /** Maximum duration a message remains in the network (5 s). */
  T4: number;
}

export const DEFAULT_TIMERS: TimerConfig = { T1: 500, T2: 4000, T4: 5000 };

/** Timer B / F / H / L / M / J: 64*T1, the transaction timeout. */
export const timeout64 = (t: TimerConfig): number => 64 * t.T1;
/** Timer D: at least 32 s over unreliable transports, 0 over reliable ones. */
export const timerD = (reliable: boolean): number => (reliable ? 0 : 32_000);
/** Timer I and K: T4 over unreliable transports, 0 over reliable ones. */
export const timerIK = (t: TimerConfig, reliable: boolean): number => (reliable ? 0 : t.T4);
/** Timer J: 64*T1 over unreliable transports, 0 over reliable ones. */
export const timerJ = (t: TimerConfig, reliable: boolean): number => (reliable ? 0 : 64 * t.T1);
