/**
 * The configuration model (YAML file + flags), validated with zod. Every default is here,
 * with the reason when it is not obvious; docs/configuration.md documents the same.
 */

import { isIP } from 'node:net';
import { parseSipUriStrict } from '@pushcall/sip';
import { z } from 'zod';

/** Parsed when a request is forwarded; a bad value must fail at startup, not per call. */
function isSipUri(text: string): boolean {
  try {
    parseSipUriStrict(text);
    return true;
  } catch {
    return false;
  }
}

/** `10.0.0.1`, `10.0.0.0/8`, `::1`, `2001:db8::/32`: a typo would otherwise never match (and silently trust nobody). */
function isAddressOrCidr(rule: string): boolean {
  const [address, prefix, extra] = rule.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

/** A port written as 1-5 digits that is above 65535 (NaN, i.e. a malformed spec, is the regex's job). */
const portTooLarge = (spec: string) => Number(spec.slice(spec.lastIndexOf(':') + 1)) > 65535;

const listenSpec = z
  .string()
  .regex(/^(udp|tcp|tls|ws|wss):(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, 'expected <udp|tcp|tls|ws|wss>:<host>:<port>')
  .refine((spec) => !portTooLarge(spec), 'port must be 0-65535');

const user = z
  .object({
    username: z.string().min(1),
    /** Plaintext password (development only; prefer the HA1 forms). */
    password: z.string().min(1).optional(),
    /** MD5(username:realm:password), hex. */
    ha1: z.string().regex(/^[0-9a-f]{32}$/i).optional(),
    /** SHA-256(username:realm:password), hex (RFC 7616 / RFC 8760). */
    ha1Sha256: z.string().regex(/^[0-9a-f]{64}$/i).optional(),
  })
  .strict()
  .refine((u) => u.password || u.ha1 || u.ha1Sha256, { message: 'a user needs password, ha1 or ha1Sha256' });

export const configSchema = z
  .object({
    node: z
      .object({
        /** Unique per node when several share a Redis store (a second node with the same id is refused at startup). */
        id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, . _ - (at most 64)').default('node-1'),
        /**
         * Where the other nodes reach this one (multi-node): requests for a device whose
         * connection ends here are routed through it. Required with store.type redis.
         */
        uri: z.string().refine(isSipUri, 'expected a SIP URI (sip:10.0.0.2:5060;transport=tcp)').optional(),
      })
      .strict()
      .prefault({}),
    /** Listeners; loopback by default so a fresh `pushcall serve` exposes nothing. */
    listen: z.array(listenSpec).min(1).default(['udp:127.0.0.1:5060', 'tcp:127.0.0.1:5060', 'ws:127.0.0.1:5066']),
    udp: z
      .object({
        /**
         * Datagram I/O: 'batch' reads with recvmmsg(2) through pushcall's addon, built on
         * `npm ci` (Linux; fails to start when it is not built), 'dgram' uses node:dgram,
         * 'auto' the addon when built. The addon costs 22–31 % less CPU per datagram.
         */
        io: z.enum(['auto', 'batch', 'dgram']).default('auto'),
      })
      .strict()
      .prefault({}),
    tls: z
      .object({ certFile: z.string(), keyFile: z.string(), caFile: z.string().optional() })
      .strict()
      .optional(),
    /** Host written in Via / Record-Route when listening on a wildcard address. */
    advertisedHost: z.string().optional(),
    /** RFC 3263 lookups (SRV, then A/AAAA) of host names in Request-URIs, Routes and upstreams. */
    dns: z
      .object({
        /** DNS servers (`ip` or `ip:port`); default: the system's (/etc/resolv.conf). */
        servers: z.array(z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[0-9a-fA-F:.]+)(:\d{1,5})?$/, 'expected an IP address, optionally with :port')).optional(),
        /** How long SRV answers are reused. */
        cacheSeconds: z.number().min(0).default(30),
      })
      .strict()
      .prefault({}),
    /** Local domains. Empty: every domain is local (standalone registrar for anything). */
    domains: z.array(z.string().min(1)).default([]),
    dataDir: z.string().default('./data'),
    store: z
      .object({
        /** sqlite: embedded, one node. redis: shared by several nodes (DESIGN.md §6). memory: tests. */
        type: z.enum(['sqlite', 'memory', 'redis']).default('sqlite'),
        /** The Redis every node shares (store.type redis). */
        redis: z
          .object({
            url: z.string().regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL').default('redis://127.0.0.1:6379'),
            keyPrefix: z.string().min(1).default('pushcall:'),
            /** A Redis command unanswered this long fails (the REGISTER gets 503) instead of waiting. */
            commandTimeoutMs: z.number().int().positive().max(60_000).default(2000),
            /**
             * Redis Sentinel (`host:port` each): the nodes ask them for the current primary of
             * `masterName` and follow a failover. `url` then gives only the password and db.
             */
            sentinels: z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port')).min(1).optional(),
            masterName: z.string().min(1).optional(),
          })
          .strict()
          .refine((r) => (r.sentinels === undefined) === (r.masterName === undefined), {
            message: 'store.redis.sentinels and store.redis.masterName go together',
            path: ['masterName'],
          })
          .prefault({}),
        /** SQLite file; default `<dataDir>/bindings.sqlite`. */
        file: z.string().optional(),
        /** Expired bindings are swept this often. */
        sweepIntervalSeconds: z.number().int().positive().default(30),
        /**
         * Group-commit window (SQLite): REGISTERs within it share one transaction and are
         * answered after it commits. 0 = end of the event-loop turn.
         */
        commitDelayMs: z.number().int().min(0).max(100).default(2),
        /**
         * SQLite: a thread of its own checkpoints the WAL this often, so that copying it into
         * the database file never stops the event loop. 0 = the writer checkpoints inside its
         * commits (SQLite's default behaviour).
         */
        checkpointIntervalMs: z.number().int().min(0).max(60_000).default(1000),
      })
      .strict()
      .prefault({}),
    registrar: z
      .object({
        defaultExpires: z.number().int().positive().default(3600),
        /** RFC 3261 §10.3 step 7: shorter requests get 423 with Min-Expires. */
        minExpires: z.number().int().positive().default(60),
        /**
         * Push bindings need room for a refresh push 120 s before expiry (RFC 8599 §5.5), so
         * their minimum is higher; shorter requests get 423 (RFC 8599 §5.6.1.1).
         */
        minPushExpires: z.number().int().positive().default(180),
        maxExpires: z.number().int().positive().default(7 * 24 * 3600),
        maxBindingsPerAor: z.number().int().positive().default(10),
        /** Value of `+sip.pnsreg` for UAs that can refresh themselves (RFC 8599 §5.6.1.1: > 120). */
        pnsregSeconds: z.number().int().min(121).default(130),
        /**
         * Mid-dialog push (RFC 8599 §6): push bindings get a PURR (`+sip.pnspurr` in every 2xx),
         * and an in-dialog request whose Request-URI carries one wakes the device. A new PURR
         * every `rotateSeconds`; the last `keep` stay valid for the dialogs that use them.
         */
        purr: z
          .object({
            enabled: z.boolean().default(false),
            rotateSeconds: z.number().int().positive().default(86_400),
            keep: z.number().int().min(1).max(16).default(4),
          })
          .strict()
          .prefault({}),
        /**
         * The registration event package (RFC 3680): the user's own devices, or a trusted
         * peer (the PBX), SUBSCRIBE to an AOR with `Event: reg` and are told of every
         * registration change. Subscriptions last at most `maxExpires` (RFC 3680's default
         * ask is 3761 s), at least `minExpires` (423 below), `maxPerUser` per AOR and
         * `maxTotal` in all.
         */
        regEvent: z
          .object({
            enabled: z.boolean().default(true),
            maxExpires: z.number().int().positive().default(3600),
            minExpires: z.number().int().positive().default(60),
            maxPerUser: z.number().int().positive().default(10),
            maxTotal: z.number().int().positive().default(10_000),
          })
          .strict()
          .prefault({}),
        /**
         * pushcall is the last hop that could handle push (the registrar): answer 555 to an
         * unsupported provider instead of forwarding (RFC 8599 §5.6.1.1 MAY).
         */
        lastHop: z.boolean().default(true),
        /** Team ID used for legacy `pn-type=apple;app-id=...` contacts that carry none. */
        apnsLegacyTeamId: z.string().default('LEGACYTEAM'),
        /** Environment of APNs bindings that do not say (`apns.dev`, `pn-apns-env`). */
        apnsDefaultEnvironment: z.enum(['production', 'sandbox']).default('production'),
        /**
         * Push-proxy mode: the real registrar (a SIP URI, e.g. `sip:pbx.example.com:5060`).
         * REGISTERs are forwarded there with Feature-Caps +sip.pns and a Path to pushcall
         * (RFC 8599 §5.6.1, RFC 3327); requests coming back with pn-* wake the device.
         */
        upstream: z
          .string()
          .regex(/^sips?:[^\s]+$/, 'expected a SIP URI such as sip:registrar.example.com:5060')
          .optional(),
        /**
         * RFC 5626 §4.4.1: `Flow-Timer` in the 2xx to an outbound REGISTER (reg-id,
         * `Supported: outbound`) that reached pushcall directly over TCP, TLS or WebSocket: the
         * UA keeps its flow alive at least this often (CRLF keep-alives), so that a device in
         * the foreground counts as live (`proxy.liveFlowSeconds`) and gets calls without a
         * push. Default: three quarters of `proxy.liveFlowSeconds` (90 s). 0: no Flow-Timer
         * (UAs fall back to their own 95–120 s).
         */
        flowTimerSeconds: z.number().int().min(0).max(3600).optional(),
        /** Read the push token from a header (Siprix-style `X-Token`) when the Contact has no pn-*. */
        tokenHeader: z
          .object({
            name: z.string().min(1),
            provider: z.string().min(1),
            param: z.string().optional(),
            environment: z.enum(['production', 'sandbox']).optional(),
          })
          .strict()
          .optional(),
      })
      .strict()
      // A maximum below a minimum would grant bindings shorter than the minimum the
      // registrar itself requires; for push bindings that means a Feature-Caps promise the
      // proxy cannot keep (RFC 8599 §5.6.1.1: too-short bindings get no +sip.pns).
      .refine((r) => r.minExpires <= r.maxExpires, { message: 'minExpires must not exceed maxExpires', path: ['minExpires'] })
      .refine((r) => r.minPushExpires <= r.maxExpires, { message: 'minPushExpires must not exceed maxExpires', path: ['minPushExpires'] })
      .prefault({}),
    auth: z
      .object({
        /** `open` accepts REGISTER without credentials: only when explicitly configured. */
        mode: z.enum(['digest', 'open']).default('digest'),
        realm: z.string().optional(),
        nonceTtlSeconds: z.number().int().positive().default(300),
        algorithms: z.array(z.enum(['SHA-256', 'MD5'])).min(1).default(['SHA-256', 'MD5']),
        users: z
          .array(user)
          .superRefine((users, ctx) => {
            const seen = new Set<string>();
            users.forEach((u, i) => {
              if (seen.has(u.username)) ctx.addIssue({ code: 'custom', message: `duplicate username "${u.username}"`, path: [i, 'username'] });
              seen.add(u.username);
            });
          })
          .default([]),
        /** Peers (IP or CIDR) whose INVITEs are not challenged: the PBX, a trunk. */
        trustedPeers: z.array(z.string().refine(isAddressOrCidr, 'expected an IPv4/IPv6 address or CIDR prefix (10.0.0.0/8, 2001:db8::/32)')).default([]),
        /** Secret for stateless nonces; random per start when unset. */
        nonceSecret: z.string().optional(),
        /**
         * Wrong credentials (403) from one address: `maxFailures` within `windowSeconds`
         * block it for `blockSeconds` (403 without checking credentials). SIP scanners try
         * passwords on every public registrar; a phone with a wrong password retries at its
         * registration interval and stays under the limit. `maxFailures: 0` turns it off.
         */
        failureLimit: z
          .object({
            maxFailures: z.number().int().min(0).default(10),
            windowSeconds: z.number().int().positive().default(60),
            blockSeconds: z.number().int().positive().default(600),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    proxy: z
      .object({
        recordRoute: z.boolean().default(true),
        /**
         * How long a pushed branch waits for the device's REGISTER before it ends 480
         * (RFC 8599 §5.6.2 bucket timer). Push-to-REGISTER is ~2 s in practice (RFC 8599
         * §5.6.2); OpenSIPS waits 6 s. 10 s covers a cold app launch on a slow network and
         * stays under the client SDK's 15 s no-INVITE timeout, so the server gives up first.
         */
        wakeTimeoutSeconds: z.number().positive().default(10),
        /** Overall ring time (proxy Timer C cap); Flexisip uses 90 s, carriers ~60 s. */
        ringTimeoutSeconds: z.number().positive().default(60),
        /** A binding on a still-open connection that was refreshed, or carried a keep-alive, within this long is live. */
        liveFlowSeconds: z.number().positive().default(120),
        /**
         * RFC 3261 §16.6: `parallel` rings every binding at once; `sequential` rings the
         * bindings of the highest q-value first (a Contact without q counts as 1.0), then the
         * next q-value when they have all failed or after `sequentialGroupSeconds`, so a
         * desk phone can ring before the mobiles are pushed. A 6xx ends the search.
         */
        forking: z.enum(['parallel', 'sequential']).default('parallel'),
        sequentialGroupSeconds: z.number().positive().default(20),
        /**
         * RFC 3261 §16.5: a 3xx from a branch whose Contacts are users of our domains (call
         * forwarding from a desk phone to another user) adds those users' devices to the call,
         * woken by push like any other; other Contacts stay in the 3xx for the caller.
         */
        recurseOnRedirect: z.boolean().default(true),
        /** Send 180 Ringing to the caller once a push is accepted. */
        ringingOnPush: z.boolean().default(true),
        /** Outbound proxy for requests to non-local domains (in front of a PBX). */
        upstream: z.string().refine(isSipUri, 'expected a SIP or SIPS URI (sip:pbx.example.com:5060;transport=tcp)').optional(),
        missedCallAlert: z.boolean().default(true),
        answeredElsewhereAlert: z.boolean().default(false),
        /** How long finished call timelines are kept for the admin API. */
        timelineRetentionSeconds: z.number().int().positive().default(3600),
        timelineMaxCalls: z.number().int().positive().default(10_000),
        /**
         * Refresh pushes (RFC 8599 §5.5): push bindings get a silent push `leadSeconds` before
         * they expire (RFC: at least 120 s), repeated `retries` times `retryIntervalSeconds`
         * apart while no REGISTER comes. APNs bindings need an alert token for it.
         */
        refreshPush: z
          .object({
            enabled: z.boolean().default(true),
            leadSeconds: z.number().positive().default(120),
            retries: z.number().int().min(0).max(10).default(2),
            retryIntervalSeconds: z.number().positive().default(30),
          })
          .strict()
          .prefault({}),
        /**
         * Offline messages: a MESSAGE (RFC 3428) whose pushed devices did not wake within
         * `acceptAfterSeconds` is answered `202 Accepted`, kept for `keepSeconds` (Flexisip:
         * 7 days), and delivered to each of those devices when it registers again. At most
         * `maxPerUser` are kept per AOR and `maxBytes` per message; past either, the sender
         * gets the 480 it would have had without this.
         */
        offlineMessages: z
          .object({
            enabled: z.boolean().default(true),
            acceptAfterSeconds: z.number().positive().default(5),
            keepSeconds: z.number().int().positive().default(7 * 24 * 3600),
            maxPerUser: z.number().int().positive().default(100),
            maxBytes: z.number().int().positive().default(65_536),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        /** Push-triggering calls per callee AOR per minute. */
        perCalleePerMinute: z.number().int().positive().default(30),
        perCallerPerMinute: z.number().int().positive().default(60),
        maxHeldPerAor: z.number().int().positive().default(5),
        maxHeldTotal: z.number().int().positive().default(10_000),
      })
      .strict()
      .prefault({}),
    /** Push providers (see docs/push.md). */
    push: z.record(z.string(), z.unknown()).default({}),
    admin: z
      .object({
        listen: z
          .string()
          .regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, 'expected <host>:<port>')
          .refine((spec) => !portTooLarge(spec), 'port must be 0-65535')
          .default('127.0.0.1:9060'),
        enabled: z.boolean().default(true),
        /**
         * Bearer token for the admin API and /metrics (`Authorization: Bearer <token>`).
         * Unset: no authentication (loopback by default). /healthz and the dashboard's own
         * files stay open; the dashboard takes the token from its URL (`/#token=…`).
         */
        token: z.string().min(16, 'at least 16 characters').optional(),
        /** Interval of the event-loop delay samples behind /metrics' event-loop lag. */
        eventLoopSampleMs: z.number().int().min(1).max(10_000).default(50),
      })
      .strict()
      .prefault({}),
    log: z
      .object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') })
      .strict()
      .prefault({}),
    shutdown: z
      .object({
        /**
         * On SIGTERM, how long the calls in progress (held ones included) may go on while new
         * ones get 503 + Retry-After and /readyz 503; the server stops as soon as none is
         * left. 0: stop at once. A second SIGTERM stops at once too.
         */
        drainSeconds: z.number().min(0).max(3600).default(30),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  // A push binding granted the minimum lifetime must still live past its refresh push
  // (RFC 8599 §5.6.1.1: "too short" includes expiring before the proxy could push).
  .refine((c) => !c.proxy.refreshPush.enabled || c.proxy.refreshPush.leadSeconds < c.registrar.minPushExpires, {
    message: 'proxy.refreshPush.leadSeconds must be below registrar.minPushExpires',
    path: ['proxy', 'refreshPush', 'leadSeconds'],
  })
  // A UA keeps alive at 80–100 % of Flow-Timer (RFC 5626 §4.4.1): a timer as long as the
  // live window would let a device in the foreground drop out of it between keep-alives.
  .refine((c) => c.registrar.flowTimerSeconds === undefined || c.registrar.flowTimerSeconds < c.proxy.liveFlowSeconds, {
    message: 'registrar.flowTimerSeconds must be below proxy.liveFlowSeconds',
    path: ['registrar', 'flowTimerSeconds'],
  })
  // A device's connection lives on the node it registered through: the others need its address.
  .refine((c) => c.store.type !== 'redis' || c.node.uri !== undefined, {
    message: 'node.uri is required with store.type redis (where the other nodes reach this one)',
    path: ['node', 'uri'],
  })
  // The nodes sign the Route entries they send each other with a key derived from it.
  .refine((c) => c.store.type !== 'redis' || (c.auth.nonceSecret?.length ?? 0) >= 16, {
    message: 'auth.nonceSecret (at least 16 characters, the same on every node) is required with store.type redis',
    path: ['auth', 'nonceSecret'],
  });

export type PushcallConfig = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
