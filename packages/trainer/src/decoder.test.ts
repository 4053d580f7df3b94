// The llama architecture (Llama, Qwen2, Qwen3, SmolLM) against a reference forward written here
// in plain float64 loops from transformers' modeling code (LlamaRMSNorm, rotate_half RoPE,
// repeat_kv, SwiGLU), independent of the tfjs implementation: the real configs' shapes at
// reduced sizes, with random weights; logits agree within 1e-4. Gradients against finite
// differences. Where ../shared holds the real config.json files, they are parsed and their
// parameter counts checked against the published figures.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CharTokenizer, decoderConfigFromHf, mergeLora, type Weights } from '@crucible/model-files';
import type { LoraTarget } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { variableGrads } from './backprop';
import { decodeCheckpoint } from './checkpoint';
import { countParams } from './config';
import { Transformer } from './model';
import { gradCheck, useBackend } from './test-helpers';
import { batchLoss, defaultTrainConfig, Trainer } from './train';

beforeAll(useBackend);

const SHARED = join(import.meta.dirname, '../../../../shared/data/hf-tokenizers');

/** A seeded normal sampler (Box-Muller over a 32-bit LCG). */
function normal(seed: number): () => number {
  let s = seed >>> 0;
  const u = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

type Hf = Record<string, unknown>;

/** Random weights for every parameter the config implies, norms around 1, the rest N(0, std^2). */
function randomWeights(model: Transformer, seed: number, std = 0.3): Weights {
  const r = normal(seed);
  const w: Weights = new Map();
  for (const [name, v] of model.params) {
    const n = v.size;
    const isNorm = /norm\.weight$/.test(name);
    w.set(name, { shape: v.shape.slice(), data: Float32Array.from({ length: n }, () => (isNorm ? 1 + 0.2 * r() : std * r())) });
  }
  return w;
}

/** transformers' forward, loop by loop, for one sequence: logits [T][V]. */
function referenceLogits(cfg: Hf, W: Weights, ids: number[]): number[][] {
  const g = (name: string) => {
    const t = W.get(name);
    if (!t) throw new Error(`reference: no ${name}`);
    return t.data;
  };
  const has = (name: string) => W.has(name);
  const C = cfg.hidden_size as number;
  const H = cfg.num_attention_heads as number;
  const Hkv = (cfg.num_key_value_heads as number) ?? H;
  const hd = (cfg.head_dim as number | undefined) ?? C / H;
  const I = cfg.intermediate_size as number;
  const V = cfg.vocab_size as number;
  const eps = cfg.rms_norm_eps as number;
  const theta = cfg.rope_theta as number;
  // nn.Linear: y[o] = sum_i W[o, i] x[i] + b[o]
  const linear = (name: string, x: number[], out: number): number[] => {
    const w = g(`${name}.weight`);
    const b = has(`${name}.bias`) ? g(`${name}.bias`) : undefined;
    const inDim = x.length;
    const y: number[] = [];
    for (let o = 0; o < out; o++) {
      let acc = b ? (b[o] as number) : 0;
      for (let i = 0; i < inDim; i++) acc += (w[o * inDim + i] as number) * (x[i] as number);
      y.push(acc);
    }
    return y;
  };
  const rms = (x: number[], w: Float32Array): number[] => {
    let ms = 0;
    for (const v of x) ms += v * v;
    const scale = 1 / Math.sqrt(ms / x.length + eps);
    return x.map((v, i) => v * scale * (w[i] as number));
  };
  // inverse frequencies, then Llama 3's band-by-band scaling
  const invFreq: number[] = [];
  for (let i = 0; i < hd; i += 2) invFreq.push(1 / theta ** (i / hd));
  const rs = cfg.rope_scaling as Hf | null | undefined;
  if (rs) {
    const old = rs.original_max_position_embeddings as number;
    const lo = rs.low_freq_factor as number;
    const hi = rs.high_freq_factor as number;
    const factor = rs.factor as number;
    for (let i = 0; i < invFreq.length; i++) {
      const f = invFreq[i] as number;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < old / hi) continue;
      if (wavelen > old / lo) invFreq[i] = f / factor;
      else {
        const smooth = (old / wavelen - lo) / (hi - lo);
        invFreq[i] = (1 - smooth) * (f / factor) + smooth * f;
      }
    }
  }
  const rope = (v: number[], pos: number): number[] => {
    const half = hd / 2;
    const out = v.slice();
    for (let i = 0; i < half; i++) {
      const c = Math.cos(pos * (invFreq[i] as number));
      const s = Math.sin(pos * (invFreq[i] as number));
      out[i] = (v[i] as number) * c - (v[i + half] as number) * s;
      out[i + half] = (v[i + half] as number) * c + (v[i] as number) * s;
    }
    return out;
  };
  const emb = g('model.embed_tokens.weight');
  let x: number[][] = ids.map((id) => Array.from(emb.subarray(id * C, (id + 1) * C)));
  for (let l = 0; l < (cfg.num_hidden_layers as number); l++) {
    const p = `model.layers.${l}.`;
    const a = x.map((xt) => rms(xt, g(`${p}input_layernorm.weight`)));
    const split = (flat: number[], n: number, norm?: string) =>
      Array.from({ length: n }, (_, h) => {
        const head = flat.slice(h * hd, (h + 1) * hd);
        return norm ? rms(head, g(`${p}self_attn.${norm}.weight`)) : head;
      });
    const qkNorm = has(`${p}self_attn.q_norm.weight`);
    const q = a.map((at, t) => split(linear(`${p}self_attn.q_proj`, at, H * hd), H, qkNorm ? 'q_norm' : undefined).map((h) => rope(h, t)));
    const k = a.map((at, t) => split(linear(`${p}self_attn.k_proj`, at, Hkv * hd), Hkv, qkNorm ? 'k_norm' : undefined).map((h) => rope(h, t)));
    const v = a.map((at) => split(linear(`${p}self_attn.v_proj`, at, Hkv * hd), Hkv));
    x = x.map((xt, t) => {
      const merged: number[] = [];
      for (let h = 0; h < H; h++) {
        const kvh = Math.floor(h / (H / Hkv));
        const scores: number[] = [];
        for (let j = 0; j <= t; j++) {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += (q[t]?.[h]?.[i] as number) * (k[j]?.[kvh]?.[i] as number);
          scores.push(dot / Math.sqrt(hd));
        }
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const z = e.reduce((s, y) => s + y, 0);
        for (let i = 0; i < hd; i++) merged.push(e.reduce((acc, pj, j) => acc + (pj / z) * (v[j]?.[kvh]?.[i] as number), 0));
      }
      const o = linear(`${p}self_attn.o_proj`, merged, C);
      return xt.map((val, i) => val + (o[i] as number));
    });
    x = x.map((xt) => {
      const m = rms(xt, g(`${p}post_attention_layernorm.weight`));
      const gate = linear(`${p}mlp.gate_proj`, m, I);
      const up = linear(`${p}mlp.up_proj`, m, I);
      const inner = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * (up[i] as number));
      const down = linear(`${p}mlp.down_proj`, inner, C);
      return xt.map((val, i) => val + (down[i] as number));
    });
  }
  const headName = cfg.tie_word_embeddings ? 'model.embed_tokens' : 'lm_head';
  return x.map((xt) => linear(headName, rms(xt, g('model.norm.weight')), V));
}

