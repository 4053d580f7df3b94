// requeueAttempt, the one owner of a training job's retries, on a real PostgreSQL and Redis: of
// several callers that saw the same attempt exactly one starts the next, whose queue entry is the
// only new one and is never retried by BullMQ; a finished job is not requeued; an unreachable
// queue leaves the job queued for the reconciler to dispatch.
import type { Store } from '@crucible/db';
import { JOB_OPTIONS, trainingQueueEntryId } from '@crucible/domain';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestStore, testStore } from '../../../tests/support/store';
import { hasLiveEntry, requeueAttempt, type TrainingQueue, trainingQueue } from '../src/index';

const prefix = `crucible-test-requeue-${process.pid}`;
let db: TestStore;
let store: Store;
let P: string;
let redis: Redis;
let queue: TrainingQueue;

beforeAll(async () => {
  db = await testStore('requeue');
  store = db.store;
  P = db.projectId;
  redis = new Redis(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  queue = trainingQueue(redis, prefix);
});

afterAll(async () => {
  await queue?.obliterate({ force: true }).catch(() => {});
  await queue?.close();
  redis?.disconnect();
  await db?.drop();
});

let n = 0;
async function runningJob() {
  n++;
  const j = await db.createJob(`ftjob-rq${n}`);
  await store.jobs.claim(P, j.id, 0, 'w1');
  return (await store.jobs.transition(P, j.id, 'running', { leaseId: 'w1' })) ?? j;
}

describe('requeueAttempt', () => {
  it('of three callers that saw the same attempt, exactly one starts the next, with one queue entry that BullMQ never retries', async () => {
    const job = await runningJob();
    const results = await Promise.all(
      ['worker_shutdown', 'worker_lost', 'dependency_unavailable'].map((reason) =>
        requeueAttempt(store, queue, job, { message: `queued again (${reason})`, level: 'warn', data: { reason } }),
      ),
    );
    const winners = results.filter((r) => r !== null);
    expect(winners).toHaveLength(1);
    expect(winners[0]).toMatchObject({ dispatched: true, job: { status: 'queued', attempt: 1 } });
    const events = (await store.jobs.eventsSince(P, job.id, 0n)).filter((e) => /^queued again/.test(e.message));
    expect(events).toHaveLength(1);
    expect(events[0]?.data).toMatchObject({ new_attempt: 1 });
    expect(await hasLiveEntry(queue, { id: job.id, attempt: 1 })).toBe(true);
    expect(await queue.getJob(trainingQueueEntryId(job.id, 0))).toBeUndefined(); // the old attempt gets no entry
    const entry = await queue.getJob(trainingQueueEntryId(job.id, 1));
    expect(entry?.opts.attempts).toBe(1);
    expect(JOB_OPTIONS.training.attempts).toBe(1);
  });

  it('leaves a finished job alone, and a stale attempt cannot requeue a newer one', async () => {
    const job = await runningJob();
    const next = await requeueAttempt(store, queue, job, { message: 'first' });
    expect(next?.job.attempt).toBe(1);
    expect(await requeueAttempt(store, queue, job, { message: 'stale' })).toBeNull(); // still at attempt 0 in the caller's eyes
    await store.jobs.transition(P, job.id, 'cancelled');
    expect(await requeueAttempt(store, queue, { ...job, attempt: 1 }, { message: 'after cancel' })).toBeNull();
    expect((await store.jobs.get(P, job.id))?.status).toBe('cancelled');
  });

  it('with the queue unreachable, the job is queued again all the same and reported undispatched (the reconciler adds its entry)', async () => {
    const job = await runningJob();
    const dead = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    const unreachable = trainingQueue(dead, prefix);
    unreachable.on('error', () => {}); // the refused connection is the point
    try {
      const r = await requeueAttempt(store, unreachable, job, { message: 'queued again' });
      expect(r).toMatchObject({ dispatched: false, job: { status: 'queued', attempt: 1 } });
      expect(await hasLiveEntry(queue, { id: job.id, attempt: 1 })).toBe(false);
    } finally {
      await unreachable.close().catch(() => {});
      dead.disconnect();
    }
  });
});
