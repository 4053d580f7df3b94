// Cancel and pause messages travel on a channel scoped by the queue prefix, so two deployments
// can share one Redis without hearing each other.
import { Redis } from 'ioredis';
import { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shakespeare } from '../support/data';
import { eventually, startPlatform, type TestPlatform } from '../support/platform';

let p: TestPlatform;
let sub: Redis;
const heard: Array<{ channel: string; message: string }> = [];

beforeAll(async () => {
  p = await startPlatform({ worker: false });
  sub = new Redis(p.env.REDIS_URL as string);
  await sub.psubscribe('*control*');
  sub.on('pmessage', (_pattern: string, channel: string, message: string) => heard.push({ channel, message }));
});
afterAll(async () => {
  sub?.disconnect();
  await p?.close();
});

describe('control messages', () => {
  it('are published on this deployment’s own channel only', async () => {
    const client = p.openai();
    const f = await client.files.create({ file: await toFile(Buffer.from(shakespeare(5000)), 'c.txt'), purpose: 'fine-tune' });
    const job = await client.fineTuning.jobs.create({ model: 'gpt-nano', training_file: f.id });
    await client.fineTuning.jobs.cancel(job.id);
    const mine = () => heard.filter((h) => h.message.includes(job.id));
    await eventually(async () => (mine().length > 0 ? true : undefined), 5000);
    expect(mine()).toEqual([{ channel: `${p.env.QUEUE_PREFIX}:control`, message: JSON.stringify({ jobId: job.id, action: 'cancel' }) }]);
  });
});
