// The generated SDK against a running API: typed calls, uploads, errors, waiting for a job.
import { CrucibleApiError, createCrucibleClient, uploadFile, waitForFile, waitForJob } from '@crucible/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shakespeare } from '../support/data';
import { startPlatform, type TestPlatform } from '../support/platform';

let p: TestPlatform;

beforeAll(async () => {
  p = await startPlatform();
});
afterAll(async () => {
  await p?.close();
});

describe('@crucible/sdk', () => {
  it('uploads, creates a job, waits for it and reads its metrics with typed calls', async () => {
    const opts = { baseUrl: `${p.url}/v1`, apiKey: p.apiKey };
    const client = createCrucibleClient(opts);
    const { data: models } = await client.GET('/models');
    expect(models?.data.map((m) => m.id)).toContain('gpt-nano');
    const file = await uploadFile(opts, 'slice.txt', shakespeare(8000));
    expect(file.format).toBe('text');
    const { data: job, error } = await client.POST('/fine_tuning/jobs', {
      body: {
        model: 'gpt-nano',
        training_file: file.id,
        method: { type: 'pretrain', pretrain: { hyperparameters: { max_steps: 3, block_size: 16, batch_size: 2, eval_batches: 1, log_interval: 1 } } },
      },
    });
    expect(error).toBeUndefined();
    const done = await waitForJob(client, job?.id as string, { intervalMs: 200 });
    expect(done.status).toBe('succeeded');
    const { data: metrics } = await client.GET('/fine_tuning/jobs/{id}/metrics', { params: { path: { id: done.id } } });
    expect(metrics?.data.filter((d) => d.train_loss !== null).map((d) => d.step)).toEqual([1, 2, 3]);
  });

  it('returns API errors typed, and uploadFile throws them', async () => {
    const opts = { baseUrl: `${p.url}/v1`, apiKey: p.apiKey };
    const client = createCrucibleClient(opts);
    const { error, response } = await client.GET('/fine_tuning/jobs/{id}', { params: { path: { id: 'ftjob-missing' } } });
    expect(response.status).toBe(404);
    expect(error?.error.code).toBe('job_not_found');
    const err = await uploadFile(opts, 'bad.bin', new Uint8Array([0x41, 0, 0x42])).catch((e) => e);
    expect(err).toBeInstanceOf(CrucibleApiError);
    expect(err.error).toMatchObject({ code: 'invalid_file', param: 'file' });
    // a file whose lines are wrong is stored with status error and its report
    const bad = await uploadFile(opts, 'bad.jsonl', '{"text": 1}\n');
    const settled = await waitForFile(client, bad.id);
    expect(settled).toMatchObject({ status: 'error', problem_count: 1 });
    expect(settled.problems[0]).toMatchObject({ line: 1, field: 'text', code: 'invalid_field' });
  });
});
