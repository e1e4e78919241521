/** Every server and push error code is documented in docs/errors.md, with its class. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ConfigError, StartupError, StoreError } from '../../src/errors.js';
import { PushClosedError, PushConfigError, PushKeyError, PushParamError, PushPayloadError } from '../../src/push/errors.js';

const doc = readFileSync(new URL('../../../../docs/errors.md', import.meta.url), 'utf8');

test('every server and push-gateway error code has a row in docs/errors.md naming its class', () => {
  const errors = [
    new ConfigError('x'),
    new StoreError('x'),
    new StartupError('x'),
    new PushConfigError('x'),
    new PushKeyError('x'),
    new PushParamError('x'),
    new PushPayloadError('x'),
    new PushClosedError(),
  ];
  for (const e of errors) {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${e.code}\` |`));
    assert.ok(row, `${e.code} is documented`);
    assert.ok(row.includes(`\`${e.constructor.name}\``), `${e.code} row names ${e.constructor.name}`);
  }
});

test('every code in the server sources is one of the documented ones', () => {
  for (const file of ['../../src/errors.ts', '../../src/push/errors.ts']) {
    const src = readFileSync(new URL(file, import.meta.url), 'utf8');
    for (const [, code] of src.matchAll(/'((?:PUSHCALL|PUSH)_ERR_[A-Z_]+)'/g)) assert.ok(doc.includes(`\`${code}\``), `${code} documented`);
  }
});
