// Datasets. An upload reserves its record (state `uploading`, never listed) before its object is
// written and commits it after, so a crash in between leaves a record the sweeper can find and
// remove with its object, never an object nobody knows about.
import type { FileFormat, FileRecord, FileState, RecordPage } from '@crucible/domain';
import { TERMINAL_STATUSES } from '@crucible/domain';
import type { File as FileRow } from '../../generated/client';
import { pageOf, Repository } from './base';

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
    createdAt: f.createdAt,
  };
}

export type NewFile = Omit<FileRecord, 'state' | 'createdAt'>;

export class FileRepository extends Repository {
  /** Writes the record as `uploading`: invisible until `commit`. */
  async reserve(f: NewFile): Promise<void> {
    await this.run((db) => db.file.create({ data: { ...f, state: 'uploading' } }));
  }

  async commit(projectId: string, id: string, fields: { sha256: string }): Promise<FileRecord> {
    return fileRecord(await this.run((db) => db.file.update({ where: { id, projectId }, data: { state: 'processed', sha256: fields.sha256 } })));
  }

  /** Removes a reservation (the upload failed). */
  async release(projectId: string, id: string): Promise<void> {
    await this.run((db) => db.file.deleteMany({ where: { id, projectId, state: 'uploading' } }));
  }

  async get(projectId: string, id: string): Promise<FileRecord | null> {
    const f = await this.run((db) => db.file.findFirst({ where: { id, projectId, state: 'processed' } }));
    return f ? fileRecord(f) : null;
  }

  async list(projectId: string, q: { after?: string; limit: number; purpose?: string }): Promise<RecordPage<FileRecord>> {
    const rows = await this.run((db) =>
      db.file.findMany({
        where: { projectId, state: 'processed', ...(q.purpose ? { purpose: q.purpose } : {}) },
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        cursor: q.after ? { id: q.after } : undefined,
        skip: q.after ? 1 : 0,
        take: q.limit + 1,
      }),
    );
    return pageOf(rows.map(fileRecord), q.limit);
  }

  /** Unfinished jobs (not terminal) that train on the file. */
  async activeJobsUsing(projectId: string, id: string): Promise<number> {
    return this.run((db) =>
      db.job.count({ where: { projectId, status: { notIn: [...TERMINAL_STATUSES] }, OR: [{ trainingFileId: id }, { validationFileId: id }] } }),
    );
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
