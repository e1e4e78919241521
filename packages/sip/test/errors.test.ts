// Every error code defined in packages/sip/src/errors.ts must be documented in docs/errors.md
// (a table row naming the code and its class). Codes are found two ways that must agree:
// by reading the source, and by instantiating every exported SipError subclass.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as errors from '../src/errors.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const source = readFileSync(join(here, '..', 'src', 'errors.ts'), 'utf8');
const docs = readFileSync(join(root, 'docs', 'errors.md'), 'utf8');

/** `class X extends Y { ... readonly code = 'CODE'` pairs, in source order. */
function codesFromSource(text: string): Array<{ cls: string; code: string }> {
  const out: Array<{ cls: string; code: string }> = [];
  const classRe = /export\s+class\s+(\w+)\s+extends\s+\w+\s*\{([\s\S]*?)\n\}/g;
  for (const m of text.matchAll(classRe)) {
    const code = /readonly\s+code\s*(?::\s*[^=]+)?=\s*['"]([A-Z0-9_]+)['"]/.exec(m[2]);
    if (code) out.push({ cls: m[1], code: code[1] });
  }
  return out;
}

/** Codes of the exported concrete SipError classes, by constructing one of each. */
function codesFromClasses(): Array<{ cls: string; code: string }> {
  const out: Array<{ cls: string; code: string }> = [];
  for (const [name, value] of Object.entries(errors)) {
    if (typeof value !== 'function' || value === errors.SipError) continue;
    if (!(value.prototype instanceof errors.SipError)) continue;
    const instance = new (value as unknown as new (a: string) => errors.SipError)('probe');
    out.push({ cls: name, code: instance.code });
  }
  return out;
}

/** Table rows of docs/errors.md: code → class. */
function documentedRows(text: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\|\s*`([A-Z0-9_]+)`\s*\|\s*`?(\w+)`?\s*\|/.exec(line);
    if (m) rows.set(m[1], m[2]);
  }
  return rows;
}

test('errors.ts: reading the source finds the same codes as instantiating the exported classes', () => {
  const bySource = codesFromSource(source).sort((a, b) => a.code.localeCompare(b.code));
  const byClass = codesFromClasses().sort((a, b) => a.code.localeCompare(b.code));
  assert.ok(bySource.length >= 5, 'expected the SIP error classes to be found in errors.ts');
  assert.deepEqual(bySource, byClass);
});

test('docs/errors.md documents every code defined in packages/sip/src/errors.ts, with its class', () => {
  const rows = documentedRows(docs);
  const missing: string[] = [];
  for (const { cls, code } of codesFromSource(source)) {
    if (!rows.has(code)) missing.push(`${code} (${cls})`);
    else assert.equal(rows.get(code), cls, `docs/errors.md names the wrong class for ${code}`);
  }
  assert.deepEqual(missing, [], `undocumented error codes: ${missing.join(', ')} — add a row to docs/errors.md`);
});

test('error codes are unique', () => {
  const codes = codesFromSource(source).map((c) => c.code);
  assert.equal(new Set(codes).size, codes.length);
});

test('the doc-row reader recognises a missing code (the check can fail)', () => {
  const rows = documentedRows('| `SIP_ERR_PARSE` | `SipParseError` | x |\n');
  assert.ok(rows.has('SIP_ERR_PARSE'));
  assert.ok(!rows.has('SIP_ERR_LIMIT'));
});
