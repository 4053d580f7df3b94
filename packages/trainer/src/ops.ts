// Building blocks with hand-written gradients, one definition for every backend. On the native
// backend each runs as one fused C kernel (native-backend.ts); elsewhere as TensorFlow.js ops.
// TensorFlow.js's own matMul gradient uses the transpose flags, which the wasm backend runs on a
// naive loop (~10x slower than XNNPACK's path); these transpose explicitly so every product in a
// training step takes the fast path.

import * as tf from '@tensorflow/tfjs';
import { attentionDropoutMask } from './attention-dropout';
import { transposedProductsAreFast } from './backend';
import { fusedKernels, K, nativeKernels, runFused } from './native-backend';

type GradFn = (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => tf.Tensor[];
/** tf.customGrad with the save function typed as what it is (tfjs types it as part of the inputs). */
// biome-ignore lint/suspicious/noExplicitAny: tfjs's CustomGradientFunc signature cannot express (inputs..., save)
export function customGrad<F extends (...args: any[]) => tf.Tensor>(f: (...args: any[]) => { value: tf.Tensor; gradFunc: GradFn }): F {
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as F;
}

/**
 * a @ b for 2-D operands. The gradient uses flag-free matMuls after explicit transposes on the
 * stock wasm backend, and the transpose flags where those are fast (OpenBLAS, libtensorflow).
 */
export const mm = customGrad<(a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D>((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
      const g = dy as tf.Tensor2D;
      if (transposedProductsAreFast()) return [tf.matMul(g, sb, false, true), tf.matMul(sa, g, true, false)];
      return [tf.matMul(g, tf.transpose(sb)), tf.matMul(tf.transpose(sa), g)];
    },
  };
});

/** Batched a @ b for rank-4 operands [B, H, M, K] x [B, H, K, N] -> [B, H, M, N]. */
export const bmm = customGrad<(a: tf.Tensor4D, b: tf.Tensor4D) => tf.Tensor4D>((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [sa, sb] = saved as [tf.Tensor4D, tf.Tensor4D];
      const g = dy as tf.Tensor4D;
      if (transposedProductsAreFast()) return [tf.matMul(g, sb, false, true), tf.matMul(sa, g, true, false)];
      const perm = [0, 1, 3, 2];
      return [tf.matMul(g, tf.transpose(sb, perm)), tf.matMul(tf.transpose(sa, perm), g)];
    },
  };
});

/**
 * x [M, K] @ w [K, N] + b [N]. The bias gradient (a column sum of dy) is a [1, M] x [M, N] product:
 * the wasm backend's Sum over rows transposes first and is several times slower.
 */
export const mmBias = customGrad<(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D>(
  (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    save([x, w]);
    return {
      value: tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sx, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
        const g = dy as tf.Tensor2D;
        const db = tf.matMul(tf.ones([1, g.shape[0]]), g).reshape([-1]);
        if (transposedProductsAreFast()) return [tf.matMul(g, sw, false, true), tf.matMul(sx, g, true, false), db];
        return [tf.matMul(g, tf.transpose(sw)), tf.matMul(tf.transpose(sx), g), db];
      },
    };
  },
);

/** x [..., in] @ w [in, out] (+ b [out]); with `transposed`, w is [out, in] (a tied LM head). */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor, transposed = false): tf.Tensor {
  const inDim = x.shape[x.shape.length - 1] as number;
  const outDim = w.shape[transposed ? 0 : 1] as number;
  if (fusedKernels()) {
    // what the backward pass keeps of x (the kernels take x of any rank: a recorded reshape would
    // keep its input alive): nothing when the weight is frozen, x in bf16 where the weight's
    // gradient product runs in bf16 anyway, else x
    const kernel = !recordingGradients() ? K.linear : linearToRecord(w, b, inDim, outDim);
    const y = runFused(kernel, b ? { x, w, b } : { x, w }, { transposeW: transposed });
    return Array.isArray(y) ? (y[0] as tf.Tensor) : y;
  }
  // 2-D operands are not reshaped: a recorded reshape keeps its input alive for the backward pass
  const x2 = (x.rank === 2 ? x : x.reshape([-1, inDim])) as tf.Tensor2D;
  const w2 = (transposed ? tf.transpose(w) : w) as tf.Tensor2D;
  const y = b ? mmBias(x2, w2, b as tf.Tensor1D) : mm(x2, w2);
  return x.rank === 2 ? y : y.reshape([...x.shape.slice(0, -1), outDim]);
}

