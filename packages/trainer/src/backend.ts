// Picks the fastest TensorFlow.js backend this machine can run: tfjs-node-gpu, tfjs-node, native
// (our C kernels, see native-backend.ts), wasm, cpu. TFJS_BACKEND (or the `prefer` argument)
// overrides the order. Also patches the wasm backend with the one kernel training needs and it
// lacks (UnsortedSegmentSum: the gradient of `gather`).

import { availableParallelism } from 'node:os';
import type { Precision } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import { productShape, scatterAddRows } from './kernel-math';
import { NATIVE_HINT, nativeKernels, nativeLoadError, registerNativeBackend } from './native-backend';

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'native' | 'wasm' | 'cpu';
export const BACKEND_ORDER: readonly BackendName[] = ['tensorflow-gpu', 'tensorflow', 'native', 'wasm', 'cpu'];

export interface BackendChoice {
  /** What was asked for or tried first. */
  requested: BackendName | 'auto';
  /** The backend now in use (tfjs's name: 'tensorflow' for both node packages). */
  name: BackendName;
  /** 'native' when matrix products run on @crucible/native-kernels (native, or wasm with nativeKernels). */
  matmul: 'backend' | 'native';
  /** Threads of the native kernels (native backend, or wasm's native products); else undefined. */
  threads?: number;
  /** The native kernels' instruction set, product libraries, CPU features and precision (native backend only). */
  native?: {
    isa: string;
    blas: string;
    /** The choice of library for float32 products ('auto': the fastest measured per shape class). */
    gemm: GemmChoice;
    /** The libraries built in: Crucible's own always, oneDNN and OpenBLAS where their headers were present. */
    gemmLibraries: string[];
    features: Record<string, boolean>;
    bf16: string;
    precision: 'float32' | 'bf16';
  };
  /** Why earlier candidates were skipped. */
  skipped: Array<{ name: BackendName; reason: string }>;
}

let current: BackendChoice | undefined;

/**
 * Initializes TensorFlow.js once per process and returns the choice made. `prefer` (or
 * TFJS_BACKEND) names one backend; anything else than 'auto' fails when that backend cannot load.
 */
export interface BackendOptions {
  /** Use @crucible/native-kernels when built: the native backend, and its matrix products on wasm. Default true. */
  nativeKernels?: boolean;
  /** Threads of the native backend (and of wasm's native products). Default: every core. */
  nativeThreads?: number;
  /**
   * The process's precision for matrix products (a training step may run in its own:
   * withPrecision): 'bf16' rounds both operands to bfloat16 and sums in float32, only where the CPU
   * has AVX512-BF16 or AMX-BF16 (else float32 stays). Default 'float32'.
   */
  precision?: 'float32' | 'bf16';
  /**
   * The library for float32 products (native backend, and wasm's native products): 'auto' (the
   * default) measures every library built in on the first product of each shape class and keeps the
   * fastest; 'crucible' pins Crucible's own (always built in: runs that must match bit for bit),
   * 'onednn' or 'openblas' pin those where built in.
   */
  gemm?: GemmChoice;
}

export type GemmChoice = 'auto' | 'crucible' | 'onednn' | 'openblas';

