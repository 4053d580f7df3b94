// @crucible/sdk/node: helpers that touch the file system (Node.js only).
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Crucible, FileObject } from './client.js';
import type { UploadInput, UploadOptions } from './upload.js';

/** A file on disk as an upload input: streamed, never read into memory whole; `name` defaults to its base name. */
export async function fileFromPath(path: string, name = basename(path)): Promise<UploadInput> {
  const { size } = await stat(path);
  return { name, size, data: Readable.toWeb(createReadStream(path)) as unknown as ReadableStream<Uint8Array> };
}

/** Uploads a file from a path, streamed, with optional progress. */
export async function uploadFileFromPath(crucible: Crucible, path: string, opts: UploadOptions & { name?: string } = {}): Promise<FileObject> {
  return crucible.uploadFile(await fileFromPath(path, opts.name), opts);
}

/**
 * Downloads a model archive (.tar.gz) to `dest`, streamed; written to `dest.partial` first and renamed
 * when complete, so a failed download leaves no truncated file. Answers the bytes written.
 */
export async function downloadModelToFile(
  crucible: Crucible,
  model: string,
  dest: string,
  opts: { variant?: 'full' | 'adapter'; signal?: AbortSignal; onProgress?: (p: { loaded: number; total: number | null }) => void } = {},
): Promise<{ path: string; bytes: number }> {
  const res = await crucible.downloadModel(model, opts);
  const length = Number(res.headers.get('content-length'));
  const total = Number.isFinite(length) && length > 0 ? length : null;
  let loaded = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      loaded += chunk.byteLength;
      opts.onProgress?.({ loaded, total });
      cb(null, chunk);
    },
  });
  const partial = `${dest}.partial`;
  try {
    if (!res.body) throw new Error('empty download');
    await pipeline(Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>), count, createWriteStream(partial), { signal: opts.signal });
    await rename(partial, dest);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
  return { path: dest, bytes: loaded };
}
