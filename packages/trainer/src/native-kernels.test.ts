// The native backend's kernels, forward and backward, on random shapes: against the existing
// TensorFlow.js implementation of the same op (run on the pure-JS cpu backend) and against central
// finite differences. Also the in-place optimizer updates, the buffer pool's safety, reproducible
// training, and the fallback (with its one-time message) where the addon is missing.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { CharTokenizer } from '@crucible/model-files';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { attentionDropoutMask } from './attention-dropout';
import { initBackend, withPrecision } from './backend';
import { variableGrads } from './backprop';
import { type ModelConfig, modelConfig } from './config';
import { decoderAttention, rmsNorm, rope, ropeInverseFrequencies, ropeTables, swiglu } from './decoder-ops';
import { cachedCausalMask } from './kv-cache';
import { Transformer } from './model';
import { nativeKernels, ownedValues, valuesOf } from './native-backend';
import { attention, crossEntropy, gelu, layerNorm, linear } from './ops';
import { Optimizer } from './optim';
import { rand, tinyLlamaConfig, toBf16 } from './test-helpers';
import { batchLoss, defaultTrainConfig, Trainer } from './train';

const k = nativeKernels();

const randInt = (lo: number, hi: number, seed: number) => lo + Math.floor((((rand(1, seed)[0] as number) + 1) / 2) * (hi - lo + 1));

type Inputs = Array<{ shape: number[]; values: Float32Array }>;
type Op = (...xs: tf.Tensor[]) => tf.Tensor;

/** The op's output and the gradients of sum(op(xs) * r) for each input, as plain arrays. */
async function evaluate(backend: string, op: Op, inputs: Inputs, rSeed: number): Promise<{ y: Float32Array; grads: Float32Array[] }> {
  await tf.setBackend(backend);
  try {
    return tf.tidy(() => {
      const xs = inputs.map((i) => tf.tensor(i.values, i.shape, 'float32'));
      const y = op(...xs);
      const r = tf.tensor(rand(y.size, rSeed), y.shape);
      const grads = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(op(...a), r)))(xs);
      return { y: Float32Array.from(y.dataSync()), grads: grads.map((g) => Float32Array.from(g.dataSync())) };
    });
  } finally {
    await tf.setBackend('native');
  }
}

function expectClose(got: Float32Array, want: Float32Array, tol: number, what: string) {
  expect(got.length, what).toBe(want.length);
  let worst = 0;
  let at = 0;
  want.forEach((w, i) => {
    const err = Math.abs((got[i] as number) - w) / (1 + Math.abs(w));
    if (err > worst) [worst, at] = [err, i];
  });
  expect(worst, `${what}: worst relative error at [${at}]: ${got[at]} vs ${want[at]}`).toBeLessThan(tol);
}

/** Native against the cpu backend's tfjs implementation, then against finite differences. */
async function check(name: string, op: Op, inputs: Inputs, opts: { fd?: number[] } = {}) {
  const native = await evaluate('native', op, inputs, 99);
  const reference = await evaluate('cpu', op, inputs, 99);
  expectClose(native.y, reference.y, 2e-5, `${name} forward`);
  native.grads.forEach((g, i) => {
    expectClose(g, reference.grads[i] as Float32Array, 5e-5, `${name} gradient of input ${i}`);
  });
  // central differences of L = sum(op(x) * r) on the native backend, a few coordinates per input
  for (const i of opts.fd ?? inputs.map((_, j) => j)) {
    const input = inputs[i] as Inputs[number];
    const g = native.grads[i] as Float32Array;
    for (const j of [0, Math.floor(input.values.length / 3), input.values.length - 1]) {
      const h = 1e-2;
      const at = (delta: number) => {
        const moved = inputs.map((x, m) => (m === i ? { ...x, values: Float32Array.from(x.values, (v, n) => (n === j ? v + delta : v)) } : x));
        return tf.tidy(() => {
          const xs = moved.map((x) => tf.tensor(x.values, x.shape));
          const y = op(...xs);
          return tf.sum(tf.mul(y, tf.tensor(rand(y.size, 99), y.shape))).dataSync()[0] as number;
        });
      };
      const numeric = (at(h) - at(-h)) / (2 * h);
      expect(Math.abs(numeric - (g[j] as number)), `${name} input ${i}[${j}]: numeric ${numeric} analytic ${g[j]}`).toBeLessThan(
        3e-3 + 3e-2 * Math.abs(numeric),
      );
    }
  }
}

const input = (shape: number[], seed: number, scale = 1) => ({
  shape,
  values: rand(
    shape.reduce((a, b) => a * b, 1),
    seed,
    scale,
  ),
});

