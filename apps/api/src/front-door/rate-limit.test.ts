import { describe, expect, it } from 'vitest';
import { retryAfter } from './rate-limit';

const W = 60_000;

/**
 * The wait found by stepping the clock forward 10 ms at a time and recomputing the sliding-window
 * estimate with the retried request counted in (nothing else meanwhile): an independent check of
 * the closed form.
 */
function simulated(limit: number, current: number, previous: number, elapsed: number): number {
  for (let t = 0; t < 3 * W; t += 10) {
    const at = elapsed + t;
    const estimate = at < W ? previous * (1 - at / W) + current + 1 : current * (1 - (at - W) / W) + 1;
    if (estimate <= limit + 1e-9) return t;
  }
  throw new Error('never');
}

describe('retryAfter', () => {
  it.each([
    [10, 10, 20, 15_000],
    [10, 3, 50, 1_000],
    [100, 150, 0, 30_000],
    [5, 6, 6, 59_000],
    [60, 61, 100, 0],
    [60, 60, 0, 12_000],
    [1, 1, 1, 30_000],
    [10, 9, 10, 59_999],
  ])('limit %i, current %i, previous %i, %i ms into the window', (limit, current, previous, elapsed) => {
    const expected = Math.max(1, Math.ceil(simulated(limit, current, previous, elapsed) / 1000));
    // the closed form may round up by at most a second more than the 10 ms simulation
    const got = retryAfter(limit, current, previous, elapsed);
    expect(got).toBeGreaterThanOrEqual(expected);
    expect(got).toBeLessThanOrEqual(expected + 1);
  });
});
