// The native backend's pool of float32 buffers, keyed by the memory beneath the arrays.
//
// A training step frees and allocates the same sizes every time, and a fresh large typed array
// costs far more than the kernel that fills it (zeroing, page faults, garbage-collector pressure),
// so freed buffers are kept for reuse. Reuse is only safe when nothing can still see the memory:
//   - tfjs's cpu kernels return views (Slice, and with it Split, Unpack and StridedSlice, hand out
//     a subarray of their input), so a live tensor may view the memory of a disposed one;
//   - dataSync()/data() hand the caller the backend's own array, which it may keep.
// So ownership is tracked by ArrayBuffer, not by array: every live tensor-data entry that holds a
// view of a buffer counts as a user of it, a buffer goes back to the pool only when its last user
// is gone, and a buffer whose values were ever read out is pinned: never pooled, never written in
// place again.

type Bytes = ArrayBufferLike;

export class BufferPool {
  private readonly free = new Map<number, Float32Array[]>();
  /** Buffers this pool allocated, by their memory: the whole array to hand out again. */
  private readonly owned = new WeakMap<Bytes, Float32Array>();
  /** Live tensor-data entries holding a view of each buffer (any buffer, pooled or not). */
  private readonly users = new Map<Bytes, number>();
  /** Buffers whose values were handed out (dataSync/data): the reader may still hold them. */
  private readonly pinned = new WeakSet<Bytes>();
  private freeBytes = 0;

  constructor(readonly maxFreeBytes: number) {}

  /** A float32 array of n elements: a free one when there is one (its contents are stale), else new. */
  take(n: number): Float32Array {
    const a = this.free.get(n)?.pop();
    if (a) {
      this.freeBytes -= a.byteLength;
      return a;
    }
    const fresh = new Float32Array(n);
    this.owned.set(fresh.buffer, fresh);
    return fresh;
  }

  /** A tensor-data entry now holds these values. */
  hold(values: unknown): void {
    const b = bufferOf(values);
    if (b) this.users.set(b, (this.users.get(b) ?? 0) + 1);
  }

  /** A tensor-data entry that held these values is gone: the buffer is free once nobody sees it. */
  release(values: unknown): void {
    const b = bufferOf(values);
    if (!b) return;
    const n = (this.users.get(b) ?? 1) - 1;
    if (n > 0) {
      this.users.set(b, n);
      return;
    }
    this.users.delete(b);
    const whole = this.owned.get(b);
    if (!whole || this.pinned.has(b) || this.freeBytes + whole.byteLength > this.maxFreeBytes) return;
    const list = this.free.get(whole.length);
    if (list) list.push(whole);
    else this.free.set(whole.length, [whole]);
    this.freeBytes += whole.byteLength;
  }

  /** These values were handed out: their whole buffer is never reused nor updated in place. */
  pin(values: unknown): void {
    const b = bufferOf(values);
    if (b) this.pinned.add(b);
  }

  /** Whether exactly one live entry sees these values' buffer and nobody outside holds it. */
  exclusive(values: unknown): boolean {
    const b = bufferOf(values);
    return b !== undefined && this.users.get(b) === 1 && !this.pinned.has(b);
  }

  /** Bytes waiting for reuse. */
  get idleBytes(): number {
    return this.freeBytes;
  }

  clear(): void {
    this.free.clear();
    this.freeBytes = 0;
  }
}

function bufferOf(values: unknown): Bytes | undefined {
  return ArrayBuffer.isView(values) ? values.buffer : undefined;
}
