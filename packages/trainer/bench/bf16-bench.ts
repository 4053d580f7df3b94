// npm run bench:bf16: training steps in float32 and in bf16 side by side, in one run, on the shapes
// of issue 25's goals: gpt2-small at batch 4 x 1024 (full training; vocabularies of 65 and 50,257) and a Qwen2.5-0.5B shape with
// LoRA (q/k/v/o, rank 8) at 4 x 512. Each case and precision runs in its own process (its own peak
// RSS, its own measured product table), a warm-up step then --steps timed steps; prints ms/step,
// tokens/s, bf16's speed-up, the loss of each step (the same data in both) and peak RSS.
// The 2,000-iteration parity run is bench:train's: npm run bench:train -- --precision bf16.
// --switches: bf16 steps of one case in one process, round-robin over NATIVE_BF16_COPIES and
// NATIVE_BF16_ACTIVATIONS on and off (the env is read per step), so that the VM's drift touches
// every setting alike; prints each setting's steps.
// Usage: npm run bench:bf16 [-- --steps 3] [-- --threads 2] [-- --only 'gpt2-small (vocab 65)'|qwen2.5-0.5b-lora]
//        npm run bench:bf16 -- --switches 'gpt2-small (vocab 65)' [-- --steps 3]
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { LoraTarget, Precision } from '@crucible/training-config';
import * as T from '../src/index';
import { QWEN25_05B } from './open-shapes';

const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(k);
  return i >= 0 ? (process.argv[i + 1] as string) : d;
};
const STEPS = Number(arg('--steps', '3'));
const THREADS = Number(arg('--threads', String(availableParallelism())));

interface Case {
  model: () => T.ModelConfig;
  batch: number;
  seq: number;
  lr: number;
}
const LORA = { type: 'lora' as const, rank: 8, alpha: 16, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] as LoraTarget[] };
const CASES: Record<string, Case> = {
  // bench:vs-torch's shape (the character vocabulary of Tiny Shakespeare), and with GPT-2's own
  'gpt2-small (vocab 65)': { model: () => T.modelConfig('gpt2-small', 65, { blockSize: 1024, dropout: 0 }), batch: 4, seq: 1024, lr: 6e-4 },
  'gpt2-small (vocab 50257)': { model: () => T.modelConfig('gpt2-small', 50257, { blockSize: 1024, dropout: 0 }), batch: 4, seq: 1024, lr: 6e-4 },
  'qwen2.5-0.5b-lora': { model: () => ({ ...T.decoderConfigFromHf(QWEN25_05B), peft: LORA }), batch: 4, seq: 512, lr: 2e-4 },
};

interface Row {
  msPerStep: number;
  tokensPerSec: number;
  losses: number[];
  peakRssMb: number;
  backend: string;
}

/** The step's bf16 switches: weights' copies, activations saved in bf16 ('1' on, '0' off). */
const SWITCHES: Array<[string, string]> = [
  ['1', '0'],
  ['0', '0'],
  ['1', '1'],
  ['0', '1'],
];

/** The case's trainer for `steps` timed steps after a warm-up one, and what the backend said. */
async function caseTrainer(name: string, precision: Precision, steps: number): Promise<{ c: Case; trainer: T.Trainer; said: string }> {
  const c = CASES[name];
  if (!c) throw new Error(`no case ${name}`);
  let said = '';
  await T.initBackend('auto', (m) => (said = m), { nativeThreads: THREADS });
  if (precision === 'bf16' && !T.bf16Engine()) throw new Error('this machine runs no bf16 products (no AVX512-BF16 or AMX-BF16, or no native backend)');
  const config = c.model();
  const model = T.Transformer.create(config, 1);
  const tok = T.CharTokenizer.train('ab', ['<|endoftext|>']); // unused by the steps: the data are ids
  const n = c.batch * c.seq * (steps + 2) + 1;
  const ids = Int32Array.from({ length: n }, (_, i) => (i * 7919 + 13) % config.vocabSize);
  const tc = T.defaultTrainConfig(config, {
    maxSteps: steps + 1,
    batchSize: c.batch,
    seqLen: c.seq,
    evalInterval: 0,
    evalBatches: 1,
    precision,
    schedule: { kind: 'constant', lr: c.lr, minLr: c.lr, warmupSteps: 0, decaySteps: steps + 1 },
  });
  return { c, trainer: new T.Trainer(model, tok, tc, { train: ids, val: ids.subarray(0, c.batch * c.seq + 1) }), said };
}

