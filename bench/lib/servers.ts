// The servers under test: Kamailio (reference) and pushcall (external server started from
// its CLI). Each start gives a fresh process (group) on its own UDP port; stop() kills it
// and every child it forked.
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processTree, udpPortStats } from './proc.js';
import { spawnTracked, stopTracked, tail, type Spawned } from './spawned.js';

export const BENCH_DIR = fileURLToPath(new URL('../', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const KAMAILIO_CFG = join(BENCH_DIR, 'kamailio', 'registrar-bench.cfg');
export const PUSHCALL_CONFIG = join(BENCH_DIR, 'pushcall-bench.yaml');
export const PUSHCALL_MAIN = join(REPO_ROOT, 'packages', 'server', 'src', 'cli', 'main.ts');
/** The compiled CLI (`npm run build`), what a deployment runs; the benchmark measures this. */
export const PUSHCALL_DIST_MAIN = join(REPO_ROOT, 'packages', 'server', 'dist', 'cli', 'main.js');

/** Compile every package (scripts/build.mjs) so the benchmark runs the code a deployment runs. */
export function buildPushcall(): void {
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'build.mjs')], { cwd: REPO_ROOT, stdio: 'inherit' });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface ServerHandle {
  /** e.g. "kamailio-tlsf", "pushcall" */
  name: string;
  port: number;
  command: string;
  proc: Spawned;
  /** did the server answer an OPTIONS probe before the step (false: only the port was seen bound) */
  probeAnswered: boolean;
  /** live pids of the server (wrapper, main process, forked children) */
  pids(): number[];
  stop(): Promise<void>;
  logTail(lines?: number): string;
}

function handle(name: string, port: number, command: string, proc: Spawned): ServerHandle {
  return {
    name,
    port,
    command,
    proc,
    probeAnswered: false,
    pids: () => processTree(proc.pid).map((p) => p.pid),
    stop: async () => {
      await stopTracked(proc, 5000);
    },
    logTail: (lines = 20) => `${tail(proc.stderrPath, lines)}\n${tail(proc.stdoutPath, lines)}`.trim(),
  };
}

/** Send one SIP OPTIONS over UDP and wait for any response (any status proves a live SIP stack). */
export function optionsProbe(port: number, timeoutMs = 500): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    const id = randomBytes(6).toString('hex');
    let done = false;
    const finish = (v: string | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.close();
      resolve(v);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    sock.on('message', (msg) => finish(msg.toString('utf8').split('\r\n')[0] ?? ''));
    sock.on('error', () => finish(null));
    sock.bind(0, '127.0.0.1', () => {
      const lport = sock.address().port;
      const req =
        `OPTIONS sip:127.0.0.1:${port} SIP/2.0\r\n` +
        `Via: SIP/2.0/UDP 127.0.0.1:${lport};branch=z9hG4bK-probe-${id};rport\r\n` +
        'Max-Forwards: 70\r\n' +
        `From: <sip:probe@127.0.0.1>;tag=${id}\r\n` +
        `To: <sip:127.0.0.1:${port}>\r\n` +
        `Call-ID: probe-${id}@127.0.0.1\r\n` +
        'CSeq: 1 OPTIONS\r\n' +
        'Content-Length: 0\r\n\r\n';
      sock.send(req, port, '127.0.0.1');
    });
  });
}

/**
 * Wait until the server's UDP port is bound and it answers OPTIONS. A server that binds the
 * port but never answers OPTIONS is accepted after `probeGraceMs` (probeAnswered=false).
 */
