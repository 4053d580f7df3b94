// The writes of the worker run that holds one attempt of a job. Every one is fenced: it happens,
// in one transaction, only while the job is still at that attempt, and answers `false` (nothing
// written) once the run was superseded: its job queued again as a newer attempt (the run's worker
// presumed lost) or deleted. The fence holds the job's row for the transaction, so a requeue waits
// for a write in flight and every later write sees it. A pause or cancel keeps the attempt: the
// run still records how it stopped.
import { checkpointId, ID_PREFIX, type NewJobEvent, newId, rewardsOf, type StepMetrics, type ValidationMetrics } from '@crucible/domain';
import { Prisma, type PrismaClient } from '../../generated/client';
import { Repository } from './base';
import { insertEvent, type Tx } from './job-events';

type Pool = ConstructorParameters<typeof Repository>[1];
type Numbers = Record<string, number | null>;

const jsonOrNullText = (v: object | null) => (v === null ? null : JSON.stringify(v));

/** A number as stored in a metrics row (a non-finite loss is recorded as missing). */
const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);

// A metrics row's rewards with those of the row written now (a step's, or its evaluation's) over them.
const MERGED_REWARDS = `CASE WHEN EXCLUDED.rewards IS NULL THEN job_metrics.rewards ELSE COALESCE(job_metrics.rewards, '{}'::jsonb) || EXCLUDED.rewards END`;

// An evaluation's numbers merged into its step's metrics row.
const RECORD_EVALUATION = `
INSERT INTO job_metrics (project_id, job_id, step, valid_loss, valid_accuracy, rewards) VALUES ($1, $2, $3, $4, $5, $6::jsonb)
ON CONFLICT (job_id, step) DO UPDATE SET valid_loss = EXCLUDED.valid_loss, valid_accuracy = EXCLUDED.valid_accuracy, rewards = ${MERGED_REWARDS}`;

// One logged step in one statement (the hot path: one round trip): the job's trained tokens under
// the fence, the step's metrics row (replaced when a resumed run redoes the step) and its event.
const RECORD_STEP = `
WITH held AS (
  UPDATE jobs SET trained_tokens = $4 WHERE id = $1 AND project_id = $2 AND attempt = $3 RETURNING id
), metric AS (
  INSERT INTO job_metrics (project_id, job_id, step, train_loss, lr, grad_norm, tokens_per_sec, rewards)
  SELECT $2, $1, $5, $6, $7, $8, $9, $14::jsonb FROM held
  ON CONFLICT (job_id, step) DO UPDATE SET
    train_loss = EXCLUDED.train_loss, lr = EXCLUDED.lr, grad_norm = EXCLUDED.grad_norm, tokens_per_sec = EXCLUDED.tokens_per_sec,
    rewards = ${MERGED_REWARDS}
  RETURNING 1
), event AS (
  INSERT INTO job_events (id, project_id, job_id, level, type, message, data, step, created_at)
  SELECT $10, $2, $1, 'info', 'metrics', $11, $12::jsonb, $5, $13::timestamp FROM held
  RETURNING 1
)
SELECT count(*)::int AS held FROM held`;

export class AttemptWriter extends Repository {
  constructor(
    prisma: PrismaClient,
    pool: Pool,
    readonly projectId: string,
    readonly jobId: string,
    readonly attempt: number,
  ) {
    super(prisma, pool);
  }

  /** A logged step: its metrics, its event and the job's trained tokens. */
  async recordStep(m: StepMetrics, message: string, trainedTokens: number): Promise<boolean> {
    const rows = await this.sql<{ held: number }>(RECORD_STEP, [
      this.jobId,
      this.projectId,
      this.attempt,
      trainedTokens,
      m.step,
      finite(m.train_loss),
      finite(m.learning_rate),
      finite(m.grad_norm),
      finite(m.tokens_per_second),
      newId(ID_PREFIX.event),
      message,
      JSON.stringify(m),
      new Date().toISOString(),
      jsonOrNullText(rewardsOf(m)),
    ]);
    return rows[0]?.held === 1;
  }

