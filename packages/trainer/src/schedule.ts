// Learning-rate schedules: linear warmup, then cosine decay to min_lr (nanoGPT's), linear decay,
// or constant. Pure functions of the step, so a resumed run gets the same rates.

import type { ScheduleConfig, ScheduleKind } from '@crucible/training-config';

export type { ScheduleConfig, ScheduleKind };

export function learningRate(step: number, s: ScheduleConfig): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / (s.warmupSteps + 1);
  if (s.kind === 'constant') return s.lr;
  if (step >= s.decaySteps) return s.minLr;
  const ratio = (step - s.warmupSteps) / Math.max(1, s.decaySteps - s.warmupSteps);
  const coeff = s.kind === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * ratio)) : 1 - ratio;
  return s.minLr + coeff * (s.lr - s.minLr);
}
