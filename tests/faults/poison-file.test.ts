// Fault: a poison file. A pending file whose preparation used to take the API down (a source line
// nested 100,000 deep, validated by an older version) is marked `error` with the reason when the
// API starts and sweeps it, and the API stays up; a file whose runs already failed twice (the
// process died in them) is marked `error` without being run again. No crash loop.
import { DEFAULT_RULES } from '@crucible/datasets';
import { keys, Storage } from '@crucible/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rig } from './support/rig';
import { PG_BIN, sleep } from './support/services';

let rig: Rig;
beforeAll(async () => {
  if (PG_BIN) rig = await Rig.start({ worker: false });
});
afterAll(async () => {
  await rig?.close();
});

describe.skipIf(!PG_BIN)('a poison file', () => {
  it('is marked error with its reason and never takes the API down, at start or after a restart', async () => {
    const storage = new Storage({
      endpoint: rig.s3.endpoint,
      region: 'us-east-1',
      bucket: 'crucible-faults',
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
    });
    const deep = `{"text": "a", "x": ${'['.repeat(100_000)}${']'.repeat(100_000)}}\n`;
    const sourceKey = keys.file(rig.projectId, 'file-deepsource');
    await storage.put(sourceKey, new TextEncoder().encode(`{"text": "fine"}\n${deep}`));
    // validated as processed by a version without the depth rule
    await rig.sql(
      `INSERT INTO files (id, project_id, filename, purpose, bytes, sha256, format, lines, storage_key, state, created_at)
       VALUES ('file-deepsource', $1, 'deep.jsonl', 'fine-tune', $2, '', 'jsonl_text', 2, $3, 'processed', now())`,
      [rig.projectId, deep.length + 17, sourceKey],
    );
    const pending = async (id: string, attempts: number) =>
      rig.sql(
        `INSERT INTO files (id, project_id, filename, purpose, bytes, sha256, format, lines, storage_key, state, preparation, source_file_id, processing_attempts, created_at)
         VALUES ($1, $2, 'deep.prepared.jsonl', 'fine-tune', 0, '', 'jsonl_text', 0, $3, 'pending', $4, 'file-deepsource', $5, now() - interval '1 minute')`,
        [id, rig.projectId, keys.file(rig.projectId, id), JSON.stringify({ rules: DEFAULT_RULES, report: null }), attempts],
      );
    await pending('file-poison', 0);
    await pending('file-twicefailed', 2);

    await rig.kill9(rig.api);
    await rig.startApi({ FILE_PENDING_RETRY_MS: '1000' });
    const states = async () =>
      Object.fromEntries(
        (
          await rig.sql<{ id: string; state: string; report: { problems: Array<{ message: string }> } | null }>(
            "SELECT id, state, report FROM files WHERE id IN ('file-poison', 'file-twicefailed')",
          )
        ).map((r) => [r.id, { state: r.state, message: r.report?.problems[0]?.message ?? '' }]),
      );
    let s = await states();
    for (let i = 0; i < 150 && Object.values(s).some((f) => f.state !== 'error'); i++) {
      await sleep(200);
      s = await states();
    }
    expect(s['file-poison']).toEqual({ state: 'error', message: expect.stringMatching(/line 2 nests arrays and objects more than 64 levels deep/) });
    expect(s['file-twicefailed']).toEqual({ state: 'error', message: expect.stringMatching(/failed 2 times/) });
    expect(rig.api?.exitCode).toBeNull();
    expect((await rig.call('/health')).status).toBe(200);
    expect(await storage.exists(keys.file(rig.projectId, 'file-poison'))).toBe(false); // nothing of the output kept

    // and a restart finds nothing to trip on
    await rig.kill9(rig.api);
    await rig.startApi({ FILE_PENDING_RETRY_MS: '1000' });
    await sleep(1500);
    expect(rig.api?.exitCode).toBeNull();
    expect((await rig.call('/files/file-poison')).body).toMatchObject({ id: 'file-poison', status: 'error' });
  });
});
