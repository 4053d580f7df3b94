// Files: datasets uploaded for training. Validated before anything is stored. The record is
// reserved (invisible) before the object is written and committed after it, so a crash at any
// point leaves nothing visible without its object; `sweepStaleUploads` removes what a crash left.
import type { Readable } from 'node:stream';
import type { Store } from '@crucible/db';
import { CrucibleError, FILE_PURPOSES, type FileObject, type FileRecord, ID_PREFIX, inspectDataset, newId } from '@crucible/domain';
import { keys, type Storage } from '@crucible/storage';
import type { Actor } from '../auth';
import type { Deps } from '../deps';
import { page, unix } from '../pagination';

export function fileObject(f: FileRecord): FileObject {
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
    format: f.format,
    lines: f.lines,
    sha256: f.sha256,
  };
}

export interface UploadInput {
  filename: string;
  purpose: string | undefined;
  bytes: Uint8Array;
}

export async function createFile(deps: Pick<Deps, 'store' | 'storage'>, actor: Actor, input: UploadInput): Promise<FileObject> {
  if (!input.purpose) throw new CrucibleError('invalid_request', 'purpose is required (fine-tune or pretrain)', 'purpose');
  if (!(FILE_PURPOSES as readonly string[]).includes(input.purpose)) {
    throw new CrucibleError('invalid_request', `purpose must be one of ${FILE_PURPOSES.join(', ')}`, 'purpose');
  }
  const summary = inspectDataset(input.bytes, input.filename);
  const id = newId(ID_PREFIX.file);
  const key = keys.file(actor.projectId, id);
  await deps.store.files.reserve({
    id,
    projectId: actor.projectId,
    filename: input.filename,
    purpose: input.purpose,
    bytes: input.bytes.byteLength,
    sha256: '',
    format: summary.format,
    lines: summary.lines,
    storageKey: key,
  });
  try {
    const sha256 = await deps.storage.put(key, input.bytes, 'application/octet-stream');
    return fileObject(await deps.store.files.commit(actor.projectId, id, { sha256 }));
  } catch (err) {
    await deps.storage.delete(key).catch(() => {});
    await deps.store.files.release(actor.projectId, id).catch(() => {}); // else the sweeper removes it
    throw err;
  }
}

/** Removes uploads that never finished (the API died mid-upload): their objects, then their records. */
export async function sweepStaleUploads(store: Store, storage: Storage, olderThan: Date): Promise<number> {
  const stale = await store.files.staleUploads(olderThan);
  for (const f of stale) {
    await storage.delete(f.storageKey);
    await store.files.release(f.projectId, f.id);
  }
  return stale.length;
}

export async function getFile(deps: Pick<Deps, 'store'>, actor: Actor, id: string, param = 'file_id'): Promise<FileRecord> {
  const f = await deps.store.files.get(actor.projectId, id);
  if (!f) throw new CrucibleError('file_not_found', `no file ${id} in this project`, param);
  return f;
}

export async function listFiles(deps: Pick<Deps, 'store'>, actor: Actor, q: { after?: string; limit?: number; purpose?: string }) {
  const limit = q.limit ?? 20;
  if (q.after) await getFile(deps, actor, q.after, 'after');
  const r = await deps.store.files.list(actor.projectId, { after: q.after, limit, purpose: q.purpose });
  return page(r.items.map(fileObject), r.hasMore);
}

export async function fileContent(deps: Pick<Deps, 'store' | 'storage'>, actor: Actor, id: string): Promise<{ file: FileRecord; body: Readable }> {
  const file = await getFile(deps, actor, id);
  return { file, body: await deps.storage.getStream(file.storageKey) };
}

export async function deleteFile(deps: Pick<Deps, 'store' | 'storage'>, actor: Actor, id: string) {
  const file = await getFile(deps, actor, id);
  const active = await deps.store.files.activeJobsUsing(actor.projectId, id);
  if (active > 0) throw new CrucibleError('file_in_use', `file ${id} is used by ${active} unfinished job(s); cancel them first`, 'file_id');
  await deps.store.files.delete(actor.projectId, file.id);
  await deps.storage.delete(file.storageKey);
  return { id, object: 'file' as const, deleted: true };
}
