// Fine-tuning jobs: create (validated in full before anything is written), list, retrieve,
// cancel, pause, resume, events, checkpoints and metrics. Status changes go through the job
// repository, which refuses what the state machine forbids.

import { gloo, glooMissing } from '@crucible/collectives';
import { resolveRules } from '@crucible/datasets';
import { findModelRef, type ModelRef } from '@crucible/db';
import {
  type BaseModel,
  type CheckpointObject,
  type ControlMessage,
  type CreateJobRequest,
  CrucibleError,
  checkpointModelName,
  compileGrader,
  controlChannel,
  type EventObject,
  epochsTokenBound,
  type FileFormat,
  type FileRecord,
  fineTunedModelName,
  type Grader,
  type Hyperparameters,
  ID_PREFIX,
  isPreset,
  type JobEventRecord,
  type JobObject,
  type JobRecord,
  type JobStatus,
  METHOD_FORMATS,
  type MethodType,
  methodSettings,
  newId,
  type Peft,
  PRESETS,
  resolveHyperparameters,
  ServiceUnavailableError,
  tokensPerStep,
  trainingQueueEntryId,
} from '@crucible/domain';
import { CharTokenizer, hasChatTemplate, type Tokenizer } from '@crucible/model-files';
import { dispatchTraining } from '@crucible/queue';
import type { Actor } from '../auth';
import type { Deps } from '../deps';
import { getProcessedFile } from '../files/service';
import { checkpointModelConfig, storedTokenizer, type TokenizerSource, tokenizerSource } from '../models/stored';
import { page, unix } from '../pagination';

/**
 * Resolved hyperparameters as the API shows them: a dpo job's beta, rpo_alpha and
 * length_normalize are hyperparameters of its method, as OpenAI's; a reinforcement job's grader
 * sits beside its hyperparameters (returned apart).
 */
export function shownHyperparameters(h: JobRecord['hyperparameters']) {
  const { dpo, reinforcement, ...rest } = h;
  const { grader, ...rl } = reinforcement ?? {};
  return { hp: { ...rest, ...dpo, ...rl }, grader };
}

export function jobObject(j: JobRecord): JobObject {
  const { hp, grader } = shownHyperparameters(j.hyperparameters);
  return {
    id: j.id,
    object: 'fine_tuning.job',
    created_at: unix(j.createdAt) as number,
    error: j.error,
    fine_tuned_model: j.fineTunedModel,
    finished_at: unix(j.finishedAt),
    hyperparameters: hp,
    model: j.model,
    organization_id: j.projectId,
    result_files: [],
    seed: j.seed,
    status: j.status,
    trained_tokens: j.trainedTokens,
    training_file: j.trainingFileId,
    validation_file: j.validationFileId,
    estimated_finish: null,
    integrations: null,
    metadata: j.metadata,
    method: { type: j.method, [j.method]: { ...(grader ? { grader } : {}), hyperparameters: hp, peft: j.hyperparameters.peft ?? { type: 'full' } } },
    user_provided_suffix: j.suffix,
    backend: j.backend,
    precision: j.precision,
    running_seconds: Math.round(j.runningSeconds * 10) / 10,
    resources: { workers: j.workers },
    ranks: j.ranks,
    data_preparation: j.preparation,
    prepared_training_file: j.preparedFileId,
  };
}

/** The base a job starts from: a preset, or trained weights (a model or a checkpoint) of this project. */
export async function resolveBaseModel(deps: Pick<Deps, 'store' | 'storage'>, actor: Actor, name: string): Promise<{ base: BaseModel; ref?: ModelRef }> {
  if (isPreset(name)) return { base: { kind: 'preset', name } };
  const ref = await findModelRef(deps.store, actor.projectId, name);
  if (!ref) {
    throw new CrucibleError(
      'model_not_found',
      `model ${name} does not exist: use a preset (${Object.keys(PRESETS).join(', ')}), a model of this project, or a checkpoint name`,
      'model',
    );
  }
  if (ref.kind === 'model') {
    const m = ref.model;
    return { base: { kind: 'trained', id: m.id, arch: m.arch, blockSize: m.config.blockSize, source: 'model', adapters: m.peft?.type === 'adapter' }, ref };
  }
  const c = await checkpointModelConfig(deps.storage, ref.checkpoint.storageKey);
  return { base: { kind: 'trained', id: name, arch: c.arch, blockSize: c.blockSize, source: 'checkpoint', adapters: c.peft?.type === 'adapter' }, ref };
}

