// The 'native' TensorFlow.js backend: tensors live in ordinary JavaScript typed arrays (no wasm
// heap, so no 4 GB ceiling), every kernel of the pure-JS cpu backend is available, and the hot
// ones run in C through @crucible/native-kernels: matrix products on OpenBLAS, same-shape addition,
// and fused kernels of our own (linear layer, LayerNorm, GELU, multi-head attention, cross-entropy;
// for the llama architecture RMSNorm, RoPE, SwiGLU and grouped-query attention) with their gradients. Optimizer updates and gradient norms work in place on the same arrays.

import { createRequire } from 'node:module';
import { totalmem } from 'node:os';
import type { NativeKernels } from '@crucible/native-kernels';
import * as tf from '@tensorflow/tfjs';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { BufferPool } from './buffer-pool';
import { productShape, scatterAddRows } from './kernel-math';

export const NATIVE = 'native';

/** Fused kernels the model uses when the backend has them (ops.ts falls back to tfjs ops elsewhere). */
export const K = {
  linear: 'CrucibleLinear',
  /** linear whose weight takes no gradient (frozen): its backward pass needs only w, so x is not saved */
  linearFrozen: 'CrucibleLinearFrozen',
  /** linear that saves its input for the backward pass in bf16 (its second output), not float32 */
  linearSavingBf16: 'CrucibleLinearSavingBf16',
  linearWeightGradBf16: 'CrucibleLinearWeightGradBf16',
  colSum: 'CrucibleColSum',
  layerNorm: 'CrucibleLayerNorm',
  layerNormGrad: 'CrucibleLayerNormGrad',
  gelu: 'CrucibleGelu',
  geluGrad: 'CrucibleGeluGrad',
  /** gelu that saves its input for the backward pass in bf16 (its second output) */
  geluSavingBf16: 'CrucibleGeluSavingBf16',
  geluGradBf16: 'CrucibleGeluGradBf16',
  attention: 'CrucibleAttention',
  attentionGrad: 'CrucibleAttentionGrad',
  /** attention that saves qkv and its output for the backward pass in bf16 (outputs 3 and 4) */
  attentionSavingBf16: 'CrucibleAttentionSavingBf16',
  crossEntropy: 'CrucibleCrossEntropy',
  linearCrossEntropy: 'CrucibleLinearCrossEntropy',
  rmsNorm: 'CrucibleRmsNorm',
  rmsNormGrad: 'CrucibleRmsNormGrad',
  rope: 'CrucibleRope',
  swiglu: 'CrucibleSwiglu',
  swigluGrad: 'CrucibleSwigluGrad',
  /** swiglu that saves gate and up for the backward pass in bf16 (its second and third outputs) */
  swigluSavingBf16: 'CrucibleSwigluSavingBf16',
  swigluGradBf16: 'CrucibleSwigluGradBf16',
  gqa: 'CrucibleGqaAttention',
  gqaGrad: 'CrucibleGqaAttentionGrad',
  /** gqa that saves q, k, v and its output for the backward pass in bf16 (outputs 3 to 6) */
  gqaSavingBf16: 'CrucibleGqaAttentionSavingBf16',
} as const;

let kernels: NativeKernels | null | undefined;
let loadError = '';

/** The addon, or null with the reason in `nativeLoadError()` (not built: no C compiler at install). */
export function nativeKernels(): NativeKernels | null {
  if (kernels !== undefined) return kernels;
  // OpenMP's idle threads would otherwise spin and take the core OpenBLAS's threads need; set
  // before the addon (and with it libgomp) loads
  process.env.OMP_WAIT_POLICY ??= 'passive';
  try {
    kernels = (createRequire(import.meta.url)('@crucible/native-kernels') as { native: NativeKernels | null }).native;
    if (!kernels) loadError = '@crucible/native-kernels is not built (no C compiler when it was installed)';
  } catch (err) {
    kernels = null;
    loadError = `@crucible/native-kernels failed to load: ${(err as Error).message.split('\n')[0]}`;
  }
  return kernels;
}

export function nativeLoadError(): string {
  return loadError;
}

/** How to get the native backend where it is missing (printed once when training falls back). */
export const NATIVE_HINT =
  'for the native CPU backend (several times faster, no memory ceiling) install a C compiler, then rebuild the addon: ' +
  'apt-get install -y build-essential python3 && npm rebuild @crucible/native-kernels';

/** Whether fused kernels run here: the current backend is the native one. */
export function fusedKernels(): boolean {
  return tf.getBackend() === NATIVE;
}

type Info = tf.TensorInfo;
/**
 * K.attention's attributes: heads, causal, whether keyBias is read, dropout on the weights (0: none)
 * and its mask's seed, whether keyStart is read (packed rows).
 */
interface AttentionAttrs {
  nh: number;
  causal: boolean;
  bias: boolean;
  dropout: number;
  seed: number;
  packed: boolean;
}
/** K.gqa's attributes: query and key/value heads, the causal offset (< 0: none), whether keyBias and keyStart are read. */
interface GqaAttrs {
  H: number;
  Hkv: number;
  causal: number;
  bias: boolean;
  packed: boolean;
}
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function be(backend: unknown): MathBackendCPU {
  return backend as MathBackendCPU;
}

function f32(b: MathBackendCPU, t: Info): Float32Array {
  const v = b.data.get(t.dataId)?.values;
  if (v instanceof Float32Array) return v;
  // float32 tensors may hold other typed arrays (a cast from bool keeps its bytes): convert
  if (t.dtype === 'float32' && ArrayBuffer.isView(v)) return Float32Array.from(v as Uint8Array);
  throw new TypeError(`native kernel: expected float32 data, got ${t.dtype} of shape [${t.shape}]`);
}

function i32(b: MathBackendCPU, t: Info): Int32Array {
  const v = b.data.get(t.dataId)?.values;
  if (v instanceof Int32Array) return v;
  throw new TypeError(`native kernel: expected int32 data, got ${t.dtype} of shape [${t.shape}]`);
}

function out(b: MathBackendCPU, shape: number[], values: Float32Array): Info {
  return b.makeTensorInfo(shape, 'float32', values);
}

