// Files: datasets uploaded for training. Validated before anything is stored; the object is
// written before the record, and removed again if the record cannot be written.
import type { Readable } from 'node:stream';
import { CrucibleError, FILE_PURPOSES, type FileFormat, type FileObject, ID_PREFIX, inspectDataset, newId, TERMINAL_STATUSES } from '@crucible/domain';
import { keys } from '@crucible/storage';
import type { Actor } from '../auth';
import type { Deps } from '../deps';
import { page, unix } from '../pagination';

type FileRow = NonNullable<Awaited<ReturnType<Deps['db']['file']['findFirst']>>>;

export function fileObject(f: FileRow): FileObject {
  return {
    id: f.id,
    object: 'file',
    bytes: f.bytes,
    created_at: unix(f.createdAt) as number,
    filename: f.filename,
    purpose: f.purpose,
    status: 'processed',
    status_details: null,
    expires_at: null,
    format: f.format as FileFormat,
    lines: f.lines,
    sha256: f.sha256,
  };
}

export interface UploadInput {
  filename: string;
  purpose: string | undefined;
  bytes: Uint8Array;
}

export async function createFile(deps: Pick<Deps, 'db' | 'storage'>, actor: Actor, input: UploadInput): Promise<FileObject> {
  if (!input.purpose) throw new CrucibleError('invalid_request', 'purpose is required (fine-tune or pretrain)', 'purpose');
  if (!(FILE_PURPOSES as readonly string[]).includes(input.purpose)) {
    throw new CrucibleError('invalid_request', `purpose must be one of ${FILE_PURPOSES.join(', ')}`, 'purpose');
  }
  const summary = inspectDataset(input.bytes, input.filename);
  const id = newId(ID_PREFIX.file);
  const key = keys.file(actor.projectId, id);
  const sha256 = await deps.storage.put(key, input.bytes, 'application/octet-stream');
  try {
    const row = await deps.db.file.create({
      data: {
        id,
        projectId: actor.projectId,
        filename: input.filename,
        purpose: input.purpose,
        bytes: input.bytes.byteLength,
        sha256,
        format: summary.format,
        lines: summary.lines,
        storageKey: key,
      },
    });
    return fileObject(row);
  } catch (err) {
    await deps.storage.delete(key).catch(() => {});
    throw err;
  }
}

export async function getFileRow(deps: Pick<Deps, 'db'>, actor: Actor, id: string, param = 'file_id'): Promise<FileRow> {
  const f = await deps.db.file.findFirst({ where: { id, projectId: actor.projectId } });
  if (!f) throw new CrucibleError('file_not_found', `no file ${id} in this project`, param);
  return f;
}

export async function listFiles(deps: Pick<Deps, 'db'>, actor: Actor, q: { after?: string; limit?: number; purpose?: string }) {
  const limit = q.limit ?? 20;
  if (q.after) await getFileRow(deps, actor, q.after, 'after');
  const rows = await deps.db.file.findMany({
    where: { projectId: actor.projectId, ...(q.purpose ? { purpose: q.purpose } : {}) },
    orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    cursor: q.after ? { id: q.after } : undefined,
    skip: q.after ? 1 : 0,
    take: limit + 1,
  });
  return page(rows.map(fileObject), limit);
}

export async function fileContent(deps: Pick<Deps, 'db' | 'storage'>, actor: Actor, id: string): Promise<{ row: FileRow; body: Readable }> {
  const row = await getFileRow(deps, actor, id);
  return { row, body: await deps.storage.getStream(row.storageKey) };
}

export async function deleteFile(deps: Pick<Deps, 'db' | 'storage'>, actor: Actor, id: string) {
  const row = await getFileRow(deps, actor, id);
  const active = await deps.db.job.count({
    where: {
      projectId: actor.projectId,
      status: { notIn: [...TERMINAL_STATUSES] },
      OR: [{ trainingFileId: id }, { validationFileId: id }],
    },
  });
  if (active > 0) throw new CrucibleError('file_in_use', `file ${id} is used by ${active} unfinished job(s); cancel them first`, 'file_id');
  await deps.db.file.delete({ where: { id: row.id } });
  await deps.storage.delete(row.storageKey);
  return { id, object: 'file' as const, deleted: true };
}
