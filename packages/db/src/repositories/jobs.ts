// Fine-tuning jobs and what they record: status changes (only those the state machine allows,
// checked here and nowhere else), events, checkpoints and metrics. Every query is scoped by
// project; worker writes are fenced by the attempt and lease they hold, so a worker that was
// presumed dead can never overwrite what its replacement did.
import {
  type Architecture,
  allowedSources,
  type CheckpointRecord,
  DISPATCHED_STATUSES,
  ID_PREFIX,
  type JobEventRecord,
  type JobFailure,
  type JobRank,
  type JobRecord,
  type JobStatus,
  type MethodType,
  type MetricRecord,
  type MetricsEventData,
  type NewJobEvent,
  newId,
  type Precision,
  type PreparationRules,
  type RecordPage,
  type RewardMetrics,
  type StoredHyperparameters,
  WORKING_STATUSES,
} from '@crucible/domain';
import { type JobCheckpoint as CheckpointRow, type JobEvent as EventRow, type Job as JobRow, Prisma } from '../../generated/client';
import { pageOf, Repository, Rollback } from './base';
import { AttemptWriter } from './job-attempt';
import { insertEvent } from './job-events';
import { jsonField, jsonInput, jsonOrNull } from './json-columns';

function jobRecord(j: JobRow): JobRecord {
  return {
    id: j.id,
    projectId: j.projectId,
    model: j.model,
    method: j.methodType as MethodType,
    hyperparameters: jsonField<StoredHyperparameters>(j.hyperparameters),
    trainingFileId: j.trainingFileId,
    validationFileId: j.validationFileId,
    status: j.status as JobStatus,
    seed: j.seed,
    suffix: j.suffix,
    metadata: (j.metadata as Record<string, string> | null) ?? null,
    error: jsonField<JobFailure | null>(j.error) ?? null,
    fineTunedModel: j.fineTunedModel,
    trainedTokens: j.trainedTokens,
    backend: j.backend,
    precision: (j.precision as Precision | null) ?? null,
    preparation: jsonField<PreparationRules | null>(j.preparation) ?? null,
    preparedFileId: j.preparedFileId,
    workers: j.workers,
    ranks: jsonField<JobRank[] | null>(j.ranks) ?? null,
    attempt: j.attempt,
    leaseId: j.leaseId,
    heartbeatAt: j.heartbeatAt,
    createdAt: j.createdAt,
    updatedAt: j.updatedAt,
    startedAt: j.startedAt,
    finishedAt: j.finishedAt,
    runningSeconds: j.runningSeconds + (j.runningSince ? Math.max(0, Date.now() - j.runningSince.getTime()) / 1000 : 0),
  };
}

/**
 * Keeps a job's running time after a status change: a job that starts running notes when; one
 * that stops (paused, requeued, settled) adds the time since to running_seconds.
 */
async function settleRunningTime(tx: Prisma.TransactionClient, id: string): Promise<void> {
  // timestamps are stored without a zone, in UTC (as Prisma writes them)
  await tx.$executeRaw`UPDATE jobs SET
      running_seconds = running_seconds + CASE WHEN running_since IS NOT NULL AND status <> 'running'
        THEN GREATEST(0, EXTRACT(EPOCH FROM ((now() AT TIME ZONE 'UTC') - running_since))) ELSE 0 END,
      running_since = CASE WHEN status = 'running' THEN COALESCE(running_since, now() AT TIME ZONE 'UTC') ELSE NULL END
    WHERE id = ${id}`;
}

function eventRecord(e: EventRow): JobEventRecord {
  const base = { id: e.id, seq: e.seq, jobId: e.jobId, level: e.level as JobEventRecord['level'], message: e.message, createdAt: e.createdAt };
  const data = (e.data as Record<string, unknown> | null) ?? null;
  if (e.type !== 'metrics') return { ...base, type: 'message', data };
  return { ...base, type: 'metrics', data: metricsData(data ?? {}) };
}

/**
 * A metrics event's data as declared (MetricsEventData). Events written before the data had its
 * `kind` are a step's (they carry train_loss) or an evaluation's.
 */