/**
 * Datasets are checked against the base model's tokenizer before the job exists: a character a
 * character-level vocabulary lacks would only become <|unk|> in training.
 */
/** A character-level base cannot encode characters it never saw: name them (the file is read in a file work thread). */
async function checkAgainstTokenizer(deps: Pick<Deps, 'fileWork'>, source: TokenizerSource, param: string, file: FileRecord): Promise<void> {
  const found = await deps.fileWork.run({ kind: 'unknown-characters', key: file.storageKey, format: file.format as FileFormat, tokenizer: source });
  if (found.missing.length === 0) return;
  const shown = found.missing.map((m) => `${JSON.stringify(m.char)} (line ${m.line})`).join(', ');
  throw new CrucibleError(
    'invalid_file',
    `${param} ${file.id} has characters the base model's character-level tokenizer does not know: ${shown}${
      found.lacksChatTokens ? "; this tokenizer also lacks the chat template's <|im_start|> and <|im_end|> tokens" : ''
    }. Fine-tune a model whose tokenizer covers the data (a byte-level BPE covers everything).`,
    param,
  );
}

/** Every line of a reinforcement file has the fields its grader's templates read ({{item.<field>}}). */
async function checkGraderFields(deps: Pick<Deps, 'fileWork'>, grader: Grader, param: string, file: FileRecord): Promise<void> {
  const { fields } = compileGrader(grader);
  const missing = await deps.fileWork.run({ kind: 'missing-item-field', key: file.storageKey, fields: [...fields] });
  if (!missing) return;
  throw new CrucibleError(
    'invalid_grader',
    `${missing.param} reads {{item.${missing.path}}}, which line ${missing.line} of ${param} ${file.id} does not have`,
    missing.param,
  );
}

function methodOf(req: CreateJobRequest, base: BaseModel): { type: MethodType; hp: Hyperparameters; peft?: Peft; grader?: Grader } {
  const m = req.method;
  if (!m) {
    const type: MethodType = base.kind === 'trained' ? 'supervised' : PRESETS[base.name].arch === 'bert' ? 'mlm' : 'pretrain';
    return { type, hp: req.hyperparameters ?? {} };
  }
  const body = methodSettings(m);
  if (req.hyperparameters && body?.hyperparameters) {
    throw new CrucibleError('invalid_request', 'give hyperparameters either at the top level or in method, not both', 'hyperparameters');
  }
  return { type: m.type, hp: body?.hyperparameters ?? req.hyperparameters ?? {}, peft: body?.peft, grader: body?.grader };
}

/** A create request checked in full: its base, method, resolved spec and files (what create and estimate share). */
export interface ResolvedJobRequest {
  ref?: ModelRef;
  method: MethodType;
  hyperparameters: ReturnType<typeof resolveHyperparameters>;
  /** The tokenizer of the trained weights the job starts from (none for a preset). */
  baseTokenizer?: Tokenizer;
  training: FileRecord;
  validation?: FileRecord;
}

