// Fault: the worker is killed with SIGKILL three times during one job. Each time a new worker
// notices the lost job (heartbeat silence), resumes it from the latest checkpoint, and the job
// ends succeeded with every step recorded once.
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

describe.skipIf(!PG_BIN)('worker killed with SIGKILL three times mid-job', () => {
  it('resumes from the latest checkpoint each time and succeeds', async () => {
    const maxSteps = 400;
    const job = await rig.createJob(await rig.upload(), maxSteps);
    const recoveries: number[] = [];
    let killedAt = 0;
    for (let k = 0; k < 3; k++) {
      const ckpt = await rig.waitForCheckpoint(job.id, killedAt + 40);
      while ((await rig.latestMetricStep(job.id)) < ckpt + 10) await sleep(20); // kill between checkpoints
      await rig.kill9(rig.workers.at(-1));
      killedAt = await rig.latestCheckpointStep(job.id);
      const t0 = Date.now();
      expect((await rig.job(job.id)).status).toBe('running'); // nobody told the database
      await rig.startWorker();
      // recovered when a new run has resumed from the checkpoint and gone past it
      for (;;) {
        const resumed = (await rig.events(job.id)).filter((e) => /^Resumed training at step/.test(e.message)).length;
        if (resumed > k && (await rig.latestMetricStep(job.id)) > killedAt) break;
        await sleep(100);
      }
      recoveries.push(Date.now() - t0);
    }
    const done = await rig.waitFor(job.id, ['succeeded']);
    expect(done.fine_tuned_model).toMatch(/^ft:gpt-nano:crucible:/);
    const messages = (await rig.events(job.id)).map((e) => e.message);
    expect(messages.filter((m) => /^Worker lost/.test(m)).length).toBe(3);
    const whole = await rig.assertWhole(job.id, maxSteps);
    expect(whole.resumes).toBe(3);
    rig.record('worker-kill', { faults_injected: 3, survived: true, steps_redone: whole.stepsRedone, recovery_ms: recoveries });
  });

  it('a worker stopped with SIGTERM saves its place: the next worker redoes no step', async () => {
    const maxSteps = 300;
    const job = await rig.createJob(await rig.upload(), maxSteps, { checkpoint_interval: 100 });
    while ((await rig.latestMetricStep(job.id)) < 30) await sleep(20);
    const w = rig.workers.at(-1);
    const exited = new Promise((r) => w?.once('exit', r));
    w?.kill('SIGTERM');
    await exited;
    const events = (await rig.events(job.id)).map((e) => e.message);
    const stoppedAt = Number(events.map((m) => /^Worker shutting down at step (\d+)/.exec(m)?.[1]).find(Boolean));
    expect(stoppedAt).toBeGreaterThanOrEqual(30);
    expect((await rig.job(job.id)).status).toBe('queued'); // handed back, not left running
    await rig.startWorker();
    await rig.waitFor(job.id, ['succeeded']);
    const resumed = (await rig.events(job.id)).find((e) => /^Resumed training at step/.test(e.message));
    expect(resumed?.data).toMatchObject({ resume_step: stoppedAt, steps_redone: 0 });
    await rig.assertWhole(job.id, maxSteps);
  });

  it('a worker killed before the first checkpoint: the job starts over and records each step once', async () => {
    const maxSteps = 120;
    const job = await rig.createJob(await rig.upload(), maxSteps, { checkpoint_interval: 1000 });
    while ((await rig.latestMetricStep(job.id)) < 30) await sleep(20);
    await rig.kill9(rig.workers.at(-1));
    await rig.startWorker();
    await rig.waitFor(job.id, ['succeeded']);
    const restart = (await rig.events(job.id)).find((e) => /no checkpoint yet: \d+ steps to redo/.test(e.message));
    expect(restart?.data).toMatchObject({ resume_step: 0 });
    await rig.assertWhole(job.id, maxSteps);
  });
});