export async function initBackend(
  prefer: BackendName | 'auto' = 'auto',
  log: (msg: string) => void = () => {},
  opts: BackendOptions = {},
): Promise<BackendChoice> {
  if (current) return current;
  const candidates = prefer === 'auto' ? BACKEND_ORDER : [prefer];
  const skipped: BackendChoice['skipped'] = [];
  const threads = opts.nativeThreads ?? availableParallelism();
  for (const name of candidates) {
    try {
      if (name === 'native' && opts.nativeKernels === false) throw new Error('disabled (nativeKernels: false, NATIVE_KERNELS=0)');
      await loadBackend(name);
      const k = nativeKernels();
      let matmul: BackendChoice['matmul'] = 'backend';
      if (name === 'native' && k) {
        k.setThreads(threads);
        k.setGemm(opts.gemm ?? 'auto');
        gemmChoice = opts.gemm ?? 'auto';
        k.setPrecision(opts.precision ?? 'float32');
        matmul = 'native';
      } else if (name === 'wasm' && opts.nativeKernels !== false && registerNativeMatMul(threads, opts.gemm ?? 'auto')) matmul = 'native';
      const info = name === 'native' ? k?.info() : undefined;
      current = {
        requested: prefer,
        name,
        matmul,
        ...(matmul === 'native' ? { threads } : {}),
        ...(info
          ? {
              native: {
                isa: info.isa,
                blas: info.blas,
                gemm: info.gemm,
                gemmLibraries: info.gemmLibraries,
                features: info.features,
                bf16: info.bf16,
                precision: info.precision,
              },
            }
          : {}),
        skipped,
      };
      const precision =
        info?.precision === 'bf16' ? `, bf16 products (${info.bf16})` : opts.precision === 'bf16' ? `, float32: bf16 unavailable (${info?.bf16})` : '';
      const detail = info
        ? ` (${info.isa}, products on ${gemmLabel(info.gemm, info.gemmLibraries)}, ${threads} thread${threads > 1 ? 's' : ''}${precision})`
        : matmul === 'native'
          ? ' (matrix products on the native addon)'
          : '';
      log(`tfjs backend: ${name}${detail}${skipped.length ? ` (skipped: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')})` : ''}`);
      if (prefer === 'auto' && (name === 'wasm' || name === 'cpu') && opts.nativeKernels !== false && skipped.some((s) => s.name === 'native')) {
        // said once per process (the choice is cached): how to get the fast path
        const why = skipped.find((s) => s.name === 'native')?.reason || nativeLoadError();
        console.warn(`crucible trainer: training on the ${name} backend because ${why}; ${NATIVE_HINT}`);
      }
      return current;
    } catch (err) {
      skipped.push({ name, reason: (err as Error).message.split('\n')[0] ?? String(err) });
    }
  }
  throw new Error(`no TensorFlow.js backend could start: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
}

export function backendChoice(): BackendChoice | undefined {
  return current;
}

/** What runs bf16 products in this process (e.g. "AVX512-BF16 on Crucible's kernel"), or undefined where nothing does. */
export function bf16Engine(): string | undefined {
  const bf16 = current?.matmul === 'native' ? nativeKernels()?.info().bf16 : undefined;
  return bf16 && !bf16.startsWith('none') ? bf16 : undefined;
}

/** The precision a run gets when it names none: bf16 where the CPU runs bf16 products natively, else float32. */
export function defaultPrecision(): Precision {
  return bf16Engine() ? 'bf16' : 'float32';
}

/** The precision `want` runs in here: bf16 falls back to float32 where nothing runs bf16 products. */
export function effectivePrecision(want: Precision | undefined): Precision {
  return want === 'bf16' && bf16Engine() ? 'bf16' : 'float32';
}

/**
 * Runs `fn` (synchronous: nothing else runs meanwhile) with the matrix products in `precision`,
 * then restores the process's own (BackendOptions.precision), so that a training step in bf16 and
 * an inference request in the same worker each get their own.
 */
export function withPrecision<T>(precision: Precision | undefined, fn: () => T): T {
  const own = current?.native?.precision ?? 'float32';
  const k = current?.matmul === 'native' ? nativeKernels() : null;
  if (!k || !precision || precision === own) return fn();
  k.setPrecision(precision);
  try {
    return fn();
  } finally {
    k.setPrecision(own);
  }
}

/** The native products' library as the backend set it (BackendOptions.gemm). */
let gemmChoice: GemmChoice = 'auto';

/**
 * Runs `fn` (synchronous) with every native matrix product on Crucible's own kernel in float32,
 * whose rows of C do not depend on how many rows the product has (measured tables pick a library
 * per shape class, and libraries differ in their sums): continuous batching gives each request the
 * numbers it gets alone. Then restores the process's choice.
 */
export function withRowIndependentProducts<T>(fn: () => T): T {
  const own = gemmChoice;
  const k = current?.matmul === 'native' ? nativeKernels() : null;
  if (!k || own === 'crucible') return withPrecision('float32', fn);
  k.setGemm('crucible');
  try {
    return withPrecision('float32', fn);
  } finally {
    k.setGemm(own);
  }
}

/**
 * Whether matMul with transpose flags is as fast as without (OpenBLAS, libtensorflow). The stock
 * wasm kernel runs transposed products on a slow loop, so gradients transpose explicitly there.
 */
export function transposedProductsAreFast(): boolean {
  return current?.matmul === 'native' || current?.name === 'tensorflow' || current?.name === 'tensorflow-gpu' || current?.name === 'native';
}

async function loadBackend(name: BackendName): Promise<void> {
  switch (name) {
    case 'tensorflow-gpu':
      await import('@tensorflow/tfjs-node-gpu' as string);
      await setOrThrow('tensorflow');
      return;
    case 'tensorflow':
      await import('@tensorflow/tfjs-node' as string);
      await setOrThrow('tensorflow');
      return;
    case 'native': {
      const k = nativeKernels();
      if (!k) throw new Error(nativeLoadError());
      registerNativeBackend(k);
      await setOrThrow('native');
      return;
    }
    case 'wasm':
      await import('@tensorflow/tfjs-backend-wasm');
      registerWasmSegmentSum();
      await setOrThrow('wasm');
      return;
    case 'cpu':
      await setOrThrow('cpu');
      return;
  }
}

async function setOrThrow(name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`tf.setBackend('${name}') returned false`);
  await tf.ready();
}

/**
 * UnsortedSegmentSum for wasm, computed in JavaScript on the kernel's input data. It is only
 * used by the embedding gradient (a scatter-add of B*T rows), a small share of a step.
 */
function registerWasmSegmentSum(): void {
  if (tf.getKernel('UnsortedSegmentSum', 'wasm')) return;
  tf.registerKernel({
    kernelName: 'UnsortedSegmentSum',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
      const numSegments = (attrs as { numSegments: number }).numSegments;
      // biome-ignore lint/suspicious/noExplicitAny: the wasm backend's class is not exported in typings we can use
      const wasm = backend as any;
      const out = scatterAddRows(wasm.readSync(x.dataId) as Float32Array, wasm.readSync(segmentIds.dataId) as Int32Array, numSegments);
      return wasm.makeOutput([numSegments, ...x.shape.slice(segmentIds.shape.length)], 'float32', undefined, out);
    },
  });
}

// biome-ignore lint/suspicious/noExplicitAny: the wasm backend's class is not exported in typings we can use
type WasmBackend = any;

/** 'auto (crucible, onednn, openblas)' or the pinned library's name. */
function gemmLabel(gemm: GemmChoice, libraries: string[]): string {
  return gemm === 'auto' ? `the fastest measured of ${libraries.join(', ')}` : gemm;
}

/**
 * With @crucible/native-kernels built: replaces the wasm BatchMatMul kernel with the addon's sgemm
 * working directly on the wasm heap (no copies; broadcast batch shapes and non-float32 inputs keep
 * the original kernel). Returns whether it is in place.
 */
function registerNativeMatMul(threads: number, gemm: GemmChoice): boolean {
  const native = nativeKernels();
  const original = tf.getKernel('BatchMatMul', 'wasm');
  if (!native || !original) return false;
  const k = native;
  k.setThreads(threads);
  k.setGemm(gemm);
  gemmChoice = gemm;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    kernelName: 'BatchMatMul',
    backendName: 'wasm',
    kernelFunc: (args) => {
      const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
      const shape = productShape(a, b, transposeA, transposeB);
      if (!shape) return original.kernelFunc(args);
      const { batchShape, batch, M, K, N } = shape;
      const wasm = args.backend as WasmBackend;
      const out = wasm.makeOutput([...batchShape, M, N], 'float32');
      // views are taken after makeOutput: allocating may grow (and move) the wasm heap
      k.sgemm(wasm.typedArrayFromHeap(a), wasm.typedArrayFromHeap(b), wasm.typedArrayFromHeap(out), batch, M, N, K, transposeA, transposeB, M * K, K * N);
      return out;
    },
  });
  return true;
}

export { tf };
