// Background processing of stored files: validation (every upload) and preparation (a file made
// from another by /v1/files/{id}/prepare). Both stream the object from storage, so memory stays
// flat in file size, and both end in one conditional update from `pending` (settle), so running
// the same file twice (after an API restart, or on two API instances) is harmless. Files left
// pending by a process that died are picked up again by `sweep`. A poison file cannot loop: each
// run is counted before it starts, and a file whose runs failed (or took the process down)
// MAX_PROCESSING_ATTEMPTS times is marked `error` instead of being tried again.

import type { PreparationReport, PreparationRules, ValidationLimits, ValidationReport } from '@crucible/datasets';
import type { Store } from '@crucible/db';
import { type FileFormat, type FileRecord, isTransientError } from '@crucible/domain';
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

/** What a prepared file's record holds in `preparation` before and after it is made. */
export interface StoredPreparation {
  rules: PreparationRules;
  report: PreparationReport | null;
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
      // (its class does not cross the thread boundary; its name does)
      if ((err as Error).name === 'PreparationError') {
        await this.storage.delete(file.storageKey).catch(() => {}); // what was written of the output
        return this.fail(file, (err as Error).message);
      }
      // a dependency that was down is not the file's fault: its run does not count
      if (isTransientError(err)) await this.store.files.forgiveProcessing(file.projectId, file.id).catch(() => {});
      throw err;
    }
  }

  private async fail(file: FileRecord, message: string): Promise<void> {
    await this.store.files.settle(file.projectId, file.id, {
      state: 'error',
      format: file.format,
      lines: 0,
      report: errorReport(message, this.options.limits, 'processing_failed'),
      // a prepared file holds its source's size until settled; it has no object now
      ...(file.sourceFileId ? { bytes: 0 } : {}),
    });
  }

  private async process(file: FileRecord): Promise<void> {
    const limits = this.options.limits;
    if (file.preparation && file.sourceFileId) return this.prepare(file, file.preparation as unknown as StoredPreparation);
    await this.settle(file, await this.work.run({ kind: 'validate', key: file.storageKey, filename: file.filename, purpose: file.purpose, limits }));
  }

  /** Prepares the source into the new object (off the event loop), then settles the record. */
  private async prepare(file: FileRecord, prep: StoredPreparation): Promise<void> {
    const source = await this.store.files.get(file.projectId, file.sourceFileId as string);
    if (source?.state !== 'processed') return this.fail(file, `the source file ${file.sourceFileId} is gone or not processed`);
    const r = await this.work.run({
      kind: 'prepare',
      sourceKey: source.storageKey,
      sourceFormat: source.format as FileFormat,
      rules: prep.rules,
      key: file.storageKey,
      filename: file.filename,
      purpose: file.purpose,
      limits: this.options.limits,
    });
    const done = await this.store.files.settle(file.projectId, file.id, {
      ...outcome(r.validation),
      preparation: { rules: prep.rules, report: r.report } as unknown as Record<string, unknown>,
      sha256: r.sha256,
      bytes: r.bytes,
    });
    if (!done) await this.storage.delete(file.storageKey).catch(() => {}); // deleted meanwhile
  }

  private async settle(file: FileRecord, report: ValidationReport): Promise<void> {
    await this.store.files.settle(file.projectId, file.id, outcome(report));
  }
}

function outcome(report: ValidationReport) {
  return {
    state: report.problem_count > 0 ? ('error' as const) : ('processed' as const),
    format: report.format ?? 'text',
    lines: report.records,
    report: report as unknown as Record<string, unknown>,
  };
}

function errorReport(message: string, limits: ValidationLimits, code: 'empty_file' | 'processing_failed' = 'empty_file'): Record<string, unknown> {
  const report: ValidationReport = {
    format: null,
    records: 0,
    lines: 0,
    bytes: 0,
    characters: 0,
    length_histogram: { unit: 'characters', buckets: [] },
    problems: [{ line: null, field: 'file', code, message }],
    problem_count: 1,
    limits: { max_line_bytes: limits.maxLineBytes, min_examples: limits.minExamples, max_bytes: limits.maxBytes },
  };
  return report as unknown as Record<string, unknown>;
}
