/** Building messages: responses to requests (RFC 3261 §8.2.6) and new requests. */

import { newTag } from '../util/random.js';
import { type HeaderField, type SipRequest, SipRequest as SipRequestClass, SipResponse, header } from './message.js';
import { reasonPhrase } from './status.js';

export interface ResponseOptions {
  reason?: string;
  /** To-tag to add when the request has none (ignored for 100). Default: `request.localTag`, else random. */
  toTag?: string;
  headers?: Array<[string, string]>;
  body?: Buffer;
  contentType?: string;
}

/**
 * RFC 3261 §8.2.6.2: copy Via (all, in order), From, To, Call-ID and CSeq; add a To-tag
 * to responses other than 100 when the request had none.
 */
export function createResponse(request: SipRequest, status: number, options: ResponseOptions = {}): SipResponse {
  const headers: HeaderField[] = [];
  // Header fields are immutable, so the response shares the request's (see SipMessage).
  for (const h of request.headers) {
    if (h.key === 'via' || h.key === 'from' || h.key === 'call-id' || h.key === 'cseq') headers.push(h);
    else if (h.key === 'to') {
      if (status !== 100 && !request.to.tag) headers.push({ ...h, value: `${h.value};tag=${options.toTag ?? request.localTag ?? newTag()}` });
      else headers.push(h);
    } else if (status === 100 && h.key === 'timestamp') headers.push(h);
  }
  if (options.headers) for (const [name, value] of options.headers) headers.push(header(name, value));
  if (options.body && options.contentType) headers.push(header('Content-Type', options.contentType));
  return new SipResponse(status, options.reason ?? reasonPhrase(status), headers, options.body);
}

/**
 * A request that shares an INVITE's client transaction identity: the ACK for a non-2xx
 * final response (§17.1.1.3) and the CANCEL (§9.1). Same Request-URI, top Via (so the same
 * branch), From, Call-ID, CSeq number and Route set; `to` is the response's To for the ACK
 * and the INVITE's own for the CANCEL.
 */
export function createInviteCompanion(invite: SipRequest, method: 'ACK' | 'CANCEL', to: string, extraHeaders: Array<[string, string]> = []): SipRequest {
  const headers = [
    header('Via', invite.values('via')[0] ?? ''),
    header('Max-Forwards', '70'),
    header('From', invite.get('from') ?? ''),
    header('To', to),
    header('Call-ID', invite.callId),
    header('CSeq', `${invite.cseq.seq} ${method}`),
  ];
  for (const route of invite.getAll('route')) headers.push(header('Route', route));
  for (const [name, value] of extraHeaders) headers.push(header(name, value));
  return new SipRequestClass(method, invite.uriText, headers);
}
