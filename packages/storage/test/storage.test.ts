// The storage layer against the local S3-compatible server, checking stored bytes by hash.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestStorage, testStorage } from '../../../tests/support/local-storage';
import { keys, type Storage } from '../src/index';

let t: TestStorage;
let storage: Storage;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  t = await testStorage('storage-test');
  storage = t.storage;
});
afterAll(() => t?.close());

/** The bytes s3rver wrote to disk for a key (independent of the S3 read path). */
function onDisk(key: string): Buffer {
  return readFileSync(join(t.dir, t.bucket, `${key}._S3rver_object`));
}

describe('Storage on a local S3 server', () => {
  it('stores and returns exactly the bytes put (sha256), also as a stream', async () => {
    const bytes = randomBytes(1_000_003);
    const key = keys.file('proj-a', 'file-1');
    expect(await storage.put(key, bytes)).toBe(sha(bytes));
    expect(sha(await storage.get(key))).toBe(sha(bytes));
    expect(sha(onDisk(key))).toBe(sha(bytes)); // not an aws-chunked body
    const chunks: Buffer[] = [];
    for await (const c of await storage.getStream(key)) chunks.push(c as Buffer);
    expect(sha(Buffer.concat(chunks))).toBe(sha(bytes));
  });

  it('uploads a 12 MB stream in parts intact', async () => {
    const bytes = randomBytes(12 * 2 ** 20);
    const key = keys.checkpoint('proj-a', 'ftjob-1', 100);
    await storage.putStream(key, Readable.from([bytes.subarray(0, 5e6), bytes.subarray(5e6)]));
    expect(sha(await storage.get(key))).toBe(sha(bytes));
  });

  it('lists, checks and deletes by prefix', async () => {
    await storage.put(keys.checkpoint('proj-b', 'ftjob-2', 1), Buffer.from('a'));
    await storage.put(keys.checkpoint('proj-b', 'ftjob-2', 2), Buffer.from('b'));
    expect(await storage.list(keys.jobPrefix('proj-b', 'ftjob-2'))).toEqual([
      'projects/proj-b/jobs/ftjob-2/checkpoints/step-00000001.safetensors',
      'projects/proj-b/jobs/ftjob-2/checkpoints/step-00000002.safetensors',
    ]);
    expect(await storage.exists(keys.checkpoint('proj-b', 'ftjob-2', 1))).toBe(true);
    expect(await storage.deletePrefix('projects/proj-b/')).toBe(2);
    expect(await storage.exists(keys.checkpoint('proj-b', 'ftjob-2', 1))).toBe(false);
  });
});
