// The nanoGPT CPU benchmark: character-level Tiny Shakespeare, gpt-nano (4 layers, 4 heads, d 128,
// block 64), batch 12, dropout 0, AdamW lr 1e-3 (beta2 0.99, wd 0.1), warmup 100, cosine to 1e-4
// over 2000 steps, clip 1.0, eval on 20 batches every 250 steps on the last 10% of the text.
// Prints ms/iter, tokens/s, validation losses and peak memory, and a Markdown row for BENCHMARKS.md.
// --precision bf16 runs the steps' products in bf16 (the parity run: its validation losses against float32's).
// Usage: npm run bench:train [-- --max-iters 2000] [-- --no-native] [-- --threads 2] [-- --precision bf16]
import { readFileSync } from 'node:fs';
import type { Precision } from '@crucible/training-config';
import * as T from '../src/index';
import { corpusPath, loadCorpus } from './corpus';
import { flopsPerToken, sgemmPeak, utilisation } from './utilisation';

const arg = (k: string, d: number) => {
  const i = process.argv.indexOf(k);
  return i >= 0 ? Number(process.argv[i + 1]) : d;
};
const maxIters = arg('--max-iters', 2000);
const precision: Precision = process.argv.includes('--precision') ? (process.argv[process.argv.indexOf('--precision') + 1] as Precision) : 'float32';
const choice = await T.initBackend((process.env.TFJS_BACKEND as T.BackendName) ?? 'auto', console.log, {
  nativeKernels: !process.argv.includes('--no-native'),
  nativeThreads: arg('--threads', 1),
});
const backendName = `${choice.name}${choice.matmul === 'native' ? ` + native products (${arg('--threads', 1)} thread)` : ''}${precision === 'bf16' ? ', bf16 products' : ''}`;
const text = loadCorpus(readFileSync);
const tok = T.trainTokenizer(text, { type: 'char', specialTokens: [] });
const data = T.trainValSplit(Int32Array.from(tok.encode(text)));
const mc = T.modelConfig('gpt-nano', tok.vocabSize);
const model = T.Transformer.create(mc, 1337);
const tc = T.defaultTrainConfig(mc, {
  maxSteps: maxIters,
  batchSize: 12,
  evalInterval: 250,
  evalBatches: 20,
  maxGradNorm: 1,
  schedule: { kind: 'cosine', lr: 1e-3, minLr: 1e-4, warmupSteps: 100, decaySteps: 2000 },
  optimizer: { kind: 'adamw', beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 },
  precision,
});
if (tc.precision === 'bf16' && !T.bf16Engine()) throw new Error('--precision bf16: this machine runs no bf16 products');
console.log(`corpus ${corpusPath()} (${text.length} chars, vocab ${tok.vocabSize}); params ${model.numParams()}; backend ${backendName}`);
const trainer = new T.Trainer(model, tok, tc, data);
const times: number[] = [];
const evals: Array<[number, number]> = [];
let peakRss = 0;
const t0 = performance.now();
await trainer.run({
  onStep: (m) => {
    times.push(m.ms);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    if (m.step % 50 === 0 || m.step === 1) {
      console.log(`step ${m.step} loss ${m.loss.toFixed(4)} lr ${m.lr.toExponential(2)} norm ${m.gradNorm.toFixed(3)} ${m.ms.toFixed(0)} ms`);
    }
  },
  onEval: (e) => {
    evals.push([e.step, e.loss]);
    console.log(`eval step ${e.step}: val loss ${e.loss.toFixed(4)} ppl ${e.perplexity.toFixed(2)} acc ${(e.accuracy * 100).toFixed(1)}%`);
  },
});
const wall = (performance.now() - t0) / 1000;
const sorted = [...times].sort((a, b) => a - b);
const median = sorted[Math.floor(sorted.length / 2)] as number;
const tokensPerIter = tc.batchSize * tc.seqLen;
console.log('\n--- result ---');
console.log(`backend: ${backendName}`);
console.log(
  `ms/iter (median): ${median.toFixed(1)}; tokens/s: ${((tokensPerIter * 1000) / median).toFixed(0)}; wall: ${wall.toFixed(0)} s for ${maxIters} iters`,
);
console.log(`peak RSS: ${(peakRss / 2 ** 20).toFixed(0)} MB`);
const flops = flopsPerToken({ params: model.numParams(), trainable: model.numParams(), layers: mc.nLayer, dModel: mc.dModel, seqLen: tc.seqLen });
console.log(`achieved: ${utilisation(flops, (tokensPerIter * 1000) / median, sgemmPeak())}`);
console.log(`val loss: ${evals.map(([s, l]) => `${s}: ${l.toFixed(3)}`).join(', ')}`);
console.log(
  `| ${new Date().toISOString().slice(0, 10)} | ${backendName} | ${maxIters} | ${median.toFixed(0)} | ${((tokensPerIter * 1000) / median).toFixed(0)} | ${wall.toFixed(0)} s | ${(peakRss / 2 ** 20).toFixed(0)} MB | ${evals
    .filter(([s]) => s % 500 === 0)
    .map(([s, l]) => `${s}: ${l.toFixed(3)}`)
    .join(', ')} |`,
);
