/**
 * A lab: pushcall on loopback wired to the APNs emulators (production and sandbox) and the
 * FCM emulator, with users and keys made up on the spot. Tests, the demo and the fleet
 * start one with a single call.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConfigInput, type PushcallServer, createLogger, createPushcall, validateConfig } from '@pushcall/server';
import type { ApnsEmulator, ApnsEmulatorOptions } from './emulators/apns-emulator.js';
import type { FcmEmulator, FcmEmulatorOptions } from './emulators/fcm-emulator.js';
import { startFleetEmulators } from './fleet/emulators.js';
import type { SimulatedPhoneOptions } from './phone/simulated-phone.js';

export { LAB_BUNDLE_ID, LAB_FCM_PROJECT, LAB_TEAM_ID } from './lab-apps.js';

export interface LabOptions {
  /** Extra server configuration (merged over the lab's). */
  config?: Partial<ConfigInput>;
  users?: Array<{ username: string; password: string }>;
  apns?: Omit<ApnsEmulatorOptions, 'keys' | 'environment' | 'devices'>;
  fcm?: FcmEmulatorOptions;
  logLevel?: string;
  listen?: string[];
}

export interface Lab {
  server: PushcallServer;
  apns: ApnsEmulator;
  apnsSandbox: ApnsEmulator;
  fcm: FcmEmulator;
  dataDir: string;
  /** `udp`/`tcp`/`ws` address of the server. */
  address(protocol: 'udp' | 'tcp' | 'ws'): { protocol: 'udp' | 'tcp' | 'ws'; address: string; port: number };
  /** What a SimulatedPhone needs to reach this lab over UDP (domain 127.0.0.1, the emulators). */
  phoneWiring(): Pick<SimulatedPhoneOptions, 'domain' | 'server' | 'apns' | 'apnsSandbox' | 'fcm'>;
  close(): Promise<void>;
}

export async function startLab(options: LabOptions = {}): Promise<Lab> {
  const dataDir = mkdtempSync(join(tmpdir(), 'pushcall-lab-'));
  const { apns, apnsSandbox, fcm, pushConfig } = await startFleetEmulators({ apns: options.apns, fcm: options.fcm, dir: dataDir });

  const extra = options.config ?? {};
  const config = validateConfig({
    listen: options.listen ?? ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0', 'ws:127.0.0.1:0'],
    dataDir,
    admin: { listen: '127.0.0.1:0' },
    log: { level: options.logLevel ?? 'silent' },
    ...extra,
    auth: { users: options.users ?? [], mode: options.users ? 'digest' : 'open', ...(extra.auth as object) },
    push: {
      ...pushConfig,
      ...(extra.push as object),
    },
  });
  const server = await createPushcall({ config, logger: createLogger(config.log.level) });
  await server.start();
  return {
    server,
    apns,
    apnsSandbox,
    fcm,
    dataDir,
    address: (protocol) => ({ protocol, address: '127.0.0.1', port: server.port(protocol) }),
    phoneWiring: () => ({ domain: '127.0.0.1', server: { protocol: 'udp', address: '127.0.0.1', port: server.port('udp') }, apns, apnsSandbox, fcm }),
    async close() {
      await server.stop();
      await Promise.all([apns.close(), apnsSandbox.close(), fcm.close()]);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
