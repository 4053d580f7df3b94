// One rank of a data-parallel run on Tiny Shakespeare (char tokens), for the numerics test and
// bench:ddp: `--size 1` is the single-worker reference (no group), else rank `--rank` of `--size`
// joins a Gloo group under `--prefix` in the local Redis. Writes a JSON report to `--out`: the
// loss of every step, step and communication times, and the parameters at every checkpoint.
//   tsx packages/trainer/bench/ddp-rank.ts --rank 0 --size 2 --prefix p --batch 4 --steps 50 --out r0.json
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { PresetName } from '@crucible/training-config';
import * as T from '../src/index';
import { loadCorpus } from './corpus';

const argv = process.argv.slice(2);
const opt = (k: string, d: string) => {
  const i = argv.lastIndexOf(`--${k}`); // the last one given wins
  return i >= 0 ? (argv[i + 1] as string) : d;
};
const rank = Number(opt('rank', '0'));
const size = Number(opt('size', '1'));
const steps = Number(opt('steps', '50'));
const batch = Number(opt('batch', '4'));
const preset = opt('model', 'gpt-nano') as PresetName;
const seqLen = Number(opt('seq', '64'));
const checkpointInterval = Number(opt('checkpoint-interval', '10'));
const out = opt('out', '');
const withParams = !argv.includes('--no-params');

await T.initBackend((process.env.TFJS_BACKEND as T.BackendName) ?? 'auto', () => {}, { nativeThreads: Number(opt('threads', '1')) });
const text = loadCorpus(readFileSync).slice(0, 200_000);
const tok = T.trainTokenizer(text, { type: 'char', specialTokens: [] });
const data = T.trainValSplit(Int32Array.from(tok.encode(text)));
// --lora: LoRA on attention over a frozen base, which every rank must hold the same (a platform
// worker loads the job's base): built from one seed unless --base-per-rank makes them differ
const lora = argv.includes('--lora');
const mc = T.modelConfig(preset, tok.vocabSize, {
  blockSize: seqLen,
  dropout: 0,
  ...(lora ? { peft: { type: 'lora', rank: 4, alpha: 8, dropout: 0, targets: ['attn.c_attn', 'attn.c_proj'] } } : {}),
});
// a full model starts from rank 0's parameters, which reach every rank by broadcast
const seed = lora && !argv.includes('--base-per-rank') ? 1337 : 1337 + rank;
const model = T.Transformer.create(mc, seed);
const tc = T.defaultTrainConfig(mc, {
  maxSteps: steps,
  batchSize: batch,
  gradAccumSteps: Number(opt('accum', '1')),
  seqLen,
  evalInterval: 0,
  logInterval: 1,
  checkpointInterval,
  maxGradNorm: 1,
  precision: 'float32',
  schedule: { kind: 'cosine', lr: 1e-3, minLr: 1e-4, warmupSteps: 5, decaySteps: steps },
});

let parallel: T.DataParallel | undefined;
let group: { close(): void } | undefined;
if (size > 1) {
  // the collectives are the worker's dependency, not the trainer's: loaded here only
  const { gloo, glooMissing } = createRequire(import.meta.url)('@crucible/collectives') as typeof import('@crucible/collectives');
  if (!gloo) throw new Error(glooMissing ?? 'Gloo is absent');
  const g = gloo.connect({ rank, size, host: '127.0.0.1', prefix: opt('prefix', 'ddp'), timeoutMs: 60_000 });
  group = g;
  parallel = new T.DataParallel(g, { checksumInterval: checkpointInterval || 100, overlap: !argv.includes('--no-overlap') });
}

if (argv.includes('--bandwidth')) {
  // allreduce of float32 buffers from 256 KiB to 64 MiB: ms per call, after a warm-up
  const rows: { bytes: number; ms: number }[] = [];
  for (const mib of [0.25, 1, 4, 16, 64]) {
    const buf = new Float32Array((mib * 2 ** 20) / 4).fill(rank + 1);
    parallel?.group.allreduce(buf);
    const reps = mib >= 16 ? 5 : 20;
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) parallel?.group.allreduce(buf);
    rows.push({ bytes: buf.byteLength, ms: (performance.now() - t0) / reps });
  }
  group?.close();
  if (out) writeFileSync(out, JSON.stringify({ rank, size, bandwidth: rows }));
  process.exit(0);
}

const trainer = new T.Trainer(model, tok, tc, data, undefined, parallel);
const failure = (err: unknown) => {
  if (out) writeFileSync(out, JSON.stringify({ rank, size, error: `${(err as Error).name}: ${(err as Error).message}` }));
  process.exit(3);
};
const losses: number[] = [];
const stepMs: number[] = [];
const commMs: number[] = [];
const params: Record<string, Record<string, number[]>> = {};
parallel?.takeCommMs(); // the start's broadcast is not a step's
await trainer
  .run({
    onStep: (m) => {
      losses.push(m.loss);
      stepMs.push(m.ms);
      commMs.push(parallel?.takeCommMs() ?? 0);
    },
    onCheckpoint: (step) => {
      if (!withParams) return;
      params[step] = Object.fromEntries([...model.trainable()].map(([n, v]) => [n, Array.from(v.dataSync())]));
    },
  })
  .catch(failure);
group?.close();
const report = { rank, size, batch, steps, params: model.numParams(), losses, stepMs, commMs, checkpoints: params };
if (out) writeFileSync(out, JSON.stringify(report));
else console.log(JSON.stringify({ ...report, checkpoints: Object.keys(params) }));
