/**
 * A lab: pushcall on loopback wired to the APNs emulators (production and sandbox) and the
 * FCM emulator, with users and keys made up on the spot. Tests, the demo and the fleet
 * start one with a single call.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConfigInput, type PushcallServer, createLogger, createPushcall, validateConfig } from '@pushcall/server';
import { ApnsDeviceRegistry, ApnsEmulator, type ApnsEmulatorOptions, makeApnsKey } from './emulators/apns-emulator.js';
import { FcmEmulator, type FcmEmulatorOptions } from './emulators/fcm-emulator.js';

export const LAB_TEAM_ID = 'TEAM123456';
export const LAB_BUNDLE_ID = 'com.example.pushcall';
export const LAB_FCM_PROJECT = 'pushcall-lab';

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
  close(): Promise<void>;
}

export async function startLab(options: LabOptions = {}): Promise<Lab> {
  const dataDir = mkdtempSync(join(tmpdir(), 'pushcall-lab-'));
  const key = makeApnsKey({ teamId: LAB_TEAM_ID, bundleIds: [LAB_BUNDLE_ID] });
  const devices = new ApnsDeviceRegistry();
  const apns = await new ApnsEmulator({ ...options.apns, keys: [key], environment: 'production', devices }).start();
  const apnsSandbox = await new ApnsEmulator({ ...options.apns, keys: [key], environment: 'sandbox', devices }).start();
  const fcm = await new FcmEmulator(options.fcm).start();
  const serviceAccount = fcm.createServiceAccount(LAB_FCM_PROJECT);
  writeFileSync(join(dataDir, 'apns-key.p8'), key.privateKeyPem, { mode: 0o600 });
  writeFileSync(join(dataDir, 'fcm-service-account.json'), JSON.stringify(serviceAccount), { mode: 0o600 });
  // Both emulators present their own self-signed certificate: trust both.
  const caFile = join(dataDir, 'emulator-ca.pem');
  writeFileSync(caFile, `${apns.caPem}\n${apnsSandbox.caPem}`);

  const extra = options.config ?? {};
  const config = validateConfig({
    listen: options.listen ?? ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0', 'ws:127.0.0.1:0'],
    dataDir,
    admin: { listen: '127.0.0.1:0' },
    log: { level: options.logLevel ?? 'silent' },
    ...extra,
    auth: { users: options.users ?? [], mode: options.users ? 'digest' : 'open', ...(extra.auth as object) },
    push: {
      apns: {
        keyFile: join(dataDir, 'apns-key.p8'),
        keyId: key.keyId,
        teamId: key.teamId,
        endpoints: { production: apns.url, sandbox: apnsSandbox.url },
        caFile,
        pingIntervalMs: 0,
      },
      fcm: { serviceAccountFile: join(dataDir, 'fcm-service-account.json'), endpoint: fcm.url },
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
    async close() {
      await server.stop();
      await Promise.all([apns.close(), apnsSandbox.close(), fcm.close()]);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
