/** HPACK (RFC 7541): the Appendix C examples, the Huffman table, the encoder, the decoder's errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HpackDecoder, HpackEncoder, STATIC_TABLE, writeInteger } from '../../../src/push/h2/hpack.js';
import type { HeaderField } from '../../../src/push/h2/hpack.js';
import { HUFFMAN_EOS, HUFFMAN_TABLE, huffmanDecode, huffmanMaxDecodedLength } from '../../../src/push/h2/huffman.js';
import { Http2Error, Http2ProtocolError } from '../../../src/push/h2/frames.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function decodeAll(decoder: HpackDecoder, block: Buffer): HeaderField[] {
  return decoder.decode(block, 0, block.length);
}

function table(decoder: HpackDecoder): Array<[string, string, number]> {
  const rows: Array<[string, string, number]> = [];
  for (let i = 0; i < decoder.tableLength; i++) {
    const [n, v] = decoder.entry(i);
    rows.push([n, v, n.length + v.length + 32]);
  }
  return rows;
}

/** Test-only Huffman encoder from the table, to round-trip the decoder over every byte value. */
function huffmanEncode(bytes: Uint8Array): Buffer {
  const out: number[] = [];
  let acc = 0n;
  let bits = 0n;
  for (const b of bytes) {
    acc = (acc << BigInt(HUFFMAN_TABLE[b * 2 + 1])) | BigInt(HUFFMAN_TABLE[b * 2]);
    bits += BigInt(HUFFMAN_TABLE[b * 2 + 1]);
    while (bits >= 8n) {
      bits -= 8n;
      out.push(Number((acc >> bits) & 0xffn));
    }
    acc &= (1n << bits) - 1n;
  }
  if (bits > 0n) out.push(Number(((acc << (8n - bits)) | ((1n << (8n - bits)) - 1n)) & 0xffn)); // EOS-prefix padding
  return Buffer.from(out);
}

test('C.1: integers with 5- and 8-bit prefixes', () => {
  const buf = Buffer.alloc(8);
  assert.deepEqual(buf.subarray(0, writeInteger(buf, 0, 5, 0, 10)), hex('0a'));
  assert.deepEqual(buf.subarray(0, writeInteger(buf, 0, 5, 0, 1337)), hex('1f9a0a'));
  assert.deepEqual(buf.subarray(0, writeInteger(buf, 0, 8, 0, 42)), hex('2a'));
});

