// Splits a byte stream into numbered lines without holding more than one line (and never more
// than `maxLineBytes` of it): the rest of an over-long line is skipped and reported.

export interface Line {
  /** 1-based line number. */
  number: number;
  /** The line's bytes without its '\n' (and without a trailing '\r'); empty when too long. */
  bytes: Uint8Array;
  /** The line's length in bytes (also when it was too long to keep). */
  length: number;
  tooLong: boolean;
}

export class LineSplitter {
  private parts: Uint8Array[] = [];
  private partBytes = 0;
  private number = 0;

  constructor(private readonly maxLineBytes: number) {}

  /** The complete lines in `chunk` (with what earlier chunks left over). */
  *push(chunk: Uint8Array): Generator<Line> {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      yield this.take(chunk.subarray(start, nl));
      start = nl + 1;
    }
    if (start < chunk.length) this.keep(chunk.subarray(start));
  }

  /** The last line, when the stream did not end with '\n'. */
  *end(): Generator<Line> {
    if (this.partBytes > 0) yield this.take(new Uint8Array(0));
  }

  private keep(piece: Uint8Array): void {
    this.partBytes += piece.length;
    if (this.partBytes <= this.maxLineBytes) this.parts.push(Uint8Array.from(piece));
  }

  private take(tail: Uint8Array): Line {
    this.number++;
    const length = this.partBytes + tail.length;
    const tooLong = length > this.maxLineBytes;
    let bytes: Uint8Array;
    if (tooLong) bytes = new Uint8Array(0);
    else if (this.parts.length === 0) bytes = tail;
    else bytes = Buffer.concat([...this.parts, tail]);
    this.parts = [];
    this.partBytes = 0;
    if (bytes.length > 0 && bytes[bytes.length - 1] === 13) bytes = bytes.subarray(0, bytes.length - 1);
    return { number: this.number, bytes, length, tooLong };
  }
}
