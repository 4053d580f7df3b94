// The multipart parser (busboy) stops reading a part's headers at the first line with no colon
// and keeps what it read: a filename holding CR LF (`filename="a<CR><LF>b.txt"`) reaches the
// handler cut to "a", without a word. This watches the raw body beside the parser and notes a
// part whose header block holds a line that is neither a header nor a continuation, or a bare
// CR or LF, so the upload is refused with a 400 instead of stored under a truncated name.

import { CrucibleError } from '@crucible/domain';
import type { Multipart } from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
/** A part's header block longer than this is left to the parser's own limits. */
const MAX_HEADER_BLOCK = 16 * 1024;

export class PartHeaderCheck {
  private readonly delimiter: Buffer;
  /** Bytes kept from the previous chunk: a delimiter's possible start, or an unfinished header block. */
  private carry: Buffer;
  private inHeaders = false;
  private done = false;
  /** What is wrong with a part's headers, once seen. */
  problem: string | undefined;
  /** The request field it concerns: `filename` for a file part, else the part's name. */
  param: string | null = null;

  constructor(boundary: string) {
    this.delimiter = Buffer.from(`\r\n--${boundary}`);
    this.carry = CRLF; // the body opens with the first delimiter, without the CRLF before it
  }

  /** The boundary of a multipart/form-data content type, if it has one. */
  static boundaryOf(contentType: string | undefined): string | undefined {
    const m = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType ?? '');
    return m ? (m[1] ?? m[2]) : undefined;
  }

  push(chunk: Buffer): void {
    if (this.done || this.problem) return;
    const data = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    let pos = 0;
    for (;;) {
      if (!this.inHeaders) {
        const at = data.indexOf(this.delimiter, pos);
        if (at < 0) {
          this.carry = Buffer.from(data.subarray(Math.max(pos, data.length - this.delimiter.length + 1)));
          return;
        }
        pos = at + this.delimiter.length;
        this.inHeaders = true;
      }
      if (data.length - pos >= 2 && data[pos] === 0x2d && data[pos + 1] === 0x2d) {
        this.done = true; // the closing delimiter
        return;
      }
      const end = data.indexOf(HEADER_END, pos);
      if (end < 0) {
        if (data.length - pos > MAX_HEADER_BLOCK) this.done = true;
        else this.carry = Buffer.from(data.subarray(pos));
        return;
      }
      this.check(data.subarray(pos, end).toString('latin1'));
      if (this.problem) return;
      pos = end + HEADER_END.length;
      this.inHeaders = false;
    }
  }

  private check(block: string): void {
    // the first line is the rest of the delimiter's line (transport padding); then the headers
    const lines = block.split('\r\n').slice(1);
    const bad =
      lines.find((line) => /[\r\n]/.test(line)) ??
      lines.find((line) => !(line.startsWith(' ') || line.startsWith('\t') || /^[!#$%&'*+.^_`|~0-9A-Za-z-]+:/.test(line)));
    if (bad === undefined) return;
    this.problem = /[\r\n]/.test(bad)
      ? 'a part header holds a bare CR or LF (a filename or field name with a line break?)'
      : 'a part header line is not a header: a filename or field name holds a line break (CR LF), which would cut it short';
    this.param = /filename\*?=/i.test(block) ? 'filename' : (/\bname="([^"\r\n]{1,100})"/.exec(block)?.[1] ?? null);
  }
}

/** Wraps `req.parts` of multipart requests so that a part with a broken header line is a 400 naming it. */
export function installPartHeaderCheck(app: FastifyInstance): void {
  app.addHook('onRequest', async (req) => {
    const boundary = PartHeaderCheck.boundaryOf(req.headers['content-type']);
    if (!boundary || !/^multipart\/form-data/i.test(req.headers['content-type'] ?? '')) return;
    const parts = req.parts.bind(req);
    req.parts = ((options?: Parameters<typeof parts>[0]) => checkedParts(req, parts(options), new PartHeaderCheck(boundary))) as typeof req.parts;
  });
}

async function* checkedParts(req: FastifyRequest, parts: AsyncIterableIterator<Multipart>, check: PartHeaderCheck): AsyncGenerator<Multipart> {
  const next = parts.next(); // starts the parser, which pipes the body: listen only after it did, so no chunk is taken from it
  const onData = (chunk: Buffer) => check.push(chunk);
  req.raw.on('data', onData);
  try {
    for (let r = await next; !r.done; r = await parts.next()) {
      if (check.problem) throw new CrucibleError('invalid_request', check.problem, check.param);
      yield r.value;
    }
  } finally {
    req.raw.off('data', onData);
  }
}
