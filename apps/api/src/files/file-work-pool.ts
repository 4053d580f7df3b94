// File tasks (validation, preparation) run in worker threads, so that a file whose lines are slow
// to process (a megabyte line of digits for the personal-data rules, say) never holds the API's
// event loop: requests, /health included, keep being answered. With `threads: 0` they run in
// this thread (tests of the tasks themselves). An error comes back with its name and code, so
// PreparationError and dependency outages are told apart as in-process.
import { Worker } from 'node:worker_threads';
import type { PlatformConfig } from '@crucible/domain';
import type { Storage } from '@crucible/storage';
import { type FileTask, type FileTaskResult, runFileTask } from './file-work';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: boolean;
}

export class FileWorkPool {
  private readonly slots: Slot[] = [];
  private readonly waiting: Array<{ task: FileTask; pending: Pending }> = [];
  private readonly inFlight = new Map<number, Pending & { slot: Slot }>();
  private nextId = 1;

  constructor(
    private readonly storage: Storage,
    private readonly s3: PlatformConfig['s3'],
    private readonly threads: number,
  ) {}

  run<T extends FileTask>(task: T): Promise<FileTaskResult<T>> {
    if (this.threads === 0) return runFileTask(this.storage, task);
    return new Promise((resolve, reject) => {
      this.waiting.push({ task, pending: { resolve: resolve as (v: unknown) => void, reject } });
      this.pump();
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }

  private pump(): void {
    while (this.waiting.length > 0) {
      const slot = this.slots.find((s) => !s.busy) ?? (this.slots.length < this.threads ? this.spawn() : undefined);
      if (!slot) return;
      const { task, pending } = this.waiting.shift() as { task: FileTask; pending: Pending };
      const id = this.nextId++;
      slot.busy = true;
      this.inFlight.set(id, { ...pending, slot });
      slot.worker.postMessage({ id, task });
    }
  }

  private spawn(): Slot {
    // the entry registers tsx in the thread (threads do not inherit the process's loader), then loads the TypeScript module
    const worker = new Worker(new URL('./file-work-thread.mjs', import.meta.url), { workerData: { s3: this.s3 } });
    const slot: Slot = { worker, busy: false };
    worker.unref();
    worker.on('message', (msg: { id: number; result?: unknown; error?: { name: string; message: string; code?: string } }) => {
      const p = this.inFlight.get(msg.id);
      if (!p) return;
      this.inFlight.delete(msg.id);
      p.slot.busy = false;
      if (msg.error) p.reject(Object.assign(new Error(msg.error.message), { name: msg.error.name, code: msg.error.code }));
      else p.resolve(msg.result);
      this.pump();
    });
    // a thread that dies fails its task (the file's run is counted; the processor tries again)
    worker.on('error', (err) => this.lose(slot, err));
    worker.on('exit', (code) => this.lose(slot, new Error(`file work thread exited with code ${code}`)));
    this.slots.push(slot);
    return slot;
  }

  private lose(slot: Slot, err: Error): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    for (const [id, p] of this.inFlight) {
      if (p.slot !== slot) continue;
      this.inFlight.delete(id);
      p.reject(err);
    }
    this.pump();
  }
}