function metricsData(d: Record<string, unknown>): MetricsEventData {
  if (typeof d.kind === 'string') return d as MetricsEventData;
  return { kind: 'train_loss' in d ? 'step' : 'evaluation', ...d } as MetricsEventData;
}

function checkpointRecord(c: CheckpointRow): CheckpointRecord {
  return {
    id: c.id,
    jobId: c.jobId,
    step: c.step,
    storageKey: c.storageKey,
    metrics: c.metrics as Record<string, number | null>,
    best: c.best,
    createdAt: c.createdAt,
  };
}

export type NewJob = Pick<
  JobRecord,
  'id' | 'projectId' | 'model' | 'method' | 'hyperparameters' | 'trainingFileId' | 'validationFileId' | 'seed' | 'suffix' | 'metadata'
> & { preparation?: PreparationRules | null; precision?: Precision | null; workers?: number };

/** Fields a status change may set besides the status. */
export interface JobChanges {
  error?: JobFailure | null;
  startedAt?: Date;
  finishedAt?: Date | null;
  backend?: string;
  precision?: Precision;
  hyperparameters?: StoredHyperparameters;
  trainedTokens?: number;
  fineTunedModel?: string;
  preparedFileId?: string;
  ranks?: JobRank[] | null;
}

export interface TransitionOptions {
  /** Narrow the allowed sources further (e.g. pause only what is not yet paused). */
  from?: readonly JobStatus[];
  /** Only if the job is still at this attempt. */
  attempt?: number;
  /** Only if this worker run still holds the job. */
  leaseId?: string;
  set?: JobChanges;
  /** Recorded in the same transaction when the transition happens. */
  event?: { message: string } & NewJobEvent;
}

export interface NewModel {
  id: string;
  baseModel: string;
  arch: Architecture;
  config: Record<string, unknown>;
  storageKey: string;
  peft?: Record<string, unknown> | null;
}

function changes(set: JobChanges = {}): Prisma.JobUpdateManyMutationInput {
  const { error, hyperparameters, ranks, ...rest } = set;
  return {
    ...rest,
    ...(ranks !== undefined ? { ranks: jsonOrNull(ranks) } : {}),
    ...(error !== undefined ? { error: jsonOrNull(error) } : {}),
    ...(hyperparameters !== undefined ? { hyperparameters: jsonInput(hyperparameters) } : {}),
  };
}

export class JobRepository extends Repository {
  /**
   * The job (queued) and its first event, in one statement: one round trip and one commit (job
   * creation is on the API's hot path). With `maxQueued`, the project's queued jobs are counted
   * and the job is written in one transaction serialised per project, so the limit holds exactly
   * under concurrent creates; `{ queued }` (and nothing written) when the project is at it.
   */
  async create(j: NewJob): Promise<JobRecord>;
  async create(j: NewJob, maxQueued: number): Promise<JobRecord | { queued: number }>;
  async create(j: NewJob, maxQueued?: number): Promise<JobRecord | { queued: number }> {
    if (maxQueued === undefined) return this.insert(j, (text, values) => this.sql(text, values));
    const out = await this.locked(`queued-jobs:${j.projectId}`, async (q) => {
      const queued = Number((await q<{ n: string }>(`SELECT count(*) AS n FROM jobs WHERE project_id = $1 AND status = 'queued'`, [j.projectId]))[0]?.n ?? 0);
      if (queued >= maxQueued) return new Rollback({ queued });
      return this.insert(j, q);
    });
    return out instanceof Rollback ? (out.value as { queued: number }) : out;
  }

