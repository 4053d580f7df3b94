// The job repository on a real PostgreSQL: the state machine refuses illegal transitions in one
// place, worker writes are fenced by attempt and lease, and a resume forgets redone steps.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestStore, testStore } from '../../../tests/support/store';
import type { Store } from '../src/index';

let db: TestStore;
let store: Store;
let P: string;

beforeAll(async () => {
  db = await testStore('jobrepo');
  store = db.store;
  P = db.projectId;
});

afterAll(async () => {
  await db?.drop();
});

let n = 0;
async function newJob() {
  n++;
  return db.createJob(`ftjob-repo${n}`);
}

describe('job repository', () => {
  it('refuses a transition the state machine forbids, and leaves the job as it was', async () => {
    const j = await newJob();
    expect(await store.jobs.transition(P, j.id, 'succeeded')).toBeNull(); // queued -> succeeded
    expect(await store.jobs.transition(P, j.id, 'running')).toBeNull(); // queued -> running skips validation
    expect((await store.jobs.get(P, j.id))?.status).toBe('queued');
    expect((await store.jobs.transition(P, j.id, 'cancelled'))?.status).toBe('cancelled');
    expect(await store.jobs.transition(P, j.id, 'queued')).toBeNull(); // terminal
    expect(await store.jobs.resume(P, j.id)).toBeNull(); // only paused jobs resume
    expect(await store.jobs.transition('proj-other', j.id, 'failed')).toBeNull(); // another project's id
  });

  it('fences worker writes by attempt and lease', async () => {
    const j = await newJob();
    expect(await store.jobs.claim(P, j.id, 1, 'w1')).toBeNull(); // wrong attempt
    const claimed = await store.jobs.claim(P, j.id, 0, 'w1');
    expect(claimed).toMatchObject({ status: 'validating_files', leaseId: 'w1', attempt: 0 });
    expect(await store.jobs.claim(P, j.id, 0, 'w2')).toBeNull(); // already taken
    expect(await store.jobs.heartbeat(P, j.id, 'w1')).toEqual({ held: true, status: null });
    // the reconciler declares w1 lost: the job is queued again at attempt 1
    const requeued = await store.jobs.requeue(P, j.id, 0, { message: 'Worker lost' });
    expect(requeued).toMatchObject({ status: 'queued', attempt: 1, leaseId: null });
    expect(await store.jobs.requeue(P, j.id, 0, { message: 'again' })).toBeNull(); // a second reconciler loses the race
    expect(await store.jobs.heartbeat(P, j.id, 'w1')).toEqual({ held: false, status: 'queued' });
    expect(await store.jobs.transition(P, j.id, 'running', { leaseId: 'w1' })).toBeNull();
    await store.jobs.claim(P, j.id, 1, 'w2');
    expect(await store.jobs.transition(P, j.id, 'running', { leaseId: 'w2' })).toMatchObject({ status: 'running' });
    const model = { id: `ft:gpt-nano:x:${j.id}`, baseModel: 'gpt-nano', arch: 'gpt' as const, config: { blockSize: 8 }, storageKey: 'm' };
    expect(await store.jobs.succeed(P, j.id, 'w1', model, {})).toBe(false); // the stale worker cannot publish
    expect(await store.models.get(P, model.id)).toBeNull();
    expect(await store.jobs.succeed(P, j.id, 'w2', model, {})).toBe(true);
    expect(await store.jobs.get(P, j.id)).toMatchObject({ status: 'succeeded', fineTunedModel: model.id, leaseId: null });
  });

  it('forgets the metrics and metric events of steps a resumed run redoes', async () => {
    const j = await newJob();
    for (const step of [10, 20, 30, 40]) {
      await store.jobs.recordMetric(P, j.id, step, { trainLoss: step });
      await store.jobs.addEvent(P, j.id, `Step ${step}`, { type: 'metrics', data: { step } });
    }
    await store.jobs.addEvent(P, j.id, 'Checkpoint saved at step 20', { data: { step: 20 } });
    expect(await store.jobs.discardAfterStep(P, j.id, 20)).toEqual({ metrics: 2, events: 2, lastStep: 40 });
    expect((await store.jobs.metrics(P, j.id)).map((m) => m.step)).toEqual([10, 20]);
    const events = (await store.jobs.eventsSince(P, j.id, 0n)).map((e) => e.message);
    expect(events).toContain('Checkpoint saved at step 20'); // not a metrics event: kept
    expect(events.filter((m) => m.startsWith('Step'))).toEqual(['Step 10', 'Step 20']);
  });

  it('never lists a file whose upload has not been committed', async () => {
    await store.files.reserve(
      {
        id: 'file-half',
        projectId: P,
        filename: 'h.txt',
        purpose: 'fine-tune',
        bytes: 1,
        sha256: '',
        format: 'text',
        lines: 1,
        storageKey: 'h',
      },
      Number.POSITIVE_INFINITY,
    );
    expect(await store.files.get(P, 'file-half')).toBeNull();
    expect((await store.files.list(P, { limit: 100 })).items.map((f) => f.id)).toEqual([db.fileId]);
    expect((await store.files.staleUploads(new Date(Date.now() + 1000))).map((f) => f.id)).toEqual(['file-half']);
  });
});
