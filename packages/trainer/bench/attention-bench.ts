// npm run bench:attention: attention with dropout on its weights and on packed rows, forward and
// backward through tfjs's gradient machinery on the native backend, at gpt2-small's shape (batch
// 4 x 1024, 12 heads of 64): the flash kernel without dropout, with dropout 0.1 fused in it, and
// with dropout 0.1 in tfjs ops (what ran before the kernel took the dropout: a [B, H, T, T] weight
// tensor and its mask per layer); packed rows (8 examples of 128 tokens per row) in the flash
// kernel (keyStart) and in tfjs ops (the [B, 1, T, T] block-diagonal mask, what ran before). Each
// variant runs in its own process (its own peak RSS): a warm-up pass, then --iters timed passes;
// prints ms per forward + backward and peak RSS.
// --precisions: instead, the flash kernel alone (no dropout) in float32, in bf16, and in bf16 with
// every block product packing its own operands (NATIVE_FLASH_PACKED=0, what ran before Q, K, V
// and dO were packed once), forward and backward timed apart, in interleaved rounds so that the
// VM's drift touches each setting alike; prints the fastest and the median pass of each.
// Usage: npm run bench:attention [-- --iters 5] [-- --threads 2] [-- --seq 1024] [-- --precisions]
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import * as T from '../src/index';
import { nativeKernels } from '../src/native-backend';
import { attention } from '../src/ops';
import { packedKeyStarts, packedMask } from '../src/packing';
import { rand } from '../src/test-helpers';

const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(k);
  return i >= 0 ? (process.argv[i + 1] as string) : d;
};
const ITERS = Number(arg('--iters', '5'));
const THREADS = Number(arg('--threads', String(availableParallelism())));
const [B, SEQ, NH, HS] = [4, Number(arg('--seq', '1024')), 12, 64];
const VARIANTS = ['flash, no dropout', 'flash, dropout 0.1', 'tfjs ops, dropout 0.1', 'flash, packed rows', 'tfjs ops, packed rows'] as const;
const EXAMPLE = 128; // packed rows: examples of this many tokens
type Variant = (typeof VARIANTS)[number];

interface Row {
  ms: number;
  kernelMs: number | null;
  peakRssMb: number;
  backend: string;
}

async function runOne(variant: Variant): Promise<Row> {
  const choice = await T.initBackend('native', () => {}, { nativeThreads: THREADS });
  const C = NH * HS;
  const qkv = tf.tensor3d(rand(B * SEQ * 3 * C, 1), [B, SEQ, 3 * C]);
  const r = tf.tensor3d(rand(B * SEQ * C, 2), [B, SEQ, C]);
  const dropout = variant.endsWith('dropout 0.1') ? { rate: 0.1, seed: 7 } : undefined;
  const rows = {
    segments: Int32Array.from({ length: B * SEQ }, (_, i) => Math.floor((i % SEQ) / EXAMPLE)),
    positions: Int32Array.from({ length: B * SEQ }, (_, i) => i % EXAMPLE),
  };
  const packed = variant.endsWith('packed rows')
    ? { keyStart: tf.tensor2d(packedKeyStarts(rows, B, SEQ), [B, SEQ], 'int32'), mask: variant.startsWith('tfjs') ? packedMask(rows, B, SEQ) : undefined }
    : undefined;
  const f = (x: tf.Tensor) => {
    // three [B, T, C] tensors take the tfjs-op path; one fused [B, T, 3C] the flash kernel
    const input = variant.startsWith('tfjs') ? (tf.split(x, 3, 2) as [tf.Tensor, tf.Tensor, tf.Tensor]) : x;
    const opts = { causal: true, causalMask: () => causalMask(SEQ), dropout, mask: packed?.mask, keyStart: packed?.keyStart };
    return attention(input, NH, opts);
  };
  const pass = () => {
    const g = tf.tidy(() => tf.grad(f)(qkv, r) /* r: the output's gradient */);
    g.dataSync();
    g.dispose();
  };
  pass();
  const t0 = performance.now();
  for (let i = 0; i < ITERS; i++) pass();
  const ms = (performance.now() - t0) / ITERS;
  // the flash kernel alone (forward, then backward), without tfjs around it
  let kernelMs: number | null = null;
  const k = nativeKernels();
  if (k && variant.startsWith('flash')) {
    const x = qkv.dataSync() as Float32Array;
    const o = new Float32Array(B * SEQ * C);
    const lse = new Float32Array(B * NH * SEQ);
    const d = new Float32Array(x.length);
    const ks = packed ? (packed.keyStart.dataSync() as Int32Array) : null;
    const [rate, seed] = [dropout?.rate ?? 0, dropout?.seed ?? 0];
    const t1 = performance.now();
    for (let i = 0; i < ITERS; i++) flashPass(k, { x, dout: o, out: o, lse, dx: d, rate, seed, keyStart: ks });
    kernelMs = (performance.now() - t1) / ITERS;
  }
  return { ms, kernelMs, peakRssMb: process.resourceUsage().maxRSS / 1024, backend: choice.name };
}

