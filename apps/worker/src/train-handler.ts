// One training run of a fine-tuning job: read and check the dataset, build the tokenizer and
// model (or resume from a checkpoint), train while recording metrics, events and checkpoints,
// then record the model. Stops within a step on cancel, pause or shutdown.
import type { Db, Prisma } from '@crucible/db';
import {
  CrucibleError,
  type FileFormat,
  finalizeSchedule,
  isPreset,
  type MethodType,
  type ResolvedHyperparameters,
  type TrainingPayload,
} from '@crucible/domain';
import { keys, type Storage } from '@crucible/storage';
import {
  backendChoice,
  decodeCheckpoint,
  defaultTrainConfig,
  exportModel,
  type ModelConfig,
  modelConfig,
  type Tokenizer,
  Trainer,
  Transformer,
  trainTokenizer,
} from '@crucible/trainer';
import { UnrecoverableError } from 'bullmq';
import type { WorkerConfig } from './config';
import type { JobControl, StopReason } from './control';
import { documentsText, encodeDataset, splitStream } from './dataset';
import { JobRecords } from './job-records';

export interface TrainDeps {
  db: Db;
  storage: Storage;
  control: JobControl;
  cfg: WorkerConfig;
  log: (msg: string) => void;
}

/** A dataset problem found by the worker: the job fails without retries. */
class DatasetError extends CrucibleError {}

