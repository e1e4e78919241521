/**
 * Where requests go (RFC 3261 §16.5–16.6, RFC 3263 via dns.ts, RFC 5626 flows, RFC 5658
 * double Record-Route). IP addresses are used as they are.
 */

import { createHash, createHmac, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { type Destination, type NameAddr, SipUri, type SipRequest, parseSipUriStrict, type TransactionLayer, type Transport, type TransportProtocol, VIA_TRANSPORT } from '@pushcall/sip';
import type { Binding } from '../location/types.js';
import { stripAllPushParams } from '../registrar/push-params.js';
import { sameSecret } from '../util/secure-compare.js';
import { SipResolver } from './dns.js';

/** The system's DNS, for callers that were not given a configured resolver. */
const systemResolver = new SipResolver();

/** Record-Route parameter carrying the connection to a device behind a connection-oriented flow. */
export const FLOW_PARAM = 'pc-flow';
/** Record-Route parameter signing the entry (see RouteSigner). */
export const SIGNATURE_PARAM = 'pc-sig';

/**
 * Signs the Record-Route (and Path) entries pushcall writes, over what they carry (flow
 * token, binding). A request routed through an entry of ours is relayed without
 * authentication, as it belongs to a dialog we record-routed, and it is sent over the
 * entry's flow or to its binding's device: an entry anyone could write (our address is
 * public, connection ids are guessable, `tcp:12`) would lead strangers to any phone's
 * connection. Only a signed entry counts as ours (RFC 5626 §5.2 asks the same of flow
 * tokens). The key comes from `auth.nonceSecret` when set, so entries stay valid across a
 * restart and between nodes sharing it; else it is random per process.
 */
export class RouteSigner {
  private readonly key: Buffer;
  /** The signature of an entry with neither flow nor binding (every UDP-only dialog): computed once. */
  private readonly bare: string;

  constructor(secret?: string) {
    this.key = secret ? createHash('sha256').update(`pushcall-route|${secret}`).digest() : randomBytes(32);
    this.bare = this.mac('|');
  }

  private mac(contents: string): string {
    return createHmac('sha256', this.key).update(contents).digest('base64url').slice(0, 16);
  }

  sign(flow: string | undefined, binding: string | undefined, deliver = false): string {
    if (deliver) return this.mac(`${flow ?? ''}|${binding ?? ''}|deliver`);
    return flow === undefined && binding === undefined ? this.bare : this.mac(`${flow ?? ''}|${binding ?? ''}`);
  }

  /** The flow and binding of an entry whose signature is ours; undefined for any other. */
  verify(uri: SipUri): { flow?: string; binding?: string; deliver: boolean } | undefined {
    const flow = uri.param(FLOW_PARAM);
    const binding = uri.param(BINDING_PARAM);
    const deliver = uri.params.has(DELIVER_PARAM);
    return sameSecret(this.sign(flow, binding, deliver), uri.param(SIGNATURE_PARAM) ?? '') ? { flow, binding, deliver } : undefined;
  }
}

/**
 * Record-Route parameter naming the binding of the device a dialog leads to, in the entry
 * facing it: when the device moves to another connection during the dialog (a network
 * handover re-registers it from a new one), its requests follow the binding there.
 */
export const BINDING_PARAM = 'pc-bind';

/**
 * Route parameter (with `pc-bind`) in the entry one node writes to send a request through
 * the node that holds a device's flow (multi-node, DESIGN.md §6): "deliver this to that
 * binding's flow". Signed like every entry, with the key the nodes share.
 */
export const DELIVER_PARAM = 'pc-deliver';

/** The Route entry that sends a request for `binding` through the node owning its flow (`flow.nodeUri`). */
export function nodeRouteFor(nodeUri: string, bindingId: string, signer: RouteSigner): string {
  return looseRouteTo(parseSipUriStrict(nodeUri), signedParams(signer, undefined, bindingId, true));
}

/** A Route entry for `uri` as a loose router (RFC 3261 §16.12: with `lr`), followed by `params`. */
export function looseRouteTo(uri: SipUri, params = ''): string {
  return `<${uri.toString()}${uri.params.has('lr') ? '' : ';lr'}${params}>`;
}

/** The parameters of an entry pushcall writes: its flow, binding and delivery flag, and their signature (RouteSigner). */
function signedParams(signer: RouteSigner, flow: string | undefined, binding: string | undefined, deliver = false): string {
  let params = '';
  if (flow) params += `;${FLOW_PARAM}=${encodeURIComponent(flow)}`;
  if (binding) params += `;${BINDING_PARAM}=${binding}`;
  if (deliver) params += `;${DELIVER_PARAM}`;
  return `${params};${SIGNATURE_PARAM}=${signer.sign(flow, binding, deliver)}`;
}

export function protocolOfUri(uri: SipUri): TransportProtocol {
  const t = uri.transport;
  if (t === 'tcp') return uri.isSecure ? 'tls' : 'tcp';
  if (t === 'tls') return 'tls';
  if (t === 'ws') return uri.isSecure ? 'wss' : 'ws';
  if (t === 'wss') return 'wss';
  return uri.isSecure ? 'tls' : 'udp';
}

/**
 * Resolve a URI to a destination: maddr, else host; an IP address as it is, a name through
 * RFC 3263 (NAPTR for the transport, SRV when the URI has no port, else A/AAAA); default port
 * per transport. A TLS server is checked against the URI's host (RFC 5922 §4), not the SRV
 * target.
 */
export async function resolveUri(uri: SipUri, connectionId?: string, resolver: SipResolver = systemResolver, usable?: () => readonly TransportProtocol[]): Promise<Destination> {
  return (await resolveUriAll(uri, connectionId, resolver, usable))[0];
}

/**
 * Every destination for a URI, in the order to try them (RFC 3263 §4.3 failover). `usable`
 * gives the transports we can send on, among which NAPTR records may choose when the URI
 * names none.
 */
export async function resolveUriAll(uri: SipUri, connectionId?: string, resolver: SipResolver = systemResolver, usable?: () => readonly TransportProtocol[]): Promise<Destination[]> {
  let protocol = protocolOfUri(uri);
  const maddr = uri.param('maddr');
  let host = maddr ?? uri.hostname;
  if (host.startsWith('[')) host = host.slice(1, -1);
  const serverName = isIP(uri.hostname) ? undefined : uri.hostname;
  let srvName: string | undefined;
  // §4.1: NAPTR only when nothing in the URI fixes the transport or the port.
  if (usable && !isIP(host) && uri.port === undefined && uri.transport === undefined && !uri.isSecure && maddr === undefined) {
    const chosen = await resolver.naptr(host, usable());
    if (chosen) ({ protocol, srvName } = chosen);
  }
  const defaultPort = protocol === 'tls' || protocol === 'wss' ? 5061 : 5060;
  if (isIP(host)) return [{ protocol, address: host, port: uri.port ?? defaultPort, connectionId, serverName }];
  const servers = await resolver.locateAll(host, uri.port, protocol, defaultPort, srvName);
  return servers.map(({ address, port }) => ({ protocol, address, port, connectionId, serverName }));
}

/**
 * A binding's destination: the flow it registered on (RFC 5626 §5.3). Over connection-
 * oriented transports only the open connection can reach a device behind NAT. Over UDP the
 * REGISTER's source is used (symmetric signalling through NAT) when the UA asked for
 * outbound (reg-id) or its Contact names another address than it sent from; a Contact on
 * the source host itself (a desk phone registered by a provisioning tool, say) is used as
 * written, port included.
 */
export function bindingDestination(binding: Binding): Destination {
  const f = binding.flow;
  if (f.protocol === 'udp' && binding.regId === undefined) {
    try {
      const contact = parseSipUriStrict(binding.contact);
      if (contact.hostname === f.remoteAddress.toLowerCase() && protocolOfUri(contact) === 'udp') {
        return { protocol: 'udp', address: f.remoteAddress, port: contact.portOrDefault };
      }
    } catch {
      // fall back to the flow
    }
  }
  return { protocol: f.protocol, address: f.remoteAddress, port: f.remotePort, connectionId: f.connectionId };
}

/**
 * Point `out` at a binding: its Contact as the Request-URI (without the pn-* parameters,
 * which are for the registrar and the pushing proxy only, RFC 8599 §4.1, §13, unless another
 * proxy pushes for it) and its Path as the route (RFC 3327 §5.3). False for an unusable Contact.
 */
export function retargetToBinding(out: SipRequest, binding: Binding): boolean {
  let contact: SipUri;
  try {
    contact = parseSipUriStrict(binding.contact);
  } catch {
    return false;
  }
  out.uri = binding.push ? stripAllPushParams(contact) : contact;
  for (const p of [...binding.path].reverse()) out.prepend('Route', p);
  return true;
}

export function isFlowOpen(layer: TransactionLayer, binding: Binding): boolean {
  const f = binding.flow;
  if (f.protocol === 'udp' || !f.connectionId) return false;
  const transport = layer.transportForAddress(f.protocol, f.remoteAddress);
  return transport?.hasConnection(f.connectionId) ?? false;
}

/**
 * A push binding to call directly instead of pushing (RFC 8599 §5.6.2, "skip the push"): its
 * connection-oriented flow is open, and the device showed it is there within `liveMs`, by a
 * REGISTER or by any traffic on that connection (a CRLF keep-alive, RFC 5626 §3.5.1). A UDP
 * binding never is: nothing proves a device still listens behind its NAT binding.
 */
export function isLiveBinding(layer: TransactionLayer, binding: Binding, now: number, liveMs: number): boolean {
  if (!isFlowOpen(layer, binding)) return false;
  if (now - binding.updatedAt < liveMs) return true;
  const f = binding.flow;
  const quietMs = layer.transportForAddress(f.protocol, f.remoteAddress)?.msSinceInbound?.(f.connectionId!);
  return quietMs !== undefined && quietMs < liveMs;
}

/** Is this URI one of ours (a Route/Record-Route entry we wrote, or our address)? */
export function isOwnUri(layer: TransactionLayer, uri: SipUri, advertisedHost?: string): boolean {
  const host = uri.hostname;
  const port = uri.portOrDefault;
  for (const t of layer.listeners) {
    const local = layer.sentBy(t);
    const localHost = local.host.startsWith('[') ? local.host.slice(1, -1) : local.host;
    if ((host === localHost.toLowerCase() || (advertisedHost && host === advertisedHost.toLowerCase())) && port === t.localPort) return true;
  }
  return false;
}

/** Our Record-Route URI for a listener (RFC 3261 §16.6 step 4: with `lr`). */
export function recordRouteFor(layer: TransactionLayer, transport: Transport, signer: RouteSigner, flowConnectionId?: string, bindingId?: string): string {
  const { host, port } = layer.sentBy(transport);
  return `<sip:${host}:${port};transport=${VIA_TRANSPORT[transport.protocol].toLowerCase()};lr${signedParams(signer, flowConnectionId, bindingId)}>`;
}

/**
 * RFC 3261 §16.4: when the Request-URI is an entry we wrote into a Record-Route (a strict
 * router, RFC 2543, routed the request to it), the remote target is the last Route value:
 * it goes back into the Request-URI and leaves the Route set. Returns our entry, if it was
 * there. An entry of ours has no user part and has `lr`, unlike a request addressed to this
 * server (OPTIONS) or to a user of its domain.
 */
export function restoreStrictRoute(layer: TransactionLayer, request: SipRequest, advertisedHost?: string): SipUri | undefined {
  const uri = request.uri;
  if (!(uri instanceof SipUri) || uri.user !== undefined || !uri.params.has('lr') || !isOwnUri(layer, uri, advertisedHost)) return undefined;
  const routes = request.values('route');
  if (routes.length === 0) return undefined;
  const target = request.routes[routes.length - 1].uri;
  request.uri = target;
  request.remove('Route');
  for (const route of routes.slice(0, -1)) request.append('Route', route);
  return uri;
}

/**
 * Remove the Route entries that point at us. `verified`: every one of them is signed by us
 * (RouteSigner); only those give their flow tokens and binding.
 */
export function popOwnRoutes(
  layer: TransactionLayer,
  routes: NameAddr[],
  signer: RouteSigner,
  advertisedHost?: string,
): { remaining: NameAddr[]; flows: string[]; removed: number; verified: boolean; recipientBinding?: string; deliverTo?: string } {
  let i = 0;
  const flows: string[] = [];
  let verified = true;
  let lastBinding: string | undefined;
  let deliverTo: string | undefined;
  while (i < routes.length) {
    const uri = routes[i].uri;
    if (!(uri instanceof SipUri) || !isOwnUri(layer, uri, advertisedHost)) break;
    const entry = signer.verify(uri);
    if (entry === undefined) verified = false;
    if (entry?.flow) flows.push(entry.flow);
    if (entry?.deliver) deliverTo = entry.binding;
    lastBinding = entry?.binding;
    i++;
  }
  // Of our two entries (RFC 5658), the sender's route set lists the one facing it first and
  // the one facing the recipient last: a binding there is the device the request goes to.
  const recipientBinding = i >= 2 ? lastBinding : undefined;
  verified &&= i > 0;
  return { remaining: routes.slice(i), flows, removed: i, verified, recipientBinding, deliverTo: verified ? deliverTo : undefined };
}

/**
 * The flow an in-dialog request must leave on: of the tokens in our Route entries (one per
 * connection-oriented side of the dialog), the one that is not where the request came from.
 */
export function outboundFlow(flows: readonly string[], inboundConnectionId: string | undefined): string | undefined {
  return flows.find((t) => t !== inboundConnectionId);
}