describe.skipIf(!k)('native backend kernels', () => {
  beforeAll(async () => {
    const choice = await initBackend('native', () => {}, { nativeThreads: 2 });
    expect(choice.name).toBe('native');
  });

  it.each([1, 2, 3])('linear layer (random shapes, seed %i): with and without bias, weight transposed or not', async (seed) => {
    const [M, K, N] = [randInt(1, 40, seed), randInt(1, 30, seed + 10), randInt(1, 30, seed + 20)];
    await check('linear + bias', (x, w, b) => linear(x as tf.Tensor, w as tf.Tensor, b), [input([M, K], seed), input([K, N], seed + 1), input([N], seed + 2)]);
    await check('linear', (x, w) => linear(x as tf.Tensor, w as tf.Tensor), [input([2, M, K], seed + 3), input([K, N], seed + 4)]);
    await check('linear, transposed weight', (x, w) => linear(x as tf.Tensor, w as tf.Tensor, undefined, true), [
      input([M, K], seed + 5),
      input([N, K], seed + 6),
    ]);
  });

  it('add, mul and column sums over the threads: every element, b repeated from any offset (hand-computed in float32)', () => {
    if (!k) return;
    k.setThreads(2);
    try {
      const rows = 60;
      for (const nb of [777, rows * 777, 1]) {
        const n = rows * 777;
        const a = rand(n, nb);
        const b = rand(nb, nb + 1);
        const sum = new Float32Array(n);
        const product = new Float32Array(n);
        k.add(a, b, sum, n, nb);
        k.mul(a, b, product, n, nb);
        expect(sum).toEqual(Float32Array.from(a, (x, i) => Math.fround(x + (b[i % nb] as number))));
        expect(product).toEqual(Float32Array.from(a, (x, i) => Math.fround(x * (b[i % nb] as number))));
      }
      // each column summed down the rows in order, in float32
      const [M, N] = [700, 613];
      const x = rand(M * N, 5);
      const want = new Float32Array(N);
      for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) want[j] = Math.fround((want[j] as number) + (x[i * N + j] as number));
      const got = new Float32Array(N).fill(Number.NaN);
      k.colSum(x, got, M, N);
      expect(got).toEqual(want);
    } finally {
      k.setThreads(2);
    }
  });

  it.each([1, 2])('LayerNorm and GELU (random shapes, seed %i)', async (seed) => {
    const [B, T, C] = [randInt(1, 4, seed), randInt(1, 9, seed + 1), randInt(2, 48, seed + 2)];
    await check('layerNorm', (x, g, b) => layerNorm(x as tf.Tensor, g as tf.Tensor, b), [
      input([B, T, C], seed, 2),
      input([C], seed + 1),
      input([C], seed + 2),
    ]);
    await check('layerNorm without bias', (x, g) => layerNorm(x as tf.Tensor, g as tf.Tensor, undefined), [input([B * T, C], seed + 3), input([C], seed + 4)]);
    await check('gelu', (x) => gelu(x as tf.Tensor), [input([B, T, C], seed + 5, 4)]);
  });

  it.each([
    [1, true, false, 0],
    [2, true, true, 0],
    [3, false, true, 0],
    [4, false, false, 0],
    [5, true, true, 0.25], // dropout: the flash kernel's mask against the tfjs path's (the same draw)
    [6, false, false, 0.5],
  ])('multi-head attention (seed %i, causal %s, padding mask %s, dropout %d)', async (seed, causal, padded, rate) => {
    const [B, T, nh, hs] = [randInt(1, 3, seed), randInt(1, 12, seed + 1), randInt(1, 4, seed + 2), randInt(1, 8, seed + 3)];
    const C = nh * hs;
    const mask = padded
      ? tf.keep(
          tf.tensor2d(
            Int32Array.from({ length: B * T }, (_, i) => (i % T === 0 || i % 3 !== 2 ? 1 : 0)),
            [B, T],
            'int32',
          ),
        )
      : undefined;
    const T0 = T;
    const causalMask = () => {
      const m = new Float32Array(T0 * T0);
      for (let i = 0; i < T0; i++) for (let j = i + 1; j < T0; j++) m[i * T0 + j] = -1e9;
      return tf.tensor2d(m, [T0, T0]);
    };
    const dropout = rate > 0 ? { rate, seed: 1000 + seed } : undefined;
    await check('attention', (qkv) => attention(qkv as tf.Tensor, nh, { causal, causalMask, keyMask: mask as tf.Tensor2D | undefined, dropout }), [
      input([B, T, 3 * C], seed, 2),
    ]);
    mask?.dispose();
  });

  it.each([
    [1, false],
    [2, true],
  ])('cross-entropy (seed %i, weighted %s)', async (seed, weighted) => {
    const [N, V] = [randInt(1, 30, seed), randInt(2, 70, seed + 1)];
    const targets = Int32Array.from(rand(N, seed + 2), (v) => Math.floor(((v + 1) / 2) * V));
    const weights = weighted ? Float32Array.from(rand(N, seed + 3), (v) => (v > -0.3 ? v + 0.3 : 0)) : undefined;
    await check(
      'crossEntropy',
      (logits) => crossEntropy(logits as tf.Tensor2D, tf.tensor1d(targets, 'int32'), weights ? tf.tensor1d(weights) : undefined).reshape([1]),
      [input([N, V], seed, 3)],
    );
  });

  it.each([1, 2, 3])('RMSNorm and SwiGLU (random shapes, seed %i)', async (seed) => {
    const [B, T, C] = [randInt(1, 4, seed), randInt(1, 9, seed + 1), randInt(2, 48, seed + 2)];
    await check('rmsNorm', (x, w) => rmsNorm(x as tf.Tensor, w as tf.Tensor, 1e-5), [input([B, T, C], seed, 2), input([C], seed + 1)]);
    // per head (Qwen3's q/k norm): rows of head_dim inside a 4-D tensor
    await check('rmsNorm per head', (x, w) => rmsNorm(x as tf.Tensor, w as tf.Tensor, 1e-6), [input([B, T, 3, 8], seed + 2), input([8], seed + 3)]);
    await check('swiglu', (g, u) => swiglu(g as tf.Tensor, u as tf.Tensor), [input([B, T, C], seed + 4, 6), input([B, T, C], seed + 5, 2)]);
  });

  it.each([
    [1, 0],
    [2, 3],
  ])('RoPE in the rotate_half layout (seed %i, first position %i), with Llama 3 scaling', async (seed, at) => {
    const [B, T, n] = [randInt(1, 3, seed), randInt(1, 7, seed + 1), randInt(1, 4, seed + 2)];
    const hd = 2 * randInt(1, 8, seed + 3);
    const inv = ropeInverseFrequencies({
      headDim: hd,
      ropeTheta: 500000,
      ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8 },
    });
    const { cos, sin } = tf.tidy(() => {
      const t = ropeTables(inv, at, T);
      return { cos: tf.keep(t.cos), sin: tf.keep(t.sin) };
    });
    await check('rope', (x) => rope(x as tf.Tensor4D, cos, sin), [input([B, T, n, hd], seed, 2)]);
    tf.dispose([cos, sin]);
  });

  it.each([
    [1, 1, 0, false],
    [2, 3, 0, true],
    [3, 2, 4, false],
    [4, 4, 2, true],
  ])('grouped-query attention (seed %i, %i query heads per key/value head, offset %i, padding %s)', async (seed, group, offset, padded) => {
    const [B, T, Hkv, hd] = [randInt(1, 3, seed), randInt(1, 9, seed + 1), randInt(1, 3, seed + 2), randInt(1, 8, seed + 3)];
    const H = group * Hkv;
    const S = offset + T;
    const keyBias = padded
      ? tf.keep(
          tf.tensor2d(
            Float32Array.from({ length: B * S }, (_, i) => (i % S === 0 || i % 3 !== 2 ? 0 : -1e9)),
            [B, S],
          ),
        )
      : undefined;
    const mask = () => cachedCausalMask(offset, T);
    await check(
      'gqa attention',
      (q, k, v) =>
        decoderAttention(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, H, Hkv, { offset, mask, keyBias: keyBias as tf.Tensor2D | undefined }),
      [input([B, T, H * hd], seed, 2), input([B, S, Hkv * hd], seed + 1, 2), input([B, S, Hkv * hd], seed + 2)],
    );
    keyBias?.dispose();
  });

  it('matrix products (batched, transposed), broadcast add/multiply, leading-axis sums and row lookups match the cpu backend', async () => {
    const cases: Array<[string, Op, Inputs]> = [
      ['batched matMul', (a, b) => tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D), [input([3, 5, 7], 1), input([3, 7, 4], 2)]],
      ['matMul, both transposed', (a, b) => tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D, true, true), [input([2, 7, 5], 3), input([2, 4, 7], 4)]],
      ['add, bias row', (a, b) => tf.add(a as tf.Tensor, b as tf.Tensor), [input([4, 3, 6], 5), input([3, 6], 6)]],
      ['add, operands swapped', (a, b) => tf.add(b as tf.Tensor, a as tf.Tensor), [input([4, 6], 7), input([6], 8)]],
      ['multiply by a scalar', (a, b) => tf.mul(a as tf.Tensor, b as tf.Tensor), [input([5, 6], 9), input([], 10)]],
      ['multiply, same shape', (a, b) => tf.mul(a as tf.Tensor, b as tf.Tensor), [input([5, 6], 11), input([5, 6], 12)]],
      ['sum over leading axes', (a) => tf.sum(a as tf.Tensor, [0, 1]), [input([3, 4, 5], 13)]],
      ['sum over everything', (a) => tf.sum(a as tf.Tensor), [input([3, 4], 14)]],
      ['identity transpose', (a) => tf.transpose(a as tf.Tensor, [0, 1, 2]), [input([2, 3, 4], 16)]],
      ['transpose', (a) => tf.transpose(a as tf.Tensor, [2, 0, 1]), [input([2, 3, 4], 17)]],
      ['row lookup (and its scatter-add gradient)', (a) => tf.gather(a as tf.Tensor, tf.tensor1d([3, 1, 3, 0, 3], 'int32')), [input([5, 4], 15)]],
    ];
    for (const [name, op, inputs] of cases) await check(name, op, inputs);
  });

  it.each(['adamw', 'adam', 'lamb'] as const)('the in-place %s update equals the tfjs-op update', async (kind) => {
    const shapes = [[6, 5], [5]];
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      // as the model makes its parameters: the initial tensor is disposed, the variable owns its buffer
      const params = new Map(
        shapes.map((s, i) => {
          const init = tf.tensor(rand((s[0] as number) * (s[1] ?? 1), 20 + i), s);
          const v = tf.variable(init);
          init.dispose();
          return [`p${i}`, v] as const;
        }),
      );
      const opt = new Optimizer({ kind, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
      const before = backend === 'native' ? [...params.values()].map((p) => ownedValues(p)) : [];
      for (let step = 0; step < 3; step++) {
        const grads = new Map(shapes.map((s, i) => [`p${i}`, tf.tensor(rand((s[0] as number) * (s[1] ?? 1), 40 + 10 * step + i), s)]));
        opt.step(params, grads, 1e-2, 0.5);
        tf.dispose([...grads.values()]);
      }
      // on the native backend the update happened in place, in the parameters' own buffers
      if (backend === 'native') {
        [...params.values()].forEach((p, i) => {
          expect(before[i]).toBeInstanceOf(Float32Array);
          expect(ownedValues(p)).toBe(before[i]);
        });
      }
      const out = [...params.values(), ...opt.m.values(), ...opt.v.values()].map((v) => Float32Array.from(v.dataSync()));
      opt.dispose();
      tf.dispose([...params.values()]);
      await tf.setBackend('native');
      return out;
    };
    const native = await run('native');
    const reference = await run('cpu');
    native.forEach((a, i) => {
      expectClose(a, reference[i] as Float32Array, 1e-6, `${kind} state ${i}`);
    });
  });

  it('never reuses a buffer that was read out (dataSync), and reuses one that was not', () => {
    const x = tf.tensor2d(rand(64, 1), [8, 8]);
    const y1 = gelu(x);
    const read = y1.dataSync();
    const copy = Float32Array.from(read);
    y1.dispose();
    const y2 = tf.mul(gelu(tf.neg(x)), 3); // same sizes: would take y1's buffer if it were pooled
    expect(Array.from(read)).toEqual(Array.from(copy));
    expect(Array.from(y2.dataSync())).not.toEqual(Array.from(copy));
    tf.dispose([x, y2]);
  });

  it('trains reproducibly for a seed (two threads)', () => {
    const losses = () => {
      const model = Transformer.create(modelConfig({ arch: 'gpt', nLayer: 2, nHead: 2, dModel: 16, blockSize: 8 }, 13), 7);
      const opt = new Optimizer({ kind: 'adamw', beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
      const out: number[] = [];
      const wte = ownedValues(model.param('wte.weight'));
      expect(wte).toBeInstanceOf(Float32Array);
      for (let s = 0; s < 4; s++) {
        const x = Int32Array.from({ length: 16 }, (_, i) => (i * 7 + s) % 13);
        const y = Int32Array.from({ length: 16 }, (_, i) => (i * 5 + s + 1) % 13);
        const { value, grads } = tf.variableGrads(() => batchLoss(model, { B: 2, T: 8, x, y }, true), [...model.params.values()]);
        out.push(value.dataSync()[0] as number);
        const byName = new Map([...model.params].map(([n, v]) => [n, grads[v.name] as tf.Tensor]));
        opt.step(model.params, byName, 1e-2);
        tf.dispose([value, ...Object.values(grads)]);
      }
      // the model's parameters were updated in place (the native optimizer path)
      expect(ownedValues(model.param('wte.weight'))).toBe(wte);
      opt.dispose();
      model.dispose();
      return out;
    };
    const a = losses();
    expect(losses()).toEqual(a);
    expect(a[3]).toBeLessThan(a[0] as number);
  });
});

const bf16Isa = k?.info().bf16 ?? '';
const canBf16 = /^(AVX512|AMX)-BF16/.test(bf16Isa);
/** bf16 products on Crucible's own AVX512-BF16 kernel (not oneDNN's AMX): what its own tests need. */
const ownBf16Kernel = bf16Isa === "AVX512-BF16 on Crucible's kernel";

// Flash attention (what the backend runs) against the kernels that keep the [B, H, T, S]
// probability tensor: blocks of 128 crossed, causal offsets, padding biases, key/value groups, the
// fused multi-head layout read through subarrays, 1 and 2 threads.
describe.skipIf(!k)('flash attention against the probability-tensor kernels', () => {
  const relative = (got: Float32Array, want: Float32Array) => {
    let err = 0;
    let scale = 0;
    for (let i = 0; i < want.length; i++) {
      err = Math.max(err, Math.abs((got[i] as number) - (want[i] as number)));
      scale = Math.max(scale, Math.abs(want[i] as number));
    }
    return err / scale;
  };
  const cases: Array<[number, number, number, number, number, number, number, boolean]> = [
    // B, T, S, H, Hkv, hd, causal (-1: none), keyBias
    [2, 70, 70, 4, 4, 16, 0, false],
    [2, 130, 130, 4, 2, 32, 0, true],
    [1, 65, 65, 3, 1, 8, -1, true],
    [1, 5, 150, 4, 2, 8, 145, false],
    [2, 1, 9, 2, 2, 4, 8, true],
  ];
  for (const threads of [1, 2])
    it(`grouped-query layout, forward and gradients within 1e-5 relative (${threads} thread${threads > 1 ? 's' : ''})`, () => {
      if (!k) return;
      k.setThreads(threads);
      for (const [c, [B, T, S, H, Hkv, hd, causal, biased]] of cases.entries()) {
        const q = rand(B * T * H * hd, 10 + c);
        const key = rand(B * S * Hkv * hd, 20 + c);
        const v = rand(B * S * Hkv * hd, 30 + c);
        const bias = biased ? rand(B * S, 40 + c, 3) : null;
        const dout = rand(B * T * H * hd, 50 + c);
        const want = new Float32Array(B * T * H * hd);
        const probs = new Float32Array(B * H * T * S);
        k.gqaAttention(q, key, v, want, probs, B, T, S, H, Hkv, hd, causal, bias);
        const wantGrads = [new Float32Array(q.length), new Float32Array(key.length), new Float32Array(v.length)] as const;
        k.gqaAttentionBackward(dout, q, key, v, probs, ...wantGrads, B, T, S, H, Hkv, hd, causal);
        const got = new Float32Array(B * T * H * hd);
        const lse = new Float32Array(B * H * T);
        k.flashAttention(q, H * hd, key, v, Hkv * hd, got, H * hd, lse, B, T, S, H, Hkv, hd, causal, bias);
        // gradients are overwritten: NaN left anywhere would show
        const grads = [q, key, v].map((x) => new Float32Array(x.length).fill(Number.NaN)) as [Float32Array, Float32Array, Float32Array];
        k.flashAttentionBackward(dout, q, H * hd, key, v, Hkv * hd, got, H * hd, lse, ...grads, B, T, S, H, Hkv, hd, causal, bias);
        const label = JSON.stringify({ B, T, S, H, Hkv, hd, causal, biased });
        expect(relative(got, want), `out ${label}`).toBeLessThan(1e-5);
        for (const [i, g] of grads.entries()) expect(relative(g, wantGrads[i] as Float32Array), `grad ${i} ${label}`).toBeLessThan(1e-5);
        // the log-sum-exp of each row, against the scores written out
        if (!biased && causal < 0) {
          const scores = (b: number, h: number, t: number) =>
            Array.from({ length: S }, (_, s) => {
              let dot = 0;
              for (let d = 0; d < hd; d++)
                dot += (q[(b * T + t) * H * hd + h * hd + d] as number) * (key[(b * S + s) * Hkv * hd + Math.floor(h / (H / Hkv)) * hd + d] as number);
              return dot / Math.sqrt(hd);
            });
          const row = scores(0, 1, 3);
          const m = Math.max(...row);
          expect(lse[1 * T + 3]).toBeCloseTo(m + Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0)), 4);
        }
      }
      k.setThreads(1);
    });

  it('fused multi-head layout (q, k, v side by side), read and written through subarrays', () => {
    if (!k) return;
    for (const [B, T, nh, hs, causal] of [
      [2, 100, 3, 16, true],
      [1, 67, 2, 8, false],
    ] as const) {
      const C = nh * hs;
      const qkv = rand(B * T * 3 * C, 7);
      const bias = rand(B * T, 8, 2);
      const dout = rand(B * T * C, 9);
      const want = new Float32Array(B * T * C);
      const probs = new Float32Array(B * nh * T * T);
      k.attention(qkv, want, probs, B, T, nh, hs, causal, bias);
      const wantGrad = new Float32Array(qkv.length);
      k.attentionBackward(dout, qkv, probs, wantGrad, B, T, nh, hs, causal);
      // the reference's backward reads the probabilities, which include the bias; flash recomputes with it
      const got = new Float32Array(B * T * C);
      const lse = new Float32Array(B * nh * T);
      k.flashAttention(qkv, 3 * C, qkv.subarray(C), qkv.subarray(2 * C), 3 * C, got, C, lse, B, T, T, nh, nh, hs, causal ? 0 : -1, bias);
      const grad = new Float32Array(qkv.length).fill(Number.NaN);
      k.flashAttentionBackward(
        dout,
        qkv,
        3 * C,
        qkv.subarray(C),
        qkv.subarray(2 * C),
        3 * C,
        got,
        C,
        lse,
        grad,
        grad.subarray(C),
        grad.subarray(2 * C),
        B,
        T,
        T,
        nh,
        nh,
        hs,
        causal ? 0 : -1,
        bias,
      );
      expect(relative(got, want)).toBeLessThan(1e-5);
      expect(relative(grad, wantGrad)).toBeLessThan(1e-5);
    }
  });

  it('refuses strides shorter than the heads and arrays shorter than the shapes', () => {
    if (!k) return;
    const x = new Float32Array(64);
    expect(() => k.flashAttention(x, 4, x, x, 8, x, 8, x, 1, 2, 2, 2, 2, 4, 0, null)).toThrow(/row stride is shorter/);
    expect(() => k.flashAttention(x, 8, x, x, 8, x, 8, x, 1, 9, 9, 2, 2, 4, 0, null)).toThrow(/shorter than the shapes/);
  });
});

