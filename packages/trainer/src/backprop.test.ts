// The trainer's backward walk (backprop.ts) against TensorFlow.js's own tf.variableGrads: the same
// gradients, bit for bit, on GPT and llama-architecture models (full and LoRA), and memory handed
// back as the walk goes where tfjs keeps everything to the end.
import { decoderConfigFromHf } from '@crucible/model-files';
import type { LoraTarget } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { variableGrads } from './backprop';
import { Transformer } from './model';
import { randomTokens, tinyConfig, useBackend } from './test-helpers';
import { batchLoss } from './train';

beforeAll(useBackend);

const LLAMA = decoderConfigFromHf({
  model_type: 'qwen2',
  hidden_size: 24,
  intermediate_size: 40,
  num_attention_heads: 6,
  num_key_value_heads: 2,
  num_hidden_layers: 2,
  vocab_size: 37,
  max_position_embeddings: 32,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: true,
});

function both(model: Transformer) {
  const B = 2;
  const T = 6;
  const x = randomTokens(B * T, model.config.vocabSize, 3);
  const y = randomTokens(B * T, model.config.vocabSize, 4);
  const vars = [...model.trainable().values()];
  const f = () => batchLoss(model, { B, T, x, y }, true, 7);
  const read = (r: { value: tf.Scalar; grads: tf.NamedTensorMap }) => {
    const out = { loss: r.value.dataSync()[0], grads: Object.fromEntries(Object.entries(r.grads).map(([n, g]) => [n, Array.from(g.dataSync())])) };
    tf.dispose([r.value, ...Object.values(r.grads)]);
    return out;
  };
  const engine = read(tf.variableGrads(f, vars)); // first: the model's cached masks and tables are made here
  const before = tf.memory().numTensors;
  const ours = read(variableGrads(f, vars));
  expect(tf.memory().numTensors, 'tensors left behind').toBe(before);
  return { ours, engine };
}

describe('the backward walk that frees as it goes', () => {
  it.each([
    ['GPT, full', () => Transformer.create(tinyConfig(), 1)],
    [
      'GPT, LoRA',
      () => Transformer.create({ ...tinyConfig(), peft: { type: 'lora', rank: 2, alpha: 4, dropout: 0.1, targets: ['attn.c_attn', 'mlp.c_fc'] } }, 1),
    ],
    ['Qwen2-shaped, full', () => Transformer.create(LLAMA, 2)],
    [
      'Qwen2-shaped, LoRA',
      () =>
        Transformer.create({ ...LLAMA, peft: { type: 'lora', rank: 2, alpha: 4, dropout: 0, targets: ['q_proj', 'v_proj', 'up_proj'] as LoraTarget[] } }, 2),
    ],
  ])('gives tf.variableGrads own gradients, bit for bit, and leaves no tensor behind (%s)', (_, make) => {
    const model = make();
    for (const [n, v] of model.params) if (n.includes('lora_B') || n.includes('lora_b')) v.assign(tf.randomNormal(v.shape, 0, 0.2, 'float32', 3));
    const { ours, engine } = both(model);
    expect(ours.loss).toBe(engine.loss);
    expect(Object.keys(ours.grads).sort()).toEqual(Object.keys(engine.grads).sort());
    for (const [n, g] of Object.entries(engine.grads)) expect(ours.grads[n], n).toEqual(g);
    model.dispose();
  });

  it('has freed the later nodes activations and gradients when it reaches the first node', () => {
    // a chain of 20 products of [64, 64] matrices; an identity op at its start records the bytes
    // alive when its gradient runs, the last step of either walk
    const w = tf.variable(tf.randomNormal([64, 64], 0, 0.1, 'float32', 1));
    const probe = (at: { bytes: number }) =>
      tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
        save([]);
        return {
          value: tf.clone(x),
          gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
            at.bytes = tf.memory().numBytes;
            return [tf.clone(dy as tf.Tensor)];
          },
        };
      }) as unknown as Parameters<typeof tf.customGrad>[0]);
    const run = (walk: typeof variableGrads) => {
      const at = { bytes: 0 };
      const f = () => {
        let h = tf.matMul(tf.ones([64, 64]), w);
        h = (probe(at) as (x: tf.Tensor) => tf.Tensor)(h);
        for (let i = 0; i < 20; i++) h = tf.tanh(tf.matMul(h, w));
        return tf.sum(h) as tf.Scalar;
      };
      const r = walk(f, [w]);
      tf.dispose([r.value, ...Object.values(r.grads)]);
      return at.bytes;
    };
    const base = tf.memory().numBytes;
    const ours = run(variableGrads) - base;
    const engine = run(tf.variableGrads) - base;
    // tfjs still holds 20 layers of inputs, outputs and gradients (16 KB each); ours a few
    expect(engine).toBeGreaterThan(20 * 3 * 16384);
    expect(ours).toBeLessThan(engine / 4);
    w.dispose();
  });

  it('hands each gradient to onGradient once, final, before the walk has ended (the output layer first)', () => {
    const model = Transformer.create(tinyConfig(), 4);
    const B = 2;
    const T = 6;
    const x = randomTokens(B * T, model.config.vocabSize, 5);
    const y = randomTokens(B * T, model.config.vocabSize, 6);
    const vars = [...model.trainable().values()];
    const seen: [string, number[]][] = [];
    const r = variableGrads(
      () => batchLoss(model, { B, T, x, y }, true, 7),
      vars,
      (name, g) => seen.push([name, Array.from(g.dataSync())]),
    );
    const names = seen.map(([n]) => n);
    expect(new Set(names).size).toBe(names.length);
    expect(names.sort()).toEqual(Object.keys(r.grads).sort());
    for (const [n, g] of seen) expect(g, n).toEqual(Array.from((r.grads[n] as tf.Tensor).dataSync()));
    // the walk runs from the loss back: the last block's weights are final before the first block's
    const order = seen.map(([n]) => n);
    const at = (part: string) => order.findIndex((n) => n.includes(part));
    expect(at(`h.${model.config.nLayer - 1}.`)).toBeLessThan(at('h.0.'));
    tf.dispose([r.value, ...Object.values(r.grads)]);
    model.dispose();
  });
});
