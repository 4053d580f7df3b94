// An estimate before a run: the tokens the job would train on (counted with the tokenizer it
// would use), the steps that makes, and a duration from the throughput the project's workers
// measured on earlier jobs of the same model (their mean tokens/s as recorded in the metrics).

import { heldOutPairs } from '@crucible/datasets';
import { type CreateJobRequest, CrucibleError, type FileFormat, finalizeSchedule, isPreset, rootModelName, tokensPerStep } from '@crucible/domain';
import type { Actor } from '../auth';
import type { Deps } from '../deps';
import { BPE_BYTES_PER_TOKEN, type TokenCounting } from '../files/reading-work';
import { tokenizerSource } from '../models/stored';
import { resolveJobRequest, shownHyperparameters } from './service';

export async function estimateJob(deps: Deps, actor: Actor, req: CreateJobRequest) {
  // the checks of a create: an estimate refuses what a job would refuse
  const { ref, method, hyperparameters: hp, baseTokenizer, training: train, validation: val } = await resolveJobRequest(deps, actor, req);
  let counting: TokenCounting;
  let tokenizer: string;
  if (ref && baseTokenizer) {
    counting = { tokenizer: tokenizerSource(ref) };
    tokenizer = `the base model's (${baseTokenizer.vocabSize} tokens)`;
  } else if (hp.tokenizer.type === 'bpe') {
    counting = { approximate: 'bpe' };
    tokenizer = `byte-level BPE trained on the data (approximated as ${BPE_BYTES_PER_TOKEN} bytes per token)`;
  } else {
    counting = { approximate: 'chars' };
    tokenizer = 'characters (trained on the data)';
  }
  // tokenized in a file work thread, streaming: a large file holds neither memory nor the event loop
  const all = (await deps.fileWork.run({ kind: 'tally', key: train.storageKey, format: train.format as FileFormat, counting })).total;
  const trainTokens = val ? all : Math.floor(all * (1 - hp.validation_split));
  // a dpo job's steps come from its pairs, a reinforcement job's from its prompts (the file's records)
  const pairs = method === 'dpo' || method === 'reinforcement' ? train.lines - (val ? 0 : heldOutPairs(train.lines, hp.validation_split)) : undefined;
  if (pairs === undefined && trainTokens < hp.block_size + 1) {
    throw new CrucibleError(
      'invalid_file',
      `training_file ${train.id} has about ${trainTokens} training tokens; block_size ${hp.block_size} needs more`,
      'training_file',
    );
  }
  // a supervised record is an example; pretraining's examples are its blocks
  const examples =
    pairs ?? (method === 'supervised' ? train.lines - (val ? 0 : heldOutPairs(train.lines, hp.validation_split)) : Math.floor(trainTokens / hp.block_size));
  const schedule = finalizeSchedule(hp, { size: pairs ?? trainTokens, examples });
  const perStep = tokensPerStep(hp);
  const epochs =
    pairs !== undefined ? (schedule.maxSteps * hp.batch_size * hp.gradient_accumulation_steps) / pairs : (schedule.maxSteps * perStep) / trainTokens;
  const measured = await deps.store.jobs.measuredThroughput(actor.projectId, req.model);
  const fallback = measured.length === 0 && !isPreset(req.model) ? await deps.store.jobs.measuredThroughput(actor.projectId, rootModelName(req.model)) : [];
  const runs = measured.length ? measured : fallback;
  const tps = runs.length ? median(runs.map((r) => r.tokensPerSec)) : null;
  return {
    object: 'fine_tuning.job.estimate' as const,
    model: req.model,
    method,
    training_file: train.id,
    tokens: { total: all, training: trainTokens, per_step: perStep, tokenizer, approximate: 'approximate' in counting && counting.approximate === 'bpe' },
    steps: schedule.maxSteps,
    epochs,
    n_epochs: schedule.nEpochs,
    hyperparameters: { ...shownHyperparameters(hp).hp, n_epochs: schedule.nEpochs, max_steps: schedule.maxSteps, warmup_steps: schedule.warmupSteps },
    throughput: tps
      ? {
          tokens_per_second: tps,
          measured_on: measured.length ? req.model : rootModelName(req.model),
          jobs: runs.map((r) => r.jobId),
          backend: runs[0]?.backend ?? null,
        }
      : null,
    estimated_seconds: tps ? Math.round((schedule.maxSteps * perStep) / tps) : null,
    note: tps
      ? 'Duration = steps x tokens per step / the median throughput of recent succeeded jobs of this model (evaluations and checkpoints add a little).'
      : `No succeeded job of ${req.model} in this project has measured a throughput yet: run one (a short one will do) to get durations.`,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}
