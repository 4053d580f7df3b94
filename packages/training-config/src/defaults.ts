// The one set of training defaults. The trainer's defaultTrainConfig, the crucible-train CLI and
// the platform's job spec all read them from here.
import type { OptimizerConfig, ScheduleKind } from './types';

export const DEFAULT_OPTIMIZER: OptimizerConfig = { kind: 'adamw', beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 };

export const TRAINING_DEFAULTS = {
  /** Pretraining (pretrain, mlm) passes over its corpus once when n_epochs is auto. */
  nEpochs: 1,
  /**
   * n_epochs auto for fine-tuning (supervised, dpo, reinforcement), scaled with the data as
   * OpenAI's auto is: `epochs` passes, raised on small data until the run makes `minSteps`
   * optimizer steps (at most `maxEpochs`), lowered on large data so that it trains on at most
   * `maxExamples` examples (at least 1 pass).
   */
  autoEpochs: { epochs: 3, minSteps: 100, maxEpochs: 25, maxExamples: 25_000 },
  maxSteps: 2000,
  batchSize: 12,
  gradAccumSteps: 1,
  /** Recompute each layer in the backward pass instead of keeping its activations (llama architecture). */
  activationCheckpointing: false,
  /** Peak learning rate when training from scratch (pretrain, mlm). */
  learningRate: 1e-3,
  /** Peak learning rate of masked-LM pretraining (bert presets). */
  mlmLearningRate: 1e-3,
  /** Peak learning rate when fine-tuning every weight of a trained model. */
  fineTuneLearningRate: 1e-3,
  /** Peak learning rate when training LoRA matrices or adapters on frozen weights. */
  peftLearningRate: 5e-3,
  /** min_lr = learning rate x this. */
  minLearningRateRatio: 0.1,
  lrScheduler: 'cosine' as ScheduleKind,
  /** Warmup when neither steps nor a ratio is given: min(this, maxWarmupShare x steps). */
  maxWarmupSteps: 100,
  maxWarmupShare: 0.1,
  optimizer: DEFAULT_OPTIMIZER,
  maxGradNorm: 1,
  dropout: 0,
  evalInterval: 250,
  evalBatches: 20,
  logInterval: 10,
  /** Steps between checkpoints: a job whose worker dies resumes from the last one. */
  checkpointInterval: 250,
  seed: 1337,
  mlmProbability: 0.15,
  /** Share of the training data held out for validation when no validation file is given. */
  validationSplit: 0.1,
  /** Early stopping (when asked for): evaluations without improvement, and the improvement that counts. */
  earlyStoppingPatience: 3,
  earlyStoppingMinDelta: 0,
  /** DPO: how far the policy may move from the reference (the beta of the loss); TRL's default. */
  dpoBeta: 0.1,
  /** DPO: weight of the NLL on the preferred answers added to the loss (0: none). */
  dpoRpoAlpha: 0,
  /** Reinforcement (GRPO): completions sampled per prompt, the group whose rewards are compared. */
  grpoGroupSize: 8,
  /** Reinforcement: weight of the KL penalty to the starting model (TRL's original beta). */
  grpoKlBeta: 0.04,
  /** Reinforcement: the policy ratio's clip range (PPO's and TRL's epsilon). */
  grpoClipEpsilon: 0.2,
  /** Reinforcement: sampling temperature and the longest completion, in tokens. */
  grpoTemperature: 1,
  grpoMaxCompletionTokens: 64,
  /** Reinforcement: completions sampled per validation prompt at each evaluation. */
  grpoEvalSamples: 1,
} as const;

/** Warmup steps for a run of `maxSteps` when none were asked for. */
export function defaultWarmupSteps(maxSteps: number): number {
  return Math.min(TRAINING_DEFAULTS.maxWarmupSteps, Math.floor(maxSteps * TRAINING_DEFAULTS.maxWarmupShare));
}

/**
 * Masked LMs start on short windows (see TrainConfig.shortWindows): 32 tokens for the first 25% of
 * the steps, then windows that grow to the full length by 50%. On bert-mini and Tiny Shakespeare
 * this ends the plateau at the most-frequent-token level by step ~300 instead of ~800
 * (BENCHMARKS.md, "Masked-LM plateau").
 */
export const MLM_SHORT_WINDOWS = { seqLen: 32, holdShare: 0.25, share: 0.5 } as const;

export function defaultShortWindows(maxSteps: number, seqLen: number): { seqLen: number; steps: number; holdSteps: number } | undefined {
  if (seqLen <= MLM_SHORT_WINDOWS.seqLen) return undefined;
  return {
    seqLen: MLM_SHORT_WINDOWS.seqLen,
    steps: Math.round(maxSteps * MLM_SHORT_WINDOWS.share),
    holdSteps: Math.round(maxSteps * MLM_SHORT_WINDOWS.holdShare),
  };
}
