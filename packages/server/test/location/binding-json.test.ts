/**
 * The SQLite row codec: whatever a binding holds, its text parses back to exactly what
 * `JSON.stringify` would have stored, and the fixture covers every Binding field.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BINDING_KEYS, FLOW_KEYS, PUSH_KEYS, encodeBinding } from '../../src/location/binding-json.js';
import type { Binding } from '../../src/location/types.js';

/** Every optional field set. */
function full(text: string, n: number): Binding {
  return {
    id: `id-${text}`,
    aor: `sip:${text}@example.com`,
    contact: `sip:${text}@192.0.2.1:5062;pn-provider=apns`,
    instanceId: `<urn:uuid:${text}>`,
    regId: n,
    q: 0.5,
    callId: text,
    cseq: n,
    expiresAt: 1_800_000_000_123,
    registeredAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_001,
    path: [`<sip:${text}@proxy;lr>`, '<sip:edge;lr>'],
    flow: { protocol: 'tls', remoteAddress: '::1', remotePort: 5061, localAddress: '::1', localPort: 5061, connectionId: `c-${text}`, nodeId: text, nodeUri: `sip:${text}` },
    push: { provider: 'apns', prid: text, param: 'TEAM.bundle.voip', environment: 'sandbox', environmentDeclared: true, alertPrid: `${text}-alert`, form: 'flexisip-multi' },
    pnsreg: true,
    purrs: [text, 'older'],
    purrIssuedAt: 1_700_000_000_002,
    userAgent: `UA "${text}"`,
  };
}

/** Only what a plain binding needs. */
function minimal(text: string): Binding {
  return {
    id: text,
    aor: 'sip:a@b',
    contact: 'sip:a@192.0.2.1',
    callId: text,
    cseq: 1,
    expiresAt: 2,
    registeredAt: 3,
    updatedAt: 4,
    path: [],
    flow: { protocol: 'udp', remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 2, nodeId: 'n' },
    pnsreg: false,
  };
}

describe('binding row codec', () => {
  it('the full fixture sets every field the codec knows, so the comparisons below cover them all', () => {
    const b = full('x', 1);
    assert.deepEqual(Object.keys(b).sort(), Object.keys(BINDING_KEYS).sort());
    assert.deepEqual(Object.keys(b.flow).sort(), Object.keys(FLOW_KEYS).sort());
    assert.deepEqual(Object.keys(b.push ?? {}).sort(), Object.keys(PUSH_KEYS).sort());
  });

  it('parses back to what JSON.stringify stores, for any string content', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.integer(), (text, n) => {
        for (const b of [full(text, n), minimal(text)]) {
          assert.deepEqual(JSON.parse(encodeBinding(b)), JSON.parse(JSON.stringify(b)));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('escapes quotes, backslashes, control characters and lone surrogates as JSON.stringify does', () => {
    for (const text of ['"', '\\', '\n\r\t\u0000\u001f', '\ud800', 'a\udfffb', '😀', 'é\u2028']) {
      const b = minimal(text);
      assert.equal(encodeBinding(b), JSON.stringify(b));
    }
  });

  it('writes null for a number JSON cannot hold, as JSON.stringify does', () => {
    const b = { ...minimal('x'), cseq: Number.NaN, expiresAt: Number.POSITIVE_INFINITY };
    assert.deepEqual(JSON.parse(encodeBinding(b)), JSON.parse(JSON.stringify(b)));
  });
});