async function waitReady(h: ServerHandle, timeoutMs: number, probeGraceMs = 3000): Promise<void> {
  const start = Date.now();
  let boundAt: number | undefined;
  while (Date.now() - start < timeoutMs) {
    if (!h.proc.isRunning()) {
      throw new Error(`${h.name} exited during startup\n  ${h.command}\n${h.logTail(30)}`);
    }
    if (udpPortStats(h.port).sockets > 0) {
      boundAt ??= Date.now();
      const reply = await optionsProbe(h.port, 300);
      if (reply !== null) {
        h.probeAnswered = true;
        // Kamailio answers from the first worker while others may still initialise
        await sleep(200);
        return;
      }
      if (Date.now() - boundAt > probeGraceMs) return;
    } else {
      await sleep(100);
    }
  }
  throw new Error(`${h.name} did not start listening on udp 127.0.0.1:${h.port} within ${timeoutMs} ms\n${h.logTail(30)}`);
}

/** Fail clearly when something else (a colleague's test, a leftover server) holds the port. */
export function assertUdpPortFree(port: number, what: string): void {
  if (udpPortStats(port).sockets > 0) {
    throw new Error(`udp port ${port} (${what}) is already in use by another process; pick another with the --*-port options`);
  }
}

// ---------------------------------------------------------------------------------- Kamailio

export type KamailioVariant = 'tlsf' | 'packaged';

export interface KamailioOptions {
  port: number;
  /** 'tlsf': `-x tlsf` (TLSF shared-memory allocator); 'packaged': Debian default (q_malloc) */
  variant: KamailioVariant;
  workDir: string;
  /** shared memory, MB (-m); the location table of a long step needs far more than 64 MB */
  shmMb: number;
  /** private memory per process, MB (-M) */
  pkgMb?: number;
  /** UDP workers (-A CHILDREN=n); the cfg's default is 4 */
  children?: number;
  maxLifetimeSec: number;
}

/** The reference cfg with the port and ctl socket made per-run (the file itself listens on 5070). */
export function kamailioCfg(port: number, workDir: string): string {
  const cfg = readFileSync(KAMAILIO_CFG, 'utf8');
  return cfg
    .replaceAll('127.0.0.1:5070', `127.0.0.1:${port}`)
    .replaceAll('unix:/tmp/kamailio_ctl', `unix:${join(workDir, `kamailio_ctl_${port}`)}`);
}

export async function startKamailio(o: KamailioOptions): Promise<ServerHandle> {
  assertUdpPortFree(o.port, 'kamailio');
  const runDir = join(o.workDir, `kamailio-run-${o.port}`);
  mkdirSync(runDir, { recursive: true });
  const cfgPath = join(o.workDir, `kamailio-${o.port}.cfg`);
  writeFileSync(cfgPath, kamailioCfg(o.port, runDir));
  const args = ['-f', cfgPath, '-DD', '-E', '-Y', runDir, '-m', String(o.shmMb), '-M', String(o.pkgMb ?? 16)];
  if (o.variant === 'tlsf') args.push('-x', 'tlsf');
  if (o.children !== undefined) args.push('-A', `CHILDREN=${o.children}`);
  const name = `kamailio-${o.variant}`;
  const proc = spawnTracked({
    name,
    cmd: 'kamailio',
    args,
    cwd: o.workDir,
    logBase: join(o.workDir, `${name}-${o.port}-${Date.now()}`),
    maxLifetimeSec: o.maxLifetimeSec,
  });
  const h = handle(name, o.port, ['kamailio', ...args].join(' '), proc);
  try {
    await waitReady(h, 15000);
  } catch (e) {
    await h.stop();
    throw e;
  }
  return h;
}

// ---------------------------------------------------------------------------------- pushcall

export function pushcallAvailable(): boolean {
  return existsSync(PUSHCALL_MAIN);
}

export interface PushcallOptions {
  udpPort: number;
  workDir: string;
  /** defaults to a fresh directory under workDir */
  dataDir?: string;
  /** defaults to bench/pushcall-bench.yaml */
  configPath?: string;
  extraArgs?: string[];
  maxLifetimeSec?: number;
  /** how long to wait for the port to be bound (tsx compiles on first start) */
  startTimeoutMs?: number;
  /** run the TypeScript sources through tsx instead of the compiled CLI */
  fromSource?: boolean;
}

