// The queues by name, and dispatch of a training job's attempt as its own queue entry.
import {
  type EvaluationPayload,
  guard,
  type InferencePayload,
  type InferenceResult,
  JOB_OPTIONS,
  QUEUES,
  type TrainingPayload,
  trainingQueueEntryId,
} from '@crucible/domain';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

export type TrainingQueue = Queue<TrainingPayload>;
export type InferenceQueue = Queue<InferencePayload, InferenceResult>;
export type EvaluationQueue = Queue<EvaluationPayload>;

export function evaluationQueue(connection: Redis, prefix: string): EvaluationQueue {
  return new Queue<EvaluationPayload>(QUEUES.evaluation, { connection, prefix });
}

/** Puts an evaluation on its queue (idempotent: one entry per evaluation). */
export async function dispatchEvaluation(queue: EvaluationQueue, e: { id: string; projectId: string }): Promise<void> {
  await guard('queue', () => queue.add('evaluate', { evaluationId: e.id, projectId: e.projectId }, { ...JOB_OPTIONS.evaluation, jobId: e.id }));
}

export function trainingQueue(connection: Redis, prefix: string): TrainingQueue {
  return new Queue<TrainingPayload>(QUEUES.training, { connection, prefix });
}

export function inferenceQueue(connection: Redis, prefix: string): InferenceQueue {
  return new Queue<InferencePayload, InferenceResult>(QUEUES.inference, { connection, prefix });
}

/**
 * Puts one attempt of a job on the training queue (idempotent: one entry per attempt and rank):
 * a multi-worker job's attempt is a gang of `workers` entries, one per rank, that wait for each
 * other on the workers that take them.
 */
export async function dispatchTraining(queue: TrainingQueue, job: { id: string; projectId: string; attempt: number; workers?: number }): Promise<void> {
  const ranks = Array.from({ length: job.workers ?? 1 }, (_, rank) => rank);
  await guard('queue', () =>
    queue.addBulk(
      ranks.map((rank) => ({
        name: 'train',
        data: { jobId: job.id, projectId: job.projectId, attempt: job.attempt, ...(rank > 0 ? { rank } : {}) },
        opts: { ...JOB_OPTIONS.training, jobId: trainingQueueEntryId(job.id, job.attempt, rank) },
      })),
    ),
  );
}

const LIVE_STATES = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);

/** Whether a queue entry exists that a worker will (or does) run. */
async function isLiveEntry(queue: Queue, entryId: string): Promise<boolean> {
  return guard('queue', async () => {
    const entry = await queue.getJob(entryId);
    if (!entry) return false;
    return LIVE_STATES.has(await entry.getState());
  });
}

/** The ids of every entry a worker will (or does) run, in one read (the reconciler checks thousands of queued jobs against it). */
export async function liveEntryIds(queue: TrainingQueue): Promise<Set<string>> {
  return guard('queue', async () => new Set(await queue.getRanges(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'], 0, -1)));
}

/** Whether an attempt has a queue entry that a worker will (or does) run. */
export async function hasLiveEntry(queue: TrainingQueue, job: { id: string; attempt: number }): Promise<boolean> {
  return isLiveEntry(queue, trainingQueueEntryId(job.id, job.attempt));
}

/**
 * Puts an evaluation on its queue again when its entry is gone or finished (Redis restarted
 * empty, or an entry that ended without settling the record); false when a live entry exists.
 */
export async function redispatchEvaluation(queue: EvaluationQueue, e: { id: string; projectId: string }): Promise<boolean> {
  if (await isLiveEntry(queue, e.id)) return false;
  await guard('queue', async () => (await queue.getJob(e.id))?.remove());
  await dispatchEvaluation(queue, e);
  return true;
}