export async function resolveJobRequest(deps: Deps, actor: Actor, req: CreateJobRequest): Promise<ResolvedJobRequest> {
  const { base, ref } = await resolveBaseModel(deps, actor, req.model);
  const method = methodOf(req, base);
  const hyperparameters = resolveHyperparameters(method.type, base, method.hp, method.peft, method.grader);
  const baseTokenizer = ref ? await storedTokenizer(deps.storage, ref) : undefined;
  const imported = ref?.kind === 'model' && ref.model.source === 'imported';
  if (hyperparameters.reinforcement && baseTokenizer && !hasChatTemplate(baseTokenizer, imported)) {
    throw new CrucibleError(
      'unsupported_method',
      `reinforcement samples answers to chat prompts, and ${req.model} has no chat template (it was imported without a chat_template in tokenizer_config.json): import the instruct version of the model, or fine-tune it on chat data with method supervised first`,
      'model',
    );
  }
  const checked = async (param: string, id: string): Promise<FileRecord> => {
    const f = await getProcessedFile(deps, actor, id, param);
    if (!METHOD_FORMATS[method.type].includes(f.format)) {
      throw new CrucibleError(
        'invalid_file',
        `${param} ${id} holds ${f.format} data; ${method.type} jobs train on ${METHOD_FORMATS[method.type].join(' or ')}`,
        param,
      );
    }
    if (ref && baseTokenizer instanceof CharTokenizer) await checkAgainstTokenizer(deps, tokenizerSource(ref), param, f);
    if (hyperparameters.reinforcement) await checkGraderFields(deps, hyperparameters.reinforcement.grader, param, f);
    return f;
  };
  const training = await checked('training_file', req.training_file);
  const validation = req.validation_file ? await checked('validation_file', req.validation_file) : undefined;
  checkJobSize(actor, hyperparameters, training);
  return { ref, method: method.type, hyperparameters, baseTokenizer, training, validation };
}

/**
 * The workers a job asks for (resources.workers): at most the project's MAX_JOB_WORKERS, for the
 * methods data parallelism covers, and only where this server has Gloo (the API and the workers
 * share an install). Checked before the job is written.
 */
function jobWorkers(actor: Actor, req: CreateJobRequest, method: MethodType): number {
  const workers = req.resources?.workers ?? 1;
  if (workers === 1) return 1;
  const param = 'resources.workers';
  if (workers > actor.limits.maxJobWorkers) {
    throw new CrucibleError(
      'unsupported_resources',
      `resources.workers ${workers} is over this project's limit of ${actor.limits.maxJobWorkers} (MAX_JOB_WORKERS)`,
      param,
    );
  }
  if (method === 'dpo' || method === 'reinforcement') {
    throw new CrucibleError('unsupported_method', `a ${method} job trains on one worker: data parallelism covers supervised, pretrain and mlm`, param);
  }
  if (!gloo) throw new CrucibleError('unsupported_resources', `this server cannot run a job on several workers: ${glooMissing}`, param);
  return workers;
}

/**
 * A job's size is the tokens it trains on: max_steps x batch x block x accumulation, or, when
 * the steps come from epochs, n_epochs x the training file's bytes (an upper bound on its tokens).
 */
function checkJobSize(actor: Actor, hp: ReturnType<typeof resolveHyperparameters>, training: FileRecord): void {
  const perStep = tokensPerStep(hp);
  const tokens = hp.max_steps !== null ? hp.max_steps * perStep : epochsTokenBound(hp, training.bytes);
  const limit = actor.limits.maxJobTokens;
  if (tokens <= limit) return;
  const how =
    hp.max_steps !== null
      ? `max_steps ${hp.max_steps} x batch_size ${hp.batch_size} x block_size ${hp.block_size} x gradient_accumulation_steps ${hp.gradient_accumulation_steps}`
      : hp.n_epochs === 'auto'
        ? `n_epochs auto over ${training.bytes} bytes of training data`
        : `n_epochs ${hp.n_epochs} x ${training.bytes} bytes of training data`;
  throw new CrucibleError(
    'job_too_large',
    `the job would train on up to ${tokens} tokens (${how}); this project's limit is ${limit} (MAX_JOB_TOKENS)`,
    hp.max_steps !== null ? 'hyperparameters.max_steps' : 'hyperparameters.n_epochs',
  );
}