/**
 * The pushcall hook. Everything pushcall-specific is here and in bench/pushcall-bench.yaml:
 *   node packages/server/dist/cli/main.js serve \
 *     --listen udp:127.0.0.1:<port> --data-dir <fresh tmp dir> --config bench/pushcall-bench.yaml
 * (with `fromSource`: node --conditions=source --import tsx packages/server/src/cli/main.ts …)
 */
export function pushcallCommand(o: PushcallOptions, dataDir: string): { cmd: string; args: string[] } {
  return {
    cmd: process.execPath,
    args: [
      // e.g. PUSHCALL_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the server under load
      ...(process.env.PUSHCALL_NODE_ARGS ? process.env.PUSHCALL_NODE_ARGS.split(' ') : []),
      ...(o.fromSource ? ['--conditions=source', '--import', 'tsx', PUSHCALL_MAIN] : [PUSHCALL_DIST_MAIN]),
      'serve',
      '--listen',
      `udp:127.0.0.1:${o.udpPort}`,
      '--data-dir',
      dataDir,
      '--config',
      o.configPath ?? PUSHCALL_CONFIG,
      ...(o.extraArgs ?? []),
    ],
  };
}

/**
 * The REGISTER benchmark uses RFC 8599 Contacts (pn-provider=apns), which pushcall accepts
 * only when an APNs provider is configured (else 555). Add one with a throwaway ES256 key
 * made for this run; its endpoint is never contacted because nothing is called.
 */
function withPushProvider(configPath: string, dataDir: string): string {
  const config = (parseYaml(readFileSync(configPath, 'utf8')) ?? {}) as Record<string, unknown>;
  const push = (config.push ?? {}) as Record<string, unknown>;
  if (!push.apns) {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyFile = join(dataDir, 'bench-apns-key.p8');
    writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600 });
    push.apns = { keyFile, keyId: 'BENCHKEY01', teamId: 'TEAM123456', endpoints: { production: 'https://127.0.0.1:9', sandbox: 'https://127.0.0.1:9' }, pingIntervalMs: 0 };
    config.push = push;
  }
  const out = join(dataDir, 'pushcall-bench.generated.yaml');
  writeFileSync(out, JSON.stringify(config, null, 2));
  return out;
}

/** The same pushcall with its bindings in Redis (store.type redis, one node; multi-node config). */
function withRedisStore(configPath: string, redisPort: number, udpPort: number): string {
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  config.store = { type: 'redis', redis: { url: `redis://127.0.0.1:${redisPort}`, keyPrefix: `bench${Date.now()}:` } };
  config.node = { id: 'bench', uri: `sip:127.0.0.1:${udpPort}` };
  config.auth = { ...(config.auth as object), nonceSecret: randomBytes(16).toString('hex') };
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  return configPath;
}

/**
 * pushcall with the Redis store, and the redis-server it uses (no persistence, as
 * Kamailio's in-memory usrloc): one handle whose pids are both processes, so that the
 * server CPU per operation counts Redis's work too.
 */
export async function startPushcallWithRedis(o: PushcallOptions & { redisPort: number }): Promise<ServerHandle> {
  const redis = spawnTracked({
    name: 'redis-server',
    cmd: 'redis-server',
    args: ['--bind', '127.0.0.1', '--port', String(o.redisPort), '--save', '', '--appendonly', 'no'],
    cwd: o.workDir,
    logBase: join(o.workDir, `redis-${o.redisPort}-${Date.now()}`),
    maxLifetimeSec: o.maxLifetimeSec ?? 3600,
  });
  for (let i = 0; !tail(redis.stdoutPath, 5).includes('Ready to accept connections'); i++) {
    if (!redis.isRunning() || i > 100) throw new Error(`redis-server did not start:\n${tail(redis.stdoutPath, 20)}`);
    await sleep(50);
  }
  let server: ServerHandle;
  try {
    server = await startPushcall(o);
  } catch (e) {
    await stopTracked(redis, 5000);
    throw e;
  }
  return {
    ...server,
    name: 'pushcall-redis',
    pids: () => [...server.pids(), ...processTree(redis.pid).map((p) => p.pid)],
    stop: async () => {
      await server.stop();
      await stopTracked(redis, 5000);
    },
  };
}

