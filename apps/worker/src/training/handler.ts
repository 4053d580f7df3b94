// One run of a fine-tuning job, as named steps:
//   take the job       claim the queued attempt (a lease) and start heart-beating
//   read the datasets  the training (and validation) file texts
//   starting point     the latest checkpoint, the base model (supervised), or a new tokenizer
//   prepare            encode the data, finish the schedule, build or restore the trainer
//   train              metrics, events and checkpoints as it goes
//   settle             publish the model, or stop cleanly (cancel, pause, shutdown), or fail
// Every I/O call is retried in place while its dependency is unreachable (up to
// TRANSIENT_RETRY_MS), so an outage pauses training rather than losing it; only errors of the job
// itself (bad data, a config that does not fit) fail it. Every tensor is freed on every path.

import { randomUUID } from 'node:crypto';
import {
  createPreparedFile,
  documentsText,
  encodeDataset,
  encodePreferences,
  prepareFile,
  splitPairs,
  splitStream,
  type TokenStream,
  type ValidationLimits,
} from '@crucible/datasets';
import type { AttemptWriter, NewModel, Store } from '@crucible/db';
import {
  CrucibleError,
  effectiveLimits,
  type FileRecord,
  finalizeSchedule,
  fineTunedModelName,
  isPreset,
  type JobFailure,
  JobInputError,
  type JobRecord,
  type LimitOverrides,
  type NewJobEvent,
  type Precision,
  type PreparationRules,
  retryTransient,
  type StepMetrics,
  type TrainingPayload,
  TransientError,
  tokensPerStep,
  trainConfigFor,
  type ValidationMetrics,
} from '@crucible/domain';
import { heartbeatSilence, recoverLostJob, requeueAttempt, type TrainingQueue } from '@crucible/queue';
import { keys, type Storage } from '@crucible/storage';
import {
  type BackendChoice,
  BestTracker,
  backendChoice,
  bf16Engine,
  checkpointInfo,
  DataParallel,
  type DecodedCheckpoint,
  decodeCheckpoint,
  defaultPrecision,
  type EvalMetrics,
  effectivePrecision,
  exportModel,
  type ModelConfig,
  modelConfig,
  type StepMetrics as StepReport,
  storedConfig,
  type Tokenizer,
  type TrainConfig,
  type TrainData,
  Trainer,
  type TrainResult,
  Transformer,
  trainTokenizer,
} from '@crucible/trainer';
import { TRAINING_DEFAULTS as D, type PresetName } from '@crucible/training-config';
import { UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';
import type { WorkerConfig } from '../config';
import type { JobControl, StopReason } from '../control';
import { type LoadedWeights, ModelLoader } from '../model-loader';
import { internalFailureMessage } from './failure';
import { clearRendezvousFailures, countRendezvousFailure, Gang, GangAbandoned, GangTimeout, RankLost } from './gang';
import { Heartbeat } from './heartbeat';
import { Owned } from './owned';
import { reinforcementData } from './reinforcement';

export interface TrainDeps {
  store: Store;
  storage: Storage;
  control: JobControl;
  queue: TrainingQueue;
  cfg: WorkerConfig;
  /** Commands (a multi-worker job's gang meets here). */
  redis: Redis;
  log: (msg: string, fields?: Record<string, unknown>) => void;
  /** Puts this queue entry back for `ms` (the project is at its concurrent-jobs limit); never returns. */
  defer?: (ms: number) => Promise<never>;
}

/** How long a job waits before it tries again when its project is at MAX_CONCURRENT_JOBS. */
export const CONCURRENCY_RETRY_MS = 2_000;

/** A job's prepared training file is checked for usable records only: its source passed the upload limits. */
const PREPARED_FILE_LIMITS: ValidationLimits = { maxLineBytes: Number.MAX_SAFE_INTEGER, minExamples: 1, maxBytes: Number.MAX_SAFE_INTEGER };

interface Dataset {
  file: FileRecord;
  text: string;
}

/** `base`: the job's base weights when they were loaded here and a reinforcement job needs them again (its reference). */
type StartingPoint =
  | { kind: 'checkpoint'; ck: DecodedCheckpoint; step: number; base?: LoadedWeights }
  | { kind: 'base'; model: Transformer; tokenizer: Tokenizer; base?: LoadedWeights }
  | { kind: 'scratch'; preset: PresetName; tokenizer: Tokenizer };

/** Entry point for one queue entry (one attempt of a job). */
export async function handleTraining(deps: TrainDeps, p: TrainingPayload, progress: (pct: number) => Promise<void>): Promise<void> {
  const job = await deps.store.jobs.get(p.projectId, p.jobId);
  if (!job || job.attempt !== p.attempt) return; // deleted, or an entry of an earlier attempt
  if ((p.rank ?? 0) > 0) return followRank(deps, job, p.rank as number);
  if (job.status === 'validating_files' || job.status === 'running') {
    // This attempt was started before and its run stopped (a worker died or gave up during an
    // outage). If no live worker holds it, a new attempt resumes it from its latest checkpoint.
    const silent = heartbeatSilence(job);
    if (silent >= deps.cfg.jobs.deadAfterMs) await recoverLostJob(deps.store, deps.queue, job, silent); // else a live worker holds it
    return;
  }
  const leaseId = `${deps.cfg.workerName}/${randomUUID().slice(0, 8)}`;
  const project = await deps.store.projects.get(job.projectId);
  const { maxConcurrentJobs } = effectiveLimits(deps.cfg.limits, project?.limits as LimitOverrides | null);
  // a multi-worker job: its ranks assemble before rank 0 claims it (a job is never held while its gang is incomplete)
  const gang = job.workers > 1 ? await assembleGang(deps, job, 0) : undefined;
  if (gang === null) return;
  const claimed = await deps.store.jobs.claim(job.projectId, job.id, job.attempt, leaseId, deps.defer ? maxConcurrentJobs : undefined);
  if (claimed === 'busy') {
    await gang?.leave();
    return (deps.defer as (ms: number) => Promise<never>)(CONCURRENCY_RETRY_MS);
  }
  if (!claimed) {
    await gang?.abandon('the job was cancelled or paused before it started');
    gang?.close();
    return;
  }
  await new TrainingRun(deps, claimed, leaseId, progress, gang).execute();
}

/**
 * This worker's member of a job's gang, once every rank joined; null when rank 0 gave it up. A
 * gang that does not assemble within GANG_ASSEMBLY_MS lets this worker go: its entry waits
 * GANG_RETRY_MS and tries again.
 */
async function assembleGang(deps: TrainDeps, job: JobRecord, rank: number): Promise<Gang | null> {
  const { cfg } = deps;
  const gang = new Gang(
    deps.redis,
    cfg.queuePrefix,
    job.id,
    job.attempt,
    job.workers,
    { rank, worker: cfg.workerName, host: cfg.gang.advertiseHost, bf16: bf16Engine() !== undefined },
    { ...cfg.gang, beatMs: cfg.jobs.heartbeatMs, deadMs: cfg.jobs.deadAfterMs },
  );
  try {
    await gang.join();
    return gang;
  } catch (err) {
    if (err instanceof GangAbandoned) return null;
    if (!(err instanceof GangTimeout)) throw err;
    return waitAgain(deps, job, rank, err);
  }
}

/** A gang that did not form in time: this rank's entry waits GANG_RETRY_MS and tries again. */
function waitAgain(deps: TrainDeps, job: JobRecord, rank: number, err: GangTimeout): Promise<never> {
  deps.log(`job ${job.id}: rank ${rank} waits again: ${err.message}`, { job_id: job.id, rank });
  if (!deps.defer) throw err;
  return deps.defer(deps.cfg.gang.retryMs);
}

/**
 * Rank 1 and up of a multi-worker job: joins the gang, waits for rank 0 to have the data ready,
 * then trains its share of every batch with no writes of its own (rank 0 records the job).
 */
async function followRank(deps: TrainDeps, job: JobRecord, rank: number): Promise<void> {
  if (job.status !== 'queued' && job.status !== 'validating_files') return; // ended, paused or already running without it
  const gang = await assembleGang(deps, job, rank);
  if (!gang) return;
  try {
    await gang.stage('data');
  } catch (err) {
    if (err instanceof GangAbandoned || err instanceof RankLost) {
      gang.close();
      if (err instanceof RankLost) deps.log(`job ${job.id}: rank ${rank} stops: ${err.message}`, { job_id: job.id, rank });
      return;
    }
    if (!(err instanceof GangTimeout)) throw err;
    await gang.leave();
    gang.close();
    return waitAgain(deps, job, rank, err);
  }
  const current = await deps.store.jobs.get(job.projectId, job.id); // with the file rank 0 prepared
  if (!current || current.attempt !== job.attempt) return;
  await new TrainingRun(deps, current, `${deps.cfg.workerName}/rank-${rank}`, async () => {}, gang).execute();
}

/** What `encode` throws is the file's fault: a JobInputError naming the parameter. */
function asJobInput<T>(param: string, encode: () => T): T {
  try {
    return encode();
  } catch (err) {
    throw new JobInputError('invalid_file', `${param}: ${(err as Error).message}`, param);
  }
}

/** What one micro-batch holds, as the start event says it: tokens, pairs (dpo) or prompts and their answers (reinforcement). */
function microBatch(c: TrainConfig): string {
  if (c.objective === 'dpo') return `${c.batchSize} preference pairs`;
  if (c.objective === 'grpo') return `${c.batchSize} prompts x ${c.grpo?.groupSize} sampled answers`;
  return `${c.batchSize * c.seqLen} tokens`;
}

/** Early stopping's patience and the best evaluation so far. */
interface Trackers {
  stopper: BestTracker;
  best: BestTracker;
}

class TrainingRun {
  private readonly owned = new Owned();
  private readonly ctl: AbortController;
  /** This run's writes, fenced by its attempt. */
  private readonly writes: AttemptWriter;
  private heartbeat: Heartbeat | undefined;
  private step = 0;
  /** The passes the schedule chose (n_epochs auto resolved for the data). */
  private nEpochs: number | undefined;
  private lastTrainLoss: number | undefined;
  private lastEval: EvalMetrics | undefined;
  /** The step of the best evaluation so far when no checkpoint exists there yet: a checkpoint saved at it is the best. */
  private bestPending: number | undefined;

  /** Rank 1 and up of a multi-worker job: trains, and records nothing (rank 0 holds the job). */
  private readonly follower: boolean;
  /** Whether the gang's ranks connected (a failure before is a failed rendezvous). */
  private connected = false;

  constructor(
    private readonly deps: TrainDeps,
    private readonly job: JobRecord,
    private readonly leaseId: string,
    private readonly progress: (pct: number) => Promise<void>,
    /** A multi-worker job's gang, assembled. */
    private readonly gang?: Gang,
  ) {
    this.follower = (gang?.rank ?? 0) > 0;
    // pause and cancel reach rank 0, and the others stop at the same step through the collectives;
    // a rank's own worker shutting down stops them all too (rank 0 then saves a checkpoint and
    // queues the job again)
    this.ctl = deps.control.register(this.controlKey);
    this.writes = deps.store.jobs.attemptWriter(job.projectId, job.id, job.attempt);
  }

  async execute(): Promise<void> {
    if (!this.follower) {
      this.heartbeat = new Heartbeat(this.deps.store, this.job, this.leaseId, this.deps.cfg.jobs.heartbeatMs, (reason) => this.ctl.abort(reason));
    }
    try {
      if (!this.follower) {
        await this.event(
          this.job.attempt > 0 || this.job.startedAt ? `Validating training file (attempt ${this.job.attempt + 1})` : 'Validating training file',
        );
      }
      const datasets = await this.readDatasets();
      if (this.gang && !this.follower) await this.gang.stage('data'); // the others read the file prepared here
      const start = await this.startingPoint(datasets.train);
      const trainer = await this.prepare(start, datasets);
      if (this.gang) await this.connectGang(this.gang);
      if (this.follower) {
        await trainer.run({}, this.ctl.signal);
        return;
      }
      if (!(await this.markRunning(trainer, start))) return;
      const result = await this.train(trainer);
      await this.settle(trainer, result);
    } catch (err) {
      if (this.follower) this.followerStopped(err);
      else if (err instanceof RankLost || err instanceof GangTimeout) await this.requeueGang(err);
      else if (err instanceof TransientError && this.gang && !this.connected) {
        // Redis lost while the gang was meeting: said, and tried again like a failed rendezvous
        const g = this.gang;
        await this.requeueGang(new RankLost(`rank ${g.rank} (${g.me.worker} at ${g.me.host}) lost Redis during the rendezvous: ${err.message}`));
      } else if (!(err instanceof GangAbandoned)) await this.fail(err);
    } finally {
      await this.heartbeat?.stop();
      this.deps.control.release(this.controlKey);
      this.gang?.close();
      if (this.gang && !this.follower) await this.gang.abandon('the attempt ended').catch(() => {});
      this.owned.disposeAll();
    }
  }

  /** This run in the worker's job control: the job's id for rank 0 (pause and cancel name it). */
  private get controlKey(): string {
    return this.follower ? `${this.job.id}/rank-${this.gang?.rank}` : this.job.id;
  }

  /**
   * Every trainer is built: the ranks connect through Gloo. A rank that cannot (its advertised
   * address is not its own, a peer it cannot reach) says so in a job event naming it and its
   * address, and gives the gang up; rank 0 then queues the attempt again.
   */
  private async connectGang(gang: Gang): Promise<void> {
    await gang.stage('built');
    try {
      await gang.connect(this.deps.cfg.redisUrl);
    } catch (err) {
      if (this.follower) {
        await this.event(
          `Rank ${gang.rank} could not join the other ranks: ${(err as Error).message} (check WORKER_ADVERTISE_HOST and the ports between workers)`,
          {
            level: 'warn',
            data: { reason: 'rendezvous_failed', rank: gang.rank, worker: gang.me.worker, host: gang.me.host },
          },
        ).catch(() => {});
        await gang.abandon((err as Error).message).catch(() => {});
      }
      throw err;
    }
    this.connected = true;
    if (this.follower) return;
    await clearRendezvousFailures(this.deps.redis, this.deps.cfg.queuePrefix, this.job.id).catch(() => {});
    const ranks = gang.ranks();
    await this.io(() => this.deps.store.jobs.setRanks(this.job.projectId, this.job.id, this.leaseId, ranks));
    await this.event(`Training on ${gang.size} workers: ${gang.describe()}`, { data: { workers: gang.size, ranks } });
  }

  /** A rank that stops: logged (rank 0 records the job, and queues it again when a rank is lost). */
  private followerStopped(err: unknown): void {
    if (err instanceof GangAbandoned) return;
    this.deps.log(`job ${this.job.id}: rank ${this.gang?.rank} stopped: ${(err as Error).message}`, { job_id: this.job.id, level: 'warn' });
  }

  /**
   * Rank 0 lost a rank (or the gang never connected): the attempt goes back to the queue and a new
   * gang resumes it from the latest checkpoint. A gang that fails its rendezvous
   * GANG_MAX_RENDEZVOUS_FAILURES times in a row fails the job instead, saying why.
   */
  private async requeueGang(err: Error): Promise<void> {
    const { cfg, redis } = this.deps;
    if (!this.connected) {
      const failures = await countRendezvousFailure(redis, cfg.queuePrefix, this.job.id).catch(() => 1);
      if (failures >= cfg.gang.maxRendezvousFailures) {
        await this.fail(
          new CrucibleError(
            'unsupported_resources',
            `the job's ${this.job.workers} workers failed to connect ${failures} times in a row; the last time: ${err.message}`,
            'resources.workers',
          ),
        );
        return;
      }
    }
    this.deps.log(`job ${this.job.id}: ${err.message}`, { job_id: this.job.id, level: 'warn' });
    await this.io(() =>
      requeueAttempt(this.deps.store, this.deps.queue, this.job, {
        message: `${err.message}; queued again to resume from the latest checkpoint when ${this.job.workers} workers are free`,
        level: 'warn',
        data: { reason: this.connected ? 'rank_lost' : 'rendezvous_failed', step: this.step },
      }),
    );
  }

  // ── steps ─────────────────────────────────────────────────────────────────────────────────

  private async readDatasets(): Promise<{ train: Dataset; val?: Dataset }> {
    // with data preparation: the file an earlier attempt prepared, else one prepared now
    const rules = this.job.preparation;
    const prepared = rules ? (this.job.preparedFileId ?? (await this.prepareTrainingFile(rules))) : undefined;
    const train = prepared ? await this.readDataset(prepared, 'prepared_training_file') : await this.readDataset(this.job.trainingFileId, 'training_file');
    const val = this.job.validationFileId ? await this.readDataset(this.job.validationFileId, 'validation_file') : undefined;
    return { train, val };
  }

  private async fileOf(id: string, param: string): Promise<FileRecord> {
    const file = await this.io(() => this.deps.store.files.get(this.job.projectId, id));
    if (!file) throw new JobInputError('invalid_file', `${param} ${id} no longer exists`, param);
    return file;
  }

  private async readDataset(id: string, param: string): Promise<Dataset> {
    const file = await this.fileOf(id, param);
    return { file, text: (await this.io(() => this.deps.storage.get(file.storageKey))).toString('utf8') };
  }

  /** Prepares the training file by the job's rules (the same prepareFile() as the API's) and returns the new file's id. */
  private async prepareTrainingFile(rules: PreparationRules): Promise<string> {
    const { store, storage } = this.deps;
    const source = await this.fileOf(this.job.trainingFileId, 'training_file');
    await this.event('Preparing the training file');
    // a run that dies before settling leaves a pending record: the API's processor prepares it from its source
    const created = await this.io(() => createPreparedFile(store.files, source, rules));
    const done = await this.io(() => prepareFile({ files: store.files, storage }, created, source, PREPARED_FILE_LIMITS));
    if (done?.state !== 'processed' || !done.report) {
      const why = done ? done.validation.problems[0]?.message : 'it was deleted while being prepared';
      throw new JobInputError('invalid_file', `the prepared training file ${created.id} is not usable: ${why}`, 'data_preparation');
    }
    await this.io(() => store.jobs.setPreparedFile(this.job.projectId, this.job.id, this.leaseId, created.id));
    const { records_in, records_out, counts: c, pii } = done.report;
    await this.event(
      `Prepared the training file as ${created.id}: ${records_in} records in, ${records_out} out (${c.exact_duplicates} exact and ${c.near_duplicates} near duplicates removed, ${c.scrub_pii} records scrubbed of personal data)`,
      { data: { prepared_file: created.id, records_in, records_out, counts: c, pii } },
    );
    return created.id;
  }

  /**
   * Where training starts: the latest checkpoint of this job, else trained weights (a model or a
   * checkpoint named by the job's model, with LoRA or adapters added when the job asks), else a
   * preset from scratch with a tokenizer trained on the data.
   */
  private async startingPoint(train: Dataset): Promise<StartingPoint> {
    const { store, storage } = this.deps;
    const hp = this.job.hyperparameters;
    const latest = await this.io(() => store.jobs.latestCheckpoint(this.job.projectId, this.job.id));
    if (latest) {
      const bytes = await this.io(() => storage.get(latest.storageKey));
      // an adapter-only checkpoint (LoRA, adapters) goes on top of the job's base weights
      const base = checkpointInfo(bytes).partial ? await this.baseWeights() : undefined;
      const ck = decodeCheckpoint(bytes, base?.weights);
      this.owned.add(ck.model);
      return { kind: 'checkpoint', ck, step: latest.step, ...this.keptForReference(base) };
    }
    const preset = this.job.model;
    if (!isPreset(preset)) {
      const base = await this.baseWeights();
      const config: ModelConfig = { ...base.config, dropout: hp.dropout };
      if (hp.peft) config.peft = hp.peft;
      const model = this.owned.add(Transformer.create(config, this.job.seed, base.weights));
      return { kind: 'base', model, tokenizer: base.tokenizer, ...this.keptForReference(base) };
    }
    const corpus = documentsText(train.text, train.file.format);
    const tokenizer = trainTokenizer(corpus, hp.tokenizer.type === 'bpe' ? { type: 'bpe', vocabSize: hp.tokenizer.vocab_size } : { type: 'char' });
    return { kind: 'scratch', preset, tokenizer };
  }

  /** Base weights loaded for the start, kept for a reinforcement job's reference (other jobs let them go). */
  private keptForReference(base: LoadedWeights | undefined): { base?: LoadedWeights } {
    return base && this.job.method === 'reinforcement' ? { base } : {};
  }

  /** The trained weights the job starts from (its `model`: a model id or a checkpoint). */
  private async baseWeights(): Promise<LoadedWeights> {
    const loader = new ModelLoader(this.deps.store, this.deps.storage);
    try {
      return await this.io(() => loader.load(this.job.projectId, this.job.model));
    } catch (err) {
      // a base model that does not load is the job's input; an outage is not
      if (err instanceof CrucibleError && !(err instanceof TransientError))
        throw new JobInputError(err.code, `base model ${this.job.model}: ${err.message}`, 'model');
      throw err;
    }
  }

  private async prepare(start: StartingPoint, datasets: { train: Dataset; val?: Dataset }): Promise<Trainer> {
    const hp = this.job.hyperparameters;
    const T = hp.block_size;
    const tokenizer = start.kind === 'checkpoint' ? start.ck.tokenizer : start.tokenizer;
    const { data, trainSize, examples } =
      this.job.method === 'dpo'
        ? this.encodePairs(datasets, tokenizer)
        : this.job.method === 'reinforcement'
          ? await this.encodePrompts(datasets, tokenizer, start)
          : this.encodeTokens(datasets, tokenizer);
    const schedule = finalizeSchedule(hp, { size: trainSize, examples });
    this.nEpochs = schedule.nEpochs;
    let trainer: Trainer;
    try {
      if (start.kind === 'checkpoint') {
        // takes over the checkpoint's model; the steps come from this attempt's data
        trainer = Trainer.fromCheckpoint(start.ck, data, { maxSteps: schedule.maxSteps, precision: this.precision }, this.parallel());
      } else {
        const model =
          start.kind === 'base'
            ? start.model
            : this.owned.add(Transformer.create(modelConfig(start.preset, tokenizer.vocabSize, { blockSize: T, dropout: hp.dropout }), this.job.seed));
        trainer = new Trainer(
          model,
          tokenizer,
          { ...trainConfigFor(hp, this.job.method, schedule, this.job.seed), precision: this.precision },
          data,
          undefined,
          this.parallel(),
        );
      }
    } catch (err) {
      if (err instanceof RangeError) throw new JobInputError('invalid_hyperparameters', err.message, 'hyperparameters');
      throw err;
    }
    this.owned.add({ dispose: () => trainer.dispose() });
    trainer.baseModel = this.job.model; // adapter-only checkpoints name their base
    this.step = trainer.step;
    return trainer;
  }

  /** A dpo job's preference pairs (a share of the training file's for validation when no validation file is given); its size is its training pairs. */
  private encodePairs(datasets: { train: Dataset; val?: Dataset }, tokenizer: Tokenizer): { data: TrainData; trainSize: number; examples: number } {
    const hp = this.job.hyperparameters;
    const encode = (d: Dataset, param: string) => asJobInput(param, () => encodePreferences(d.text, tokenizer));
    const all = encode(datasets.train, 'training_file');
    if (!datasets.val && all.length < 2) {
      throw new JobInputError(
        'invalid_file',
        `the training file holds ${all.length} preference pair(s); holding some out for validation needs at least 2 (or give a validation_file)`,
        'training_file',
      );
    }
    const split = datasets.val
      ? { train: all, val: encode(datasets.val, 'validation_file') }
      : splitPairs(all, hp.validation_split, hp.validation_split_seed ?? null);
    const empty = new Int32Array(0);
    return { data: { train: empty, val: empty, preference: split }, trainSize: split.train.length, examples: split.train.length };
  }

  /**
   * A reinforcement job's prompts, grader and reference: the base weights (a resumed run's model
   * has moved), those the start loaded, or loaded now for a full checkpoint.
   */
  private async encodePrompts(
    datasets: { train: Dataset; val?: Dataset },
    tokenizer: Tokenizer,
    start: StartingPoint,
  ): Promise<{ data: TrainData; trainSize: number; examples: number }> {
    const hp = this.job.hyperparameters;
    const settings = hp.reinforcement;
    if (!settings) throw new JobInputError('invalid_grader', 'this reinforcement job has no grader', 'method.reinforcement.grader');
    const base = (start.kind !== 'scratch' ? start.base : undefined) ?? (await this.baseWeights());
    return reinforcementData(datasets, tokenizer, settings, { ratio: hp.validation_split, seed: hp.validation_split_seed ?? null }, base, (m) =>
      this.owned.add(m),
    );
  }

  /** Token streams for the other methods, as encodeSplit makes them; the size is the training tokens. */
  private encodeTokens(datasets: { train: Dataset; val?: Dataset }, tokenizer: Tokenizer): { data: TrainData; trainSize: number; examples: number } {
    const split = this.encodeSplit(datasets, tokenizer);
    const T = this.job.hyperparameters.block_size;
    return {
      data: {
        train: split.train.tokens,
        val: split.val.tokens,
        trainWeights: split.train.weights,
        valWeights: split.val.weights,
        trainDocStarts: split.train.docStarts,
        valDocStarts: split.val.docStarts,
      },
      trainSize: split.train.tokens.length,
      // a fine-tuning example is a record (a conversation); pretraining's are its blocks
      examples: split.train.docStarts?.length ?? Math.floor(split.train.tokens.length / T),
    };
  }

  /** The training and validation tokens (a share of the training file when no validation file is given), each long enough for one block. */
  private encodeSplit(datasets: { train: Dataset; val?: Dataset }, tokenizer: Tokenizer): { train: TokenStream; val: TokenStream } {
    const hp = this.job.hyperparameters;
    const encode = (d: Dataset, param: string): TokenStream => asJobInput(param, () => encodeDataset(d.text, d.file.format, tokenizer, hp.chat_loss));
    const all = encode(datasets.train, 'training_file');
    const validationShare = hp.validation_split ?? D.validationSplit; // records from before the field lack it
    const split = datasets.val
      ? { train: all, val: encode(datasets.val, 'validation_file') }
      : splitStream(all, validationShare, hp.validation_split_seed ?? null);
    const T = hp.block_size;
    for (const [name, s] of [
      ['training', split.train],
      ['validation', split.val],
    ] as const) {
      if (s.tokens.length < T + 1) {
        throw new JobInputError(
          'invalid_file',
          `the ${name} data has ${s.tokens.length} tokens; block_size ${T} needs at least ${T + 1}${datasets.val ? '' : ` (validation is ${Math.round(100 * validationShare)}% of the training file)`}`,
          name === 'training' ? 'training_file' : 'validation_file',
        );
      }
    }
    return split;
  }

  /**
   * The precision this job asks for: its own (as requested, or as an earlier attempt ran it), else
   * the worker's NATIVE_PRECISION, whose default 'auto' lets the CPU choose.
   */
  private wantedPrecision(): Precision {
    const own = this.deps.cfg.nativePrecision;
    return this.job.precision ?? (own === 'auto' ? defaultPrecision() : own);
  }

  /** The precision it trains in here: bf16 only where this worker (every worker of a gang) runs bf16 products. */
  private get precision(): Precision {
    return this.gang ? this.gang.precision(this.wantedPrecision()) : effectivePrecision(this.wantedPrecision());
  }

  /** A multi-worker job's data parallelism: this rank's share of every batch, its gradients averaged over the gang. */
  private parallel(): DataParallel | undefined {
    return this.gang && new DataParallel(this.gang.collective(), { checksumInterval: this.deps.cfg.gang.checksumInterval });
  }

  private async markRunning(trainer: Trainer, start: StartingPoint): Promise<boolean> {
    const { store } = this.deps;
    const maxSteps = trainer.config.maxSteps;
    const choice = backendChoice();
    const precision = this.precision;
    const backend = choice ? backendLabel(choice, precision) : 'unknown';
    const vocab = trainer.tokenizer.vocabSize;
    const running = await this.io(() =>
      store.jobs.transition(this.job.projectId, this.job.id, 'running', {
        leaseId: this.leaseId,
        set: {
          hyperparameters: {
            ...this.job.hyperparameters,
            n_epochs: this.nEpochs ?? this.job.hyperparameters.n_epochs,
            max_steps: maxSteps,
            warmup_steps: trainer.config.schedule.warmupSteps,
            vocab_size: vocab,
          },
          backend,
          precision,
          startedAt: this.job.startedAt ?? new Date(),
        },
      }),
    );
    if (!running) return false;
    // the steps after the starting point are redone: their earlier metrics and metric events go
    const from = start.kind === 'checkpoint' ? start.step : 0;
    const gone = await this.io(() => this.writes.discardAfterStep(from));
    if (!gone) {
      this.superseded();
      return false;
    }
    const redone = Math.max(0, gone.lastStep - from);
    const wanted = this.wantedPrecision();
    if (wanted !== precision) {
      await this.event(
        `bf16 was requested, but this worker runs no bf16 products (its CPU has neither AVX512-BF16 nor AMX-BF16, or it is not on the native backend): training in float32`,
        { level: 'warn', data: { requested_precision: wanted, precision } },
      );
    }
    if (start.kind === 'checkpoint') {
      await this.event(`Resumed training at step ${from} of ${maxSteps} on ${backend} (${redone} steps to redo)`, {
        data: { resume_step: from, steps_redone: redone, attempt: this.job.attempt + 1, backend, precision },
      });
    } else {
      await this.event(
        `Fine-tuning job started: ${trainer.model.numParams().toLocaleString('en')} parameters, ${maxSteps} steps, ${microBatch(trainer.config)} per micro-batch, backend ${backend}${redone > 0 ? ` (no checkpoint yet: ${redone} steps to redo)` : ''}`,
        { data: { backend, precision, max_steps: maxSteps, vocab_size: vocab, ...(redone > 0 ? { resume_step: 0, steps_redone: redone } : {}) } },
      );
    }
    this.deps.log(`job ${this.job.id}: training on ${backend} from step ${trainer.step} of ${maxSteps}`, { job_id: this.job.id, attempt: this.job.attempt });
    return true;
  }

  /**
   * The early-stopping tracker (every evaluation, with min_delta) and the best-checkpoint tracker
   * (trained steps only: step 0 is the starting point, not a checkpoint), as they stood at the
   * run's starting step: replayed from the evaluations recorded before it (the evaluation at the
   * starting step itself runs again).
   */
  private async trackers(trainer: Trainer): Promise<Trackers> {
    const es = this.job.hyperparameters.early_stopping ?? null;
    const stopper = new BestTracker(es ? { patience: es.patience, minDelta: es.min_delta } : null);
    const best = new BestTracker(null);
    const rows = await this.io(() => this.deps.store.jobs.metrics(this.job.projectId, this.job.id));
    for (const r of rows) {
      if (r.validLoss === null || r.step >= trainer.step) continue;
      stopper.update(r.step, r.validLoss);
      if (r.step > 0) best.update(r.step, r.validLoss);
    }
    return { stopper, best };
  }

  private async train(trainer: Trainer): Promise<TrainResult> {
    const trackers = await this.trackers(trainer);
    return trainer.run(
      {
        onStep: (m) => this.recordStep(m, trainer.config.maxSteps),
        onEval: (e) => this.recordEvaluation(e, trainer, trackers),
        onCheckpoint: (step, bytes) => this.saveCheckpoint(step, bytes()),
      },
      this.ctl.signal,
    );
  }

  /** A logged step: its metrics, its event and the job's trained tokens, in one fenced statement. */
  private async recordStep(m: StepReport, maxSteps: number): Promise<void> {
    this.step = m.step;
    this.lastTrainLoss = m.loss;
    const data: StepMetrics = {
      kind: 'step',
      step: m.step,
      total_steps: maxSteps,
      train_loss: m.loss,
      learning_rate: m.lr,
      grad_norm: m.gradNorm,
      tokens_per_second: m.tokensPerSec,
      ...(m.preference && {
        'rewards/chosen': m.preference.chosen,
        'rewards/rejected': m.preference.rejected,
        'rewards/margins': m.preference.margins,
        'rewards/accuracies': m.preference.accuracies,
      }),
      ...(m.reinforcement && {
        reward: m.reinforcement.reward,
        reward_std: m.reinforcement.rewardStd,
        kl: m.reinforcement.kl,
        frac_reward_nonzero_std: m.reinforcement.fracNonzeroStd,
        completion_length: m.reinforcement.completionLength,
      }),
    };
    const trained = m.step * tokensPerStep(this.job.hyperparameters);
    const reward = m.reinforcement ? `, mean reward=${m.reinforcement.reward.toFixed(3)}` : '';
    await this.fenced(() => this.writes.recordStep(data, `Step ${m.step}/${maxSteps}: training loss=${m.loss.toFixed(4)}${reward}`, trained));
    this.progress(Math.round((100 * m.step) / maxSteps)).catch(() => {}); // queue bookkeeping only
  }

  /** An evaluation: recorded, the best kept as a checkpoint, and 'stop' when early stopping says so. */
  private async recordEvaluation(e: EvalMetrics, trainer: Trainer, { stopper, best }: Trackers): Promise<'stop' | undefined> {
    this.lastEval = e;
    const { stop } = stopper.update(e.step, e.loss);
    const improved = e.step > 0 && best.update(e.step, e.loss).improved;
    const data: ValidationMetrics = {
      kind: 'evaluation',
      step: e.step,
      valid_loss: e.loss,
      valid_perplexity: e.perplexity,
      valid_mean_token_accuracy: e.accuracy,
      best: improved,
      ...(e.preference && {
        'valid_rewards/chosen': e.preference.chosen,
        'valid_rewards/rejected': e.preference.rejected,
        'valid_rewards/margins': e.preference.margins,
        'valid_rewards/accuracies': e.preference.accuracies,
      }),
      ...(e.reinforcement && { valid_reward: e.reinforcement.reward, valid_completion_length: e.reinforcement.completionLength }),
    };
    const rewards = e.preference
      ? `, reward accuracy=${(100 * e.preference.accuracies).toFixed(1)}%, margin=${e.preference.margins.toFixed(3)}`
      : e.reinforcement
        ? `, mean reward=${e.reinforcement.reward.toFixed(3)}`
        : '';
    const message = `Step ${e.step}: validation loss=${e.loss.toFixed(4)}, perplexity=${e.perplexity.toFixed(2)}, accuracy=${(100 * e.accuracy).toFixed(1)}%${rewards}${improved ? ' (best so far)' : ''}`;
    // its metrics, its event, and the numbers of a checkpoint saved at this step (just before): one transaction
    const recorded = await this.io(() => this.writes.recordEvaluation(data, message, this.checkpointMetrics(e.step)));
    if (!recorded) {
      this.superseded();
      return undefined;
    }
    if (improved) {
      // the best weights are kept as a checkpoint: one saved at this step is marked; at the last
      // step (or when stopping) the run's final checkpoint follows at once and is marked then;
      // otherwise one is saved now when the job selects or stops by the best (else the best is
      // the best of the checkpoint_interval checkpoints)
      if (recorded.checkpoint) await this.fenced(() => this.writes.markBestCheckpoint(e.step));
      else {
        this.bestPending = e.step; // a pause or shutdown at this step saves it too
        if (e.step !== trainer.config.maxSteps && !stop && this.keepsEveryBest()) await this.saveCheckpoint(e.step, trainer.checkpoint());
      }
    }
    if (!stop) return undefined;
    const es = this.job.hyperparameters.early_stopping;
    await this.event(
      `Early stopping at step ${e.step}: no improvement of the validation loss by more than ${es?.min_delta} in ${es?.patience} evaluations (best ${stopper.state.bestLoss.toFixed(4)} at step ${stopper.state.bestStep})`,
      { data: { step: e.step, best_step: stopper.state.bestStep, best_valid_loss: stopper.state.bestLoss } },
    );
    return 'stop';
  }

  private async settle(trainer: Trainer, result: TrainResult): Promise<void> {
    if (result.status === 'completed' || result.status === 'stopped_early') return this.publish(trainer, result);
    const reason = this.ctl.signal.reason as StopReason;
    if (reason === 'superseded') {
      this.deps.log(`job ${this.job.id}: another worker took over at step ${result.step}`, { job_id: this.job.id });
      return;
    }
    if (reason === 'cancel') return this.event(`Training stopped at step ${result.step}`);
    // pause or shutdown: keep the full training state to resume from
    await this.saveCheckpoint(result.step, trainer.checkpoint());
    if (reason === 'pause') return this.event(`Paused at step ${result.step}; resume continues from here`);
    // (no reason of its own: another rank of the gang stopped, its worker shutting down)
    const who = reason === undefined && this.gang ? "A worker of the job's gang is" : 'Worker';
    await this.io(() =>
      requeueAttempt(this.deps.store, this.deps.queue, this.job, {
        message: `${who} shutting down at step ${result.step}; the job continues on ${this.gang ? `${this.job.workers} other workers` : 'another worker'}`,
        level: 'warn',
        data: { reason: 'worker_shutdown', resume_step: result.step },
      }),
    );
  }

  private async publish(trainer: Trainer, result: TrainResult): Promise<void> {
    const { store, storage } = this.deps;
    const { projectId, id } = this.job;
    const modelId = fineTunedModelName(this.job.model, this.job.suffix, id);
    const prefix = keys.modelPrefix(projectId, modelId);
    const best = await this.io(() => store.jobs.bestCheckpoint(projectId, id));
    const useBest = this.job.hyperparameters.model_selection === 'best' && best !== null && best.step !== result.step;
    const model = useBest ? await this.checkpointModel(best.storageKey) : trainer.model;
    for (const [name, bytes] of Object.entries(exportModel(model, trainer.tokenizer, this.job.model))) {
      await this.io(() => storage.put(prefix + name, bytes));
    }
    const modelStep = useBest ? best.step : result.step;
    const selection = useBest ? `the best checkpoint (step ${modelStep})` : `the last step (${modelStep})`;
    const hp = this.job.hyperparameters;
    // success and the model record are one transaction: a job cancelled at the last step gets
    // neither (and its objects are removed); a succeeded job always has its model
    const record: NewModel = {
      id: modelId,
      baseModel: this.job.model,
      arch: trainer.model.config.arch,
      config: { ...storedConfig(trainer.model.config) }, // a LoRA model is stored merged
      peft: hp.peft ? { ...hp.peft } : null,
      storageKey: keys.model(projectId, modelId),
    };
    const events = [
      {
        message: `New fine-tuned model created: ${modelId}, from ${selection}`,
        data: { model: modelId, model_selection: hp.model_selection ?? 'last', model_step: modelStep },
      },
      {
        message: 'The job has successfully completed',
        data: {
          valid_loss: result.lastEval?.loss ?? null,
          best_step: best?.step ?? null,
          best_valid_loss: best?.metrics.valid_loss ?? null,
          stopped_early: result.status === 'stopped_early',
        },
      },
    ];
    const trainedTokens = result.step * tokensPerStep(hp);
    const done = await this.io(() => store.jobs.succeed(projectId, id, this.leaseId, record, { trainedTokens }, events));
    if (!done) await this.io(() => storage.deletePrefix(prefix));
  }

  /** A checkpoint's weights as a model (an adapter-only checkpoint goes on the job's base). */
  private async checkpointModel(storageKey: string): Promise<Transformer> {
    const bytes = await this.io(() => this.deps.storage.get(storageKey));
    const base = checkpointInfo(bytes).partial ? await this.baseWeights() : undefined;
    return this.owned.add(decodeCheckpoint(bytes, base?.weights).model);
  }

  private async fail(err: unknown): Promise<void> {
    const { store } = this.deps;
    const { projectId, id } = this.job;
    if (err instanceof TransientError) {
      // an outage outlasted the in-place retries: a new attempt resumes from the latest checkpoint
      // (if the database is still down, the reconciler requeues it once the heartbeats are seen missing)
      const dep = err.dependency;
      this.deps.log(`job ${id}: ${dep} unreachable for too long at step ${this.step}: ${err.message}`, { job_id: id, level: 'error' });
      await requeueAttempt(store, this.deps.queue, this.job, {
        message: `The ${dep} was unreachable for too long at step ${this.step}; queued again to resume from the latest checkpoint`,
        level: 'warn',
        data: { reason: 'dependency_unavailable', dependency: dep },
      }).catch(() => null);
      throw new UnrecoverableError(`${dep} unavailable; the job was queued again as a new attempt`);
    }
    const failure: JobFailure =
      err instanceof JobInputError
        ? { code: err.code === 'invalid_file' ? 'invalid_training_file' : err.code, message: err.message, param: err.param }
        : err instanceof CrucibleError
          ? { code: err.code, message: err.message, param: err.param }
          : { code: 'internal_error', message: internalFailureMessage(err, id, this.step), param: null };
    this.deps.log(`job ${id} failed: ${(err as Error).stack ?? failure.message}`, { job_id: id, level: 'error' });
    await this.io(() =>
      store.jobs.transition(projectId, id, 'failed', {
        set: { error: failure, finishedAt: new Date() },
        event: { message: `Job failed: ${failure.message}`, level: 'error', data: { code: failure.code, param: failure.param } },
      }),
    ).catch(() => {});
    throw new UnrecoverableError(failure.message);
  }

  // ── helpers ───────────────────────────────────────────────────────────────────────────────

  /** Whether every new best evaluation is saved as a checkpoint (the job publishes or stops by it). */
  private keepsEveryBest(): boolean {
    const hp = this.job.hyperparameters;
    return hp.model_selection === 'best' || Boolean(hp.early_stopping);
  }

  /** A checkpoint's metrics: the last training loss, and the evaluation at its step if there was one. */
  private checkpointMetrics(step: number): Record<string, number | null> {
    const e = this.lastEval?.step === step ? this.lastEval : undefined;
    return { step, train_loss: this.lastTrainLoss ?? null, valid_loss: e?.loss ?? null, valid_mean_token_accuracy: e?.accuracy ?? null };
  }

  private async saveCheckpoint(step: number, bytes: Uint8Array): Promise<void> {
    const { store, storage, cfg } = this.deps;
    const { projectId, id } = this.job;
    const key = keys.checkpoint(projectId, id, step);
    await this.io(() => storage.put(key, bytes));
    // the record and its event (superseded: the object stays for the run that replaced this one,
    // which may save the same step)
    if (!(await this.fenced(() => this.writes.saveCheckpoint(step, key, this.checkpointMetrics(step))))) return;
    if (this.bestPending === step) {
      this.bestPending = undefined;
      await this.fenced(() => this.writes.markBestCheckpoint(step));
    }
    for (const old of await this.io(() => store.jobs.checkpointsBeyond(projectId, id, cfg.keepCheckpoints))) {
      if (!(await this.fenced(() => this.writes.deleteCheckpoint(old.id)))) return;
      await this.io(() => storage.delete(old.storageKey));
    }
  }

  private async event(message: string, opts: NewJobEvent = {}): Promise<void> {
    await this.fenced(() => this.writes.event(message, opts));
  }

  /** A fenced write (retried in place through outages); false, and the run stops, once it was superseded. */
  private async fenced(write: () => Promise<boolean>): Promise<boolean> {
    if (await this.io(write)) return true;
    this.superseded();
    return false;
  }

  /** Another attempt of the job replaced this run (its worker was presumed lost): stop, writing nothing more. */
  private superseded(): void {
    if (!this.ctl.signal.aborted) this.ctl.abort('superseded' satisfies StopReason);
  }

  /** Retries while a dependency is unreachable, keeping the run's place; logs once per outage. */
  private io<T>(fn: () => Promise<T>): Promise<T> {
    let logged = false;
    return retryTransient(fn, {
      deadlineMs: this.deps.cfg.transientRetryMs,
      initialDelayMs: 200,
      maxDelayMs: 2000,
      onRetry: (err) => {
        if (logged) return;
        logged = true;
        const dep = err instanceof TransientError ? err.dependency : 'a dependency';
        this.deps.log(`job ${this.job.id}: ${dep} unreachable at step ${this.step}; retrying`, { job_id: this.job.id, level: 'warn' });
      },
    });
  }
}

/** How a job names where it trained: 'native+auto' (the product library's choice; with '+bf16'), 'wasm+native', 'tensorflow', ... */
function backendLabel(choice: BackendChoice, precision: Precision): string {
  if (choice.native) return `native+${choice.native.gemm}${precision === 'bf16' ? '+bf16' : ''}`;
  return `${choice.name}${choice.matmul === 'native' ? `+native${precision === 'bf16' ? '+bf16' : ''}` : ''}`;
}
