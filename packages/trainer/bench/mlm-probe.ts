// The masked-LM plateau: bert-mini on Tiny Shakespeare (characters), masked-token accuracy on
// fixed 128-token validation batches every 100 steps, for one variant of the start of training.
// Usage: npm run bench:mlm -- <variant> [steps]   (variants below; `hold` is the default schedule)
import { readFileSync } from 'node:fs';
import { trainTokenizer } from '@crucible/model-files';
import { defaultShortWindows } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend';
import { modelConfig } from '../src/config';
import { trainValSplit } from '../src/data';
import { Transformer } from '../src/model';
import { defaultTrainConfig, Trainer } from '../src/train';
import { loadCorpus } from './corpus';

interface Variant {
  description: string;
  lr?: number;
  mask?: number;
  /** Short-window start: hold and growth ends as shares of the steps, and the window length. */
  short?: { hold: number; end: number; seqLen: number } | 'default';
  /** Sinusoidal init of the position embeddings (scaled to the usual 0.02 std). */
  sin?: boolean;
  /** Train and evaluate on 32-token windows throughout (batch 48). */
  t32?: boolean;
}

const VARIANTS: Record<string, Variant> = {
  base: { description: '128-token windows throughout (before the short-window default)' },
  hold: { description: 'the default: 32-token windows to 25% of the steps, growing to 128 by 50%', short: 'default' },
  grow: { description: 'windows growing from 32 at step 0 to 128 at 50%', short: { hold: 0, end: 0.5, seqLen: 32 } },
  jump: { description: '32-token windows to 50%, then 128', short: { hold: 0.5, end: 0.5, seqLen: 32 } },
  hold16: { description: '16-token windows to 25%, growing to 128 by 50%', short: { hold: 0.25, end: 0.5, seqLen: 16 } },
  sin: { description: 'sinusoidal position-embedding init, 128 throughout', sin: true },
  mask30: { description: 'masking 30%', mask: 0.3 },
  t32: { description: '32-token windows throughout (evaluated on 32-token windows)', t32: true },
};

const name = process.argv[2] ?? 'hold';
const steps = Number(process.argv[3] ?? 800);
const v = VARIANTS[name];
if (!v) throw new Error(`unknown variant ${name} (known: ${Object.keys(VARIANTS).join(', ')})`);
await initBackend('auto');
const text = loadCorpus(readFileSync).slice(0, 300_000);
const tok = trainTokenizer(text, { type: 'char' });
const { train, val } = trainValSplit(Int32Array.from(tok.encode(text)));
const mc = modelConfig('bert-mini', tok.vocabSize);
const model = Transformer.create(mc, 1);
if (v.sin) {
  const { dModel: C, blockSize: T } = mc;
  const d = new Float32Array(T * C);
  for (let p = 0; p < T; p++)
    for (let i = 0; i < C / 2; i++) {
      const w = 1 / 10000 ** ((2 * i) / C);
      d[p * C + 2 * i] = Math.sin(p * w);
      d[p * C + 2 * i + 1] = Math.cos(p * w);
    }
  model.param('wpe.weight').assign(tf.mul(tf.tensor2d(d, [T, C]), 0.02 / Math.SQRT1_2) as tf.Tensor2D);
}
const lr = v.lr ?? 1e-3;
const short =
  v.short === 'default'
    ? defaultShortWindows(steps, mc.blockSize)
    : v.short
      ? { seqLen: v.short.seqLen, holdSteps: Math.round(v.short.hold * steps), steps: Math.round(v.short.end * steps) }
      : undefined;
const cfg = defaultTrainConfig(mc, {
  maxSteps: steps,
  evalInterval: 100,
  evalBatches: 8,
  logInterval: 50,
  checkpointInterval: 0,
  mlmProbability: v.mask ?? 0.15,
  shortWindows: short,
  ...(v.t32 ? { seqLen: 32, batchSize: 48 } : {}),
  schedule: { kind: 'cosine', lr, minLr: lr / 10, warmupSteps: 60, decaySteps: steps },
});
console.log(`${name}: ${v.description}; ${steps} steps`);
const trainer = new Trainer(model, tok, cfg, { train, val });
const t0 = Date.now();
await trainer.run({
  onEval: (e) =>
    console.log(
      `${name} step ${e.step}: loss ${e.loss.toFixed(3)}, masked accuracy ${(100 * e.accuracy).toFixed(1)}% (${((Date.now() - t0) / 1000).toFixed(0)} s)`,
    ),
});
