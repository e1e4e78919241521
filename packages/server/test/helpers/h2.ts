/** Shared by the H2Connection tests: a request header list and a recording stream handler. */
import assert from 'node:assert/strict';
import type { H2StreamHandler } from '../../src/push/h2/connection.js';
import type { HeaderField } from '../../src/push/h2/hpack.js';

export function post(path: string, extra: Array<[string, string]> = []): Array<[string, string]> {
  return [[':method', 'POST'], [':scheme', 'https'], [':path', path], [':authority', 'localhost'], ...extra];
}

/** A handler that records everything and settles `done` on onEnd/onClose; fails on any call after that. */
export class Collect implements H2StreamHandler {
  status = 0;
  headers: HeaderField[] = [];
  chunks: Buffer[] = [];
  ended = false;
  closeCode = -1;
  unprocessed: boolean | null = null;
  calls = 0;
  readonly done: Promise<Collect>;
  private resolve!: (c: Collect) => void;

  constructor() {
    this.done = new Promise((r) => (this.resolve = r));
  }
  onResponse(status: number, headers: HeaderField[]): void {
    this.live();
    this.status = status;
    this.headers = headers;
  }
  onData(chunk: Buffer): void {
    this.live();
    this.chunks.push(Buffer.from(chunk));
  }
  onEnd(): void {
    this.live();
    this.ended = true;
    this.resolve(this);
  }
  onClose(code: number, unprocessed: boolean): void {
    this.live();
    this.closeCode = code;
    this.unprocessed = unprocessed;
    this.resolve(this);
  }
  get body(): Buffer {
    return Buffer.concat(this.chunks);
  }
  header(name: string): string | undefined {
    return this.headers.find(([n]) => n === name)?.[1];
  }
  private live(): void {
    this.calls++;
    assert.ok(!this.ended && this.closeCode === -1, 'no callback after onEnd/onClose');
  }
}
