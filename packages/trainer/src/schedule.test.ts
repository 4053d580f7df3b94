import { describe, expect, it } from 'vitest';
import { learningRate, type ScheduleConfig } from './schedule';

const base: ScheduleConfig = { kind: 'cosine', lr: 1e-3, minLr: 1e-4, warmupSteps: 100, decaySteps: 2000 };

describe('learning-rate schedules', () => {
  it.each([
    // warmup: lr * (step + 1) / (warmup + 1)
    [0, 1e-3 / 101],
    [50, (1e-3 * 51) / 101],
    [99, (1e-3 * 100) / 101],
    // cosine from step 100 to 2000: min + 0.5 (1 + cos(pi r)) (lr - min)
    [100, 1e-3],
    [1050, 1e-4 + 0.5 * 9e-4], // r = 0.5 -> halfway
    [575, 1e-4 + 0.5 * (1 + Math.cos(Math.PI * 0.25)) * 9e-4],
    [2000, 1e-4],
    [5000, 1e-4],
  ])('cosine at step %i', (step, want) => {
    expect(learningRate(step, base)).toBeCloseTo(want, 12);
  });

  it('linear decays in a straight line and constant stays flat after warmup', () => {
    const lin = { ...base, kind: 'linear' as const };
    expect(learningRate(1050, lin)).toBeCloseTo(1e-4 + 0.5 * 9e-4, 12);
    expect(learningRate(1525, lin)).toBeCloseTo(1e-4 + 0.25 * 9e-4, 12);
    const flat = { ...base, kind: 'constant' as const };
    expect(learningRate(1999, flat)).toBe(1e-3);
    expect(learningRate(10, flat)).toBeCloseTo((1e-3 * 11) / 101, 12);
  });
});
