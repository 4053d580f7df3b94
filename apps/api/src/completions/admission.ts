// Fair inference: a project has at most MAX_CONCURRENT_INFERENCE requests in flight (queued or
// generating), counted in Redis across API processes, and each request's queue priority is its
// place among its project's requests in flight (1 for a project's first, 2 for its second, ...).
// Workers take the lowest number first and, within a number, the oldest: a project flooding the
// queue cannot starve another, whose next request goes ahead of the flood's second and later ones.
import type { Redis } from 'ioredis';

// ZREMRANGEBYSCORE drops entries of requests whose API process died (their score is their deadline)
const ADMIT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[3]) then return -n end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return n + 1`;

export type Admission = { admitted: true; priority: number } | { admitted: false; inFlight: number };

export class InferenceAdmission {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(projectId: string): string {
    return `${this.prefix}:inflight:${projectId}`;
  }

  /**
   * Takes a place for request `id` (held at most `ttlMs`). While Redis cannot be reached the
   * request is admitted uncounted (its enqueue will fail on its own).
   */
  async admit(projectId: string, id: string, cap: number, ttlMs: number, now = Date.now()): Promise<Admission> {
    const r = (await this.redis.eval(ADMIT, 1, this.key(projectId), now, now + ttlMs, cap, id, ttlMs).catch(() => 1)) as number;
    return r > 0 ? { admitted: true, priority: Math.min(r, 2 ** 21 - 1) } : { admitted: false, inFlight: -r };
  }

  async release(projectId: string, id: string): Promise<void> {
    await this.redis.zrem(this.key(projectId), id).catch(() => {});
  }
}
