// Data parallelism: N ranks, each with the whole model, each computing the gradients of its own
// rows of every global batch; the gradients are averaged over the ranks (an allreduce, in buckets),
// so that every rank takes the same optimizer step and the parameters stay identical. A periodic
// checksum of the parameters proves it, and a divergence fails loudly. The collectives come from
// outside (Gloo in the worker, see @crucible/collectives): the trainer only needs this interface.

import * as tf from '@tensorflow/tfjs';
import type { Batch } from './data';

/** What a data-parallel trainer needs of a group of ranks (GlooGroup fits it). */
export interface Collective {
  readonly rank: number;
  readonly size: number;
  /** Reduces `buf` over the ranks in place. */
  allreduce<T extends Float32Array | Float64Array>(buf: T, op?: 'sum' | 'min' | 'max'): T;
  /** Copies rank `root`'s `buf` into every rank's. */
  broadcast<T extends Float32Array | Float64Array>(buf: T, root?: number): T;
  /**
   * Optional: a sum allreduce queued to run while JavaScript goes on (queued ones run in order);
   * returns the function that waits for it. Without it, gradients are reduced after the backward pass.
   */
  allreduceAsync?(buf: Float32Array): () => void;
}

/** The ranks' parameters differ: their steps were not the same (a bug, or a rank's hardware). */
export class DivergenceError extends Error {
  override readonly name = 'DivergenceError';
}

/** Gradients travel in buckets of this many bytes (PyTorch DDP's default bucket, 25 MiB). */
export const BUCKET_BYTES = 25 * 2 ** 20;
/** The parameters are compared across ranks every this many steps (and at the start). */
export const CHECKSUM_INTERVAL = 100;

export interface DataParallelOptions {
  bucketBytes?: number;
  checksumInterval?: number;
  /** Allreduce the gradients while the backward pass goes on, where the group can queue them (default true). */
  overlap?: boolean;
}

export class DataParallel {
  /** Milliseconds spent in collectives since the last `takeCommMs`. */
  private commMs = 0;
  readonly bucketBytes: number;
  readonly checksumInterval: number;
  readonly overlap: boolean;

  constructor(
    readonly group: Collective,
    o: DataParallelOptions = {},
  ) {
    this.bucketBytes = o.bucketBytes ?? BUCKET_BYTES;
    this.checksumInterval = o.checksumInterval ?? CHECKSUM_INTERVAL;
    this.overlap = o.overlap ?? true;
  }

  get rank(): number {
    return this.group.rank;
  }

  get size(): number {
    return this.group.size;
  }

  /** This rank's rows of a global batch: rows [rank·B/size, (rank+1)·B/size). */
  shard(batch: Batch): Batch {
    const { B, T } = batch;
    if (B % this.size !== 0) throw new RangeError(`a global batch of ${B} rows does not split over ${this.size} ranks`);
    const b = B / this.size;
    const [from, to] = [this.rank * b * T, (this.rank + 1) * b * T];
    return {
      B: b,
      T,
      x: batch.x.slice(from, to),
      y: batch.y.slice(from, to),
      ...(batch.w ? { w: batch.w.slice(from, to) } : {}),
      ...(batch.packing ? { packing: { segments: batch.packing.segments.slice(from, to), positions: batch.packing.positions.slice(from, to) } } : {}),
    };
  }

  /**
   * Replaces every gradient in `grads` by its sum over the ranks, and returns the sums of `extras`
   * (the step's loss, ...): the caller divides by `size` (folded into the optimizer's gradient
   * scale, so no pass over the values is spent on it). The gradients go in name order through a
   * GradientStream whose buckets are allreduced as they fill; a parameter without a gradient on
   * this rank counts as zeros.
   */
  allreduceSum(grads: Map<string, tf.Tensor>, params: Map<string, tf.Variable>, extras: number[]): number[] {
    const stream = new GradientStream(this.bucketBytes, params, extras.length, (bucket) => {
      this.timed(() => this.group.allreduce(bucket, 'sum'));
      return () => {};
    });
    for (const n of [...params.keys()].sort()) {
      const g = grads.get(n);
      stream.add(n, g ? (g.dataSync() as Float32Array) : new Float32Array((params.get(n) as tf.Variable).size));
    }
    return stream.finish(grads, extras);
  }

  /**
   * The last backward pass of a step sends its gradients as they become final (see variableGrads'
   * onGradient), bucket by bucket, on the group's own thread while it goes on; null where the group
   * cannot queue allreduces (or overlap is off).
   */
  stream(params: Map<string, tf.Variable>, extras: number): GradientStream | null {
    const group = this.group;
    if (!this.overlap || !group.allreduceAsync) return null;
    return new GradientStream(this.bucketBytes, params, extras, (bucket) => {
      const wait = (group.allreduceAsync as (b: Float32Array) => () => void)(bucket);
      return () => this.timed(wait);
    });
  }

  /** Every rank's parameters become rank 0's (the start of a run: one initialization for all). */
  broadcastParameters(params: Map<string, tf.Variable>): void {
    for (const n of [...params.keys()].sort()) {
      const v = params.get(n) as tf.Variable;
      if (v.dtype !== 'float32') continue;
      const data = Float32Array.from(v.dataSync() as Float32Array);
      this.timed(() => this.group.broadcast(data, 0));
      if (this.rank !== 0) v.assign(tf.tensor(data, v.shape, 'float32'));
    }
  }

