/**
 * The location service's data model (RFC 3261 §10.2: bindings of an address-of-record
 * to contact addresses), extended with RFC 8599 push data and RFC 5626 flows.
 */

export type ApnsEnvironment = 'production' | 'sandbox';

/** A normalised push registration, whatever form the client used to send it. */
export interface PushRegistration {
  /** `apns`, `fcm`, `webpush`, or a custom webhook provider name. */
  provider: string;
  /** The PRID: APNs VoIP device token, FCM registration token, Web Push subscription URI. */
  prid: string;
  /** APNs: `<TeamID>.<bundle>.voip`; FCM: project ID; absent for Web Push. */
  param?: string;
  /** APNs only. */
  environment?: ApnsEnvironment;
  /**
   * The client said which environment (apns.dev, pn-apns-env, legacy .dev/.prod). When it
   * did not, an environment learned from APNs (sandbox/production mix-up) is kept across
   * refreshes instead of being reset to the default.
   */
  environmentDeclared?: boolean;
  /** APNs alert ("remote") token when the client sent two (Flexisip form), for alerts. */
  alertPrid?: string;
  /** Which wire form the client used (for diagnostics). */
  form: 'rfc8599' | 'legacy' | 'flexisip-multi' | 'header';
}

/** The flow a binding came in on (RFC 5626 §3): responses and requests go back over it. */
export interface BindingFlow {
  protocol: 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  connectionId?: string;
  /** The node that owns the connection (multi-node: route through it). */
  nodeId: string;
  /** Where the other nodes reach that node (`node.uri`; multi-node only). */
  nodeUri?: string;
}

export interface Binding {
  /** Stable identifier (random), used by the admin API and the push gateway. */
  id: string;
  /** Canonical AOR: `sip:user@domain` (lower-case host, unescaped user). */
  aor: string;
  /** Contact URI as registered (push params included). */
  contact: string;
  /** RFC 5626 `+sip.instance` (e.g. `<urn:uuid:...>`), the device identity. */
  instanceId?: string;
  regId?: number;
  q?: number;
  callId: string;
  cseq: number;
  /** ms since the epoch. */
  expiresAt: number;
  /** First time this push token was registered (APNs 410 timestamps compare to it). */
  registeredAt: number;
  /** Last REGISTER that created or refreshed the binding. */
  updatedAt: number;
  /** RFC 3327 Path header values, in order. */
  path: string[];
  flow: BindingFlow;
  push?: PushRegistration;
  /** The UA advertised the `+sip.pnsreg` media feature tag (RFC 8599 §4.1.4). */
  pnsreg: boolean;
  /** RFC 8599 §6.2.1 PURRs for mid-dialog push, newest first (only with `registrar.purr`). */
  purrs?: string[];
  /** When the newest PURR was issued, ms since the epoch. */
  purrIssuedAt?: number;
  userAgent?: string;
}

export interface StoreStats {
  bindings: number;
  aors: number;
  byProvider: Record<string, number>;
}

/**
 * One interface for every store (SQLite embedded, Redis for several nodes). Async so a
 * network store fits; the SQLite store answers from memory and writes behind in batches.
 */
export interface BindingStore {
  /** Current bindings of an AOR (expired ones excluded). */
  lookup(aor: string, now: number): Promise<Binding[]>;
  /** Insert or replace bindings and delete others, atomically for one AOR. */
  apply(aor: string, changes: { upsert: Binding[]; remove: string[] }): Promise<void>;
  /** Bindings of any AOR that carry this push token. */
  findByPushToken(provider: string, prid: string): Promise<Binding[]>;
  /** The binding a PURR was issued for (RFC 8599 §6.2.3), current or one of its older ones. */
  findByPurr(purr: string): Promise<Binding | undefined>;
  get(id: string): Promise<Binding | undefined>;
  remove(id: string): Promise<boolean>;
  /** Delete expired bindings; returns how many. */
  sweep(now: number): Promise<Binding[]>;
  stats(): Promise<StoreStats>;
  /** Every binding (admin, tests). */
  all(): Promise<Binding[]>;
  /**
   * The bindings registered through one node (`flow.nodeId`), for work each node does for its
   * own (refresh pushes). A shared store implements it so that a node does not read the
   * whole cluster's bindings; without it, callers filter `all()`.
   */
  forNode?(nodeId: string): Promise<Binding[]>;
  /** Persist everything pending and release resources. */
  close(): Promise<void>;
}
