import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { endReasonForCancel, endReasonForCancelHeader, parseReasonHeader } from '../src/reason.js';

test('parses RFC 3326 Reason values, several per header and several headers', () => {
  assert.deepEqual(parseReasonHeader('SIP;cause=200;text="Call completed elsewhere"'), [
    { protocol: 'SIP', cause: 200, text: 'Call completed elsewhere' },
  ]);
  assert.deepEqual(parseReasonHeader(['Q.850;cause=16;text="Terminated"', 'SIP ; cause = 600 ; text="Busy, Everywhere"']), [
    { protocol: 'Q.850', cause: 16, text: 'Terminated' },
    { protocol: 'SIP', cause: 600, text: 'Busy, Everywhere' },
  ]);
  assert.deepEqual(parseReasonHeader('sip;cause=603, Q.850;cause=21'), [
    { protocol: 'SIP', cause: 603 },
    { protocol: 'Q.850', cause: 21 },
  ]);
  assert.deepEqual(parseReasonHeader('SIP;text="a \\"quoted\\" word"'), [{ protocol: 'SIP', text: 'a "quoted" word' }]);
  assert.deepEqual(parseReasonHeader(undefined), []);
  assert.deepEqual(parseReasonHeader(''), []);
  assert.deepEqual(parseReasonHeader('SIP;cause=abc'), [{ protocol: 'SIP' }]);
});

test('maps CANCEL reasons: 200 → answeredElsewhere, 6xx → declinedElsewhere, else remoteEnded', () => {
  const cases: [string | undefined, string][] = [
    ['SIP;cause=200;text="Call completed elsewhere"', 'answeredElsewhere'],
    ['SIP;cause=600;text="Busy Everywhere"', 'declinedElsewhere'],
    ['SIP;cause=603;text="Decline"', 'declinedElsewhere'],
    ['SIP;cause=607;text="Unwanted"', 'declinedElsewhere'],
    ['SIP;cause=608', 'declinedElsewhere'],
    ['SIP;cause=700', 'remoteEnded'],
    ['SIP;cause=487', 'remoteEnded'],
    ['SIP;cause=480', 'remoteEnded'],
    ['Q.850;cause=16', 'remoteEnded'],
    ['Q.850;cause=19, SIP;cause=200', 'answeredElsewhere'],
    ['SIP;text="no cause"', 'remoteEnded'],
    [undefined, 'remoteEnded'],
  ];
  for (const [header, expected] of cases) assert.equal(endReasonForCancelHeader(header), expected, String(header));
});

test('the Reason parser never throws on arbitrary input', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.array(fc.string())), (input) => {
      const r = parseReasonHeader(input);
      endReasonForCancel(r);
    }),
    { numRuns: 500 },
  );
});
