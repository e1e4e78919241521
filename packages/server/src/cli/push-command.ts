/**
 * `pushcall push`: send one test push from the command line (the way the Siprix guide uses
 * curl), e.g.
 *
 *   pushcall push --provider apns --token <hex> --param TEAMID.com.example.app.voip \
 *     --key-file AuthKey_ABC123DEFG.p8 --key-id ABC123DEFG --team-id TEAMID --sandbox
 *   pushcall push --provider fcm --token <fcm token> --service-account sa.json
 *   pushcall push --provider webpush --token https://push.example/sub/... --vapid-public ... --vapid-private ... --subject mailto:ops@example.com
 *   pushcall push --provider mypush --webhook-url https://push.internal/hook --webhook-secret ... --token abc
 *
 * Prints the status, the apns-id / FCM message name, and the reason on failure; exits 1 on
 * failure, 2 on a usage/config error.
 */

import { readFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { Command, Option } from 'commander';
import { ApnsProvider, parseApnsParam } from '../push/apns.js';
import type { ApnsProviderOptions } from '../push/apns.js';
import { PushError } from '../push/errors.js';
import { FcmProvider } from '../push/fcm.js';
import type { FcmServiceAccount } from '../push/fcm.js';
import { PushGateway } from '../push/gateway.js';
import { buildPayload, buildRefreshPayload, PUSH_KINDS } from '../push/payload.js';
import type { PushKind, PushPayload } from '../push/payload.js';
import type { PushBinding, PushOutcome, PushProvider } from '../push/types.js';
import { WebhookProvider } from '../push/webhook.js';
import { WebPushProvider, webPushEndpoint } from '../push/webpush.js';

export interface PushCommandOptions {
  provider: string;
  token: string;
  topic?: string;
  param?: string;
  project?: string;
  sandbox?: boolean;
  kind: 'voip' | 'alert' | 'refresh';
  type?: string;
  payload?: string;
  keyFile?: string;
  keyId?: string;
  teamId?: string;
  certFile?: string;
  certKeyFile?: string;
  serviceAccount?: string;
  endpoint?: string;
  tokenUri?: string;
  caFile?: string;
  vapidPublic?: string;
  vapidPrivate?: string;
  subject?: string;
  webhookUrl?: string;
  webhookSecret?: string;
  expiration?: string;
  timeout: string;
  json?: boolean;
}

class UsageError extends Error {}

async function readText(path: string): Promise<string> {
  return readFile(path, 'utf8');
}

async function buildProvider(o: PushCommandOptions): Promise<PushProvider> {
  switch (o.provider) {
    case 'apns': {
      let auth: ApnsProviderOptions['auth'];
      if (o.certFile) {
        const key = o.certKeyFile ?? o.keyFile;
        if (!key) throw new UsageError('--cert-file needs --key-file (the certificate private key)');
        auth = { kind: 'certificate', cert: await readText(o.certFile), key: await readText(key) };
      } else {
        if (!o.keyFile || !o.keyId || !o.teamId) throw new UsageError('APNs token auth needs --key-file, --key-id and --team-id (or --cert-file)');
        auth = { kind: 'token', key: await readText(o.keyFile), keyId: o.keyId, teamId: o.teamId };
      }
      const env = o.sandbox ? 'sandbox' : 'production';
      return new ApnsProvider({
        auth,
        endpoints: o.endpoint ? { [env]: o.endpoint } : undefined,
        ca: o.caFile ? await readText(o.caFile) : undefined,
        voipExpirationSeconds: o.expiration !== undefined ? Number(o.expiration) : undefined,
        poolSize: 1,
        pingIntervalMs: 0,
        requestTimeoutMs: Number(o.timeout),
      });
    }
    case 'fcm': {
      if (!o.serviceAccount) throw new UsageError('FCM needs --service-account <file.json>');
      const sa = JSON.parse(await readText(o.serviceAccount)) as FcmServiceAccount;
      return new FcmProvider({ serviceAccount: sa, endpoint: o.endpoint, tokenUri: o.tokenUri, requestTimeoutMs: Number(o.timeout) });
    }
    case 'webpush': {
      // Secrets also from the environment: a command line is visible to every local user (ps).
      const vapidPrivate = o.vapidPrivate ?? process.env.PUSHCALL_VAPID_PRIVATE_KEY;
      if (!o.vapidPublic || !vapidPrivate || !o.subject) throw new UsageError('webpush needs --vapid-public, --vapid-private (or PUSHCALL_VAPID_PRIVATE_KEY) and --subject');
      return new WebPushProvider({ vapidPublicKey: o.vapidPublic, vapidPrivateKey: vapidPrivate, subject: o.subject, requestTimeoutMs: Number(o.timeout), allowedHosts: [subscriptionHost(o.token)] });
    }
    default: {
      const webhookSecret = o.webhookSecret ?? process.env.PUSHCALL_WEBHOOK_SECRET;
      if (!o.webhookUrl || !webhookSecret) throw new UsageError(`unknown provider '${o.provider}': a webhook provider needs --webhook-url and --webhook-secret (or PUSHCALL_WEBHOOK_SECRET)`);
      return new WebhookProvider(o.provider, { url: o.webhookUrl, secret: webhookSecret, requestTimeoutMs: Number(o.timeout) });
    }
  }
}

function buildBinding(o: PushCommandOptions): PushBinding {
  let param = o.param;
  if (o.provider === 'apns') {
    if (!param && o.topic) param = o.topic.endsWith('.voip') ? o.topic : `${o.topic}.voip`;
    if (!param) throw new UsageError('APNs needs --param TEAMID.bundle.voip or --topic <bundle>[.voip]');
    parseApnsParam(param);
  }
  if (o.provider === 'fcm' && o.project) param = o.project;
  return {
    bindingId: 'cli',
    aor: 'sip:cli@pushcall.invalid',
    provider: o.provider,
    prid: o.token,
    param,
    environment: o.sandbox ? 'sandbox' : 'production',
    registeredAt: 0,
  };
}

function buildCliPayload(o: PushCommandOptions): PushPayload {
  let overrides: Partial<PushPayload> = {};
  if (o.payload) {
    try {
      overrides = JSON.parse(o.payload) as Partial<PushPayload>;
    } catch {
      throw new UsageError('--payload must be JSON (fields of the pushcall payload, e.g. {"from_name":"Bob"})');
    }
  }
  const type = (overrides.type ?? o.type ?? (o.kind === 'voip' ? 'call' : 'missed_call')) as PushKind;
  if (!PUSH_KINDS.includes(type)) throw new UsageError(`payload type must be one of ${PUSH_KINDS.join(', ')}`);
  if (o.kind === 'voip' && type !== 'call') throw new UsageError("--kind voip sends a 'call' payload; use --kind alert for other types");
  const p = buildPayload({
    type,
    callId: overrides.call_id ?? `cli-${randomUUID()}`,
    fromUri: overrides.from_uri ?? 'sip:test@pushcall.invalid',
    fromName: overrides.from_name ?? 'pushcall test',
    to: overrides.to ?? 'sip:device@pushcall.invalid',
    video: overrides.video ?? false,
    ttl: overrides.ttl ?? 30,
    text: overrides.text,
    sentAt: overrides.sent_at,
  });
  return p;
}

function print(outcome: PushOutcome, json: boolean | undefined): void {
  if (json) {
    console.log(JSON.stringify(outcome));
    return;
  }
  if (outcome.ok) {
    console.log(`status: ${outcome.status}`);
    if (outcome.id) console.log(`${outcome.provider === 'apns' ? 'apns-id' : outcome.provider === 'fcm' ? 'message' : 'id'}: ${outcome.id}`);
    if (outcome.uniqueId) console.log(`apns-unique-id: ${outcome.uniqueId}`);
    console.log(`latency: ${outcome.latencyMs.toFixed(1)} ms`);
  } else {
    console.log(`status: ${outcome.status ?? '-'}`);
    console.log(`error: ${outcome.error}`);
    console.log(`reason: ${outcome.reason}`);
    if (outcome.removeBinding) console.log('remove binding: yes (token is dead)');
    if (outcome.actualEnvironment) console.log(`token belongs to: ${outcome.actualEnvironment}${outcome.id ? ` (delivered there, apns-id ${outcome.id})` : ''}`);
    if (outcome.retryAfterMs !== undefined) console.log(`retry after: ${Math.round(outcome.retryAfterMs)} ms`);
  }
}

/** Run one push; returns the process exit code (0 ok, 1 push failed, 2 usage). */
/**
 * The CLI posts to the subscription the operator named (a test push service included): its
 * host is allowed, where the server allows only the browsers' push services.
 */
function subscriptionHost(token: string): string {
  try {
    return new URL(webPushEndpoint(token)).hostname;
  } catch {
    throw new UsageError(`--token must be the push subscription's endpoint URL for webpush (got '${token.slice(0, 40)}')`);
  }
}

/** A whole positive number of `what`, else a usage error naming the flag. */
function positiveInteger(value: string | undefined, flag: string, allowZero = false): void {
  if (value === undefined) return;
  const n = Number(value);
  if (!/^\d+$/.test(value) || (!allowZero && n === 0)) throw new UsageError(`${flag} must be a whole number${allowZero ? '' : ' above 0'} (got '${value}')`);
}

/** URL flags must be absolute http(s) URLs. */
function httpUrl(value: string | undefined, flag: string): void {
  if (value === undefined) return;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${flag} must be an absolute URL (got '${value}')`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UsageError(`${flag} must be an http(s) URL (got '${value}')`);
}

export async function runPushCommand(o: PushCommandOptions): Promise<number> {
  let gateway: PushGateway | undefined;
  try {
    positiveInteger(o.timeout, '--timeout');
    positiveInteger(o.expiration, '--expiration', true);
    httpUrl(o.endpoint, '--endpoint');
    httpUrl(o.tokenUri, '--token-uri');
    httpUrl(o.webhookUrl, '--webhook-url');
    const binding = buildBinding(o);
    const payload = buildCliPayload(o);
    const provider = await buildProvider(o);
    gateway = new PushGateway({ providers: [provider] });
    const deadline = { deadlineMs: Number(o.timeout) };
    let outcome: PushOutcome;
    if (o.kind === 'refresh') {
      // RFC 8599 §5.5: what pushcall sends before a binding expires (silent; APNs needs the alert token).
      outcome = await gateway.sendRefresh(binding, buildRefreshPayload({ to: payload.to, ttl: payload.ttl }), deadline);
    } else outcome = o.kind === 'voip' ? await gateway.sendCall(binding, payload, deadline) : await gateway.sendAlert(binding, payload, deadline);
    print(outcome, o.json);
    return outcome.ok ? 0 : 1;
  } catch (e) {
    // A file flag naming a directory, an unreadable file, …: a usage error too, not a stack trace.
    const fsError = typeof (e as NodeJS.ErrnoException).code === 'string' && (e as NodeJS.ErrnoException).syscall !== undefined;
    if (e instanceof UsageError || e instanceof PushError || e instanceof SyntaxError || fsError) {
      console.error(`pushcall push: ${(e as Error).message}`);
      return 2;
    }
    throw e;
  } finally {
    await gateway?.close();
  }
}

export function registerPushCommand(program: Command): Command {
  const cmd = program
    .command('push')
    .description('send one test push (APNs, FCM, Web Push or a webhook) and print the result')
    .requiredOption('--provider <name>', 'apns | fcm | webpush | <webhook name>')
    .requiredOption('--token <token>', 'device token (APNs hex), FCM registration token, or Web Push endpoint')
    .option('--topic <bundle>', 'APNs bundle ID (".voip" is added for VoIP)')
    .option('--param <pn-param>', 'RFC 8599 pn-param: APNs TEAMID.bundle.voip; FCM project; webpush p256dh.auth')
    .option('--project <id>', 'FCM project id (default: the service account\'s)')
    .option('--sandbox', 'APNs sandbox (development) environment', false)
    .addOption(new Option('--kind <kind>', 'VoIP/high-priority call push, alert push, or refresh push (RFC 8599 §5.5)').choices(['voip', 'alert', 'refresh']).default('voip'))
    .option('--type <type>', `payload type (${PUSH_KINDS.join(', ')})`)
    .option('--payload <json>', 'payload fields as JSON, e.g. {"from_name":"Bob","call_id":"abc@host"}')
    .option('--key-file <file>', 'APNs .p8 key (token auth), or the certificate\'s private key with --cert-file')
    .option('--key-id <id>', 'APNs key ID')
    .option('--team-id <id>', 'APNs team ID')
    .option('--cert-file <file>', 'APNs TLS client certificate (PEM)')
    .option('--cert-key-file <file>', 'private key of --cert-file (default: --key-file)')
    .option('--service-account <file>', 'FCM service-account JSON')
    .option('--endpoint <url>', 'provider endpoint override (APNs emulator/relay, FCM endpoint)')
    .option('--token-uri <url>', 'FCM OAuth token endpoint override')
    .option('--ca-file <file>', 'extra CA to trust (APNs emulator / relay)')
    .option('--vapid-public <key>', 'Web Push VAPID public key')
    .option('--vapid-private <key>', 'Web Push VAPID private key')
    .option('--subject <uri>', 'Web Push VAPID subject (mailto: or https:)')
    .option('--webhook-url <url>', 'webhook URL (custom provider)')
    .option('--webhook-secret <secret>', 'webhook HMAC secret')
    .option('--expiration <seconds>', 'APNs VoIP apns-expiration offset (default 30; 0 = no storage)')
    .option('--timeout <ms>', 'deadline for the push', '10000')
    .option('--json', 'print the outcome as JSON', false)
    .action(async (opts: PushCommandOptions) => {
      process.exitCode = await runPushCommand(opts);
    });
  return cmd;
}
