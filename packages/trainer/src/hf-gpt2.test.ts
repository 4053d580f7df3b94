// Hugging Face GPT-2 layout, checked against things this test writes itself: a table of GPT-2's
// tensor names and shapes, a tiny GPT-2 folder in the Hub's layout (bare names, mask buffers), and
// a plain-loop GPT-2 forward pass (Conv1D weights [in, out], gelu_new, eps 1e-5, tied head).
import { CharTokenizer, DEFAULT_SPECIAL_TOKENS, decodeSafetensors, encodeSafetensors, type NamedTensor, readModelFolder } from '@crucible/model-files';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportModel } from './checkpoint';
import { modelConfig } from './config';
import { Transformer } from './model';
import { randomTokens, useBackend } from './test-helpers';

beforeAll(useBackend);

const V = 12;
const C = 8;
const NH = 2;
const L = 2;
const P = 6;
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

/** GPT-2's parameter names and shapes for this size, written out by hand. */
function gpt2Table(inner = 4 * C): Array<[string, number[]]> {
  const t: Array<[string, number[]]> = [
    ['transformer.wte.weight', [V, C]],
    ['transformer.wpe.weight', [P, C]],
  ];
  for (let l = 0; l < L; l++) {
    t.push(
      [`transformer.h.${l}.ln_1.weight`, [C]],
      [`transformer.h.${l}.ln_1.bias`, [C]],
      [`transformer.h.${l}.attn.c_attn.weight`, [C, 3 * C]],
      [`transformer.h.${l}.attn.c_attn.bias`, [3 * C]],
      [`transformer.h.${l}.attn.c_proj.weight`, [C, C]],
      [`transformer.h.${l}.attn.c_proj.bias`, [C]],
      [`transformer.h.${l}.ln_2.weight`, [C]],
      [`transformer.h.${l}.ln_2.bias`, [C]],
      [`transformer.h.${l}.mlp.c_fc.weight`, [C, inner]],
      [`transformer.h.${l}.mlp.c_fc.bias`, [inner]],
      [`transformer.h.${l}.mlp.c_proj.weight`, [inner, C]],
      [`transformer.h.${l}.mlp.c_proj.bias`, [C]],
    );
  }
  t.push(['transformer.ln_f.weight', [C]], ['transformer.ln_f.bias', [C]]);
  return t;
}

function rand(n: number, seed: number, scale: number): Float32Array {
  let x = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return ((x / 2 ** 32) * 2 - 1) * scale;
  });
}

/** A plain-loop GPT-2 forward pass over named tensors (bare names): logits [T, V] for one sequence. */
function referenceForward(w: (n: string) => Float32Array, ids: number[]): Float64Array {
  const T = ids.length;
  const hs = C / NH;
  const ln = (x: Float64Array, g: Float32Array, b: Float32Array) => {
    const out = new Float64Array(x.length);
    for (let t = 0; t < T; t++) {
      let mean = 0;
      for (let i = 0; i < C; i++) mean += x[t * C + i] as number;
      mean /= C;
      let v = 0;
      for (let i = 0; i < C; i++) v += ((x[t * C + i] as number) - mean) ** 2;
      v /= C;
      for (let i = 0; i < C; i++) out[t * C + i] = (((x[t * C + i] as number) - mean) / Math.sqrt(v + 1e-5)) * (g[i] as number) + (b[i] as number);
    }
    return out;
  };
  const conv1d = (x: Float64Array, inDim: number, W: Float32Array, b: Float32Array, outDim: number) => {
    const out = new Float64Array(T * outDim);
    for (let t = 0; t < T; t++)
      for (let o = 0; o < outDim; o++) {
        let s = b[o] as number;
        for (let i = 0; i < inDim; i++) s += (x[t * inDim + i] as number) * (W[i * outDim + o] as number);
        out[t * outDim + o] = s;
      }
    return out;
  };
  const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  const x = new Float64Array(T * C);
  const wte = w('wte.weight');
  const wpe = w('wpe.weight');
  for (let t = 0; t < T; t++) for (let i = 0; i < C; i++) x[t * C + i] = (wte[(ids[t] as number) * C + i] as number) + (wpe[t * C + i] as number);
  for (let l = 0; l < L; l++) {
    const h = `h.${l}.`;
    const a = ln(x, w(`${h}ln_1.weight`), w(`${h}ln_1.bias`));
    const qkv = conv1d(a, C, w(`${h}attn.c_attn.weight`), w(`${h}attn.c_attn.bias`), 3 * C);
    const y = new Float64Array(T * C);
    for (let head = 0; head < NH; head++) {
      for (let t = 0; t < T; t++) {
        const scores: number[] = [];
        for (let s = 0; s <= t; s++) {
          let d = 0;
          for (let i = 0; i < hs; i++) d += (qkv[t * 3 * C + head * hs + i] as number) * (qkv[s * 3 * C + C + head * hs + i] as number);
          scores.push(d / Math.sqrt(hs));
        }
        const m = Math.max(...scores);
        const e = scores.map((v) => Math.exp(v - m));
        const z = e.reduce((p, q) => p + q, 0);
        for (let i = 0; i < hs; i++) {
          let acc = 0;
          for (let s = 0; s <= t; s++) acc += ((e[s] as number) / z) * (qkv[s * 3 * C + 2 * C + head * hs + i] as number);
          y[t * C + head * hs + i] = acc;
        }
      }
    }
    const proj = conv1d(y, C, w(`${h}attn.c_proj.weight`), w(`${h}attn.c_proj.bias`), C);
    for (let i = 0; i < x.length; i++) x[i] = (x[i] as number) + (proj[i] as number);
    const m = ln(x, w(`${h}ln_2.weight`), w(`${h}ln_2.bias`));
    const f = conv1d(m, C, w(`${h}mlp.c_fc.weight`), w(`${h}mlp.c_fc.bias`), 4 * C).map(gelu);
    const out = conv1d(f, 4 * C, w(`${h}mlp.c_proj.weight`), w(`${h}mlp.c_proj.bias`), C);
    for (let i = 0; i < x.length; i++) x[i] = (x[i] as number) + (out[i] as number);
  }
  const fin = ln(x, w('ln_f.weight'), w('ln_f.bias'));
  const logits = new Float64Array(T * V);
  for (let t = 0; t < T; t++)
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let i = 0; i < C; i++) s += (fin[t * C + i] as number) * (wte[v * C + i] as number);
      logits[t * V + v] = s;
    }
  return logits;
}

