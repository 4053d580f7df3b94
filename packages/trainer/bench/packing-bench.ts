// Sample packing against one example per row, on short supervised examples: Tiny Shakespeare's
// lines in pairs (a line as the prompt, the next as the completion, about 80 characters together),
// gpt-micro with a character tokenizer, block 256, batch 8. Both train the same examples (drawn
// at random, the same seed); unpacked rows are padded to the block, packed rows hold as many
// whole examples as fit, with attention and positions per example. Prints ms/iter, examples/s,
// trained (non-padding) tokens/s and the speed-up, and a Markdown row for BENCHMARKS.md.
// Usage: npm run bench:packing [-- --steps 20] [-- --block 256]
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { variableGrads } from '../src/backprop';
import * as T from '../src/index';
import { loadCorpus } from './corpus';

const arg = (k: string, d: number) => {
  const i = process.argv.indexOf(k);
  return i >= 0 ? Number(process.argv[i + 1]) : d;
};
const STEPS = arg('--steps', 20);
const BLOCK = arg('--block', 256);
const B = 8;

const choice = await T.initBackend((process.env.TFJS_BACKEND as T.BackendName) ?? 'auto');
const text = loadCorpus(readFileSync).slice(0, 400_000);
const tok = T.trainTokenizer(text, { type: 'char' });
const eot = tok.special('eot') as number;
const lines = text.split('\n').filter((l) => l.trim().length > 0);
const examples: T.PackedExample[] = [];
for (let i = 0; i + 1 < lines.length; i += 2) {
  const prompt = tok.encode(`${lines[i]}\n`);
  const answer = [...tok.encode(lines[i + 1] as string), eot];
  examples.push({
    tokens: Int32Array.from([...prompt, ...answer]),
    weights: Float32Array.from([...prompt.map(() => 0), ...answer.map(() => 1)]),
  });
}
const meanLen = examples.reduce((s, e) => s + e.tokens.length, 0) / examples.length;

interface Result {
  msPerIter: number;
  examplesPerSec: number;
  tokensPerSec: number;
  fill: number;
}

function run(packed: boolean): Result {
  const model = T.Transformer.create(T.modelConfig('gpt-micro', tok.vocabSize, { blockSize: BLOCK }), 1);
  const vars = [...model.trainable().values()];
  const optimizer = new T.Optimizer({ ...T.DEFAULT_OPTIMIZER });
  const rng = new T.Rng(7);
  const draws = function* () {
    for (;;) yield rng.int(examples.length);
  };
  const times: number[] = [];
  let trained = 0;
  let used = 0;
  for (let s = 0; s < STEPS + 2; s++) {
    const batch = T.packRows(examples, draws(), B, BLOCK, packed ? Number.POSITIVE_INFINITY : 1);
    const t0 = performance.now();
    const { value, grads } = variableGrads(() => T.batchLoss(model, batch, true), vars);
    const named = new Map([...model.trainable()].map(([n, v]) => [n, grads[v.name] as tf.Tensor]));
    optimizer.step(model.trainable(), named, 1e-3, 1);
    value.dispose();
    tf.dispose(Object.values(grads));
    const ms = performance.now() - t0;
    if (s >= 2) {
      times.push(ms);
      trained += batch.examples;
      used += batch.packing?.segments.filter((x) => x >= 0).length ?? 0;
    }
  }
  model.dispose();
  optimizer.dispose();
  const total = times.reduce((a, b) => a + b, 0);
  times.sort((a, b) => a - b);
  return {
    msPerIter: times[Math.floor(times.length / 2)] as number,
    examplesPerSec: (trained * 1000) / total,
    tokensPerSec: (used * 1000) / total,
    fill: used / (STEPS * B * BLOCK),
  };
}

const unpacked = run(false);
const packed = run(true);
console.error(`backend ${choice.name}; ${examples.length} examples, mean ${meanLen.toFixed(0)} tokens`);
console.log(`\ngpt-micro, block ${BLOCK}, batch ${B}, ${STEPS} timed steps, examples of ${meanLen.toFixed(0)} tokens on average\n`);
console.log('| layout | ms/iter | examples/s | trained tokens/s | rows filled |');
console.log('|---|---|---|---|---|');
for (const [name, r] of [
  ['one example per row', unpacked],
  ['packed', packed],
] as const) {
  console.log(`| ${name} | ${r.msPerIter.toFixed(0)} | ${r.examplesPerSec.toFixed(1)} | ${r.tokensPerSec.toFixed(0)} | ${(100 * r.fill).toFixed(0)}% |`);
}
console.log(`\nspeed-up (examples/s): ${(packed.examplesPerSec / unpacked.examplesPerSec).toFixed(2)}x`);
