// A pass-through stream that hashes (sha256) and counts what flows through it, and can refuse
// a stream that grows past a limit or does not look like text.
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

export class HashCounter extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');

  constructor(private readonly check?: (chunk: Buffer, seen: number) => Error | undefined) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const problem = this.check?.(chunk, this.bytes);
    if (problem) {
      cb(problem);
      return;
    }
    this.bytes += chunk.length;
    this.hash.update(chunk);
    cb(null, chunk);
  }

  sha256(): string {
    return this.hash.digest('hex');
  }
}