/** The Node floors (bench/node-udp-floor.ts): a canned-200 responder, a bare relay, a minimal persisting registrar, a minimal stateful proxy. */
export async function startNodeFloor(o: { udpPort: number; workDir: string; io: 'dgram' | 'batch' | 'relay' | 'register' | 'proxy'; maxLifetimeSec?: number }): Promise<ServerHandle> {
  const name = { dgram: 'node-floor', batch: 'node-floor-batch', relay: 'node-relay-floor', register: 'node-register-floor', proxy: 'node-proxy-floor' }[o.io];
  assertUdpPortFree(o.udpPort, name);
  const args = [compiledFloor(), String(o.udpPort), o.io];
  const proc = spawnTracked({
    name,
    cmd: process.execPath,
    args,
    cwd: REPO_ROOT,
    logBase: join(o.workDir, `${name}-${o.udpPort}-${Date.now()}`),
    maxLifetimeSec: o.maxLifetimeSec ?? 3600,
    env: process.env,
  });
  const h = handle(name, o.udpPort, ['node', ...args].join(' '), proc);
  await waitReady(h, 30_000);
  return h;
}

/**
 * bench/node-udp-floor.ts as plain JavaScript against the compiled packages, as pushcall runs
 * in the harness: through tsx every closure would pay for esbuild's keepNames, a handicap the
 * floors must not have. Written to bench/.build/ (git-ignored).
 */
function compiledFloor(): string {
  const source = join(REPO_ROOT, 'bench', 'node-udp-floor.ts');
  const outDir = join(REPO_ROOT, 'bench', '.build');
  const out = join(outDir, 'node-udp-floor.mjs');
  const requireTs = createRequire(import.meta.url);
  const ts = requireTs('typescript') as typeof import('typescript');
  const { outputText } = ts.transpileModule(readFileSync(source, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  });
  mkdirSync(outDir, { recursive: true });
  writeFileSync(out, outputText.replaceAll('../packages/sip/src/', '../../packages/sip/dist/'));
  return out;
}

export async function startPushcall(o: PushcallOptions & { redisPort?: number }): Promise<ServerHandle> {
  if (!pushcallAvailable()) throw new Error(`pushcall server not found: ${PUSHCALL_MAIN}`);
  assertUdpPortFree(o.udpPort, 'pushcall');
  const dataDir = o.dataDir ?? join(o.workDir, `pushcall-data-${o.udpPort}-${Date.now()}`);
  mkdirSync(dataDir, { recursive: true });
  let configPath = withPushProvider(o.configPath ?? PUSHCALL_CONFIG, dataDir);
  if (o.redisPort !== undefined) configPath = withRedisStore(configPath, o.redisPort, o.udpPort);
  const { cmd, args } = pushcallCommand({ ...o, configPath }, dataDir);
  const proc = spawnTracked({
    name: 'pushcall',
    cmd,
    args,
    cwd: REPO_ROOT,
    logBase: join(o.workDir, `pushcall-${o.udpPort}-${Date.now()}`),
    maxLifetimeSec: o.maxLifetimeSec ?? 3600,
    env: { ...process.env, NODE_ENV: 'production' },
  });
  const h = handle('pushcall', o.udpPort, ['node', ...args].join(' '), proc);
  try {
    await waitReady(h, o.startTimeoutMs ?? 60000);
  } catch (e) {
    await h.stop();
    throw e;
  }
  return h;
}
