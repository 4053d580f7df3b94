import { describe, expect, it } from 'vitest';
import { inRange, valuesAt, yDomain } from './LineChart';

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

describe('hover and zoom', () => {
  const series = [
    {
      name: 'train',
      color: 'red',
      points: [
        [0, 4],
        [10, 3],
        [20, 2],
        [30, 1],
      ] as [number, number][],
    },
    {
      name: 'validation',
      color: 'blue',
      points: [
        [10, 3.5],
        [30, 1.5],
      ] as [number, number][],
    },
  ];
  it('reads each series at the nearest step (– where a series has no point there)', () => {
    expect(valuesAt(series, 12)).toEqual({
      step: 10,
      values: [
        { name: 'train', value: 3 },
        { name: 'validation', value: 3.5 },
      ],
    });
    expect(valuesAt(series, 19)).toEqual({
      step: 20,
      values: [
        { name: 'train', value: 2 },
        { name: 'validation', value: null },
      ],
    });
    expect(valuesAt([], 5)).toBeNull();
  });
  it('keeps the points within a range, given either way round', () => {
    expect(inRange(series, [25, 5]).map((s) => s.points)).toEqual([
      [
        [10, 3],
        [20, 2],
      ],
      [[10, 3.5]],
    ]);
    expect(inRange(series, null)).toBe(series);
  });
});