  /**
   * An evaluation: its numbers merged into the step's metrics row, its event, and (when a
   * checkpoint was saved at that step, just before) the checkpoint's metrics. `checkpoint`: whether
   * there was one; null when the run was superseded.
   */
  async recordEvaluation(e: ValidationMetrics, message: string, checkpointMetrics: Numbers): Promise<{ checkpoint: boolean } | null> {
    return this.fenced(async (tx) => {
      await tx.$executeRawUnsafe(
        RECORD_EVALUATION,
        this.projectId,
        this.jobId,
        e.step,
        finite(e.valid_loss),
        finite(e.valid_mean_token_accuracy),
        jsonOrNullText(rewardsOf(e)),
      );
      await insertEvent(tx, this.projectId, this.jobId, message, { type: 'metrics', data: e });
      const c = await tx.jobCheckpoint.updateMany({
        where: { jobId: this.jobId, projectId: this.projectId, step: e.step },
        data: { metrics: checkpointMetrics },
      });
      return { checkpoint: c.count > 0 };
    });
  }

  /** An event of the run. */
  async event(message: string, opts: NewJobEvent = {}): Promise<boolean> {
    return (await this.fenced((tx) => insertEvent(tx, this.projectId, this.jobId, message, opts))) !== null;
  }

  /** A checkpoint's record (replacing one at the same step) and its event. */
  async saveCheckpoint(step: number, storageKey: string, metrics: Numbers): Promise<boolean> {
    const done = await this.fenced(async (tx) => {
      await tx.jobCheckpoint.upsert({
        where: { jobId_step: { jobId: this.jobId, step } },
        create: { id: checkpointId(this.jobId, step), projectId: this.projectId, jobId: this.jobId, step, storageKey, metrics },
        update: { storageKey, metrics },
      });
      await insertEvent(tx, this.projectId, this.jobId, `Checkpoint saved at step ${step}`, { type: 'metrics', data: { kind: 'checkpoint', step } });
    });
    return done !== null;
  }

  /** The checkpoint at `step` becomes the job's best (the one retention keeps). */
  async markBestCheckpoint(step: number): Promise<boolean> {
    const done = await this.fenced(async (tx) => {
      const where = { jobId: this.jobId, projectId: this.projectId };
      await tx.jobCheckpoint.updateMany({ where: { ...where, best: true, NOT: { step } }, data: { best: false } });
      await tx.jobCheckpoint.updateMany({ where: { ...where, step }, data: { best: true } });
    });
    return done !== null;
  }

  /** Forgets a checkpoint's record (retention; its object is deleted by the caller). */
  async deleteCheckpoint(id: string): Promise<boolean> {
    return (await this.fenced((tx) => tx.jobCheckpoint.deleteMany({ where: { id, jobId: this.jobId, projectId: this.projectId } }))) !== null;
  }

  /**
   * The metrics and metric events of the steps after `step`, which a resumed run redoes; null
   * when the run was superseded.
   */
  async discardAfterStep(step: number): Promise<{ metrics: number; events: number; lastStep: number } | null> {
    return this.fenced(async (tx) => {
      const where = { jobId: this.jobId, projectId: this.projectId };
      const last = await tx.jobMetric.aggregate({ where, _max: { step: true } });
      const m = await tx.jobMetric.deleteMany({ where: { ...where, step: { gt: step } } });
      const e = await tx.jobEvent.deleteMany({ where: { ...where, step: { gt: step } } });
      return { metrics: m.count, events: e.count, lastStep: last._max.step ?? step };
    });
  }

  /** `write` in one transaction while the job is at this attempt (its row held to the end); else null. */
  private fenced<T>(write: (tx: Tx) => Promise<T>): Promise<T | null> {
    return this.run((db) =>
      db.$transaction(async (tx) => {
        const held = await tx.$queryRaw<Array<{ id: string }>>(
          Prisma.sql`SELECT id FROM jobs WHERE id = ${this.jobId} AND project_id = ${this.projectId} AND attempt = ${this.attempt} FOR SHARE`,
        );
        return held.length === 1 ? write(tx) : null;
      }),
    );
  }
}