/** A project has at most MAX_QUEUED_JOBS jobs waiting to start. */
function queuedJobsRefusal(actor: Actor, queuedJobs: number): CrucibleError {
  return new CrucibleError(
    'quota_exceeded',
    `this project already has ${queuedJobs} queued jobs, its limit (MAX_QUEUED_JOBS ${actor.limits.maxQueuedJobs}); wait for some to start or cancel them`,
    null,
  );
}

export async function createJob(deps: Deps, actor: Actor, req: CreateJobRequest): Promise<JobObject> {
  const { method, hyperparameters } = await resolveJobRequest(deps, actor, req);
  // counted and written in one transaction per project: the limit holds under concurrent creates
  const job = await deps.store.jobs.create(
    {
      id: newId(ID_PREFIX.job),
      projectId: actor.projectId,
      model: req.model,
      method,
      hyperparameters,
      trainingFileId: req.training_file,
      validationFileId: req.validation_file ?? null,
      seed: req.seed ?? Math.floor(Math.random() * 2 ** 31),
      suffix: req.suffix ?? null,
      metadata: req.metadata ?? null,
      preparation: req.data_preparation ? resolveRules(req.data_preparation) : null,
      precision: req.precision ?? null,
      workers: jobWorkers(actor, req, method),
    },
    actor.limits.maxQueuedJobs,
  );
  if ('queued' in job) throw queuedJobsRefusal(actor, job.queued);
  await dispatch(deps, job);
  return jobObject(job);
}

/**
 * Puts a queued job on the work queue. The database is the source of truth: if the queue cannot
 * be reached now, the job stays queued and the reconciler dispatches it once the queue is back.
 */
async function dispatch(deps: Pick<Deps, 'trainingQueue'>, job: JobRecord): Promise<void> {
  await dispatchTraining(deps.trainingQueue, job).catch((err) => {
    if (!(err instanceof ServiceUnavailableError)) throw err;
  });
}

/** The project's job (from the job cache when the API has one: invalidated by the database on every change). */
export async function getJob(
  deps: Pick<Deps, 'store'> & Partial<Pick<Deps, 'jobCache'>>,
  actor: Actor,
  id: string,
  param = 'fine_tuning_job_id',
): Promise<JobRecord> {
  const load = () => deps.store.jobs.get(actor.projectId, id);
  const cached = deps.jobCache ? await deps.jobCache.get(id, load) : await load();
  // a job cached for another project is not this project's
  const j = cached?.projectId === actor.projectId ? cached : null;
  if (!j) throw new CrucibleError('job_not_found', `no fine-tuning job ${id} in this project`, param);
  return j;
}

export async function listJobs(deps: Pick<Deps, 'store'>, actor: Actor, q: { after?: string; limit?: number }) {
  const limit = q.limit ?? 20;
  if (q.after) await getJob(deps, actor, q.after, 'after');
  const r = await deps.store.jobs.list(actor.projectId, { after: q.after, limit });
  return page(r.items.map(jobObject), r.hasMore);
}

function refused(job: JobRecord, action: string, from: readonly JobStatus[]): CrucibleError {
  return new CrucibleError('invalid_state', `job ${job.id} is ${job.status}; ${action} needs a job that is ${from.join(' or ')}`, 'fine_tuning_job_id');
}

/** Tells a running worker to stop within a step (best effort: its heartbeat notices too). */
async function signalWorker(deps: Deps, job: JobRecord, action: ControlMessage['action']): Promise<void> {
  const entry = await deps.trainingQueue.getJob(trainingQueueEntryId(job.id, job.attempt)).catch(() => undefined);
  if (entry && (await entry.isWaiting().catch(() => false))) await entry.remove().catch(() => {});
  const msg: ControlMessage = { jobId: job.id, action };
  await deps.redis.publish(controlChannel(deps.queuePrefix), JSON.stringify(msg)).catch(() => {});
}

