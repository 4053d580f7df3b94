// Learning-rate schedules: linear warmup, then cosine decay to min_lr (nanoGPT's), linear decay,
// or constant. Pure functions of the step, so a resumed run gets the same rates.

export type ScheduleKind = 'cosine' | 'linear' | 'constant';

export interface ScheduleConfig {
  kind: ScheduleKind;
  /** Peak learning rate. */
  lr: number;
  /** Floor the decay ends at. Default lr / 10. */
  minLr: number;
  /** Steps of linear warmup from lr / (warmup + 1) up to lr. */
  warmupSteps: number;
  /** Step where decay reaches min_lr (usually max_steps). */
  decaySteps: number;
}

export function learningRate(step: number, s: ScheduleConfig): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / (s.warmupSteps + 1);
  if (s.kind === 'constant') return s.lr;
  if (step >= s.decaySteps) return s.minLr;
  const ratio = (step - s.warmupSteps) / Math.max(1, s.decaySteps - s.warmupSteps);
  const coeff = s.kind === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * ratio)) : 1 - ratio;
  return s.minLr + coeff * (s.lr - s.minLr);
}
