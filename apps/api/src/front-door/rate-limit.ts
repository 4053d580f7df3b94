// Requests per minute per API key, counted in Redis so that the limit holds across API
// processes. A sliding window approximated from two fixed one-minute windows: the previous
// window's count weighted by how much of it still overlaps the last 60 s, plus the current one.
import { RetryLaterError } from '@crucible/domain';
import type { Redis } from 'ioredis';

const WINDOW_MS = 60_000;

export interface RateDecision {
  limit: number;
  remaining: number;
  /** Seconds until a request would be let through (when refused). */
  retryAfter: number;
  allowed: boolean;
  /** Redis could not be asked: the request was let through uncounted. */
  degraded?: boolean;
}

export class RateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /**
   * Counts one request of the key. A refused request is not counted (it takes nothing), so a client
   * that waits Retry-After is admitted. When Redis cannot be reached the request is let through
   * (`degraded`): jobs live in PostgreSQL and the API keeps serving through a Redis outage.
   */
  async take(keyId: string, limit: number, now = Date.now()): Promise<RateDecision> {
    const window = Math.floor(now / WINDOW_MS);
    const cur = `${this.prefix}:rl:${keyId}:${window}`;
    const prev = `${this.prefix}:rl:${keyId}:${window - 1}`;
    const r = await this.redis
      .multi()
      .incr(cur)
      .pexpire(cur, 2 * WINDOW_MS)
      .get(prev)
      .exec()
      .catch(() => null);
    if (!r) return { limit, remaining: limit, retryAfter: 0, allowed: true, degraded: true };
    const current = Number(r?.[0]?.[1] ?? 0);
    const previous = Number(r?.[2]?.[1] ?? 0);
    const elapsed = now - window * WINDOW_MS;
    const estimate = previous * (1 - elapsed / WINDOW_MS) + current;
    if (estimate <= limit) return { limit, remaining: Math.max(0, Math.floor(limit - estimate)), retryAfter: 0, allowed: true };
    await this.redis.decr(cur).catch(() => {});
    return { limit, remaining: 0, retryAfter: retryAfter(limit, current - 1, previous, elapsed), allowed: false };
  }

  /** Whether one more request of the key would be refused now (nothing is counted). */
  async wouldRefuse(keyId: string, limit: number, now = Date.now()): Promise<RateDecision | null> {
    const window = Math.floor(now / WINDOW_MS);
    const r = await this.redis.mget(`${this.prefix}:rl:${keyId}:${window}`, `${this.prefix}:rl:${keyId}:${window - 1}`).catch(() => null);
    if (!r) return null;
    const [current, previous] = r.map((x) => Number(x ?? 0)) as [number, number];
    const elapsed = now - window * WINDOW_MS;
    if (previous * (1 - elapsed / WINDOW_MS) + current + 1 <= limit) return null;
    return { limit, remaining: 0, retryAfter: retryAfter(limit, current, previous, elapsed), allowed: false };
  }
}

/**
 * Seconds until one more request is admitted: previous x (1 - t/W) + current + 1 <= limit within
 * this window, or current x (1 - t/W) + 1 <= limit in the next (where this window's count fades).
 * `current` counts the admitted requests of this window.
 */
export function retryAfter(limit: number, current: number, previous: number, elapsed: number): number {
  let waitMs = Number.POSITIVE_INFINITY;
  if (current + 1 <= limit && previous > 0) waitMs = Math.max(0, WINDOW_MS * (1 - (limit - current - 1) / previous) - elapsed);
  if (elapsed + waitMs >= WINDOW_MS) {
    const intoNext = current + 1 > limit ? WINDOW_MS * (1 - (limit - 1) / current) : 0;
    waitMs = WINDOW_MS - elapsed + intoNext;
  }
  return Math.max(1, Math.ceil(waitMs / 1000));
}

export function rateLimited(d: RateDecision, what = 'this API key'): RetryLaterError {
  return new RetryLaterError('rate_limited', `rate limit of ${d.limit} requests per minute for ${what} reached; retry in ${d.retryAfter} s`, d.retryAfter);
}
