/** Shared helpers for the push emulators: injectable clock, seeded RNG, TLS material. */

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { AddressInfo, Server } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface EmulatorTimerHandle {
  cancel(): void;
}

/** Structurally compatible with @pushcall/sip's Clock / FakeClock. */
export interface EmulatorClock {
  now(): number;
  monotonic(): number;
  setTimeout(callback: () => void, delayMs: number): EmulatorTimerHandle;
}

export const systemClock: EmulatorClock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout(callback, delayMs) {
    const h = setTimeout(callback, delayMs);
    h.unref?.();
    return { cancel: () => clearTimeout(h) };
  },
};

/** mulberry32: a small deterministic PRNG in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type DelaySpec = number | [min: number, max: number];

export function pickDelay(spec: DelaySpec, rnd: () => number): number {
  if (typeof spec === 'number') return spec;
  return spec[0] + (spec[1] - spec[0]) * rnd();
}

/** Listen (loopback by default) and return the bound port; a listen error rejects. */
export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export interface TlsMaterial {
  dir: string;
  certPem: string;
  keyPem: string;
  certFile: string;
  keyFile: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await execFileAsync('openssl', args, { cwd });
}

let serverCert: Promise<TlsMaterial> | undefined;

/**
 * A self-signed P-256 server certificate for localhost / 127.0.0.1 (made once per process
 * with the openssl CLI). The certificate is its own CA: trust `certPem`.
 */
export function selfSignedServerCert(): Promise<TlsMaterial> {
  serverCert ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pushcall-emu-'));
    await openssl([
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', 'server.key', '-out', 'server.crt', '-days', '3', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-addext', 'basicConstraints=critical,CA:TRUE',
    ], dir);
    return {
      dir,
      certPem: await readFile(join(dir, 'server.crt'), 'utf8'),
      keyPem: await readFile(join(dir, 'server.key'), 'utf8'),
      certFile: join(dir, 'server.crt'),
      keyFile: join(dir, 'server.key'),
    };
  })();
  return serverCert;
}

export interface ClientCertMaterial {
  dir: string;
  caPem: string;
  caFile: string;
  certPem: string;
  keyPem: string;
  certFile: string;
  keyFile: string;
}

/**
 * A throwaway CA and a client certificate signed by it (for the APNs emulator's certificate
 * mode: configure the emulator with `caPem`, the provider with `certFile`/`keyFile`).
 */
export async function makeClientCertificate(commonName = 'Apple VoIP Services: com.example.app'): Promise<ClientCertMaterial> {
  const dir = await mkdtemp(join(tmpdir(), 'pushcall-cli-'));
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '3', '-subj', '/CN=pushcall test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'client.key', '-out', 'client.csr', '-subj', `/CN=${commonName}`], dir);
  await writeFile(join(dir, 'ext.cnf'), 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n');
  await openssl(['x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'client.crt', '-days', '2', '-extfile', 'ext.cnf'], dir);
  return {
    dir,
    caPem: await readFile(join(dir, 'ca.crt'), 'utf8'),
    caFile: join(dir, 'ca.crt'),
    certPem: await readFile(join(dir, 'client.crt'), 'utf8'),
    keyPem: await readFile(join(dir, 'client.key'), 'utf8'),
    certFile: join(dir, 'client.crt'),
    keyFile: join(dir, 'client.key'),
  };
}

/**
 * How an emulator hands accepted pushes to subscribed (simulated) devices: per token, after
 * the configured delay, with the configured loss; a subscriber's exception stays its own.
 */
export class DeviceDelivery<T extends object> {
  private readonly subscribers = new Map<string, Set<(item: T & { deliveredAt: number }) => void>>();

  constructor(
    private readonly opts: { deliveryDelayMs?: DelaySpec; lossProbability?: number },
    private readonly rnd: () => number,
    private readonly clock: EmulatorClock,
    private readonly stats: { delivered: number; lost: number },
  ) {}

  subscribe(token: string, cb: (item: T & { deliveredAt: number }) => void): () => void {
    let set = this.subscribers.get(token);
    if (!set) this.subscribers.set(token, (set = new Set()));
    set.add(cb);
    return () => {
      set.delete(cb);
    };
  }

  deliver(token: string, item: T): void {
    const subs = this.subscribers.get(token);
    if (!subs || subs.size === 0) return;
    const loss = this.opts.lossProbability ?? 0;
    if (loss > 0 && this.rnd() < loss) {
      this.stats.lost++;
      return;
    }
    const delay = pickDelay(this.opts.deliveryDelayMs ?? 0, this.rnd);
    const fire = () => {
      this.stats.delivered++;
      const delivered = { ...item, deliveredAt: this.clock.now() };
      for (const cb of [...subs]) {
        try {
          cb(delivered);
        } catch {
          /* a subscriber's failure is its own */
        }
      }
    };
    if (delay <= 0) setImmediate(fire);
    else setTimeout(fire, delay).unref?.();
  }
}