  /**
   * Compares the ranks' parameters by two checksums (their sum and a position-weighted sum, in
   * float64); throws DivergenceError when any rank's differ. Float64 sums of the same values in the
   * same order are the same bits, so any difference is a real one.
   */
  verify(params: Map<string, tf.Variable>, step: number): void {
    const local = parameterChecksum(params);
    const lo = Float64Array.from(local);
    const hi = Float64Array.from(local);
    this.timed(() => {
      this.group.allreduce(lo, 'min');
      this.group.allreduce(hi, 'max');
    });
    if (lo[0] !== hi[0] || lo[1] !== hi[1]) {
      throw new DivergenceError(
        `the ranks' parameters diverged at step ${step}: checksums range over [${lo[0]}, ${hi[0]}] and [${lo[1]}, ${hi[1]}] (this rank ${this.rank}: ${local[0]}, ${local[1]})`,
      );
    }
  }

  /** Whether any rank asks to stop (its abort signal): every rank stops at the same step. */
  anyStops(local: boolean): boolean {
    const flag = new Float32Array([local ? 1 : 0]);
    this.timed(() => this.group.allreduce(flag, 'max'));
    return flag[0] === 1;
  }

  /** Rank 0's decision (an evaluation that stops early), for every rank. */
  rootDecides(value: boolean): boolean {
    const flag = new Float32Array([value ? 1 : 0]);
    this.timed(() => this.group.broadcast(flag, 0));
    return flag[0] === 1;
  }

  /** Milliseconds spent in collectives since the last call. */
  takeCommMs(): number {
    const ms = this.commMs;
    this.commMs = 0;
    return ms;
  }

  private timed(f: () => void): void {
    const t0 = performance.now();
    f();
    this.commMs += performance.now() - t0;
  }
}

/**
 * One step's gradients summed over the ranks while the backward pass goes on: each gradient is
 * copied into a flat buffer in the order it becomes final (the tape's, the same on every rank), and
 * each bucket-sized run of the buffer is queued for its allreduce as soon as it is filled. `finish`
 * adds what no gradient reached (zeros), the extras (the loss), sends the rest and waits.
 */
export class GradientStream {
  private readonly flat: Float32Array;
  private readonly slots = new Map<string, [number, number]>();
  private readonly waits: (() => void)[] = [];
  private readonly step: number;
  private filled = 0;
  private sent = 0;

  /** `send` starts a filled bucket's sum allreduce and returns the function that waits for it. */
  constructor(
    bucketBytes: number,
    private readonly params: Map<string, tf.Variable>,
    extras: number,
    private readonly send: (bucket: Float32Array) => () => void,
  ) {
    let total = extras;
    for (const v of params.values()) total += v.size;
    this.flat = new Float32Array(total);
    this.step = Math.max(1, Math.floor(bucketBytes / 4));
  }

  /** A parameter's final gradient (this rank's sum over its micro-batches). */
  add(name: string, values: Float32Array): void {
    if (this.slots.has(name)) throw new Error(`the gradient of ${name} came twice`);
    this.slots.set(name, [this.filled, values.length]);
    this.flat.set(values, this.filled);
    this.filled += values.length;
    while (this.filled - this.sent >= this.step) this.sendTo(this.sent + this.step);
  }

  /** Sends the rest, waits for every bucket, and puts the sums in `grads`; returns the extras' sums. */
  finish(grads: Map<string, tf.Tensor>, extras: number[]): number[] {
    for (const n of [...this.params.keys()].sort()) {
      if (this.slots.has(n)) continue;
      const size = (this.params.get(n) as tf.Variable).size;
      this.slots.set(n, [this.filled, size]);
      this.filled += size;
    }
    this.flat.set(extras, this.filled);
    this.filled += extras.length;
    while (this.sent < this.filled) this.sendTo(Math.min(this.filled, this.sent + this.step));
    for (const wait of this.waits) wait();
    for (const [n, [at, size]] of this.slots) {
      grads.get(n)?.dispose();
      grads.set(n, tf.tensor(this.flat.subarray(at, at + size), (this.params.get(n) as tf.Variable).shape, 'float32'));
    }
    return Array.from(this.flat.subarray(this.filled - extras.length, this.filled));
  }

  private sendTo(to: number): void {
    this.waits.push(this.send(this.flat.subarray(this.sent, to)));
    this.sent = to;
  }
}

/** [sum, position-weighted sum] of the float32 parameters, in name order, in float64. */
export function parameterChecksum(params: Map<string, tf.Variable>): [number, number] {
  let sum = 0;
  let weighted = 0;
  let k = 0;
  for (const n of [...params.keys()].sort()) {
    const v = params.get(n) as tf.Variable;
    if (v.dtype !== 'float32') continue;
    const d = v.dataSync() as Float32Array;
    for (let i = 0; i < d.length; i++) {
      const x = d[i] as number;
      sum += x;
      weighted += x * ((k++ % 1021) + 1);
    }
  }
  return [sum, weighted];
}
