// npm run bench:attention: attention with dropout on its weights, forward and backward through
// tfjs's gradient machinery on the native backend, at gpt2-small's shape (batch 4 x 1024, 12 heads
// of 64): without dropout (the flash kernel), with dropout 0.1 fused in the flash kernel, and with
// dropout 0.1 in tfjs ops (what ran before the kernel took the dropout: a [B, H, T, T] weight
// tensor and its mask per layer). Each variant runs in its own process (its own peak RSS): a warm-up
// pass, then --iters timed passes; prints ms per forward + backward and peak RSS.
// Usage: npm run bench:attention [-- --iters 5] [-- --threads 2] [-- --seq 1024]
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import * as T from '../src/index';
import { attention } from '../src/ops';
import { rand } from '../src/test-helpers';

const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(k);
  return i >= 0 ? (process.argv[i + 1] as string) : d;
};
const ITERS = Number(arg('--iters', '5'));
const THREADS = Number(arg('--threads', String(availableParallelism())));
const [B, SEQ, NH, HS] = [4, Number(arg('--seq', '1024')), 12, 64];
const VARIANTS = ['flash, no dropout', 'flash, dropout 0.1', 'tfjs ops, dropout 0.1'] as const;
type Variant = (typeof VARIANTS)[number];

async function runOne(variant: Variant): Promise<{ ms: number; peakRssMb: number; backend: string }> {
  const choice = await T.initBackend('native', () => {}, { nativeThreads: THREADS });
  const C = NH * HS;
  const qkv = tf.tensor3d(rand(B * SEQ * 3 * C, 1), [B, SEQ, 3 * C]);
  const r = tf.tensor3d(rand(B * SEQ * C, 2), [B, SEQ, C]);
  const dropout = variant === 'flash, no dropout' ? undefined : { rate: 0.1, seed: 7 };
  const f = (x: tf.Tensor) => {
    // three [B, T, C] tensors take the tfjs-op path; one fused [B, T, 3C] the flash kernel
    const input = variant === 'tfjs ops, dropout 0.1' ? (tf.split(x, 3, 2) as [tf.Tensor, tf.Tensor, tf.Tensor]) : x;
    return tf.sum(tf.mul(attention(input, NH, { causal: true, causalMask: () => causalMask(SEQ), dropout }), r));
  };
  const pass = () => {
    const g = tf.tidy(() => tf.grad(f)(qkv));
    g.dataSync();
    g.dispose();
  };
  pass();
  const t0 = performance.now();
  for (let i = 0; i < ITERS; i++) pass();
  const ms = (performance.now() - t0) / ITERS;
  return { ms, peakRssMb: process.resourceUsage().maxRSS / 1024, backend: choice.name };
}

function causalMask(n: number): tf.Tensor {
  const m = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) m[i * n + j] = -1e9;
  return tf.tensor2d(m, [n, n]);
}

const child = process.argv.indexOf('--child');
if (child >= 0) {
  const row = await runOne(process.argv[child + 1] as Variant);
  console.log(`RESULT ${JSON.stringify(row)}`);
} else {
  console.log(`attention forward + backward, batch ${B} x ${SEQ}, ${NH} heads of ${HS}, causal, ${THREADS} threads, ${ITERS} timed passes`);
  const rows: Array<[Variant, { ms: number; peakRssMb: number; backend: string }]> = [];
  for (const v of VARIANTS) {
    const out = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2), '--child', v], {
      encoding: 'utf8',
    });
    const line = out.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) throw new Error(`${v} failed:\n${out.stdout}\n${out.stderr}`);
    rows.push([v, JSON.parse(line.slice(7))]);
  }
  const base = rows[0]?.[1].ms ?? 1;
  for (const [v, r] of rows)
    console.log(`${v.padEnd(24)} ${r.ms.toFixed(1).padStart(8)} ms  (${(r.ms / base).toFixed(2)}x)  peak RSS ${r.peakRssMb.toFixed(0)} MB  [${r.backend}]`);
}
