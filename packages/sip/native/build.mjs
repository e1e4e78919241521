#!/usr/bin/env node
// Builds the batched UDP addon (udp_batch.c) with the system C compiler against the
// running Node's own headers: no node-gyp, no download. Linux only (recvmmsg).
//   node packages/sip/native/build.mjs             build, fail loudly
//   node packages/sip/native/build.mjs --optional  build if possible (npm install hook);
//                                                  without it the UDP transport uses node:dgram
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const optional = process.argv.includes('--optional');
const output = join(here, 'build', 'udp_batch.node');

function fail(message) {
  if (optional) {
    console.warn(`@pushcall/sip: batched UDP I/O not built (${message}); UDP uses node:dgram`);
    process.exit(0);
  }
  console.error(`@pushcall/sip: cannot build the batched UDP addon: ${message}`);
  process.exit(1);
}

if (process.platform !== 'linux') fail(`recvmmsg is Linux-only, this is ${process.platform}`);
const headerDirs = [
  join(dirname(dirname(process.execPath)), 'include', 'node'),
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
].filter(Boolean);
const headers = headerDirs.find((dir) => existsSync(join(dir, 'node_api.h')));
if (!headers) fail(`Node's headers (node_api.h) not found in ${headerDirs.join(' or ')}`);
const compiler = process.env.CC || 'cc';
mkdirSync(join(here, 'build'), { recursive: true });
const temporary = `${output}.${process.pid}.tmp`;
const args = ['-O2', '-Wall', '-Wextra', '-Wno-unused-parameter', '-shared', '-fPIC', `-I${headers}`, join(here, 'udp_batch.c'), '-o', temporary];
const result = spawnSync(compiler, args, { stdio: ['ignore', 'inherit', 'inherit'] });
if (result.error) fail(`${compiler}: ${result.error.message} (Debian: apt-get install -y gcc libc6-dev)`);
if (result.status !== 0) fail(`${compiler} ${args.join(' ')} exited with ${result.status}`);
renameSync(temporary, output); // atomic: a running server never loads half a file
console.log(`@pushcall/sip: built ${output}`);