/** The real configs' structure at reduced sizes (every structural key kept; the widths shrunk). */
const REDUCED: Record<string, Hf> = {
  'SmolLM2-135M (llama, GQA 3:1, tied)': {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: 48,
    intermediate_size: 64,
    num_attention_heads: 6,
    num_key_value_heads: 2,
    num_hidden_layers: 2,
    vocab_size: 61,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-5,
    rope_theta: 100000,
    rope_scaling: null,
    attention_bias: false,
    mlp_bias: false,
    hidden_act: 'silu',
    tie_word_embeddings: true,
  },
  'TinyLlama-1.1B (llama, GQA 8:1, untied)': {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: 64,
    intermediate_size: 96,
    num_attention_heads: 8,
    num_key_value_heads: 1,
    num_hidden_layers: 2,
    vocab_size: 53,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
  },
  'Qwen2.5-0.5B (qwen2, q/k/v biases, GQA 7:1)': {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    hidden_size: 56,
    intermediate_size: 80,
    num_attention_heads: 7,
    num_key_value_heads: 1,
    num_hidden_layers: 2,
    vocab_size: 67,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    use_sliding_window: false,
    sliding_window: 64,
    tie_word_embeddings: true,
  },
  'Qwen3-0.6B (qwen3, q/k norms, head_dim != hidden / heads)': {
    architectures: ['Qwen3ForCausalLM'],
    model_type: 'qwen3',
    hidden_size: 32,
    head_dim: 16,
    intermediate_size: 48,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    num_hidden_layers: 2,
    vocab_size: 59,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    attention_bias: false,
    tie_word_embeddings: true,
  },
  'Llama-3.2-1B (llama3 RoPE scaling, attention and MLP biases)': {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: 64,
    head_dim: 16,
    intermediate_size: 96,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    num_hidden_layers: 2,
    vocab_size: 71,
    max_position_embeddings: 4096,
    rms_norm_eps: 1e-5,
    rope_theta: 500000,
    rope_scaling: { factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192, rope_type: 'llama3' },
    attention_bias: true,
    mlp_bias: true,
    tie_word_embeddings: false,
  },
};

