// Files: datasets uploaded for training and evaluation. An upload streams to storage while it is
// hashed and counted (memory stays flat in file size); its record is reserved (invisible) before
// the object is written and committed as `pending` after, so a crash at any point leaves nothing
// visible without its object (`sweepStaleUploads` removes what a crash left). Validation then
// runs in the background (FileProcessor) and settles the file as `processed` or `error`.
import type { Readable } from 'node:stream';
import { createPreparedFile, HashCounter, resolveRules } from '@crucible/datasets';
import type { Store } from '@crucible/db';
import {
  CrucibleError,
  checkFilename,
  type DatasetProblem,
  FILE_PURPOSES,
  type FileObject,
  type FileRecord,
  ID_PREFIX,
  newId,
  type PreparationRulesRequest,
} from '@crucible/domain';
import { keys, type Storage } from '@crucible/storage';
import type { Actor } from '../auth';
import type { ApiConfig } from '../config';
import type { Deps } from '../deps';
import { page, unix } from '../pagination';

const SHOWN_PROBLEMS = 5;

export function fileObject(f: FileRecord): FileObject {
  const problems = f.report?.problems ?? [];
  const count = f.report?.problem_count ?? null;
  return {
    id: f.id,
    object: 'file',
    bytes: f.bytes,
    created_at: unix(f.createdAt) as number,
    filename: f.filename,
    purpose: f.purpose,
    status: f.state === 'uploading' ? 'pending' : f.state,
    status_details: statusDetails(f, problems, count),
    expires_at: null,
    format: f.state === 'pending' && !f.report ? null : f.format,
    lines: f.lines,
    sha256: f.sha256,
    problem_count: count,
    problems: problems.slice(0, SHOWN_PROBLEMS),
    source_file: f.sourceFileId,
  };
}

function statusDetails(f: FileRecord, problems: DatasetProblem[], count: number | null): string | null {
  if (f.state !== 'error' || !count) return null;
  const first = problems
    .slice(0, SHOWN_PROBLEMS)
    .map((p) => p.message)
    .join('; ');
  return `${count} problem${count === 1 ? '' : 's'} found: ${first}${count > SHOWN_PROBLEMS ? `; ... (GET /v1/files/${f.id}/report lists the first 100)` : ''}`;
}

function checkPurpose(purpose: string | undefined): string {
  if (!purpose) throw new CrucibleError('invalid_request', `purpose is required (${FILE_PURPOSES.join(', ')})`, 'purpose');
  if (!(FILE_PURPOSES as readonly string[]).includes(purpose)) {
    throw new CrucibleError('invalid_request', `purpose must be one of ${FILE_PURPOSES.join(', ')}`, 'purpose');
  }
  return purpose;
}

/** Refuses, while the first bytes stream in, what is plainly not a text dataset. */
function textSniffer(maxBytes: number, tooLarge: () => CrucibleError) {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  return (chunk: Buffer, seen: number): Error | undefined => {
    if (seen + chunk.length > maxBytes) return tooLarge();
    if (seen >= 65536) return undefined;
    const head = chunk.subarray(0, 65536 - seen);
    if (head.includes(0)) return new CrucibleError('invalid_file', 'the file holds NUL bytes: it looks binary, not a text or JSONL dataset', 'file');
    try {
      decoder.decode(head, { stream: true });
    } catch {
      return new CrucibleError('invalid_file', 'the file is not valid UTF-8 text', 'file');
    }
    return undefined;
  };
}

/** An upload in progress: its reservation and object. */
export class FileUpload {
  readonly id = newId(ID_PREFIX.file);
  readonly key: string;
  private stored: { bytes: number; sha256: string } | undefined;

  constructor(
    private readonly deps: Pick<Deps, 'store' | 'storage'>,
    private readonly actor: Actor,
    readonly filename: string,
  ) {
    this.key = keys.file(actor.projectId, this.id);
  }

