// Fault: the S3 server is stopped for 30 s while a job trains. The worker's checkpoint upload
// waits and retries (the job keeps its place), the API answers 503 for what needs S3 and leaves
// no record of an upload it could not store, and the job succeeds whole.
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

describe.skipIf(!PG_BIN)('S3 stopped for 30 s', () => {
  it('holds the job at its next checkpoint, answers 503 meanwhile, and the job succeeds', async () => {
    const maxSteps = 400;
    const fileId = await rig.upload();
    const job = await rig.createJob(fileId, maxSteps);
    await rig.waitForCheckpoint(job.id, 40);
    await rig.s3.stop();
    const down = Date.now();

    const content = await rig.call(`/files/${fileId}/content`);
    expect(content.status).toBe(503);
    expect(content.body).toMatchObject({ error: { code: 'service_unavailable', message: 'the storage is unavailable; retry later' } });
    const filesBefore = (await rig.sql('SELECT id FROM files')).length;
    const form = new FormData();
    form.append('purpose', 'fine-tune');
    form.append('file', new Blob(['some text to store\n'.repeat(100)]), 'during.txt');
    const upload = await rig.call('/files', { method: 'POST', body: form });
    expect(upload.status).toBe(503);
    expect(upload.headers.get('retry-after')).toBeTruthy();
    expect((await rig.sql('SELECT id FROM files')).length).toBe(filesBefore); // nothing half-written
    const ready = await rig.call('/ready');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ checks: { storage: 'unavailable', database: 'ok', queue: 'ok' } });
    // the job waits at its next checkpoint: at most one checkpoint interval of progress
    const ckptAtStop = await rig.latestCheckpointStep(job.id);
    await sleep(30_000 - (Date.now() - down));
    expect(await rig.latestMetricStep(job.id)).toBeLessThanOrEqual(ckptAtStop + 20);
    expect((await rig.job(job.id)).status).toBe('running');

    await rig.s3.start();
    const up = Date.now();
    await rig.waitForCheckpoint(job.id, ckptAtStop + 20);
    const recovery = Date.now() - up;
    const done = await rig.waitFor(job.id, ['succeeded']);
    expect(done.fine_tuned_model).toBeTruthy();
    const whole = await rig.assertWhole(job.id, maxSteps);
    expect((await rig.call(`/files/${fileId}/content`)).status).toBe(200);
    rig.record('s3-outage', { faults_injected: 1, outage_ms: up - down, survived: true, steps_redone: whole.stepsRedone, recovery_ms: recovery });
  });
});
