// A queued evaluation whose queue entry was lost (Redis restarted empty) is queued again by the
// API's sweep, once; a live entry is left alone. No worker runs here, so entries stay waiting.
import { redispatchEvaluations } from '@crucible/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPlatform, type TestPlatform } from '../support/platform';

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({ worker: false });
});
afterAll(async () => {
  await p?.close();
});

describe('evaluation dispatch', () => {
  it('queues a lost evaluation again, and only once', async () => {
    const e = await p.deps.store.evaluations.create({
      id: 'eval-lost',
      projectId: p.projectId,
      model: 'ft:gpt-nano:x:ftjob-x',
      fileId: 'file-x',
      options: { max_examples: 1, samples: 0, max_tokens: 1, batch_size: 1, seed: 0 },
      metadata: null,
    });
    const later = new Date(Date.now() + 60_000);
    expect(await redispatchEvaluations(p.deps, later)).toBe(1); // never dispatched: no entry
    expect(await p.deps.evaluationQueue.getJobState(e.id)).toBe('waiting');
    expect(await redispatchEvaluations(p.deps, later)).toBe(0); // its entry is live
    await p.deps.evaluationQueue.obliterate({ force: true }); // Redis lost it
    expect(await redispatchEvaluations(p.deps, later)).toBe(1);
    expect(await p.deps.evaluationQueue.count()).toBe(1);
    await p.deps.store.evaluations.finish(p.projectId, e.id, 'cancelled', {}, { message: 'cancelled' });
    await p.deps.evaluationQueue.obliterate({ force: true });
    expect(await redispatchEvaluations(p.deps, later)).toBe(0); // settled evaluations are not queued
  });
});