describe('the llama architecture against a reference forward (float64 loops)', () => {
  it.each(Object.entries(REDUCED))('%s: logits within 1e-4', (_name, hf) => {
    const config = decoderConfigFromHf(hf);
    const shell = Transformer.create(config, 1);
    const weights = randomWeights(shell, 7);
    shell.dispose();
    const model = Transformer.fromWeights(config, weights);
    const V = config.vocabSize;
    const seqs = [
      [3, 17, 5, 5, 42, 0, 9, 33, 1, 50, 12, 7],
      [8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    ];
    const logits = tf.tidy(() => model.forward(tf.tensor2d(seqs.flat(), [2, 12], 'int32')).arraySync() as number[][][]);
    let worst = 0;
    seqs.forEach((ids, b) => {
      const ref = referenceLogits(hf, weights, ids);
      for (let t = 0; t < ids.length; t++)
        for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs((logits[b]?.[t]?.[v] as number) - (ref[t]?.[v] as number)));
    });
    expect(worst).toBeLessThan(1e-4);
    model.dispose();
  });

  it('a padding key is never attended to: the real tokens read the same logits with or without it', () => {
    const hf = REDUCED['SmolLM2-135M (llama, GQA 3:1, tied)'] as Hf;
    const config = decoderConfigFromHf(hf);
    const shell = Transformer.create(config, 1);
    const model = Transformer.fromWeights(config, randomWeights(shell, 3));
    shell.dispose();
    const ids = [4, 9, 13, 2, 0, 0];
    const masked = tf.tidy(
      () => model.forward(tf.tensor2d([ids], [1, 6], 'int32'), { attentionMask: tf.tensor2d([[1, 1, 1, 1, 0, 0]], [1, 6]) }).arraySync() as number[][][],
    );
    const ref = referenceLogits(hf, model.weights(), ids.slice(0, 4));
    let worst = 0;
    for (let t = 0; t < 4; t++)
      for (let v = 0; v < config.vocabSize; v++) worst = Math.max(worst, Math.abs((masked[0]?.[t]?.[v] as number) - (ref[t]?.[v] as number)));
    expect(worst).toBeLessThan(1e-4);
    model.dispose();
  });
});

