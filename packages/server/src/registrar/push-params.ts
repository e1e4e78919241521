/**
 * RFC 8599 Contact inspection, in one place (as OpenSIPS keeps it in lib/reg/pn.c): read
 * the push parameters of a REGISTER Contact in every form apps send today and return one
 * action for the registrar. The forms:
 *
 * - RFC 8599:  `pn-provider=apns;pn-prid=<hex>;pn-param=TEAMID.bundle.voip`
 *   sandbox:   `pn-provider=apns.dev` (Flexisip/Linphone) or `pn-apns-env=sandbox` (pushcall)
 * - Flexisip two tokens: `pn-param=TEAMID.bundle.voip&remote;pn-prid=tok1:voip&tok2:remote`
 * - legacy:    `pn-type=apple|firebase;pn-tok=<token>;app-id=<bundle>[.dev|.prod]`
 * - a header:  `X-Token: <token>` with provider/param from configuration (Siprix guide)
 */

import type { SipRequest, SipUri } from '@pushcall/sip';
import type { ApnsEnvironment, PushRegistration } from '../location/types.js';

export type PushInspection =
  /** No push parameters: an ordinary binding (RFC 8599 §5.6.1: process normally). */
  | { kind: 'none' }
  /** `+sip.pns` already in the REGISTER: a proxy nearer the UA pushes (§5.6.1.1 step 1). */
  | { kind: 'handled-upstream' }
  /** Capability query (§5.6.1.2): provider without prid; '' asks for every supported one. */
  | { kind: 'query'; provider: string }
  /** 555 material (§5.6.1.1 step 2): provider unsupported or required data missing. */
  | { kind: 'unsupported'; provider: string; reason: string }
  /** Malformed push parameters: 400 with this reason. */
  | { kind: 'malformed'; reason: string }
  | { kind: 'push'; registration: PushRegistration };

export interface PushInspectionOptions {
  supportedProviders: readonly string[];
  apnsDefaultEnvironment: ApnsEnvironment;
  apnsLegacyTeamId: string;
  tokenHeader?: { name: string; provider: string; param?: string; environment?: ApnsEnvironment };
}

const APNS_TOKEN = /^[0-9a-fA-F]{32,200}$/;
const SINGLE_VALUED = ['pn-provider', 'pn-prid', 'pn-param', 'pn-purr', 'pn-type', 'pn-tok', 'app-id', 'pn-apns-env'];

export function inspectPushParams(uri: SipUri, request: SipRequest, options: PushInspectionOptions): PushInspection {
  const repeated = uri.params.firstRepeated(SINGLE_VALUED);
  if (repeated !== undefined) return { kind: 'malformed', reason: `Duplicate ${repeated} parameter` };
  if (uri.params.has('pn-provider')) {
    if (request.featureCaps.some((fc) => fc.get('+sip.pns') !== undefined)) return { kind: 'handled-upstream' };
    return inspectRfc8599(uri, options);
  }
  if (uri.params.has('pn-type') || uri.params.has('pn-tok')) return inspectLegacy(uri, options);
  if (options.tokenHeader) {
    const token = request.get(options.tokenHeader.name)?.trim() || uri.param(options.tokenHeader.name);
    if (token) {
      return validate(
        {
          provider: options.tokenHeader.provider,
          prid: token,
          param: options.tokenHeader.param,
          environment: options.tokenHeader.provider === 'apns' ? (options.tokenHeader.environment ?? options.apnsDefaultEnvironment) : undefined,
          form: 'header',
        },
        options,
      );
    }
  }
  return { kind: 'none' };
}

function inspectRfc8599(uri: SipUri, options: PushInspectionOptions): PushInspection {
  let provider = (uri.param('pn-provider') ?? '').toLowerCase();
  const prid = uri.param('pn-prid');
  const param = uri.param('pn-param');
  let environment: ApnsEnvironment | undefined;
  if (provider === 'apns.dev' || provider === 'apns.sandbox') {
    provider = 'apns';
    environment = 'sandbox';
  }
  const envParam = uri.param('pn-apns-env')?.toLowerCase();
  if (envParam !== undefined) {
    if (envParam !== 'sandbox' && envParam !== 'production' && envParam !== 'development') {
      return { kind: 'malformed', reason: 'pn-apns-env must be production or sandbox' };
    }
    environment = envParam === 'production' ? 'production' : 'sandbox';
  }

  if (prid === undefined || prid === '') {
    // §4.1.5: a capability query carries pn-provider (maybe empty) and no pn-prid.
    return { kind: 'query', provider };
  }
  if (provider === '') return { kind: 'malformed', reason: 'Empty pn-provider with a pn-prid' };
  if (!options.supportedProviders.includes(provider)) {
    return { kind: 'unsupported', provider, reason: `Push provider "${provider}" is not supported` };
  }

  // Flexisip's multi-token form (RFC 8599 allows provider-specific formats). Linphone also
  // sends a single pair (`pn-prid=<hex>:voip`); a hex device token never contains ':'.
  if (provider === 'apns' && (prid.includes('&') || prid.includes(':') || (param?.includes('&') ?? false))) {
    return inspectFlexisipMulti(prid, param, environment ?? options.apnsDefaultEnvironment, options);
  }
  return validate(
    {
      provider,
      prid,
      param,
      environment: provider === 'apns' ? (environment ?? options.apnsDefaultEnvironment) : undefined,
      ...(provider === 'apns' && environment !== undefined ? { environmentDeclared: true } : {}),
      form: 'rfc8599',
    },
    options,
  );
}