  private async insert(j: NewJob, q: (text: string, values: unknown[]) => Promise<unknown>): Promise<JobRecord> {
    const now = new Date();
    const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));
    const at = now.toISOString();
    await q(
      `WITH job AS (
         INSERT INTO jobs (id, project_id, model, method_type, hyperparameters, training_file_id, validation_file_id, status, seed, suffix,
                           metadata, preparation, precision, workers, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, 'queued', $8, $9, $10::jsonb, $11::jsonb, $15, $16, $12, $12)
         RETURNING id, project_id)
       INSERT INTO job_events (id, project_id, job_id, level, type, message, created_at)
       SELECT $13, project_id, id, 'info', 'message', $14, $12 FROM job`,
      [
        j.id,
        j.projectId,
        j.model,
        j.method,
        json(j.hyperparameters),
        j.trainingFileId,
        j.validationFileId,
        j.seed,
        j.suffix,
        json(j.metadata),
        json(j.preparation),
        at,
        newId(ID_PREFIX.event),
        `Created fine-tuning job: ${j.id}`,
        j.precision ?? null,
        j.workers ?? 1,
      ],
    );
    return {
      id: j.id,
      projectId: j.projectId,
      model: j.model,
      method: j.method,
      hyperparameters: JSON.parse(JSON.stringify(j.hyperparameters)) as StoredHyperparameters,
      trainingFileId: j.trainingFileId,
      validationFileId: j.validationFileId,
      status: 'queued',
      seed: j.seed,
      suffix: j.suffix,
      metadata: j.metadata,
      error: null,
      fineTunedModel: null,
      trainedTokens: null,
      backend: null,
      precision: j.precision ?? null,
      preparation: j.preparation ?? null,
      preparedFileId: null,
      workers: j.workers ?? 1,
      ranks: null,
      attempt: 0,
      leaseId: null,
      heartbeatAt: null,
      createdAt: now,
      updatedAt: now,
      startedAt: null,
      finishedAt: null,
      runningSeconds: 0,
    };
  }

  async get(projectId: string, id: string): Promise<JobRecord | null> {
    const j = await this.run((db) => db.job.findFirst({ where: { id, projectId } }));
    return j ? jobRecord(j) : null;
  }

  async list(projectId: string, q: { after?: string; limit: number }): Promise<RecordPage<JobRecord>> {
    const rows = await this.run((db) =>
      db.job.findMany({
        where: { projectId },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        cursor: q.after ? { id: q.after } : undefined,
        skip: q.after ? 1 : 0,
        take: q.limit + 1,
      }),
    );
    return pageOf(rows.map(jobRecord), q.limit);
  }

  /**
   * Moves the job to `to` if the state machine allows it from the status it is in (and the
   * fences hold). Returns the updated job, or null when the move was refused.
   */
  async transition(projectId: string, id: string, to: JobStatus, opts: TransitionOptions = {}): Promise<JobRecord | null> {
    const from = allowedSources(to, opts.from);
    if (from.length === 0) return null;
    const leaving = !WORKING_STATUSES.includes(to); // no worker holds a job in this status
    return this.run((db) =>
      db.$transaction(async (tx) => {
        const moved = await tx.job.updateMany({
          where: {
            id,
            projectId,
            status: { in: from },
            ...(opts.attempt !== undefined ? { attempt: opts.attempt } : {}),
            ...(opts.leaseId ? { leaseId: opts.leaseId } : {}),
          },
          data: { status: to, ...changes(opts.set), ...(leaving ? { leaseId: null, heartbeatAt: null } : {}) },
        });
        if (moved.count === 0) return null;
        await settleRunningTime(tx, id);
        if (opts.event) await insertEvent(tx, projectId, id, opts.event.message, opts.event);
        return jobRecord(await tx.job.findUniqueOrThrow({ where: { id } }));
      }),
    );
  }

  /**
   * A worker run takes a queued job at `attempt`: validating_files, with its lease and a first
   * heartbeat. `busy` when the project already has `maxWorking` jobs validating or running.
   */
  async claim(projectId: string, id: string, attempt: number, leaseId: string, maxWorking = Number.POSITIVE_INFINITY): Promise<JobRecord | null | 'busy'> {
    return this.run((db) =>
      db.$transaction(async (tx) => {
        if (Number.isFinite(maxWorking)) {
          // one claim per project at a time, so that two workers cannot both take the last slot
          await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${projectId}))`;
          const working = await tx.job.count({ where: { projectId, status: { in: WORKING_STATUSES as JobStatus[] } } });
          if (working >= maxWorking) return 'busy' as const;
        }
        const moved = await tx.job.updateMany({
          where: { id, projectId, attempt, status: { in: allowedSources('validating_files', ['queued']) } },
          data: { status: 'validating_files', leaseId, heartbeatAt: new Date() },
        });
        return moved.count === 1 ? jobRecord(await tx.job.findUniqueOrThrow({ where: { id } })) : null;
      }),
    );
  }

  /**
   * Puts an unfinished job back on the queue as a new attempt (its worker was lost, shut down, or
   * its queue entry vanished). Returns the job at its new attempt, or null if it moved meanwhile.
   */
  async requeue(projectId: string, id: string, attempt: number, event: { message: string } & NewJobEvent): Promise<JobRecord | null> {
    return this.newAttempt(projectId, id, DISPATCHED_STATUSES, attempt, event);
  }

  /** Resume of a paused job: queued again at a new attempt. */
  async resume(projectId: string, id: string): Promise<JobRecord | null> {
    return this.newAttempt(projectId, id, allowedSources('queued', ['paused']), undefined, { message: 'Job resumed' });
  }

  /** `queued` at the next attempt, from one of `from` (and only at `attempt`, when given). */
  private async newAttempt(
    projectId: string,
    id: string,
    from: readonly JobStatus[],
    attempt: number | undefined,
    event: { message: string } & NewJobEvent,
  ): Promise<JobRecord | null> {
    return this.run((db) =>
      db.$transaction(async (tx) => {
        const moved = await tx.job.updateMany({
          where: { id, projectId, status: { in: [...from] }, ...(attempt !== undefined ? { attempt } : {}) },
          data: { status: 'queued', attempt: { increment: 1 }, leaseId: null, heartbeatAt: null },
        });
        if (moved.count === 0) return null;
        await settleRunningTime(tx, id);
        await insertEvent(tx, projectId, id, event.message, event);
        return jobRecord(await tx.job.findUniqueOrThrow({ where: { id } }));
      }),
    );
  }

  /**
   * The worker run's heartbeat. `held: false` means the lease is gone (the job was cancelled,
   * paused, or given to another worker); `status` says which.
   */
  async heartbeat(projectId: string, id: string, leaseId: string): Promise<{ held: boolean; status: JobStatus | null }> {
    return this.run(async (db) => {
      const r = await db.job.updateMany({
        where: { id, projectId, leaseId, status: { in: WORKING_STATUSES as JobStatus[] } },
        data: { heartbeatAt: new Date() },
      });
      if (r.count === 1) return { held: true, status: null };
      const j = await db.job.findFirst({ where: { id, projectId }, select: { status: true } });
      return { held: false, status: (j?.status as JobStatus | undefined) ?? null };
    });
  }

  /** The fenced writes of the worker run holding `attempt` of the job (job-attempt.ts). */
  attemptWriter(projectId: string, jobId: string, attempt: number): AttemptWriter {
    return new AttemptWriter(this.prisma, this.pool, projectId, jobId, attempt);
  }

  /** Success, the model record and the last events in one transaction: a job never succeeds without its model. */
  async succeed(
    projectId: string,
    id: string,
    leaseId: string,
    model: NewModel,
    set: JobChanges,
    events: Array<{ message: string; data?: Record<string, unknown> }> = [],
  ): Promise<boolean> {
    return this.run((db) =>
      db.$transaction(async (tx) => {
        const moved = await tx.job.updateMany({
          where: { id, projectId, leaseId, status: { in: allowedSources('succeeded') } },
          data: { status: 'succeeded', fineTunedModel: model.id, finishedAt: new Date(), leaseId: null, heartbeatAt: null, ...changes(set) },
        });
        if (moved.count === 0) return false;
        await settleRunningTime(tx, id);
        await tx.model.upsert({
          where: { id: model.id },
          create: {
            ...model,
            projectId,
            jobId: id,
            source: 'trained',
            config: model.config as Prisma.InputJsonValue,
            peft: model.peft ? (model.peft as Prisma.InputJsonValue) : Prisma.DbNull,
          },
          update: {},
        });
        // the job's last events commit with its status: a stream that sees it succeeded sees them
        for (const e of events) await insertEvent(tx, projectId, id, e.message, { data: e.data });
        return true;
      }),
    );
  }

  /** Jobs a worker should be on (queued, validating_files, running), across projects: the reconciler's view. */
  async dispatched(): Promise<JobRecord[]> {
    return (await this.run((db) => db.job.findMany({ where: { status: { in: DISPATCHED_STATUSES as JobStatus[] } }, orderBy: { createdAt: 'asc' } }))).map(
      jobRecord,
    );
  }

  // ── events ────────────────────────────────────────────────────────────────────────────────

  /** Newest first; `after` is the id of the last event of the previous page. Null: no such event. */
  async listEvents(projectId: string, jobId: string, q: { after?: string; limit: number }): Promise<RecordPage<JobEventRecord> | null> {
    return this.run(async (db) => {
      let before: bigint | undefined;
      if (q.after) {
        const e = await db.jobEvent.findFirst({ where: { id: q.after, jobId, projectId } });
        if (!e) return null;
        before = e.seq;
      }
      const rows = await db.jobEvent.findMany({
        where: { jobId, projectId, ...(before !== undefined ? { seq: { lt: before } } : {}) },
        orderBy: { seq: 'desc' },
        take: q.limit + 1,
      });
      return pageOf(rows.map(eventRecord), q.limit);
    });
  }

  /** Events after `seq`, oldest first (the live stream). */
  async eventsSince(projectId: string, jobId: string, seq: bigint, take = 500): Promise<JobEventRecord[]> {
    const rows = await this.run((db) => db.jobEvent.findMany({ where: { jobId, projectId, seq: { gt: seq } }, orderBy: { seq: 'asc' }, take }));
    return rows.map(eventRecord);
  }

  // ── checkpoints ───────────────────────────────────────────────────────────────────────────

  async getCheckpoint(projectId: string, jobId: string, step: number): Promise<CheckpointRecord | null> {
    const c = await this.run((db) => db.jobCheckpoint.findFirst({ where: { jobId, projectId, step } }));
    return c ? checkpointRecord(c) : null;
  }

  async latestCheckpoint(projectId: string, jobId: string): Promise<CheckpointRecord | null> {
    const c = await this.run((db) => db.jobCheckpoint.findFirst({ where: { jobId, projectId }, orderBy: { step: 'desc' } }));
    return c ? checkpointRecord(c) : null;
  }

  /** Highest step first; null when `after` names no checkpoint of the job. */
  async listCheckpoints(projectId: string, jobId: string, q: { after?: string; limit: number }): Promise<RecordPage<CheckpointRecord> | null> {
    return this.run(async (db) => {
      if (q.after && !(await db.jobCheckpoint.findFirst({ where: { id: q.after, jobId, projectId } }))) return null;
      const rows = await db.jobCheckpoint.findMany({
        where: { jobId, projectId },
        orderBy: [{ step: 'desc' }],
        cursor: q.after ? { id: q.after } : undefined,
        skip: q.after ? 1 : 0,
        take: q.limit + 1,
      });
      return pageOf(rows.map(checkpointRecord), q.limit);
    });
  }

  /** Checkpoints older than the newest `keep`, except the best one (for retention). */
  async checkpointsBeyond(projectId: string, jobId: string, keep: number): Promise<CheckpointRecord[]> {
    const rows = await this.run((db) => db.jobCheckpoint.findMany({ where: { jobId, projectId }, orderBy: { step: 'desc' }, skip: keep }));
    return rows.filter((c) => !c.best).map(checkpointRecord);
  }

  /**
   * Training throughput measured by the project's recent succeeded jobs on `model` (their mean
   * tokens/s, newest first): what an estimate of a new job's duration is based on.
   */
  async measuredThroughput(projectId: string, model: string, take = 5): Promise<Array<{ jobId: string; backend: string | null; tokensPerSec: number }>> {
    return this.run(async (db) => {
      const jobs = await db.job.findMany({
        where: { projectId, model, status: 'succeeded' },
        orderBy: { finishedAt: 'desc' },
        take,
        select: { id: true, backend: true },
      });
      if (jobs.length === 0) return [];
      const avg = await db.jobMetric.groupBy({
        by: ['jobId'],
        where: { jobId: { in: jobs.map((j) => j.id) }, tokensPerSec: { not: null } },
        _avg: { tokensPerSec: true },
      });
      const byJob = new Map(avg.map((a) => [a.jobId, a._avg.tokensPerSec]));
      return jobs.filter((j) => byJob.get(j.id)).map((j) => ({ jobId: j.id, backend: j.backend, tokensPerSec: byJob.get(j.id) as number }));
    });
  }

  /** Records the prepared training file made by the worker run that holds the job. */
  async setPreparedFile(projectId: string, id: string, leaseId: string, fileId: string): Promise<boolean> {
    const r = await this.run((db) => db.job.updateMany({ where: { id, projectId, leaseId }, data: { preparedFileId: fileId } }));
    return r.count === 1;
  }

  /** Records which worker holds each rank of a multi-worker job's attempt (by the run that holds the job). */
  async setRanks(projectId: string, id: string, leaseId: string, ranks: JobRank[]): Promise<boolean> {
    const r = await this.run((db) => db.job.updateMany({ where: { id, projectId, leaseId }, data: { ranks: jsonInput(ranks) } }));
    return r.count === 1;
  }

  async bestCheckpoint(projectId: string, jobId: string): Promise<CheckpointRecord | null> {
    const c = await this.run((db) => db.jobCheckpoint.findFirst({ where: { jobId, projectId, best: true } }));
    return c ? checkpointRecord(c) : null;
  }

  // ── metrics ───────────────────────────────────────────────────────────────────────────────

  async metrics(projectId: string, jobId: string): Promise<MetricRecord[]> {
    const rows = await this.run((db) => db.jobMetric.findMany({ where: { jobId, projectId }, orderBy: { step: 'asc' } }));
    return rows.map((r) => ({
      step: r.step,
      trainLoss: r.trainLoss,
      validLoss: r.validLoss,
      validAcc: r.validAcc,
      lr: r.lr,
      gradNorm: r.gradNorm,
      tokensPerSec: r.tokensPerSec,
      rewards: jsonField<RewardMetrics | null>(r.rewards),
    }));
  }

  /**
   * Across projects, for /metrics: jobs per status, the durations of succeeded jobs as cumulative
   * bucket counts (seconds from start to finish), and the summed tokens/s of running jobs (each
   * job's latest metric).
   */
  async operations(buckets: number[]): Promise<{
    byStatus: Record<string, number>;
    durations: { buckets: number[]; count: number; sum: number };
    runningTokensPerSec: number;
  }> {
    return this.run(async (db) => {
      const statuses = await db.job.groupBy({ by: ['status'], _count: { _all: true } });
      const rows = await db.$queryRawUnsafe<Array<{ b: number[]; n: bigint; s: number | null }>>(
        `SELECT ARRAY[${buckets.map((_, i) => `count(*) FILTER (WHERE d <= $${i + 1})`).join(', ') || 'NULL'}]::bigint[] AS b, count(*) AS n, sum(d) AS s
           FROM (SELECT extract(epoch FROM finished_at - started_at)::float8 AS d FROM jobs
                  WHERE status = 'succeeded' AND started_at IS NOT NULL AND finished_at IS NOT NULL) t`,
        ...buckets,
      );
      const tps = await db.$queryRawUnsafe<Array<{ s: number | null }>>(
        `SELECT sum(m.tokens_per_sec)::float8 AS s FROM jobs j
           JOIN LATERAL (SELECT tokens_per_sec FROM job_metrics WHERE job_id = j.id AND tokens_per_sec IS NOT NULL ORDER BY step DESC LIMIT 1) m ON true
          WHERE j.status = 'running'`,
      );
      const r = rows[0];
      return {
        byStatus: Object.fromEntries(statuses.map((x) => [x.status, x._count._all])),
        durations: { buckets: (r?.b ?? []).map(Number), count: Number(r?.n ?? 0), sum: Number(r?.s ?? 0) },
        runningTokensPerSec: Number(tps[0]?.s ?? 0),
      };
    });
  }
}
