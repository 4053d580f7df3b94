// A read-through cache of job records for the API's hottest read (GET a job, and the job checks
// of its sub-resources), kept correct by the database itself: a trigger NOTIFYs
// `crucible_job_changed` with the job's id on every insert, update or delete (sent at commit,
// whichever process wrote), and a LISTEN connection evicts that id here. While the LISTEN
// connection is down, nothing is cached (reads go to the database) and the cache starts empty
// when it is back, so a missed notification can never leave a stale record behind.
import type { JobRecord } from '@crucible/domain';
import pg from 'pg';

export const JOB_CHANGED_CHANNEL = 'crucible_job_changed';

export class JobCache {
  private readonly entries = new Map<string, { job: JobRecord; expires: number }>();
  private client: InstanceType<typeof pg.Client> | undefined;
  private listening = false;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly opts: { ttlMs: number; maxEntries?: number; retryMs?: number },
  ) {}

  async start(): Promise<void> {
    this.stopped = false;
    if (this.opts.ttlMs > 0) await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    this.reset();
    await this.client?.end().catch(() => {});
    this.client = undefined;
  }

  /** The job from the cache, or from `load` (cached when invalidation is working). */
  async get(id: string, load: () => Promise<JobRecord | null>): Promise<JobRecord | null> {
    const now = Date.now();
    const hit = this.entries.get(id);
    if (hit && hit.expires > now && this.listening) return hit.job;
    const listeningBefore = this.listening;
    const job = await load();
    // only cache what was read while notifications were flowing (else a change may have been missed)
    if (job && listeningBefore && this.listening) {
      if (this.entries.size >= (this.opts.maxEntries ?? 10_000)) this.entries.clear();
      this.entries.set(id, { job, expires: now + this.opts.ttlMs });
    }
    return job;
  }

  /** Forgets a job at once (after this process changed it; the notification follows anyway). */
  evict(id: string): void {
    this.entries.delete(id);
  }

  private reset(): void {
    this.listening = false;
    this.entries.clear();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5000 });
    const lost = () => {
      if (this.client !== client) return;
      this.client = undefined;
      this.reset();
      void client.end().catch(() => {});
      if (!this.stopped) this.retry = setTimeout(() => void this.connect(), this.opts.retryMs ?? 1000);
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (n) => {
      if (n.payload) this.entries.delete(n.payload);
    });
    this.client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${JOB_CHANGED_CHANNEL}`);
      this.entries.clear();
      this.listening = true;
    } catch {
      lost();
    }
  }
}
