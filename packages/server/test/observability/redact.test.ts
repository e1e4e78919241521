/** Secrets never appear whole in logs: push tokens, PURRs, digest responses. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import { redactMessageText } from '../../src/observability/redact.js';

const TOKEN = 'a1'.repeat(32);
const PURR = '0123456789abcdef0123456789abcdef';

test('a SIP message text loses its tokens, PURRs and digest response', () => {
  const text = [
    'SIP/2.0 200 OK',
    `Contact: <sip:alice@192.0.2.1:5060;pn-provider=apns;pn-prid=${TOKEN};pn-purr=${PURR}>;expires=600`,
    `Feature-Caps: *;+sip.pns="apns";+sip.pnspurr="${PURR}"`,
    'Authorization: Digest username="alice", response="6629fae49393a05397450978507c4ef1"',
  ].join('\r\n');
  const out = redactMessageText(text);
  assert.ok(!out.includes(TOKEN));
  assert.ok(!out.includes(PURR));
  assert.ok(!out.includes('6629fae49393a05397450978507c4ef1'));
  assert.match(out, /\+sip\.pnspurr="012345…cdef"/);
});

test('a logged binding object has its PURRs and tokens censored', () => {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
  const logger = createLogger('info', sink as never);
  logger.info({ binding: { aor: 'sip:a@x', purrs: [PURR], push: { prid: TOKEN } } }, 'binding');
  const line = lines.join('');
  assert.ok(line.includes('sip:a@x'));
  assert.ok(!line.includes(PURR), line);
  assert.ok(!line.includes(TOKEN), line);
});
