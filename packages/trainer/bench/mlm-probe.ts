// Probe: how fast does a bert-mini masked LM leave the "predict a space" plateau?
import { readFileSync } from 'node:fs';
import { trainTokenizer } from '@crucible/model-files';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { modelConfig } from '../src/config';
import { trainValSplit } from '../src/data';
import { Transformer } from '../src/model';
import { defaultTrainConfig, Trainer } from '../src/train';

const variant = process.argv[2] ?? 'base';
const steps = Number(process.argv[3] ?? 600);
await initBackend('auto');
const text = readFileSync('/work/shared/data/tinyshakespeare.txt', 'utf8').slice(0, 300_000);
const tok = trainTokenizer(text, { type: 'char' });
const ids = Int32Array.from(tok.encode(text));
const { train, val } = trainValSplit(ids);
const opts: Record<
  string,
  {
    lr: number;
    warm: number;
    mask: number;
    wpeStd?: number;
    bs?: number;
    wd?: number;
    T?: number;
    short?: number;
    qk?: boolean;
    sin?: boolean;
    hold?: number;
    sw?: number;
  }
> = {
  t32: { lr: 1e-3, warm: 60, mask: 0.15, T: 32, bs: 48 },
  curr: { lr: 1e-3, warm: 60, mask: 0.15, short: 0.5 },
  qkcurr: { lr: 1e-3, warm: 60, mask: 0.15, short: 0.5, qk: true },
  qk: { lr: 1e-3, warm: 60, mask: 0.15, qk: true },
  sin: { lr: 1e-3, warm: 60, mask: 0.15, sin: true },
  hold: { lr: 1e-3, warm: 60, mask: 0.15, short: 0.5, hold: 0.25 },
  hold16: { lr: 1e-3, warm: 60, mask: 0.15, short: 0.5, hold: 0.25, sw: 16 },
  curr25: { lr: 1e-3, warm: 60, mask: 0.15, short: 0.25 },
  curr75: { lr: 1e-3, warm: 60, mask: 0.15, short: 0.75 },
  t32m30: { lr: 2e-3, warm: 30, mask: 0.3, T: 32, bs: 48 },
  base: { lr: 1e-3, warm: 60, mask: 0.15 },
  lr3: { lr: 3e-3, warm: 60, mask: 0.15 },
  mask30: { lr: 1e-3, warm: 60, mask: 0.3 },
  lr3mask30: { lr: 3e-3, warm: 30, mask: 0.3 },
  wpe: { lr: 1e-3, warm: 60, mask: 0.15, wpeStd: 0.2 },
  lr3wpe: { lr: 3e-3, warm: 30, mask: 0.15, wpeStd: 0.2 },
};
const o = opts[variant]!;
const mc = modelConfig('bert-mini', tok.vocabSize);
const model = Transformer.create(mc, 1);
if (o.wpeStd) model.param('wpe.weight').assign(tf.randomNormal(model.param('wpe.weight').shape, 0, o.wpeStd, 'float32', 7));
if (o.sin) {
  const C = mc.dModel;
  const T = mc.blockSize;
  const d = new Float32Array(T * C);
  for (let p = 0; p < T; p++)
    for (let i = 0; i < C / 2; i++) {
      const w = 1 / 10000 ** ((2 * i) / C);
      d[p * C + 2 * i] = Math.sin(p * w);
      d[p * C + 2 * i + 1] = Math.cos(p * w);
    }
  model.param('wpe.weight').assign(tf.mul(tf.tensor2d(d, [T, C]), 0.02 / Math.SQRT1_2) as tf.Tensor2D);
}
if (o.qk) for (const [n, p] of model.params) if (n.endsWith('attn.c_attn.weight')) p.assign(tf.mul(p, 1 / Math.sqrt(mc.dModel) / 0.02));
const cfg = defaultTrainConfig(mc, {
  maxSteps: steps,
  ...(o.T ? { seqLen: o.T, batchSize: o.bs } : {}),
  shortWindows: o.short ? { seqLen: o.sw ?? 32, steps: Math.round(o.short * steps), ...(o.hold ? { holdSteps: Math.round(o.hold * steps) } : {}) } : undefined,
  evalInterval: 100,
  evalBatches: 8,
  logInterval: 50,
  checkpointInterval: 0,
  mlmProbability: o.mask,
  schedule: { kind: 'cosine', lr: o.lr, minLr: o.lr / 10, warmupSteps: o.warm, decaySteps: steps },
});
const tr = new Trainer(model, tok, cfg, { train, val });
const t0 = Date.now();
await tr.run({
  onEval: (e) =>
    console.log(`${variant} step ${e.step} loss ${e.loss.toFixed(3)} acc ${(100 * e.accuracy).toFixed(1)}% t=${((Date.now() - t0) / 1000).toFixed(0)}s`),
});
