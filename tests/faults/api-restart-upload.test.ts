// Fault: the API is killed (SIGKILL) in the middle of an upload and started again. The client
// gets a broken connection at once (no hang); no record is left without its object (nor an
// object without its record); the reservation of the upload cut short, and one that a crash left
// between writing the object and committing the record, are removed, object and all, by the
// restarted API once they are older than UPLOAD_STALE_MS; uploads work again.
import { request } from 'node:http';
import { keys } from '@crucible/storage';
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

describe.skipIf(!PG_BIN)('the API restarted in the middle of an upload', () => {
  it('leaves no record without its object, and uploads work after the restart', async () => {
    // an upload whose body arrives slowly: 2 MB sent, the rest never comes
    const boundary = 'crucible-fault-boundary';
    const failed = new Promise<string>((resolve) => {
      const req = request(`${rig.url}/v1/files`, {
        method: 'POST',
        headers: { authorization: `Bearer ${rig.apiKey}`, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(50 * 2 ** 20) },
      });
      req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      req.on('response', (res) => resolve(`answered ${res.statusCode}`));
      req.write(`--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n`);
      req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\nContent-Type: text/plain\r\n\r\n`);
      req.write('to be or not to be\n'.repeat(110_000));
    });
    await sleep(1000);
    const t0 = Date.now();
    await rig.kill9(rig.api);
    expect(await failed).toMatch(/ECONNRESET|socket hang up|EPIPE/);
    expect(Date.now() - t0).toBeLessThan(5000);

    // what a crash between storing the object and committing the record would leave behind
    const projectId = (await rig.sql<{ id: string }>('SELECT id FROM projects'))[0]?.id as string;
    const halfKey = keys.file(projectId, 'file-halfwritten');
    await rig.sql(
      `INSERT INTO files (id, project_id, filename, purpose, bytes, sha256, format, lines, storage_key, state, created_at)
       VALUES ('file-halfwritten', $1, 'half.txt', 'fine-tune', 5, '', 'text', 1, $2, 'uploading', now() - interval '1 minute')`,
      [projectId, halfKey],
    );
    const { Storage } = await import('@crucible/storage');
    const storage = new Storage({
      endpoint: rig.s3.endpoint,
      region: 'us-east-1',
      bucket: 'crucible-faults',
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
    });
    await storage.put(halfKey, new TextEncoder().encode('half\n'));
    // and a file stored but never validated (its API died during validation)
    const pendingKey = keys.file(projectId, 'file-unvalidated');
    await storage.put(pendingKey, new TextEncoder().encode('{"text": "a"}\n{"text": 2}\n'));
    await rig.sql(
      `INSERT INTO files (id, project_id, filename, purpose, bytes, sha256, format, lines, storage_key, state, created_at)
       VALUES ('file-unvalidated', $1, 'u.jsonl', 'fine-tune', 26, '', 'text', 0, $2, 'pending', now() - interval '1 minute')`,
      [projectId, pendingKey],
    );

    const restarted = Date.now();
    await rig.startApi({ UPLOAD_STALE_MS: '3000', FILE_PENDING_RETRY_MS: '1000' });
    expect((await rig.call('/files/file-halfwritten')).status).toBe(404); // never visible
    // the sweeper removes the object, then the record
    const leftovers = async () => ({
      object: await storage.exists(halfKey),
      records: await rig.sql("SELECT id FROM files WHERE state NOT IN ('processed', 'error') OR id = 'file-unvalidated'"),
    });
    const validated = async () => (await rig.sql("SELECT id FROM files WHERE id = 'file-unvalidated' AND state = 'error'")).length === 1;
    for (let i = 0; i < 200; i++) {
      const l = await leftovers();
      if (!l.object && l.records.length === 1 && (await validated())) break;
      await sleep(100);
    }
    expect(await leftovers()).toEqual({ object: false, records: [{ id: 'file-unvalidated' }] });
    // the restarted API validated the pending file: its second line is wrong
    const unvalidated = (await rig.call('/files/file-unvalidated')).body as { status: string; problems: Array<{ line: number; field: string }> };
    expect(unvalidated).toMatchObject({ status: 'error', problems: [{ line: 2, field: 'text' }] });
    storage.destroy();
    const recovery = Date.now() - restarted;

    const id = await rig.upload(5000);
    expect((await rig.call(`/files/${id}`)).body).toMatchObject({ id, status: 'processed' });
    expect((await rig.call('/files')).body.data).toHaveLength(2);
    expect(await rig.orphans()).toEqual([]);
    rig.record('api-restart-upload', { faults_injected: 1, survived: true, client_saw: await failed, records_without_object: 0, cleanup_ms: recovery });
  });
});