// Flash attention's dropout on the weights and its packed rows (keyStart: attention never crossing
// an example), against a dense float64 reference that draws the documented mask (murmur3's
// finaliser over the seed, the query row and the key; keep iff (hash >>> 8) >= ceil(rate 2^24)),
// applies it to the normalised weights and lets query i of a packed row read keys start[i]..i;
// gradients against central finite differences of that reference.
describe.skipIf(!k)('flash attention with dropout on the weights and packed rows', () => {
  const mix = (x: number) => {
    let h = x >>> 0;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h >>> 0;
  };
  const rowKey = (seed: number, row: number) => mix(seed ^ mix(Math.imul(row >>> 0, 0x9e3779b9) + mix(Math.floor(row / 2 ** 32) + 0x7f4a7c15)));
  const keep = (key: number, j: number, rate: number) => mix((key + Math.imul(j, 0x9e3779b9)) >>> 0) >>> 8 >= Math.ceil(rate * 2 ** 24);
  const [B, T, S, H, Hkv, hd] = [2, 140, 140, 2, 1, 4];
  const causal = 0;
  const seed = 12345;
  // packed rows: row 0 holds examples of 5, 125 and 3 tokens (the second crosses the 128-key block
  // boundary) and 7 positions of padding (each reads itself); row 1 one example of 140
  const packedStart = Int32Array.from({ length: B * T }, (_, p) => {
    const [b, i] = [Math.floor(p / T), p % T];
    if (b === 1) return 0;
    return i < 5 ? 0 : i < 130 ? 5 : i < 133 ? 130 : i;
  });
  // out [B, T, H hd] in float64: keys start[i]..i for query i (causal), bias added to the scores
  const reference = (q: Float64Array, key: Float64Array, v: Float64Array, bias: Float32Array, rate: number, start: Int32Array | null) => {
    const out = new Float64Array(B * T * H * hd);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / (H / Hkv));
        for (let i = 0; i < T; i++) {
          const lo = start ? (start[b * T + i] as number) : 0;
          const s = new Float64Array(i + 1);
          let m = -Infinity;
          for (let j = lo; j <= i; j++) {
            let dot = 0;
            for (let d = 0; d < hd; d++) dot += (q[(b * T + i) * H * hd + h * hd + d] as number) * (key[(b * S + j) * Hkv * hd + g * hd + d] as number);
            s[j] = dot / Math.sqrt(hd) + (bias[b * S + j] as number);
            m = Math.max(m, s[j] as number);
          }
          let sum = 0;
          for (let j = lo; j <= i; j++) sum += Math.exp((s[j] as number) - m);
          const rk = rowKey(seed, (b * H + h) * T + i);
          for (let j = lo; j <= i; j++) {
            if (rate > 0 && !keep(rk, j, rate)) continue;
            const p = Math.exp((s[j] as number) - m) / sum / (1 - rate);
            for (let d = 0; d < hd; d++) {
              const o = (b * T + i) * H * hd + h * hd + d;
              out[o] = (out[o] as number) + p * (v[(b * S + j) * Hkv * hd + g * hd + d] as number);
            }
          }
        }
      }
    return out;
  };
  const q = rand(B * T * H * hd, 61);
  const key = rand(B * S * Hkv * hd, 62);
  const v = rand(B * S * Hkv * hd, 63);
  const bias = rand(B * S, 64, 2);
  const dout = rand(B * T * H * hd, 65);
  const flash = (threads: number, rate: number, start: Int32Array | null, sd = seed) => {
    k?.setThreads(threads);
    const out = new Float32Array(B * T * H * hd);
    const lse = new Float32Array(B * H * T);
    k?.flashAttention(q, H * hd, key, v, Hkv * hd, out, H * hd, lse, B, T, S, H, Hkv, hd, causal, bias, rate, sd, start);
    const grads = [q, key, v].map((x) => new Float32Array(x.length).fill(Number.NaN)) as [Float32Array, Float32Array, Float32Array];
    k?.flashAttentionBackward(dout, q, H * hd, key, v, Hkv * hd, out, H * hd, lse, ...grads, B, T, S, H, Hkv, hd, causal, bias, rate, sd, start);
    k?.setThreads(1);
    return { out, grads };
  };

  it('draws the documented mask: about rate of the weights dropped, independent rows', () => {
    const rate = 0.3;
    let dropped = 0;
    let same = 0;
    const n = 200 * 200;
    for (let i = 0; i < 200; i++) {
      const a = rowKey(seed, i);
      const b = rowKey(seed, i + 1);
      for (let j = 0; j < 200; j++) {
        if (!keep(a, j, rate)) dropped++;
        if (keep(a, j, rate) === keep(b, j, rate)) same++;
      }
    }
    expect(Math.abs(dropped / n - rate)).toBeLessThan(0.01);
    // neighbouring rows agree as often as independent draws would: (1 - r)^2 + r^2 = 0.58
    expect(Math.abs(same / n - ((1 - rate) ** 2 + rate ** 2))).toBeLessThan(0.01);
  });

  it('is the mask the tfjs-op path multiplies by (one mask on every backend)', () => {
    const rate = 0.3;
    const mask = attentionDropoutMask(B, H, T, S, rate, seed);
    for (let row = 0; row < B * H * T; row++)
      for (let j = 0; j < S; j++) expect(mask[row * S + j], `row ${row} key ${j}`).toBe(keep(rowKey(seed, row), j, rate) ? Math.fround(1 / (1 - rate)) : 0);
  });

  for (const [rate, packed] of [
    [0.3, false],
    [0, true],
    [0.3, true],
  ] as const) {
    const start = packed ? packedStart : null;
    const what = `dropout ${rate}${packed ? ', packed rows' : ''}`;

    it(`forward pass equals the dense reference (${what})`, () => {
      const { out } = flash(1, rate, start);
      const want = reference(Float64Array.from(q), Float64Array.from(key), Float64Array.from(v), bias, rate, start);
      let err = 0;
      for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs((out[i] as number) - (want[i] as number)));
      expect(err).toBeLessThan(1e-5);
      // and the option really acted: the output without it differs
      const plain = flash(1, 0, null);
      expect(Math.max(...out.map((x, i) => Math.abs(x - (plain.out[i] as number))))).toBeGreaterThan(1e-2);
    });

    it(`gradients equal central finite differences of the reference (${what})`, () => {
      const { grads } = flash(1, rate, start);
      const inputs = [q, key, v].map((x) => Float64Array.from(x));
      const loss = () => {
        const o = reference(inputs[0] as Float64Array, inputs[1] as Float64Array, inputs[2] as Float64Array, bias, rate, start);
        let s = 0;
        for (let i = 0; i < o.length; i++) s += (o[i] as number) * (dout[i] as number);
        return s;
      };
      const eps = 1e-4;
      for (const [which, x] of inputs.entries()) {
        const got = grads[which] as Float32Array;
        let err = 0;
        let scale = 0;
        // every 7th entry of q, k and v (a spread over rows, heads, blocks and features)
        for (let i = which; i < x.length; i += 7) {
          const x0 = x[i] as number;
          x[i] = x0 + eps;
          const up = loss();
          x[i] = x0 - eps;
          const down = loss();
          x[i] = x0;
          const fd = (up - down) / (2 * eps);
          err = Math.max(err, Math.abs((got[i] as number) - fd));
          scale = Math.max(scale, Math.abs(fd));
        }
        expect(err / scale, `input ${which}`).toBeLessThan(1e-4);
      }
    });

    it(`is the same on 1 and 2 threads (${what})`, () => {
      const one = flash(1, rate, start);
      const two = flash(2, rate, start);
      expect(Array.from(two.out)).toEqual(Array.from(one.out));
      for (const [i, g] of two.grads.entries()) expect(Array.from(g)).toEqual(Array.from(one.grads[i] as Float32Array));
    });
  }

  it('differs between seeds; rate 0 and no keyStart are the kernel without either; bad arguments are refused', () => {
    const one = flash(1, 0.3, null);
    expect(Array.from(flash(1, 0.3, null, seed + 1).out)).not.toEqual(Array.from(one.out));
    const none = new Float32Array(B * T * H * hd);
    k?.flashAttention(q, H * hd, key, v, Hkv * hd, none, H * hd, new Float32Array(B * H * T), B, T, S, H, Hkv, hd, causal, bias);
    expect(Array.from(flash(1, 0, null).out)).toEqual(Array.from(none));
    // every query starting at key 0 is the plain causal kernel
    expect(Array.from(flash(1, 0, new Int32Array(B * T)).out)).toEqual(Array.from(none));
    expect(() => flash(1, 1, null)).toThrow(/dropout must be in \[0, 1\)/);
    const late = Int32Array.from(packedStart);
    late[3] = 4; // query 3 cannot start at key 4
    expect(() => flash(1, 0, late)).toThrow(/first key \(keyStart\)/);
    expect(() => flash(1, 0, new Int32Array(5))).toThrow(/shorter than the shapes/);
  });
});