export async function handleTraining(deps: TrainDeps, p: TrainingPayload, progress: (pct: number) => Promise<void>): Promise<void> {
  const { db, storage } = deps;
  const job = await db.job.findUnique({ where: { id: p.jobId } });
  if (!job || job.attempt !== p.attempt) return; // deleted, or a stale queue entry of an earlier attempt
  const rec = new JobRecords(db, job.projectId, job.id);
  const crashed = job.status === 'running' || job.status === 'validating_files';
  if (!(await rec.transition(['queued', 'running', 'validating_files'], 'validating_files'))) return; // cancelled or paused meanwhile
  const ctl = deps.control.register(job.id);
  try {
    await rec.event(crashed ? 'Worker restarted: validating files again' : 'Validating training file');
    const hp = job.hyperparameters as unknown as ResolvedHyperparameters;
    const method = job.methodType as MethodType;
    const trainFile = await db.file.findFirst({ where: { id: job.trainingFileId, projectId: job.projectId } });
    if (!trainFile) throw new DatasetError('invalid_file', `training file ${job.trainingFileId} no longer exists`, 'training_file');
    const trainText = (await storage.get(trainFile.storageKey)).toString('utf8');
    const valFile = job.validationFileId ? await db.file.findFirst({ where: { id: job.validationFileId, projectId: job.projectId } }) : null;
    if (job.validationFileId && !valFile) throw new DatasetError('invalid_file', `validation file ${job.validationFileId} no longer exists`, 'validation_file');
    const valText = valFile ? (await storage.get(valFile.storageKey)).toString('utf8') : undefined;

    // Where training starts: a pause checkpoint, the latest checkpoint after a crash, or scratch.
    const resumeKey =
      job.resumeKey ?? (crashed ? (await db.jobCheckpoint.findFirst({ where: { jobId: job.id }, orderBy: { step: 'desc' } }))?.storageKey : undefined);
    const resumeBytes = resumeKey ? await storage.get(resumeKey) : undefined;
    let tokenizer: Tokenizer;
    let base: { config: ModelConfig; weights?: Transformer } | undefined;
    if (resumeBytes) tokenizer = decodeCheckpoint(resumeBytes).tokenizer;
    else if (method === 'supervised') {
      const m = await db.model.findFirst({ where: { id: job.model, projectId: job.projectId } });
      if (!m) throw new DatasetError('model_not_found', `base model ${job.model} no longer exists`, 'model');
      const ck = decodeCheckpoint(await storage.get(m.storageKey));
      tokenizer = ck.tokenizer;
      const config = { ...ck.modelConfig, dropout: hp.dropout }; // same weights, this job's dropout
      const weights = new Map([...ck.model.params].map(([n, v]) => [n, { shape: v.shape, data: v.dataSync() as Float32Array }]));
      ck.model.dispose();
      base = { config, weights: Transformer.fromWeights(config, weights) };
    } else {
      const corpus = documentsText(trainText, trainFile.format as FileFormat);
      tokenizer = trainTokenizer(corpus, hp.tokenizer.type === 'bpe' ? { type: 'bpe', vocabSize: hp.tokenizer.vocab_size } : { type: 'char' });
    }
    const encode = (text: string, format: string, param: string) => {
      try {
        return encodeDataset(text, format as FileFormat, tokenizer);
      } catch (err) {
        throw new DatasetError('invalid_file', `${param}: ${(err as Error).message}`, param);
      }
    };
    const all = encode(trainText, trainFile.format, 'training_file');
    const split = valText !== undefined ? { train: all, val: encode(valText, valFile?.format as string, 'validation_file') } : splitStream(all);
    const T = hp.block_size;
    for (const [name, s] of [
      ['training', split.train],
      ['validation', split.val],
    ] as const) {
      if (s.tokens.length < T + 1) {
        throw new DatasetError(
          'invalid_file',
          `the ${name} data has ${s.tokens.length} tokens; block_size ${T} needs at least ${T + 1}${valText === undefined ? ' (validation is the last 10% of the training file)' : ''}`,
          name === 'training' ? 'training_file' : 'validation_file',
        );
      }
    }
    const { maxSteps, warmupSteps } = finalizeSchedule(hp, split.train.tokens.length);
    const data = { train: split.train.tokens, val: split.val.tokens, trainWeights: split.train.weights, valWeights: split.val.weights };

    let trainer: Trainer;
    if (resumeBytes) {
      trainer = Trainer.resume(resumeBytes, data);
      trainer.config.maxSteps = maxSteps;
    } else {
      const mc = base ? base.config : modelConfig(isPreset(job.model) ? job.model : 'gpt-nano', tokenizer.vocabSize, { blockSize: T, dropout: hp.dropout });
      const model = base?.weights ?? Transformer.create(mc, job.seed);
      const tc = defaultTrainConfig(mc, {
        objective: method === 'mlm' ? 'mlm' : 'causal',
        maxSteps,
        batchSize: hp.batch_size,
        seqLen: T,
        gradAccumSteps: hp.gradient_accumulation_steps,
        maxGradNorm: hp.max_grad_norm,
        evalInterval: hp.eval_interval,
        evalBatches: hp.eval_batches,
        logInterval: hp.log_interval,
        checkpointInterval: hp.checkpoint_interval,
        seed: job.seed,
        schedule: { kind: hp.lr_scheduler, lr: hp.learning_rate, minLr: hp.min_learning_rate, warmupSteps, decaySteps: maxSteps },
        optimizer: { kind: hp.optimizer, beta1: hp.beta1, beta2: hp.beta2, eps: 1e-8, weightDecay: hp.weight_decay },
      });
      trainer = new Trainer(model, tokenizer, tc, data);
    }
    const resolved = { ...hp, max_steps: maxSteps, warmup_steps: warmupSteps, vocab_size: tokenizer.vocabSize };
    const choice = backendChoice();
    const backend = choice ? `${choice.name}${choice.matmul === 'openblas' ? '+openblas' : ''}` : 'unknown';
    const started = await rec.transition(['validating_files'], 'running', {
      hyperparameters: resolved as unknown as Prisma.InputJsonValue,
      backend,
      startedAt: job.startedAt ?? new Date(),
    });
    if (!started) return;
    await rec.event(
      trainer.step > 0
        ? `Resumed training at step ${trainer.step} of ${maxSteps} on ${backend}`
        : `Fine-tuning job started: ${trainer.model.numParams().toLocaleString('en')} parameters, ${maxSteps} steps, ${split.train.tokens.length} training tokens, backend ${backend}`,
      { data: { backend, max_steps: maxSteps, vocab_size: tokenizer.vocabSize, train_tokens: split.train.tokens.length } },
    );
    deps.log(`job ${job.id}: training on ${backend}, ${maxSteps} steps`);

    const tokensPerStep = trainer.config.batchSize * trainer.config.seqLen * trainer.config.gradAccumSteps;
    let lastTrainLoss: number | undefined;
    let lastEval: { loss: number; accuracy: number } | undefined;
    const result = await trainer.run(
      {
        onStep: async (m) => {
          lastTrainLoss = m.loss;
          await rec.metric(m.step, { trainLoss: m.loss, lr: m.lr, gradNorm: m.gradNorm, tokensPerSec: m.tokensPerSec });
          await rec.event(`Step ${m.step}/${maxSteps}: training loss=${m.loss.toFixed(4)}`, {
            type: 'metrics',
            data: { step: m.step, train_loss: m.loss, learning_rate: m.lr, grad_norm: m.gradNorm, tokens_per_second: m.tokensPerSec, total_steps: maxSteps },
          });
          await db.job.update({ where: { id: job.id }, data: { trainedTokens: m.step * tokensPerStep } });
          await progress(Math.round((100 * m.step) / maxSteps));
        },
        onEval: async (e) => {
          lastEval = e;
          await rec.metric(e.step, { validLoss: e.loss, validAcc: e.accuracy });
          await rec.event(
            `Step ${e.step}: validation loss=${e.loss.toFixed(4)}, perplexity=${e.perplexity.toFixed(2)}, accuracy=${(100 * e.accuracy).toFixed(1)}%`,
            {
              type: 'metrics',
              data: { step: e.step, valid_loss: e.loss, valid_perplexity: e.perplexity, valid_mean_token_accuracy: e.accuracy },
            },
          );
        },
        onCheckpoint: async (step, bytes) => {
          const key = keys.checkpoint(job.projectId, job.id, step);
          await storage.put(key, bytes());
          await db.jobCheckpoint.upsert({
            where: { jobId_step: { jobId: job.id, step } },
            create: {
              id: `ftckpt-${job.id.slice(6)}-${step}`,
              projectId: job.projectId,
              jobId: job.id,
              step,
              storageKey: key,
              metrics: { step, train_loss: lastTrainLoss ?? null, valid_loss: lastEval?.loss ?? null, valid_mean_token_accuracy: lastEval?.accuracy ?? null },
            },
            update: {},
          });
          await pruneCheckpoints(deps, job.id, deps.cfg.keepCheckpoints);
          await rec.event(`Checkpoint saved at step ${step}`, { data: { step } });
        },
      },
      ctl.signal,
    );

    if (result.status === 'aborted') {
      const reason = ctl.signal.reason as StopReason;
      if (reason === 'cancel') {
        await rec.event(`Training stopped at step ${result.step}`);
        return;
      }
      // pause or shutdown: keep the full training state to resume from
      const key = keys.checkpoint(job.projectId, job.id, result.step);
      await storage.put(key, trainer.checkpoint());
      await db.job.update({ where: { id: job.id }, data: { resumeKey: key } });
      if (reason === 'pause') {
        await rec.event(`Paused at step ${result.step}; resume continues from here`);
        return;
      }
      await rec.event(`Worker shutting down at step ${result.step}; the job will continue on another worker`, { level: 'warn' });
      throw new Error('worker shutdown'); // BullMQ retries the job, which resumes from resumeKey
    }

    const modelId = `ft:${job.model}:${job.suffix ?? 'crucible'}:${job.id.slice(6)}`;
    const prefix = keys.modelPrefix(job.projectId, modelId);
    for (const [name, bytes] of Object.entries(exportModel(trainer.model, trainer.tokenizer))) await storage.put(prefix + name, bytes);
    // The model record and the job's success are one transaction: a job cancelled at the last
    // step gets neither (and its objects are removed), a succeeded job always has its model.
    const done = await db.$transaction(async (tx) => {
      const moved = await tx.job.updateMany({
        where: { id: job.id, status: 'running' },
        data: { status: 'succeeded', fineTunedModel: modelId, finishedAt: new Date(), trainedTokens: result.step * tokensPerStep, resumeKey: null },
      });
      if (moved.count === 0) return false;
      await tx.model.upsert({
        where: { id: modelId },
        create: {
          id: modelId,
          projectId: job.projectId,
          jobId: job.id,
          baseModel: job.model,
          arch: trainer.model.config.arch,
          config: trainer.model.config as unknown as Prisma.InputJsonValue,
          storageKey: keys.model(job.projectId, modelId),
        },
        update: {},
      });
      return true;
    });
    if (!done) await storage.deletePrefix(prefix);
    if (done) {
      await rec.event(`New fine-tuned model created: ${modelId}`, { data: { model: modelId } });
      await rec.event('The job has successfully completed', { data: { valid_loss: result.lastEval?.loss ?? null } });
    }
    trainer.model.dispose();
    trainer.dispose();
  } catch (err) {
    if ((err as Error).message === 'worker shutdown') throw err;
    const e = err instanceof CrucibleError ? err : new CrucibleError('internal_error', `training failed: ${(err as Error).message}`, null);
    const code = err instanceof DatasetError ? 'invalid_training_file' : e.code;
    await rec.transition(['validating_files', 'running', 'queued'], 'failed', { error: { code, message: e.message, param: e.param }, finishedAt: new Date() });
    await rec.event(`Job failed: ${e.message}`, { level: 'error', data: { code, param: e.param } });
    deps.log(`job ${job.id} failed: ${(err as Error).stack ?? e.message}`);
    throw new UnrecoverableError(e.message);
  } finally {
    deps.control.release(job.id);
  }
}

async function pruneCheckpoints(deps: TrainDeps, jobId: string, keep: number): Promise<void> {
  const old = await deps.db.jobCheckpoint.findMany({ where: { jobId }, orderBy: { step: 'desc' }, skip: keep });
  for (const c of old) {
    await deps.storage.delete(c.storageKey);
    await deps.db.jobCheckpoint.delete({ where: { id: c.id } });
  }
}
