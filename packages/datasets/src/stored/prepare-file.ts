// One preparation of a stored file, for the API (POST /v1/files/{id}/prepare, run in the
// background by its file processor) and the worker (a job's data_preparation, run before
// training). The pending record comes first and holds its source's size, so no object is ever
// left without a record (a run that dies is picked up again from the record); then the source
// streams through the rules into the new object, the output validated on the way (one line in
// memory at a time); then one conditional update settles the record.
import { PassThrough } from 'node:stream';
import {
  type FileFormat,
  type FileOutcome,
  type FileRecord,
  ID_PREFIX,
  type NewFile,
  newId,
  type PreparationReport,
  type PreparationRules,
  type ValidationReport,
} from '@crucible/domain';
import { keys, type Storage } from '@crucible/storage';
import { Preparer, preparedFileName } from '../prepare';
import { DatasetValidator, processingFailedReport, type ValidationLimits, validationOutcome } from '../validate';
import { HashCounter } from './hash-counter';
import { storedLines } from './lines';

/** The two writes of a prepared file's record (the database's file repository). */
export interface PreparedFileRecords {
  createPending(f: NewFile, quota: number): Promise<FileRecord | { used: number }>;
  settle(projectId: string, id: string, o: FileOutcome): Promise<boolean>;
}

/** One streamed preparation: the source object through the rules into the new object. */
export interface PrepareTask {
  kind: 'prepare';
  sourceKey: string;
  sourceFormat: FileFormat;
  rules: PreparationRules;
  /** Where the prepared object goes. */
  key: string;
  filename: string;
  purpose: string;
  limits: ValidationLimits;
}

export interface Prepared {
  validation: ValidationReport;
  report: PreparationReport;
  sha256: string;
  bytes: number;
}

/** How a preparation ended: the file is `processed` (usable) or `error` (see its validation). */
export interface PreparedFile {
  state: FileOutcome['state'];
  validation: ValidationReport;
  /** null when the rules could not prepare the source. */
  report: PreparationReport | null;
}

/**
 * The pending record of a file prepared from `source` by `rules` (named `filename`, else
 * `<name>.prepared.<ext>`). With a `quota`, holding the source's size must not pass its bytes of
 * the project's storage, else its `refuse` error is thrown.
 */
export async function createPreparedFile(
  files: PreparedFileRecords,
  source: FileRecord,
  rules: PreparationRules,
  opts: { filename?: string; quota?: { bytes: number; refuse: (used: number) => Error } } = {},
): Promise<FileRecord> {
  const id = newId(ID_PREFIX.file);
  const created = await files.createPending(
    {
      id,
      projectId: source.projectId,
      filename: preparedFileName(source.filename, source.format, opts.filename),
      purpose: source.purpose,
      bytes: source.bytes, // held until settled at its own size
      sha256: '',
      format: source.format,
      lines: 0,
      storageKey: keys.file(source.projectId, id),
      sourceFileId: source.id,
      preparation: { rules, report: null },
    },
    opts.quota?.bytes ?? Number.POSITIVE_INFINITY,
  );
  if ('used' in created) throw (opts.quota as NonNullable<typeof opts.quota>).refuse(created.used);
  return created;
}

/**
 * Prepares the pending `file` from `source` and settles its record; null when the record was
 * deleted (or settled) meanwhile, its object then removed. `run` runs the streaming part (the
 * API runs it in a worker thread; by default, here). A source the rules cannot prepare settles
 * the file as `error` with the reason; a dependency that fails throws.
 */
export async function prepareFile(
  ports: { files: Pick<PreparedFileRecords, 'settle'>; storage: Storage; run?: (t: PrepareTask) => Promise<Prepared> },
  file: FileRecord,
  source: FileRecord,
  limits: ValidationLimits,
): Promise<PreparedFile | null> {
  const { files, storage } = ports;
  const rules = file.preparation?.rules;
  if (!rules) throw new Error(`file ${file.id} is not a prepared file`);
  const task: PrepareTask = {
    kind: 'prepare',
    sourceKey: source.storageKey,
    sourceFormat: source.format,
    rules,
    key: file.storageKey,
    filename: file.filename,
    purpose: file.purpose,
    limits,
  };
  let r: Prepared;
  try {
    r = await (ports.run ?? ((t) => prepareStored(storage, t)))(task);
  } catch (err) {
    // (its class does not cross a thread boundary; its name does)
    if ((err as Error).name !== 'PreparationError') throw err;
    await storage.delete(file.storageKey).catch(() => {}); // what was written of the output
    const validation = await settleAsFailed(files, file, (err as Error).message, limits);
    return validation ? { state: 'error', validation, report: null } : null;
  }
  const outcome = validationOutcome(r.validation);
  const settled = await files.settle(file.projectId, file.id, { ...outcome, preparation: { rules, report: r.report }, sha256: r.sha256, bytes: r.bytes });
  if (!settled) {
    await storage.delete(file.storageKey).catch(() => {});
    return null;
  }
  return { state: outcome.state, validation: r.validation, report: r.report };
}

/**
 * Settles a pending file whose processing could not finish as `error`, with `message` as its one
 * problem; a prepared file then holds none of the project's storage (it has no object). Returns
 * the report, or null when the file was settled (or deleted) meanwhile.
 */
export async function settleAsFailed(
  files: Pick<PreparedFileRecords, 'settle'>,
  file: FileRecord,
  message: string,
  limits: ValidationLimits,
): Promise<ValidationReport | null> {
  const report = processingFailedReport(message, limits);
  const settled = await files.settle(file.projectId, file.id, {
    state: 'error',
    format: file.format,
    lines: 0,
    report,
    ...(file.sourceFileId ? { bytes: 0 } : {}),
  });
  return settled ? report : null;
}

/** Streams the source through the preparation rules into the new object, validating the output; throws PreparationError for a source it cannot prepare. */
export async function prepareStored(storage: Storage, t: PrepareTask): Promise<Prepared> {
  const validator = new DatasetValidator(t.filename, t.purpose, t.limits);
  const counter = new HashCounter();
  const out = new PassThrough();
  // an error on either stream ends the storage write (which reports it); none goes unheard
  out.on('error', (err) => counter.destroy(err));
  counter.on('error', () => {});
  const written = storage.putStream(t.key, out.pipe(counter));
  const enc = new TextEncoder();
  const emit = (line: string) => {
    const bytes = enc.encode(`${line}\n`);
    validator.push(bytes);
    out.write(bytes);
  };
  const preparer = new Preparer(t.sourceFormat, t.rules, emit);
  try {
    for await (const line of storedLines(storage, t.sourceKey)) {
      preparer.line(line.text, line.number);
      // let storage drain what was written
      if (out.writableLength > 1 << 20) await new Promise((r) => out.once('drain', r));
    }
    const report = preparer.end();
    out.end();
    await written;
    return { validation: validator.end(), report, sha256: counter.sha256(), bytes: counter.bytes };
  } catch (err) {
    out.destroy(err as Error);
    await written.catch(() => {});
    throw err;
  }
}
