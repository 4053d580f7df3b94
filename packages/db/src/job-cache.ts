// A read-through cache of job records for the API's hottest read (GET a job, and the job checks
// of its sub-resources), kept correct by the database itself: a trigger NOTIFYs
// `crucible_job_changed` with the job's id on every insert, update or delete (sent at commit,
// whichever process wrote), and a LISTEN connection evicts that id here. While the LISTEN
// connection is down, nothing is cached (reads go to the database) and the cache starts empty
// when it is back, so a missed notification can never leave a stale record behind.
import type { JobRecord } from '@crucible/domain';
import { Listener } from './listener';

export const JOB_CHANGED_CHANNEL = 'crucible_job_changed';

export class JobCache {
  private readonly entries = new Map<string, { job: JobRecord; expires: number }>();
  private readonly listener: Listener;

  constructor(
    url: string,
    private readonly opts: { ttlMs: number; maxEntries?: number; retryMs?: number },
  ) {
    this.listener = new Listener(
      url,
      [JOB_CHANGED_CHANNEL],
      {
        onNotify: (_channel, id) => this.entries.delete(id),
        onUp: () => this.entries.clear(),
        onDown: () => this.entries.clear(),
      },
      opts.retryMs,
    );
  }

  async start(): Promise<void> {
    if (this.opts.ttlMs > 0) await this.listener.start();
  }

  async stop(): Promise<void> {
    this.entries.clear();
    await this.listener.stop();
  }

  /** The job from the cache, or from `load` (cached when invalidation is working). */
  async get(id: string, load: () => Promise<JobRecord | null>): Promise<JobRecord | null> {
    const now = Date.now();
    const hit = this.entries.get(id);
    if (hit && hit.expires > now && this.listener.up) return hit.job;
    const listeningBefore = this.listener.up;
    const job = await load();
    // only cache what was read while notifications were flowing (else a change may have been missed)
    if (job && listeningBefore && this.listener.up) {
      if (this.entries.size >= (this.opts.maxEntries ?? 10_000)) this.entries.clear();
      this.entries.set(id, { job, expires: now + this.opts.ttlMs });
    }
    return job;
  }

  /** Forgets a job at once (after this process changed it; the notification follows anyway). */
  evict(id: string): void {
    this.entries.delete(id);
  }
}