/**
 * `pn-param=TEAMID.bundle.voip&remote` and `pn-prid=tok1:voip&tok2:remote`. The services
 * after the bundle's last dot must pair one-to-one with the tokens (the classic Flexisip
 * error is "pn-param declares 1 service(s), whereas there is/are 2 token(s)").
 */
function inspectFlexisipMulti(prid: string, param: string | undefined, environment: ApnsEnvironment, options: PushInspectionOptions): PushInspection {
  if (!param) return { kind: 'unsupported', provider: 'apns', reason: 'APNs push requires pn-param (TeamID.bundle.service)' };
  const firstDot = param.indexOf('.');
  const lastDot = param.lastIndexOf('.');
  if (firstDot <= 0 || lastDot <= firstDot) return { kind: 'malformed', reason: 'Malformed pn-param for apns' };
  const team = param.slice(0, firstDot);
  const bundle = param.slice(firstDot + 1, lastDot);
  const services = param.slice(lastDot + 1).split('&');
  const tokens = new Map<string, string>();
  const parts = prid.split('&');
  for (const part of parts) {
    const colon = part.lastIndexOf(':');
    if (colon <= 0) return { kind: 'malformed', reason: 'Malformed pn-prid: expected token:service pairs' };
    tokens.set(part.slice(colon + 1), part.slice(0, colon));
  }
  if (services.length !== parts.length) {
    return { kind: 'malformed', reason: `pn-param declares ${services.length} service(s) but pn-prid has ${parts.length} token(s)` };
  }
  const voip = tokens.get('voip');
  const remote = tokens.get('remote');
  if (!voip) return { kind: 'unsupported', provider: 'apns', reason: 'No voip token in a multi-token APNs contact' };
  return validate(
    { provider: 'apns', prid: voip, param: `${team}.${bundle}.voip`, environment, alertPrid: remote, form: 'flexisip-multi' },
    options,
  );
}

function inspectLegacy(uri: SipUri, options: PushInspectionOptions): PushInspection {
  const type = (uri.param('pn-type') ?? '').toLowerCase();
  const token = uri.param('pn-tok');
  const appId = uri.param('app-id');
  if (!token) return { kind: 'query', provider: '' };
  const provider = type === 'apple' || type === 'apns' ? 'apns' : type === 'firebase' || type === 'google' || type === 'fcm' ? 'fcm' : type;
  if (!options.supportedProviders.includes(provider)) {
    return { kind: 'unsupported', provider, reason: `Push provider "${type}" is not supported` };
  }
  if (provider === 'apns') {
    if (!appId) return { kind: 'unsupported', provider, reason: 'Legacy APNs contact needs app-id' };
    let bundle = appId;
    let environment = options.apnsDefaultEnvironment;
    if (bundle.endsWith('.dev')) {
      environment = 'sandbox';
      bundle = bundle.slice(0, -4);
    } else if (bundle.endsWith('.prod')) {
      environment = 'production';
      bundle = bundle.slice(0, -5);
    }
    if (!bundle.endsWith('.voip')) bundle = `${bundle}.voip`;
    return validate({ provider, prid: token, param: `${options.apnsLegacyTeamId}.${bundle}`, environment, form: 'legacy' }, options);
  }
  return validate({ provider, prid: token, param: appId, form: 'legacy' }, options);
}

function validate(registration: PushRegistration, options: PushInspectionOptions): PushInspection {
  if (!options.supportedProviders.includes(registration.provider)) {
    return { kind: 'unsupported', provider: registration.provider, reason: `Push provider "${registration.provider}" is not supported` };
  }
  switch (registration.provider) {
    case 'apns': {
      if (!APNS_TOKEN.test(registration.prid)) return { kind: 'malformed', reason: 'Malformed pn-prid: APNs device tokens are hex' };
      if (!registration.param) return { kind: 'unsupported', provider: 'apns', reason: 'APNs push requires pn-param (TeamID.bundle.voip)' };
      const dot = registration.param.indexOf('.');
      if (dot <= 0 || dot === registration.param.length - 1) return { kind: 'malformed', reason: 'Malformed pn-param for apns: expected TeamID.bundle.voip' };
      break;
    }
    case 'fcm':
      if (!/^[A-Za-z0-9_:\-.]{8,4096}$/.test(registration.prid)) return { kind: 'malformed', reason: 'Malformed pn-prid for fcm' };
      break;
    case 'webpush':
      if (registration.param !== undefined) return { kind: 'malformed', reason: 'pn-param must not be used with webpush (RFC 8599 §12)' };
      if (!/^https:\/\/[^\s]+$/.test(registration.prid)) return { kind: 'malformed', reason: 'Malformed pn-prid for webpush: expected an https push resource URI' };
      break;
    default:
      if (registration.prid.length > 4096) return { kind: 'malformed', reason: 'pn-prid too long' };
  }
  return { kind: 'push', registration };
}

/** The Contact URI without any push parameter (what the proxy forwards to, §5.6.2). */
export function stripAllPushParams(uri: SipUri): SipUri {
  const clean = uri.clone();
  clean.params.deleteWhere((n) => n.startsWith('pn-') || n === 'app-id');
  return clean;
}
