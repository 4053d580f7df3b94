// Fine-tuning jobs: create (validated in full before anything is written), list, retrieve,
// cancel, pause, resume, events, checkpoints and metrics.
import type { Prisma } from '@crucible/db';
import {
  type BaseModel,
  type CheckpointObject,
  CONTROL_CHANNEL,
  type ControlMessage,
  type CreateJobRequest,
  CrucibleError,
  type EventObject,
  type Hyperparameters,
  ID_PREFIX,
  isPreset,
  JOB_OPTIONS,
  type JobObject,
  type JobStatus,
  METHOD_FORMATS,
  type MethodType,
  newId,
  PRESETS,
  resolveHyperparameters,
  TERMINAL_STATUSES,
} from '@crucible/domain';
import type { Actor } from '../auth';
import type { Deps } from '../deps';
import { getFileRow } from '../files/service';
import { page, unix } from '../pagination';

type JobRow = NonNullable<Awaited<ReturnType<Deps['db']['job']['findFirst']>>>;

export function jobObject(j: JobRow): JobObject {
  const hp = j.hyperparameters as Record<string, unknown>;
  return {
    id: j.id,
    object: 'fine_tuning.job',
    created_at: unix(j.createdAt) as number,
    error: (j.error as JobObject['error']) ?? null,
    fine_tuned_model: j.fineTunedModel,
    finished_at: unix(j.finishedAt),
    hyperparameters: hp,
    model: j.model,
    organization_id: j.projectId,
    result_files: [],
    seed: j.seed,
    status: j.status as JobStatus,
    trained_tokens: j.trainedTokens,
    training_file: j.trainingFileId,
    validation_file: j.validationFileId,
    estimated_finish: null,
    integrations: null,
    metadata: (j.metadata as Record<string, string> | null) ?? null,
    method: { type: j.methodType, [j.methodType]: { hyperparameters: hp } },
    user_provided_suffix: j.suffix,
    backend: j.backend,
  };
}

/** The base a job starts from: a preset, or a trained model of this project. */
export async function resolveBaseModel(deps: Pick<Deps, 'db'>, actor: Actor, name: string): Promise<BaseModel> {
  if (isPreset(name)) return { kind: 'preset', name };
  const m = await deps.db.model.findFirst({ where: { id: name, projectId: actor.projectId } });
  if (!m) {
    throw new CrucibleError(
      'model_not_found',
      `model ${name} does not exist: use a preset (${Object.keys(PRESETS).join(', ')}) or a model this project trained`,
      'model',
    );
  }
  const cfg = m.config as { blockSize: number };
  return { kind: 'trained', id: m.id, arch: m.arch as 'gpt' | 'bert', blockSize: cfg.blockSize };
}

function methodOf(req: CreateJobRequest, base: BaseModel): { type: MethodType; hp: Hyperparameters } {
  const m = req.method;
  if (!m) {
    const type: MethodType = base.kind === 'trained' ? 'supervised' : PRESETS[base.name].arch === 'bert' ? 'mlm' : 'pretrain';
    return { type, hp: req.hyperparameters ?? {} };
  }
  const body = (m as unknown as Record<string, { hyperparameters?: Hyperparameters } | undefined>)[m.type];
  if (req.hyperparameters && body?.hyperparameters) {
    throw new CrucibleError('invalid_request', 'give hyperparameters either at the top level or in method, not both', 'hyperparameters');
  }
  return { type: m.type, hp: body?.hyperparameters ?? req.hyperparameters ?? {} };
}