/** The cpu backend's tensor storage, telling the pool which entries hold which buffers. */
class TrackedStorage<T extends { values?: unknown }> extends tf.DataStorage<T> {
  constructor(
    backend: tf.KernelBackend,
    dataMover: ConstructorParameters<typeof tf.DataStorage>[1],
    private readonly pool: BufferPool,
  ) {
    super(backend, dataMover);
  }

  override set(dataId: tf.DataId, value: T): void {
    // move() overwrites an entry in place: its old values lose a user
    if (this.has(dataId)) this.pool.release(super.get(dataId).values);
    this.pool.hold(value.values);
    super.set(dataId, value);
  }

  override delete(dataId: tf.DataId): boolean {
    if (this.has(dataId)) this.pool.release(super.get(dataId).values);
    return super.delete(dataId);
  }
}

/**
 * The cpu backend with a pool of the float32 buffers our kernels allocate (buffer-pool.ts): a
 * buffer is reused only when no live tensor views its memory and its values were never read out.
 * Kernels that take a pooled buffer overwrite all of it.
 */
class NativeBackend extends MathBackendCPU {
  /**
   * At most half the machine's memory waits in the pool. A training step allocates the same sizes
   * every time, so after the first step the pool holds about the step's working set and nothing
   * new is allocated; a smaller cap drops buffers the next step then allocates (and faults) again.
   */
  static readonly MAX_POOLED_BYTES = Math.floor(totalmem() / 2);
  readonly pool = new BufferPool(NativeBackend.MAX_POOLED_BYTES);

  constructor() {
    super();
    this.data = new TrackedStorage(this, tf.engine(), this.pool);
  }

  alloc(n: number): Float32Array {
    return this.pool.take(n);
  }

  override readSync(dataId: tf.DataId) {
    this.pool.pin(this.data.get(dataId)?.values);
    return super.readSync(dataId);
  }

  override read(dataId: tf.DataId) {
    this.pool.pin(this.data.get(dataId)?.values);
    return super.read(dataId);
  }

  override dispose(): void {
    this.pool.clear();
    super.dispose();
  }
}

const alloc = (b: MathBackendCPU, n: number) => (b as NativeBackend).alloc(n);

/**
 * n bf16 values (two per int32 element of a pooled buffer): an activation kept for the backward
 * pass. Given the activation's shape with an even last axis, the store keeps it with that axis
 * halved (so the gradient can read the shape back); else it is flat.
 */
function bf16Store(b: MathBackendCPU, n: number, shape?: number[]): { values: Uint16Array; info: Info } {
  const store = alloc(b, Math.ceil(n / 2));
  const last = shape?.[shape.length - 1] ?? 1;
  const storeShape = shape && last % 2 === 0 ? [...shape.slice(0, -1), last / 2] : [store.length];
  const info = b.makeTensorInfo(storeShape, 'int32', new Int32Array(store.buffer, store.byteOffset, store.length));
  return { values: new Uint16Array(store.buffer, store.byteOffset, n), info };
}

/** A float32 tensor's values rounded to bf16, in a bf16Store of its shape. */
function savedInBf16(b: MathBackendCPU, t: Info): Info {
  const n = size(t.shape);
  const store = bf16Store(b, n, t.shape);
  nativeKernels()?.toBf16(f32(b, t), store.values, n);
  return store.info;
}

/** The n bf16 values a bf16Store tensor holds. */
function bf16Values(b: MathBackendCPU, t: Info, n: number): Uint16Array {
  const stored = i32(b, t);
  return new Uint16Array(stored.buffer, stored.byteOffset, n);
}

/**
 * The float32 array behind a tensor on the native backend when nothing else can see it (one
 * tensor-data entry, no live view of its memory, never read out), so that it may be updated in
 * place; else undefined.
 */
export function ownedValues(t: tf.Tensor): Float32Array | undefined {
  if (!fusedKernels() || t.dtype !== 'float32') return undefined;
  const b = tf.backend() as NativeBackend;
  if (b.refCount(t.dataId) !== 1) return undefined;
  const v = b.data.get(t.dataId)?.values;
  return v instanceof Float32Array && b.pool.exclusive(v) ? v : undefined;
}

/** Read-only float32 values of a tensor on the native backend (no copy). */
export function valuesOf(t: tf.Tensor): Float32Array {
  return f32(tf.backend() as MathBackendCPU, t);
}

