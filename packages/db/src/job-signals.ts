// Wakes whoever follows a job when it changes: a trigger NOTIFYs `crucible_job_event` with the
// job's id for every event written and `crucible_job_changed` for every change of its record (both
// sent at commit, whichever process wrote). An event stream waits on `next(jobId)` instead of
// polling. While the LISTEN connection is down every wait ends after `pollMs` (the stream reads
// again, as a poll would), and every waiter is woken when it drops or comes back.
import { JOB_CHANGED_CHANNEL } from './job-cache';
import { Listener } from './listener';

export const JOB_EVENT_CHANNEL = 'crucible_job_event';

export class JobSignals {
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly listener: Listener;

  constructor(
    url: string,
    private readonly opts: { pollMs: number; retryMs?: number } = { pollMs: 1000 },
  ) {
    this.listener = new Listener(
      url,
      [JOB_EVENT_CHANNEL, JOB_CHANGED_CHANNEL],
      { onNotify: (_channel, id) => this.wake(id), onUp: () => this.wakeAll(), onDown: () => this.wakeAll() },
      opts.retryMs,
    );
  }

  start(): Promise<void> {
    return this.listener.start();
  }

  async stop(): Promise<void> {
    await this.listener.stop();
    this.wakeAll();
  }

  /** Whether notifications are flowing (else waits are polls of `pollMs`). */
  get listening(): boolean {
    return this.listener.up;
  }

  /**
   * A wait for the job's next event or change, registered now: take it before reading, await it
   * after, and nothing written in between is missed. True when a notification (or the listener
   * going up or down) ended it; false after `ms` without one (after `pollMs` while not listening),
   * or when `signal` aborts.
   */
  next(jobId: string, ms: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const set = this.waiters.get(jobId) ?? new Set();
      this.waiters.set(jobId, set);
      const end = (woken: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        set.delete(woke);
        if (set.size === 0 && this.waiters.get(jobId) === set) this.waiters.delete(jobId);
        resolve(woken);
      };
      const woke = () => end(true);
      const aborted = () => end(false);
      const timer = setTimeout(aborted, this.listener.up ? ms : Math.min(ms, this.opts.pollMs));
      signal?.addEventListener('abort', aborted);
      set.add(woke);
    });
  }

  private wake(jobId: string): void {
    for (const woke of [...(this.waiters.get(jobId) ?? [])]) woke();
  }

  private wakeAll(): void {
    for (const id of [...this.waiters.keys()]) this.wake(id);
  }
}
