// One set of defaults: a job that sets nothing trains with exactly the trainer's own defaults.
import { finalizeSchedule, resolveHyperparameters, trainConfigFor } from '@crucible/domain';
import { defaultTrainConfig, modelConfig } from '@crucible/trainer';
import { describe, expect, it } from 'vitest';

describe('the job spec maps onto the trainer config', () => {
  it('gives the trainer defaults when a pretraining job sets nothing', () => {
    const spec = resolveHyperparameters('pretrain', { kind: 'preset', name: 'gpt-nano' });
    const schedule = finalizeSchedule({ ...spec, max_steps: 2000 }, { size: 1_000_000, examples: 1000 });
    const fromJob = trainConfigFor(spec, 'pretrain', schedule, 1337);
    expect(fromJob).toEqual(defaultTrainConfig(modelConfig('gpt-nano', 70), { maxSteps: 2000 }));
  });

  it('passes every hyperparameter through', () => {
    const spec = resolveHyperparameters(
      'mlm',
      { kind: 'preset', name: 'bert-mini' },
      {
        batch_size: 3,
        block_size: 32,
        beta1: 0.8,
        beta2: 0.9,
        weight_decay: 0.01,
        optimizer: 'lamb',
        lr_scheduler: 'linear',
        max_grad_norm: 0,
        log_interval: 7,
      },
    );
    const c = trainConfigFor(spec, 'mlm', { maxSteps: 50, warmupSteps: 4 }, 9);
    expect(c).toMatchObject({
      objective: 'mlm',
      batchSize: 3,
      seqLen: 32,
      maxGradNorm: 0,
      logInterval: 7,
      seed: 9,
      schedule: { kind: 'linear', warmupSteps: 4, decaySteps: 50 },
      optimizer: { kind: 'lamb', beta1: 0.8, beta2: 0.9, weightDecay: 0.01 },
    });
  });
});