test('C.2.1-C.2.4: each field representation, and what it does to the dynamic table', () => {
  const d = new HpackDecoder();
  assert.deepEqual(decodeAll(d, hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572')), [['custom-key', 'custom-header']]);
  assert.deepEqual(table(d), [['custom-key', 'custom-header', 55]]);
  const d2 = new HpackDecoder();
  assert.deepEqual(decodeAll(d2, hex('040c 2f73 616d 706c 652f 7061 7468')), [[':path', '/sample/path']]);
  assert.equal(d2.tableLength, 0, 'without indexing adds nothing');
  assert.deepEqual(decodeAll(d2, hex('1008 7061 7373 776f 7264 0673 6563 7265 74')), [['password', 'secret']]);
  assert.equal(d2.tableLength, 0, 'never indexed adds nothing');
  assert.deepEqual(decodeAll(d2, hex('82')), [[':method', 'GET']]);
});

const C3_C4_OUTPUT: HeaderField[][] = [
  [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']],
  [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']],
  [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']],
];
const C3_C4_TABLES = [
  [[':authority', 'www.example.com', 57]],
  [['cache-control', 'no-cache', 53], [':authority', 'www.example.com', 57]],
  [['custom-key', 'custom-value', 54], ['cache-control', 'no-cache', 53], [':authority', 'www.example.com', 57]],
];

test('C.3: a request sequence without Huffman coding shares one dynamic table', () => {
  const d = new HpackDecoder();
  const blocks = ['8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d', '8286 84be 5808 6e6f 2d63 6163 6865',
    '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65'];
  blocks.forEach((b, i) => {
    assert.deepEqual(decodeAll(d, hex(b)), C3_C4_OUTPUT[i], `C.3.${i + 1}`);
    assert.deepEqual(table(d), C3_C4_TABLES[i], `C.3.${i + 1} table`);
  });
  assert.equal(d.tableSize, 164);
});

test('C.4: the same requests with Huffman-coded strings', () => {
  const d = new HpackDecoder();
  const blocks = ['8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', '8286 84be 5886 a8eb 1064 9cbf',
    '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'];
  blocks.forEach((b, i) => {
    assert.deepEqual(decodeAll(d, hex(b)), C3_C4_OUTPUT[i], `C.4.${i + 1}`);
    assert.deepEqual(table(d), C3_C4_TABLES[i], `C.4.${i + 1} table`);
  });
});

const C5_C6_OUTPUT: HeaderField[][] = [
  [[':status', '302'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com']],
  [[':status', '307'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'], ['location', 'https://www.example.com']],
  [[':status', '200'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'], ['location', 'https://www.example.com'],
    ['content-encoding', 'gzip'], ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1']],
];
const C5_C6_TABLES = [
  [['location', 'https://www.example.com', 63], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT', 65], ['cache-control', 'private', 52], [':status', '302', 42]],
  [[':status', '307', 42], ['location', 'https://www.example.com', 63], ['date', 'Mon, 21 Oct 2013 20:13:21 GMT', 65], ['cache-control', 'private', 52]],
  [['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1', 98], ['content-encoding', 'gzip', 52],
    ['date', 'Mon, 21 Oct 2013 20:13:22 GMT', 65]],
];

test('C.5: responses without Huffman evict the oldest entries from a 256-octet table', () => {
  const d = new HpackDecoder(256);
  const blocks = [
    '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768'
      + '7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
    '4803 3330 37c1 c0bf',
    '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153'
      + '444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31',
  ];
  blocks.forEach((b, i) => {
    assert.deepEqual(decodeAll(d, hex(b)), C5_C6_OUTPUT[i], `C.5.${i + 1}`);
    assert.deepEqual(table(d), C5_C6_TABLES[i], `C.5.${i + 1} table`);
  });
  assert.equal(d.tableSize, 215);
});

test('C.6: the same responses with Huffman coding', () => {
  const d = new HpackDecoder(256);
  const blocks = [
    '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
    '4883 640e ffc1 c0bf',
    '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b'
      + '3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
  ];
  blocks.forEach((b, i) => {
    assert.deepEqual(decodeAll(d, hex(b)), C5_C6_OUTPUT[i], `C.6.${i + 1}`);
    assert.deepEqual(table(d), C5_C6_TABLES[i], `C.6.${i + 1} table`);
  });
});

test('Appendix B: the Huffman table is a complete canonical code of 257 symbols', () => {
  assert.equal(HUFFMAN_TABLE.length, 257 * 2);
  // Canonical: sorted by (length, symbol), each code is the previous plus one, shifted to its length.
  const order = [...Array(257).keys()].sort((a, b) => HUFFMAN_TABLE[a * 2 + 1] - HUFFMAN_TABLE[b * 2 + 1] || a - b);
  let code = 0;
  let len = HUFFMAN_TABLE[order[0] * 2 + 1];
  let kraft = 0n;
  order.forEach((sym, i) => {
    const l = HUFFMAN_TABLE[sym * 2 + 1];
    if (i > 0) code = (code + 1) * 2 ** (l - len);
    len = l;
    assert.equal(HUFFMAN_TABLE[sym * 2], code, `symbol ${sym}`);
    kraft += 1n << BigInt(30 - l);
  });
  assert.equal(kraft, 1n << 30n, 'Kraft sum is exactly 1');
  assert.deepEqual([HUFFMAN_TABLE[HUFFMAN_EOS * 2], HUFFMAN_TABLE[HUFFMAN_EOS * 2 + 1]], [0x3fffffff, 30]);
  assert.deepEqual([HUFFMAN_TABLE[48 * 2], HUFFMAN_TABLE[48 * 2 + 1]], [0x0, 5], "'0'");
});

test('Huffman: every byte string round-trips through the table and the decoder', () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const enc = huffmanEncode(all);
  const out = Buffer.alloc(huffmanMaxDecodedLength(enc.length));
  assert.deepEqual(out.subarray(0, huffmanDecode(enc, 0, enc.length, out, 0)), Buffer.from(all));
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
    const e = huffmanEncode(bytes);
    const o = Buffer.alloc(huffmanMaxDecodedLength(e.length));
    const n = huffmanDecode(e, 0, e.length, o, 0);
    return n === bytes.length && o.subarray(0, n).equals(Buffer.from(bytes));
  }), { numRuns: 300 });
});

test('Huffman: RFC 7541 §5.2 errors: EOS in the string, padding over 7 bits, padding not all ones', () => {
  const out = Buffer.alloc(64);
  assert.equal(huffmanDecode(hex('ffffffff'), 0, 4, out, 0), -1, 'EOS (30 ones) decoded');
  assert.equal(huffmanDecode(hex('ff'), 0, 1, out, 0), -1, '8 bits of padding');
  // 'a' = 00011 then 3 padding bits 000 instead of 111.
  assert.equal(huffmanDecode(hex('18'), 0, 1, out, 0), -1, 'zero padding');
  assert.equal(huffmanDecode(hex('1f'), 0, 1, out, 0), 1, "'a' with valid padding");
  assert.equal(out[0], 0x61);
});

test('decoder: malformed blocks are COMPRESSION_ERROR (Http2ProtocolError H2_ERR_COMPRESSION)', () => {
  const cases: Array<[string, string]> = [
    ['80', 'index 0'],
    ['be', 'index 62 with an empty dynamic table'],
    ['ff80808080808001', 'integer overflow'],
    ['3fe21f', 'size update to 4097, above the advertised 4096'],
    ['823f', 'size update after a field'],
    ['4005 6162', 'string longer than the block'],
    ['0081ff 0161', 'bad Huffman name'],
    ['ff', 'truncated integer'],
  ];
  for (const [block, why] of cases) {
    assert.throws(() => decodeAll(new HpackDecoder(), hex(block)), (err: unknown) => {
      assert.ok(err instanceof Http2ProtocolError, why);
      assert.equal(err.code, 'H2_ERR_COMPRESSION', why);
      assert.equal(err.h2Code, 9, why);
      return true;
    }, why);
  }
});

test('decoder: a size update shrinks and evicts; an entry larger than the table empties it (RFC 7541 §4.3-4.4)', () => {
  const d = new HpackDecoder();
  decodeAll(d, hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'));
  assert.equal(d.tableLength, 1);
  assert.deepEqual(decodeAll(d, hex('20 82')), [[':method', 'GET']]);
  assert.equal(d.tableLength, 0, 'size update to 0 evicts everything');
  decodeAll(d, hex('3fe11f')); // back to 4096 (31 + 4065)
  const big = 'x'.repeat(5000);
  const block = Buffer.alloc(6000);
  const end = new HpackEncoderForTest().literalWithIndexing(block, 'k', big);
  decodeAll(d, block.subarray(0, end));
  assert.equal(d.tableLength, 0, 'an entry above the limit is not added');
  // Many entries: the ring buffer grows and keeps order.
  const d2 = new HpackDecoder();
  for (let i = 0; i < 100; i++) {
    const n = new HpackEncoderForTest().literalWithIndexing(block, `k${i}`, 'v');
    decodeAll(d2, block.subarray(0, n));
  }
  assert.equal(d2.tableLength, 100);
  assert.deepEqual(d2.entry(0), ['k99', 'v']);
  assert.deepEqual(d2.entry(99), ['k0', 'v']);
  assert.deepEqual(decodeAll(d2, hex('be')), [['k99', 'v']], 'index 62 is the newest entry');
});

class HpackEncoderForTest {
  literalWithIndexing(buf: Buffer, name: string, value: string): number {
    let off = writeInteger(buf, 0, 6, 0x40, 0);
    off = writeInteger(buf, off, 7, 0, name.length);
    off += buf.write(name, off, 'latin1');
    off = writeInteger(buf, off, 7, 0, value.length);
    return off + buf.write(value, off, 'latin1');
  }
}

test('encoder: static full matches are indexed, names reused, credentials never indexed, first block sets table size 0', () => {
  const enc = new HpackEncoder();
  const headers: Array<[string, string]> = [
    [':method', 'POST'], [':scheme', 'https'], [':path', '/3/device/abc'], [':authority', 'api.push.apple.com'],
    ['authorization', 'bearer x.y.z'], ['apns-topic', 'com.example.app.voip'], ['content-length', '300'],
  ];
  const buf = Buffer.alloc(HpackEncoder.maxLength(headers));
  const end = enc.encode(headers, buf, 0);
  assert.ok(end <= buf.length);
  assert.equal(buf[0], 0x20, 'dynamic table size update to 0 first');
  assert.equal(buf[1], 0x83, ':method POST is static index 3');
  assert.equal(buf[2], 0x87, ':scheme https is static index 7');
  assert.equal(buf[3], 0x04, ':path: literal without indexing, name index 4');
  const auth = buf.indexOf(Buffer.from('bearer x.y.z')) - 3;
  assert.deepEqual([...buf.subarray(auth, auth + 3)], [0x1f, 8, 12], 'authorization (23): never indexed, 4-bit prefix 15 + 8, then the value length');
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(buf, 0, end), headers);
  assert.equal(d.tableLength, 0, 'nothing was indexed');
  // Later blocks do not repeat the size update.
  const end2 = enc.encode([[':method', 'GET']], buf, 0);
  assert.deepEqual(buf.subarray(0, end2), hex('82'));
});

test('encoder: any lower-case header list round-trips through the decoder', () => {
  const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);
  const value = fc.string({ maxLength: 300, unit: fc.constantFrom(...' !"#$%&()*+,-./0123456789:;<=>?@ABCXYZ[]^_`abcxyz{|}~\t'.split('')) });
  const staticPair = fc.constantFrom(...STATIC_TABLE.slice(1).map(([n, v]) => [n, v] as [string, string]));
  fc.assert(fc.property(fc.array(fc.oneof(fc.tuple(name, value), staticPair), { maxLength: 30 }), (headers) => {
    const buf = Buffer.alloc(HpackEncoder.maxLength(headers));
    const end = new HpackEncoder().encode(headers, buf, 0);
    assert.deepEqual(new HpackDecoder().decode(buf, 0, end), headers);
  }), { numRuns: 200 });
});

test('encoder: an upper-case or empty header name is refused with H2_ERR_HEADER (RFC 9113 §8.2.1)', () => {
  const enc = new HpackEncoder();
  for (const bad of ['Apns-Id', '', 'a b', 'x:y']) {
    assert.throws(() => enc.encode([[bad, 'v']], Buffer.alloc(64), 0), (err: unknown) => err instanceof Http2Error && err.code === 'H2_ERR_HEADER', bad);
  }
  // The failed blocks did not consume the one-time table size update.
  const buf = Buffer.alloc(16);
  enc.encode([[':method', 'GET']], buf, 0);
  assert.deepEqual(buf.subarray(0, 2), hex('2082'));
});
