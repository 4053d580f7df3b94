// Shared set-up for the trainer's unit tests: a backend, tiny models and data, gradient checks.
import { decoderConfigFromHf } from '@crucible/model-files';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { initBackend } from './backend';
import { variableGrads } from './backprop';
import { type ModelConfig, modelConfig } from './config';
import type { Transformer } from './model';
import { batchLoss } from './train';

/** Deterministic uniform values in [-scale, scale) (mulberry32). */
export function rand(n: number, seed: number, scale = 1): Float32Array {
  let a = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  });
}

/** x rounded to bfloat16 (to nearest, ties to even; NaN stays NaN), as a number. */
export function toBf16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  if (Number.isNaN(x)) return Number.NaN;
  u[0] = ((u[0] as number) + 0x7fff + (((u[0] as number) >>> 16) & 1)) & 0xffff0000;
  return f[0] as number;
}

export async function useBackend(): Promise<void> {
  await initBackend((process.env.TFJS_BACKEND as 'wasm' | 'cpu' | undefined) ?? 'auto');
}

export function tinyConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return modelConfig({ arch: 'gpt', nLayer: 2, nHead: 2, dModel: 8, blockSize: 6 }, 11, over);
}

/** A tiny llama-architecture config (GQA 3:1, RoPE, tied embeddings, 16 positions). */
export function tinyLlamaConfig(vocabSize: number): ModelConfig {
  return decoderConfigFromHf({
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: 24,
    intermediate_size: 32,
    num_attention_heads: 6,
    num_key_value_heads: 2,
    num_hidden_layers: 2,
    vocab_size: vocabSize,
    max_position_embeddings: 16,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: null,
    attention_bias: false,
    mlp_bias: false,
    hidden_act: 'silu',
    tie_word_embeddings: true,
  });
}

/** Deterministic pseudo-random token ids in [0, vocab). */
export function randomTokens(n: number, vocab: number, seed = 1): Int32Array {
  let x = seed;
  return Int32Array.from({ length: n }, () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x >>> 8) % vocab;
  });
}

/** Loss as a plain number for the current parameter values. */
export function lossOf(model: Transformer, x: Int32Array, y: Int32Array, B: number, T: number, w?: Float32Array): number {
  return tf.tidy(() => batchLoss(model, { B, T, x, y, w }, false).dataSync()[0] as number);
}

/**
 * Central finite differences, one coordinate at a time, against the analytic gradient.
 * Weights get a larger init so that gradients are well above float32 noise.
 */
export function gradCheck(model: Transformer, names: string[], B: number, T: number, w?: Float32Array) {
  const V = model.config.vocabSize;
  const x = randomTokens(B * T, V, 3);
  const y = randomTokens(B * T, V, 4);
  // the trainer's backward walk against finite differences of the same loss
  return expectGradientsMatch(model, () => batchLoss(model, { B, T, x, y, w }, false), names);
}

export function scaleParams(model: Transformer, factor: number) {
  for (const [, p] of model.params) if (p.rank === 2) p.assign(tf.mul(p, factor));
}

/**
 * The gradient of `loss` (through `model`) against central finite differences, at the first,
 * middle and last coordinate of each named parameter; `loss` must be deterministic.
 */
export function expectGradientsMatch(model: Transformer, loss: () => tf.Scalar, names: string[], h = 1e-2): number {
  const value = () => tf.tidy(() => loss().dataSync()[0] as number);
  const { grads } = variableGrads(loss, [...model.params.values()]);
  let checked = 0;
  for (const name of names) {
    const p = model.param(name);
    const g = grads[p.name]?.dataSync() as Float32Array;
    const values = p.dataSync().slice() as Float32Array;
    for (const i of [0, Math.floor(values.length / 2), values.length - 1]) {
      const orig = values[i] as number;
      const at = (d: number) => {
        values[i] = orig + d;
        p.assign(tf.tensor(values, p.shape));
        return value();
      };
      const numeric = (at(h) - at(-h)) / (2 * h);
      at(0);
      const analytic = g[i] as number;
      expect(Math.abs(numeric - analytic), `${name}[${i}]: numeric ${numeric} analytic ${analytic}`).toBeLessThan(2e-3 + 3e-2 * Math.abs(analytic));
      checked++;
    }
  }
  tf.dispose(grads);
  return checked;
}
