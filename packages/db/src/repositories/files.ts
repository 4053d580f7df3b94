// Datasets. An upload reserves its record (state `uploading`, never listed) before its object is
// written and commits it after, so a crash in between leaves a record the sweeper can find and
// remove with its object, never an object nobody knows about.
import type { FileFormat, FileOutcome, FileRecord, FileState, NewFile, RecordPage, StoredPreparation, ValidationReport } from '@crucible/domain';
import { TERMINAL_STATUSES } from '@crucible/domain';
import type { File as FileRow } from '../../generated/client';
import { pageOf, Repository } from './base';
import { jsonField, jsonInput } from './json-columns';

function fileRecord(f: FileRow): FileRecord {
  return {
    id: f.id,
    projectId: f.projectId,
    filename: f.filename,
    purpose: f.purpose,
    bytes: f.bytes,
    sha256: f.sha256,
    format: f.format as FileFormat,
    lines: f.lines,
    storageKey: f.storageKey,
    state: f.state as FileState,
    report: jsonField<ValidationReport | null>(f.report) ?? null,
    preparation: jsonField<StoredPreparation | null>(f.preparation) ?? null,
    sourceFileId: f.sourceFileId,
    processedAt: f.processedAt,
    createdAt: f.createdAt,
  };
}

const VISIBLE = ['pending', 'processed', 'error'];

export class FileRepository extends Repository {
  /**
   * Writes the record as `uploading` (invisible until `commit`) holding `f.bytes` (the declared
   * size) of the project's storage, if `quota` leaves room for it; `{ used }` and nothing written
   * otherwise.
   */
  async reserve(f: NewFile, quota: number): Promise<{ used: number } | null> {
    const out = await this.withStorageRoom(f.projectId, f.bytes, quota, (q) => this.insert(f, 'uploading', q));
    return 'used' in out ? out : null;
  }

  /** The object is stored: the file becomes visible as `pending` until validated. */
  async commit(projectId: string, id: string, fields: { sha256: string; bytes: number; purpose?: string }): Promise<FileRecord> {
    return fileRecord(await this.run((db) => db.file.update({ where: { id, projectId }, data: { state: 'pending', ...fields } })));
  }

  /**
   * A prepared file: visible (pending) at once, holding `f.bytes` (its source's size, a bound on
   * its own) of the project's storage until settled; its object is written while it is processed.
   * `{ used }` and nothing written when `quota` leaves no room.
   */
  async createPending(f: NewFile): Promise<FileRecord>;
  async createPending(f: NewFile, quota: number): Promise<FileRecord | { used: number }>;
  async createPending(f: NewFile, quota = Number.POSITIVE_INFINITY): Promise<FileRecord | { used: number }> {
    return this.withStorageRoom(f.projectId, f.bytes, quota, (q) => this.insert(f, 'pending', q));
  }

  private async insert(f: NewFile, state: 'uploading' | 'pending', q: (text: string, values: unknown[]) => Promise<unknown>): Promise<FileRecord> {
    const createdAt = new Date();
    await q(
      `INSERT INTO files (id, project_id, filename, purpose, bytes, sha256, format, lines, storage_key, state, preparation, source_file_id, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13)`,
      [
        f.id,
        f.projectId,
        f.filename,
        f.purpose,
        f.bytes,
        f.sha256,
        f.format,
        f.lines,
        f.storageKey,
        state,
        f.preparation ? JSON.stringify(f.preparation) : null,
        f.sourceFileId ?? null,
        createdAt.toISOString(),
      ],
    );
    return { ...f, state, report: null, preparation: f.preparation ?? null, sourceFileId: f.sourceFileId ?? null, processedAt: null, createdAt };
  }

  /** Settles a pending file (validated, or prepared and validated); false if it is gone or settled. */
  async settle(projectId: string, id: string, o: FileOutcome): Promise<boolean> {
    const r = await this.run((db) =>
      db.file.updateMany({
        where: { id, projectId, state: 'pending' },
        data: {
          state: o.state,
          format: o.format,
          lines: o.lines,
          report: jsonInput(o.report),
          ...(o.preparation ? { preparation: jsonInput(o.preparation) } : {}),
          ...(o.sha256 !== undefined ? { sha256: o.sha256 } : {}),
          ...(o.bytes !== undefined ? { bytes: o.bytes } : {}),
          processedAt: new Date(),
        },
      }),
    );
    return r.count === 1;
  }

