/**
 * Final responses of completed non-INVITE server transactions over UDP, kept for Timer J
 * (64*T1, §17.2.2) so that a retransmitted request gets the same response again.
 *
 * A registrar at 10,000 REGISTER/s holds hundreds of thousands of them. Kept as one Buffer,
 * ArrayBuffer and destination object each, they were a large share of the young-generation
 * garbage collector's copying; here the bytes are appended to large shared slabs and each
 * key maps to one number (slab, offset, length). The destination is not stored: a
 * retransmission carries the same Via, so it is answered where the first response went.
 *
 * Two generations rotate every 64*T1 (or early, when one reaches `limit` entries, which
 * bounds memory under a flood); an entry lives between one and two rotations.
 */

const SLAB_BYTES = 1 << 20;
const OFFSET_RANGE = 2 ** 20; // offsets within a slab
const LENGTH_RANGE = 2 ** 16; // a UDP payload is below 64 KiB

class Generation {
  readonly index = new Map<string, number>();
  private readonly slabs: Buffer[] = [];
  private offset = SLAB_BYTES;

  add(key: string, bytes: Buffer): void {
    if (bytes.length >= LENGTH_RANGE) return; // not a datagram: nothing to answer from here
    if (this.offset + bytes.length > SLAB_BYTES) {
      this.slabs.push(Buffer.allocUnsafeSlow(SLAB_BYTES));
      this.offset = 0;
    }
    const slab = this.slabs.length - 1;
    bytes.copy(this.slabs[slab], this.offset);
    this.index.set(key, (slab * OFFSET_RANGE + this.offset) * LENGTH_RANGE + bytes.length);
    this.offset += bytes.length;
  }

  get(key: string): Buffer | undefined {
    const packed = this.index.get(key);
    if (packed === undefined) return undefined;
    const length = packed % LENGTH_RANGE;
    const position = (packed - length) / LENGTH_RANGE;
    const offset = position % OFFSET_RANGE;
    const slab = (position - offset) / OFFSET_RANGE;
    return this.slabs[slab].subarray(offset, offset + length);
  }
}

export class CompletedResponses {
  private current = new Generation();
  private previous = new Generation();

  constructor(private readonly limit: number) {}

  /** Keep `bytes` for `key`; true when this generation is full and was rotated early. */
  add(key: string, bytes: Buffer): boolean {
    this.current.add(key, bytes);
    if (this.current.index.size < this.limit) return false;
    this.rotate();
    return true;
  }

  get(key: string): Buffer | undefined {
    return this.current.get(key) ?? this.previous.get(key);
  }

  /** The older generation is forgotten; returns whether anything is still kept. */
  rotate(): boolean {
    this.previous = this.current;
    this.current = new Generation();
    return this.previous.index.size > 0;
  }

  get size(): number {
    return this.current.index.size + this.previous.index.size;
  }

  clear(): void {
    this.current = new Generation();
    this.previous = new Generation();
  }
}