/** Tiny Shakespeare's opening lines, character-tokenized, and a small GPT config for them. */
function smallRun() {
  const text = 'First Citizen:\nBefore we proceed any further, hear me speak.\nAll:\nSpeak, speak.\n'.repeat(30);
  const tok = CharTokenizer.train(text, ['<|endoftext|>']);
  return { tok, ids: Int32Array.from(tok.encode(text)), gpt: modelConfig({ arch: 'gpt', nLayer: 2, nHead: 2, dModel: 32, blockSize: 16 }, tok.vocabSize) };
}

/** fn() with process.env[name] = value (unset: undefined), the old value back once fn (and its promise) ends. */
async function withEnv<T>(name: string, value: string | undefined, fn: () => T | Promise<T>): Promise<T> {
  const before = process.env[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
  }
}

describe.skipIf(!canBf16)(`bf16 matrix products (${bf16Isa || 'no bf16 instructions or no oneDNN'})`, () => {
  it('equal the product of bf16-rounded operands accumulated exactly, in every transpose variant and with a bias', async () => {
    await initBackend('native', () => {}, { nativeThreads: 2 });
    expect(k?.setPrecision('bf16')).toBe('bf16');
    try {
      for (const [ta, tb] of [
        [false, false],
        [true, false],
        [false, true],
        [true, true],
      ] as const) {
        const [M, K, N] = [37, 64, 29];
        const a = rand(M * K, 1 + (ta ? 1 : 0), 2);
        const b = rand(K * N, 3 + (tb ? 1 : 0), 2);
        const got = tf.tidy(() => tf.matMul(tf.tensor2d(a, ta ? [K, M] : [M, K]), tf.tensor2d(b, tb ? [N, K] : [K, N]), ta, tb).dataSync());
        const at = (r: number, c: number) => toBf16(a[ta ? c * M + r : r * K + c] as number);
        const bt = (r: number, c: number) => toBf16(b[tb ? c * K + r : r * N + c] as number);
        let worstExact = 0;
        let worstF32 = 0;
        for (let i = 0; i < M; i++) {
          for (let j = 0; j < N; j++) {
            let exact = 0;
            let f32 = 0;
            for (let q = 0; q < K; q++) {
              exact += at(i, q) * bt(q, j);
              f32 += (a[ta ? q * M + i : i * K + q] as number) * (b[tb ? j * K + q : q * N + j] as number);
            }
            worstExact = Math.max(worstExact, Math.abs((got[i * N + j] as number) - exact));
            worstF32 = Math.max(worstF32, Math.abs((got[i * N + j] as number) - f32));
          }
        }
        expect(worstExact, `transposeA ${ta} transposeB ${tb}`).toBeLessThan(1e-4);
        // and the operands really were rounded: float32 products differ by bf16's ~3 significant digits
        expect(worstF32).toBeGreaterThan(1e-3);
      }
      // 20 outputs: products of at most 16 columns (a LoRA rank) stay float32
      const w = new Float32Array(40);
      w[0] = 1;
      w[21] = 1;
      const bias = new Float32Array(20);
      bias.set([0.5, -0.5]);
      const y = tf.tidy(() => linear(tf.tensor2d([1.00390625, 2], [1, 2]), tf.tensor2d(w, [2, 20]), tf.tensor1d(bias)).dataSync());
      expect(Array.from(y.slice(0, 2))).toEqual([1.5, 1.5]); // 1.00390625 rounds to 1 in bf16
    } finally {
      k?.setPrecision('float32');
    }
  });

  it('flash attention runs its block products in bf16 too: close to float32, not equal to it', () => {
    if (!k) return;
    const [B, T, S, H, Hkv, hd] = [2, 130, 130, 4, 2, 32];
    const q = rand(B * T * H * hd, 61);
    const key = rand(B * S * Hkv * hd, 62);
    const v = rand(B * S * Hkv * hd, 63);
    const dout = rand(B * T * H * hd, 64);
    const run = () => {
      const out = new Float32Array(q.length);
      const lse = new Float32Array(B * H * T);
      k.flashAttention(q, H * hd, key, v, Hkv * hd, out, H * hd, lse, B, T, S, H, Hkv, hd, 0, null);
      const grads = [q, key, v].map((x) => new Float32Array(x.length)) as [Float32Array, Float32Array, Float32Array];
      k.flashAttentionBackward(dout, q, H * hd, key, v, Hkv * hd, out, H * hd, lse, ...grads, B, T, S, H, Hkv, hd, 0, null);
      return [out, ...grads];
    };
    const f32 = run();
    k.setPrecision('bf16');
    let bf16: Float32Array[];
    try {
      bf16 = run();
    } finally {
      k.setPrecision('float32');
    }
    for (const [i, x] of bf16.entries()) {
      const want = f32[i] as Float32Array;
      let err = 0;
      let scale = 0;
      for (let j = 0; j < want.length; j++) {
        err = Math.max(err, Math.abs((x[j] as number) - (want[j] as number)));
        scale = Math.max(scale, Math.abs(want[j] as number));
      }
      // bf16 keeps 8 significant bits: about 4e-3 relative per operand
      expect(err / scale, `tensor ${i}`).toBeLessThan(2e-2);
      expect(err / scale, `tensor ${i} really ran in bf16`).toBeGreaterThan(1e-4);
    }
  });

  it.skipIf(!ownBf16Kernel)("Crucible's bf16 kernel adds a linear layer's bias as it writes y: the numbers of adding it afterwards, bit for bit", () => {
    if (!k) return;
    k.setThreads(2);
    k.setPrecision('bf16');
    try {
      // one and two blocks of k (1024), both weight layouts, rows split over the threads, columns past one tile
      for (const [M, K, N, tw] of [
        [150, 96, 70, false],
        [130, 1100, 45, true],
        [3, 40, 33, false],
      ] as const) {
        const x = rand(M * K, M);
        const w = rand(K * N, N);
        const bias = rand(N, K);
        const y = new Float32Array(M * N);
        k.linear(x, w, bias, y, M, K, N, tw);
        const want = new Float32Array(M * N);
        k.gemm('bf16', false, tw, M, N, K, 1, x, K, w, tw ? K : N, 0, want, N);
        for (let i = 0; i < M * N; i++) want[i] = Math.fround((want[i] as number) + (bias[i % N] as number));
        expect(y, `${M} x ${K} x ${N}`).toEqual(want);
      }
    } finally {
      k.setPrecision('float32');
      k.setThreads(1);
    }
  });

  it.skipIf(!ownBf16Kernel)(
    "with Crucible's bf16 kernel, Q, K, V and dO packed once per head give the numbers of products that pack their own, bit for bit",
    async () => {
      if (!k) return;
      // [B, T, S, H, Hkv, hd, causal, dropout, packed rows]: GQA, a partial last block, an odd head
      // width, a decoding offset (causal = the cache's length), every key seen, dropout, packed rows
      const shapes = [
        [2, 130, 130, 4, 2, 32, 0, 0, false],
        [2, 300, 300, 4, 4, 64, 0, 0.1, false],
        [1, 5, 263, 4, 2, 64, 258, 0, false],
        [2, 257, 257, 2, 1, 48, -1, 0, false],
        [2, 140, 140, 2, 1, 24, 0, 0.1, true],
      ] as const;
      for (const [n, [B, T, S, H, Hkv, hd, causal, dropout, packed]] of shapes.entries()) {
        const q = rand(B * T * H * hd, 71 + n);
        const key = rand(B * S * Hkv * hd, 81 + n);
        const v = rand(B * S * Hkv * hd, 91 + n);
        const dout = rand(B * T * H * hd, 101 + n);
        const bias = Float32Array.from(rand(B * S, 111 + n), (x) => (x > 0.9 ? -1e9 : x));
        // packed rows: examples of 5, 125 and the rest of each row
        const start = packed ? Int32Array.from({ length: B * T }, (_, p) => (p % T < 5 ? 0 : p % T < 130 ? 5 : 130)) : null;
        const run = () => {
          const out = new Float32Array(q.length);
          const lse = new Float32Array(B * H * T);
          k.flashAttention(q, H * hd, key, v, Hkv * hd, out, H * hd, lse, B, T, S, H, Hkv, hd, causal, bias, dropout, 9, start);
          const grads = [q, key, v].map((x) => new Float32Array(x.length)) as [Float32Array, Float32Array, Float32Array];
          k.flashAttentionBackward(dout, q, H * hd, key, v, Hkv * hd, out, H * hd, lse, ...grads, B, T, S, H, Hkv, hd, causal, bias, dropout, 9, start);
          return [out, lse, ...grads];
        };
        k.setThreads(2);
        k.setPrecision('bf16');
        try {
          const once = run();
          const own = await withEnv('NATIVE_FLASH_PACKED', '0', run);
          k.setPrecision('float32');
          const f32 = run();
          for (const [i, x] of once.entries()) {
            expect(x, `shape ${n}, tensor ${i}`).toEqual(own[i]);
            expect(x.some((y) => Number.isNaN(y))).toBe(false);
            if (i !== 1) expect(x, `shape ${n}, tensor ${i} ran in bf16`).not.toEqual(f32[i]);
          }
        } finally {
          k.setPrecision('float32');
          k.setThreads(1);
        }
      }
    },
  );

  it('the backward pass from q, k, v and out kept in bf16 gives the numbers of their values widened to float32, bit for bit', () => {
    if (!k) return;
    const bits = (x: Float32Array) => {
      const h = new Uint16Array(x.length);
      k.toBf16(x, h, x.length);
      return { h, f: Float32Array.from(h, (u) => new Float32Array(new Uint32Array([u << 16]).buffer)[0] as number) };
    };
    // [B, T, H, Hkv, hd, causal, dropout, fused]: GQA with a last key block of 12 (products of at
    // most 16 columns run in float32), heads of 12 (every dV, dQ and dK product so), the fused qkv
    // layout with dropout, every key seen
    const shapes = [
      [2, 140, 4, 2, 32, 0, 0, false],
      [1, 70, 2, 2, 12, 0, 0, false],
      [2, 130, 4, 4, 16, 0, 0.1, true],
      [1, 33, 2, 1, 8, -1, 0, false],
    ] as const;
    for (const precision of ['bf16', 'float32'] as const) {
      if (precision === 'bf16' && !ownBf16Kernel) continue;
      k.setPrecision(precision);
      k.setThreads(2);
      try {
        for (const [n, [B, T, H, Hkv, hd, causal, dropout, fused]] of shapes.entries()) {
          const C = H * hd;
          const ldq = fused ? 3 * C : C;
          const ldk = fused ? 3 * C : Hkv * hd;
          // the fused layout: q, k and v side by side in one array of rows of 3C
          const x = bits(rand(B * T * (fused ? 3 * C : C + 2 * Hkv * hd), 5 + n));
          const split = (a: Float32Array | Uint16Array) =>
            fused
              ? [a, a.subarray(C), a.subarray(2 * C)]
              : [a.subarray(0, B * T * C), a.subarray(B * T * C, B * T * (C + Hkv * hd)), a.subarray(B * T * (C + Hkv * hd))];
          const [qf, kf, vf] = split(x.f) as Float32Array[];
          const [qh, kh, vh] = split(x.h) as Uint16Array[];
          const out = new Float32Array(B * T * C);
          const lse = new Float32Array(B * H * T);
          const bias = Float32Array.from(rand(B * T, 15 + n), (y) => (y > 0.9 ? -1e9 : y));
          k.flashAttention(qf as Float32Array, ldq, kf as Float32Array, vf as Float32Array, ldk, out, C, lse, B, T, T, H, Hkv, hd, causal, bias, dropout, 3);
          const o = bits(out);
          const dout = rand(B * T * C, 25 + n);
          const grads = (q: Float32Array | Uint16Array, kk: Float32Array | Uint16Array, v: Float32Array | Uint16Array, oo: Float32Array | Uint16Array) => {
            const dx = new Float32Array(x.f.length);
            const [dq, dk, dv] = split(dx) as Float32Array[];
            k.flashAttentionBackward(
              dout,
              q,
              ldq,
              kk,
              v,
              ldk,
              oo,
              C,
              lse,
              dq as Float32Array,
              dk as Float32Array,
              dv as Float32Array,
              B,
              T,
              T,
              H,
              Hkv,
              hd,
              causal,
              bias,
              dropout,
              3,
            );
            return dx;
          };
          const wide = grads(qf as Float32Array, kf as Float32Array, vf as Float32Array, o.f);
          const kept = grads(qh as Uint16Array, kh as Uint16Array, vh as Uint16Array, o.h);
          expect(kept, `${precision}, shape ${n}`).toEqual(wide);
          expect(kept.some((y) => y !== 0) && !kept.some(Number.isNaN)).toBe(true);
        }
        const [q, key, v] = [new Uint16Array(64), new Float32Array(64), new Float32Array(64)];
        expect(() =>
          k.flashAttentionBackward(
            new Float32Array(64),
            q,
            8,
            key,
            v,
            8,
            new Float32Array(64),
            8,
            new Float32Array(8),
            new Float32Array(64),
            new Float32Array(64),
            new Float32Array(64),
            1,
            8,
            8,
            1,
            1,
            8,
            0,
            null,
          ),
        ).toThrow(/must all be float32 or all bf16/);
      } finally {
        k.setPrecision('float32');
        k.setThreads(1);
      }
    }
  });

  it("a run's precision applies to its steps and evaluations, deterministically, and nothing else", async () => {
    await initBackend('native', () => {}, { nativeThreads: 2 });
    const { tok, ids, gpt: cfg } = smallRun();
    const run = (precision?: 'float32' | 'bf16') => {
      const train = defaultTrainConfig(cfg, { maxSteps: 3, batchSize: 4, evalInterval: 0, evalBatches: 1, seed: 11, ...(precision ? { precision } : {}) });
      const t = new Trainer(Transformer.create(cfg, 3), tok, train, { train: ids.subarray(0, 2000), val: ids.subarray(2000) });
      const out = [t.trainStep().loss, t.trainStep().loss, t.trainStep().loss, t.evaluate().loss];
      // between steps the process's own precision is back
      expect(k?.info().precision).toBe('float32');
      t.model.dispose();
      t.optimizer.dispose();
      return out;
    };
    const f32 = run();
    expect(run('float32')).toEqual(f32);
    const bf16 = run('bf16');
    expect(run('bf16'), 'bf16 runs are deterministic too').toEqual(bf16);
    expect(bf16).not.toEqual(f32);
    for (const [i, l] of bf16.entries()) expect(Math.abs(l - (f32[i] as number)) / (f32[i] as number), `loss ${i}`).toBeLessThan(2e-2);
    // restored even when the step throws
    expect(() =>
      withPrecision('bf16', () => {
        expect(k?.info().precision).toBe('bf16');
        throw new Error('step failed');
      }),
    ).toThrow('step failed');
    expect(k?.info().precision).toBe('float32');
    expect(() => defaultTrainConfig(cfg, { precision: 'fp16' as 'bf16' })).toThrow(/precision must be float32 or bf16/);
  });
});