/** A tiny GPT-2 folder as the Hub has them: bare names, attention-mask buffers, HF config keys. */
function hubStyleFolder() {
  const tensors = new Map<string, NamedTensor>();
  gpt2Table().forEach(([name, shape], i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const isGain = name.endsWith('ln_1.weight') || name.endsWith('ln_2.weight') || name.endsWith('ln_f.weight');
    const data = isGain ? rand(n, 100 + i, 0.3).map((v) => 1 + v) : rand(n, 100 + i, 0.5);
    tensors.set(name.replace('transformer.', ''), { dtype: 'F32', shape, data });
  });
  for (let l = 0; l < L; l++) tensors.set(`h.${l}.attn.bias`, { dtype: 'F32', shape: [1, 1, P, P], data: new Float32Array(P * P).fill(1) });
  const tok = CharTokenizer.train('abcdefghijk');
  const config = {
    activation_function: 'gelu_new',
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    n_ctx: P,
    n_embd: C,
    n_head: NH,
    n_layer: L,
    n_positions: P,
    vocab_size: V,
    layer_norm_epsilon: 1e-5,
    bos_token_id: 11,
    eos_token_id: 11,
  };
  return {
    tensors,
    files: { 'model.safetensors': encodeSafetensors(tensors, { format: 'pt' }), 'config.json': enc(config), 'tokenizer.json': enc(tok.toJSON()) },
  };
}

