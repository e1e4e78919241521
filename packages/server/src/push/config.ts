/**
 * Push gateway configuration (zod) and the factory that turns it into a PushGateway.
 *
 *   push:
 *     apns:      { keyFile | key, keyId, teamId }            # token auth (.p8)
 *                | { certFile | cert, keyFile | key, passphrase? }  # certificate auth
 *                + endpoints?: { production?, sandbox? }, caFile?, voipExpirationSeconds?,
 *                  alertExpirationSeconds?, poolSize?, requestTimeoutMs?, pingIntervalMs?, pingTimeoutMs?
 *     fcm:       { serviceAccountFile | serviceAccount, endpoint?, tokenUri?, requestTimeoutMs? }
 *     webpush:   { vapidPublicKey, vapidPrivateKey, subject }
 *     webhooks:  { <name>: { url, secret, requestTimeoutMs? } }
 */

import { readFile } from 'node:fs/promises';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { ApnsProvider } from './apns.js';
import type { ApnsProviderOptions } from './apns.js';
import { PushConfigError, PushKeyError } from './errors.js';
import type { PushHooks, PushLogger } from './events.js';
import { FcmProvider } from './fcm.js';
import type { FcmServiceAccount } from './fcm.js';
import { PushGateway } from './gateway.js';
import type { Clock, PushProvider } from './types.js';
import { WebhookProvider } from './webhook.js';
import { WebPushProvider } from './webpush.js';

const url = z.string().regex(/^https?:\/\/\S+$/, 'must be an http(s) URL');

export const ApnsConfigSchema = z
  .object({
    keyFile: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    keyId: z.string().min(1).optional(),
    teamId: z.string().min(1).optional(),
    certFile: z.string().min(1).optional(),
    cert: z.string().min(1).optional(),
    passphrase: z.string().optional(),
    endpoints: z.object({ production: url.optional(), sandbox: url.optional() }).strict().optional(),
    caFile: z.string().min(1).optional(),
    voipExpirationSeconds: z.number().int().min(0).max(3600).default(30),
    alertExpirationSeconds: z.number().int().min(0).max(30 * 86400).default(3600),
    poolSize: z.number().int().min(1).max(16).default(2),
    requestTimeoutMs: z.number().int().positive().default(5000),
    pingIntervalMs: z.number().int().min(0).default(60_000),
    pingTimeoutMs: z.number().int().positive().default(5000),
    tokenRefreshMinutes: z.number().min(20).max(55).default(40),
  })
  .strict()
  .superRefine((v, ctx) => {
    const cert = v.certFile !== undefined || v.cert !== undefined;
    if (v.key === undefined && v.keyFile === undefined) ctx.addIssue({ code: 'custom', message: 'apns needs keyFile or key' });
    if (!cert && (!v.keyId || !v.teamId)) ctx.addIssue({ code: 'custom', message: 'apns token auth needs keyId and teamId (or certFile for certificate auth)' });
  });

export const ServiceAccountSchema = z.object({
  client_email: z.string().min(1),
  private_key: z.string().min(1),
  project_id: z.string().min(1),
  token_uri: url.optional(),
  private_key_id: z.string().optional(),
});

export const FcmConfigSchema = z
  .object({
    serviceAccountFile: z.string().min(1).optional(),
    serviceAccount: ServiceAccountSchema.loose().optional(),
    endpoint: url.optional(),
    tokenUri: url.optional(),
    requestTimeoutMs: z.number().int().positive().default(5000),
  })
  .strict()
  .refine((v) => v.serviceAccount !== undefined || v.serviceAccountFile !== undefined, { message: 'fcm needs serviceAccountFile or serviceAccount' });

/** Decoded length of a base64url string, or -1 when it is not base64url. */
function base64urlBytes(text: string): number {
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(text)) return -1;
  return Buffer.from(text, 'base64url').length;
}

export const WebPushConfigSchema = z
  .object({
    // Checked here, not at the first call: a wrong key would otherwise start fine and fail every push.
    vapidPublicKey: z.string().refine((k) => base64urlBytes(k) === 65, 'vapidPublicKey must be a base64url P-256 public key (65 bytes)'),
    vapidPrivateKey: z.string().refine((k) => base64urlBytes(k) === 32, 'vapidPrivateKey must be a base64url P-256 private key (32 bytes)'),
    subject: z.string().regex(/^(mailto:|https:)/, 'subject must be a mailto: or https: URI'),
    requestTimeoutMs: z.number().int().positive().default(5000),
    /** Push-service hosts a subscription may point at (`*.suffix` allowed); default: the browsers'. */
    allowedHosts: z.array(z.string().regex(/^(\*\.)?[A-Za-z0-9.:[\]-]+$/, 'a host name, or *.domain')).min(1).optional(),
  })
  .strict();

