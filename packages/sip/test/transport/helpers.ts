/** Test helpers for the transport tests: event queues, SIP message builders, certificates. */

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Flow, InboundMessage, TransportEvents } from '../../src/transport/types.js';

/** A queue whose `next()` waits for the next item (or fails after a timeout). */
export class AsyncQueue<T> {
  readonly items: T[] = [];
  private readonly waiting: Array<{ resolve: (v: T) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }> = [];
  private cursor = 0;

  push(item: T): void {
    this.items.push(item);
    const waiter = this.waiting.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      this.cursor++;
      waiter.resolve(item);
    }
  }

  next(timeoutMs = 3000, what = 'item'): Promise<T> {
    if (this.cursor < this.items.length) return Promise.resolve(this.items[this.cursor++]);
    return new Promise<T>((resolve, reject) => {
      const waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(waiter), 1);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs),
      };
      this.waiting.push(waiter);
    });
  }

  /** Items not yet taken with next(). */
  get unread(): number {
    return this.items.length - this.cursor;
  }
}

export interface Warning {
  code: string;
  message: string;
  flow?: Flow;
}

/** Records everything a transport reports. */
export class Recorder {
  readonly messages = new AsyncQueue<InboundMessage>();
  readonly closed = new AsyncQueue<Flow>();
  readonly warnings = new AsyncQueue<Warning>();
  readonly events: TransportEvents = {
    onMessage: (m) => this.messages.push(m),
    onFlowClosed: (f) => this.closed.push(f),
    onWarning: (w) => this.warnings.push(w),
  };

  nextMessage(timeoutMs = 3000): Promise<InboundMessage> {
    return this.messages.next(timeoutMs, 'a message');
  }

  nextClosed(timeoutMs = 3000): Promise<Flow> {
    return this.closed.next(timeoutMs, 'a closed flow');
  }

  /** The next warning with this code (others are skipped). */
  async nextWarning(code: string, timeoutMs = 3000): Promise<Warning> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const w = await this.warnings.next(Math.max(1, deadline - Date.now()), `warning ${code}`);
      if (w.code === code) return w;
    }
  }
}

let seq = 0;

/** A small but realistic SIP request with a correct Content-Length. */
export function sipRequest(opts: { method?: string; body?: string; compact?: boolean; callId?: string } = {}): Buffer {
  const method = opts.method ?? 'OPTIONS';
  const body = Buffer.from(opts.body ?? '');
  const n = ++seq;
  const lines = [
    `${method} sip:bob@example.com SIP/2.0`,
    `Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK-${n}`,
    'Max-Forwards: 70',
    'From: <sip:alice@example.com>;tag=a1',
    'To: <sip:bob@example.com>',
    `Call-ID: ${opts.callId ?? `call-${n}`}`,
    `CSeq: ${n} ${method}`,
    opts.compact ? `l: ${body.length}` : `Content-Length: ${body.length}`,
  ];
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), body]);
}

export function sipResponse(request: Buffer, status = '200 OK'): Buffer {
  const text = request.toString('latin1');
  const head = text.slice(0, text.indexOf('\r\n\r\n'));
  const keep = head.split('\r\n').filter((l) => /^(via|from|to|call-id|cseq):/i.test(l));
  return Buffer.from(`SIP/2.0 ${status}\r\n${keep.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`);
}

/** A raw TCP client that collects everything it receives. */
export async function rawClient(host: string, port: number): Promise<{ socket: Socket; received: () => Buffer; waitFor: (pred: (b: Buffer) => boolean, timeoutMs?: number) => Promise<Buffer>; closed: Promise<void> }> {
  const socket = connect({ host, port });
  const chunks: Buffer[] = [];
  const listeners = new Set<() => void>();
  socket.on('data', (c: Buffer) => {
    chunks.push(c);
    for (const l of [...listeners]) l();
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const received = (): Buffer => Buffer.concat(chunks);
  const waitFor = (pred: (b: Buffer) => boolean, timeoutMs = 3000): Promise<Buffer> =>
    new Promise<Buffer>((resolve, reject) => {
      const check = (): void => {
        const b = received();
        if (pred(b)) {
          listeners.delete(check);
          clearTimeout(timer);
          resolve(b);
        }
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`timed out; received ${JSON.stringify(received().toString('latin1'))}`));
      }, timeoutMs);
      listeners.add(check);
      check();
    });
  return { socket, received, waitFor, closed };
}

export interface TestCertificate {
  dir: string;
  certFile: string;
  keyFile: string;
  cleanup(): void;
}

/**
 * A throw-away self-signed certificate for localhost / 127.0.0.1 / ::1, made with the
 * openssl CLI in a temp dir (no private key is ever committed).
 */
export function makeCertificate(): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'pushcall-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  if (spawnSync('sh', ['-c', 'command -v openssl'], { stdio: 'ignore' }).status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error('openssl CLI not found: install the openssl package to run the TLS tests');
  }
  const config = join(dir, 'openssl.cnf');
  writeFileSync(
    config,
    [
      '[req]',
      'distinguished_name = dn',
      'x509_extensions = ext',
      'prompt = no',
      '[dn]',
      'CN = localhost',
      '[ext]',
      'subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1',
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, digitalSignature, keyCertSign',
      'extendedKeyUsage = serverAuth, clientAuth',
      '',
    ].join('\n'),
  );
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-keyout', keyFile, '-out', certFile, '-config', config],
    { stdio: 'pipe' },
  );
  return { dir, certFile, keyFile, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
