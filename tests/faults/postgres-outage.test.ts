// Fault: PostgreSQL is stopped for 30 s while a job trains. The worker keeps its place (its
// writes wait and retry), the reconciler does not mistake the silence for a dead worker, the API
// answers 503 with Retry-After (never 500, never a hang), and the job succeeds whole.
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

describe.skipIf(!PG_BIN)('PostgreSQL stopped for 30 s', () => {
  it('pauses the job in place, answers 503 meanwhile, and the job succeeds', async () => {
    const maxSteps = 400;
    const job = await rig.createJob(await rig.upload(), maxSteps);
    await rig.waitForCheckpoint(job.id, 40);
    await rig.pg.stop();
    const down = Date.now();
    const stepBefore = await rig.latestMetricStep(job.id).catch(() => -1); // the database is down: -1
    expect(stepBefore).toBe(-1);

    const answers: number[] = [];
    while (Date.now() - down < 30_000) {
      const t = Date.now();
      const r = await rig.call(`/fine_tuning/jobs/${job.id}`);
      expect(Date.now() - t).toBeLessThan(8000); // no hang
      answers.push(r.status);
      if (r.status === 503) {
        expect(r.body).toMatchObject({ error: { code: 'service_unavailable', message: 'the database is unavailable; retry later' } });
        expect(r.headers.get('retry-after')).toBeTruthy();
        expect(JSON.stringify(r.body)).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|5432|\d{4,5}/);
      }
      await sleep(2000);
    }
    expect(new Set(answers)).toEqual(new Set([503]));
    const ready = await rig.call('/ready');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ checks: { database: 'unavailable', queue: 'ok', storage: 'ok' } });
    expect((await rig.call('/health')).status).toBe(200);

    await rig.pg.start();
    const up = Date.now();
    const stepAtRestart = await rig.latestMetricStep(job.id);
    let resumedMs = 0;
    while (!resumedMs) {
      if ((await rig.latestMetricStep(job.id)) > stepAtRestart) resumedMs = Date.now() - up;
      else await sleep(100);
    }
    const done = await rig.waitFor(job.id, ['succeeded']);
    expect(done.fine_tuned_model).toBeTruthy();
    const messages = (await rig.events(job.id)).map((e) => e.message);
    expect(messages.some((m) => /^Worker lost/.test(m))).toBe(false); // the worker kept the job
    const whole = await rig.assertWhole(job.id, maxSteps);
    expect((await rig.call('/ready')).status).toBe(200);
    rig.record('postgres-outage', {
      faults_injected: 1,
      outage_ms: up - down,
      survived: true,
      steps_redone: whole.stepsRedone,
      recovery_ms: resumedMs,
      api_answers_during_outage: [...new Set(answers)],
    });
  });
});
