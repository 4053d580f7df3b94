// Per-op profile of training steps: where the time goes. Default: the nanoGPT CPU configuration.
// Usage: npm run bench:ops [-- --steps 3] [-- --no-native] [-- --threads 1] [-- --precision bf16]
//        [-- --preset gpt2-small --batch 4 --block 1024] [-- --vocab 50257] (TFJS_BACKEND=wasm for the wasm backend)
// (--vocab: a model vocabulary larger than the corpus's characters, for the head's share of a step)
import { readFileSync } from 'node:fs';
import * as T from '../src/index';
import { loadCorpus } from './corpus';

const opt = (k: string) => (process.argv.includes(k) ? process.argv[process.argv.indexOf(k) + 1] : undefined);
const steps = Number(opt('--steps')) || 3;
await T.initBackend((process.env.TFJS_BACKEND as T.BackendName) ?? 'auto', console.log, {
  nativeKernels: !process.argv.includes('--no-native'),
  nativeThreads: Number(opt('--threads') ?? 1),
});
const text = loadCorpus(readFileSync);
const tok = T.trainTokenizer(text, { type: 'char', specialTokens: [] });
const data = T.trainValSplit(Int32Array.from(tok.encode(text)));
const mc = T.modelConfig((opt('--preset') ?? 'gpt-nano') as T.PresetName, Math.max(tok.vocabSize, Number(opt('--vocab') ?? 0)));
const shape = { ...(opt('--batch') ? { batchSize: Number(opt('--batch')) } : {}), ...(opt('--block') ? { seqLen: Number(opt('--block')) } : {}) };
const trainer = new T.Trainer(
  T.Transformer.create(mc),
  tok,
  T.defaultTrainConfig(mc, { evalBatches: 1, ...shape, precision: opt('--precision') === 'bf16' ? 'bf16' : 'float32' }),
  data,
);
trainer.trainStep(); // warm up kernels
const byOp = new Map<string, { ms: number; calls: number }>();
let wall = 0;
for (let i = 0; i < steps; i++) {
  const t0 = performance.now();
  const info = await T.tf.profile(() => {
    trainer.trainStep();
  });
  wall += performance.now() - t0;
  for (const k of info.kernels) {
    const e = byOp.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    e.calls += 1;
    byOp.set(k.name, e);
  }
}
const rows = [...byOp].sort((a, b) => b[1].ms - a[1].ms);
const total = rows.reduce((s, [, e]) => s + e.ms, 0);
console.log(
  `backend ${T.backendChoice()?.name} (matMul: ${T.backendChoice()?.matmul}); per step: wall ${(wall / steps).toFixed(0)} ms (profiled), kernel time ${(total / steps).toFixed(0)} ms`,
);
console.log('op                      ms/step  calls/step  share');
for (const [name, e] of rows.slice(0, 20)) {
  console.log(`${name.padEnd(22)} ${(e.ms / steps).toFixed(1).padStart(8)} ${String(e.calls / steps).padStart(10)}  ${((100 * e.ms) / total).toFixed(1)}%`);
}
