// An estimate before a run: the tokens the job would train on (counted with the tokenizer it
// would use), the steps that makes, and a duration from the throughput the project's workers
// measured on earlier jobs of the same model (their mean tokens/s as recorded in the metrics).
import { LineSplitter, recordTokens } from '@crucible/datasets';
import {
  type CreateJobRequest,
  CrucibleError,
  datasetDocuments,
  type FileFormat,
  type FileRecord,
  finalizeSchedule,
  isPreset,
  resolveHyperparameters,
  rootModelName,
} from '@crucible/domain';
import type { Tokenizer } from '@crucible/model-files';
import type { Actor } from '../auth';
import type { Deps } from '../deps';
import { getProcessedFile } from '../files/service';
import { storedTokenizer } from '../models/stored';
import { methodOf, resolveBaseModel } from './service';

/** UTF-8 bytes per token assumed for a BPE tokenizer not trained yet (typical of small vocabularies). */
const BPE_BYTES_PER_TOKEN = 3;

/** Tokens of a file as the trainer would encode it (documents separated by end-of-text). */
async function countTokens(deps: Pick<Deps, 'storage'>, file: FileRecord, tok: Tokenizer | 'chars' | 'bpe'): Promise<number> {
  const splitter = new LineSplitter(Number.MAX_SAFE_INTEGER);
  const dec = new TextDecoder();
  let total = 0;
  let records = 0;
  const format = file.format as FileFormat;
  const count = (line: string, last = false) => {
    if (format !== 'text' && !line.trim()) return; // plain text keeps its blank lines
    const text = format === 'text' && !last ? `${line}\n` : line;
    if (tok === 'chars' || tok === 'bpe') {
      const chars = datasetDocuments(text, format)
        .flat()
        .reduce((a, s) => a + (tok === 'chars' ? [...s.text].length : Buffer.byteLength(s.text) / BPE_BYTES_PER_TOKEN), 0);
      total += Math.round(chars) + (format === 'jsonl_prompt_completion' ? 1 : 0);
    } else total += recordTokens(text, format, tok).length;
    if (format !== 'text' && records > 0) total += 1; // end-of-text between documents
    records++;
  };
  const body = await deps.storage.getStream(file.storageKey);
  for await (const chunk of body) for (const l of splitter.push(chunk as Uint8Array)) count(dec.decode(l.bytes));
  for (const l of splitter.end()) count(dec.decode(l.bytes), true);
  return total;
}

export async function estimateJob(deps: Deps, actor: Actor, req: CreateJobRequest) {
  const { base, ref } = await resolveBaseModel(deps, actor, req.model);
  const method = methodOf(req, base);
  const hp = resolveHyperparameters(method.type, base, method.hp, method.peft);
  const train = await getProcessedFile(deps, actor, req.training_file, 'training_file');
  const val = req.validation_file ? await getProcessedFile(deps, actor, req.validation_file, 'validation_file') : undefined;
  let tok: Tokenizer | 'chars' | 'bpe';
  let tokenizer: string;
  if (ref) {
    tok = await storedTokenizer(deps.storage, ref);
    tokenizer = `the base model's (${tok.vocabSize} tokens)`;
  } else if (hp.tokenizer.type === 'bpe') {
    tok = 'bpe';
    tokenizer = `byte-level BPE trained on the data (approximated as ${BPE_BYTES_PER_TOKEN} bytes per token)`;
  } else {
    tok = 'chars';
    tokenizer = 'characters (trained on the data)';
  }
  const all = await countTokens(deps, train, tok);
  const trainTokens = val ? all : Math.floor(all * (1 - hp.validation_split));
  if (trainTokens < hp.block_size + 1) {
    throw new CrucibleError(
      'invalid_file',
      `training_file ${train.id} has about ${trainTokens} training tokens; block_size ${hp.block_size} needs more`,
      'training_file',
    );
  }
  const schedule = finalizeSchedule(hp, trainTokens);
  const perStep = hp.batch_size * hp.block_size * hp.gradient_accumulation_steps;
  const measured = await deps.store.jobs.measuredThroughput(actor.projectId, req.model);
  const fallback = measured.length === 0 && !isPreset(req.model) ? await deps.store.jobs.measuredThroughput(actor.projectId, rootModelName(req.model)) : [];
  const runs = measured.length ? measured : fallback;
  const tps = runs.length ? median(runs.map((r) => r.tokensPerSec)) : null;
  return {
    object: 'fine_tuning.job.estimate' as const,
    model: req.model,
    method: method.type,
    training_file: train.id,
    tokens: { total: all, training: trainTokens, per_step: perStep, tokenizer, approximate: tok === 'bpe' },
    steps: schedule.maxSteps,
    epochs: (schedule.maxSteps * perStep) / trainTokens,
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