/** Registers the backend once (its kernels are the cpu backend's plus the native ones). */
export function registerNativeBackend(k: NativeKernels): void {
  if (tf.findBackendFactory(NATIVE)) return;
  k.retainFreedMemory();
  tf.registerBackend(NATIVE, () => new NativeBackend(), 1);
  for (const cfg of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...cfg, backendName: NATIVE });
  const cpuKernel = (name: string) => tf.getKernel(name, 'cpu') as tf.KernelConfig;
  const reg = (kernelName: string, kernelFunc: tf.KernelFunc) => {
    if (tf.getKernel(kernelName, NATIVE)) tf.unregisterKernel(kernelName, NATIVE);
    tf.registerKernel({ kernelName, backendName: NATIVE, kernelFunc });
  };

  const batchMatMul = cpuKernel('BatchMatMul');
  reg('BatchMatMul', (args) => {
    const { a, b } = args.inputs as { a: Info; b: Info };
    const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const shape = productShape(a, b, transposeA, transposeB);
    if (!shape) return batchMatMul.kernelFunc(args);
    const { batchShape, batch, M, K: Kd, N } = shape;
    const bk = be(args.backend);
    const c = alloc(bk, batch * M * N);
    k.sgemm(f32(bk, a), f32(bk, b), c, batch, M, N, Kd, transposeA, transposeB, M * Kd, Kd * N);
    return out(bk, [...batchShape, M, N], c);
  });

  // a + b and a * b where one operand's shape is the other's trailing dims (same shape, a bias
  // row, a scalar); other broadcasts and dtypes keep the cpu kernels
  for (const [name, fn] of [
    ['Add', k.add],
    ['Multiply', k.mul],
  ] as const) {
    const fallback = cpuKernel(name);
    reg(name, (args) => {
      let { a, b } = args.inputs as { a: Info; b: Info };
      if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback.kernelFunc(args);
      if (b.shape.length > a.shape.length) [a, b] = [b, a];
      const tail = a.shape.slice(a.shape.length - b.shape.length);
      if (tail.join() !== b.shape.join()) return fallback.kernelFunc(args);
      const bk = be(args.backend);
      const n = size(a.shape);
      const c = alloc(bk, n);
      fn.call(k, f32(bk, a), f32(bk, b), c, n, size(b.shape));
      return out(bk, a.shape, c);
    });
  }

  // sums over leading axes (a broadcast add's gradient, bias gradients): column sums
  const sum = cpuKernel('Sum');
  reg('Sum', (args) => {
    const { x } = args.inputs as { x: Info };
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const r = x.shape.length;
    const axes = (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + r : a)).sort((p, q) => p - q);
    const leading = axes.every((a, i) => a === i);
    if (x.dtype !== 'float32' || !leading || axes.length === 0) return sum.kernelFunc(args);
    const bk = be(args.backend);
    const M = size(x.shape.slice(0, axes.length));
    const N = size(x.shape.slice(axes.length));
    const s = alloc(bk, N);
    k.colSum(f32(bk, x), s, M, N);
    return out(bk, keepDims ? x.shape.map((d, i) => (i < axes.length ? 1 : d)) : x.shape.slice(axes.length), s);
  });

  // the identity permutation (tfjs's gather gradient transposes with it): a plain copy
  const transpose = cpuKernel('Transpose');
  reg('Transpose', (args) => {
    const { x } = args.inputs as { x: Info };
    const { perm } = args.attrs as unknown as { perm: number[] };
    if (x.dtype !== 'float32' || !perm.every((p, i) => p === i)) return transpose.kernelFunc(args);
    const bk = be(args.backend);
    const y = alloc(bk, size(x.shape));
    y.set(f32(bk, x));
    return out(bk, x.shape, y);
  });

  // Row lookups (embeddings) and their gradient, a scatter-add of rows: plain loops over whole
  // rows (the cpu backend's versions are general and, for the scatter-add, quadratic).
  const gather = cpuKernel('GatherV2');
  reg('GatherV2', (args) => {
    const { x, indices } = args.inputs as { x: Info; indices: Info };
    const { axis, batchDims } = args.attrs as unknown as { axis: number; batchDims: number };
    if (axis !== 0 || batchDims || x.dtype !== 'float32' || indices.dtype !== 'int32') return gather.kernelFunc(args);
    const bk = be(args.backend);
    const src = f32(bk, x);
    const ids = bk.data.get(indices.dataId)?.values as Int32Array;
    const rows = x.shape[0] as number;
    const inner = size(x.shape.slice(1));
    const y = alloc(bk, ids.length * inner);
    for (let i = 0; i < ids.length; i++) {
      const r = ids[i] as number;
      if (r < 0 || r >= rows) throw new RangeError(`gather: index ${r} is not in [0, ${rows})`);
      y.set(src.subarray(r * inner, (r + 1) * inner), i * inner);
    }
    return out(bk, [...indices.shape, ...x.shape.slice(1)], y);
  });
  reg('UnsortedSegmentSum', ({ inputs, attrs, backend }) => {
    const { x, segmentIds } = inputs as { x: Info; segmentIds: Info };
    const { numSegments } = attrs as unknown as { numSegments: number };
    const bk = be(backend);
    const y = scatterAddRows(f32(bk, x), bk.data.get(segmentIds.dataId)?.values as Int32Array, numSegments);
    return out(bk, [numSegments, ...x.shape.slice(segmentIds.shape.length)], y);
  });

  // y = x w (+ b): x [M, K], w [K, N] ([N, K] when transposeW), b [N]
  // (x may have any rank from 2: its last axis is K and y keeps its leading axes)
  const linearKernel = ({ inputs, attrs, backend }: Parameters<tf.KernelFunc>[0]) => {
    const { x, w, b } = inputs as { x: Info; w: Info; b?: Info };
    const { transposeW } = attrs as unknown as { transposeW: boolean };
    const bk = be(backend);
    const Kd = x.shape[x.shape.length - 1] as number;
    const M = size(x.shape) / Kd;
    const N = (transposeW ? w.shape[0] : w.shape[1]) as number;
    const y = alloc(bk, M * N);
    k.linear(f32(bk, x), f32(bk, w), b ? f32(bk, b) : null, y, M, Kd, N, transposeW);
    return out(bk, [...x.shape.slice(0, -1), N], y);
  };
  reg(K.linear, linearKernel);
  reg(K.linearFrozen, linearKernel);
  // [y, x in bf16]: the input rounded to bf16 (two per int32 element), all the weight's gradient
  // needs in the bf16 mode, whose product would round it anyway; the forward product reads it too
  reg(K.linearSavingBf16, ({ inputs, attrs, backend }) => {
    const { x, w, b } = inputs as { x: Info; w: Info; b?: Info };
    const { transposeW } = attrs as unknown as { transposeW: boolean };
    const bk = be(backend);
    const Kd = x.shape[x.shape.length - 1] as number;
    const n = size(x.shape);
    const M = n / Kd;
    const N = (transposeW ? w.shape[0] : w.shape[1]) as number;
    const y = alloc(bk, M * N);
    const x16 = bf16Store(bk, n);
    k.linearBf16Input(f32(bk, x), x16.values, f32(bk, w), b ? f32(bk, b) : null, y, M, Kd, N, transposeW);
    return [out(bk, [...x.shape.slice(0, -1), N], y), x16.info];
  });
  // the weight's gradient from dy [M, N] and the bf16 input [M, K] (linearSavingBf16's)
  reg(K.linearWeightGradBf16, ({ inputs, attrs, backend }) => {
    const { dy, x16 } = inputs as { dy: Info; x16: Info };
    const { transposeW, inDim: Kd } = attrs as unknown as { transposeW: boolean; inDim: number };
    const bk = be(backend);
    const [M, N] = dy.shape as [number, number];
    const x = bf16Values(bk, x16, M * Kd);
    const g = f32(bk, dy);
    const dw = alloc(bk, Kd * N);
    // w [N, K]: dW = dy^T x; w [K, N]: dW = x^T dy (the products the float32 path runs, on the same kernel)
    if (transposeW) k.gemmBf16(true, false, N, Kd, M, 1, g, N, x, Kd, 0, dw, Kd);
    else k.gemmBf16(true, false, Kd, N, M, 1, x, Kd, g, N, 0, dw, N);
    return out(bk, transposeW ? [N, Kd] : [Kd, N], dw);
  });
  reg(K.colSum, ({ inputs, backend }) => {
    const { x } = inputs as { x: Info };
    const bk = be(backend);
    const [M, N] = x.shape as [number, number];
    const s = alloc(bk, N);
    k.colSum(f32(bk, x), s, M, N);
    return out(bk, [N], s);
  });

  reg(K.gelu, ({ inputs, backend }) => {
    const { x } = inputs as { x: Info };
    const bk = be(backend);
    const y = alloc(bk, size(x.shape));
    k.gelu(f32(bk, x), y, y.length);
    return out(bk, x.shape, y);
  });
  reg(K.geluGrad, ({ inputs, backend }) => {
    const { x, dy } = inputs as { x: Info; dy: Info };
    const bk = be(backend);
    const dx = alloc(bk, size(x.shape));
    k.geluBackward(f32(bk, x), f32(bk, dy), dx, dx.length);
    return out(bk, x.shape, dx);
  });
  // [y, x in bf16]
  reg(K.geluSavingBf16, ({ inputs, backend }) => {
    const { x } = inputs as { x: Info };
    const bk = be(backend);
    const y = alloc(bk, size(x.shape));
    const x16 = bf16Store(bk, y.length);
    k.geluSavingBf16(f32(bk, x), y, x16.values, y.length);
    return [out(bk, x.shape, y), x16.info];
  });
  reg(K.geluGradBf16, ({ inputs, backend }) => {
    const { x16, dy } = inputs as { x16: Info; dy: Info };
    const bk = be(backend);
    const dx = alloc(bk, size(dy.shape));
    k.geluBackwardBf16(bf16Values(bk, x16, dx.length), f32(bk, dy), dx, dx.length);
    return out(bk, dy.shape, dx);
  });

  // LayerNorm over the last axis: [y, mean, rstd]
  reg(K.layerNorm, ({ inputs, attrs, backend }) => {
    const { x, g, b } = inputs as { x: Info; g: Info; b?: Info };
    const { eps } = attrs as unknown as { eps: number };
    const bk = be(backend);
    const C = x.shape[x.shape.length - 1] as number;
    const rows = size(x.shape) / C;
    const y = alloc(bk, rows * C);
    const mean = alloc(bk, rows);
    const rstd = alloc(bk, rows);
    k.layerNorm(f32(bk, x), f32(bk, g), b ? f32(bk, b) : null, y, mean, rstd, rows, C, eps);
    return [out(bk, x.shape, y), out(bk, [rows], mean), out(bk, [rows], rstd)];
  });
  reg(K.layerNormGrad, ({ inputs, backend }) => {
    const { dy, x, g, mean, rstd } = inputs as { dy: Info; x: Info; g: Info; mean: Info; rstd: Info };
    const bk = be(backend);
    const C = x.shape[x.shape.length - 1] as number;
    const rows = size(x.shape) / C;
    const dx = alloc(bk, rows * C);
    const dg = alloc(bk, C);
    const db = alloc(bk, C);
    k.layerNormBackward(f32(bk, dy), f32(bk, x), f32(bk, g), f32(bk, mean), f32(bk, rstd), dx, dg, db, rows, C);
    return [out(bk, x.shape, dx), out(bk, [C], dg), out(bk, [C], db)];
  });

  // Multi-head attention over qkv [B, T, 3C] (q, k, v side by side), without the probability
  // tensor (flash attention, kernels_flash.c): [out [B, T, C], lse [B, nh, T]] (each query row's
  // log-sum-exp, from which the backward pass recomputes the probabilities); dropout on the weights
  // (rate 0: none) with a mask hashed from the seed, drawn again by the backward pass
  const attentionKernel = ({ inputs, attrs, backend }: Parameters<tf.KernelFunc>[0]) => {
    const { qkv, keyBias, keyStart } = inputs as { qkv: Info; keyBias: Info; keyStart: Info };
    const { nh, causal, bias, dropout, seed, packed } = attrs as unknown as AttentionAttrs;
    const bk = be(backend);
    const [B, T, C3] = qkv.shape as [number, number, number];
    const C = C3 / 3;
    const o = alloc(bk, B * T * C);
    const lse = alloc(bk, B * nh * T);
    const x = f32(bk, qkv);
    const kb = bias ? f32(bk, keyBias) : null;
    const ks = packed ? i32(bk, keyStart) : null;
    k.flashAttention(x, C3, x.subarray(C), x.subarray(2 * C), C3, o, C, lse, B, T, T, nh, nh, C / nh, causal ? 0 : -1, kb, dropout, seed, ks);
    return [out(bk, [B, T, C], o), out(bk, [B, nh, T], lse)];
  };
  reg(K.attention, attentionKernel);
  // [out, lse, qkv in bf16, out in bf16]: what the backward pass reads, rounded (its products round
  // q, k and v anyway)
  reg(K.attentionSavingBf16, (args) => {
    const [o, lse] = attentionKernel(args) as [Info, Info];
    const bk = be(args.backend);
    const qkv = (args.inputs as { qkv: Info }).qkv;
    return [o, lse, savedInBf16(bk, qkv), savedInBf16(bk, o)];
  });
  // (qkv and out float32, or the bf16 stores of attentionSavingBf16)
  reg(K.attentionGrad, ({ inputs, attrs, backend }) => {
    const { dy, qkv, out: o, lse, keyBias, keyStart } = inputs as { dy: Info; qkv: Info; out: Info; lse: Info; keyBias: Info; keyStart: Info };
    const { nh, causal, bias, dropout, seed, packed } = attrs as unknown as AttentionAttrs;
    const bk = be(backend);
    const [B, T, C] = dy.shape as [number, number, number];
    const C3 = 3 * C;
    const dqkv = alloc(bk, B * T * C3);
    const x = qkv.dtype === 'int32' ? bf16Values(bk, qkv, B * T * C3) : f32(bk, qkv);
    k.flashAttentionBackward(
      f32(bk, dy),
      x,
      C3,
      x.subarray(C),
      x.subarray(2 * C),
      C3,
      o.dtype === 'int32' ? bf16Values(bk, o, B * T * C) : f32(bk, o),
      C,
      f32(bk, lse),
      dqkv,
      dqkv.subarray(C),
      dqkv.subarray(2 * C),
      B,
      T,
      T,
      nh,
      nh,
      C / nh,
      causal ? 0 : -1,
      bias ? f32(bk, keyBias) : null,
      dropout,
      seed,
      packed ? i32(bk, keyStart) : null,
    );
    return out(bk, [B, T, C3], dqkv);
  });

  // Weighted mean cross-entropy of logits [N, V]: [loss (scalar), dloss/dlogits [N, V]]
  reg(K.crossEntropy, ({ inputs, backend }) => {
    const { logits, targets, weights } = inputs as { logits: Info; targets: Info; weights?: Info };
    const bk = be(backend);
    const [N, V] = logits.shape as [number, number];
    const ids = bk.data.get(targets.dataId)?.values;
    if (!(ids instanceof Int32Array)) throw new TypeError('native crossEntropy: targets must be int32');
    const d = alloc(bk, N * V);
    const loss = k.crossEntropy(f32(bk, logits), ids, weights ? f32(bk, weights) : null, d, N, V);
    return [out(bk, [], Float32Array.of(loss)), out(bk, [N, V], d)];
  });

  // The head and the loss in chunks of rows (ops.ts's linearCrossEntropy): h [N, C], w [V, C]
  // (the head, transposed), targets [N], weights [N]; the loss, never the [N, V] logits. Each chunk's
  // logits and their gradient live in two scratch buffers of rows x V.
  const chunkedCrossEntropy = (
    bk: MathBackendCPU,
    inputs: { h: Info; w: Info; targets: Info; weights: Info },
    rows: number,
    onChunk: (s: number, r: number, dlogits: Float32Array, scale: number) => void,
  ): number => {
    const [N, C] = inputs.h.shape as [number, number];
    const V = inputs.w.shape[0] as number;
    const h = f32(bk, inputs.h);
    const w = f32(bk, inputs.w);
    const ids = i32(bk, inputs.targets);
    const weights = f32(bk, inputs.weights);
    let total = 0;
    for (let i = 0; i < N; i++) total += weights[i] as number;
    total = Math.max(total, 1e-12);
    const logits = alloc(bk, Math.min(rows, N) * V);
    const d = alloc(bk, Math.min(rows, N) * V);
    let sum = 0;
    try {
      for (let s = 0; s < N; s += rows) {
        const r = Math.min(rows, N - s);
        let part = 0;
        for (let i = s; i < s + r; i++) part += weights[i] as number;
        const lg = logits.subarray(0, r * V);
        const dl = d.subarray(0, r * V);
        k.linear(h.subarray(s * C, (s + r) * C), w, null, lg, r, C, V, true);
        // the chunk's weighted mean and its gradient scaled by the chunk's own total: rescaled to the whole
        const mean = k.crossEntropy(lg, ids.subarray(s, s + r), weights.subarray(s, s + r), dl, r, V);
        sum += mean * Math.max(part, 1e-12);
        onChunk(s, r, dl, Math.max(part, 1e-12) / total);
      }
    } finally {
      (bk as NativeBackend).pool.release(logits);
      (bk as NativeBackend).pool.release(d);
    }
    return sum / total;
  };
  // [loss, dh, dw]: with `gradients`, the gradients of the loss (dy = 1) as each chunk's logits are
  // at hand, so the backward pass only scales them (no second pass over the logits); dw only with
  // `headGradient` ([1] otherwise, as dh without `gradients`).
  reg(K.linearCrossEntropy, ({ inputs, attrs, backend }) => {
    const { h, w } = inputs as { h: Info; w: Info };
    const { rows, gradients, headGradient } = attrs as unknown as { rows: number; gradients: boolean; headGradient: boolean };
    const bk = be(backend);
    const [N, C] = h.shape as [number, number];
    const V = w.shape[0] as number;
    const hv = f32(bk, h);
    const wv = f32(bk, w);
    const dh = gradients ? alloc(bk, N * C) : new Float32Array(1);
    const dw = gradients && headGradient ? alloc(bk, V * C) : new Float32Array(1);
    let first = true;
    const loss = chunkedCrossEntropy(bk, inputs as never, rows, (s, r, dl, scale) => {
      if (!gradients) return;
      k.gemm('auto', false, false, r, C, V, scale, dl, V, wv, C, 0, dh.subarray(s * C), C);
      if (headGradient) k.gemm('auto', true, false, V, C, r, scale, dl, V, hv.subarray(s * C), C, first ? 0 : 1, dw, C);
      first = false;
    });
    return [out(bk, [], Float32Array.of(loss)), out(bk, gradients ? [N, C] : [1], dh), out(bk, gradients && headGradient ? [V, C] : [1], dw)];
  });

  registerDecoderKernels(k, reg);
  registerGradients();
}