export const WebhookConfigSchema = z
  .object({ url, secret: z.string().min(16, 'webhook secret must be at least 16 characters'), requestTimeoutMs: z.number().int().positive().default(5000) })
  .strict();

export const PushConfigSchema = z
  .object({
    apns: ApnsConfigSchema.optional(),
    fcm: FcmConfigSchema.optional(),
    webpush: WebPushConfigSchema.optional(),
    webhooks: z.record(z.string().regex(/^[a-z][a-z0-9_-]*$/), WebhookConfigSchema).default({}),
  })
  .strict()
  .refine((v) => !Object.keys(v.webhooks).some((n) => n === 'apns' || n === 'fcm' || n === 'webpush'), { message: 'webhook names must not shadow apns, fcm or webpush' });

export type PushConfigInput = z.input<typeof PushConfigSchema>;
export type PushConfig = z.output<typeof PushConfigSchema>;

/** Validate; throws PushConfigError listing every problem. */
export function parsePushConfig(raw: unknown): PushConfig {
  const r = PushConfigSchema.safeParse(raw ?? {});
  if (!r.success) {
    const msg = r.error.issues.map((i) => `push${i.path.length ? '.' + i.path.join('.') : ''}: ${i.message}`).join('; ');
    throw new PushConfigError(msg);
  }
  return r.data;
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new PushKeyError(`cannot read ${what} ${path}`, { cause: e });
  }
}

export interface PushGatewayDeps {
  registry?: Registry;
  clock?: Clock;
  hooks?: PushHooks;
  logger?: PushLogger;
}

/** Build the APNs provider options from config (reads key/cert files). */
export async function apnsOptionsFromConfig(c: NonNullable<PushConfig['apns']>, deps: PushGatewayDeps = {}): Promise<ApnsProviderOptions> {
  const key = c.key ?? (await readText(c.keyFile!, 'APNs key'));
  const isCert = c.cert !== undefined || c.certFile !== undefined;
  const auth: ApnsProviderOptions['auth'] = isCert
    ? { kind: 'certificate', cert: c.cert ?? (await readText(c.certFile!, 'APNs certificate')), key, passphrase: c.passphrase }
    : { kind: 'token', key, keyId: c.keyId!, teamId: c.teamId! };
  return {
    auth,
    endpoints: c.endpoints,
    ca: c.caFile ? await readText(c.caFile, 'CA file') : undefined,
    voipExpirationSeconds: c.voipExpirationSeconds,
    alertExpirationSeconds: c.alertExpirationSeconds,
    poolSize: c.poolSize,
    requestTimeoutMs: c.requestTimeoutMs,
    pingIntervalMs: c.pingIntervalMs,
    pingTimeoutMs: c.pingTimeoutMs,
    tokenRefreshMs: c.tokenRefreshMinutes * 60_000,
    clock: deps.clock,
    hooks: deps.hooks,
    logger: deps.logger,
  };
}

export async function loadServiceAccount(c: NonNullable<PushConfig['fcm']>): Promise<FcmServiceAccount> {
  if (c.serviceAccount) return c.serviceAccount;
  const text = await readText(c.serviceAccountFile!, 'FCM service account');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new PushConfigError(`FCM service account ${c.serviceAccountFile} is not JSON`, { cause: e });
  }
  const r = ServiceAccountSchema.safeParse(json);
  if (!r.success) throw new PushConfigError(`FCM service account ${c.serviceAccountFile}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** Validate config, read key files, and build a PushGateway with every configured provider. */
export async function createPushGateway(raw: unknown, deps: PushGatewayDeps = {}): Promise<PushGateway> {
  const c = parsePushConfig(raw);
  const providers: PushProvider[] = [];
  const common = { clock: deps.clock, hooks: deps.hooks, logger: deps.logger };
  if (c.apns) providers.push(new ApnsProvider(await apnsOptionsFromConfig(c.apns, deps)));
  if (c.fcm) {
    providers.push(new FcmProvider({ serviceAccount: await loadServiceAccount(c.fcm), endpoint: c.fcm.endpoint, tokenUri: c.fcm.tokenUri, requestTimeoutMs: c.fcm.requestTimeoutMs, ...common }));
  }
  if (c.webpush) providers.push(new WebPushProvider({ ...c.webpush, ...common }));
  for (const [name, w] of Object.entries(c.webhooks)) providers.push(new WebhookProvider(name, { ...w, ...common }));
  return new PushGateway({ providers, registry: deps.registry, clock: deps.clock, hooks: deps.hooks, logger: deps.logger });
}
