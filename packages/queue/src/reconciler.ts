// PostgreSQL is the source of truth for jobs; the queue can be rebuilt from it. The reconciler
// runs at worker and API start and then periodically, and puts back on the queue:
//   - a `queued` job with no live queue entry (Redis restarted empty, or the entry failed), and
//   - a `validating_files` or `running` job whose worker stopped heart-beating (it died, or lost
//     its connections), to resume from its latest checkpoint as a new attempt.
// Several reconcilers may run at once (each API and worker): every requeue goes through
// requeueAttempt, conditional on the attempt it saw, so exactly one of them wins.
import type { Store } from '@crucible/db';
import { type JobRecord, TransientError, trainingQueueEntryId } from '@crucible/domain';
import { hasLiveEntry, liveEntryIds, type TrainingQueue } from './queues';
import { requeueAttempt } from './requeue';

export interface ReconcilerOptions {
  store: Store;
  queue: TrainingQueue;
  /** A worker silent this long is presumed dead. */
  deadAfterMs: number;
  /** A queued job younger than this is left alone (its creator is still enqueueing it). */
  queuedGraceMs: number;
  /** Time between passes. */
  intervalMs: number;
  log?: (msg: string) => void;
}

export interface ReconcileReport {
  /** Queued jobs whose queue entry was missing, dispatched again. */
  redispatched: string[];
  /** Jobs whose worker was lost, queued again. */
  recovered: string[];
}

/** How long a job's worker has been silent (since its last heartbeat, or its last change). */
export function heartbeatSilence(job: JobRecord, now = Date.now()): number {
  return now - (job.heartbeatAt ?? job.updatedAt).getTime();
}

/**
 * A validating or running job whose worker was lost: queued again as a new attempt that resumes
 * from its latest checkpoint. False when someone else moved the job first.
 */
export async function recoverLostJob(store: Store, queue: TrainingQueue, job: JobRecord, silentMs: number): Promise<boolean> {
  const ckpt = await store.jobs.latestCheckpoint(job.projectId, job.id);
  const moved = await requeueAttempt(store, queue, job, {
    message: `Worker lost (no heartbeat for ${Math.round(silentMs / 1000)} s); queued again to resume from ${ckpt ? `step ${ckpt.step}` : 'the start'}`,
    level: 'warn',
    data: { reason: 'worker_lost', resume_step: ckpt?.step ?? 0, silent_ms: silentMs },
  });
  return moved !== null;
}

export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  /** When this process last failed to reach the database: heartbeats missed then prove nothing. */
  private lastDbFailure = 0;

  constructor(private readonly o: ReconcilerOptions) {}

  /** One pass. Errors reaching a dependency are reported in the log and the next pass retries. */
  async runOnce(now = Date.now()): Promise<ReconcileReport> {
    const report: ReconcileReport = { redispatched: [], recovered: [] };
    let jobs: JobRecord[];
    try {
      jobs = await this.o.store.jobs.dispatched();
    } catch (err) {
      if (err instanceof TransientError) this.lastDbFailure = Date.now();
      throw err;
    }
    // one read of the queue's live entries; a job missing from it is checked again on its own
    // (its entry may have been added since), so the pass costs O(1) round trips, not O(jobs)
    const settledQueued = jobs.filter((j) => j.status === 'queued' && now - j.updatedAt.getTime() >= this.o.queuedGraceMs);
    // (when the queue cannot be read, each job is checked on its own below, and fails there as before)
    const live = settledQueued.length ? await liveEntryIds(this.o.queue).catch(() => new Set<string>()) : new Set<string>();
    for (const job of jobs) {
      try {
        if (job.status === 'queued') {
          if (now - job.updatedAt.getTime() < this.o.queuedGraceMs) continue;
          if (live.has(trainingQueueEntryId(job.id, job.attempt))) continue;
          if (await hasLiveEntry(this.o.queue, job)) continue;
          const moved = await requeueAttempt(this.o.store, this.o.queue, job, {
            message: 'The job was not on the work queue (lost in a queue restart); queued again',
            level: 'warn',
          });
          if (moved?.dispatched) report.redispatched.push(job.id);
        } else {
          const silent = heartbeatSilence(job, now);
          // a database outage stops every heartbeat: judge only after seeing the database up for a full period
          if (silent < this.o.deadAfterMs || now - this.lastDbFailure < this.o.deadAfterMs) continue;
          if (await recoverLostJob(this.o.store, this.o.queue, job, silent)) report.recovered.push(job.id);
        }
      } catch (err) {
        if (err instanceof TransientError) this.lastDbFailure = Date.now();
        this.o.log?.(`reconciler: job ${job.id}: ${(err as Error).message}`);
      }
    }
    if (report.recovered.length || report.redispatched.length) {
      this.o.log?.(`reconciler: recovered ${report.recovered.join(', ') || 'none'}; redispatched ${report.redispatched.join(', ') || 'none'}`);
    }
    return report;
  }

  /** First pass now, then every intervalMs (never two passes at once). */
  start(): void {
    const tick = () => {
      if (this.running) return;
      this.running = this.runOnce()
        .catch((err: Error) => this.o.log?.(`reconciler: ${err.message}`))
        .finally(() => {
          this.running = undefined;
        });
    };
    tick();
    this.timer = setInterval(tick, this.o.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
