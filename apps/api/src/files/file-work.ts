// The heavy part of file work, with no database: validating an object, preparing one object into
// another (prepareStored of @crucible/datasets), and reading a processed file back (reading-work.ts). Pure
// functions of storage and their arguments, so that they run off the API's event loop
// (file-work-pool.ts runs them in worker threads); streaming, one line in memory at a time.
import { DatasetValidator, type Prepared, type PrepareTask, prepareStored, type ValidationLimits } from '@crucible/datasets';
import type { ValidationReport } from '@crucible/domain';
import type { Storage } from '@crucible/storage';
import {
  type MissingItemField,
  type MissingItemFieldTask,
  missingItemFieldStored,
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

export interface ValidateTask {
  kind: 'validate';
  key: string;
  filename: string;
  purpose: string;
  limits: ValidationLimits;
}

export type FileTask = ValidateTask | PrepareTask | TallyTask | PreviewTask | UnknownCharactersTask | MissingItemFieldTask;

export type FileTaskResult<T extends FileTask> = T extends ValidateTask
  ? ValidationReport
  : T extends PrepareTask
    ? Prepared
    : T extends TallyTask
      ? TokenTally
      : T extends PreviewTask
        ? Preview
        : T extends MissingItemFieldTask
          ? MissingItemField | null
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
            : t.kind === 'missing-item-field'
              ? missingItemFieldStored(storage, t)
              : unknownCharactersStored(storage, t);
  return result as Promise<FileTaskResult<T>>;
}

export async function validateStored(storage: Storage, t: ValidateTask): Promise<ValidationReport> {
  const validator = new DatasetValidator(t.filename, t.purpose, t.limits);
  const body = await storage.getStream(t.key);
  for await (const chunk of body) validator.push(chunk as Uint8Array);
  return validator.end();
}