/** RMSNorm, RoPE, SwiGLU and grouped-query attention (the llama architecture), forward and backward. */
function registerDecoderKernels(k: NativeKernels, reg: (kernelName: string, kernelFunc: tf.KernelFunc) => void): void {
  // RMSNorm over the last axis: [y, rstd]
  reg(K.rmsNorm, ({ inputs, attrs, backend }) => {
    const { x, w } = inputs as { x: Info; w: Info };
    const { eps } = attrs as unknown as { eps: number };
    const bk = be(backend);
    const C = x.shape[x.shape.length - 1] as number;
    const rows = size(x.shape) / C;
    const y = alloc(bk, rows * C);
    const rstd = alloc(bk, rows);
    k.rmsNorm(f32(bk, x), f32(bk, w), y, rstd, rows, C, eps);
    return [out(bk, x.shape, y), out(bk, [rows], rstd)];
  });
  reg(K.rmsNormGrad, ({ inputs, backend }) => {
    const { dy, x, w, rstd } = inputs as { dy: Info; x: Info; w: Info; rstd: Info };
    const bk = be(backend);
    const C = x.shape[x.shape.length - 1] as number;
    const rows = size(x.shape) / C;
    const dx = alloc(bk, rows * C);
    const dw = alloc(bk, C);
    k.rmsNormBackward(f32(bk, dy), f32(bk, x), f32(bk, w), f32(bk, rstd), dx, dw, rows, C);
    return [out(bk, x.shape, dx), out(bk, [C], dw)];
  });

  // x [B, T, n, hd] rotated by the tables cos and sin [T, hd]; `backward`: the transposed rotation
  reg(K.rope, ({ inputs, attrs, backend }) => {
    const { x, cos, sin } = inputs as { x: Info; cos: Info; sin: Info };
    const { backward } = attrs as unknown as { backward: boolean };
    const bk = be(backend);
    const [B, T, n, hd] = x.shape as [number, number, number, number];
    const y = alloc(bk, size(x.shape));
    k.rope(f32(bk, x), f32(bk, cos), f32(bk, sin), y, B, T, n, hd, backward);
    return out(bk, x.shape, y);
  });

  reg(K.swiglu, ({ inputs, backend }) => {
    const { gate, up } = inputs as { gate: Info; up: Info };
    const bk = be(backend);
    const y = alloc(bk, size(gate.shape));
    k.swiglu(f32(bk, gate), f32(bk, up), y, y.length);
    return out(bk, gate.shape, y);
  });
  reg(K.swigluGrad, ({ inputs, backend }) => {
    const { gate, up, dy } = inputs as { gate: Info; up: Info; dy: Info };
    const bk = be(backend);
    const n = size(gate.shape);
    const dgate = alloc(bk, n);
    const dup = alloc(bk, n);
    k.swigluBackward(f32(bk, gate), f32(bk, up), f32(bk, dy), dgate, dup, n);
    return [out(bk, gate.shape, dgate), out(bk, gate.shape, dup)];
  });
  // [y, gate in bf16, up in bf16]
  reg(K.swigluSavingBf16, ({ inputs, backend }) => {
    const { gate, up } = inputs as { gate: Info; up: Info };
    const bk = be(backend);
    const y = alloc(bk, size(gate.shape));
    const g16 = bf16Store(bk, y.length);
    const u16 = bf16Store(bk, y.length);
    k.swigluSavingBf16(f32(bk, gate), f32(bk, up), y, g16.values, u16.values, y.length);
    return [out(bk, gate.shape, y), g16.info, u16.info];
  });
  reg(K.swigluGradBf16, ({ inputs, backend }) => {
    const { g16, u16, dy } = inputs as { g16: Info; u16: Info; dy: Info };
    const bk = be(backend);
    const n = size(dy.shape);
    const dgate = alloc(bk, n);
    const dup = alloc(bk, n);
    k.swigluBackwardBf16(bf16Values(bk, g16, n), bf16Values(bk, u16, n), f32(bk, dy), dgate, dup, n);
    return [out(bk, dy.shape, dgate), out(bk, dy.shape, dup)];
  });

  // q [B, T, H * hd], k and v [B, S, Hkv * hd], flash attention: [out [B, T, H * hd], lse [B, H, T]]
  const gqaKernel = ({ inputs, attrs, backend }: Parameters<tf.KernelFunc>[0]) => {
    const { q, k: key, v, keyBias, keyStart } = inputs as { q: Info; k: Info; v: Info; keyBias: Info; keyStart: Info };
    const { H, Hkv, causal, bias, packed } = attrs as unknown as GqaAttrs;
    const bk = be(backend);
    const [B, T, HD] = q.shape as [number, number, number];
    const S = key.shape[1] as number;
    const hd = HD / H;
    const o = alloc(bk, B * T * HD);
    const lse = alloc(bk, B * H * T);
    const kb = bias ? f32(bk, keyBias) : null;
    k.flashAttention(f32(bk, q), HD, f32(bk, key), f32(bk, v), Hkv * hd, o, HD, lse, B, T, S, H, Hkv, hd, causal, kb, 0, 0, packed ? i32(bk, keyStart) : null);
    return [out(bk, q.shape, o), out(bk, [B, H, T], lse)];
  };
  reg(K.gqa, gqaKernel);
  // [out, lse, q, k, v and out in bf16]
  reg(K.gqaSavingBf16, (args) => {
    const [o, lse] = gqaKernel(args) as [Info, Info];
    const bk = be(args.backend);
    const { q, k: key, v } = args.inputs as { q: Info; k: Info; v: Info };
    return [o, lse, savedInBf16(bk, q), savedInBf16(bk, key), savedInBf16(bk, v), savedInBf16(bk, o)];
  });
  reg(K.gqaGrad, ({ inputs, attrs, backend }) => {
    const {
      dy,
      q,
      k: key,
      v,
      out: o,
      lse,
      keyBias,
      keyStart,
    } = inputs as {
      dy: Info;
      q: Info;
      k: Info;
      v: Info;
      out: Info;
      lse: Info;
      keyBias: Info;
      keyStart: Info;
    };
    const { H, Hkv, causal, bias: hasBias, packed } = attrs as unknown as GqaAttrs;
    const bk = be(backend);
    // (q, k, v and out float32, or the bf16 stores of gqaSavingBf16, whose last axis is halved)
    const saved16 = q.dtype === 'int32';
    const [B, T, HD] = dy.shape as [number, number, number];
    const S = key.shape[1] as number;
    const hd = HD / H;
    const kShape = [B, S, Hkv * hd];
    const dq = alloc(bk, B * T * HD);
    const dk = alloc(bk, size(kShape));
    const dv = alloc(bk, size(kShape));
    const bias = hasBias ? f32(bk, keyBias) : null;
    const read = (t: Info, n: number) => (saved16 ? bf16Values(bk, t, n) : f32(bk, t));
    k.flashAttentionBackward(
      f32(bk, dy),
      read(q, B * T * HD),
      HD,
      read(key, size(kShape)),
      read(v, size(kShape)),
      Hkv * hd,
      read(o, B * T * HD),
      HD,
      f32(bk, lse),
      dq,
      dk,
      dv,
      B,
      T,
      S,
      H,
      Hkv,
      hd,
      causal,
      bias,
      0,
      0,
      packed ? i32(bk, keyStart) : null,
    );
    return [out(bk, dy.shape, dq), out(bk, kShape, dk), out(bk, kShape, dv)];
  });
}