  /**
   * Streams the file part to storage, reserving the record first with `hold` bytes of the
   * project's storage (the most the file can be): refused at once when the quota has no room.
   */
  async write(stream: Readable, hold: number, tooLarge: () => CrucibleError): Promise<void> {
    const quota = this.actor.limits.maxStorageBytes;
    const refused = await this.deps.store.files.reserve(
      {
        id: this.id,
        projectId: this.actor.projectId,
        filename: this.filename,
        purpose: '',
        bytes: hold,
        sha256: '',
        format: 'text',
        lines: 0,
        storageKey: this.key,
      },
      quota,
    );
    if (refused) {
      stream.resume();
      throw storageRefusal(quota, refused.used, 'file');
    }
    const maxBytes = hold;
    const counter = new HashCounter(textSniffer(maxBytes, tooLarge));
    stream.on('error', (err) => counter.destroy(err));
    await this.deps.storage.putStream(this.key, stream.pipe(counter));
    if (counter.bytes === 0) throw new CrucibleError('invalid_file', 'the file is empty', 'file');
    this.stored = { bytes: counter.bytes, sha256: counter.sha256() };
  }

  /** Makes the file visible as pending. */
  async commit(purpose: string): Promise<FileRecord> {
    if (!this.stored) throw new Error('nothing was written');
    return this.deps.store.files.commit(this.actor.projectId, this.id, { ...this.stored, purpose });
  }

  /** Removes what a failed upload wrote. */
  async discard(): Promise<void> {
    await this.deps.storage.delete(this.key).catch(() => {});
    await this.deps.store.files.release(this.actor.projectId, this.id).catch(() => {}); // else the sweeper removes it
  }
}

export interface UploadPart {
  kind: 'file' | 'field';
  name: string;
  filename?: string;
  stream?: Readable;
  value?: string;
}

/**
 * An upload from the parts of a multipart body (in any order): the file streams to storage;
 * a problem found on the way (too large, binary, not UTF-8, no purpose) is answered at once and
 * leaves nothing behind. The answer waits up to UPLOAD_WAIT_MS for validation.
 */
export async function createFile(
  deps: Deps,
  cfg: ApiConfig,
  actor: Actor,
  parts: AsyncIterable<UploadPart>,
  /** The request's Content-Length: the most the file can be (undefined when the body is chunked). */
  declaredBytes?: number,
): Promise<FileObject> {
  let purpose: string | undefined;
  let upload: FileUpload | undefined;
  // the upload holds the most it can be of the project's storage from its start (atomically, so
  // parallel uploads cannot pass the quota together); the record is settled at its real size
  const quota = actor.limits.maxStorageBytes;
  const left = declaredBytes === undefined ? quota - (await deps.store.projects.usage(actor.projectId)).storageBytes : Number.POSITIVE_INFINITY;
  const hold = Math.min(cfg.maxUploadBytes, declaredBytes ?? cfg.maxUploadBytes, left);
  const tooLarge = () =>
    hold < cfg.maxUploadBytes
      ? storageRefusal(quota, quota - hold, 'file')
      : new CrucibleError('file_too_large', `the file exceeds ${cfg.maxUploadBytes} bytes (MAX_UPLOAD_BYTES)`, 'file');
  try {
    for await (const part of parts) {
      if (part.kind === 'file') {
        if (part.name !== 'file') throw new CrucibleError('invalid_request', `unexpected file field ${part.name}`, part.name);
        if (upload) throw new CrucibleError('invalid_request', 'send exactly one file part', 'file');
        if (hold <= 0) throw storageRefusal(quota, quota, 'file');
        const name = checkFilename(part.filename || 'upload');
        if (!name.ok) throw new CrucibleError('invalid_request', name.reason, 'filename');
        upload = new FileUpload(deps, actor, name.name);
        await upload.write(part.stream as Readable, hold, tooLarge);
      } else if (part.name === 'purpose') purpose = part.value;
    }
    if (!upload) throw new CrucibleError('invalid_request', 'the file field is missing', 'file');
    const file = await upload.commit(checkPurpose(purpose));
    upload = undefined;
    await settledWithin(deps, file, cfg.uploadWaitMs);
    return fileObject((await deps.store.files.get(actor.projectId, file.id)) ?? file);
  } catch (err) {
    await upload?.discard();
    throw err;
  }
}