describe('llama-architecture gradients match finite differences', () => {
  it.each([
    [
      'Qwen2.5-0.5B (qwen2, q/k/v biases, GQA 7:1)',
      ['model.layers.0.self_attn.q_proj.bias', 'model.layers.0.self_attn.k_proj.weight', 'model.layers.1.mlp.gate_proj.weight'],
    ],
    [
      'Qwen3-0.6B (qwen3, q/k norms, head_dim != hidden / heads)',
      [
        'model.embed_tokens.weight',
        'model.layers.0.self_attn.q_norm.weight',
        'model.layers.0.self_attn.k_norm.weight',
        'model.layers.1.self_attn.o_proj.weight',
      ],
    ],
    [
      'Llama-3.2-1B (llama3 RoPE scaling, attention and MLP biases)',
      [
        'model.layers.0.input_layernorm.weight',
        'model.layers.0.self_attn.v_proj.bias',
        'model.layers.1.mlp.down_proj.bias',
        'model.norm.weight',
        'lm_head.weight',
      ],
    ],
  ] as const)('%s', (name, params) => {
    const hf = REDUCED[name] as Hf;
    // a tiny width keeps each finite difference well above float32 noise
    const config = decoderConfigFromHf({ ...hf, num_hidden_layers: 2 });
    const shell = Transformer.create(config, 1);
    const model = Transformer.fromWeights(config, randomWeights(shell, 11, 0.5));
    shell.dispose();
    expect(gradCheck(model, [...params], 2, 5)).toBe(params.length * 3);
    model.dispose();
  });
});

describe('LoRA on a llama-architecture model (PEFT layout: A [rank, in], B [out, rank])', () => {
  const hf = REDUCED['Qwen2.5-0.5B (qwen2, q/k/v biases, GQA 7:1)'] as Hf;
  const base = decoderConfigFromHf(hf);
  const lora = {
    type: 'lora' as const,
    rank: 4,
    alpha: 8,
    dropout: 0,
    targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as LoraTarget[],
  };
  const baseWeights = (() => {
    const shell = Transformer.create(base, 1);
    const w = randomWeights(shell, 5);
    shell.dispose();
    return w;
  })();
  const ids = tf.tensor2d([[3, 17, 5, 5, 42, 0, 9, 33]], [1, 8], 'int32');

  it('gives exactly the base logits at step 0 (B is zero), and freezes every base weight', () => {
    const plain = Transformer.fromWeights(base, baseWeights);
    const adapted = Transformer.create({ ...base, peft: lora }, 2, baseWeights);
    const [a, b] = [plain.forward(ids), adapted.forward(ids)];
    expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBe(0);
    expect([...adapted.trainable().keys()].every((n) => n.includes('.lora_'))).toBe(true);
    expect(adapted.param('model.layers.1.mlp.down_proj.lora_A.weight').shape).toEqual([4, 80]);
    expect(adapted.param('model.layers.1.mlp.down_proj.lora_B.weight').shape).toEqual([56, 4]);
    tf.dispose([a, b]);
    plain.dispose();
    adapted.dispose();
  });

  it('gradients of A and B match finite differences', () => {
    const adapted = Transformer.create({ ...base, peft: lora }, 2, baseWeights);
    for (const [n, v] of adapted.params) if (n.endsWith('lora_B.weight')) v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', 4));
    gradCheck(
      adapted,
      ['model.layers.0.self_attn.q_proj.lora_A.weight', 'model.layers.0.self_attn.v_proj.lora_B.weight', 'model.layers.1.mlp.up_proj.lora_B.weight'],
      2,
      5,
    );
    adapted.dispose();
  });

  it('merged weights (W + alpha/rank B A) give the adapted logits, as PEFT merges', () => {
    const adapted = Transformer.create({ ...base, peft: lora }, 2, baseWeights);
    for (const [n, v] of adapted.params) if (n.endsWith('lora_B.weight')) v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', 6));
    const merged = Transformer.fromWeights(base, mergeLora(adapted.config, adapted.weights()));
    const [a, b] = [adapted.forward(ids), merged.forward(ids)];
    expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBeLessThan(1e-4);
    tf.dispose([a, b]);
    adapted.dispose();
    merged.dispose();
  });
});

