import { readFileSync } from 'node:fs';
import { defaultTrainConfig, initBackend, modelConfig, Trainer, Transformer, trainTokenizer } from '@crucible/trainer';
import { defaultShortWindows } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';

await initBackend('auto');
const v = process.argv[2] ?? 'base';
const text = process.env.ABC ? 'abcdefghijklmnopqrstuvwxyz'.repeat(2000) : readFileSync('/work/main/data/tinyshakespeare.txt', 'utf8').slice(0, 60_000);
const tok = trainTokenizer(text, { type: 'char' });
const ids = Int32Array.from(tok.encode(text));
const T = Number(process.argv[3] ?? 64);
const STEPS = Number(process.argv[4] ?? 300);
const mc = modelConfig({ arch: 'bert', nLayer: 2, nHead: 4, dModel: 64, blockSize: T }, tok.vocabSize);
const model = Transformer.create(mc, 7);
if (v.includes('sin')) {
  const C = 64;
  const d = new Float32Array(T * C);
  for (let p = 0; p < T; p++)
    for (let i = 0; i < C / 2; i++) {
      const w = 1 / 10000 ** ((2 * i) / C);
      d[p * C + 2 * i] = Math.sin(p * w);
      d[p * C + 2 * i + 1] = Math.cos(p * w);
    }
  const scale = v.includes('big') ? 1 : 0.02 / Math.SQRT1_2;
  model.param('wpe.weight').assign(tf.mul(tf.tensor2d(d, [T, C]), scale) as tf.Tensor2D);
}
if (v.includes('qk')) {
  for (const [n, p] of model.params) if (n.endsWith('attn.c_attn.weight')) p.assign(tf.mul(p, 1 / Math.sqrt(64) / 0.02));
}
if (v.includes('all')) {
  for (const [n, p] of model.params) if (p.rank === 2 && !n.startsWith('w')) p.assign(tf.mul(p, 1 / Math.sqrt(64) / 0.02));
}
if (v.includes('loc')) {
  const C = 64; const d = new Float32Array(T * C);
  for (let p = 0; p < T; p++) for (let i = 0; i < C / 2; i++) { const w = 1 / 10000 ** ((2 * i) / C); d[p * C + 2 * i] = Math.sin(p * w); d[p * C + 2 * i + 1] = Math.cos(p * w); }
  model.param('wpe.weight').assign(tf.mul(tf.tensor2d(d, [T, C]), 0.02 / Math.SQRT1_2) as tf.Tensor2D);
  const beta = v.includes('b2') ? 2 : 1;
  for (let l = 0; l < 2; l++) {
    const w = model.param(`h.${l}.attn.c_attn.weight`);
    const eye = tf.mul(tf.eye(C), beta);
    const add = tf.concat([eye, eye, tf.zeros([C, C])], 1);
    w.assign(tf.add(w, add) as tf.Tensor2D);
  }
}
const lr = v.includes('lr5') ? 5e-3 : 2e-3;
const cfg = defaultTrainConfig(mc, {
  objective: 'mlm',
  mlmProbability: v.includes('m40') ? 0.4 : 0.15,
  maxSteps: STEPS,
  batchSize: 16,
  evalInterval: 100,
  evalBatches: 8,
  logInterval: 1000,
  shortWindows: v.includes('short') ? defaultShortWindows(STEPS, T) : undefined,
  schedule: { kind: 'cosine', lr, minLr: lr / 10, warmupSteps: 20, decaySteps: STEPS },
});
const split = Math.floor(ids.length * 0.9);
const tr = new Trainer(model, tok, cfg, { train: ids.subarray(0, split), val: ids.subarray(split) });
await tr.run({ onEval: (e) => console.log(`${v} T${T} step ${e.step} loss ${e.loss.toFixed(3)} acc ${(100 * e.accuracy).toFixed(1)}`) });
