// The heavy part of file work, with no database: validating an object, preparing one object into
// another (validating the output), and reading a processed file back (reading-work.ts). Pure
// functions of storage and their arguments, so that they run off the API's event loop
// (file-work-pool.ts runs them in worker threads); streaming, one line in memory at a time.
import { PassThrough } from 'node:stream';
import { DatasetValidator, type PreparationReport, type PreparationRules, Preparer, type ValidationLimits, type ValidationReport } from '@crucible/datasets';
import type { FileFormat } from '@crucible/domain';
import type { Storage } from '@crucible/storage';
import {
  type Preview,
  type PreviewTask,
  previewStored,
  type TallyTask,
  type TokenTally,
  tallyStored,
  type UnknownCharactersFound,
  type UnknownCharactersTask,
  unknownCharactersStored,
} from './reading-work';
import { storedLines } from './stored-lines';
import { HashCounter } from './streams';

export interface ValidateTask {
  kind: 'validate';
  key: string;
  filename: string;
  purpose: string;
  limits: ValidationLimits;
}

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

export type FileTask = ValidateTask | PrepareTask | TallyTask | PreviewTask | UnknownCharactersTask;

export interface Prepared {
  validation: ValidationReport;
  report: PreparationReport;
  sha256: string;
  bytes: number;
}

export type FileTaskResult<T extends FileTask> = T extends ValidateTask
  ? ValidationReport
  : T extends PrepareTask
    ? Prepared
    : T extends TallyTask
      ? TokenTally
      : T extends PreviewTask
        ? Preview
        : UnknownCharactersFound;

export async function runFileTask<T extends FileTask>(storage: Storage, task: T): Promise<FileTaskResult<T>> {
  const t = task as FileTask;
  const result =
    t.kind === 'validate'
      ? validateStored(storage, t)
      : t.kind === 'prepare'
        ? prepareStored(storage, t)
        : t.kind === 'tally'
          ? tallyStored(storage, t)
          : t.kind === 'preview'
            ? previewStored(storage, t)
            : unknownCharactersStored(storage, t);
  return result as Promise<FileTaskResult<T>>;
}

export async function validateStored(storage: Storage, t: ValidateTask): Promise<ValidationReport> {
  const validator = new DatasetValidator(t.filename, t.purpose, t.limits);
  const body = await storage.getStream(t.key);
  for await (const chunk of body) validator.push(chunk as Uint8Array);
  return validator.end();
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
