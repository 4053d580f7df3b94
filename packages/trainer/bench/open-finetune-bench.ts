// npm run bench:open-finetune: fine-tuning the open models' shapes (random weights in the real
// configs' shapes): SmolLM2-135M in full and with LoRA (q/k/v/o, rank 8), Qwen2.5-0.5B with LoRA,
// at batch 4 x 512 tokens of random ids (the step's cost does not depend on the text), each with
// and without activation checkpointing. Each case runs in its own process so that its peak RSS is
// its own, then the same case on a PyTorch model of the same shape (torch_llama.py; Debian's
// python3-torch, installed when missing); prints ms/step, tokens/s and peak RSS of both.
// --precision bf16 runs Crucible's steps in bf16 (PyTorch's stay float32).
// Usage: npm run bench:open-finetune [-- --steps 2] [-- --batch 4] [-- --seq 512] [-- --crucible-only] [-- --precision bf16]
//        [-- --only 'smollm2-135m lora']
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
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
const PRECISION = process.argv.includes('--precision') && process.argv[process.argv.indexOf('--precision') + 1] === 'bf16' ? 'bf16' : 'float32';

const LORA = { type: 'lora' as const, rank: 8, alpha: 16, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] as LoraTarget[] };
interface Case {
  hf: Record<string, unknown>;
  lora: boolean;
  checkpoint: boolean;
}
const CASES: Record<string, Case> = {
  'smollm2-135m full': { hf: SMOLLM2_135M, lora: false, checkpoint: false },
  'smollm2-135m full, checkpointed': { hf: SMOLLM2_135M, lora: false, checkpoint: true },
  'smollm2-135m lora': { hf: SMOLLM2_135M, lora: true, checkpoint: false },
  'qwen2.5-0.5b lora': { hf: QWEN25_05B, lora: true, checkpoint: false },
  'qwen2.5-0.5b lora, checkpointed': { hf: QWEN25_05B, lora: true, checkpoint: true },
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
    activationCheckpointing: c.checkpoint,
    precision: PRECISION,
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

interface TorchRow {
  ms_per_step: number;
  peak_rss_mb: number;
  threads: number;
}

const PY = '/usr/bin/python3';

/** Debian's PyTorch (python3-torch), installed once when missing; false when it cannot be. */
function torchAvailable(): boolean {
  const probe = () => spawnSync(PY, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
  if (existsSync(PY) && probe()) return true;
  console.error('installing python3-torch (Debian) for the PyTorch side of the comparison');
  spawnSync('apt-get', ['install', '-y', 'python3-torch'], { stdio: 'inherit' });
  return existsSync(PY) && probe();
}

function torchRun(c: Case): TorchRow | string {
  const h = c.hf as Record<string, number | boolean | string>;
  const args = [
    join(import.meta.dirname, 'torch_llama.py'),
    ...['--hidden', h.hidden_size, '--inter', h.intermediate_size, '--heads', h.num_attention_heads, '--kv-heads', h.num_key_value_heads],
    ...['--layers', h.num_hidden_layers, '--vocab', h.vocab_size, '--theta', h.rope_theta, '--eps', h.rms_norm_eps],
    ...['--batch', BATCH, '--seq', SEQ, '--steps', STEPS],
    ...(h.model_type === 'qwen2' ? ['--qkv-bias'] : []),
    ...(c.lora ? ['--lora', LORA.rank] : []),
    ...(c.checkpoint ? ['--checkpoint'] : []),
  ].map(String);
  const r = spawnSync(PY, args, { encoding: 'utf8' });
  if (r.status !== 0) return `failed (status ${r.status}, signal ${r.signal}): ${r.stderr.trim().split('\n').at(-1)}`;
  return JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as TorchRow;
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
  const withTorch = !process.argv.includes('--crucible-only') && torchAvailable();
  const rows: Array<{ ours: Row | string; torch?: TorchRow | string }> = [];
  for (const name of Object.keys(CASES)) {
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        '--steps',
        String(STEPS),
        '--batch',
        String(BATCH),
        '--seq',
        String(SEQ),
        '--precision',
        PRECISION,
        '--only',
        name,
      ],
      {
        encoding: 'utf8',
        env: process.env,
      },
    );
    process.stderr.write(r.stderr);
    const ours =
      r.status === 0 ? (JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as Row) : `${name}: failed (status ${r.status}, signal ${r.signal})`;
    const torch = withTorch ? torchRun(CASES[name] as Case) : undefined;
    if (typeof torch === 'object') console.error(`${name}: PyTorch ${torch.ms_per_step.toFixed(0)} ms/step, ${torch.peak_rss_mb.toFixed(0)} MB`);
    rows.push({ ours, torch });
  }
  console.log(`\nbatch ${BATCH} x ${SEQ} tokens, ${STEPS} timed steps (mean) after one untimed, one process per case and implementation\n`);
  console.log(
    '| model, method | Crucible ms/step | Crucible tokens/s | Crucible peak RSS | PyTorch ms/step | PyTorch peak RSS | ratio (Crucible / PyTorch) | trainable params |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  const gib = (mb: number) => `${(mb / 1024).toFixed(2)} GiB`;
  for (const { ours, torch } of rows) {
    if (typeof ours === 'string') {
      console.log(`| ${ours} |`);
      continue;
    }
    const t = typeof torch === 'object' ? torch : undefined;
    console.log(
      `| ${ours.name} | ${ours.msPerStep.toFixed(0)} | ${ours.tokensPerSec.toFixed(1)} | ${gib(ours.peakRssMb)} | ${t ? t.ms_per_step.toFixed(0) : (torch ?? '-')} | ${t ? gib(t.peak_rss_mb) : '-'} | ${t ? `**${(ours.msPerStep / t.ms_per_step).toFixed(2)}**` : '-'} | ${ours.trainable.toLocaleString('en')} of ${ours.total.toLocaleString('en')} |`,
    );
  }
}
