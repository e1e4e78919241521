/**
 * The smallest useful STUN server (RFC 5389): answer a Binding request with a Binding
 * success response carrying XOR-MAPPED-ADDRESS. RFC 5626 §4.4.2 / §8.4: UAs keep UDP flows
 * alive with STUN Binding requests sent to the SIP port, and learn from the mapped address
 * whether their NAT binding changed.
 */

import { isIPv4, isIPv6 } from 'node:net';
import { normalizeAddress } from './connection-table.js';

const MAGIC_COOKIE = 0x2112a442;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const XOR_MAPPED_ADDRESS = 0x0020;
const HEADER = 20;

/** Is this datagram a STUN message (RFC 5389 §6: two zero bits, the magic cookie)? */
export function isStun(msg: Buffer): boolean {
  return msg.length >= HEADER && (msg[0] & 0xc0) === 0 && msg.readUInt32BE(4) === MAGIC_COOKIE && msg.readUInt16BE(2) % 4 === 0 && msg.readUInt16BE(2) + HEADER === msg.length;
}

/** The response to a Binding request from address:port, or undefined for anything else. */
export function stunBindingResponse(msg: Buffer, address: string, port: number): Buffer | undefined {
  if (!isStun(msg) || msg.readUInt16BE(0) !== BINDING_REQUEST) return undefined;
  const ip = normalizeAddress(address);
  let value: Buffer;
  if (isIPv4(ip)) {
    value = Buffer.alloc(8);
    value.writeUInt8(0x01, 1);
    value.writeUInt16BE(port ^ (MAGIC_COOKIE >>> 16), 2);
    value.writeUInt32BE((ipv4ToInt(ip) ^ MAGIC_COOKIE) >>> 0, 4);
  } else if (isIPv6(ip)) {
    value = Buffer.alloc(20);
    value.writeUInt8(0x02, 1);
    value.writeUInt16BE(port ^ (MAGIC_COOKIE >>> 16), 2);
    const raw = ipv6ToBytes(ip);
    const mask = Buffer.concat([msg.subarray(4, 8), msg.subarray(8, 20)]); // cookie + transaction id
    for (let i = 0; i < 16; i++) value[4 + i] = raw[i] ^ mask[i];
  } else {
    return undefined;
  }
  const response = Buffer.alloc(HEADER + 4 + value.length);
  response.writeUInt16BE(BINDING_SUCCESS, 0);
  response.writeUInt16BE(4 + value.length, 2);
  msg.copy(response, 4, 4, 20); // cookie + transaction id
  response.writeUInt16BE(XOR_MAPPED_ADDRESS, HEADER);
  response.writeUInt16BE(value.length, HEADER + 2);
  value.copy(response, HEADER + 4);
  return response;
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((acc, part) => ((acc << 8) | Number(part)) >>> 0, 0);
}

function ipv6ToBytes(ip: string): Buffer {
  let text = ip;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  // An embedded IPv4 tail ("::ffff:1.2.3.4" was normalised away, but "64:ff9b::1.2.3.4" is legal).
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipv4ToInt(v4[1]);
    text = `${text.slice(0, -v4[1].length)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headParts = head ? head.split(':') : [];
  const tailParts = tail ? tail.split(':') : [];
  const missing = 8 - headParts.length - tailParts.length;
  const parts = [...headParts, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...tailParts];
  const out = Buffer.alloc(16);
  parts.slice(0, 8).forEach((p, i) => out.writeUInt16BE(parseInt(p, 16) || 0, i * 2));
  return out;
}
