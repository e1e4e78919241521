#!/usr/bin/env node
// The README's test command. Installs the system packages the tests need when they are
// missing (these machines run as root with apt), type-checks, then runs every test file
// with node's test runner. Never skips silently: a missing peer is an error.
import { execSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const SYSTEM_PACKAGES = [
  // [binary, Debian package]
  ['sipp', 'sip-tester'],
  // self-signed certificates for the TLS/WSS and APNs-emulator tests
  ['openssl', 'openssl'],
  // a real browser for the admin dashboard test (driven by playwright-core)
  ['chromium', 'chromium'],
  // the shared binding store of several nodes (store.type redis)
  ['redis-server', 'redis-server'],
];

function has(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

const missing = SYSTEM_PACKAGES.filter(([bin]) => !has(bin)).map(([, pkg]) => pkg);
if (missing.length > 0) {
  const cmd = `apt-get update && apt-get install -y ${missing.join(' ')}`;
  if (process.getuid?.() === 0) {
    console.log(`installing test peers: ${cmd}`);
    execSync(cmd, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  } else {
    console.error(`missing test peers (${missing.join(', ')}); run as root:\n  ${cmd}`);
    process.exit(1);
  }
}

// The batched UDP addon is tested like the rest: build it if `npm ci` could not, or again
// when its source changed since.
const addon = 'packages/sip/native/build/udp_batch.node';
if (!existsSync(addon) || statSync(addon).mtimeMs < statSync('packages/sip/native/udp_batch.c').mtimeMs) {
  const build = spawnSync(process.execPath, ['packages/sip/native/build.mjs'], { stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}

const only = process.argv.slice(2);
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'dist') continue;
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.test.ts')) files.push(path);
  }
}
for (const pkg of readdirSync('packages')) {
  try { walk(join('packages', pkg, 'test')); } catch { /* package without tests */ }
}
walk(join('bench', 'test')); // the benchmark's own logic (summaries BENCHMARKS.md quotes)
const selected = only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files;
if (selected.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

if (only.length === 0) {
  const tsc = spawnSync('npx', ['tsc', '-p', 'tsconfig.json', '--noEmit'], { stdio: 'inherit' });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
}

const run = spawnSync(
  process.execPath,
  ['--conditions=source', '--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...selected.sort()],
  { stdio: 'inherit' },
);
process.exit(run.status ?? 1);