describe('activation checkpointing (each layer recomputed in the backward pass)', () => {
  /** The loss's gradients, and the bytes of tensors alive when the forward pass ends (what the backward pass keeps). */
  function gradsOf(model: Transformer, checkpoint: boolean, seed: number) {
    const B = 2;
    const T = 12;
    const x = Int32Array.from({ length: B * T }, (_, i) => (i * 7 + 3) % model.config.vocabSize);
    const y = Int32Array.from({ length: B * T }, (_, i) => (i * 5 + 1) % model.config.vocabSize);
    const vars = [...model.trainable().values()];
    let keptBytes = 0;
    const { value, grads } = variableGrads(() => {
      const loss = batchLoss(model, { B, T, x, y }, true, seed, checkpoint);
      keptBytes = tf.memory().numBytes;
      return loss;
    }, vars);
    const out = { loss: value.dataSync()[0] as number, grads: new Map(Object.entries(grads).map(([n, g]) => [n, g.dataSync().slice()])), keptBytes };
    tf.dispose([value, ...Object.values(grads)]);
    return out;
  }

  function expectSameGradients(a: ReturnType<typeof gradsOf>, b: ReturnType<typeof gradsOf>) {
    expect(b.loss).toBeCloseTo(a.loss, 6);
    expect([...b.grads.keys()].sort()).toEqual([...a.grads.keys()].sort());
    for (const [name, g] of a.grads) {
      const h = b.grads.get(name) as Float32Array;
      let worst = 0;
      g.forEach((v, i) => {
        worst = Math.max(worst, Math.abs(v - (h[i] as number)) / (1e-3 + Math.abs(v)));
      });
      expect(worst, name).toBeLessThan(1e-4);
    }
  }

  it('gives the same loss and gradients as keeping every activation (full training, Qwen3 shapes), and keeps less', () => {
    const hf = REDUCED['Qwen3-0.6B (qwen3, q/k norms, head_dim != hidden / heads)'] as Hf;
    const config = decoderConfigFromHf({ ...hf, num_hidden_layers: 3 });
    const shell = Transformer.create(config, 1);
    const model = Transformer.fromWeights(config, randomWeights(shell, 21, 0.3));
    shell.dispose();
    const plain = gradsOf(model, false, 1);
    const recomputed = gradsOf(model, true, 1);
    expectSameGradients(plain, recomputed);
    expect(recomputed.keptBytes).toBeLessThan(plain.keptBytes);
    model.dispose();
  });

  it('gives the same gradients with LoRA and LoRA dropout (the recomputation draws the same masks)', () => {
    const hf = REDUCED['Qwen2.5-0.5B (qwen2, q/k/v biases, GQA 7:1)'] as Hf;
    const base = decoderConfigFromHf({ ...hf, num_hidden_layers: 2 });
    const shell = Transformer.create(base, 1);
    const weights = randomWeights(shell, 8);
    shell.dispose();
    const lora = { type: 'lora' as const, rank: 4, alpha: 8, dropout: 0.2, targets: ['q_proj', 'v_proj', 'down_proj'] as LoraTarget[] };
    const model = Transformer.create({ ...base, peft: lora }, 3, weights);
    for (const [n, v] of model.params) if (n.endsWith('lora_B.weight')) v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', 9));
    const plain = gradsOf(model, false, 5);
    expectSameGradients(plain, gradsOf(model, true, 5));
    // a different dropout seed changes the gradients: the comparison above can tell masks apart
    const other = gradsOf(model, true, 6);
    expect(Math.abs(other.loss - plain.loss)).toBeGreaterThan(1e-6);
    model.dispose();
  });
});