/**
 * The flash kernel on the fused layout (x [B, T, 3C]: q, k and v side by side) at the bench's shape,
 * causal: forward into out and lse, then backward from dout into dx. Returns each pass's ms.
 */
function flashPass(
  k: NonNullable<ReturnType<typeof nativeKernels>>,
  a: {
    x: Float32Array;
    dout: Float32Array;
    out: Float32Array;
    lse: Float32Array;
    dx: Float32Array;
    rate?: number;
    seed?: number;
    keyStart?: Int32Array | null;
  },
): { forward: number; backward: number } {
  const C = NH * HS;
  const [x, dx] = [a.x, a.dx];
  const [rate, seed, keyStart] = [a.rate ?? 0, a.seed ?? 0, a.keyStart ?? null];
  const t0 = performance.now();
  k.flashAttention(x, 3 * C, x.subarray(C), x.subarray(2 * C), 3 * C, a.out, C, a.lse, B, SEQ, SEQ, NH, NH, HS, 0, null, rate, seed, keyStart);
  const t1 = performance.now();
  k.flashAttentionBackward(
    a.dout,
    x,
    3 * C,
    x.subarray(C),
    x.subarray(2 * C),
    3 * C,
    a.out,
    C,
    a.lse,
    dx,
    dx.subarray(C),
    dx.subarray(2 * C),
    B,
    SEQ,
    SEQ,
    NH,
    NH,
    HS,
    0,
    null,
    rate,
    seed,
    keyStart,
  );
  return { forward: t1 - t0, backward: performance.now() - t1 };
}

function causalMask(n: number): tf.Tensor {
  const m = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) m[i * n + j] = -1e9;
  return tf.tensor2d(m, [n, n]);
}

/** The flash kernel alone per setting: forward and backward ms of each of ITERS interleaved rounds. */
async function precisions(): Promise<void> {
  await T.initBackend('native', () => {}, { nativeThreads: THREADS });
  const k = nativeKernels();
  if (!k) throw new Error('the native addon is not built');
  const C = NH * HS;
  const x = rand(B * SEQ * 3 * C, 1);
  const dout = rand(B * SEQ * C, 2);
  const o = new Float32Array(B * SEQ * C);
  const lse = new Float32Array(B * NH * SEQ);
  const d = new Float32Array(x.length);
  const settings = [
    { name: 'float32', precision: 'float32' as const, packed: '1' },
    ...(k.info().features.avx512bf16 || k.info().features.amxbf16
      ? [
          { name: 'bf16', precision: 'bf16' as const, packed: '1' },
          { name: 'bf16, NATIVE_FLASH_PACKED=0', precision: 'bf16' as const, packed: '0' },
        ]
      : []),
  ];
  const times = settings.map(() => ({ forward: [] as number[], backward: [] as number[] }));
  for (let round = -1; round < ITERS; round++)
    for (const [i, s] of settings.entries()) {
      k.setPrecision(s.precision);
      process.env.NATIVE_FLASH_PACKED = s.packed;
      const { forward, backward } = flashPass(k, { x, dout, out: o, lse, dx: d });
      if (round < 0) continue; // a warm-up round
      times[i]?.forward.push(forward);
      times[i]?.backward.push(backward);
    }
  k.setPrecision('float32');
  delete process.env.NATIVE_FLASH_PACKED;
  const stat = (v: number[]) => {
    const s = [...v].sort((a, b) => a - b);
    return `${(s[0] as number).toFixed(1)} / ${(s[Math.floor(s.length / 2)] as number).toFixed(1)} ms`;
  };
  console.log(`flash kernel alone, batch ${B} x ${SEQ}, ${NH} heads of ${HS}, causal, ${THREADS} threads, ${ITERS} interleaved rounds (fastest / median)`);
  for (const [i, s] of settings.entries())
    console.log(`${s.name.padEnd(30)} forward ${stat(times[i]?.forward ?? [])}  backward ${stat(times[i]?.backward ?? [])}`);
}

const child = process.argv.indexOf('--child');
if (process.argv.includes('--precisions')) await precisions();
else if (child >= 0) {
  const row = await runOne(process.argv[child + 1] as Variant);
  console.log(`RESULT ${JSON.stringify(row)}`);
} else {
  console.log(`attention forward + backward, batch ${B} x ${SEQ}, ${NH} heads of ${HS}, causal, ${THREADS} threads, ${ITERS} timed passes`);
  const rows: Array<[Variant, Row]> = [];
  for (const v of VARIANTS) {
    const out = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2), '--child', v], {
      encoding: 'utf8',
    });
    const line = out.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) throw new Error(`${v} failed:\n${out.stdout}\n${out.stderr}`);
    rows.push([v, JSON.parse(line.slice(7))]);
  }
  const base = rows[0]?.[1].ms ?? 1;
  for (const [v, r] of rows) {
    const kernel = r.kernelMs === null ? '' : `  kernel alone ${r.kernelMs.toFixed(1)} ms`;
    console.log(
      `${v.padEnd(24)} ${r.ms.toFixed(1).padStart(8)} ms  (${(r.ms / base).toFixed(2)}x)${kernel}  peak RSS ${r.peakRssMb.toFixed(0)} MB  [${r.backend}]`,
    );
  }
}
