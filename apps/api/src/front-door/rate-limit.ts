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
   * Counts one request of the key. When Redis cannot be reached the request is let through
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
    const allowed = estimate <= limit;
    return { limit, remaining: Math.max(0, Math.floor(limit - estimate)), retryAfter: allowed ? 0 : retryAfter(limit, current, previous, elapsed), allowed };
  }
}

/** Seconds until previous x (1 - t/W) + current falls to the limit again (the next window starts from this one's count). */
export function retryAfter(limit: number, current: number, previous: number, elapsed: number): number {
  let waitMs: number;
  if (current <= limit && previous > 0) {
    // within this window: the previous window's weight has to fall
    waitMs = WINDOW_MS * (1 - (limit - current) / previous) - elapsed;
  } else {
    // only in the next window, where this window's count is the one that fades
    waitMs = WINDOW_MS - elapsed + WINDOW_MS * (1 - limit / Math.max(current, 1));
  }
  return Math.max(1, Math.ceil(waitMs / 1000));
}

export function rateLimited(d: RateDecision): RetryLaterError {
  return new RetryLaterError('rate_limited', `rate limit of ${d.limit} requests per minute for this API key reached; retry in ${d.retryAfter} s`, d.retryAfter);
}
