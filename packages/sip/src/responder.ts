/**
 * A minimal SIP responder built on the stack: one TransactionLayer over any mix of
 * transports, answering OPTIONS with 200 OK (RFC 3261 §11) and everything else with
 * 405 Method Not Allowed (CANCEL with 481, ACK absorbed). It is what a health check or a
 * keep-alive probe (SIPp, `sipsak`, a load balancer) talks to, and a smoke test that the
 * transport → message → transaction layers work end to end against a real peer.
 *
 *   const r = await startOptionsResponder({ listen: ['udp:127.0.0.1:5060', 'ws:127.0.0.1:8080'] });
 *   r.addresses;   // [{ protocol: 'udp', address: '127.0.0.1', port: 5060 }, ...]
 *   await r.close();
 */

import { createResponse } from './message/factory.js';
import type { SipRequest } from './message/message.js';
import { TransactionLayer } from './transaction/layer.js';
import type { TransactionLayerUser } from './transaction/layer.js';
import type { ServerTransaction } from './transaction/server-transactions.js';
import { createTransport } from './transport/index.js';
import type { TransportSpec } from './transport/index.js';
import type { Flow, TransportProtocol } from './transport/types.js';
import type { Clock } from './util/clock.js';

/** `proto:host:port` (`udp:127.0.0.1:5060`, `ws:[::1]:0`), or a full transport spec. */
export type ListenSpec = string | TransportSpec;

export interface OptionsResponderOptions {
  /** Where to listen; port 0 picks a free port. */
  readonly listen: readonly ListenSpec[];
  /** Value of the User-Agent / Server header. Default 'pushcall-responder'. */
  readonly serverName?: string;
  readonly clock?: Clock;
  /** Called for every request received (after the response was sent). */
  readonly onRequest?: (request: SipRequest, flow: Flow) => void;
}

export interface ResponderAddress {
  readonly protocol: TransportProtocol;
  readonly address: string;
  readonly port: number;
}

export interface OptionsResponder {
  /** The bound addresses, in the order of `listen` (ports resolved). */
  readonly addresses: readonly ResponderAddress[];
  /** The first address of a protocol; throws when there is none. */
  address(protocol: TransportProtocol): ResponderAddress;
  /** Requests answered so far, by method. */
  readonly counts: Readonly<Record<string, number>>;
  close(): Promise<void>;
}

const ALLOW = 'OPTIONS';

/** Parse `proto:host:port`; IPv6 hosts in brackets. */
export function parseListenSpec(spec: string): TransportSpec {
  const m = /^(udp|tcp|tls|ws|wss):(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(spec.trim());
  if (!m) throw new TypeError(`listen spec must be proto:host:port, got ${JSON.stringify(spec)}`);
  const host = m[2].startsWith('[') ? m[2].slice(1, -1) : m[2];
  const port = Number(m[3]);
  if (port > 65535) throw new TypeError(`port out of range in ${JSON.stringify(spec)}`);
  return { protocol: m[1] as TransportProtocol, address: host, port };
}

export async function startOptionsResponder(options: OptionsResponderOptions): Promise<OptionsResponder> {
  if (options.listen.length === 0) throw new TypeError('startOptionsResponder: listen is empty');
  const serverName = options.serverName ?? 'pushcall-responder';
  const counts: Record<string, number> = {};
  const count = (method: string) => {
    counts[method] = (counts[method] ?? 0) + 1;
  };

  const user: TransactionLayerUser = {
    onRequest(request: SipRequest, tx: ServerTransaction, flow: Flow) {
      count(request.method);
      if (request.method === 'OPTIONS') {
        tx.respond(
          createResponse(request, 200, {
            headers: [
              ['Allow', ALLOW],
              ['Accept', 'application/sdp'],
              ['Supported', 'outbound'],
              ['Server', serverName],
            ],
          }),
        );
      } else {
        tx.respond(createResponse(request, 405, { headers: [['Allow', ALLOW], ['Server', serverName]] }));
      }
      options.onRequest?.(request, flow);
    },
    onCancel(cancel, tx, _invite, flow) {
      count('CANCEL');
      // Nothing is ever pending here (INVITE gets 405 at once): §9.2 481.
      tx.respond(createResponse(cancel, 481));
      options.onRequest?.(cancel, flow);
    },
    onAck(ack, flow) {
      count('ACK');
      options.onRequest?.(ack, flow);
    },
  };

  const layer = new TransactionLayer(user, options.clock ? { clock: options.clock } : {});
  const specs = options.listen.map((s) => (typeof s === 'string' ? parseListenSpec(s) : s));
  const transports = specs.map((spec) => layer.addTransport((events) => createTransport({ ...spec, clock: spec.clock ?? options.clock }, events)));
  try {
    for (const t of transports) await t.listen();
  } catch (error) {
    await layer.close().catch(() => undefined);
    throw error;
  }
  const addresses: ResponderAddress[] = transports.map((t) => ({ protocol: t.protocol, address: t.localAddress, port: t.localPort }));
  let closed: Promise<void> | undefined;
  return {
    addresses,
    counts,
    address(protocol) {
      const a = addresses.find((x) => x.protocol === protocol);
      if (!a) throw new Error(`responder does not listen on ${protocol}`);
      return a;
    },
    close() {
      closed ??= layer.close();
      return closed;
    },
  };
}
