/** Percentiles, and the proxy-added latencies read from pushcall's call timelines. */

export interface Percentiles {
  n: number;
  min: number | null;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

const round = (v: number) => Math.round(v * 10) / 10;

/** Nearest-rank percentiles (ms, one decimal). */
export function percentiles(values: number[]): Percentiles {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { n: 0, min: null, p50: null, p90: null, p99: null, max: null, mean: null };
  const at = (p: number) => round(v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))]);
  return { n: v.length, min: round(v[0]), p50: at(50), p90: at(90), p99: at(99), max: round(v[v.length - 1]), mean: round(v.reduce((a, b) => a + b, 0) / v.length) };
}

/** The shape of a timeline as the server keeps it and the admin API serves it. */
export interface TimelineLike {
  callId: string;
  method: string;
  startedAt: number;
  endedAt?: number;
  outcome?: string;
  events: Array<{ at: number; offsetMs: number; kind: string; branch?: string; detail?: Record<string, unknown> }>;
}

export interface ServerLatencies {
  timelines: number;
  /** INVITE in → push request handed to the push gateway (ms). */
  inviteToPush: Percentiles;
  /** Device's REGISTER processed (binding stored) → held INVITE forwarded (ms). */
  registerToInvite: Percentiles;
  /** Push request round trip to APNs/FCM (ms). */
  pushRequest: Percentiles;
  /** Push sent → device registered (ms): the wake itself (push delivery, launch, network). */
  pushToRegister: Percentiles;
  outcomes: Record<string, number>;
}

/** Proxy-added latencies from call timelines (INVITEs only). */
export function serverLatencies(timelines: TimelineLike[], callIds?: Set<string>): ServerLatencies {
  const inviteToPush: number[] = [];
  const registerToInvite: number[] = [];
  const pushRequest: number[] = [];
  const pushToRegister: number[] = [];
  const outcomes: Record<string, number> = {};
  let n = 0;
  for (const t of timelines) {
    if (t.method !== 'INVITE') continue;
    if (callIds && !callIds.has(t.callId)) continue;
    n++;
    outcomes[t.outcome ?? 'open'] = (outcomes[t.outcome ?? 'open'] ?? 0) + 1;
    // Offsets come from the server's monotonic clock (sub-millisecond); `at` is wall time.
    const time = (e: { at: number; offsetMs?: number }) => e.offsetMs ?? e.at;
    const invite = t.events.find((e) => e.kind === 'invite-in');
    const pushes = new Map<string, number>();
    for (const e of t.events) {
      if (e.kind === 'push-sent' && e.branch) {
        pushes.set(e.branch, time(e));
        if (invite) inviteToPush.push(time(e) - time(invite));
      }
      if (e.kind === 'push-accepted' && typeof e.detail?.latencyMs === 'number') pushRequest.push(e.detail.latencyMs);
      if (e.kind === 'device-registered' && e.branch) {
        const sent = pushes.get(e.branch);
        if (sent !== undefined) pushToRegister.push(time(e) - sent);
        const out = t.events.find((o) => o.kind === 'request-out' && o.branch === e.branch && time(o) >= time(e));
        // REGISTER received by the registrar -> held INVITE handed to the transport.
        if (out && typeof out.detail?.sinceRegisterMs === 'number') registerToInvite.push(out.detail.sinceRegisterMs);
        else if (out) registerToInvite.push(time(out) - time(e));
      }
    }
  }
  return {
    timelines: n,
    inviteToPush: percentiles(inviteToPush),
    registerToInvite: percentiles(registerToInvite),
    pushRequest: percentiles(pushRequest),
    pushToRegister: percentiles(pushToRegister),
    outcomes,
  };
}