export async function createJob(deps: Deps, actor: Actor, req: CreateJobRequest): Promise<JobObject> {
  const base = await resolveBaseModel(deps, actor, req.model);
  const method = methodOf(req, base);
  const hyperparameters = resolveHyperparameters(method.type, base, method.hp);
  const files = [['training_file', req.training_file]] as Array<[string, string]>;
  if (req.validation_file) files.push(['validation_file', req.validation_file]);
  for (const [param, id] of files) {
    const f = await getFileRow(deps, actor, id, param);
    if (!METHOD_FORMATS[method.type].includes(f.format as never)) {
      throw new CrucibleError(
        'invalid_file',
        `${param} ${id} holds ${f.format} data; ${method.type} jobs train on ${METHOD_FORMATS[method.type].join(' or ')}`,
        param,
      );
    }
  }
  const id = newId(ID_PREFIX.job);
  const seed = req.seed ?? Math.floor(Math.random() * 2 ** 31);
  const row = await deps.db.job.create({
    data: {
      id,
      projectId: actor.projectId,
      model: req.model,
      methodType: method.type,
      hyperparameters: hyperparameters as unknown as Prisma.InputJsonValue,
      trainingFileId: req.training_file,
      validationFileId: req.validation_file ?? null,
      status: 'queued',
      seed,
      suffix: req.suffix ?? null,
      metadata: (req.metadata ?? undefined) as Prisma.InputJsonValue | undefined,
      events: { create: { id: newId(ID_PREFIX.event), projectId: actor.projectId, level: 'info', type: 'message', message: `Created fine-tuning job: ${id}` } },
    },
  });
  try {
    await enqueue(deps, row);
  } catch (err) {
    await deps.db.job.delete({ where: { id } }); // no half-made job without a queue entry
    throw err;
  }
  return jobObject(row);
}

async function enqueue(deps: Pick<Deps, 'trainingQueue'>, row: Pick<JobRow, 'id' | 'projectId' | 'attempt'>) {
  await deps.trainingQueue.add(
    'train',
    { jobId: row.id, projectId: row.projectId, attempt: row.attempt },
    { ...JOB_OPTIONS.training, jobId: `${row.id}.${row.attempt}` },
  );
}

export async function getJobRow(deps: Pick<Deps, 'db'>, actor: Actor, id: string, param = 'fine_tuning_job_id'): Promise<JobRow> {
  const j = await deps.db.job.findFirst({ where: { id, projectId: actor.projectId } });
  if (!j) throw new CrucibleError('job_not_found', `no fine-tuning job ${id} in this project`, param);
  return j;
}

export async function listJobs(deps: Pick<Deps, 'db'>, actor: Actor, q: { after?: string; limit?: number }) {
  const limit = q.limit ?? 20;
  if (q.after) await getJobRow(deps, actor, q.after, 'after');
  const rows = await deps.db.job.findMany({
    where: { projectId: actor.projectId },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    cursor: q.after ? { id: q.after } : undefined,
    skip: q.after ? 1 : 0,
    take: limit + 1,
  });
  return page(rows.map(jobObject), limit);
}

/** Moves a job from one of `from` to `to`; fails with invalid_state when it is elsewhere. */
async function transition(
  deps: Deps,
  actor: Actor,
  id: string,
  from: JobStatus[],
  to: JobStatus,
  message: string,
  data: Prisma.JobUpdateManyMutationInput = {},
) {
  const job = await getJobRow(deps, actor, id);
  const res = await deps.db.job.updateMany({
    where: { id, projectId: actor.projectId, status: { in: from } },
    data: { status: to, ...data },
  });
  if (res.count === 0)
    throw new CrucibleError('invalid_state', `job ${id} is ${job.status}; this needs a job that is ${from.join(' or ')}`, 'fine_tuning_job_id');
  await deps.db.jobEvent.create({ data: { id: newId(ID_PREFIX.event), projectId: actor.projectId, jobId: id, level: 'info', type: 'message', message } });
  return job;
}

async function stopQueued(deps: Deps, job: JobRow, action: ControlMessage['action']) {
  const queued = await deps.trainingQueue.getJob(`${job.id}.${job.attempt}`);
  if (queued && (await queued.isWaiting().catch(() => false))) await queued.remove().catch(() => {});
  const msg: ControlMessage = { jobId: job.id, action };
  await deps.redis.publish(CONTROL_CHANNEL, JSON.stringify(msg)); // a running worker stops within a step
}

export async function cancelJob(deps: Deps, actor: Actor, id: string): Promise<JobObject> {
  const active = ['validating_files', 'queued', 'running', 'paused'] as JobStatus[];
  const job = await transition(deps, actor, id, active, 'cancelled', 'Job cancelled', { finishedAt: new Date() });
  await stopQueued(deps, job, 'cancel');
  return jobObject(await getJobRow(deps, actor, id));
}

export async function pauseJob(deps: Deps, actor: Actor, id: string): Promise<JobObject> {
  const job = await transition(deps, actor, id, ['validating_files', 'queued', 'running'], 'paused', 'Job paused');
  await stopQueued(deps, job, 'pause');
  return jobObject(await getJobRow(deps, actor, id));
}

