// Writes of a running job: status changes (only from the states the worker expects, so that a
// cancel or pause from the API is never overwritten), events, metrics.
import type { Db, Prisma } from '@crucible/db';
import { ID_PREFIX, type JobStatus, newId } from '@crucible/domain';

export class JobRecords {
  constructor(
    private readonly db: Db,
    readonly projectId: string,
    readonly jobId: string,
  ) {}

  /** Moves the job to `to` if it is in `from`; returns false if someone else moved it first. */
  async transition(from: JobStatus[], to: JobStatus, data: Prisma.JobUpdateManyMutationInput = {}): Promise<boolean> {
    const r = await this.db.job.updateMany({ where: { id: this.jobId, status: { in: from } }, data: { status: to, ...data } });
    return r.count === 1;
  }

  async status(): Promise<string | undefined> {
    return (await this.db.job.findUnique({ where: { id: this.jobId }, select: { status: true } }))?.status;
  }

  async event(message: string, opts: { level?: 'info' | 'warn' | 'error'; type?: 'message' | 'metrics'; data?: Record<string, unknown> } = {}): Promise<void> {
    await this.db.jobEvent.create({
      data: {
        id: newId(ID_PREFIX.event),
        projectId: this.projectId,
        jobId: this.jobId,
        level: opts.level ?? 'info',
        type: opts.type ?? 'message',
        message,
        data: opts.data as Prisma.InputJsonValue | undefined,
      },
    });
  }

  async metric(
    step: number,
    values: { trainLoss?: number; validLoss?: number; validAcc?: number; lr?: number; gradNorm?: number; tokensPerSec?: number },
  ): Promise<void> {
    const clean = Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined && Number.isFinite(v)));
    await this.db.jobMetric.upsert({
      where: { jobId_step: { jobId: this.jobId, step } },
      create: { jobId: this.jobId, projectId: this.projectId, step, ...clean },
      update: clean,
    });
  }
}
