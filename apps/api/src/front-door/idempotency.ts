// Idempotency-Key on every POST: the first request with a key runs and its answer (2xx or 4xx) is
// kept in Redis for IDEMPOTENCY_TTL_MS; a retry with the same key and the same request gets that
// answer again (header `idempotent-replayed: true`) and creates nothing. The same key with another
// request is refused (422), and so is a retry while the first is still running (409). A 5xx, or an
// answer that is streamed (SSE), is not kept: the key is released and a retry runs again.
import { createHash } from 'node:crypto';
import { CrucibleError } from '@crucible/domain';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';

/** A request whose key was taken: where its answer goes. */
interface Held {
  redisKey: string;
  fingerprint: string;
  settled: boolean;
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
  // multipart bodies are streamed to the handler: their size and type stand for them
  const body = req.isMultipart() ? `multipart:${req.headers['content-length'] ?? ''}` : JSON.stringify(req.body ?? null);
  return sha256(`${req.method} ${req.url}\n${body}`);
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
    const fingerprint = fingerprintOf(req);
    const running: Stored = { state: 'running', fingerprint };
    const taken = await this.redis.set(redisKey, JSON.stringify(running), 'PX', RUNNING_TTL_MS, 'NX');
    if (taken === 'OK') {
      const held: Held = { redisKey, fingerprint, settled: false };
      req.idempotency = held;
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
    if (kept.fingerprint !== fingerprint) {
      throw new CrucibleError('idempotency_key_reused', 'this Idempotency-Key was used with a different request (method, path or body)', 'idempotency-key');
    }
    if (kept.state === 'running') {
      throw new CrucibleError('idempotency_key_in_use', 'a request with this Idempotency-Key is still running; retry when it is done', 'idempotency-key');
    }
    reply.header('idempotent-replayed', 'true');
    if (kept.contentType) reply.header('content-type', kept.contentType);
    await reply.status(kept.status ?? 200).send(kept.body ?? '');
  };

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
    const kept: Stored = {
      state: 'done',
      fingerprint: held.fingerprint,
      status,
      contentType: String(reply.getHeader('content-type') ?? 'application/json; charset=utf-8'),
      body: String(payload),
    };
    await this.redis.set(held.redisKey, JSON.stringify(kept), 'PX', this.ttlMs).catch(() => {});
    return payload;
  };
}
