// JobSignals on a real PostgreSQL: a wait for a job ends when the job gets an event or changes,
// whichever connection wrote it (the database's NOTIFY at commit), and not for another job's;
// without a notification it ends after its time, and while the LISTEN connection is down the
// wait is a short poll.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestStore, testStore } from '../../../tests/support/store';
import { JobSignals } from '../src/index';

let db: TestStore;
let signals: JobSignals;
const late = (ms: number) => new Promise<'late'>((r) => setTimeout(() => r('late'), ms));

beforeAll(async () => {
  db = await testStore('signals');
  signals = new JobSignals(db.url, { pollMs: 60_000 });
  await signals.start();
});

afterAll(async () => {
  await signals?.stop();
  await db?.drop();
});

describe('JobSignals', () => {
  it("ends a job's wait at its next event, written by another connection, and not at another job's", async () => {
    expect(signals.listening).toBe(true);
    const [a, b] = [await db.createJob('ftjob-signal-a'), await db.createJob('ftjob-signal-b')];
    await new Promise((r) => setTimeout(r, 500)); // the notifications of their creation have passed
    const waitA = signals.next(a.id, 60_000);
    const waitB = signals.next(b.id, 1_500);
    expect(await db.store.jobs.attemptWriter(db.projectId, a.id, 0).event('an event of a')).toBe(true);
    expect(await Promise.race([waitA, late(5_000)])).toBe(true);
    expect(await waitB).toBe(false); // b had nothing: its wait ran out
  });

  it("ends a wait when the job's record changes (a status change)", async () => {
    const j = await db.createJob('ftjob-signal-c');
    const wait = signals.next(j.id, 60_000);
    await db.store.jobs.transition(db.projectId, j.id, 'cancelled');
    expect(await Promise.race([wait, late(5_000)])).toBe(true);
  });

  it('ends a wait taken before a write that lands while the caller reads (nothing is missed)', async () => {
    const j = await db.createJob('ftjob-signal-d');
    const wait = signals.next(j.id, 60_000); // taken first
    await db.store.jobs.attemptWriter(db.projectId, j.id, 0).event('written before the caller awaits');
    await new Promise((r) => setTimeout(r, 300)); // the caller is busy reading meanwhile
    expect(await Promise.race([wait, late(5_000)])).toBe(true);
  });

  it('while not listening, a wait is a poll of pollMs', async () => {
    const quiet = new JobSignals('postgresql://root@127.0.0.1:1/none', { pollMs: 100, retryMs: 60_000 });
    await quiet.start();
    try {
      expect(quiet.listening).toBe(false);
      const t0 = Date.now();
      expect(await quiet.next('ftjob-any', 60_000)).toBe(false);
      expect(Date.now() - t0).toBeLessThan(2_000);
    } finally {
      await quiet.stop();
    }
  });
});
