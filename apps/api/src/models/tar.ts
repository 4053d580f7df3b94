// ustar archives, streamed both ways: model downloads are written entry by entry from storage
// streams (never held whole in memory), and imported archives are read entry by entry while
// their bodies are uploaded to storage.
import { PassThrough, Readable } from 'node:stream';

const BLOCK = 512;

function header(name: string, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  const put = (s: string, off: number, len: number) => h.write(s.slice(0, len), off, len, 'utf8');
  const oct = (n: number, len: number) => n.toString(8).padStart(len - 1, '0');
  put(name, 0, 100);
  put(oct(0o644, 8), 100, 8);
  put(oct(0, 8), 108, 8);
  put(oct(0, 8), 116, 8);
  put(oct(size, 12), 124, 12);
  put(oct(mtime, 12), 136, 12);
  h.fill(' ', 148, 156); // checksum is computed with this field as spaces
  put('0', 156, 1);
  put('ustar\u0000', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${oct(sum, 7)}\u0000`, 148, 8);
  return h;
}

export interface TarSource {
  name: string;
  size: number;
  open: () => Promise<AsyncIterable<Uint8Array> | Iterable<Uint8Array>>;
}

/** A tar stream of the given entries; each body is opened only when its turn comes. */
export function tarStream(entries: TarSource[], mtime = Math.floor(Date.now() / 1000)): Readable {
  async function* gen() {
    for (const e of entries) {
      if (Buffer.byteLength(e.name) > 100) throw new Error(`tar: name too long: ${e.name}`);
      yield header(e.name, e.size, mtime);
      let written = 0;
      for await (const chunk of (await e.open()) as AsyncIterable<Uint8Array>) {
        written += chunk.byteLength;
        yield chunk;
      }
      if (written !== e.size) throw new Error(`tar: ${e.name} has ${written} bytes, expected ${e.size}`);
      const pad = (BLOCK - (e.size % BLOCK)) % BLOCK;
      if (pad) yield Buffer.alloc(pad);
    }
    yield Buffer.alloc(2 * BLOCK);
  }
  return Readable.from(gen());
}

export interface TarEntry {
  name: string;
  size: number;
  /** The entry's bytes; must be consumed (or resumed) before the next entry is read. */
  body: Readable;
}

/** An archive that is not a well-formed ustar stream (truncated, corrupt header, bad size field). */
export class TarFormatError extends Error {
  override readonly name = 'TarFormatError';
}

export interface ReadTarOptions {
  /** Called with every block's bytes as they are read (headers, bodies, skipped entries): throw to stop. */
  charge?: (bytes: number) => void;
  /** The largest entry accepted, by its header's size, before any of its bytes are read. */
  maxEntryBytes?: (name: string) => number;
}

/**
 * Reads a tar stream entry by entry. Regular files only (directories, links and pax headers are
 * skipped); each body streams with backpressure, so an archive is never held in memory. Headers
 * are checked (checksum, octal size field) and a stream that ends inside a header or a body is
 * refused, all as TarFormatError.
 */
export async function* readTar(input: AsyncIterable<Uint8Array>, opts: ReadTarOptions = {}): AsyncGenerator<TarEntry> {
  const it = input[Symbol.asyncIterator]();
  let buf: Buffer = Buffer.alloc(0);
  let ended = false;
  const fill = async (n: number): Promise<boolean> => {
    while (buf.length < n && !ended) {
      const r = await it.next();
      if (r.done) ended = true;
      else buf = buf.length ? Buffer.concat([buf, Buffer.from(r.value)]) : Buffer.from(r.value);
    }
    return buf.length >= n;
  };
  for (let index = 1; ; index++) {
    if (!(await fill(BLOCK))) {
      if (buf.length === 0) return; // the archive ends at a block boundary (no end marker: accepted, as tar does)
      throw new TarFormatError(`tar: the archive ends inside the header of entry ${index}`);
    }
    const h = buf.subarray(0, BLOCK);
    buf = buf.subarray(BLOCK);
    opts.charge?.(BLOCK);
    if (h.every((b) => b === 0)) return; // end-of-archive marker
    checkHeader(h, index);
    const field = (off: number, len: number) =>
      h
        .subarray(off, off + len)
        .toString('utf8')
        .replace(/\0.*$/s, '')
        .trim();
    const prefix = field(345, 155);
    const name = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
    const size = sizeField(h, name);
    const limit = opts.maxEntryBytes?.(name);
    if (limit !== undefined && size > limit) throw new TarFormatError(`tar: entry ${name} is ${size} bytes, above the ${limit} accepted for it`);
    const type = String.fromCharCode(h[156] as number);
    const padded = size + ((BLOCK - (size % BLOCK)) % BLOCK);
    const regular = type === '0' || type === '\0';
    const body = new PassThrough();
    let left = size;
    let skip = padded - size;
    const take = async (n: number): Promise<Buffer> => {
      if (!(await fill(1))) throw new TarFormatError(`tar: the archive ends inside entry ${name}`);
      const chunk = buf.subarray(0, Math.min(n, buf.length));
      buf = buf.subarray(chunk.length);
      opts.charge?.(chunk.length);
      return chunk;
    };
    const pump = async () => {
      while (left > 0) {
        const chunk = await take(left);
        left -= chunk.length;
        if (!body.write(chunk)) await new Promise((r) => body.once('drain', r));
      }
      body.end();
      while (skip > 0) skip -= (await take(skip)).length;
    };
    if (regular) {
      const done = pump();
      done.catch((err) => body.destroy(err));
      yield { name, size, body };
      body.resume(); // drain whatever the consumer left
      await done;
    } else {
      body.resume();
      await pump();
    }
  }
}

/** A header's checksum: the sum of its bytes with the checksum field counted as spaces. */
function checkHeader(h: Buffer, index: number): void {
  const stored = h
    .subarray(148, 156)
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .trim();
  let sum = 0;
  let signed = 0; // some old writers summed signed bytes
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (h[i] as number);
    sum += b;
    signed += b > 127 ? b - 256 : b;
  }
  const want = /^[0-7]{1,7}$/.test(stored) ? Number.parseInt(stored, 8) : Number.NaN;
  if (want !== sum && want !== signed) {
    throw new TarFormatError(`tar: the header of entry ${index} is corrupt (its checksum does not match): not a tar archive, or a damaged one`);
  }
}

/** The size field: octal digits; base-256 sizes (entries of 8 GiB and more) are refused. */
function sizeField(h: Buffer, name: string): number {
  if (((h[124] as number) & 0x80) !== 0) throw new TarFormatError(`tar: entry ${name} has a base-256 size (8 GiB or more), which is not accepted`);
  const text = h
    .subarray(124, 136)
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .trim();
  if (!/^[0-7]*$/.test(text)) throw new TarFormatError(`tar: entry ${name} has a size field that is not octal (${JSON.stringify(text)})`);
  return text === '' ? 0 : Number.parseInt(text, 8);
}
