// Fine-tuning methods side by side: full fine-tuning, LoRA (attention only, and all four linear
// layers) and bottleneck adapters of gpt-micro (6 layers, 6 heads, d 384, block 256) on the same
// supervised data (Tiny Shakespeare: a line as the prompt, the next line as the completion), batch 8.
// Each method runs in its own child process so peak memory is its own. Prints ms/iter, tokens/s,
// peak RSS and tensor memory, trainable parameters, checkpoint size and the loss after the run,
// and Markdown rows for BENCHMARKS.md.
// Usage: npm run bench:finetune [-- --steps 30] [-- --block 256]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { PeftConfig } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import * as T from '../src/index';
import { loadCorpus } from './corpus';

const arg = (k: string, d: number) => {
  const i = process.argv.indexOf(k);
  return i >= 0 ? Number(process.argv[i + 1]) : d;
};
const STEPS = arg('--steps', 30);
const BLOCK = arg('--block', 256);
const METHODS: Record<string, PeftConfig | null> = {
  full: null,
  'lora r8 (attention)': { type: 'lora', rank: 8, alpha: 16, dropout: 0, targets: ['attn.c_attn', 'attn.c_proj'] },
  'lora r8 (all linear)': { type: 'lora', rank: 8, alpha: 16, dropout: 0, targets: ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'] },
  'adapters (size 16)': { type: 'adapter', size: 16 },
};

interface Row {
  method: string;
  msPerIter: number;
  tokensPerSec: number;
  peakRssMb: number;
  peakTensorMb: number;
  trainable: number;
  total: number;
  checkpointMb: number;
  loss: number;
}

async function runOne(method: string): Promise<Row> {
  const choice = await T.initBackend((process.env.TFJS_BACKEND as T.BackendName) ?? 'auto');
  const text = loadCorpus(readFileSync).slice(0, 400_000);
  const tok = T.trainTokenizer(text, { type: 'char' });
  // supervised data: each line predicts the next one; loss on the completion only
  const lines = text.split('\n').filter((l) => l.trim().length > 0);
  const ids: number[] = [];
  const w: number[] = [];
  const eot = tok.special('eot') as number;
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const prompt = tok.encode(`${lines[i]}\n`);
    const answer = tok.encode(lines[i + 1] as string);
    ids.push(...prompt, ...answer);
    w.push(...prompt.map(() => 0), ...answer.map(() => 1));
    ids.push(eot);
    w.push(1);
  }
  const tokens = Int32Array.from(ids);
  const weights = Float32Array.from(w);
  const n = Math.floor(tokens.length * 0.9);
  const base = T.modelConfig('gpt-micro', tok.vocabSize, { blockSize: BLOCK });
  const baseModel = T.Transformer.create(base, 1);
  const peft = METHODS[method] ?? null;
  const config = peft ? { ...base, peft } : base;
  const model = T.Transformer.create(config, 2, baseModel.weights());
  baseModel.dispose();
  const lr = peft ? 5e-3 : 1e-3;
  const tc = T.defaultTrainConfig(config, {
    maxSteps: STEPS + 3,
    batchSize: 8,
    evalInterval: 0,
    evalBatches: 1,
    schedule: { kind: 'cosine', lr, minLr: lr / 10, warmupSteps: 3, decaySteps: STEPS + 3 },
  });
  const trainer = new T.Trainer(model, tok, tc, {
    train: tokens.subarray(0, n),
    val: tokens.subarray(n),
    trainWeights: weights.subarray(0, n),
    valWeights: weights.subarray(n),
  });
  trainer.baseModel = 'gpt-micro-base';
  let peakRss = 0;
  let peakTensor = 0;
  const times: number[] = [];
  let loss = 0;
  for (let s = 0; s < STEPS + 3; s++) {
    const m = trainer.trainStep();
    if (s >= 3) times.push(m.ms); // the first steps compile kernels and allocate optimizer state
    loss = m.loss;
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    peakTensor = Math.max(peakTensor, tf.memory().numBytes);
  }
  const ckpt = trainer.checkpoint();
  times.sort((a, b) => a - b);
  const ms = times[Math.floor(times.length / 2)] as number;
  const trainable = [...model.trainable().values()].reduce((s, p) => s + p.size, 0);
  console.error(`${method}: backend ${choice.name}${choice.matmul === 'native' ? '+native' : ''}`);
  return {
    method,
    msPerIter: ms,
    tokensPerSec: (8 * BLOCK * 1000) / ms,
    peakRssMb: peakRss / 2 ** 20,
    peakTensorMb: peakTensor / 2 ** 20,
    trainable,
    total: model.numParams(),
    checkpointMb: ckpt.byteLength / 2 ** 20,
    loss,
  };
}

const only = process.argv.indexOf('--only');
if (only >= 0) {
  console.log(JSON.stringify(await runOne(process.argv[only + 1] as string)));
} else {
  const rows: Row[] = [];
  for (const method of Object.keys(METHODS)) {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), '--only', method, '--steps', String(STEPS), '--block', String(BLOCK)],
      {
        encoding: 'utf8',
        env: process.env,
      },
    );
    if (r.status !== 0) throw new Error(`${method} failed: ${r.stderr}`);
    process.stderr.write(r.stderr);
    rows.push(JSON.parse(r.stdout.trim().split('\n').at(-1) as string));
  }
  console.log(`\ngpt-micro, block ${BLOCK}, batch 8, ${STEPS} timed steps (median), one process per method\n`);
  console.log('| method | ms/iter | tokens/s | peak RSS | peak tensors | trainable params | checkpoint | loss after |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.method} | ${r.msPerIter.toFixed(0)} | ${r.tokensPerSec.toFixed(0)} | ${r.peakRssMb.toFixed(0)} MB | ${r.peakTensorMb.toFixed(0)} MB | ${r.trainable.toLocaleString('en')} of ${r.total.toLocaleString('en')} (${((100 * r.trainable) / r.total).toFixed(2)}%) | ${r.checkpointMb.toFixed(2)} MB | ${r.loss.toFixed(3)} |`,
    );
  }
}
