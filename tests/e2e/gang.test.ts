// A multi-worker job's gang in the real Redis, its members in one process: assembly, its timeout
// (the member leaves), stages passed together, abandonment, and a member that stops beating found
// lost at a stage within WORKER_DEAD_AFTER_MS instead of GANG_STAGE_MS.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gang, GangAbandoned, GangTimeout, RankLost } from '../../apps/worker/src/training/gang';

const TIMES = { assemblyMs: 2_000, stageMs: 10_000, collectiveMs: 5_000, beatMs: 50, deadMs: 400, pollMs: 20 };
let redis: Redis;
beforeAll(() => {
  redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
});
afterAll(() => redis.disconnect());

const member = (rank: number) => ({ rank, worker: `w${rank}`, host: '127.0.0.1', bf16: rank === 0 });
const gangOf = (prefix: string, size: number, rank: number, times = TIMES) => new Gang(redis, prefix, 'ftjob-test', 0, size, member(rank), times);

describe('a gang in Redis', () => {
  it('assembles, passes stages together, agrees on a precision all can run, and reads its ranks', async () => {
    const prefix = `test:gang:${randomUUID()}`;
    const [a, b] = [gangOf(prefix, 2, 0), gangOf(prefix, 2, 1)];
    const members = await Promise.all([a.join(), b.join()]);
    expect(members[0].map((m) => m.worker)).toEqual(['w0', 'w1']);
    await Promise.all([a.stage('data'), b.stage('data')]);
    expect(a.precision('bf16')).toBe('float32'); // rank 1 runs no bf16 products
    expect(a.ranks()).toEqual([
      { rank: 0, worker: 'w0', host: '127.0.0.1' },
      { rank: 1, worker: 'w1', host: '127.0.0.1' },
    ]);
    a.close();
    b.close();
  });

  it('lets a member go when the others do not come in time, leaving no trace of it', async () => {
    const prefix = `test:gang:${randomUUID()}`;
    const alone = gangOf(prefix, 3, 1, { ...TIMES, assemblyMs: 300 });
    await expect(alone.join()).rejects.toThrow(GangTimeout);
    expect(await redis.hkeys(alone.key)).toEqual([]);
  });

  it('sends the members home when rank 0 abandons the gang', async () => {
    const prefix = `test:gang:${randomUUID()}`;
    const [a, b] = [gangOf(prefix, 2, 0), gangOf(prefix, 2, 1)];
    await Promise.all([a.join(), b.join()]);
    const waiting = b.stage('data');
    await a.abandon('the job was cancelled');
    await expect(waiting).rejects.toThrow(GangAbandoned);
    a.close();
    b.close();
  });

  it('finds a member that stopped beating lost at a stage, naming it, long before the stage timeout', async () => {
    const prefix = `test:gang:${randomUUID()}`;
    const [a, b] = [gangOf(prefix, 2, 0), gangOf(prefix, 2, 1)];
    await Promise.all([a.join(), b.join()]);
    b.close(); // its worker died: no more beats, never at the stage
    const t0 = Date.now();
    const err = await a.stage('data').catch((e: Error) => e);
    expect(err).toBeInstanceOf(RankLost);
    expect((err as Error).message).toMatch(/rank 1 \(w1 at 127\.0\.0\.1\) stopped beating/);
    expect(Date.now() - t0).toBeLessThan(TIMES.stageMs / 2);
    a.close();
  });
});
