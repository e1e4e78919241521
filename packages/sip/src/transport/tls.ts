/**
 * SIP over TLS (RFC 3261 §18, §26.2). Certificate, key and CA come from PEM files.
 * Outbound connections verify the server (against caFile, or the system store) unless
 * `tls.rejectUnauthorized` is false; the name checked is `SendTarget.serverName`, else the
 * target address.
 */

import type { Server, Socket } from 'node:net';
import { isIP } from 'node:net';
import { connect, createServer } from 'node:tls';
import type { ConnectionOptions, Server as TlsServer, TLSSocket } from 'node:tls';
import { TransportError, TransportListenError } from '../errors.js';
import { errorText } from './connection-transport.js';
import type { ConnectionTransportOptions } from './connection-transport.js';
import { StreamTransport } from './stream-transport.js';
import { TlsMaterialCache } from './tls-files.js';
import type { TlsFileOptions } from './tls-files.js';
import type { SendTarget, TransportEvents } from './types.js';

export interface TlsTransportOptions extends ConnectionTransportOptions {
  tls: TlsFileOptions;
}

export class TlsTransport extends StreamTransport {
  readonly protocol = 'tls' as const;
  protected readonly acceptEvent = 'secureConnection' as const;
  protected readonly connectEvent = 'secureConnect' as const;
  private readonly tlsOptions: TlsFileOptions;
  private readonly material: TlsMaterialCache;

  constructor(options: TlsTransportOptions, events: TransportEvents) {
    super(options, events);
    this.tlsOptions = options.tls;
    this.material = new TlsMaterialCache(options.tls);
  }

  protected override async createServer(): Promise<Server> {
    if (!this.tlsOptions.certFile || !this.tlsOptions.keyFile) {
      throw new TransportListenError('tls: certFile and keyFile are required to listen');
    }
    let server: Server;
    try {
      const { cert, key, ca } = await this.material.get();
      const requestCert = this.tlsOptions.requestClientCert ?? false;
      server = createServer({ cert, key, ca, requestCert, rejectUnauthorized: requestCert, minVersion: 'TLSv1.2' });
    } catch (err) {
      throw new TransportListenError(`tls: bad certificate material: ${errorText(err)}`, { cause: err });
    }
    server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      const from = socket.remoteAddress ? ` from ${socket.remoteAddress}:${socket.remotePort}` : '';
      this.warn('TRANSPORT_TLS_ERROR', `tls handshake failed${from}: ${errorText(err)}`);
    });
    return server;
  }

  reloadCertificates(): Promise<void> {
    return this.material.reloadInto(this.listeningServer as TlsServer | undefined, 'tls');
  }

  protected override async startConnect(target: SendTarget): Promise<Socket> {
    let material;
    try {
      material = await this.material.get();
    } catch (err) {
      throw new TransportError(`tls: cannot read certificate files: ${errorText(err)}`, { cause: err });
    }
    const options: ConnectionOptions = {
      host: target.address,
      port: target.port,
      rejectUnauthorized: this.tlsOptions.rejectUnauthorized ?? true,
      minVersion: 'TLSv1.2',
    };
    if (material.ca) options.ca = material.ca;
    if (material.cert && material.key) {
      options.cert = material.cert;
      options.key = material.key;
    }
    // No SNI for IP literals (RFC 6066 §3); the identity is then checked against the IP.
    const name = target.serverName ?? (isIP(target.address) ? undefined : target.address);
    if (name) options.servername = name;
    return connect(options);
  }
}
