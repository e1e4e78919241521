/**
 * The push side of the fleet without a server: the APNs emulators (production, sandbox)
 * and the FCM emulator, with a made-up APNs key and FCM service account written to a
 * directory, and the pushcall `push:` configuration that points a server at them. The
 * fleet uses this against an external server (`pushcall sim --server ...`), and the wake
 * benchmark uses it to run the server in a process of its own.
 */

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApnsDeviceRegistry, ApnsEmulator, type ApnsEmulatorOptions, makeApnsKey } from '../emulators/apns-emulator.js';
import { FcmEmulator, type FcmEmulatorOptions } from '../emulators/fcm-emulator.js';
import { LAB_BUNDLE_ID, LAB_FCM_PROJECT, LAB_TEAM_ID } from '../lab-apps.js';

export interface FleetEmulatorOptions {
  apns?: Omit<ApnsEmulatorOptions, 'keys' | 'environment' | 'devices'>;
  fcm?: FcmEmulatorOptions;
  /** Where the key, service account and CA files go (default: a new temporary directory). */
  dir?: string;
}

export interface FleetEmulators {
  apns: ApnsEmulator;
  apnsSandbox: ApnsEmulator;
  fcm: FcmEmulator;
  dir: string;
  caFile: string;
  /** The `push:` section of a pushcall configuration that uses these emulators. */
  pushConfig: Record<string, unknown>;
  /** The same, as YAML lines to paste under the server's configuration. */
  describe(): string;
  close(): Promise<void>;
}

export async function startFleetEmulators(options: FleetEmulatorOptions = {}): Promise<FleetEmulators> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'pushcall-sim-'));
  const key = makeApnsKey({ teamId: LAB_TEAM_ID, bundleIds: [LAB_BUNDLE_ID] });
  const devices = new ApnsDeviceRegistry();
  const apns = await new ApnsEmulator({ ...options.apns, keys: [key], environment: 'production', devices }).start();
  const apnsSandbox = await new ApnsEmulator({ ...options.apns, keys: [key], environment: 'sandbox', devices }).start();
  const fcm = await new FcmEmulator(options.fcm).start();
  const serviceAccount = fcm.createServiceAccount(LAB_FCM_PROJECT);
  const keyFile = join(dir, 'apns-key.p8');
  const saFile = join(dir, 'fcm-service-account.json');
  const caFile = join(dir, 'emulator-ca.pem');
  writeFileSync(keyFile, key.privateKeyPem, { mode: 0o600 });
  writeFileSync(saFile, JSON.stringify(serviceAccount), { mode: 0o600 });
  writeFileSync(caFile, `${apns.caPem}\n${apnsSandbox.caPem}`);
  const pushConfig = {
    apns: {
      keyFile,
      keyId: key.keyId,
      teamId: key.teamId,
      endpoints: { production: apns.url, sandbox: apnsSandbox.url },
      caFile,
      pingIntervalMs: 0,
    },
    fcm: { serviceAccountFile: saFile, endpoint: fcm.url },
  };
  return {
    apns,
    apnsSandbox,
    fcm,
    dir,
    caFile,
    pushConfig,
    describe: () =>
      [
        'push:',
        '  apns:',
        `    keyFile: ${keyFile}`,
        `    keyId: ${key.keyId}`,
        `    teamId: ${key.teamId}`,
        `    endpoints: { production: ${apns.url}, sandbox: ${apnsSandbox.url} }`,
        `    caFile: ${caFile}`,
        '  fcm:',
        `    serviceAccountFile: ${saFile}`,
        `    endpoint: ${fcm.url}`,
        `# APNs topic ${LAB_BUNDLE_ID}.voip (team ${LAB_TEAM_ID}); FCM project ${LAB_FCM_PROJECT}`,
      ].join('\n'),
    async close() {
      await Promise.all([apns.close(), apnsSandbox.close(), fcm.close()]);
    },
  };
}
