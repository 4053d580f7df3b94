// Crash safety: a worker killed with SIGKILL mid-job loses its lock; another worker picks the job
// up and resumes it from the latest checkpoint, and the job still succeeds.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseWorkerConfig, startWorker } from '@crucible/worker';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shakespeare } from '../support/data';
import { eventually, startPlatform, type TestPlatform, waitForJobStatus } from '../support/platform';

let p: TestPlatform;
let client: OpenAI;
let child: ChildProcess | undefined;
let second: Awaited<ReturnType<typeof startWorker>> | undefined;

beforeAll(async () => {
  p = await startPlatform({ worker: false });
  client = p.openai();
});
afterAll(async () => {
  child?.kill('SIGKILL');
  await second?.close();
  await p?.close();
});

describe('a worker that dies mid-job', () => {
  it('is replaced: the job resumes from its latest checkpoint and succeeds', async () => {
    const env = { ...process.env, ...p.env, WORKER_LOCK_MS: '5000' };
    child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../../apps/worker/src/main.ts')], { env, stdio: 'ignore' });
    const f = await client.files.create({ file: await toFile(Buffer.from(shakespeare(30_000)), 'c.txt'), purpose: 'fine-tune' });
    const job = await client.fineTuning.jobs.create({
      model: 'gpt-nano',
      training_file: f.id,
      method: {
        type: 'pretrain',
        pretrain: {
          hyperparameters: { max_steps: 300, block_size: 16, batch_size: 2, eval_interval: 0, eval_batches: 1, checkpoint_interval: 20, log_interval: 5 },
        },
      } as never,
    });
    const ckptStep = await eventually(
      async () => {
        const c = await p.deps.store.jobs.latestCheckpoint(p.projectId, job.id);
        return c && c.step >= 20 ? c.step : undefined;
      },
      120_000,
      50,
    );
    child.kill('SIGKILL');
    await new Promise((r) => child?.once('exit', r));
    const killedAt = await p.deps.store.jobs.latestCheckpoint(p.projectId, job.id);
    expect((await client.fineTuning.jobs.retrieve(job.id)).status).toBe('running'); // nobody told the database

    second = await startWorker(parseWorkerConfig({ ...p.env, WORKER_LOCK_MS: '5000' }), () => {});
    const done = await waitForJobStatus(client, job.id, ['succeeded'], 180_000);
    expect(done.fine_tuned_model).toBeTruthy();
    const messages: string[] = [];
    for await (const e of client.fineTuning.jobs.listEvents(job.id, { limit: 100 })) messages.push(e.message);
    expect(messages.some((m) => /^Worker lost/.test(m))).toBe(true);
    const resumed = messages.map((m) => /^Resumed training at step (\d+)/.exec(m)).find(Boolean);
    expect(Number(resumed?.[1])).toBe(killedAt?.step);
    expect(Number(resumed?.[1])).toBeGreaterThanOrEqual(ckptStep);
  });
});