  /** Pending files created before `olderThan` (their processing may have been lost). */
  /**
   * Counts a processing run of a pending file as begun; returns how many have begun without
   * finishing (this one included), or null when the file is no longer pending.
   */
  async beginProcessing(projectId: string, id: string): Promise<number | null> {
    const rows = await this.sql<{ n: number }>(
      `UPDATE files SET processing_attempts = processing_attempts + 1 WHERE id = $1 AND project_id = $2 AND state = 'pending' RETURNING processing_attempts AS n`,
      [id, projectId],
    );
    return rows[0]?.n ?? null;
  }

  /** Takes back a run's count (it stopped for a reason outside the file: a dependency was down). */
  async forgiveProcessing(projectId: string, id: string): Promise<void> {
    await this.sql(`UPDATE files SET processing_attempts = GREATEST(processing_attempts - 1, 0) WHERE id = $1 AND project_id = $2 AND state = 'pending'`, [
      id,
      projectId,
    ]);
  }

  async pendingSince(olderThan: Date): Promise<FileRecord[]> {
    return (await this.run((db) => db.file.findMany({ where: { state: 'pending', createdAt: { lt: olderThan } }, take: 1000 }))).map(fileRecord);
  }

  /** Removes a reservation (the upload failed). */
  async release(projectId: string, id: string): Promise<void> {
    await this.run((db) => db.file.deleteMany({ where: { id, projectId, state: 'uploading' } }));
  }

  /** A visible file of the project (in SQL: every job creation reads its files). */
  async get(projectId: string, id: string): Promise<FileRecord | null> {
    const rows = await this.sql<FileRow>(
      `SELECT id, project_id AS "projectId", filename, purpose, bytes, sha256, format, lines, storage_key AS "storageKey", state, report, preparation,
              source_file_id AS "sourceFileId", processed_at AT TIME ZONE 'UTC' AS "processedAt", created_at AT TIME ZONE 'UTC' AS "createdAt"
         FROM files WHERE id = $1 AND project_id = $2 AND state = ANY($3)`,
      [id, projectId, VISIBLE],
    );
    return rows[0] ? fileRecord(rows[0]) : null;
  }

  async list(projectId: string, q: { after?: string; limit: number; purpose?: string }): Promise<RecordPage<FileRecord>> {
    const rows = await this.run((db) =>
      db.file.findMany({
        where: { projectId, state: { in: VISIBLE }, ...(q.purpose ? { purpose: q.purpose } : {}) },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        cursor: q.after ? { id: q.after } : undefined,
        skip: q.after ? 1 : 0,
        take: q.limit + 1,
      }),
    );
    return pageOf(rows.map(fileRecord), q.limit);
  }

  /** Unfinished jobs (not terminal) that train on the file, and unfinished evaluations on it. */
  async activeJobsUsing(projectId: string, id: string): Promise<number> {
    return this.run(async (db) => {
      const jobs = await db.job.count({
        where: { projectId, status: { notIn: [...TERMINAL_STATUSES] }, OR: [{ trainingFileId: id }, { validationFileId: id }, { preparedFileId: id }] },
      });
      const evaluations = await db.evaluation.count({ where: { projectId, fileId: id, status: { in: ['queued', 'running'] } } });
      return jobs + evaluations;
    });
  }

  async delete(projectId: string, id: string): Promise<void> {
    await this.run((db) => db.file.deleteMany({ where: { id, projectId } }));
  }

  /** Reservations older than `olderThan` (uploads that never finished). */
  async staleUploads(olderThan: Date): Promise<FileRecord[]> {
    return (await this.run((db) => db.file.findMany({ where: { state: 'uploading', createdAt: { lt: olderThan } }, take: 1000 }))).map(fileRecord);
  }

  /** Every record of a project, any state (tests and audits). */
  async all(projectId: string): Promise<FileRecord[]> {
    return (await this.run((db) => db.file.findMany({ where: { projectId } }))).map(fileRecord);
  }
}
