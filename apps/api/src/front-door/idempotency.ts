// Idempotency-Key on every POST: the first request with a key runs and its answer (2xx or 4xx) is
// kept in Redis for IDEMPOTENCY_TTL_MS; a retry with the same key and the same request gets that
// answer again (header `idempotent-replayed: true`) and creates nothing. The same key with another
// request is refused (422), and so is a retry while the first is still running (409). A 5xx, or an
// answer that is streamed (SSE), is not kept: the key is released and a retry runs again. Secrets
// are never kept: an API key's `secret` and a webhook's `signing_secret` are removed from the kept
// answer, so a replay returns the record without them (and says so in `secrets_withheld`).
import { createHash } from 'node:crypto';
import { type Readable, Transform } from 'node:stream';
import { CrucibleError } from '@crucible/domain';
import type { Multipart } from '@fastify/multipart';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';

/** A request whose key was taken: where its answer goes. */
interface Held {
  redisKey: string;
  fingerprint: string;
  settled: boolean;
  /** A multipart request's content digest, complete once the handler has read every part. */
  content?: MultipartDigest;
}

interface Stored {
  state: 'running' | 'done';
  fingerprint: string;
  status?: number;
  contentType?: string;
  body?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    idempotency?: Held;
  }
}

/** A request still running holds its key at most this long (a process that died mid-request frees it). */
const RUNNING_TTL_MS = 5 * 60_000;
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

function fingerprintOf(req: FastifyRequest): string {
  return sha256(`${req.method} ${req.url}\n${JSON.stringify(req.body ?? null)}`);
}

/**
 * The fingerprint of a multipart request, from its content: each field's name and value and each
 * file's name and sha256, in order. Multipart bodies stream to their handler, so the digest is
 * taken as the handler reads the parts (first request) or by reading them here (a replay).
 */
class MultipartDigest {
  private readonly lines: Array<string | null> = [];
  private pending = 0;

  constructor(private readonly head: string) {}

  field(name: string, value: unknown): void {
    this.lines.push(`field ${name}=${String(value)}`);
  }

  /** A file part: returns the stream to read it through (hashing on the way). */
  file(fieldname: string, filename: string, source: Readable): Readable {
    const at = this.lines.push(null) - 1;
    this.pending++;
    const h = createHash('sha256');
    const tee = new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        h.update(chunk);
        cb(null, chunk);
      },
      flush: (cb) => {
        this.lines[at] = `file ${fieldname} ${filename} ${h.digest('hex')}`;
        this.pending--;
        cb();
      },
    });
    source.on('error', (err) => tee.destroy(err));
    source.pipe(tee);
    // handlers read the multipart parser's own flags
    Object.defineProperty(tee, 'truncated', { get: () => (source as Readable & { truncated?: boolean }).truncated });
    return tee;
  }

  /** The fingerprint, or null while a file is unread. */
  value(): string | null {
    if (this.pending > 0 || this.lines.includes(null)) return null;
    return `multipart:${sha256([this.head, ...this.lines].join('\n'))}`;
  }
}

/** The request's parts as the handler reads them, each taken into `digest`. */
async function* digesting(parts: AsyncIterableIterator<Multipart>, digest: MultipartDigest): AsyncGenerator<Multipart> {
  for await (const part of parts) {
    if (part.type === 'file') yield { ...part, file: digest.file(part.fieldname, part.filename, part.file) } as Multipart;
    else {
      digest.field(part.fieldname, part.value);
      yield part;
    }
  }
}

