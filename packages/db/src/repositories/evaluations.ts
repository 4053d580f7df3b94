// Evaluations and their events. Status changes are conditional updates (a cancelled evaluation
// is never overwritten by its worker's late result).
import {
  EVALUATION_TERMINAL,
  type EvaluationEventRecord,
  type EvaluationRecord,
  type EvaluationStatus,
  type EventLevel,
  ID_PREFIX,
  newId,
  type RecordPage,
} from '@crucible/domain';
import type { Evaluation as EvaluationRow, EvaluationEvent as EventRow } from '../../generated/client';
import { Prisma } from '../../generated/client';
import { pageOf, Repository } from './base';
import { jsonField, jsonInput } from './json-columns';

function evaluationRecord(e: EvaluationRow): EvaluationRecord {
  return {
    id: e.id,
    projectId: e.projectId,
    model: e.model,
    fileId: e.fileId,
    status: e.status as EvaluationStatus,
    options: jsonField<EvaluationRecord['options']>(e.options),
    metrics: (e.metrics ?? null) as EvaluationRecord['metrics'],
    samples: (e.samples ?? null) as EvaluationRecord['samples'],
    progress: e.progress,
    error: (e.error ?? null) as EvaluationRecord['error'],
    metadata: (e.metadata ?? null) as EvaluationRecord['metadata'],
    createdAt: e.createdAt,
    startedAt: e.startedAt,
    finishedAt: e.finishedAt,
  };
}

function eventRecord(e: EventRow): EvaluationEventRecord {
  return {
    id: e.id,
    seq: e.seq,
    level: e.level as EvaluationEventRecord['level'],
    message: e.message,
    data: (e.data ?? null) as Record<string, unknown> | null,
    createdAt: e.createdAt,
  };
}

export type NewEvaluation = Pick<EvaluationRecord, 'id' | 'projectId' | 'model' | 'fileId' | 'options' | 'metadata'>;

const json = (v: unknown) => (v === null || v === undefined ? Prisma.DbNull : (v as Prisma.InputJsonValue));

export class EvaluationRepository extends Repository {
  async create(e: NewEvaluation): Promise<EvaluationRecord> {
    const row = await this.run((db) =>
      db.evaluation.create({
        data: {
          id: e.id,
          projectId: e.projectId,
          model: e.model,
          fileId: e.fileId,
          status: 'queued',
          options: jsonInput(e.options),
          metadata: json(e.metadata),
          events: {
            create: { id: newId(ID_PREFIX.evaluationEvent), projectId: e.projectId, level: 'info', message: `Created evaluation ${e.id} of ${e.model}` },
          },
        },
      }),
    );
    return evaluationRecord(row);
  }

  async get(projectId: string, id: string): Promise<EvaluationRecord | null> {
    const e = await this.run((db) => db.evaluation.findFirst({ where: { id, projectId } }));
    return e ? evaluationRecord(e) : null;
  }

  async list(projectId: string, q: { after?: string; limit: number; file?: string; model?: string }): Promise<RecordPage<EvaluationRecord>> {
    const rows = await this.run((db) =>
      db.evaluation.findMany({
        where: { projectId, ...(q.file ? { fileId: q.file } : {}), ...(q.model ? { model: q.model } : {}) },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        cursor: q.after ? { id: q.after } : undefined,
        skip: q.after ? 1 : 0,
        take: q.limit + 1,
      }),
    );
    return pageOf(rows.map(evaluationRecord), q.limit);
  }

  /** Succeeded evaluations on a file, newest first. */
  async succeededOn(projectId: string, fileId: string): Promise<EvaluationRecord[]> {
    const rows = await this.run((db) =>
      db.evaluation.findMany({ where: { projectId, fileId, status: 'succeeded' }, orderBy: [{ finishedAt: 'desc' }, { id: 'desc' }], take: 1000 }),
    );
    return rows.map(evaluationRecord);
  }