/**
 * A loss kernel's gradient computed in its forward pass (for dy = 1), times the dy that reaches it.
 * The loss usually ends the graph (dy = 1): then it is the gradient as it is, with no second tensor
 * of its size.
 */
const scaledByLossGradient = (g: tf.Tensor, dy: tf.Tensor) => (dy.dataSync()[0] === 1 ? tf.clone(g) : tf.mul(g, dy));

const run = (name: string, inputs: tf.NamedTensorMap, attrs: Record<string, unknown> = {}) =>
  tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor | tf.Tensor[];

// The linear kernels take x of any rank from 2 (its last axis the input features): dy has its leading axes.
const flat = (t: tf.Tensor) => (t.rank === 2 ? t : tf.reshape(t, [-1, t.shape[t.shape.length - 1] as number])) as tf.Tensor2D;
const linearInputGrad = (g: tf.Tensor2D, w: tf.Tensor, transposeW: boolean, dy: tf.Tensor) => {
  const dx = tf.matMul(g, w as tf.Tensor2D, false, !transposeW);
  return dy.rank === 2 ? dx : tf.reshape(dx, [...dy.shape.slice(0, -1), w.shape[transposeW ? 1 : 0] as number]);
};

function registerGradients(): void {
  tf.registerGradient({
    kernelName: K.linear,
    inputsToSave: ['x', 'w'],
    gradFunc: (dy, saved, attrs) => {
      const [x, w] = saved as [tf.Tensor, tf.Tensor2D];
      const g = flat(dy as tf.Tensor);
      const { transposeW } = attrs as unknown as { transposeW: boolean };
      return {
        x: () => linearInputGrad(g, w, transposeW, dy as tf.Tensor),
        w: () => (transposeW ? tf.matMul(g, flat(x), true, false) : tf.matMul(flat(x), g, true, false)),
        b: () => run(K.colSum, { x: g }) as tf.Tensor,
      };
    },
  });
  tf.registerGradient({
    kernelName: K.linearFrozen,
    inputsToSave: ['w'],
    gradFunc: (dy, saved, attrs) => {
      const [w] = saved as [tf.Tensor];
      const g = flat(dy as tf.Tensor);
      const { transposeW } = attrs as unknown as { transposeW: boolean };
      const frozen = () => {
        throw new Error('linearFrozen: the gradient of a weight declared frozen was asked for');
      };
      return { x: () => linearInputGrad(g, w, transposeW, dy as tf.Tensor), w: frozen, b: frozen };
    },
  });
  tf.registerGradient({
    kernelName: K.linearSavingBf16,
    inputsToSave: ['w'],
    outputsToSave: [false, true],
    gradFunc: (dys, saved, attrs) => {
      const [w, x16] = saved as [tf.Tensor, tf.Tensor];
      const dy = (dys as tf.Tensor[])[0] as tf.Tensor;
      const g = flat(dy);
      const { transposeW } = attrs as unknown as { transposeW: boolean };
      const inDim = w.shape[transposeW ? 1 : 0] as number;
      return {
        x: () => linearInputGrad(g, w, transposeW, dy),
        w: () => run(K.linearWeightGradBf16, { dy: g, x16 }, { transposeW, inDim }) as tf.Tensor,
        b: () => run(K.colSum, { x: g }) as tf.Tensor,
      };
    },
  });
  tf.registerGradient({
    kernelName: K.gelu,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({ x: () => run(K.geluGrad, { x: (saved as tf.Tensor[])[0] as tf.Tensor, dy: dy as tf.Tensor }) as tf.Tensor }),
  });
  tf.registerGradient({
    kernelName: K.geluSavingBf16,
    outputsToSave: [false, true],
    gradFunc: (dys, saved) => {
      const [x16] = saved as [tf.Tensor];
      return { x: () => run(K.geluGradBf16, { x16, dy: (dys as tf.Tensor[])[0] as tf.Tensor }) as tf.Tensor };
    },
  });
  tf.registerGradient({
    kernelName: K.layerNorm,
    inputsToSave: ['x', 'g'],
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved) => {
      const [x, g, mean, rstd] = saved as tf.Tensor[];
      const [dx, dg, db] = run(K.layerNormGrad, { dy: (dys as tf.Tensor[])[0] as tf.Tensor, x, g, mean, rstd } as tf.NamedTensorMap) as tf.Tensor[];
      return { x: () => dx as tf.Tensor, g: () => dg as tf.Tensor, b: () => db as tf.Tensor };
    },
  });
  // flash attention saves its inputs, its output and each row's log-sum-exp
  tf.registerGradient({
    kernelName: K.attention,
    inputsToSave: ['qkv', 'keyBias', 'keyStart'],
    outputsToSave: [true, true],
    gradFunc: (dys, saved, attrs) => {
      const [qkv, keyBias, keyStart, o, lse] = saved as tf.Tensor[];
      const dy = (dys as tf.Tensor[])[0] as tf.Tensor;
      return {
        qkv: () => run(K.attentionGrad, { dy, qkv, out: o, lse, keyBias, keyStart } as tf.NamedTensorMap, attrs) as tf.Tensor,
        keyBias: () => tf.zeros((qkv as tf.Tensor).shape.slice(0, 2)),
        keyStart: () => tf.zeros((qkv as tf.Tensor).shape.slice(0, 2)),
      };
    },
  });
  tf.registerGradient({
    kernelName: K.attentionSavingBf16,
    inputsToSave: ['keyBias', 'keyStart'],
    outputsToSave: [false, true, true, true],
    gradFunc: (dys, saved, attrs) => {
      const [keyBias, keyStart, lse, qkv16, o16] = saved as tf.Tensor[];
      const dy = (dys as tf.Tensor[])[0] as tf.Tensor;
      return {
        qkv: () => run(K.attentionGrad, { dy, qkv: qkv16, out: o16, lse, keyBias, keyStart } as tf.NamedTensorMap, attrs) as tf.Tensor,
        keyBias: () => tf.zeros(dy.shape.slice(0, 2)),
        keyStart: () => tf.zeros(dy.shape.slice(0, 2)),
      };
    },
  });
  tf.registerGradient({
    kernelName: K.rmsNorm,
    inputsToSave: ['x', 'w'],
    outputsToSave: [false, true],
    gradFunc: (dys, saved) => {
      const [x, w, rstd] = saved as tf.Tensor[];
      const [dx, dw] = run(K.rmsNormGrad, { dy: (dys as tf.Tensor[])[0] as tf.Tensor, x, w, rstd } as tf.NamedTensorMap) as tf.Tensor[];
      return { x: () => dx as tf.Tensor, w: () => dw as tf.Tensor };
    },
  });
  tf.registerGradient({
    kernelName: K.rope,
    inputsToSave: ['cos', 'sin'],
    gradFunc: (dy, saved) => {
      const [cos, sin] = saved as [tf.Tensor, tf.Tensor];
      return {
        x: () => run(K.rope, { x: dy as tf.Tensor, cos, sin }, { backward: true }) as tf.Tensor,
        cos: () => tf.zerosLike(cos),
        sin: () => tf.zerosLike(sin),
      };
    },
  });
  tf.registerGradient({
    kernelName: K.swiglu,
    inputsToSave: ['gate', 'up'],
    gradFunc: (dy, saved) => {
      const [gate, up] = saved as [tf.Tensor, tf.Tensor];
      const [dgate, dup] = run(K.swigluGrad, { gate, up, dy: dy as tf.Tensor }) as tf.Tensor[];
      return { gate: () => dgate as tf.Tensor, up: () => dup as tf.Tensor };
    },
  });
  tf.registerGradient({
    kernelName: K.swigluSavingBf16,
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved) => {
      const [g16, u16] = saved as [tf.Tensor, tf.Tensor];
      const [dgate, dup] = run(K.swigluGradBf16, { g16, u16, dy: (dys as tf.Tensor[])[0] as tf.Tensor }) as tf.Tensor[];
      return { gate: () => dgate as tf.Tensor, up: () => dup as tf.Tensor };
    },
  });
  tf.registerGradient({
    kernelName: K.gqaSavingBf16,
    inputsToSave: ['keyBias', 'keyStart'],
    outputsToSave: [false, true, true, true, true, true],
    gradFunc: (dys, saved, attrs) => {
      const [keyBias, keyStart, lse, q16, k16, v16, o16] = saved as tf.Tensor[];
      const dy = (dys as tf.Tensor[])[0] as tf.Tensor;
      const [dq, dk, dv] = run(K.gqaGrad, { dy, q: q16, k: k16, v: v16, out: o16, lse, keyBias, keyStart } as tf.NamedTensorMap, attrs) as tf.Tensor[];
      return {
        q: () => dq as tf.Tensor,
        k: () => dk as tf.Tensor,
        v: () => dv as tf.Tensor,
        keyBias: () => tf.zeros((keyBias as tf.Tensor).shape),
        keyStart: () => tf.zeros((keyStart as tf.Tensor).shape),
      };
    },
  });
  tf.registerGradient({
    kernelName: K.gqa,
    inputsToSave: ['q', 'k', 'v', 'keyBias', 'keyStart'],
    outputsToSave: [true, true],
    gradFunc: (dys, saved, attrs) => {
      const [q, key, v, keyBias, keyStart, o, lse] = saved as tf.Tensor[];
      const dy = (dys as tf.Tensor[])[0] as tf.Tensor;
      const [dq, dk, dv] = run(K.gqaGrad, { dy, q, k: key, v, out: o, lse, keyBias, keyStart } as tf.NamedTensorMap, attrs) as tf.Tensor[];
      return {
        q: () => dq as tf.Tensor,
        k: () => dk as tf.Tensor,
        v: () => dv as tf.Tensor,
        keyBias: () => tf.zeros([(q as tf.Tensor).shape[0] as number, (key as tf.Tensor).shape[1] as number]),
        keyStart: () => tf.zeros((keyStart as tf.Tensor).shape),
      };
    },
  });
  tf.registerGradient({
    kernelName: K.linearCrossEntropy,
    inputsToSave: ['targets'],
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved, attrs) => {
      const [targets, dh, dw] = saved as tf.Tensor[];
      const dy = (dys as tf.Tensor[])[0] as tf.Tensor;
      const { gradients, headGradient } = attrs as unknown as { gradients: boolean; headGradient: boolean };
      if (!gradients) throw new Error('linearCrossEntropy: gradients asked of a call made without them (gradients: false)');
      const scaled = (g: tf.Tensor) => scaledByLossGradient(g, dy);
      return {
        h: () => scaled(dh as tf.Tensor),
        w: () => {
          if (!headGradient) throw new Error("linearCrossEntropy: the head's gradient was asked of a call that declared it frozen");
          return scaled(dw as tf.Tensor);
        },
        targets: () => tf.zeros((targets as tf.Tensor).shape),
        weights: () => tf.zeros((targets as tf.Tensor).shape),
      };
    },
  });
  tf.registerGradient({
    kernelName: K.crossEntropy,
    inputsToSave: ['targets'],
    outputsToSave: [false, true],
    gradFunc: (dys, saved) => {
      const [targets, dlogits] = saved as [tf.Tensor, tf.Tensor];
      const dy = (dys as tf.Tensor[])[0] as tf.Tensor;
      return {
        logits: () => scaledByLossGradient(dlogits as tf.Tensor, dy),
        targets: () => tf.zeros(targets.shape),
        weights: () => tf.zeros(targets.shape),
      };
    },
  });
}

/** Runs one of the fused kernels above (only when `fusedKernels()`). */
export const runFused = run;
