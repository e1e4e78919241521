/**
 * RFC 3326 Reason header parsing, and the mapping from a CANCEL's Reason to the end reason
 * shown by the system call UI.
 *
 *   Reason            =  "Reason" HCOLON reason-value *(COMMA reason-value)
 *   reason-value      =  protocol *(SEMI reason-params)
 *   protocol          =  "SIP" / "Q.850" / token
 *   reason-params     =  protocol-cause / reason-text / reason-extension
 *   protocol-cause    =  "cause" EQUAL cause          ; 1*DIGIT
 *   reason-text       =  "text" EQUAL quoted-string
 */

/** One parsed reason-value. `cause` is undefined when absent or not a number. */
export interface SipReason {
  /** Upper-cased protocol token: 'SIP', 'Q.850', ... */
  readonly protocol: string;
  readonly cause?: number;
  readonly text?: string;
}

/** The reasons a call can end with, in CallKit's vocabulary (CXCallEndedReason). */
export type EndReason = 'failed' | 'remoteEnded' | 'unanswered' | 'answeredElsewhere' | 'declinedElsewhere';

/** Split on `sep` outside double-quoted strings (with backslash escapes). */
function splitOutsideQuotes(input: string, sep: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < input.length; i++) {
    const ch = input[i];
    if (quoted && ch === '\\' && i + 1 < input.length) {
      cur += ch + input[++i];
      continue;
    }
    if (ch === '"') quoted = !quoted;
    if (!quoted && ch === sep) {
      parts.push(cur);
      cur = '';
      continue;
    }
    cur += ch;
  }
  parts.push(cur);
  return parts;
}

function unquote(value: string): string {
  const v = value.trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
    return v.slice(1, -1).replace(/\\(.)/g, '$1');
  }
  return v;
}

/**
 * Parse one or more Reason header values (several headers, or one header with
 * comma-separated values). Never throws; garbage yields no entries.
 */
export function parseReasonHeader(values: string | readonly string[] | undefined): SipReason[] {
  if (values === undefined) return [];
  const list = typeof values === 'string' ? [values] : values;
  const out: SipReason[] = [];
  for (const header of list) {
    if (typeof header !== 'string') continue;
    for (const raw of splitOutsideQuotes(header, ',')) {
      const [protoRaw, ...params] = splitOutsideQuotes(raw, ';');
      const protocol = protoRaw.trim().toUpperCase();
      if (!protocol || !/^[A-Z0-9.!%*_+`'~-]+$/.test(protocol)) continue;
      let cause: number | undefined;
      let text: string | undefined;
      for (const p of params) {
        const eq = p.indexOf('=');
        if (eq < 0) continue;
        const name = p.slice(0, eq).trim().toLowerCase();
        const value = p.slice(eq + 1);
        if (name === 'cause') {
          const n = Number(value.trim());
          if (/^\d{1,5}$/.test(value.trim()) && Number.isFinite(n)) cause = n;
        } else if (name === 'text') {
          text = unquote(value);
        }
      }
      out.push({ protocol, ...(cause !== undefined ? { cause } : {}), ...(text !== undefined ? { text } : {}) });
    }
  }
  return out;
}

/**
 * The end reason for a CANCEL (or any end signalled by the server before the call was
 * answered here).
 *
 * - `SIP;cause=200` → answeredElsewhere ("Call completed elsewhere", RFC 3326 §3, what
 *   Flexisip and our server send when another device of the user answered).
 * - `SIP;cause=6xx` → declinedElsewhere: a global failure on another device ends the call
 *   everywhere (RFC 3261 §16.7 step 5): 600 Busy Everywhere, 603 Decline, 604, 606, 607
 *   Unwanted, 608 Rejected.
 * - anything else, including no Reason → remoteEnded: the caller gave up. Apple's guidance
 *   for "the caller hangs up" is `.remoteEnded`; CallKit's `.unanswered` means the call
 *   timed out locally, and the coordinator uses it only for its own optional ring timeout.
 *
 * Only the SIP protocol entry is considered; Q.850 causes describe the PSTN leg and do
 * not say whether another device of this user took the call.
 */
export function endReasonForCancel(reasons: readonly SipReason[]): EndReason {
  const cause = reasons.find((r) => r.protocol === 'SIP' && r.cause !== undefined)?.cause;
  if (cause === undefined) return 'remoteEnded';
  if (cause === 200) return 'answeredElsewhere';
  if (cause >= 600 && cause < 700) return 'declinedElsewhere';
  return 'remoteEnded';
}

/** Convenience: parse raw header values and map them. */
export function endReasonForCancelHeader(values: string | readonly string[] | undefined): EndReason {
  return endReasonForCancel(parseReasonHeader(values));
}