// Weights converted to bf16 once per optimizer step (bf16-weights.ts): where bf16 products run on
// Crucible's AVX512-BF16 kernel
const copiesHere = (() => {
  if (!k || !canBf16) return false;
  k.setPrecision('bf16');
  const on = k.info().bf16Copies;
  k.setPrecision('float32');
  return on;
})();
describe.skipIf(!copiesHere)(`bf16 weight copies (${copiesHere ? bf16Isa : "skipped: bf16 products do not run on Crucible's AVX512-BF16 kernel here"})`, () => {
  it('a registered copy is read in place of the array it copies: only for operands inside it, at their offset, until cleared', () => {
    if (!k) return;
    const [M, N, K] = [40, 64, 48];
    const x = rand(M * K, 1);
    const big = rand(2 * N * K, 2);
    const w = big.subarray(0, N * K); // [N, K]: y = x w^T
    const linear = (weight: Float32Array, rows = N) => {
      const y = new Float32Array(M * rows);
      k.linear(x, weight, null, y, M, K, rows, true);
      return y;
    };
    // a stale copy (of 2w) shows which operand was read: the product doubles exactly
    const stale = new Uint16Array(N * K);
    k.toBf16(
      w.map((v) => 2 * v),
      stale,
      N * K,
    );
    k.setGemm('crucible');
    k.setPrecision('bf16');
    try {
      const want = linear(w);
      const half = w.subarray((N / 2) * K); // the last N / 2 rows: inside w, at an offset
      const wantHalf = linear(half, N / 2);
      const straddling = big.subarray((N / 2) * K, (N / 2) * K + N * K); // starts inside w, ends past it
      const wantStraddling = linear(straddling);
      expect(k.setBf16Copies([w], [stale])).toBe(1);
      const reads = k.bf16CopyReads();
      expect(linear(w)).toEqual(want.map((v) => 2 * v));
      expect(linear(half, N / 2)).toEqual(wantHalf.map((v) => 2 * v));
      expect(k.bf16CopyReads()).toBe(reads + 2);
      expect(linear(straddling), 'an operand that leaves the array reads its own values').toEqual(wantStraddling);
      expect(k.bf16CopyReads()).toBe(reads + 2);
      // a true copy gives the same numbers as rounding while packing, bit for bit
      const copy = new Uint16Array(N * K);
      k.toBf16(w, copy, N * K);
      k.setBf16Copies([w], [copy]);
      expect(linear(w)).toEqual(want);
      k.setBf16Copies([], []);
      k.setBf16Copies([w], [stale]);
      k.setPrecision('float32');
      expect(k.info().bf16Copies, 'float32 products read no copies').toBe(false);
      expect(linear(w)).not.toEqual(want.map((v) => 2 * v));
      k.setPrecision('bf16');
      k.setBf16Copies([], []);
      expect(linear(w), 'cleared: the array itself again').toEqual(want);
      expect(() => k.setBf16Copies([w], [new Uint16Array(3)])).toThrow(/same length/);
      expect(() => k.setBf16Copies([w], [])).toThrow(/one copy per array/);
    } finally {
      k.setBf16Copies([], []);
      k.setPrecision('float32');
      k.setGemm('auto');
    }
  });

  it('a bf16 step reads its weights from copies made once per step (frozen ones once per run): the same numbers bit for bit', async () => {
    await initBackend('native', () => {}, { nativeThreads: 2 });
    const { tok, ids, gpt: cfg } = smallRun();
    const lora = { ...cfg, peft: { type: 'lora' as const, rank: 4, alpha: 8, dropout: 0, targets: ['attn.c_attn' as const, 'mlp.c_fc' as const] } };
    const run = (model: typeof cfg, copies: boolean) =>
      withEnv('NATIVE_BF16_COPIES', copies ? '1' : '0', () => {
        const base = Transformer.create(cfg, 3);
        const m = model.peft ? Transformer.create(model, 4, base.weights()) : base;
        const train = defaultTrainConfig(model, { maxSteps: 3, batchSize: 4, evalInterval: 0, evalBatches: 1, seed: 11, precision: 'bf16' });
        const t = new Trainer(m, tok, train, { train: ids.subarray(0, 2000), val: ids.subarray(2000) });
        const reads = k?.bf16CopyReads() ?? 0;
        const losses = [t.trainStep().loss, t.trainStep().loss, t.trainStep().loss];
        const matrices = [...m.params].filter(([, p]) => p.rank === 2);
        const trainable = [...m.trainable()].filter(([, p]) => p.rank === 2).length;
        // after the step nothing stays registered: a bf16 product on a weight reads its own values
        const [, wte] = matrices[0] as [string, tf.Variable];
        const [V, C] = wte.shape as [number, number];
        k?.setPrecision('bf16');
        const after = k?.bf16CopyReads();
        k?.linear(rand(3 * C, 5), valuesOf(wte), null, new Float32Array(3 * V), 3, C, V, true);
        k?.setPrecision('float32');
        expect(k?.bf16CopyReads()).toBe(after);
        const out = {
          losses,
          params: matrices.map(([, p]) => Array.from(p.dataSync())),
          reads: (k?.bf16CopyReads() ?? 0) - reads,
          conversions: t.bf16Weights.conversions,
          expected: 3 * trainable + (matrices.length - trainable),
        };
        m.dispose();
        if (m !== base) base.dispose();
        t.optimizer.dispose();
        return out;
      });
    for (const model of [cfg, lora]) {
      const off = await run(model, false);
      const on = await run(model, true);
      expect(off.reads).toBe(0);
      expect(off.conversions).toBe(0);
      expect(on.reads, 'products read the copies').toBeGreaterThan(0);
      expect(on.conversions, 'trainable matrices once per step, frozen ones once').toBe(on.expected);
      expect(on.losses).toEqual(off.losses);
      expect(on.params).toEqual(off.params);
    }
  });
});

