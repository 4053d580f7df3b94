// LoRA and bottleneck adapters: the adapted model starts equal to its base, training moves only
// the adapter parameters, the merged export computes the same function, and the trainable
// parameter counts equal counts worked out by hand.
import { CharTokenizer, decodeSafetensors, loraFromPeft, mergeLora, readModelFolder, storedConfig, weightBytes } from '@crucible/model-files';
import type { ModelConfig, PeftConfig } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeCheckpoint, exportModel } from './checkpoint';
import { modelConfig } from './config';
import { Transformer } from './model';
import { gradCheck, randomTokens, scaleParams, tinyLlamaConfig, useBackend } from './test-helpers';
import { defaultTrainConfig, Trainer } from './train';

beforeAll(useBackend);

const text = 'To be, or not to be, that is the question:\nWhether tis nobler in the mind to suffer\n'.repeat(20);
const tok = CharTokenizer.train(text, ['<|endoftext|>']);
const ids = Int32Array.from(tok.encode(text));
const C = 16;
const base: ModelConfig = modelConfig({ arch: 'gpt', nLayer: 2, nHead: 2, dModel: C, blockSize: 12 }, tok.vocabSize);
const LORA: PeftConfig = { type: 'lora', rank: 4, alpha: 8, dropout: 0, targets: ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'] };
const ADAPTER: PeftConfig = { type: 'adapter', size: 3 };

function logits(m: Transformer, x: Int32Array, T = 12): Float32Array {
  return tf.tidy(() => m.forward(tf.tensor2d(x, [x.length / T, T], 'int32')).dataSync() as Float32Array);
}

function adapted(peft: PeftConfig, seed = 5) {
  const b = Transformer.create(base, 1);
  scaleParams(b, 5); // a base whose outputs are far from uniform
  const m = Transformer.create({ ...base, peft }, seed, b.weights());
  return { b, m };
}

function train(m: Transformer, steps = 12) {
  const cfg = defaultTrainConfig(m.config, {
    maxSteps: steps,
    batchSize: 4,
    evalInterval: 0,
    evalBatches: 1,
    schedule: { kind: 'constant', lr: 1e-2, minLr: 1e-2, warmupSteps: 0, decaySteps: steps },
  });
  const t = new Trainer(m, tok, cfg, { train: ids.subarray(0, 1200), val: ids.subarray(1200) });
  t.baseModel = 'base-test';
  for (let i = 0; i < steps; i++) t.trainStep();
  return t;
}

describe.each([
  ['LoRA', LORA],
  ['bottleneck adapters', ADAPTER],
] as const)('%s', (_name, peft) => {
  it('gives exactly the base model outputs before the first update', () => {
    const { b, m } = adapted(peft);
    const x = randomTokens(24, tok.vocabSize, 9);
    expect(logits(m, x)).toEqual(logits(b, x));
    b.dispose();
    m.dispose();
  });

  it('trains only the adapter parameters: every base weight is unchanged and the outputs move', () => {
    const { b, m } = adapted(peft);
    const before = b.weights();
    const x = randomTokens(24, tok.vocabSize, 9);
    const l0 = logits(m, x);
    const t = train(m);
    for (const [name, w] of before) expect(m.param(name).dataSync(), name).toEqual(w.data);
    const l1 = logits(m, x);
    expect(Math.max(...l1.map((v, i) => Math.abs(v - (l0[i] as number))))).toBeGreaterThan(1e-3);
    expect([...t.optimizer.m.keys()].every((n) => n.includes('.lora_') || n.includes('.adapter_'))).toBe(true);
    t.dispose();
    b.dispose();
    m.dispose();
  });

  it('checkpoints hold only adapter tensors and resume on the base weights', () => {
    const { b, m } = adapted(peft);
    const t = train(m, 3);
    const bytes = t.checkpoint();
    const names = [...decodeSafetensors(bytes).tensors.keys()];
    expect(names.length).toBeGreaterThan(0);
    expect(names.every((n) => n.includes('.lora_') || n.includes('.adapter_'))).toBe(true);
    expect(() => decodeCheckpoint(bytes)).toThrow(/adapter weights only; load it with the weights of its base model base-test/);
    const back = decodeCheckpoint(bytes, b.weights());
    const x = randomTokens(24, tok.vocabSize, 4);
    expect(logits(back.model, x)).toEqual(logits(m, x));
    expect(back.baseModel).toBe('base-test');
    for (const mod of [back.model, b, m]) mod.dispose();
    t.dispose();
  });

  it('has analytic gradients that match finite differences on the adapter parameters', () => {
    const { b, m } = adapted(peft);
    for (const [, p] of m.params) if (p.name.includes('lora_B') || p.name.includes('.up.')) p.assign(tf.randomNormal(p.shape, 0, 0.5, 'float32', 3));
    const names = [...m.trainable().keys()].filter((n) => n.startsWith('h.1.'));
    expect(gradCheck(m, names, 2, 12)).toBeGreaterThan(0);
    b.dispose();
    m.dispose();
  });
});

describe('trainable parameter counts', () => {
  it('LoRA: rank x (in + out) per adapted layer', () => {
    const { b, m } = adapted(LORA);
    const H = 4 * C;
    const perLayer = 4 * (C + 3 * C) + 4 * (C + C) + 4 * (C + H) + 4 * (H + C);
    const n = [...m.trainable().values()].reduce((s, p) => s + p.size, 0);
    expect(n).toBe(2 * perLayer);
    b.dispose();
    m.dispose();
  });

  it('adapters: two bottlenecks of (C x m + m + m x C + C) per layer', () => {
    const { b, m } = adapted(ADAPTER);
    const perAdapter = C * 3 + 3 + 3 * C + C;
    const n = [...m.trainable().values()].reduce((s, p) => s + p.size, 0);
    expect(n).toBe(2 * 2 * perAdapter);
    b.dispose();
    m.dispose();
  });
});

describe('LoRA export', () => {
  it('merged weights compute what base + adapters compute', () => {
    const { b, m } = adapted(LORA);
    const t = train(m);
    const files = exportModel(m, tok, 'base-test');
    const folder = readModelFolder(files as never);
    expect(folder.config.peft).toBeUndefined();
    const merged = Transformer.fromWeights(folder.config, folder.weights);
    const x = randomTokens(24, tok.vocabSize, 2);
    const a = logits(m, x);
    const c = logits(merged, x);
    for (let i = 0; i < a.length; i++) expect(Math.abs((a[i] as number) - (c[i] as number))).toBeLessThan(1e-4 * (1 + Math.abs(a[i] as number)));
    expect(Object.keys(files)).toEqual(expect.arrayContaining(['adapter_model.safetensors', 'adapter_config.json']));
    for (const mod of [merged, b, m]) mod.dispose();
    t.dispose();
  });
});

describe('a LoRA model served unmerged (Transformer.withLora on a shared base)', () => {
  const llama = tinyLlamaConfig(tok.vocabSize);
  it.each([
    ['gpt', base, LORA],
    ['llama', llama, { type: 'lora', rank: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj', 'o_proj', 'down_proj'] } as PeftConfig],
  ] as const)(
    '%s: the adapter read from its PEFT files on the base computes the merged model within 1e-4, and costs only its own bytes',
    (arch, config, peft) => {
      const b = Transformer.create(config, 1);
      scaleParams(b, 3);
      const m = Transformer.create({ ...config, peft }, 7, b.weights());
      // adapter values far from their initialization (B starts at zero)
      for (const [name, v] of m.params) if (name.includes('.lora_')) v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', name.length));
      const files = exportModel(m, tok, 'base-test');
      const adapterConfig = JSON.parse(new TextDecoder().decode(files['adapter_config.json'])) as Record<string, unknown>;
      const { peft: read, weights } = loraFromPeft(adapterConfig, decodeSafetensors(files['adapter_model.safetensors'] as Uint8Array).tensors, arch);
      expect(read).toMatchObject({ rank: 4, alpha: 8, targets: (peft as { targets: string[] }).targets });
      const unmerged = Transformer.withLora(b, read, weights);
      const merged = Transformer.fromWeights(storedConfig(m.config), mergeLora(m.config, m.weights()));
      const x = randomTokens(24, tok.vocabSize, 2);
      const T = arch === 'gpt' ? 12 : 8;
      const want = logits(merged, x, T);
      const got = logits(unmerged, x, T);
      const plain = logits(b, x, T);
      let moved = 0;
      for (let i = 0; i < want.length; i++) {
        expect(Math.abs((got[i] as number) - (want[i] as number))).toBeLessThan(1e-4 * (1 + Math.abs(want[i] as number)));
        moved = Math.max(moved, Math.abs((want[i] as number) - (plain[i] as number)));
      }
      expect(moved).toBeGreaterThan(0.1); // the adapter changes the outputs: the comparison means something
      // the base's tensors are shared, not copied; disposing the adapter model leaves the base whole
      expect(unmerged.param(arch === 'gpt' ? 'wte.weight' : 'model.embed_tokens.weight')).toBe(
        b.param(arch === 'gpt' ? 'wte.weight' : 'model.embed_tokens.weight'),
      );
      expect(unmerged.ownBytes()).toBe(weightBytes({ ...config, peft }) - weightBytes(config));
      expect(unmerged.trainable().size).toBe(0);
      unmerged.dispose();
      expect(logits(b, x, T)).toEqual(plain);
      for (const mod of [merged, b, m]) mod.dispose();
    },
  );

  it('refuses an adapter whose matrices do not fit the base', () => {
    const b = Transformer.create(base, 1);
    const m = Transformer.create({ ...base, dModel: 8, peft: LORA }, 7);
    expect(() => Transformer.withLora(b, LORA as never, m.weights())).toThrow(/shape \[8,4\] does not match the base's \[16,4\]/);
    b.dispose();
    m.dispose();
  });
});
