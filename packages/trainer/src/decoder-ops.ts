// The llama architecture's building blocks: RMSNorm, rotary position embeddings in Hugging Face's
// rotate_half layout (with Llama 3's frequency scaling), the SwiGLU gate and grouped-query
// attention. On the native backend each is one fused C kernel with its gradient
// (native-backend.ts); elsewhere TensorFlow.js ops, differentiated by tfjs's autodiff.

import type { DecoderConfig } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import { fusedKernels, K, runFused } from './native-backend';
import { bmm, savesBf16Activations } from './ops';

/** x / sqrt(mean(x^2) + eps) * w over the last axis. */
export function rmsNorm(x: tf.Tensor, w: tf.Tensor, eps: number): tf.Tensor {
  if (fusedKernels()) return (runFused(K.rmsNorm, { x, w }, { eps }) as tf.Tensor[])[0] as tf.Tensor;
  return tf.tidy(() => {
    const ms = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), w);
  });
}

/** silu(gate) * up: the SwiGLU MLP's inner activation. */
export function swiglu(gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  if (fusedKernels() && savesBf16Activations()) return (runFused(K.swigluSavingBf16, { gate, up }) as tf.Tensor[])[0] as tf.Tensor;
  if (fusedKernels()) return runFused(K.swiglu, { gate, up }) as tf.Tensor;
  return tf.tidy(() => tf.mul(tf.mul(gate, tf.sigmoid(gate)), up));
}

/**
 * RoPE's inverse frequencies, theta^(-2i/d) for i < d/2, computed in float64. With Llama 3's
 * scaling, wavelengths longer than the original context / low_freq_factor are divided by
 * `factor`, those shorter than original / high_freq_factor kept, and those between blended.
 */
export function ropeInverseFrequencies(d: Pick<DecoderConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float64Array {
  const half = d.headDim / 2;
  const inv = Float64Array.from({ length: half }, (_, i) => 1 / d.ropeTheta ** ((2 * i) / d.headDim));
  const s = d.ropeScaling;
  if (!s) return inv;
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / s.factor;
    const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

/** cos and sin tables [T, headDim] for positions start..start+T-1 (each frequency twice: rotate_half's halves). */
export function ropeTables(inv: Float64Array, start: number, T: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const half = inv.length;
  const hd = 2 * half;
  const cos = new Float32Array(T * hd);
  const sin = new Float32Array(T * hd);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const a = (start + t) * (inv[i] as number);
      const c = Math.cos(a);
      const s = Math.sin(a);
      cos[t * hd + i] = c;
      cos[t * hd + half + i] = c;
      sin[t * hd + i] = s;
      sin[t * hd + half + i] = s;
    }
  }
  return { cos: tf.tensor2d(cos, [T, hd]), sin: tf.tensor2d(sin, [T, hd]) };
}

/**
 * x * cos + rotate_half(x) * sin for x [B, T, n, hd] (heads side by side, as the projections write
 * them), where rotate_half(x) = [-x2, x1] and the tables are [T, hd].
 */
