/**
 * Locating SIP servers (RFC 3263 §4) for host names:
 * - the transport: the URI's (`transport=`, `sips:`); else NAPTR records choose among the
 *   transports we listen on (`SIP+D2U`, `SIP+D2T`, `SIPS+D2T`, §4.1); else UDP;
 * - with no port in the URI, SRV records (the NAPTR replacement, else `_sip._udp`,
 *   `_sip._tcp`, `_sips._tcp`) say which hosts and ports serve the domain, in RFC 2782 order
 *   (priority, then weight), to try one after the other (§4.3);
 * - without SRV records, or with a port, the host's A/AAAA records and the default port.
 *
 * NAPTR and SRV answers are cached for `cacheMs`, so a proxy does not query DNS for every
 * request to a PBX. Special-use names that must never reach DNS (RFC 6761: `localhost`,
 * `.invalid`) skip both.
 */

import { Resolver, lookup } from 'node:dns/promises';
import type { NaptrRecord, SrvRecord } from 'node:dns';
import { isIP } from 'node:net';
import type { TransportProtocol } from '@pushcall/sip';

/** RFC 3263 §4.2 service labels; WebSocket has none (RFC 7118 defines no SRV). */
const SRV_SERVICE: Partial<Record<TransportProtocol, string>> = { udp: '_sip._udp', tcp: '_sip._tcp', tls: '_sips._tcp' };
/** RFC 3263 §4.1 NAPTR services (RFC 3403 S-NAPTR style, flag "s"). */
const NAPTR_SERVICE: Record<string, TransportProtocol> = { 'SIP+D2U': 'udp', 'SIP+D2T': 'tcp', 'SIPS+D2T': 'tls' };

export interface ResolvedServer {
  address: string;
  port: number;
}

export interface SipResolverOptions {
  /** DNS servers (`ip` or `ip:port`); default: the system's. */
  servers?: readonly string[];
  /** How long NAPTR and SRV answers are reused. Default 30 s. */
  cacheMs?: number;
  /** Per query. Default 2 s. */
  timeoutMs?: number;
}

export class SipResolver {
  private readonly resolver: Resolver;
  private readonly cacheMs: number;
  private readonly cache = new Map<string, { records: unknown[]; until: number }>();
  private readonly configured: boolean;

  constructor(options: SipResolverOptions = {}) {
    this.resolver = new Resolver({ timeout: options.timeoutMs ?? 2000, tries: 2 });
    this.configured = options.servers !== undefined && options.servers.length > 0;
    if (this.configured) this.resolver.setServers([...options.servers!]);
    this.cacheMs = options.cacheMs ?? 30_000;
  }

  /**
   * Every server for `host` over `protocol` (`port`: the URI's, if any), in the order to try
   * them (RFC 3263 §4.3: the next one after a transport error, a timeout or a 503): SRV
   * targets by priority, weighted random within one; targets that do not resolve are left
   * out. Throws when none resolves.
   */
  async locateAll(host: string, port: number | undefined, protocol: TransportProtocol, defaultPort: number, srvName?: string): Promise<ResolvedServer[]> {
    const service = SRV_SERVICE[protocol];
    if (port === undefined && service !== undefined && !isSpecialUse(host)) {
      const servers: ResolvedServer[] = [];
      for (const record of orderSrv(await this.srv(srvName ?? `${service}.${host}`))) {
        try {
          servers.push({ address: await this.address(record.name), port: record.port });
        } catch {
          // this target has no address: the next one
        }
      }
      if (servers.length > 0) return servers;
    }
    return [{ address: await this.address(host), port: port ?? defaultPort }];
  }

  /**
   * RFC 3263 §4.1: the transport NAPTR records of `host` prefer among `usable`, and the SRV
   * name to query for it; undefined when the domain has no usable NAPTR record.
   */
  async naptr(host: string, usable: readonly TransportProtocol[]): Promise<{ protocol: TransportProtocol; srvName: string } | undefined> {
    if (isSpecialUse(host)) return undefined;
    const records = await this.cached(`naptr ${host}`, () => this.resolver.resolveNaptr(host));
    const candidates = records
      .filter((r) => r.flags.toLowerCase() === 's' && usable.includes(NAPTR_SERVICE[r.service.toUpperCase()]) && r.replacement !== '')
      .sort((a, b) => a.order - b.order || a.preference - b.preference);
    const first = candidates[0];
    return first ? { protocol: NAPTR_SERVICE[first.service.toUpperCase()], srvName: first.replacement } : undefined;
  }

  /** SRV records of a name; none when it has none (NXDOMAIN, NODATA) or DNS fails. */
  private srv(name: string): Promise<SrvRecord[]> {
    return this.cached(`srv ${name}`, () => this.resolver.resolveSrv(name));
  }

  private async cached<T>(key: string, query: () => Promise<T[]>): Promise<T[]> {
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && hit.until > now) return hit.records as T[];
    let records: T[];
    try {
      records = await query();
    } catch {
      records = [];
    }
    this.cache.set(key, { records, until: now + this.cacheMs });
    if (this.cache.size > 1000) this.cache.delete(this.cache.keys().next().value!);
    return records;
  }

  private async address(host: string): Promise<string> {
    if (isIP(host)) return host;
    // Configured servers answer every name (A, then AAAA), but the special-use ones, which
    // /etc/hosts does; without them, the system resolver (getaddrinfo) as for any program.
    if (!this.configured || isSpecialUse(host)) return (await lookup(host)).address;
    for (const query of [() => this.resolver.resolve4(host), () => this.resolver.resolve6(host)]) {
      try {
        const found = await query();
        if (found.length > 0) return found[0];
      } catch {
        // not there: next
      }
    }
    throw Object.assign(new Error(`${host}: no A or AAAA record`), { code: 'ENOTFOUND' });
  }
}

/**
 * RFC 2782: the lowest priority wins; among equals, a random pick weighted by `weight` (records
 * of weight 0 only when all weigh 0). A target of "." means the service is not offered.
 */
export function chooseSrv(records: readonly SrvRecord[], random: () => number = Math.random): SrvRecord | undefined {
  const usable = records.filter((r) => r.name !== '' && r.name !== '.');
  if (usable.length === 0) return undefined;
  const best = Math.min(...usable.map((r) => r.priority));
  const candidates = usable.filter((r) => r.priority === best);
  const total = candidates.reduce((sum, r) => sum + r.weight, 0);
  if (total === 0) return candidates[Math.floor(random() * candidates.length)];
  let pick = random() * total;
  for (const r of candidates) {
    pick -= r.weight;
    if (pick < 0) return r;
  }
  return candidates[candidates.length - 1];
}

/** Every usable SRV record in RFC 2782 order: by priority, then weighted random picks. */
export function orderSrv(records: readonly SrvRecord[], random: () => number = Math.random): SrvRecord[] {
  const left = [...records];
  const ordered: SrvRecord[] = [];
  for (let next = chooseSrv(left, random); next !== undefined; next = chooseSrv(left, random)) {
    ordered.push(next);
    left.splice(left.indexOf(next), 1);
  }
  return ordered;
}

/** RFC 6761 §6.3, §6.4: names that must not be looked up in DNS. */
function isSpecialUse(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost') || h === 'invalid' || h.endsWith('.invalid');
}