// Activations saved in bf16 (ops.ts's savesBf16Activations): where bf16 products run on Crucible's
// kernel, a recorded linear layer keeps its input for the weight's gradient in bf16, which that
// gradient's product would round to anyway; GELU and SwiGLU keep their inputs, flash attention q,
// k, v and its output in bf16; a frozen weight's layer keeps nothing of its input
describe.skipIf(!copiesHere)(`bf16 activations (${copiesHere ? bf16Isa : "skipped: bf16 products do not run on Crucible's AVX512-BF16 kernel here"})`, () => {
  const { tok, ids, gpt } = smallRun();
  const llama = tinyLlamaConfig(tok.vocabSize);
  // saved: NATIVE_BF16_ACTIVATIONS '1' or '0'; undefined: unset (the default)
  const run = (cfg: ModelConfig, precision: 'bf16' | 'float32', saved: boolean | undefined, peft?: ModelConfig['peft']) =>
    withEnv('NATIVE_BF16_ACTIVATIONS', saved === undefined ? undefined : saved ? '1' : '0', async () => {
      const base = Transformer.create(cfg, 3);
      const model = peft ? { ...cfg, peft } : cfg;
      const m = peft ? Transformer.create(model, 4, base.weights()) : base;
      const train = defaultTrainConfig(model, { maxSteps: 2, batchSize: 4, evalInterval: 0, evalBatches: 1, seed: 11, precision });
      const t = new Trainer(m, tok, train, { train: ids.subarray(0, 2000), val: ids.subarray(2000) });
      const losses: number[] = [];
      const info = await tf.profile(() => {
        losses.push(t.trainStep().loss, t.trainStep().loss);
      });
      const kernels = new Set(info.kernels.map((kk) => kk.name));
      const params = [...m.trainable()].map(([, p]) => Array.from(p.dataSync()));
      m.dispose();
      if (m !== base) base.dispose();
      t.optimizer.dispose();
      return { losses, params, kernels };
    });

  const bf16Kernels = [
    'CrucibleLinearSavingBf16',
    'CrucibleGeluSavingBf16',
    'CrucibleSwigluSavingBf16',
    'CrucibleAttentionSavingBf16',
    'CrucibleGqaAttentionSavingBf16',
  ];

  it("a linear layer's gradients are the same bit for bit with its input kept in bf16", async () => {
    await initBackend('native', () => {}, { nativeThreads: 2 });
    const [M, K, N] = [37, 70, 45];
    const x = tf.tensor2d(rand(M * K, 1), [M, K]);
    const w = tf.variable(tf.tensor2d(rand(K * N, 2), [K, N]));
    const b = tf.variable(tf.tensor1d(rand(N, 3)));
    const r = tf.tensor2d(rand(M * N, 4), [M, N]);
    const grads = (saved: boolean) =>
      withEnv('NATIVE_BF16_ACTIVATIONS', saved ? '1' : '0', async () => {
        const info = await tf.profile(() =>
          withPrecision('bf16', () => {
            const g = tf.variableGrads(() => tf.sum(tf.mul(linear(x, w, b), r)) as tf.Scalar, [w, b]);
            return [g.grads[w.name], g.grads[b.name]].map((t) => Array.from((t as tf.Tensor).dataSync()));
          }),
        );
        return { kernels: new Set(info.kernels.map((kk) => kk.name)), result: info.result as unknown as number[][] };
      });
    const on = await grads(true);
    const off = await grads(false);
    expect(on.kernels.has('CrucibleLinearSavingBf16')).toBe(true);
    expect(off.kernels.has('CrucibleLinearSavingBf16')).toBe(false);
    expect(on.result).toEqual(off.result);
    for (const t of [x, w, b, r]) t.dispose();
  });

  it('the backward pass makes no zeros for the gradient of an output nothing reads (a bf16 copy)', async () => {
    await initBackend('native', () => {}, { nativeThreads: 2 });
    const [M, K, N] = [64, 512, 64];
    const x = tf.variable(tf.tensor2d(rand(M * K, 1), [M, K]));
    const w = tf.variable(tf.tensor2d(rand(K * N, 2), [K, N]));
    // TensorFlow.js's engine makes zeros of an output's size where that output has no gradient;
    // the int32 arrays built while the gradients are computed show whether it did
    const made: number[] = [];
    const Int32 = globalThis.Int32Array;
    globalThis.Int32Array = new Proxy(Int32, {
      construct(target, args, newTarget) {
        if (typeof args[0] === 'number') made.push(args[0]);
        return Reflect.construct(target, args, newTarget);
      },
    });
    try {
      await withEnv('NATIVE_BF16_ACTIVATIONS', '1', () =>
        withPrecision('bf16', () => tf.tidy(() => variableGrads(() => tf.sum(gelu(linear(x, w))) as tf.Scalar, [x, w]).value)),
      );
    } finally {
      globalThis.Int32Array = Int32;
    }
    expect(made.filter((n) => n >= (M * K) / 2)).toEqual([]);
    x.dispose();
    w.dispose();
  });

  // the tanh-approximated GELU and SwiGLU and their derivatives in float64, written out here
  const geluF64 = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  const geluSlopeF64 = (v: number) => {
    const c = Math.sqrt(2 / Math.PI);
    const t = Math.tanh(c * (v + 0.044715 * v ** 3));
    return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * c * (1 + 3 * 0.044715 * v * v);
  };
  const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
  const fromBf16 = (h: number) => new Float32Array(new Uint32Array([h << 16]).buffer)[0] as number;
  const special = [0, -0, 1, -1, 1.00390625, 1.01171875, 3.5e38, -3.5e38, Number.POSITIVE_INFINITY, Number.NaN];

  it('GELU keeps its input rounded to bf16 and takes its slope there; its output is from the float32 input', () => {
    if (!k) return;
    const n = 3000;
    const x = rand(n, 7, 4);
    x.set(special);
    const dy = rand(n, 8);
    const y = new Float32Array(n);
    const want = new Float32Array(n);
    const x16 = new Uint16Array(n);
    k.geluSavingBf16(x, y, x16, n);
    k.gelu(x, want, n);
    expect(y).toEqual(want);
    for (let i = 0; i < n; i++) {
      const v = x[i] as number;
      if (Number.isNaN(v)) expect(Number.isNaN(fromBf16(x16[i] as number))).toBe(true);
      else expect(fromBf16(x16[i] as number), `x[${i}] = ${v}`).toBe(toBf16(v));
    }
    const dx = new Float32Array(n);
    k.geluBackwardBf16(x16, dy, dx, n);
    for (let i = special.length; i < n; i++) {
      const v = fromBf16(x16[i] as number);
      const d = (dy[i] as number) * geluSlopeF64(v);
      expect(Math.abs((dx[i] as number) - d), `at ${v}`).toBeLessThan(2e-5 * Math.max(1, Math.abs(d)));
    }
    expect(Math.abs(geluF64(1) - (want[2] as number))).toBeLessThan(1e-6);
  });

  it('SwiGLU keeps gate and up rounded to bf16 and takes its gradients there', () => {
    if (!k) return;
    const n = 3000;
    const gate = rand(n, 9, 6);
    const up = rand(n, 10, 3);
    gate.set(special.slice(0, 6));
    const dy = rand(n, 11);
    const y = new Float32Array(n);
    const want = new Float32Array(n);
    const g16 = new Uint16Array(n);
    const u16 = new Uint16Array(n);
    k.swigluSavingBf16(gate, up, y, g16, u16, n);
    k.swiglu(gate, up, want, n);
    expect(y).toEqual(want);
    for (let i = 0; i < n; i++) {
      expect(fromBf16(g16[i] as number)).toBe(toBf16(gate[i] as number));
      expect(fromBf16(u16[i] as number)).toBe(toBf16(up[i] as number));
    }
    const dgate = new Float32Array(n);
    const dup = new Float32Array(n);
    k.swigluBackwardBf16(g16, u16, dy, dgate, dup, n);
    for (let i = 0; i < n; i++) {
      const g = fromBf16(g16[i] as number);
      const u = fromBf16(u16[i] as number);
      const s = sigmoid(g);
      const wantGate = (dy[i] as number) * u * s * (1 + g * (1 - s));
      const wantUp = (dy[i] as number) * g * s;
      expect(Math.abs((dgate[i] as number) - wantGate), `gate ${g}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(wantGate)));
      expect(Math.abs((dup[i] as number) - wantUp), `gate ${g}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(wantUp)));
    }
  });

  for (const [name, cfg, activation, attention] of [
    ['gpt', gpt, 'CrucibleGeluSavingBf16', 'CrucibleAttentionSavingBf16'],
    ['llama', llama, 'CrucibleSwigluSavingBf16', 'CrucibleGqaAttentionSavingBf16'],
  ] as const)
    it(`${name}: a bf16 step keeps its activations in bf16 by default: the same forward pass, gradients within bf16's rounding`, async () => {
      await initBackend('native', () => {}, { nativeThreads: 2 });
      const off = await run(cfg, 'bf16', false);
      const on = await run(cfg, 'bf16', undefined);
      expect(on.kernels.has('CrucibleLinearSavingBf16')).toBe(true);
      expect(on.kernels.has(activation)).toBe(true);
      expect(on.kernels.has(attention)).toBe(true);
      for (const kernel of bf16Kernels) expect(off.kernels.has(kernel), kernel).toBe(false);
      // the first step's forward pass is the same computation; the second starts from parameters
      // that moved by gradients taken at bf16-rounded GELU / SwiGLU inputs and attention outputs
      expect(on.losses[0]).toBe(off.losses[0]);
      expect(Math.abs((on.losses[1] as number) - (off.losses[1] as number))).toBeLessThan(1e-3 * (off.losses[1] as number));
      expect(on.losses[1], 'the gradients were taken at the rounded inputs').not.toBe(off.losses[1]);
      // float32 steps keep float32 activations
      const f32 = await run(cfg, 'float32', true);
      for (const kernel of bf16Kernels) expect(f32.kernels.has(kernel), kernel).toBe(false);
    });

  // (the LoRA gradients through these layers are checked against finite differences in peft.test.ts
  // and decoder.test.ts, which run on this backend)
  it("a frozen weight's linear layer keeps nothing of its input, in float32 and bf16", async () => {
    await initBackend('native', () => {}, { nativeThreads: 2 });
    const peft = { type: 'lora' as const, rank: 4, alpha: 8, dropout: 0, targets: ['q_proj' as const, 'v_proj' as const] };
    for (const precision of ['float32', 'bf16'] as const) {
      const got = await run(llama, precision, true, peft);
      expect(got.kernels.has('CrucibleLinearFrozen'), precision).toBe(true);
      expect(got.losses.every(Number.isFinite)).toBe(true);
    }
    // a full fine-tune has no frozen weight
    expect((await run(llama, 'float32', true)).kernels.has('CrucibleLinearFrozen')).toBe(false);
  });
});

describe('without the addon', () => {
  it('falls back to wasm and says once what it uses and how to get the native backend', () => {
    const cli = join(import.meta.dirname, '../bin/crucible-train.mjs');
    const r = spawnSync(process.execPath, [cli, 'sample', '--checkpoint', '/nonexistent'], {
      encoding: 'utf8',
      env: { ...process.env, CRUCIBLE_NO_NATIVE: '1', TFJS_BACKEND: '' },
    });
    const hints =
      r.stderr.match(
        /training on the wasm backend because @crucible\/native-kernels is not built.*apt-get install -y build-essential python3 && npm rebuild @crucible\/native-kernels/g,
      ) ?? [];
    expect(hints).toHaveLength(1);
  });
});