async function runOne(name: string, precision: Precision): Promise<Row> {
  const { c, trainer, said } = await caseTrainer(name, precision, STEPS);
  const times: number[] = [];
  const losses: number[] = [];
  for (let s = 0; s < STEPS + 1; s++) {
    const m = trainer.trainStep();
    losses.push(m.loss);
    if (s > 0) times.push(m.ms); // the first step allocates the optimizer state and measures the products
    console.error(`${name} ${precision}: step ${s} ${m.ms.toFixed(0)} ms, loss ${m.loss.toFixed(4)}`);
  }
  const ms = times.reduce((a, b) => a + b, 0) / times.length;
  return { msPerStep: ms, tokensPerSec: (c.batch * c.seq * 1000) / ms, losses, peakRssMb: process.resourceUsage().maxRSS / 1024, backend: said };
}

/** bf16 steps of one case, round-robin over SWITCHES (the env is read per step); prints each setting's steps. */
async function runSwitches(name: string): Promise<void> {
  const { trainer } = await caseTrainer(name, 'bf16', STEPS * SWITCHES.length);
  trainer.trainStep();
  const by = SWITCHES.map(() => [] as number[]);
  for (let r = 0; r < STEPS; r++)
    for (const [i, [copies, activations]] of SWITCHES.entries()) {
      process.env.NATIVE_BF16_COPIES = copies;
      process.env.NATIVE_BF16_ACTIVATIONS = activations;
      by[i]?.push(trainer.trainStep().ms);
    }
  for (const [i, [copies, activations]] of SWITCHES.entries()) {
    const t = by[i] as number[];
    console.log(
      `${name} bf16, NATIVE_BF16_COPIES=${copies} NATIVE_BF16_ACTIVATIONS=${activations}: ${(t.reduce((a, b) => a + b, 0) / t.length).toFixed(0)} ms/step (${t.map((x) => x.toFixed(0)).join(', ')})`,
    );
  }
}

const child = process.argv.indexOf('--child');
const switches = process.argv.indexOf('--switches');
if (switches >= 0) {
  await runSwitches(process.argv[switches + 1] as string);
} else if (child >= 0) {
  console.log(JSON.stringify(await runOne(process.argv[child + 1] as string, process.argv[child + 2] as Precision)));
} else {
  const only = process.argv.includes('--only')
    ? process.argv
        .slice(process.argv.indexOf('--only') + 1)
        .join(' ')
        .split(' --')[0]
    : '';
  const flags =
    (process.env.CPU_FLAGS ?? '') ||
    spawnSync('sh', ['-c', "grep -o -w -m1 -E 'avx512_bf16|amx_bf16|amx_tile|avx512f' /proc/cpuinfo | sort -u | tr '\\n' ' '"], { encoding: 'utf8' }).stdout;
  const cpu = spawnSync('sh', ['-c', "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], { encoding: 'utf8' }).stdout.trim();
  console.log(`${cpu}; flags: ${flags.trim()}; ${THREADS} threads; ${STEPS} timed steps after one warm-up`);
  const table: string[] = [
    '| case | tokens/step | float32 ms/step | bf16 ms/step | speed-up | float32 peak RSS | bf16 peak RSS | last loss float32 / bf16 |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const [name, c] of Object.entries(CASES)) {
    if (only && name !== only) continue;
    const rows: Partial<Record<Precision, Row | string>> = {};
    for (const precision of ['float32', 'bf16'] as const) {
      const r = spawnSync(
        process.execPath,
        [
          '--max-semi-space-size=4',
          '--import',
          'tsx',
          fileURLToPath(import.meta.url),
          '--steps',
          String(STEPS),
          '--threads',
          String(THREADS),
          '--child',
          name,
          precision,
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
      );
      rows[precision] = r.status === 0 ? (JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as Row) : `failed (${r.status ?? r.signal})`;
      const row = rows[precision];
      console.log(
        `${name} ${precision}: ${typeof row === 'string' ? row : `${row.msPerStep.toFixed(0)} ms/step, ${row.tokensPerSec.toFixed(0)} tokens/s, peak RSS ${row.peakRssMb.toFixed(0)} MB (${row.backend})`}`,
      );
    }
    const f = rows.float32;
    const b = rows.bf16;
    if (typeof f === 'object' && typeof b === 'object') {
      table.push(
        `| ${name} | ${c.batch} x ${c.seq} | ${f.msPerStep.toFixed(0)} | ${b.msPerStep.toFixed(0)} | **${(f.msPerStep / b.msPerStep).toFixed(2)}x** | ${f.peakRssMb.toFixed(0)} MB | ${b.peakRssMb.toFixed(0)} MB | ${f.losses.at(-1)?.toFixed(4)} / ${b.losses.at(-1)?.toFixed(4)} |`,
      );
    }
  }
  console.log(`\n${table.join('\n')}`);
}