export function rope(x: tf.Tensor4D, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor4D {
  // [B, T, hd] tables (packed examples, each from position 0) take the tfjs ops
  if (fusedKernels() && cos.rank === 2) return runFused(K.rope, { x, cos, sin }, { backward: false }) as tf.Tensor4D;
  return tf.tidy(() => {
    const [B, T, , hd] = x.shape;
    const half = hd / 2;
    const [x1, x2] = tf.split(x, [half, half], 3);
    const rotated = tf.concat([tf.neg(x2 as tf.Tensor), x1 as tf.Tensor], 3);
    const shape = cos.rank === 3 ? [B, T, 1, hd] : [T, 1, hd];
    return tf.add(tf.mul(x, cos.reshape(shape)), tf.mul(rotated, sin.reshape(shape))) as tf.Tensor4D;
  });
}

export interface DecoderAttentionOptions {
  /** The queries' first position among the keys: 0 in training, the cache's length in decoding. Query i sees keys 0..offset + i. */
  offset: number;
  /** The (T, S) additive causal mask for the tfjs ops (0 where allowed, -1e9 elsewhere), or undefined when every key is visible. */
  mask: () => tf.Tensor | undefined;
  /** [B, S] additive bias on keys (padding), or none. */
  keyBias?: tf.Tensor2D;
  /** [B, 1, T, S] additive mask in place of `mask` (packed examples), for the tfjs ops. */
  fullMask?: tf.Tensor;
  /** Packed examples for the fused kernel: [B, T] int32, the first key each query may read. */
  keyStart?: tf.Tensor2D;
}

/**
 * Causal grouped-query attention over q [B, T, H * hd] and k, v [B, S, Hkv * hd] (heads side by
 * side): [B, T, H * hd]. One fused kernel on the native backend that reads each shared key/value
 * head in place; elsewhere the heads are transposed apart for `groupedAttention`.
 */
export function decoderAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, H: number, Hkv: number, opts: DecoderAttentionOptions): tf.Tensor3D {
  if (fusedKernels() && (!opts.fullMask || opts.keyStart)) {
    // keyBias and keyStart are always inputs (zeros when unread), so that the gradient can save them
    const [B, T] = q.shape;
    const inputs: tf.NamedTensorMap = {
      q,
      k,
      v,
      keyBias: opts.keyBias ?? tf.zeros([B, k.shape[1]]),
      keyStart: opts.keyStart ?? tf.zeros([B, T], 'int32'),
    };
    // a training step in bf16 keeps q, k, v and the output in bf16 (stores of even last axes)
    const even = (q.shape[2] as number) % 2 === 0 && (k.shape[2] as number) % 2 === 0;
    const kernel = even && savesBf16Activations() ? K.gqaSavingBf16 : K.gqa;
    return (runFused(kernel, inputs, { H, Hkv, causal: opts.offset, bias: !!opts.keyBias, packed: !!opts.keyStart }) as tf.Tensor[])[0] as tf.Tensor3D;
  }
  if (opts.keyStart && !opts.fullMask) throw new RangeError('decoderAttention: packed rows on the tfjs ops need their mask');
  return tf.tidy(() => {
    const [B, , HD] = q.shape;
    const hd = HD / H;
    const heads = (t: tf.Tensor3D, n: number) => t.reshape([B, t.shape[1], n, hd]).transpose([0, 2, 1, 3]) as tf.Tensor4D;
    return groupedAttention(heads(q, H), heads(k, Hkv), heads(v, Hkv), { mask: opts.fullMask ?? opts.mask(), keyBias: opts.keyBias });
  });
}

export interface GqaOptions {
  /** (T, S) or [B, 1, T, S] additive mask (0 where allowed, -1e9 elsewhere), or none. */
  mask?: tf.Tensor;
  /** [B, S] additive bias on keys (padding), or none. */
  keyBias?: tf.Tensor2D;
}

/**
 * softmax(q k^T / sqrt(hd) + mask) v with grouped heads: q [B, H, T, hd], k and v [B, Hkv, S, hd];
 * query head h reads key/value head floor(h / (H / Hkv)), as transformers' repeat_kv. Returns
 * [B, T, H * hd], heads side by side.
 */
export function groupedAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, opts: GqaOptions = {}): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, H, T, hd] = q.shape;
    const Hkv = k.shape[1];
    const S = k.shape[2];
    let kk: tf.Tensor4D = k;
    let vv: tf.Tensor4D = v;
    if (Hkv !== H) {
      const rep = H / Hkv;
      const idx = tf.tensor1d(
        Array.from({ length: H }, (_, h) => Math.floor(h / rep)),
        'int32',
      );
      kk = tf.gather(k, idx, 1) as tf.Tensor4D;
      vv = tf.gather(v, idx, 1) as tf.Tensor4D;
    }
    let att: tf.Tensor = tf.mul(bmm(q, kk.transpose([0, 1, 3, 2]) as tf.Tensor4D), 1 / Math.sqrt(hd)); // (B, H, T, S)
    if (opts.mask) att = tf.add(att, opts.mask);
    if (opts.keyBias) att = tf.add(att, opts.keyBias.reshape([B, 1, 1, S]));
    att = tf.softmax(att);
    const y = bmm(att as tf.Tensor4D, vv); // (B, H, T, hd)
    return y.transpose([0, 2, 1, 3]).reshape([B, T, H * hd]) as tf.Tensor3D;
  });
}
