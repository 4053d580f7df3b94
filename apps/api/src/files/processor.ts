// Background processing of stored files: validation (every upload) and preparation (a file made
// from another by /v1/files/{id}/prepare). Both stream the object from storage, so memory stays
// flat in file size, and both end in one conditional update from `pending` (settle), so running
// the same file twice (after an API restart, or on two API instances) is harmless. Files left
// pending by a process that died are picked up again by `sweep`. A poison file cannot loop: each
// run is counted before it starts, and a file whose runs failed (or took the process down)
// MAX_PROCESSING_ATTEMPTS times is marked `error` instead of being tried again.

import { prepareFile, settleAsFailed, type ValidationLimits, validationOutcome } from '@crucible/datasets';
import type { Store } from '@crucible/db';
import { type FileRecord, isTransientError } from '@crucible/domain';
import type { Storage } from '@crucible/storage';
import type { FileWorkPool } from './file-work-pool';

/** Runs of one file that may fail (or end with the process) before it is marked `error`. */
export const MAX_PROCESSING_ATTEMPTS = 2;

export interface FileProcessorOptions {
  limits: ValidationLimits;
  /** Files processed at once. */
  concurrency: number;
  log?: (msg: string) => void;
}

export class FileProcessor {
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly waiting: Array<() => void> = [];
  private running = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly storage: Storage,
    /** Runs the work off the event loop (closed by its owner). */
    private readonly work: FileWorkPool,
    readonly options: FileProcessorOptions,
  ) {}

  /** Processes a pending file (once per process at a time); resolves when it is settled. */
  submit(file: FileRecord): Promise<void> {
    const existing = this.inFlight.get(file.id);
    if (existing) return existing;
    const p = this.withSlot(() => this.attempt(file))
      .catch((err: Error) => this.options.log?.(`file ${file.id}: processing failed, will retry: ${err.message}`))
      .finally(() => this.inFlight.delete(file.id));
    this.inFlight.set(file.id, p);
    return p;
  }

  /** Resubmits files pending for longer than `olderThanMs` (their processor may have died). */
  async sweep(olderThanMs: number): Promise<number> {
    const stale = (await this.store.files.pendingSince(new Date(Date.now() - olderThanMs))).filter((f) => !this.inFlight.has(f.id));
    for (const f of stale) void this.submit(f);
    return stale.length;
  }

  start(olderThanMs: number): void {
    const tick = () => void this.sweep(olderThanMs).catch((err: Error) => this.options.log?.(`file sweep: ${err.message}`));
    tick();
    this.timer = setInterval(tick, Math.max(1000, Math.min(olderThanMs, 60_000)));
    this.timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.allSettled([...this.inFlight.values()]);
  }

  private async withSlot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.options.concurrency) await new Promise<void>((r) => this.waiting.push(r));
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  /** One counted run: a file past its attempts is settled as `error`; a failure of the file itself too. */
  private async attempt(file: FileRecord): Promise<void> {
    const n = await this.store.files.beginProcessing(file.projectId, file.id);
    if (n === null) return; // settled (or deleted) meanwhile
    if (n > MAX_PROCESSING_ATTEMPTS) {
      this.options.log?.(`file ${file.id}: ${n - 1} processing runs failed or were cut short; marked error`);
      await this.fail(file, `processing this file failed ${n - 1} times (the server stopped or failed while handling it); it will not be tried again`);
      return;
    }
    try {
      await this.process(file);
    } catch (err) {
      // a dependency that was down is not the file's fault: its run does not count
      if (isTransientError(err)) await this.store.files.forgiveProcessing(file.projectId, file.id).catch(() => {});
      throw err;
    }
  }

  private async fail(file: FileRecord, message: string): Promise<void> {
    await settleAsFailed(this.store.files, file, message, this.options.limits);
  }

  private async process(file: FileRecord): Promise<void> {
    const limits = this.options.limits;
    if (file.preparation && file.sourceFileId) return this.prepare(file, file.sourceFileId);
    const report = await this.work.run({ kind: 'validate', key: file.storageKey, filename: file.filename, purpose: file.purpose, limits });
    await this.store.files.settle(file.projectId, file.id, validationOutcome(report));
  }

  /** Prepares the source into the new object (off the event loop) and settles the record. */
  private async prepare(file: FileRecord, sourceId: string): Promise<void> {
    const source = await this.store.files.get(file.projectId, sourceId);
    if (source?.state !== 'processed') return this.fail(file, `the source file ${sourceId} is gone or not processed`);
    await prepareFile({ files: this.store.files, storage: this.storage, run: (t) => this.work.run(t) }, file, source, this.options.limits);
  }
}
