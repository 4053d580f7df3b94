// The shape of a training run's configuration (no tensors, no I/O): what the trainer runs and
// what the platform maps a job's hyperparameters to.

export type Objective = 'causal' | 'mlm';
export type OptimizerKind = 'adamw' | 'adam' | 'lamb';
export type ScheduleKind = 'cosine' | 'linear' | 'constant';

export interface OptimizerConfig {
  kind: OptimizerKind;
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay (AdamW, LAMB), or L2 added to the gradient (Adam). Never on biases or LayerNorm. */
  weightDecay: number;
}

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

export interface TrainConfig {
  objective: Objective;
  /** Optimizer steps to run. */
  maxSteps: number;
  /** Sequences per micro-batch (B). */
  batchSize: number;
  /** Tokens per sequence (T); at most the model's block_size. Default: block_size. */
  seqLen: number;
  /** Micro-batches whose gradients are averaged into one step. */
  gradAccumSteps: number;
  schedule: ScheduleConfig;
  optimizer: OptimizerConfig;
  /** Clip the global gradient norm to this; 0 disables. */
  maxGradNorm: number;
  /** Evaluate every this many steps (and at the end); 0 = only at the end. */
  evalInterval: number;
  /** Validation batches per evaluation. */
  evalBatches: number;
  /** Call onStep every this many steps. */
  logInterval: number;
  /** Call onCheckpoint every this many steps (and at the end); 0 = only at the end. */
  checkpointInterval: number;
  seed: number;
  /** Masked-LM selection probability. */
  mlmProbability: number;
}
