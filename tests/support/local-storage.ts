// A local S3 server with one bucket, for tests of code that reads and writes objects (not the
// whole platform: that is startPlatform). `close()` stops it and removes its folder.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Storage, startLocalS3 } from '@crucible/storage';

export interface TestStorage {
  storage: Storage;
  /** The server's folder (objects are `<dir>/<bucket>/<key>._S3rver_object`). */
  dir: string;
  bucket: string;
  close(): Promise<void>;
}

export async function testStorage(bucket: string): Promise<TestStorage> {
  const dir = mkdtempSync(join(tmpdir(), `crucible-${bucket}-`));
  const s3 = await startLocalS3(dir);
  const storage = new Storage({ endpoint: s3.endpoint, region: 'us-east-1', bucket, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
  await storage.ensureBucket();
  return {
    storage,
    dir,
    bucket,
    async close() {
      storage.destroy();
      await s3.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
