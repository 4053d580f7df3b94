// crucible-train: train a model from a text file, resume it, or sample from a checkpoint.
//   crucible-train [train] --preset gpt-nano --data input.txt --tokenizer char --max-iters 2000 --out ckpt/
//   crucible-train train --out ckpt/ --resume [--max-iters 3000 [--extend-schedule]]
//   crucible-train sample --checkpoint ckpt/ --prompt "ROMEO:" --max-new-tokens 200
// Defaults, then --config file.json, then --key=value flags; an unknown key is an error.

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { trainTokenizer } from '@crucible/model-files';
import { TRAINING_DEFAULTS as D, defaultWarmupSteps } from '@crucible/training-config';
import { type BackendName, initBackend } from './backend';
import { decodeCheckpoint, exportModel } from './checkpoint';
import { isPreset, modelConfig, PRESETS } from './config';
import { trainValSplit } from './data';
import { Transformer } from './model';
import type { OptimizerKind } from './optim';
import { sampleStream } from './sample';
import type { ScheduleKind } from './schedule';
import { defaultTrainConfig, Trainer } from './train';

// Every training default comes from @crucible/training-config (the platform uses the same ones);
// -1 means "derived": min-lr = lr x ratio, warmup = min(100, 10% of the steps).
const TRAIN_DEFAULTS = {
  preset: 'gpt-nano',
  data: '',
  tokenizer: 'char',
  'vocab-size': 512,
  'max-iters': D.maxSteps as number,
  out: 'ckpt',
  resume: false,
  'extend-schedule': false,
  'batch-size': D.batchSize as number,
  'block-size': 0,
  'grad-accum': D.gradAccumSteps as number,
  lr: D.learningRate as number,
  'min-lr': -1,
  'lr-schedule': D.lrScheduler as string,
  warmup: -1,
  optimizer: D.optimizer.kind as string,
  'weight-decay': D.optimizer.weightDecay,
  beta1: D.optimizer.beta1,
  beta2: D.optimizer.beta2,
  clip: D.maxGradNorm as number,
  dropout: D.dropout as number,
  'eval-interval': D.evalInterval as number,
  'eval-iters': D.evalBatches as number,
  'log-interval': D.logInterval as number,
  'checkpoint-interval': D.checkpointInterval as number,
  seed: D.seed as number,
  backend: 'auto',
  config: '',
};

const SAMPLE_DEFAULTS = {
  checkpoint: 'ckpt',
  prompt: '\n',
  'max-new-tokens': 300,
  temperature: 0.8,
  'top-k': 0,
  'top-p': 1,
  stop: '',
  seed: 1,
  backend: 'auto',
};

type Opts<T> = { [K in keyof T]: T[K] };

export function parseArgs<T extends Record<string, string | number | boolean>>(argv: string[], defaults: T): Opts<T> {
  const out: Record<string, string | number | boolean> = { ...defaults };
  const set = (key: string, raw: string | undefined) => {
    if (!Object.hasOwn(defaults, key))
      throw new Error(
        `unknown option --${key} (known: ${Object.keys(defaults)
          .map((k) => `--${k}`)
          .join(' ')})`,
      );
    const kind = typeof defaults[key];
    if (kind === 'boolean') out[key] = raw === undefined || raw === 'true';
    else if (kind === 'number') {
      const n = Number(raw);
      if (raw === undefined || !Number.isFinite(n)) throw new Error(`--${key} needs a number, got ${raw}`);
      out[key] = n;
    } else {
      if (raw === undefined) throw new Error(`--${key} needs a value`);
      out[key] = raw;
    }
  };
  const cfgAt = argv.findIndex((a) => a === '--config' || a.startsWith('--config='));
  if (cfgAt >= 0) {
    const file = argv[cfgAt]?.includes('=') ? argv[cfgAt]?.split('=')[1] : argv[cfgAt + 1];
    for (const [k, v] of Object.entries(JSON.parse(readFileSync(file as string, 'utf8')))) set(k, String(v));
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    const key = eq > 0 ? a.slice(2, eq) : a.slice(2);
    let raw: string | undefined = eq > 0 ? a.slice(eq + 1) : undefined;
    if (raw === undefined && typeof defaults[key] !== 'boolean' && i + 1 < argv.length) raw = argv[++i];
    set(key, raw);
  }
  return out as Opts<T>;
}