export async function cancelJob(deps: Deps, actor: Actor, id: string): Promise<JobObject> {
  const job = await getJob(deps, actor, id);
  const moved = await deps.store.jobs.transition(actor.projectId, id, 'cancelled', { set: { finishedAt: new Date() }, event: { message: 'Job cancelled' } });
  deps.jobCache.evict(id);
  if (!moved) throw refused(job, 'cancel', ['validating_files', 'queued', 'running', 'paused']);
  await signalWorker(deps, moved, 'cancel');
  return jobObject(moved);
}

export async function pauseJob(deps: Deps, actor: Actor, id: string): Promise<JobObject> {
  const job = await getJob(deps, actor, id);
  const moved = await deps.store.jobs.transition(actor.projectId, id, 'paused', { event: { message: 'Job paused' } });
  deps.jobCache.evict(id);
  if (!moved) throw refused(job, 'pause', ['validating_files', 'queued', 'running']);
  await signalWorker(deps, moved, 'pause');
  return jobObject(moved);
}

export async function resumeJob(deps: Deps, actor: Actor, id: string): Promise<JobObject> {
  const job = await getJob(deps, actor, id);
  const moved = await deps.store.jobs.resume(actor.projectId, id);
  deps.jobCache.evict(id);
  if (!moved) throw refused(job, 'resume', ['paused']);
  await dispatch(deps, moved);
  return jobObject(moved);
}

export function eventObject(e: JobEventRecord): EventObject {
  const base = { id: e.id, object: 'fine_tuning.job.event', created_at: unix(e.createdAt) as number, level: e.level, message: e.message } as const;
  return e.type === 'metrics' ? { ...base, type: 'metrics', data: e.data } : { ...base, type: 'message', data: e.data };
}

export async function listEvents(deps: Pick<Deps, 'store'>, actor: Actor, id: string, q: { after?: string; limit?: number }) {
  await getJob(deps, actor, id);
  const r = await deps.store.jobs.listEvents(actor.projectId, id, { after: q.after, limit: q.limit ?? 20 });
  if (!r) throw new CrucibleError('not_found', `no event ${q.after} in job ${id}`, 'after');
  return page(r.items.map(eventObject), r.hasMore);
}

export async function listCheckpoints(deps: Pick<Deps, 'store'>, actor: Actor, id: string, q: { after?: string; limit?: number }) {
  const job = await getJob(deps, actor, id);
  const r = await deps.store.jobs.listCheckpoints(actor.projectId, id, { after: q.after, limit: q.limit ?? 10 });
  if (!r) throw new CrucibleError('not_found', `no checkpoint ${q.after} in job ${id}`, 'after');
  const modelName = fineTunedModelName(job.model, job.suffix, job.id);
  const data: CheckpointObject[] = r.items.map((c) => ({
    id: c.id,
    object: 'fine_tuning.job.checkpoint',
    created_at: unix(c.createdAt) as number,
    fine_tuned_model_checkpoint: checkpointModelName(modelName, c.step),
    fine_tuning_job_id: id,
    step_number: c.step,
    metrics: c.metrics,
    best: c.best,
  }));
  return page(data, r.hasMore);
}

/** The metric series, downsampled to at most `maxPoints` (evenly by index, first and last kept). */
export async function jobMetrics(deps: Pick<Deps, 'store'>, actor: Actor, id: string, maxPoints = 500) {
  await getJob(deps, actor, id);
  const rows = await deps.store.jobs.metrics(actor.projectId, id);
  return {
    object: 'list' as const,
    job_id: id,
    total_points: rows.length,
    data: downsample(rows, maxPoints).map((r) => ({
      step: r.step,
      train_loss: r.trainLoss,
      valid_loss: r.validLoss,
      valid_mean_token_accuracy: r.validAcc,
      learning_rate: r.lr,
      grad_norm: r.gradNorm,
      tokens_per_second: r.tokensPerSec,
      ...r.rewards,
    })),
  };
}

export function downsample<T>(rows: T[], max: number): T[] {
  if (rows.length <= max) return rows;
  const out: T[] = [];
  const stride = (rows.length - 1) / (max - 1);
  for (let i = 0; i < max; i++) out.push(rows[Math.round(i * stride)] as T);
  return out;
}
