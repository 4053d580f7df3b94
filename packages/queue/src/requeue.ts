// The one owner of a training job's retries. A run that cannot go on (its worker shut down, a
// dependency stayed unreachable past the in-place retries, its worker was lost, or its queue entry
// vanished) is put back as a new attempt here, and only here: the database moves the job to
// `queued` with attempt + 1 (conditional on the attempt the caller saw, so of several callers
// exactly one wins), then the attempt gets its own queue entry. BullMQ never retries a training
// entry (attempts: 1 in JOB_OPTIONS): a retry is always a new attempt, resumed from the latest
// checkpoint.
import type { Store } from '@crucible/db';
import type { EventLevel, JobRecord } from '@crucible/domain';
import { dispatchTraining, type TrainingQueue } from './queues';

export interface Requeued {
  /** The job as queued again (its new attempt). */
  job: JobRecord;
  /** Whether its queue entry was added; when not (Redis unreachable), the reconciler adds it. */
  dispatched: boolean;
}

/**
 * Queues the job again as its next attempt, with `event` as the reason (its data gains
 * `new_attempt`), and dispatches that attempt. Null when the job was no longer at `job.attempt` in a running or queued state (another
 * caller requeued it first, or it was cancelled, paused or finished meanwhile).
 */
export async function requeueAttempt(
  store: Store,
  queue: TrainingQueue,
  job: Pick<JobRecord, 'projectId' | 'id' | 'attempt'>,
  event: { message: string; level?: EventLevel; data?: Record<string, unknown> },
): Promise<Requeued | null> {
  // the event names the attempt it starts (the update below is conditional on job.attempt)
  const moved = await store.jobs.requeue(job.projectId, job.id, job.attempt, {
    ...event,
    type: 'message',
    data: { ...event.data, new_attempt: job.attempt + 1 },
  });
  if (!moved) return null;
  const dispatched = await dispatchTraining(queue, moved).then(
    () => true,
    () => false, // a queued job without its entry is dispatched by the reconciler's next pass
  );
  return { job: moved, dispatched };
}
