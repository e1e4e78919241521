/**
 * Secrets never appear whole in logs: push tokens, keys, credentials. Tokens keep a short
 * prefix and suffix so operators can still tell two of them apart.
 */

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
