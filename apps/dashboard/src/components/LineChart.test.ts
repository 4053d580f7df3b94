import { describe, expect, it } from 'vitest';
import { yDomain } from './LineChart';

describe('a chart’s y axis', () => {
  it('never goes below 0 for values that never do, even a single point', () => {
    const [lo, hi] = yDomain([1e-4]);
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(lo).toBeLessThan(1e-4);
    expect(hi).toBeGreaterThan(1e-4);
    expect(yDomain([0])).toEqual([0, 1]);
    expect(yDomain([0.5, 2])).toEqual([0.5, 2]);
  });

  it('keeps negative values and log axes as they are, and an empty axis at [0, 1]', () => {
    expect(yDomain([-3, 1])).toEqual([-3, 1]);
    expect(yDomain([-2])).toEqual([-2.2, -1.8]);
    const [lo] = yDomain([-4], true); // log10 of 1e-4
    expect(lo).toBeCloseTo(-4.4, 10);
    expect(yDomain([])).toEqual([0, 1]);
  });
});
