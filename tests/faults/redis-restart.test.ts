// Fault: Redis is stopped and started empty (it keeps nothing on disk) while a job trains and
// another waits in the queue. The running job keeps training (its state is in PostgreSQL); the
// queued one, whose queue entry vanished, is put back on the queue by the reconciler; a job
// created during the outage is accepted and dispatched once Redis is back. All three succeed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rig } from './support/rig';
import { PG_BIN, sleep } from './support/services';

let rig: Rig;
beforeAll(async () => {
  if (PG_BIN) rig = await Rig.start();
});
afterAll(async () => {
  await rig?.close();
});

describe.skipIf(!PG_BIN)('Redis stopped and started empty', () => {
  it('loses no job: running, queued and created during the outage all succeed', async () => {
    const file = await rig.upload();
    const tiny = await rig.waitFor((await rig.createJob(file, 10)).id, ['succeeded']); // a model to ask for completions
    const running = await rig.createJob(file, 1000);
    const queued = await rig.createJob(file, 60);
    await rig.waitForCheckpoint(running.id, 20);
    expect((await rig.job(queued.id)).status).toBe('queued');

    await rig.redis.stop();
    const down = Date.now();
    // the API during the outage: 503 where Redis is needed, never 500, never a hang
    const ready = await rig.call('/ready');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ error: { code: 'service_unavailable' }, checks: { queue: 'unavailable', database: 'ok', storage: 'ok' } });
    expect(ready.headers.get('retry-after')).toBeTruthy();
    const completion = await rig.call('/completions', { method: 'POST', body: JSON.stringify({ model: tiny.fine_tuned_model, prompt: 'a', max_tokens: 2 }) });
    expect(completion.status).toBe(503);
    expect(completion.body).toMatchObject({ error: { code: 'service_unavailable', message: 'the queue is unavailable; retry later' } });
    expect((await rig.call(`/fine_tuning/jobs/${running.id}`)).status).toBe(200);
    const during = await rig.createJob(file, 40); // accepted: PostgreSQL is the source of truth
    expect(during.status).toBe('queued');
    expect((await rig.call('/health')).status).toBe(200);
    await sleep(5000);

    await rig.redis.start(); // empty
    const up = Date.now();
    const lost = 'The job was not on the work queue (lost in a queue restart); queued again';
    while (!(await rig.events(queued.id)).some((e) => e.message === lost)) await sleep(100);
    const redispatchMs = Date.now() - up; // back on the queue (it still waits for the running job)
    const a = await rig.waitFor(running.id, ['succeeded']);
    const b = await rig.waitFor(queued.id, ['succeeded']);
    const c = await rig.waitFor(during.id, ['succeeded']);
    for (const j of [a, b, c]) expect(j.fine_tuned_model).toBeTruthy();
    expect((await rig.events(queued.id)).filter((e) => e.message === lost)).toHaveLength(1);
    expect((await rig.call('/ready')).status).toBe(200);
    const whole = await rig.assertWhole(running.id, 1000);
    await rig.assertWhole(queued.id, 60);
    await rig.assertWhole(during.id, 40);
    rig.record('redis-restart', {
      faults_injected: 1,
      outage_ms: up - down,
      survived: true,
      steps_redone: whole.stepsRedone,
      recovery_ms: redispatchMs,
      jobs: { running: 'kept training', queued: 'redispatched', created_during_outage: 'dispatched after the outage' },
    });
  });
});
