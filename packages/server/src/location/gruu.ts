/**
 * GRUUs (RFC 5627): URIs that reach one device (one `+sip.instance`) of an AOR rather than
 * all of them. Apps use one as their Contact, so that a transfer, a re-INVITE or a callback
 * reaches the very phone that is in the call, and pushcall can wake it if it sleeps.
 *
 * - Public GRUU (§3.1): the AOR with `gr=<instance URN>`; it names the instance openly.
 * - Temporary GRUU (§3.2): `sip:tgruu.<binding id>.<tag>@<domain>;gr`. It does not reveal
 *   the AOR. The binding id is random and lives as long as the instance's registration
 *   (refreshes keep it), so every temporary GRUU handed out for that registration stays
 *   valid until it ends, and none of them survives it (§5.4, §5.5): a later registration of
 *   the same instance gets a new binding id. `<tag>` comes from the REGISTER's Call-ID, so
 *   a new registration Call-ID gets a new temporary GRUU (§5.4); routing ignores it.
 *
 * Stateless: nothing is stored besides the binding itself.
 */

import { createHash } from 'node:crypto';
import type { SipUri } from '@pushcall/sip';
import type { Binding } from './types.js';

const TEMP_PREFIX = 'tgruu.';
const BINDING_ID = /^[0-9a-f]{8,64}$/;

/** The URN of an instance id such as `<urn:uuid:…>`, the form a GRUU carries; undefined for other instance ids. */
function instanceUrn(instanceId: string): string | undefined {
  const urn = instanceId.startsWith('<') && instanceId.endsWith('>') ? instanceId.slice(1, -1) : instanceId;
  // RFC 5627 §4.1 requires a URN (RFC 8141). Only the characters a `gr` URI parameter can
  // carry as they are: no `;`, `?`, `#` or `,` (they would end the parameter or the header).
  return /^urn:[a-z0-9][a-z0-9-]{0,31}:[A-Za-z0-9()+\-.:=@$_!*'%/]+$/i.test(urn) ? urn : undefined;
}

/** The public and temporary GRUU of a binding (RFC 5627 §5.4), or undefined when it has no URN instance id. */
export function gruusOf(binding: Binding, registrationCallId: string): { pub: string; temp: string } | undefined {
  if (binding.instanceId === undefined) return undefined;
  const urn = instanceUrn(binding.instanceId);
  if (urn === undefined) return undefined;
  const domain = binding.aor.slice(binding.aor.indexOf('@') + 1);
  const tag = createHash('sha256').update(registrationCallId).digest('base64url').slice(0, 8);
  return { pub: `${binding.aor};gr=${urn}`, temp: `sip:${TEMP_PREFIX}${binding.id}.${tag}@${domain};gr` };
}

export type GruuTarget =
  | { kind: 'public'; aor: string; instanceId: string }
  | { kind: 'temporary'; bindingId: string }
  /** A `gr` URI pushcall never issued (RFC 5627 §5.5: 404). */
  | { kind: 'unknown' };

/** What a Request-URI with a `gr` parameter names; undefined when it is not a GRUU. */
export function gruuTarget(uri: SipUri): GruuTarget | undefined {
  const gr = uri.params.get('gr');
  if (gr === undefined) return undefined;
  const user = uri.user ?? '';
  if (gr === '' || gr === null) {
    if (!user.startsWith(TEMP_PREFIX)) return { kind: 'unknown' };
    const bindingId = user.slice(TEMP_PREFIX.length, user.indexOf('.', TEMP_PREFIX.length) >>> 0);
    return BINDING_ID.test(bindingId) ? { kind: 'temporary', bindingId } : { kind: 'unknown' };
  }
  const urn = instanceUrn(gr);
  return urn === undefined ? { kind: 'unknown' } : { kind: 'public', aor: uri.toAor(), instanceId: `<${urn}>` };
}