/**
 * A resumed run's new step budget. Going past the end of its learning-rate schedule would run
 * every added step at min_lr, so that is refused unless --extend-schedule stretches the decay to
 * the new end (the rate then follows the longer curve from the current step: it rises again).
 */
export function extendRun(trainer: Trainer, maxSteps: number, extendSchedule: boolean): void {
  const s = trainer.config.schedule;
  if (maxSteps <= trainer.step) throw new Error(`--max-iters ${maxSteps}: the run is already at step ${trainer.step}`);
  if (maxSteps > s.decaySteps && s.kind !== 'constant') {
    if (!extendSchedule) {
      throw new Error(
        `--max-iters ${maxSteps} goes past the end of this run's ${s.kind} schedule, which reaches min_lr ${s.minLr} at step ${s.decaySteps}: ` +
          `every added step would run at min_lr. Pass --extend-schedule to stretch the decay to step ${maxSteps}, or use --max-iters <= ${s.decaySteps}.`,
      );
    }
    console.log(`schedule extended: ${s.kind} decay now ends at step ${maxSteps} (was ${s.decaySteps})`);
    s.decaySteps = maxSteps;
  }
  trainer.config.maxSteps = maxSteps;
}

async function train(argv: string[]): Promise<void> {
  const o = parseArgs(argv, TRAIN_DEFAULTS);
  await initBackend(o.backend as BackendName | 'auto', (m) => console.log(m));
  mkdirSync(o.out, { recursive: true });
  const ckptPath = join(o.out, 'ckpt.safetensors');
  let trainer: Trainer;
  if (o.resume) {
    if (!existsSync(ckptPath)) throw new Error(`--resume: no checkpoint at ${ckptPath}`);
    const bytes = readFileSync(ckptPath);
    const ck = decodeCheckpoint(bytes);
    const dataPath = o.data || readFileSync(join(o.out, 'data-path.txt'), 'utf8').trim();
    const ids = Int32Array.from(ck.tokenizer.encode(readFileSync(dataPath, 'utf8')));
    trainer = Trainer.resume(bytes, trainValSplit(ids));
    if (argv.some((a) => a.startsWith('--max-iters'))) extendRun(trainer, o['max-iters'], o['extend-schedule']);
    console.log(`resumed from ${ckptPath} at step ${trainer.step}`);
  } else {
    if (!o.data) throw new Error('--data is required (a UTF-8 text file)');
    if (!isPreset(o.preset)) throw new Error(`unknown --preset ${o.preset} (known: ${Object.keys(PRESETS).join(', ')})`);
    const text = readFileSync(o.data, 'utf8');
    const t0 = performance.now();
    const tok = trainTokenizer(text, {
      type: o.tokenizer as 'char' | 'bpe',
      vocabSize: o['vocab-size'],
      specialTokens: PRESETS[o.preset].arch === 'bert' ? undefined : o.tokenizer === 'char' ? [] : ['<|endoftext|>'],
    });
    const ids = Int32Array.from(tok.encode(text));
    console.log(`tokenizer ${tok.kind}: vocab ${tok.vocabSize}, ${ids.length} tokens (${(performance.now() - t0).toFixed(0)} ms)`);
    const mc = modelConfig(o.preset, tok.vocabSize, {
      dropout: o.dropout,
      ...(o['block-size'] > 0 ? { blockSize: o['block-size'] } : {}),
    });
    const tc = defaultTrainConfig(mc, {
      maxSteps: o['max-iters'],
      batchSize: o['batch-size'],
      gradAccumSteps: o['grad-accum'],
      maxGradNorm: o.clip,
      evalInterval: o['eval-interval'],
      evalBatches: o['eval-iters'],
      logInterval: o['log-interval'],
      checkpointInterval: o['checkpoint-interval'],
      seed: o.seed,
      schedule: {
        kind: o['lr-schedule'] as ScheduleKind,
        lr: o.lr,
        minLr: o['min-lr'] >= 0 ? o['min-lr'] : o.lr * D.minLearningRateRatio,
        warmupSteps: o.warmup >= 0 ? o.warmup : defaultWarmupSteps(o['max-iters']),
        decaySteps: o['max-iters'],
      },
      optimizer: { kind: o.optimizer as OptimizerKind, beta1: o.beta1, beta2: o.beta2, eps: D.optimizer.eps, weightDecay: o['weight-decay'] },
    });
    const model = Transformer.create(mc, o.seed);
    console.log(`model ${o.preset}: ${model.numParams().toLocaleString('en')} parameters`);
    trainer = new Trainer(model, tok, tc, trainValSplit(ids));
    writeFileSync(join(o.out, 'data-path.txt'), `${o.data}\n`);
  }
  const save = (bytes: Uint8Array) => {
    writeFileSync(`${ckptPath}.tmp`, bytes);
    renameSync(`${ckptPath}.tmp`, ckptPath); // never leave a half-written checkpoint
  };
  const ctl = new AbortController();
  process.once('SIGINT', () => {
    console.log('\ninterrupted: saving a checkpoint (resume with --resume)');
    ctl.abort();
  });
  const result = await trainer.run(
    {
      onStep: (m) =>
        console.log(
          `step ${m.step}: loss ${m.loss.toFixed(4)}, lr ${m.lr.toExponential(2)}, grad norm ${m.gradNorm.toFixed(3)}, ${m.ms.toFixed(0)} ms/iter, ${m.tokensPerSec.toFixed(0)} tok/s`,
        ),
      onEval: (e) => console.log(`eval step ${e.step}: val loss ${e.loss.toFixed(4)}, ppl ${e.perplexity.toFixed(2)}, acc ${(100 * e.accuracy).toFixed(1)}%`),
      onCheckpoint: (step, bytes) => {
        save(bytes());
        console.log(`checkpoint step ${step} -> ${ckptPath}`);
      },
    },
    ctl.signal,
  );
  if (result.status === 'aborted') save(trainer.checkpoint());
  // beside the training checkpoint, the model as a Hugging Face GPT-2 folder (loads elsewhere as is)
  for (const [name, bytes] of Object.entries(exportModel(trainer.model, trainer.tokenizer))) writeFileSync(join(o.out, name), bytes);
  console.log(`${result.status} at step ${result.step}`);
}

async function sampleCmd(argv: string[]): Promise<void> {
  const o = parseArgs(argv, SAMPLE_DEFAULTS);
  await initBackend(o.backend as BackendName | 'auto');
  const path = o.checkpoint.endsWith('.safetensors') ? o.checkpoint : join(o.checkpoint, 'ckpt.safetensors');
  const { model, tokenizer } = decodeCheckpoint(readFileSync(path));
  const stream = sampleStream(model, tokenizer, o.prompt, {
    maxNewTokens: o['max-new-tokens'],
    temperature: o.temperature,
    topK: o['top-k'],
    topP: o['top-p'],
    stop: o.stop ? [o.stop] : [],
    seed: o.seed,
  });
  process.stdout.write(o.prompt);
  for await (const piece of stream) process.stdout.write(piece);
  process.stdout.write('\n');
}

const [cmd, ...rest] = process.argv.slice(2);
const run = cmd === 'sample' ? sampleCmd(rest) : cmd === 'train' ? train(rest) : train(process.argv.slice(2));
run.catch((err: Error) => {
  console.error(`crucible-train: ${err.message}`);
  process.exit(1);
});
