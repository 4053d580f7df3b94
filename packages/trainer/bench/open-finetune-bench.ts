// npm run bench:open-finetune: fine-tuning the open models' shapes (random weights in the real
// configs' shapes): SmolLM2-135M in full and with LoRA (q/k/v/o, rank 8), Qwen2.5-0.5B with LoRA,
// at batch 4 x 512 tokens of random ids (the step's cost does not depend on the text). Each case
// runs in its own process so that its peak RSS is its own; prints ms/step, tokens/s and peak RSS.
// Usage: npm run bench:open-finetune [-- --steps 2] [-- --batch 4] [-- --seq 512] [-- --only smollm2-lora]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LoraTarget } from '@crucible/training-config';
import * as T from '../src/index';
import { QWEN25_05B, SMOLLM2_135M } from './open-shapes';

const arg = (k: string, d: number) => {
  const i = process.argv.indexOf(k);
  return i >= 0 ? Number(process.argv[i + 1]) : d;
};
const STEPS = arg('--steps', 2);
const BATCH = arg('--batch', 4);
const SEQ = arg('--seq', 512);

const LORA = { type: 'lora' as const, rank: 8, alpha: 16, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] as LoraTarget[] };
const CASES: Record<string, { hf: Record<string, unknown>; lora: boolean }> = {
  'smollm2-135m full': { hf: SMOLLM2_135M, lora: false },
  'smollm2-135m lora': { hf: SMOLLM2_135M, lora: true },
  'qwen2.5-0.5b lora': { hf: QWEN25_05B, lora: true },
};

interface Row {
  name: string;
  msPerStep: number;
  tokensPerSec: number;
  peakRssMb: number;
  trainable: number;
  total: number;
}

async function runOne(name: string): Promise<Row> {
  const c = CASES[name];
  if (!c) throw new Error(`no case ${name}`);
  const backend = await T.initBackend('auto');
  const base = T.decoderConfigFromHf(c.hf);
  const config = c.lora ? { ...base, peft: LORA } : base;
  const model = T.Transformer.create(config, 1);
  const tok = T.CharTokenizer.train('ab', ['<|endoftext|>']); // unused by the steps: the data are ids
  const n = BATCH * SEQ * (STEPS + 2) + 1;
  const ids = Int32Array.from({ length: n }, (_, i) => (i * 7919 + 13) % base.vocabSize);
  const lr = c.lora ? 2e-4 : 5e-5;
  const tc = T.defaultTrainConfig(config, {
    maxSteps: STEPS + 1,
    batchSize: BATCH,
    seqLen: SEQ,
    evalInterval: 0,
    evalBatches: 1,
    schedule: { kind: 'constant', lr, minLr: lr, warmupSteps: 0, decaySteps: STEPS + 1 },
  });
  const trainer = new T.Trainer(model, tok, tc, { train: ids, val: ids.subarray(0, BATCH * SEQ + 1) });
  const times: number[] = [];
  for (let s = 0; s < STEPS + 1; s++) {
    const m = trainer.trainStep();
    if (s > 0) times.push(m.ms); // the first step allocates the optimizer state
    console.error(`${name}: step ${s} ${m.ms.toFixed(0)} ms, loss ${m.loss.toFixed(3)}`);
  }
  const ms = times.reduce((a, b) => a + b, 0) / times.length;
  const trainable = [...model.trainable().values()].reduce((a, p) => a + p.size, 0);
  console.error(`${name}: backend ${backend.name}`);
  return {
    name,
    msPerStep: ms,
    tokensPerSec: (BATCH * SEQ * 1000) / ms,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    trainable,
    total: model.numParams(),
  };
}

const only = process.argv.indexOf('--only');
if (only >= 0) {
  console.log(
    JSON.stringify(
      await runOne(
        process.argv
          .slice(only + 1)
          .join(' ')
          .split(' --')[0] as string,
      ),
    ),
  );
} else {
  const rows: Row[] = [];
  for (const name of Object.keys(CASES)) {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), '--steps', String(STEPS), '--batch', String(BATCH), '--seq', String(SEQ), '--only', name],
      {
        encoding: 'utf8',
        env: process.env,
      },
    );
    process.stderr.write(r.stderr);
    if (r.status !== 0) {
      console.log(`| ${name} | failed (status ${r.status}, signal ${r.signal}) |`);
      continue;
    }
    rows.push(JSON.parse(r.stdout.trim().split('\n').at(-1) as string));
  }
  console.log(`\nbatch ${BATCH} x ${SEQ} tokens, ${STEPS} timed steps (mean) after one untimed, one process per case\n`);
  console.log('| model, method | ms/step | tokens/s | peak RSS | trainable params |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${r.msPerStep.toFixed(0)} | ${r.tokensPerSec.toFixed(1)} | ${(r.peakRssMb / 1024).toFixed(2)} GiB | ${r.trainable.toLocaleString('en')} of ${r.total.toLocaleString('en')} |`,
    );
  }
}