  /** queued -> running (or running again after a lost worker); null if it is cancelled or done. */
  async start(projectId: string, id: string): Promise<EvaluationRecord | null> {
    return this.run(async (db) => {
      const r = await db.evaluation.updateMany({
        where: { id, projectId, status: { in: ['queued', 'running'] } },
        data: { status: 'running', startedAt: new Date(), progress: 0 },
      });
      if (r.count === 0) return null;
      const e = await db.evaluation.findFirst({ where: { id, projectId } });
      return e ? evaluationRecord(e) : null;
    });
  }

  async progress(projectId: string, id: string, progress: number): Promise<EvaluationStatus | null> {
    return this.run(async (db) => {
      await db.evaluation.updateMany({ where: { id, projectId, status: 'running' }, data: { progress } });
      const e = await db.evaluation.findFirst({ where: { id, projectId }, select: { status: true } });
      return (e?.status as EvaluationStatus | undefined) ?? null;
    });
  }

  /** Ends a running (or queued) evaluation; false when it was already ended (e.g. cancelled). */
  async finish(
    projectId: string,
    id: string,
    to: 'succeeded' | 'failed' | 'cancelled',
    set: { metrics?: unknown; samples?: unknown; error?: unknown },
    event: { message: string; level?: EventLevel; data?: Record<string, unknown> },
  ): Promise<boolean> {
    return this.run((db) =>
      db.$transaction(async (tx) => {
        const r = await tx.evaluation.updateMany({
          where: { id, projectId, status: { notIn: [...EVALUATION_TERMINAL] } },
          data: {
            status: to,
            finishedAt: new Date(),
            ...(to === 'succeeded' ? { progress: 1 } : {}),
            ...(set.metrics !== undefined ? { metrics: json(set.metrics) } : {}),
            ...(set.samples !== undefined ? { samples: json(set.samples) } : {}),
            ...(set.error !== undefined ? { error: json(set.error) } : {}),
          },
        });
        if (r.count === 0) return false;
        await tx.evaluationEvent.create({
          data: {
            id: newId(ID_PREFIX.evaluationEvent),
            projectId,
            evaluationId: id,
            level: event.level ?? 'info',
            message: event.message,
            data: event.data as Prisma.InputJsonValue | undefined,
          },
        });
        return true;
      }),
    );
  }

  async addEvent(projectId: string, evaluationId: string, message: string, opts: { level?: 'info' | 'warn' | 'error'; data?: Record<string, unknown> } = {}) {
    await this.run((db) =>
      db.evaluationEvent.create({
        data: {
          id: newId(ID_PREFIX.evaluationEvent),
          projectId,
          evaluationId,
          level: opts.level ?? 'info',
          message,
          data: opts.data as Prisma.InputJsonValue | undefined,
        },
      }),
    );
  }

  async listEvents(projectId: string, evaluationId: string, q: { after?: string; limit: number }): Promise<RecordPage<EvaluationEventRecord>> {
    const rows = await this.run((db) =>
      db.evaluationEvent.findMany({
        where: { projectId, evaluationId },
        orderBy: { seq: 'desc' },
        cursor: q.after ? { id: q.after } : undefined,
        skip: q.after ? 1 : 0,
        take: q.limit + 1,
      }),
    );
    return pageOf(rows.map(eventRecord), q.limit);
  }

  /** Queued or running evaluations on a file (a file in use cannot be deleted). */
  async activeOn(projectId: string, fileId: string): Promise<number> {
    return this.run((db) => db.evaluation.count({ where: { projectId, fileId, status: { in: ['queued', 'running'] } } }));
  }

  /** Queued or running evaluations (the API re-dispatches those whose queue entry was lost). */
  async unfinished(olderThan: Date): Promise<EvaluationRecord[]> {
    const rows = await this.run((db) => db.evaluation.findMany({ where: { status: { in: ['queued', 'running'] }, createdAt: { lt: olderThan } }, take: 1000 }));
    return rows.map(evaluationRecord);
  }
}
