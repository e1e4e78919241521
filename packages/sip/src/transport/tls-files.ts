/**
 * Certificate material for tls and wss, read from files (PEM). Read lazily and once: a
 * listener needs cert+key, an outbound-only (client) transport may have neither.
 */

import { readFile } from 'node:fs/promises';

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
   * Read the files again (a renewed certificate) and hand them to `apply` (which may reject
   * them by throwing). On any failure the material in use stays.
   */
  async reload(apply: (material: TlsMaterial) => void): Promise<void> {
    const fresh = await loadTlsMaterial(this.options);
    apply(fresh);
    this.loading = Promise.resolve(fresh);
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
