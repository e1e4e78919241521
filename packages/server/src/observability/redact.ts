/**
 * Secrets never appear whole in logs: push tokens, keys, credentials. Tokens keep a short
 * prefix and suffix so operators can still tell two of them apart.
 */

import { type SipUri, parseSipUriStrict } from '@pushcall/sip';
import { stripAllPushParams } from '../registrar/push-params.js';

export function redactToken(token: string | undefined | null): string {
  if (!token) return '';
  if (token.length <= 12) return '…';
  return `${token.slice(0, 6)}…${token.slice(-4)}`;
}

const TOKEN_PARAMS = /((?:pn-prid|pn-tok|pn-purr)=)([^;>?\s,]+)/gi;

/**
 * Mask push tokens inside a URI or a whole SIP message text, including every token of the
 * multi-token form (`pn-prid=tok1:voip&tok2:remote`).
 */
export function redactUriText(text: string): string {
  return text.replace(TOKEN_PARAMS, (_, name: string, value: string) => {
    const parts = value.split('&').map((part) => {
      const colon = part.lastIndexOf(':');
      return colon > 0 ? `${redactToken(part.slice(0, colon))}${part.slice(colon)}` : redactToken(part);
    });
    return `${name}${parts.join('&')}`;
  });
}

/** Mask digest responses, PURRs and other credentials in a SIP message text. */
export function redactMessageText(text: string): string {
  return redactUriText(text)
    .replace(/(response=)("[^"]*"|[^,\s]+)/gi, '$1"…"')
    .replace(/(\+sip\.pnspurr=)"([^"]*)"/gi, (_, name: string, purr: string) => `${name}"${redactToken(purr)}"`);
}

/**
 * A binding's Contact for display (admin API, dashboard): its push parameters are dropped
 * (the binding's `push` shows the redacted token), and any other parameter value long enough
 * to be a token (a token carried in a configured X-header parameter, for one) is masked.
 * An FCM token or a Web Push endpoint contains ':' and '/', so masking inside `pn-prid` by
 * its separators is not enough: the parameter goes.
 */
export function redactContact(contact: string): string {
  let uri: SipUri;
  try {
    uri = stripAllPushParams(parseSipUriStrict(contact));
  } catch {
    return redactUriText(contact); // not a readable SIP URI: mask what can be found
  }
  for (const [name, value] of [...uri.params]) if (value !== null && value.length > 24) uri.params.set(name, redactToken(value));
  return uri.toString();
}

/**
 * Provider error text (it can quote the request it refused, token included) before it goes
 * into a timeline: long token-like runs are masked.
 */
export function redactProviderText(text: string): string {
  return text.replace(/[A-Za-z0-9_\-:.\/%+=]{24,}/g, (run) => redactToken(run));
}

/** A URL with credentials (a Redis URL) for a log line or an error: the password left out. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, (_match, auth: string) => `//${auth.includes(':') ? `${auth.split(':')[0]}:***` : '***'}@`);
}