export async function resumeJob(deps: Deps, actor: Actor, id: string): Promise<JobObject> {
  await transition(deps, actor, id, ['paused'], 'queued', 'Job resumed', { attempt: { increment: 1 } });
  const job = await getJobRow(deps, actor, id);
  await enqueue(deps, job);
  return jobObject(job);
}

type EventRow = Awaited<ReturnType<Deps['db']['jobEvent']['findMany']>>[number];
export function eventObject(e: EventRow): EventObject {
  return {
    id: e.id,
    object: 'fine_tuning.job.event',
    created_at: unix(e.createdAt) as number,
    level: e.level as EventObject['level'],
    message: e.message,
    type: e.type as EventObject['type'],
    data: (e.data as Record<string, unknown> | null) ?? null,
  };
}

export async function listEvents(deps: Pick<Deps, 'db'>, actor: Actor, id: string, q: { after?: string; limit?: number }) {
  await getJobRow(deps, actor, id);
  const limit = q.limit ?? 20;
  let before: bigint | undefined;
  if (q.after) {
    const e = await deps.db.jobEvent.findFirst({ where: { id: q.after, jobId: id } });
    if (!e) throw new CrucibleError('not_found', `no event ${q.after} in job ${id}`, 'after');
    before = e.seq;
  }
  const rows = await deps.db.jobEvent.findMany({
    where: { jobId: id, projectId: actor.projectId, ...(before !== undefined ? { seq: { lt: before } } : {}) },
    orderBy: { seq: 'desc' },
    take: limit + 1,
  });
  return page(rows.map(eventObject), limit);
}

/** Events after `seq`, oldest first (for the live stream). */
export async function eventsSince(deps: Pick<Deps, 'db'>, actor: Actor, id: string, seq: bigint) {
  return deps.db.jobEvent.findMany({ where: { jobId: id, projectId: actor.projectId, seq: { gt: seq } }, orderBy: { seq: 'asc' }, take: 500 });
}

export function isTerminal(status: string): boolean {
  return (TERMINAL_STATUSES as readonly string[]).includes(status) || status === 'paused';
}

export async function listCheckpoints(deps: Pick<Deps, 'db'>, actor: Actor, id: string, q: { after?: string; limit?: number }) {
  const job = await getJobRow(deps, actor, id);
  const limit = q.limit ?? 10;
  if (q.after && !(await deps.db.jobCheckpoint.findFirst({ where: { id: q.after, jobId: id } }))) {
    throw new CrucibleError('not_found', `no checkpoint ${q.after} in job ${id}`, 'after');
  }
  const rows = await deps.db.jobCheckpoint.findMany({
    where: { jobId: id, projectId: actor.projectId },
    orderBy: [{ step: 'desc' }],
    cursor: q.after ? { id: q.after } : undefined,
    skip: q.after ? 1 : 0,
    take: limit + 1,
  });
  const data: CheckpointObject[] = rows.map((c) => ({
    id: c.id,
    object: 'fine_tuning.job.checkpoint',
    created_at: unix(c.createdAt) as number,
    fine_tuned_model_checkpoint: `${job.fineTunedModel ?? `ft:${job.model}:${job.id}`}:ckpt-step-${c.step}`,
    fine_tuning_job_id: id,
    step_number: c.step,
    metrics: c.metrics as Record<string, number | null>,
  }));
  return page(data, limit);
}

/** The metric series, downsampled to at most `maxPoints` (evenly by index, first and last kept). */
export async function jobMetrics(deps: Pick<Deps, 'db'>, actor: Actor, id: string, maxPoints = 500) {
  await getJobRow(deps, actor, id);
  const rows = await deps.db.jobMetric.findMany({ where: { jobId: id, projectId: actor.projectId }, orderBy: { step: 'asc' } });
  return {
    object: 'list' as const,
    job_id: id,
    total_points: rows.length,
    data: downsample(rows, maxPoints).map((r) => ({
      step: r.step,
      train_loss: r.trainLoss,
      valid_loss: r.validLoss,
      valid_accuracy: r.validAcc,
      learning_rate: r.lr,
      grad_norm: r.gradNorm,
      tokens_per_second: r.tokensPerSec,
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