/** Whether a gradient is being recorded (a training step's forward pass). */
function recordingGradients(): boolean {
  return (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth > 0;
}

const frozen = (t: tf.Tensor | undefined) => t === undefined || (t instanceof tf.Variable && !t.trainable);

/** The linear kernel a recorded forward pass runs (see linear). */
function linearToRecord(w: tf.Tensor, b: tf.Tensor | undefined, inDim: number, outDim: number): string {
  if (frozen(w) && frozen(b)) return K.linearFrozen;
  // products of at most 16 columns run in float32: the weight's gradient needs x as it is there
  if (inDim > 16 && outDim > 16 && bf16ActivationsOn()) return K.linearSavingBf16;
  return K.linear;
}

/**
 * Whether a recorded forward pass keeps activations for the backward pass in bf16: where bf16
 * products run on Crucible's kernel (a step in bf16), unless NATIVE_BF16_ACTIVATIONS=0, as mixed
 * precision does. Linear layers keep their inputs so: their weight's gradient product rounds them
 * to bf16 anyway, so the numbers are the same bit for bit, and the forward product reads the bf16
 * copy too (linearBf16Input). GELU and SwiGLU keep their inputs so: their gradients are then
 * computed at the rounded inputs (their outputs still from the float32 ones). Flash attention keeps
 * q, k, v and its output so: its backward products round q, k and v anyway; the softmax's
 * correction term rowsum(dO o out) then reads the rounded output. On gpt2-small it costs no time,
 * measured side by side (BENCHMARKS.md), and holds those activations in half the memory.
 */
export function savesBf16Activations(): boolean {
  return recordingGradients() && bf16ActivationsOn();
}

function bf16ActivationsOn(): boolean {
  return process.env.NATIVE_BF16_ACTIVATIONS !== '0' && Boolean(nativeKernels()?.info().bf16Copies);
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** GELU, tanh approximation (GPT-2's "gelu_new"), with its analytic derivative. */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (!fusedKernels()) return geluOps(x);
  if (savesBf16Activations()) return (runFused(K.geluSavingBf16, { x }) as tf.Tensor[])[0] as tf.Tensor;
  return runFused(K.gelu, { x }) as tf.Tensor;
}

const geluOps = customGrad<(x: tf.Tensor) => tf.Tensor>((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const x2 = tf.square(x);
  const t = tf.tanh(tf.mul(tf.mul(x, GELU_C), tf.add(tf.mul(x2, 0.044715), 1))); // tanh(c (x + 0.044715 x^3))
  save([x, x2, t]);
  return {
    value: tf.mul(tf.mul(x, 0.5), tf.add(t, 1)),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [sx, sx2, st] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
      // d/dx 0.5 x (1 + t) = 0.5 (1 + t) + 0.5 x (1 - t^2) * c (1 + 3 * 0.044715 x^2)
      const dInner = tf.add(tf.mul(sx2, 3 * 0.044715 * GELU_C), GELU_C);
      const d = tf.add(tf.mul(tf.add(st, 1), 0.5), tf.mul(tf.mul(sx, 0.5), tf.mul(tf.sub(1, tf.square(st)), dInner)));
      return [tf.mul(dy as tf.Tensor, d)];
    },
  };
});

/** LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * g + b. */
export function layerNorm(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor | undefined, eps = 1e-5): tf.Tensor {
  if (fusedKernels()) return (runFused(K.layerNorm, b ? { x, g, b } : { x, g }, { eps }) as tf.Tensor[])[0] as tf.Tensor;
  const { mean, variance } = tf.moments(x, -1, true);
  const y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
  const scaled = tf.mul(y, g);
  return b ? tf.add(scaled, b) : scaled;
}

/**
 * Mean cross-entropy of `logits` [N, V] against `targets` [N], weighted by `weights` [N]
 * (0 drops a position; the mean is over the total weight). Returns the scalar loss.
 * The gradient is the fused softmax(logits) - onehot(targets), scaled by weight / total.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, weights?: tf.Tensor1D): tf.Scalar {
  if (fusedKernels()) {
    const inputs: tf.NamedTensorMap = weights ? { logits, targets, weights } : { logits, targets };
    return (runFused(K.crossEntropy, inputs) as tf.Tensor[])[0] as tf.Scalar;
  }
  const [n, v] = logits.shape;
  const w = weights ?? tf.ones([n]);
  const total = tf.maximum(tf.sum(w), 1e-12);
  // Tensors the gradient needs go through save(): closures over them would see them disposed.
  const f = customGrad<(lg: tf.Tensor) => tf.Tensor>((lg: tf.Tensor, save: tf.GradSaveFunc) => {
    const logp = tf.logSoftmax(lg as tf.Tensor2D);
    const onehot = tf.oneHot(targets, v);
    const scale = tf.div(w, total).reshape([n, 1]);
    save([logp, onehot, scale]);
    const picked = tf.sum(tf.mul(logp, onehot), -1);
    return {
      value: tf.div(tf.neg(tf.sum(tf.mul(picked, w))), total),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [slogp, soh, sscale] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        return [tf.mul(tf.sub(tf.exp(slogp), soh), tf.mul(sscale, dy as tf.Tensor))];
      },
    };
  });
  return f(logits) as tf.Scalar;
}

/** Rows per chunk of linearCrossEntropy: about this many floats of logits at a time (128 MB; the native kernels hold two buffers of this size, logits and their gradient). */
export const LINEAR_CE_CHUNK_FLOATS = 32 * 2 ** 20;

/**
 * The cross-entropy of the logits h W^T (h [N, C], W [V, C], the language-model head), as
 * crossEntropy(linear(h, W, undefined, true), targets, weights), without ever holding the [N, V]
 * logits or their gradient: the rows run in chunks of `chunkRows` (default: LINEAR_CE_CHUNK_FLOATS
 * / V), the forward pass keeps each row's log-sum-exp, and the backward pass recomputes each
 * chunk's logits into its softmax gradient, multiplies it out and drops it. On a Qwen2.5-0.5B
 * shape at 4,096 tokens the logits and their gradient are 5 GB; the chunks, 128 MB at a time.
 * On the native backend one kernel does it (native-backend.ts): while gradients are being recorded it
 * computes them in the same pass (the loss is the end of the graph), so no logits are recomputed.
 * W's gradient is computed only when `headTrainable` (a frozen head under LoRA needs none).
 */
export function linearCrossEntropy(
  h: tf.Tensor2D,
  head: tf.Tensor2D,
  targets: tf.Tensor1D,
  weights: tf.Tensor1D | undefined,
  opts: { headTrainable: boolean; chunkRows?: number },
): tf.Scalar {
  const [n, c] = h.shape;
  const v = head.shape[0];
  const w = weights ?? tf.ones([n]);
  if (fusedKernels()) {
    // the native kernel: two scratch buffers of rows x V, the products on the GEMM, and the
    // gradients computed in the same pass while gradients are being recorded
    // at least 256 rows, LINEAR_CE_CHUNK_FLOATS in each buffer: each chunk's products pack the whole
    // head again and add into its whole gradient (GPT-2's vocabulary: 667 rows, 7-18% faster
    // than 333 in bf16, for 134 MB more)
    const native = Math.max(1, opts.chunkRows ?? Math.max(256, Math.floor(LINEAR_CE_CHUNK_FLOATS / v)));
    const gradients = recordingGradients();
    const attrs = { rows: native, gradients, headGradient: gradients && opts.headTrainable };
    return (runFused(K.linearCrossEntropy, { h, w: head, targets, weights: w }, attrs) as tf.Tensor[])[0] as tf.Scalar;
  }
  const rows = Math.max(1, opts.chunkRows ?? Math.max(16, Math.floor(LINEAR_CE_CHUNK_FLOATS / v)));
  const chunks: Array<[number, number]> = [];
  for (let s = 0; s < n; s += rows) chunks.push([s, Math.min(n, s + rows)]);
  const total = tf.maximum(tf.sum(w), 1e-12);
  const scale = tf.div(w, total) as tf.Tensor1D;
  const chunkLogits = (x: tf.Tensor, W: tf.Tensor, s: number, e: number) => tf.matMul(x.slice([s, 0], [e - s, c]), W, false, true) as tf.Tensor2D;
  // Tensors the gradient needs go through save(): closures over them would see them disposed.
  const run = (x: tf.Tensor, W: tf.Tensor, save: tf.GradSaveFunc) => {
    const lses: tf.Tensor[] = [];
    let sum = tf.scalar(0);
    for (const [s, e] of chunks) {
      const [lse, part] = tf.tidy(() => {
        const logits = chunkLogits(x, W, s, e);
        const l = tf.logSumExp(logits, 1);
        // the target's logit of each row, picked from the flattened chunk
        const at = tf.add(tf.mul(tf.range(0, e - s, 1, 'int32'), tf.scalar(v, 'int32')), targets.slice(s, e - s));
        const picked = tf.gather(logits.reshape([-1]), at);
        return [l, tf.sum(tf.mul(tf.sub(l, picked), scale.slice(s, e - s)))];
      });
      lses.push(lse);
      const next = tf.add(sum, part);
      tf.dispose([sum, part]);
      sum = next as tf.Scalar;
    }
    const lse = tf.concat(lses);
    tf.dispose(lses);
    save([x, W, lse, targets, scale]);
    return sum as tf.Scalar;
  };
  // d loss / d logits = scale_i (softmax_i - onehot_i) dy, one chunk at a time
  const grads = (dy: tf.Tensor, saved: tf.Tensor[], wantHead: boolean): tf.Tensor[] => {
    const [x, W, lse, t, sc] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
    const parts: tf.Tensor[] = [];
    let dW: tf.Tensor | undefined;
    for (const [s, e] of chunks) {
      const [dx, dw] = tf.tidy(() => {
        const logits = chunkLogits(x, W, s, e);
        const probs = tf.exp(tf.sub(logits, lse.slice(s, e - s).reshape([e - s, 1])));
        const g = tf.mul(tf.sub(probs, tf.oneHot(t.slice(s, e - s), v)), tf.mul(sc.slice(s, e - s), dy).reshape([e - s, 1]));
        return [tf.matMul(g, W), wantHead ? tf.matMul(g, x.slice([s, 0], [e - s, c]), true, false) : tf.scalar(0)];
      });
      parts.push(dx);
      if (wantHead) {
        const next = dW ? tf.add(dW, dw) : dw;
        if (dW) tf.dispose([dW, dw]);
        dW = next;
      } else dw.dispose();
    }
    const dx = tf.concat(parts);
    tf.dispose(parts);
    return wantHead ? [dx, dW as tf.Tensor] : [dx];
  };
  if (opts.headTrainable) {
    const f = customGrad<(x: tf.Tensor, W: tf.Tensor) => tf.Tensor>((x: tf.Tensor, W: tf.Tensor, save: tf.GradSaveFunc) => ({
      value: run(x, W, save),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => grads(dy as tf.Tensor, saved, true),
    }));
    return f(h, head) as tf.Scalar;
  }
  // a frozen head is not an input of the op: no gradient is computed (or allocated) for it
  const f = customGrad<(x: tf.Tensor) => tf.Tensor>((x: tf.Tensor, save: tf.GradSaveFunc) => ({
    value: run(x, head, save),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => grads(dy as tf.Tensor, saved, false),
  }));
  return f(h) as tf.Scalar;
}

/** Inverted dropout with an explicit seed, so a step's masks are reproducible. */
export function dropout(x: tf.Tensor, rate: number, seed: number): tf.Tensor {
  if (rate <= 0) return x;
  const keep = tf.cast(tf.greaterEqual(tf.randomUniform(x.shape, 0, 1, 'float32', seed), rate), 'float32');
  return tf.mul(x, tf.mul(keep, 1 / (1 - rate)));
}

export interface AttentionOptions {
  /** Query i attends to keys 0..i only (GPT). */
  causal: boolean;
  /** The (T, T) additive causal mask the tfjs path uses (0 on and below the diagonal, -1e9 above). */
  causalMask?: () => tf.Tensor;
  /** [B, T]: 1 for real tokens, 0 for padding keys nobody may attend to. */
  keyMask?: tf.Tensor2D;
  /** [B, 1, T, T] additive mask in place of the causal one (packed examples: block-diagonal and causal), for the tfjs ops. */
  mask?: tf.Tensor;
  /** Packed examples for the fused kernel: [B, T] int32, the first key each query may read (causal attention only). */
  keyStart?: tf.Tensor2D;
  /** Dropout on the attention weights (training only) and its mask's seed; undefined or rate 0 for none. */
  dropout?: { rate: number; seed: number };
}

/** q, k and v: side by side in one [B, T, 3C] tensor, or three [B, T, C] tensors. */
export type Qkv = tf.Tensor | [tf.Tensor, tf.Tensor, tf.Tensor];

/**
 * The attention input projection x w + b (w [C, 3C], b [3C]), plus LoRA's low-rank term xa lB
 * when given. One [B, T, 3C] product on the native backend, whose attention kernel takes q, k and v
 * side by side; elsewhere three products with column blocks of w, since slicing the weight is far
 * cheaper there than splitting the activations (and concatenating their gradients).
 */
export function qkvProjection(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor, lora?: { xa: tf.Tensor; b: tf.Tensor }): Qkv {
  if (fusedKernels()) {
    const y = linear(x, w, b);
    return lora ? tf.add(y, linear(lora.xa, lora.b)) : y;
  }
  const C = w.shape[0] as number;
  return [0, 1, 2].map((i) => {
    const y = linear(x, tf.slice(w, [0, i * C], [C, C]), b ? tf.slice(b, [i * C], [C]) : undefined);
    return lora ? tf.add(y, linear(lora.xa, tf.slice(lora.b, [0, i * C], [-1, C]))) : y;
  }) as [tf.Tensor, tf.Tensor, tf.Tensor];
}

/**
 * Multi-head scaled dot-product attention over q, k and v (see Qkv; heads side by side in each): softmax(q k^T / sqrt(hs) + mask) v per
 * head, heads re-assembled to [B, T, C]. One fused kernel on the native backend (flash attention,
 * with the dropout on the weights and packed rows' keyStart in it); tfjs ops elsewhere (a packed
 * batch's [B, 1, T, T] mask). Both draw the same dropout mask for a seed (attention-dropout.ts).
 */
export function attention(qkv: Qkv, nh: number, opts: AttentionOptions): tf.Tensor {
  const [B, T, C] = Array.isArray(qkv)
    ? (qkv[0].shape as [number, number, number])
    : [qkv.shape[0] as number, qkv.shape[1] as number, (qkv.shape[2] as number) / 3];
  const padBias = opts.keyMask ? tf.mul(tf.sub(1, tf.cast(opts.keyMask, 'float32')), -1e9) : undefined; // [B, T]
  const drop = opts.dropout && opts.dropout.rate > 0 ? opts.dropout : undefined;
  const packed = opts.keyStart && opts.causal ? opts.keyStart : undefined;
  if (fusedKernels() && (!opts.mask || packed) && !Array.isArray(qkv)) {
    // keyBias and keyStart are always inputs (zeros when unread), so that the gradient can save them
    const inputs: tf.NamedTensorMap = { qkv, keyBias: padBias ?? tf.zeros([B, T]), keyStart: packed ?? tf.zeros([B, T], 'int32') };
    const attrs = { nh, causal: opts.causal, bias: !!padBias, dropout: drop?.rate ?? 0, seed: drop?.seed ?? 0, packed: !!packed };
    // a training step in bf16 keeps qkv and the output in bf16 (a store of an even last axis)
    const kernel = C % 2 === 0 && savesBf16Activations() ? K.attentionSavingBf16 : K.attention;
    return (runFused(kernel, inputs, attrs) as tf.Tensor[])[0] as tf.Tensor;
  }
  const hs = C / nh;
  const [q, k, v] = Array.isArray(qkv) ? qkv : (tf.split(qkv, 3, 2) as [tf.Tensor, tf.Tensor, tf.Tensor]);
  if (opts.keyStart && !opts.mask) throw new RangeError('attention: packed rows on the tfjs ops need their mask');
  let bias: tf.Tensor | undefined = opts.mask ?? (opts.causal ? opts.causalMask?.() : undefined);
  if (padBias) bias = bias ? tf.add(bias, padBias.reshape([B, 1, 1, T])) : padBias.reshape([B, 1, 1, T]);
  // heads are split with rank-4 transposes only (the wasm backend's rank-5 transpose is slow)
  const qh = q.reshape([B, T, nh, hs]).transpose([0, 2, 1, 3]) as tf.Tensor4D; // (B, nh, T, hs)
  const kT = k.reshape([B, T, nh, hs]).transpose([0, 2, 3, 1]) as tf.Tensor4D; // (B, nh, hs, T)
  const vh = v.reshape([B, T, nh, hs]).transpose([0, 2, 1, 3]) as tf.Tensor4D; // (B, nh, T, hs)
  let att: tf.Tensor = tf.mul(bmm(qh, kT), 1 / Math.sqrt(hs)); // (B, nh, T, T)
  if (bias) att = tf.add(att, bias);
  att = tf.softmax(att);
  if (drop) att = tf.mul(att, tf.tensor4d(attentionDropoutMask(B, nh, T, T, drop.rate, drop.seed), [B, nh, T, T]));
  const y = bmm(att as tf.Tensor4D, vh); // (B, nh, T, hs)
  return y.transpose([0, 2, 1, 3]).reshape([B, T, C]); // heads side by side again
}
