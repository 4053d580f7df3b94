// The job repository on a real PostgreSQL: the state machine refuses illegal transitions in one
// place, worker writes are fenced by attempt and lease, and a resume forgets redone steps.
import { checkpointId } from '@crucible/domain';
import pg from 'pg';
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

const stepData = (step: number) =>
  ({ kind: 'step', step, total_steps: 40, train_loss: step, learning_rate: 1e-3, grad_norm: 1, tokens_per_second: 100 }) as const;
const evalData = (step: number) => ({ kind: 'evaluation', step, valid_loss: 2, valid_perplexity: 7.39, valid_mean_token_accuracy: 0.4, best: true }) as const;

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

  it("reads a metrics event written before its data had a kind as the step's or the evaluation's it is", async () => {
    const j = await newJob();
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      const legacy = [
        { step: 5, train_loss: 2.5, learning_rate: 0.001, grad_norm: 1.5, tokens_per_second: 900, total_steps: 30 },
        { step: 10, valid_loss: 2.25, valid_perplexity: 9.49, valid_mean_token_accuracy: 0.3, best: true },
      ];
      for (const [i, data] of legacy.entries()) {
        await c.query("INSERT INTO job_events (id, project_id, job_id, level, type, message, data) VALUES ($1, $2, $3, 'info', 'metrics', $4, $5)", [
          `ftevent-legacy${i}-${j.id}`,
          P,
          j.id,
          `legacy ${i}`,
          JSON.stringify(data),
        ]);
      }
    } finally {
      await c.end();
    }
    const events = (await store.jobs.eventsSince(P, j.id, 0n)).filter((e) => e.type === 'metrics');
    expect(events.map((e) => e.data)).toEqual([
      { kind: 'step', step: 5, train_loss: 2.5, learning_rate: 0.001, grad_norm: 1.5, tokens_per_second: 900, total_steps: 30 },
      { kind: 'evaluation', step: 10, valid_loss: 2.25, valid_perplexity: 9.49, valid_mean_token_accuracy: 0.3, best: true },
    ]);
  });

  it('forgets the metrics and metric events of steps a resumed run redoes', async () => {
    const j = await newJob();
    const run = store.jobs.attemptWriter(P, j.id, 0);
    for (const step of [10, 20, 30, 40]) expect(await run.recordStep(stepData(step), `Step ${step}`, step * 64)).toBe(true);
    expect(await run.saveCheckpoint(20, 'k20', { step: 20 })).toBe(true);
    expect(await run.saveCheckpoint(40, 'k40', { step: 40 })).toBe(true);
    expect(await run.discardAfterStep(20)).toEqual({ metrics: 2, events: 3, lastStep: 40 }); // steps 30, 40 and the checkpoint at 40
    expect((await store.jobs.metrics(P, j.id)).map((m) => m.step)).toEqual([10, 20]);
    const events = (await store.jobs.eventsSince(P, j.id, 0n)).map((e) => e.message);
    expect(events.filter((m) => /^(Step|Checkpoint)/.test(m))).toEqual(['Step 10', 'Step 20', 'Checkpoint saved at step 20']);
  });

  it('records a step once: its metrics, its event and the trained tokens in one write, replaced when a resumed run redoes it', async () => {
    const j = await newJob();
    const run = store.jobs.attemptWriter(P, j.id, 0);
    expect(await run.recordStep(stepData(5), 'Step 5/40', 320)).toBe(true);
    expect(await run.recordStep({ ...stepData(5), train_loss: 1.5 }, 'Step 5/40 again', 320)).toBe(true);
    expect(await store.jobs.metrics(P, j.id)).toEqual([expect.objectContaining({ step: 5, trainLoss: 1.5, lr: 1e-3, gradNorm: 1, tokensPerSec: 100 })]);
    expect((await store.jobs.get(P, j.id))?.trainedTokens).toBe(320);
    const [first] = (await store.jobs.eventsSince(P, j.id, 0n)).filter((e) => e.type === 'metrics');
    expect(first).toMatchObject({ type: 'metrics', message: 'Step 5/40', data: stepData(5) });
  });

  it('refuses every write of a superseded run (its job queued again as a newer attempt), writing nothing', async () => {
    const j = await newJob();
    await store.jobs.claim(P, j.id, 0, 'w1');
    await store.jobs.transition(P, j.id, 'running', { leaseId: 'w1' });
    const stale = store.jobs.attemptWriter(P, j.id, 0);
    expect(await stale.saveCheckpoint(10, 'k10', { step: 10 })).toBe(true); // still its attempt
    await store.jobs.requeue(P, j.id, 0, { message: 'Worker lost' }); // the reconciler presumed w1 dead
    const before = { metrics: await store.jobs.metrics(P, j.id), events: await store.jobs.eventsSince(P, j.id, 0n), job: await store.jobs.get(P, j.id) };
    const checkpoints = async () => [10, 20].map(async (step) => (await store.jobs.getCheckpoint(P, j.id, step))?.best ?? 'none');
    const kept = await Promise.all(await checkpoints());
    expect(kept).toEqual([false, 'none']);
    expect(await stale.recordStep(stepData(15), 'Step 15', 960)).toBe(false);
    expect(await stale.recordEvaluation(evalData(15), 'eval', { step: 15 })).toBeNull();
    expect(await stale.event('a stale message')).toBe(false);
    expect(await stale.saveCheckpoint(20, 'k20', { step: 20 })).toBe(false);
    expect(await stale.markBestCheckpoint(10)).toBe(false);
    expect(await stale.deleteCheckpoint(checkpointId(j.id, 10))).toBe(false);
    expect(await stale.discardAfterStep(0)).toBeNull();
    expect(await store.jobs.metrics(P, j.id)).toEqual(before.metrics);
    expect(await store.jobs.eventsSince(P, j.id, 0n)).toEqual(before.events);
    expect((await store.jobs.get(P, j.id))?.trainedTokens).toBe(before.job?.trainedTokens);
    expect(await Promise.all(await checkpoints())).toEqual(kept);
    // the new attempt writes
    expect(await store.jobs.attemptWriter(P, j.id, 1).markBestCheckpoint(10)).toBe(true);
    expect(await Promise.all(await checkpoints())).toEqual([true, 'none']);
  });

  it('lets a paused or cancelled run record how it stopped (the attempt is kept)', async () => {
    const j = await newJob();
    await store.jobs.claim(P, j.id, 0, 'w1');
    await store.jobs.transition(P, j.id, 'running', { leaseId: 'w1' });
    await store.jobs.transition(P, j.id, 'paused'); // the API: the lease is cleared, the attempt stays
    const run = store.jobs.attemptWriter(P, j.id, 0);
    expect(await run.saveCheckpoint(12, 'k12', { step: 12 })).toBe(true);
    expect(await run.event('Paused at step 12')).toBe(true);
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