async function settledWithin(deps: Pick<Deps, 'processor'>, file: FileRecord, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([deps.processor.submit(file), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/**
 * Removes uploads that never finished (the API died mid-upload): their objects, then their
 * records; and model imports cut short the same way: what they wrote, then their reservations.
 */
export async function sweepStaleUploads(store: Store, storage: Storage, olderThan: Date): Promise<number> {
  const stale = await store.files.staleUploads(olderThan);
  for (const f of stale) {
    await storage.delete(f.storageKey);
    await store.files.release(f.projectId, f.id);
  }
  const imports = await store.projects.staleReservations(olderThan);
  for (const r of imports) {
    await storage.deletePrefix(r.storagePrefix);
    await store.projects.releaseStorage(r.projectId, r.id);
  }
  return stale.length + imports.length;
}

export async function getFile(deps: Pick<Deps, 'store'>, actor: Actor, id: string, param = 'file_id'): Promise<FileRecord> {
  const f = await deps.store.files.get(actor.projectId, id);
  if (!f) throw new CrucibleError('file_not_found', `no file ${id} in this project`, param);
  return f;
}

/** A file that jobs and evaluations can use: validated without problems. */
export async function getProcessedFile(deps: Pick<Deps, 'store'>, actor: Actor, id: string, param: string): Promise<FileRecord> {
  const f = await getFile(deps, actor, id, param);
  if (f.state === 'pending') {
    throw new CrucibleError('file_not_ready', `${param} ${id} is still being validated (status pending); retry when its status is processed`, param);
  }
  if (f.state === 'error') {
    throw new CrucibleError('invalid_file', `${param} ${id} failed validation: ${fileObject(f).status_details ?? 'see its report'}`, param);
  }
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
  if (file.state === 'pending' && file.sourceFileId) throw new CrucibleError('file_not_ready', `file ${id} is still being prepared`, 'file_id');
  return { file, body: await deps.storage.getStream(file.storageKey) };
}

export async function deleteFile(deps: Pick<Deps, 'store' | 'storage'>, actor: Actor, id: string) {
  const file = await getFile(deps, actor, id);
  const active = await deps.store.files.activeJobsUsing(actor.projectId, id);
  if (active > 0) throw new CrucibleError('file_in_use', `file ${id} is used by ${active} unfinished job(s) or evaluation(s); cancel them first`, 'file_id');
  await deps.store.files.delete(actor.projectId, file.id);
  await deps.storage.delete(file.storageKey);
  return { id, object: 'file' as const, deleted: true };
}

export async function fileReport(deps: Pick<Deps, 'store'>, actor: Actor, id: string) {
  const f = await getFile(deps, actor, id);
  const prep = f.preparation;
  return {
    object: 'file.report' as const,
    file_id: f.id,
    status: fileObject(f).status,
    validation: f.report,
    preparation: prep && f.sourceFileId ? { source_file: f.sourceFileId, rules: prep.rules, report: prep.report } : null,
  };
}

/**
 * A new file made from `id` by the preparation rules, processed in the background. Its record
 * holds its source's size of the project's storage (MAX_STORAGE_BYTES) until it is settled.
 */
export async function requestPreparation(
  deps: Pick<Deps, 'store' | 'processor'>,
  actor: Actor,
  id: string,
  req: { rules?: PreparationRulesRequest; filename?: string },
): Promise<FileObject> {
  const source = await getProcessedFile(deps, actor, id, 'file_id');
  const rules = resolveRules(req.rules ?? {});
  if (req.filename !== undefined) {
    const name = checkFilename(req.filename);
    if (!name.ok || name.name !== req.filename)
      throw new CrucibleError('invalid_request', name.ok ? 'filename must not hold / or \\' : name.reason, 'filename');
  }
  const quota = actor.limits.maxStorageBytes;
  const refuse = (used: number) => storageRefusal(quota, used, 'file_id');
  const created = await createPreparedFile(deps.store.files, source, rules, { filename: req.filename, quota: { bytes: quota, refuse } });
  void deps.processor.submit(created);
  return fileObject(created);
}

/** MAX_STORAGE_BYTES would be passed. */
export function storageRefusal(quota: number, used: number, param: string): CrucibleError {
  return new CrucibleError(
    'quota_exceeded',
    `the project's storage limit of ${quota} bytes (MAX_STORAGE_BYTES) would be passed: ${used} bytes are stored or held by uploads in progress; delete files or models to make room`,
    param,
  );
}
