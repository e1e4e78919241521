/**
 * Certificate material for tls and wss, read from files (PEM). Read lazily and once: a
 * listener needs cert+key, an outbound-only (client) transport may have neither.
 */

import { readFile } from 'node:fs/promises';
import type { SecureContextOptions } from 'node:tls';
import { TransportError } from '../errors.js';
import { errorText } from './connection-transport.js';

export interface TlsFileOptions {
  /** PEM certificate (chain) presented by the listener and, when set, to servers (mutual TLS). */
  certFile?: string;
  /** PEM private key for certFile. */
  keyFile?: string;
  /** PEM CA bundle trusted for outbound connections (and client certificates). Default: the system store. */
  caFile?: string;
  /** Verify servers on outbound connections. Default true; false only for tests/labs. */
  rejectUnauthorized?: boolean;
  /** Ask inbound clients for a certificate and reject those that fail verification. Default false. */
  requestClientCert?: boolean;
}

export interface TlsMaterial {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

export async function loadTlsMaterial(options: TlsFileOptions): Promise<TlsMaterial> {
  const [cert, key, ca] = await Promise.all([
    options.certFile ? readFile(options.certFile) : undefined,
    options.keyFile ? readFile(options.keyFile) : undefined,
    options.caFile ? readFile(options.caFile) : undefined,
  ]);
  const material: TlsMaterial = {};
  if (cert) material.cert = cert;
  if (key) material.key = key;
  if (ca) material.ca = ca;
  return material;
}

/** Caches the material; a failed read is retried on the next call. */
export class TlsMaterialCache {
  private loading: Promise<TlsMaterial> | undefined;
  constructor(private readonly options: TlsFileOptions) {}

  /**
   * Read the files again (a renewed certificate) and give them to the listening `server`;
   * its setSecureContext checks that the key matches the certificate before anything
   * changes. On any failure the material in use stays, here and in the server.
   */
  async reloadInto(server: { setSecureContext(options: SecureContextOptions): void } | undefined, protocol: 'tls' | 'wss'): Promise<void> {
    try {
      const fresh = await loadTlsMaterial(this.options);
      server?.setSecureContext({ cert: fresh.cert, key: fresh.key, ca: fresh.ca });
      this.loading = Promise.resolve(fresh);
    } catch (err) {
      throw new TransportError(`${protocol}: certificate not reloaded: ${errorText(err)}`, { cause: err });
    }
  }

  get(): Promise<TlsMaterial> {
    if (!this.loading) {
      this.loading = loadTlsMaterial(this.options);
      this.loading.catch(() => {
        this.loading = undefined;
      });
    }
    return this.loading;
  }
}
