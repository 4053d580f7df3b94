// S3 access for datasets, checkpoints and models (AWS S3, MinIO, or the local s3rver). A server
// that cannot be reached surfaces as ServiceUnavailableError('storage'): the API answers 503, the
// worker retries.

import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { guard, isTransientError } from '@crucible/domain';

export interface StorageConfig {
  endpoint?: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Path-style URLs (MinIO, s3rver). Default true when an endpoint is set. */
  forcePathStyle?: boolean;
}

export class Storage {
  readonly client: S3Client;
  readonly bucket: string;

  constructor(cfg: StorageConfig) {
    this.bucket = cfg.bucket;
    this.client = new S3Client({
      endpoint: cfg.endpoint,
      region: cfg.region,
      credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey },
      forcePathStyle: cfg.forcePathStyle ?? Boolean(cfg.endpoint),
      // Non-AWS servers mishandle the SDK's default streaming checksums (aws-chunked bodies).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // never wait forever on a server that went away
      requestHandler: { connectionTimeout: 5000, requestTimeout: 120_000 },
    });
  }

  async ensureBucket(): Promise<void> {
    await guard('storage', async () => {
      try {
        await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      } catch (err) {
        if (isTransientError(err)) throw err;
        await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
      }
    });
  }

  /** One request to the bucket (readiness checks). */
  async ping(): Promise<void> {
    await guard('storage', async () => void (await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }))));
  }

  /** Stores bytes; returns their sha256 (hex). */
  async put(key: string, body: Uint8Array, contentType = 'application/octet-stream'): Promise<string> {
    await guard('storage', () =>
      this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType, ContentLength: body.byteLength })),
    );
    return createHash('sha256').update(body).digest('hex');
  }

  /** Multipart upload of a stream (large files). */
  /** Streams `body` to an object. When the body itself fails, its error is what this rejects with (not the aborted upload's). */
  async putStream(key: string, body: Readable, contentType = 'application/octet-stream'): Promise<void> {
    let bodyError: unknown;
    body.once('error', (err) => {
      bodyError = err;
    });
    try {
      await guard('storage', () => new Upload({ client: this.client, params: { Bucket: this.bucket, Key: key, Body: body, ContentType: contentType } }).done());
    } catch (err) {
      throw bodyError ?? err;
    }
  }

  async get(key: string): Promise<Buffer> {
    return guard('storage', async () => {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return Buffer.from(await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
    });
  }

  /** Bytes [start, end] (inclusive) of an object: headers of large files without reading them. */
  async getRange(key: string, start: number, end: number): Promise<Buffer> {
    return guard('storage', async () => {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${start}-${end}` }));
      return Buffer.from(await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
    });
  }

  /** Size in bytes, or null when the object does not exist. */
  async size(key: string): Promise<number | null> {
    return guard('storage', async () => {
      try {
        return (await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }))).ContentLength ?? 0;
      } catch (err) {
        if (err instanceof NotFound || err instanceof NoSuchKey || (err as { name?: string }).name === 'NotFound') return null;
        throw err;
      }
    });
  }

  async getStream(key: string): Promise<Readable> {
    return guard('storage', async () => (await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }))).Body as Readable);
  }

  async exists(key: string): Promise<boolean> {
    return guard('storage', async () => {
      try {
        await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
        return true;
      } catch (err) {
        if (err instanceof NotFound || err instanceof NoSuchKey || (err as { name?: string }).name === 'NotFound') return false;
        throw err;
      }
    });
  }

  async delete(key: string): Promise<void> {
    await guard('storage', () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
  }

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const res = await guard('storage', () => this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token })));
      for (const o of res.Contents ?? []) if (o.Key) out.push(o.Key);
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async deletePrefix(prefix: string): Promise<number> {
    const all = await this.list(prefix);
    for (let i = 0; i < all.length; i += 1000) {
      const batch = all.slice(i, i + 1000);
      await guard('storage', () => this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })) } })));
    }
    return all.length;
  }

  destroy(): void {
    this.client.destroy();
  }
}
