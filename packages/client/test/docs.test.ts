import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CLIENT_ERROR_CODES, INVALID_PUSH_UUID, PUSHCALL_CALL_ID_NAMESPACE, callUuid } from '../src/index.js';

const sdk = readFileSync(new URL('../../../docs/client-sdk.md', import.meta.url), 'utf8');
const rn = readFileSync(new URL('../../../docs/react-native.md', import.meta.url), 'utf8');

test('every client error code is documented in docs/client-sdk.md', () => {
  for (const code of CLIENT_ERROR_CODES) assert.ok(sdk.includes(`\`${code}\``), code);
});

test('the docs state the namespace and the vectors native code must reproduce', () => {
  for (const doc of [sdk, rn]) {
    assert.ok(doc.includes(PUSHCALL_CALL_ID_NAMESPACE));
    assert.ok(doc.includes(callUuid('a84b4c76e66710@pc33.atlanta.com')));
  }
  assert.ok(rn.includes(INVALID_PUSH_UUID));
  assert.ok(rn.includes('pn-apns-env=sandbox'));
  assert.ok(rn.includes('pn-provider=fcm;pn-param=<Firebase project id>;pn-prid='));
});
