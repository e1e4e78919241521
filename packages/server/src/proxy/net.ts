/** Trusted-peer matching: IPv4/IPv6 addresses and CIDR prefixes. */

import { isIP } from 'node:net';

function toBigInt(address: string): { value: bigint; bits: number } | undefined {
  const family = isIP(address);
  if (family === 4) {
    const parts = address.split('.').map(Number);
    return { value: parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n), bits: 32 };
  }
  if (family === 6) {
    let addr = address;
    const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(addr);
    if (v4) {
      const n = toBigInt(v4[1])!.value;
      addr = addr.replace(v4[1], `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`);
    }
    const [head, tail] = addr.split('::');
    const h = head ? head.split(':') : [];
    const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
    const fill = addr.includes('::') ? Array(8 - h.length - t.length).fill('0') : [];
    const groups = [...h, ...fill, ...t];
    return { value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n), bits: 128 };
  }
  return undefined;
}

/** `127.0.0.1`, `10.0.0.0/8`, `::1`, `2001:db8::/32`. IPv4-mapped IPv6 matches IPv4 rules. */
export function addressMatches(address: string, rule: string): boolean {
  const plain = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  const [net, prefixText] = rule.split('/');
  const a = toBigInt(plain);
  const n = toBigInt(net);
  if (!a || !n || a.bits !== n.bits) return false;
  const prefix = prefixText === undefined ? n.bits : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > n.bits) return false;
  const shift = BigInt(n.bits - prefix);
  return a.value >> shift === n.value >> shift;
}

export function isTrusted(address: string, rules: readonly string[]): boolean {
  return rules.some((r) => addressMatches(address, r));
}