describe('importing a GPT-2 folder', () => {
  it('computes the logits of a plain-loop GPT-2 forward pass', () => {
    const { tensors, files } = hubStyleFolder();
    const folder = readModelFolder(files);
    const model = Transformer.fromWeights(folder.config, folder.weights);
    const ids = Array.from(randomTokens(P, V, 7));
    const ours = tf.tidy(() => model.forward(tf.tensor2d(ids, [1, P], 'int32')).dataSync());
    const ref = referenceForward((n) => tensors.get(n)?.data as Float32Array, ids);
    for (let i = 0; i < ref.length; i++) expect(Math.abs((ours[i] as number) - (ref[i] as number)), `logit ${i}`).toBeLessThan(2e-4);
    model.dispose();
  });

  it('exports the same tensors, byte for byte, under GPT-2 names', () => {
    const { tensors, files } = hubStyleFolder();
    const folder = readModelFolder(files);
    const model = Transformer.fromWeights(folder.config, folder.weights);
    const out = exportModel(model, folder.tokenizer);
    const back = decodeSafetensors(out['model.safetensors'] as Uint8Array).tensors;
    for (const [name] of gpt2Table()) {
      const a = tensors.get(name.replace('transformer.', ''))?.data as Float32Array;
      const b = back.get(name)?.data as Float32Array;
      expect(Buffer.from(b.buffer, b.byteOffset, b.byteLength).equals(Buffer.from(a.buffer, a.byteOffset, a.byteLength)), name).toBe(true);
    }
    model.dispose();
  });

  it('refuses what GPT-2 files can hold but Crucible cannot run, naming the field', () => {
    const { files } = hubStyleFolder();
    const cfg = JSON.parse(new TextDecoder().decode(files['config.json']));
    expect(() => readModelFolder({ ...files, 'config.json': enc({ ...cfg, activation_function: 'relu' }) })).toThrow(/activation_function "relu"/);
    expect(() => readModelFolder({ ...files, 'config.json': enc({ ...cfg, model_type: 'llama' }) })).toThrow(/model_type must be "gpt2"/);
    expect(() => readModelFolder({ ...files, 'config.json': enc({ ...cfg, n_embd: 16 }) })).toThrow(
      /wte.weight has shape \[12,8\], config.json implies \[12,16\]/,
    );
  });
});

describe('exporting a Crucible GPT model', () => {
  const tok = CharTokenizer.train('abc', DEFAULT_SPECIAL_TOKENS);
  const cfg = modelConfig({ arch: 'gpt', nLayer: L, nHead: NH, dModel: C, blockSize: P }, tok.vocabSize);

  it("uses GPT-2's names, shapes and orientation, metadata format pt, and GPT-2's config keys", () => {
    expect(cfg.vocabSize).toBe(11);
    const model = Transformer.create({ ...cfg, vocabSize: V }, 3);
    const files = exportModel(model, CharTokenizer.train('abcd', DEFAULT_SPECIAL_TOKENS));
    const { tensors, metadata } = decodeSafetensors(files['model.safetensors'] as Uint8Array);
    expect(metadata.format).toBe('pt');
    expect(new Map([...tensors].map(([n, t]) => [n, t.shape]))).toEqual(new Map(gpt2Table()));
    // orientation: GPT-2's forward over the exported tensors gives the model's own logits
    const ids = Array.from(randomTokens(P, V, 5));
    const ours = tf.tidy(() => model.forward(tf.tensor2d(ids, [1, P], 'int32')).dataSync());
    const ref = referenceForward((n) => tensors.get(`transformer.${n}`)?.data as Float32Array, ids);
    for (let i = 0; i < ref.length; i++) expect(Math.abs((ours[i] as number) - (ref[i] as number))).toBeLessThan(1e-4);
    const config = JSON.parse(new TextDecoder().decode(files['config.json']));
    expect(config).toMatchObject({
      model_type: 'gpt2',
      architectures: ['GPT2LMHeadModel'],
      n_embd: C,
      n_layer: L,
      n_head: NH,
      n_positions: P,
      vocab_size: V,
      activation_function: 'gelu_new',
      layer_norm_epsilon: 1e-5,
      eos_token_id: 4,
      tie_word_embeddings: true,
    });
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']) expect(files[f], f).toBeDefined();
    const tc = JSON.parse(new TextDecoder().decode(files['tokenizer_config.json']));
    expect(tc).toMatchObject({ eos_token: '<|endoftext|>', unk_token: '<|unk|>', pad_token: '<|pad|>' });
    model.dispose();
  });

  it('a model without biases exports zero biases and computes the same function', () => {
    const nb = Transformer.create({ ...cfg, vocabSize: V, bias: false }, 4);
    const files = exportModel(nb, tok);
    const { tensors } = decodeSafetensors(files['model.safetensors'] as Uint8Array);
    expect(new Map([...tensors].map(([n, t]) => [n, t.shape]))).toEqual(new Map(gpt2Table()));
    expect([...(tensors.get('transformer.h.0.attn.c_attn.bias')?.data ?? [])].every((v) => v === 0)).toBe(true);
    const ids = Array.from(randomTokens(P, V, 6));
    const ours = tf.tidy(() => nb.forward(tf.tensor2d(ids, [1, P], 'int32')).dataSync());
    const ref = referenceForward((n) => tensors.get(`transformer.${n}`)?.data as Float32Array, ids);
    for (let i = 0; i < ref.length; i++) expect(Math.abs((ours[i] as number) - (ref[i] as number))).toBeLessThan(1e-4);
    nb.dispose();
  });
});
