/** Building messages: responses to requests (RFC 3261 §8.2.6) and new requests. */

import { newTag } from '../util/random.js';
import { type HeaderField, type SipRequest, SipResponse, header } from './message.js';
import { reasonPhrase } from './status.js';

export interface ResponseOptions {
  reason?: string;
  /** To-tag to add when the request has none (ignored for 100). Generated when omitted. */
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
  for (const h of request.headers) {
    if (h.key === 'via' || h.key === 'from' || h.key === 'call-id' || h.key === 'cseq') headers.push({ ...h });
    else if (h.key === 'to') {
      let value = h.value;
      if (status !== 100 && !request.to.tag) value = `${value};tag=${options.toTag ?? newTag()}`;
      headers.push({ ...h, value });
    } else if (status === 100 && h.key === 'timestamp') headers.push({ ...h });
  }
  if (options.headers) for (const [name, value] of options.headers) headers.push(header(name, value));
  if (options.body && options.contentType) headers.push(header('Content-Type', options.contentType));
  return new SipResponse(status, options.reason ?? reasonPhrase(status), headers, options.body);
}
