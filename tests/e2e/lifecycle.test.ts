// Lifecycle details: listing jobs page by page, deleting files (and refusing while a job needs
// them), and a job that fails on its data with a coded error.
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shakespeare } from '../support/data';
import { startPlatform, type TestPlatform, waitForJobStatus } from '../support/platform';

let p: TestPlatform;
let client: OpenAI;

beforeAll(async () => {
  p = await startPlatform();
  client = p.openai();
});
afterAll(async () => {
  await p?.close();
});

const upload = async (text: string, name = 'data.txt') => client.files.create({ file: await toFile(Buffer.from(text), name), purpose: 'fine-tune' });

describe('job and file lifecycle', () => {
  it('fails a job whose data is shorter than one block, with invalid_training_file', async () => {
    const f = await upload('To be, or not to be.');
    const job = await client.fineTuning.jobs.create({ model: 'gpt-nano', training_file: f.id, method: { type: 'pretrain' } as never });
    const failed = await waitForJobStatus(client, job.id, ['failed'], 60_000);
    expect(failed.error).toMatchObject({ code: 'invalid_training_file', param: 'training_file' });
    expect(failed.error?.message).toMatch(/has \d+ tokens; block_size 64 needs at least 65/);
    expect(failed.finished_at).not.toBeNull();
    const events = await client.fineTuning.jobs.listEvents(job.id);
    expect(events.data[0]).toMatchObject({ level: 'error' });
  });

  it('lists jobs newest first, page by page with after/limit', async () => {
    const f = await upload(shakespeare(3000));
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const j = await client.fineTuning.jobs.create({
        model: 'gpt-nano',
        training_file: f.id,
        method: { type: 'pretrain', pretrain: { hyperparameters: { max_steps: 1, block_size: 16, batch_size: 2, eval_batches: 1 } } } as never,
      });
      ids.unshift(j.id);
    }
    const page1 = await client.fineTuning.jobs.list({ limit: 2 });
    expect(page1.data.map((j) => j.id)).toEqual(ids.slice(0, 2));
    expect(page1.has_more).toBe(true);
    const page2 = await client.fineTuning.jobs.list({ limit: 2, after: ids[1] });
    expect(page2.data[0]?.id).toBe(ids[2]);
    const seen: string[] = [];
    for await (const j of client.fineTuning.jobs.list({ limit: 1 })) seen.push(j.id);
    expect(seen.slice(0, 3)).toEqual(ids);
    expect(seen).toHaveLength(4); // and the failed job of the previous test
    for (const id of ids) {
      await waitForJobStatus(client, id, ['succeeded', 'failed']);
    }
  });

  it('refuses to delete a file an unfinished job uses, then deletes record and object', async () => {
    const f = await upload(shakespeare(20_000));
    const job = await client.fineTuning.jobs.create({
      model: 'gpt-nano',
      training_file: f.id,
      method: { type: 'pretrain', pretrain: { hyperparameters: { max_steps: 100_000, block_size: 16, batch_size: 2, eval_interval: 0 } } } as never,
    });
    const err = await client.files.delete(f.id).catch((e) => e);
    expect(err.status).toBe(409);
    expect(err.error).toMatchObject({ code: 'file_in_use', param: 'file_id' });
    await client.fineTuning.jobs.cancel(job.id);
    const key = (await p.deps.store.files.get(p.projectId, f.id))?.storageKey as string;
    expect(await p.deps.storage.exists(key)).toBe(true);
    expect(await client.files.delete(f.id)).toMatchObject({ id: f.id, object: 'file', deleted: true });
    expect(await p.deps.storage.exists(key)).toBe(false);
    await expect(client.files.retrieve(f.id)).rejects.toMatchObject({ status: 404 });
  });
});
