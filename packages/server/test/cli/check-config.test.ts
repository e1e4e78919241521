/**
 * `pushcall check-config` as a process: a good file passes (exit 0, a summary); a schema
 * error, a TLS key that does not belong to its certificate and an unreadable APNs key each
 * fail with exit 2 and a message that names the problem. Nothing listens or connects.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers/server.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

function checkConfig(file: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', MAIN, 'check-config', '--config', file], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A self-signed certificate and its key (openssl, as the TLS tests use). */
function certificate(dir: string, name: string): { certFile: string; keyFile: string } {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', `/CN=${name}`, '-keyout', keyFile, '-out', certFile], { stdio: 'pipe' });
  return { certFile, keyFile };
}

test('check-config: a good file passes; schema, TLS and push credential problems fail with exit 2 and say what is wrong', () => {
  const dir = tempDir();
  const a = certificate(dir, 'a');
  const b = certificate(dir, 'b');
  const apnsKey = join(dir, 'AuthKey.p8');
  writeFileSync(apnsKey, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  const write = (name: string, yaml: string) => {
    const file = join(dir, name);
    writeFileSync(file, yaml);
    return file;
  };
  const apns = (keyFile: string) => `push:\n  apns:\n    keyFile: ${keyFile}\n    keyId: ABC123DEFG\n    teamId: TEAM123456\n    endpoints: { production: https://127.0.0.1:9, sandbox: https://127.0.0.1:9 }\n`;

  const good = checkConfig(write('good.yaml', `listen: [tls:127.0.0.1:5061]\ntls:\n  certFile: ${a.certFile}\n  keyFile: ${a.keyFile}\n${apns(apnsKey)}`));
  assert.equal(good.status, 0, good.stderr);
  assert.match(good.stdout, /configuration OK .*listen tls:127\.0\.0\.1:5061; store sqlite; auth digest; TLS certificate and key match; push apns/);

  const schema = checkConfig(write('schema.yaml', 'registrar:\n  minExpires: sixty\n'));
  assert.equal(schema.status, 2);
  assert.match(schema.stderr, /registrar\.minExpires/);

  const mismatch = checkConfig(write('mismatch.yaml', `listen: [tls:127.0.0.1:5061]\ntls:\n  certFile: ${a.certFile}\n  keyFile: ${b.keyFile}\n`));
  assert.equal(mismatch.status, 2);
  assert.match(mismatch.stderr, /^pushcall: tls: .*(key values mismatch|KEY_VALUES_MISMATCH)/im);

  const missingKey = checkConfig(write('nokey.yaml', apns(join(dir, 'missing.p8'))));
  assert.equal(missingKey.status, 2);
  assert.match(missingKey.stderr, /^pushcall: push: .*missing\.p8/m);
});