export class Idempotency {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlMs: number,
  ) {}

  /** onRequest: a malformed key is refused before anything else is looked at. */
  readonly checkHeader = async (req: FastifyRequest): Promise<void> => {
    const raw = req.headers['idempotency-key'];
    if (raw !== undefined && (typeof raw !== 'string' || !KEY_PATTERN.test(raw))) {
      throw new CrucibleError('invalid_request', 'Idempotency-Key must be 1 to 255 printable ASCII characters', 'idempotency-key');
    }
  };

  /** preHandler: takes the key, or answers with the kept answer. */
  readonly preHandler = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (req.method !== 'POST') return;
    const raw = req.headers['idempotency-key'];
    if (typeof raw !== 'string') return;
    const redisKey = `${this.prefix}:idem:${req.actor.projectId}:${sha256(raw)}`;
    const multipart = req.isMultipart();
    const fingerprint = multipart ? 'multipart' : fingerprintOf(req);
    const running: Stored = { state: 'running', fingerprint };
    const taken = await this.redis.set(redisKey, JSON.stringify(running), 'PX', RUNNING_TTL_MS, 'NX');
    if (taken === 'OK') {
      const held: Held = { redisKey, fingerprint, settled: false };
      req.idempotency = held;
      if (multipart) {
        const content = new MultipartDigest(`${req.method} ${req.url}`);
        const parts = req.parts.bind(req);
        req.parts = ((options?: Parameters<typeof parts>[0]) => digesting(parts(options), content)) as typeof req.parts;
        held.content = content;
      }
      // a streamed (hijacked) answer never passes onSend: its key is released when it ends
      reply.raw.once('close', () => {
        if (held.settled) return;
        held.settled = true;
        void this.redis.del(redisKey).catch(() => {});
      });
      return;
    }
    const kept = JSON.parse((await this.redis.get(redisKey)) ?? 'null') as Stored | null;
    if (!kept) throw new CrucibleError('idempotency_key_in_use', 'a request with this Idempotency-Key just ended; retry', 'idempotency-key');
    if (kept.state === 'running') {
      throw new CrucibleError('idempotency_key_in_use', 'a request with this Idempotency-Key is still running; retry when it is done', 'idempotency-key');
    }
    // a multipart replay is compared by its content: read it here (the handler does not run)
    const theirs = multipart && kept.fingerprint.startsWith('multipart:') ? await this.readDigest(req) : fingerprint;
    if (kept.fingerprint !== theirs) {
      throw new CrucibleError('idempotency_key_reused', 'this Idempotency-Key was used with a different request (method, path or body)', 'idempotency-key');
    }
    reply.header('idempotent-replayed', 'true');
    if (kept.contentType) reply.header('content-type', kept.contentType);
    await reply.status(kept.status ?? 200).send(kept.body ?? '');
  };

  private async readDigest(req: FastifyRequest): Promise<string | null> {
    const digest = new MultipartDigest(`${req.method} ${req.url}`);
    for await (const part of digesting(req.parts(), digest)) {
      if (part.type === 'file') for await (const _ of part.file) void _;
    }
    return digest.value();
  }

  /** onSend: keeps a 2xx/4xx answer; releases the key after a 5xx. */
  readonly onSend = async (req: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> => {
    const held = req.idempotency;
    if (!held || held.settled) return payload;
    held.settled = true;
    const status = reply.statusCode;
    if (status >= 500 || status === 429 || (typeof payload !== 'string' && !Buffer.isBuffer(payload))) {
      await this.redis.del(held.redisKey).catch(() => {});
      return payload;
    }
    const fingerprint = held.content ? held.content.value() : held.fingerprint;
    if (fingerprint === null) {
      // answered before its parts were all read (a refusal): nothing to compare a replay with
      await this.redis.del(held.redisKey).catch(() => {});
      return payload;
    }
    const kept: Stored = {
      state: 'done',
      fingerprint,
      status,
      contentType: String(reply.getHeader('content-type') ?? 'application/json; charset=utf-8'),
      body: withoutSecrets(String(payload)),
    };
    await this.redis.set(held.redisKey, JSON.stringify(kept), 'PX', this.ttlMs).catch(() => {});
    return payload;
  };
}

/** Fields that hold a secret shown once: an API key's `secret`, a webhook endpoint's `signing_secret`. */
const SECRET_FIELDS = ['secret', 'signing_secret'];

/** A JSON answer with every secret field removed (at any depth), and a note saying so; others as they are. */
export function withoutSecrets(body: string): string {
  if (!SECRET_FIELDS.some((f) => body.includes(`"${f}"`))) return body;
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return body;
  }
  let found = false;
  const stack: unknown[] = [doc];
  while (stack.length) {
    const v = stack.pop();
    if (!v || typeof v !== 'object') continue;
    if (Array.isArray(v)) stack.push(...v);
    else {
      const o = v as Record<string, unknown>;
      for (const f of SECRET_FIELDS) {
        if (typeof o[f] === 'string') {
          delete o[f];
          found = true;
        }
      }
      stack.push(...Object.values(o));
    }
  }
  if (!found || !doc || typeof doc !== 'object' || Array.isArray(doc)) return body;
  return JSON.stringify({
    ...(doc as Record<string, unknown>),
    secrets_withheld: 'this is a replay of an Idempotency-Key request: secrets are shown only in the first answer and are not kept',
  });
}