describe('training a llama-architecture model', () => {
  it('overfits one batch (loss under 0.05), and its checkpoint reads back to the same logits', () => {
    const text = 'To be, or not to be, that is the question:\n'.repeat(4);
    const tok = CharTokenizer.train(text, ['<|endoftext|>']);
    const ids = Int32Array.from(tok.encode(text));
    const config = decoderConfigFromHf({ ...(REDUCED['Qwen3-0.6B (qwen3, q/k norms, head_dim != hidden / heads)'] as Hf), vocab_size: tok.vocabSize });
    const t = new Trainer(
      Transformer.create(config, 1),
      tok,
      defaultTrainConfig(config, {
        maxSteps: 300,
        batchSize: 2,
        seqLen: 16,
        evalInterval: 0,
        evalBatches: 1,
        schedule: { kind: 'constant', lr: 3e-3, minLr: 3e-3, warmupSteps: 10, decaySteps: 300 },
        optimizer: { kind: 'adamw', beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0 },
      }),
      { train: ids.subarray(0, 17), val: ids.subarray(0, 17) }, // exactly one window: the same batch every step
    );
    let loss = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 300 && loss >= 0.05; i++) loss = t.trainStep().loss;
    expect(loss).toBeLessThan(0.05);
    const back = decodeCheckpoint(t.checkpoint());
    expect(back.modelConfig).toEqual(config);
    const x = tf.tensor2d([Array.from(ids.subarray(0, 16))], [1, 16], 'int32');
    const [a, b] = [t.model.forward(x), back.model.forward(x)];
    expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBe(0);
    tf.dispose([x, a, b]);
    t.model.dispose();
    back.model.dispose();
  });
});

describe('config.json of the real models', () => {
  const real = (folder: string) => join(SHARED, folder, 'config.json');
  const cases: Array<[string, number, Record<string, unknown>]> = [
    // parameter counts as published for these checkpoints
    ['smollm2-135m-instruct', 134_515_008, { nHead: 9, nKvHead: 3, headDim: 64, tiedEmbeddings: true, ropeTheta: 100000, qkvBias: false }],
    ['qwen2.5-0.5b-instruct', 494_032_768, { nHead: 14, nKvHead: 2, headDim: 64, tiedEmbeddings: true, ropeTheta: 1000000, qkvBias: true, oBias: false }],
    ['tinyllama-1.1b-chat', 1_100_048_384, { nHead: 32, nKvHead: 4, headDim: 64, tiedEmbeddings: false, ropeTheta: 10000, qkvBias: false }],
  ];
  it.skipIf(!existsSync(SHARED)).each(cases)('%s: parsed, and its parameter count is the published one', (folder, params, expected) => {
    const c = decoderConfigFromHf(JSON.parse(readFileSync(real(folder), 'utf8')));
    expect({ nHead: c.nHead, tiedEmbeddings: c.tiedEmbeddings, ...c.decoder }).toMatchObject(expected);
    expect(countParams(c)).toBe(params);
  });
});

describe('config.json refusals name the field and its value', () => {
  const base = REDUCED['SmolLM2-135M (llama, GQA 3:1, tied)'] as Hf;
  it.each<[string, Hf, RegExp]>([
    ['another model_type', { ...base, model_type: 'mistral' }, /model_type "mistral" is not supported/],
    [
      'a mismatched class',
      { ...base, architectures: ['LlamaForSequenceClassification'] },
      /architectures \["LlamaForSequenceClassification"\] is not supported/,
    ],
    ['a RoPE scaling other than llama3', { ...base, rope_scaling: { type: 'yarn', factor: 4 } }, /rope_scaling \{"type":"yarn","factor":4\} is not supported/],
    [
      'a sliding window',
      { ...base, model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], use_sliding_window: true },
      /use_sliding_window true is not supported/,
    ],
    ['kv heads that do not divide the heads', { ...base, num_key_value_heads: 4 }, /num_key_value_heads 4 must divide num_attention_heads 6/],
    ['another activation', { ...base, hidden_act: 'gelu' }, /hidden_act "gelu" is not supported/],
  ])('%s', (_what, cfg, message) => {
    expect(() => decoderConfigFromHf(cfg)).toThrow(message);
  });
});
