/** Secrets never appear whole in logs: push tokens, PURRs, digest responses. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import { redactMessageText, redactContact, redactProviderText } from '../../src/observability/redact.js';

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

test('a Contact for the admin API loses its push parameters and any token-length value, whatever the token looks like', () => {
  const fcm = 'dGhpc2lzYW5mY21pZA:APA91bHPRgkFLJu7Qj9jXmQv4nWcKzL0sYbT2oP8xR6uE1aD3fG5hJ7kL9mN';
  const endpoint = 'https://updates.push.services.mozilla.com/wpush/v2/gAAAAABkSECRETSUBSCRIPTIONPART';
  for (const contact of [
    `sip:alice@192.0.2.10:5062;transport=tcp;ob;pn-provider=fcm;pn-prid=${fcm};pn-param=proj`,
    `sip:alice@192.0.2.10:5062;pn-provider=webpush;pn-prid=${endpoint}`,
    `sip:alice@192.0.2.10:5062;x-token=${fcm.slice(20)}`,
  ]) {
    const shown = redactContact(contact);
    assert.doesNotMatch(shown, /APA91bHPRgkFLJu7Qj9j|SECRETSUBSCRIPTION|pn-/, shown);
    assert.match(shown, /^sip:alice@192\.0\.2\.10:5062/);
  }
  assert.equal(redactContact('sip:alice@192.0.2.10:5062;transport=tcp;ob;pn-provider=apns;pn-prid=abc'), 'sip:alice@192.0.2.10:5062;transport=tcp;ob');
});

test('provider error text loses token-like runs before it reaches a timeline', () => {
  const text = 'INVALID_ARGUMENT: Invalid value at \'message.token\' (TYPE_STRING), "dGhpc2lzYW5mY21pZA:APA91bHPRgkFLJu7Qj9jXmQv4nWcKzL0sYbT2oP8xR6"';
  assert.doesNotMatch(redactProviderText(text), /APA91bHPRgkFLJu7Qj9j/);
  assert.match(redactProviderText(text), /^INVALID_ARGUMENT: Invalid value at 'message\.token'/);
});
