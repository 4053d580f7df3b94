// A job's training spec: the request's method and hyperparameters with every default filled in
// once, at creation (the defaults are the trainer's, from @crucible/training-config). Values that
// depend on the data (max_steps from n_epochs, warmup from a ratio) are finished by
// `finalizeSchedule` once the worker knows how many tokens the dataset has, and `trainConfigFor`
// is the single mapping from a spec to the trainer's config.

import {
  type Architecture,
  TRAINING_DEFAULTS as D,
  DECODER_LORA_TARGETS,
  defaultShortWindows,
  defaultWarmupSteps,
  isCausal,
  isPreset,
  LORA_TARGETS,
  PEFT_DEFAULTS,
  type PeftConfig,
  PRECISIONS,
  PRESETS,
  type Precision,
  type PresetName,
  type TrainConfig,
} from '@crucible/training-config';
import type { ChatLoss } from '../datasets';
import { CrucibleError } from '../errors';
import { compileGrader } from '../graders/grade';
import type { Grader } from '../schemas/graders';
import type { Hyperparameters, MethodType, Peft } from '../schemas/jobs';

export interface ResolvedHyperparameters {
  /** auto until the worker knows the data's size (autoEpochs); then the passes it chose. */
  n_epochs: number | 'auto';
  batch_size: number;
  learning_rate_multiplier: number;
  max_steps: number | null;
  learning_rate: number;
  min_learning_rate: number;
  lr_scheduler: 'cosine' | 'linear' | 'constant';
  warmup_steps: number | null;
  warmup_ratio: number | null;
  optimizer: 'adamw' | 'adam' | 'lamb';
  weight_decay: number;
  beta1: number;
  beta2: number;
  max_grad_norm: number;
  gradient_accumulation_steps: number;
  activation_checkpointing: boolean;
  block_size: number;
  dropout: number;
  eval_interval: number;
  eval_batches: number;
  checkpoint_interval: number;
  log_interval: number;
  tokenizer: { type: 'char' } | { type: 'bpe'; vocab_size: number } | { type: 'inherited' };
  /** Chat data: which tokens carry loss. */
  chat_loss: ChatLoss;
  /** LoRA or bottleneck adapters on frozen base weights; null trains every weight. */
  peft: PeftConfig | null;
  early_stopping: { patience: number; min_delta: number } | null;
  model_selection: 'last' | 'best';
  validation_split: number;
  validation_split_seed: number | null;
  /** supervised: whole examples packed per sequence (absent: false). */
  packing?: boolean;
  /** The DPO loss's settings (method dpo); absent or null otherwise. */
  dpo?: { beta: number; rpo_alpha: number; length_normalize: boolean } | null;
  /** The reinforcement method's grader and GRPO settings; absent or null otherwise. */
  reinforcement?: ReinforcementSettings | null;
}

export interface ReinforcementSettings {
  grader: Grader;
  /** Answers sampled per prompt: group_size x compute_multiplier, at least 2. */
  group_size: number;
  kl_beta: number;
  temperature: number;
  max_completion_tokens: number;
  eval_samples: number;
  compute_multiplier: number;
}

/** Hyperparameters only one method takes. */
const METHOD_ONLY: Array<[keyof Hyperparameters, MethodType, string]> = [
  ['chat_loss', 'supervised', 'supervised jobs on chat data'],
  ['packing', 'supervised', 'supervised jobs'],
  ['beta', 'dpo', 'dpo jobs'],
  ['rpo_alpha', 'dpo', 'dpo jobs'],
  ['length_normalize', 'dpo', 'dpo jobs'],
  ['group_size', 'reinforcement', 'reinforcement jobs'],
  ['kl_beta', 'reinforcement', 'reinforcement jobs'],
  ['temperature', 'reinforcement', 'reinforcement jobs'],
  ['max_completion_tokens', 'reinforcement', 'reinforcement jobs'],
  ['eval_samples', 'reinforcement', 'reinforcement jobs'],
  ['compute_multiplier', 'reinforcement', 'reinforcement jobs'],
  ['reasoning_effort', 'reinforcement', 'reinforcement jobs'],
];

/** The methods that start from trained weights (never from a preset). */
const FROM_TRAINED: readonly MethodType[] = ['supervised', 'dpo', 'reinforcement'];

/**
 * What the job starts from: a preset (trained from scratch), or trained weights: a model of the
 * project (trained or imported) or a checkpoint of one of its jobs.
 */
export type BaseModel =
  | { kind: 'preset'; name: PresetName }
  | { kind: 'trained'; id: string; arch: Architecture; blockSize: number; source: 'model' | 'checkpoint'; adapters?: boolean };

/** Whether a base of this architecture can run the method: mlm needs an encoder, the rest a causal decoder. */
export function methodFits(method: MethodType, arch: Architecture): boolean {
  return method === 'mlm' ? arch === 'bert' : isCausal(arch);
}

/** Checks that the method fits the base model and fills in every default. Throws CrucibleError. */
export function resolveHyperparameters(
  method: MethodType,
  base: BaseModel,
  hp: Hyperparameters = {},
  peftRequest?: Peft,
  grader?: Grader,
): ResolvedHyperparameters {
  const p = (name: string) => `method.${method}.hyperparameters.${name}`;
  const arch = base.kind === 'preset' ? PRESETS[base.name].arch : base.arch;
  if (FROM_TRAINED.includes(method) && base.kind !== 'trained') {
    throw new CrucibleError(
      'unsupported_method',
      `${method === 'supervised' ? 'supervised fine-tuning' : method} starts from trained weights; ${base.kind === 'preset' ? base.name : ''} is a preset (pretrain it first, or import a model)`,
      'model',
    );
  }
  if (base.kind === 'trained' && base.adapters) {
    throw new CrucibleError(
      'unsupported_method',
      `${base.id} carries bottleneck adapters, which cannot be merged into its weights; start from its base model instead`,
      'model',
    );
  }
  const peft = resolvePeft(peftRequest, base, method);
  if (!methodFits(method, arch)) {
    throw new CrucibleError(
      'unsupported_method',
      `method ${method} needs a ${method === 'mlm' ? 'bert' : 'causal (gpt or llama)'} model; this model is ${arch}`,
      'model',
    );
  }
  const maxBlock = base.kind === 'preset' ? Number.POSITIVE_INFINITY : base.blockSize;
  const presetBlock = base.kind === 'preset' ? PRESETS[base.name].blockSize : base.blockSize;
  const block = hp.block_size ?? presetBlock;
  if (block > maxBlock)
    throw new CrucibleError('invalid_hyperparameters', `block_size ${block} exceeds the base model's context of ${maxBlock}`, p('block_size'));
  const mult = hp.learning_rate_multiplier === undefined || hp.learning_rate_multiplier === 'auto' ? 1 : hp.learning_rate_multiplier;
  const lr = (hp.learning_rate ?? defaultLearningRate(method, base, peft)) * mult;
  if (lr > 1) throw new CrucibleError('invalid_hyperparameters', `learning_rate x multiplier = ${lr} is above 1`, p('learning_rate_multiplier'));
  const minLr = hp.min_learning_rate ?? lr * D.minLearningRateRatio;
  if (minLr > lr) throw new CrucibleError('invalid_hyperparameters', `min_learning_rate ${minLr} is above the learning rate ${lr}`, p('min_learning_rate'));
  if (base.kind === 'trained' && hp.tokenizer) {
    throw new CrucibleError('invalid_hyperparameters', 'a job that starts from trained weights reuses their tokenizer', p('tokenizer'));
  }
  if (hp.activation_checkpointing && arch !== 'llama') {
    throw new CrucibleError(
      'invalid_hyperparameters',
      `activation_checkpointing applies to llama-architecture models (Llama, Qwen, SmolLM); this model is ${arch}`,
      p('activation_checkpointing'),
    );
  }
  for (const [name, only, what] of METHOD_ONLY) {
    if (hp[name] !== undefined && method !== only) throw new CrucibleError('invalid_hyperparameters', `${name} applies to ${what}`, p(name));
  }
  const evalInterval = hp.eval_interval === undefined || hp.eval_interval === 'auto' ? D.evalInterval : hp.eval_interval;
  if ((hp.early_stopping || hp.model_selection === 'best') && evalInterval === 0) {
    throw new CrucibleError(
      'invalid_hyperparameters',
      'early stopping and model_selection "best" need evaluations during training (eval_interval > 0)',
      p('eval_interval'),
    );
  }
  if (hp.warmup_steps !== undefined && hp.max_steps !== undefined && hp.warmup_steps > hp.max_steps) {
    throw new CrucibleError('invalid_hyperparameters', `warmup_steps ${hp.warmup_steps} exceeds max_steps ${hp.max_steps}`, p('warmup_steps'));
  }
  return {
    n_epochs: hp.n_epochs === undefined || hp.n_epochs === 'auto' ? (isFineTuning(method) ? 'auto' : D.nEpochs) : hp.n_epochs,
    batch_size: hp.batch_size === undefined || hp.batch_size === 'auto' ? D.batchSize : hp.batch_size,
    learning_rate_multiplier: mult,
    max_steps: hp.max_steps ?? null,
    learning_rate: lr,
    min_learning_rate: minLr,
    lr_scheduler: hp.lr_scheduler ?? D.lrScheduler,
    warmup_steps: hp.warmup_steps ?? null,
    warmup_ratio: hp.warmup_ratio ?? null,
    optimizer: hp.optimizer ?? D.optimizer.kind,
    weight_decay: hp.weight_decay ?? D.optimizer.weightDecay,
    beta1: hp.beta1 ?? D.optimizer.beta1,
    beta2: hp.beta2 ?? D.optimizer.beta2,
    max_grad_norm: hp.max_grad_norm ?? D.maxGradNorm,
    gradient_accumulation_steps: hp.gradient_accumulation_steps ?? D.gradAccumSteps,
    activation_checkpointing: hp.activation_checkpointing ?? D.activationCheckpointing,
    block_size: block,
    dropout: hp.dropout ?? D.dropout,
    eval_interval: evalInterval,
    eval_batches: hp.eval_batches ?? D.evalBatches,
    checkpoint_interval: hp.checkpoint_interval ?? D.checkpointInterval,
    log_interval: hp.log_interval ?? D.logInterval,
    tokenizer: base.kind === 'trained' ? { type: 'inherited' } : (hp.tokenizer ?? { type: 'char' }),
    chat_loss: hp.chat_loss ?? 'assistant',
    peft,
    early_stopping: hp.early_stopping
      ? { patience: hp.early_stopping.patience ?? D.earlyStoppingPatience, min_delta: hp.early_stopping.min_delta ?? D.earlyStoppingMinDelta }
      : null,
    model_selection: hp.model_selection ?? 'last',
    validation_split: hp.validation_split ?? D.validationSplit,
    validation_split_seed: hp.validation_split_seed ?? null,
    packing: hp.packing ?? false,
    dpo:
      method === 'dpo'
        ? {
            beta: hp.beta === undefined || hp.beta === 'auto' ? D.dpoBeta : hp.beta,
            rpo_alpha: hp.rpo_alpha ?? D.dpoRpoAlpha,
            length_normalize: hp.length_normalize ?? false,
          }
        : null,
    reinforcement: method === 'reinforcement' ? reinforcementSettings(hp, grader) : null,
  };
}

/** A reinforcement job's grader (compiled to check it: unsupported_grader, invalid_grader) and GRPO settings. */
function reinforcementSettings(hp: Hyperparameters, grader: Grader | undefined): ReinforcementSettings {
  if (!grader) throw new CrucibleError('invalid_grader', 'a reinforcement job needs a grader', 'method.reinforcement.grader');
  compileGrader(grader);
  if (hp.reasoning_effort !== undefined && hp.reasoning_effort !== 'default') {
    throw new CrucibleError(
      'unsupported_parameter',
      `reasoning_effort ${hp.reasoning_effort} applies to OpenAI's reasoning models; the models trained here take no reasoning effort (leave it out or use default)`,
      'method.reinforcement.hyperparameters.reasoning_effort',
    );
  }
  const multiplier = hp.compute_multiplier === undefined || hp.compute_multiplier === 'auto' ? 1 : hp.compute_multiplier;
  return {
    grader,
    group_size: Math.max(2, Math.round((hp.group_size ?? D.grpoGroupSize) * multiplier)),
    kl_beta: hp.kl_beta ?? D.grpoKlBeta,
    temperature: hp.temperature ?? D.grpoTemperature,
    max_completion_tokens: hp.max_completion_tokens ?? D.grpoMaxCompletionTokens,
    eval_samples: hp.eval_samples === undefined || hp.eval_samples === 'auto' ? D.grpoEvalSamples : hp.eval_samples,
    compute_multiplier: multiplier,
  };
}

/** The default peak learning rate: from scratch, masked LM, fine-tuning (full or adapters). */
export function defaultLearningRate(method: MethodType, base: BaseModel, peft: PeftConfig | null): number {
  if (base.kind === 'preset') return method === 'mlm' ? D.mlmLearningRate : D.learningRate;
  return peft ? D.peftLearningRate : D.fineTuneLearningRate;
}

function resolvePeft(req: Peft | undefined, base: BaseModel, method: MethodType): PeftConfig | null {
  if (!req || req.type === 'full') return null;
  const param = `method.${method}.peft`;
  if (base.kind !== 'trained') throw new CrucibleError('unsupported_method', `${req.type} adapts trained weights; ${base.name} is an untrained preset`, param);
  if (base.arch === 'bert')
    throw new CrucibleError('unsupported_method', `${req.type} is available for gpt and llama models; ${base.id} is a bert model`, param);
  if (req.type === 'adapter') {
    if (base.arch === 'llama')
      throw new CrucibleError(
        'unsupported_method',
        `bottleneck adapters are available for gpt models; ${base.id} is a llama-architecture model (use LoRA)`,
        param,
      );
    return { type: 'adapter', size: req.size ?? PEFT_DEFAULTS.adapter.size };
  }
  // each architecture has its own module names: GPT-2's (attn.c_attn, ...) or Hugging Face's (q_proj, ...)
  const allowed: readonly string[] = base.arch === 'llama' ? DECODER_LORA_TARGETS : LORA_TARGETS;
  const wrong = req.target_modules?.find((t) => !allowed.includes(t));
  if (wrong) {
    throw new CrucibleError(
      'invalid_request',
      `target_modules: ${wrong} is not a module of a ${base.arch} model (${allowed.join(', ')})`,
      `${param}.target_modules`,
    );
  }
  return {
    type: 'lora',
    rank: req.rank ?? PEFT_DEFAULTS.lora.rank,
    alpha: req.alpha ?? PEFT_DEFAULTS.lora.alpha,
    dropout: req.dropout ?? PEFT_DEFAULTS.lora.dropout,
    targets: req.target_modules ?? [...(base.arch === 'llama' ? PEFT_DEFAULTS.lora.decoderTargets : PEFT_DEFAULTS.lora.targets)],
  };
}

/** Methods that fine-tune on examples (their n_epochs auto scales with the data); pretrain and mlm pass over a corpus. */
export function isFineTuning(method: MethodType): boolean {
  return method === 'supervised' || method === 'dpo' || method === 'reinforcement';
}

/**
 * n_epochs auto for a fine-tuning run whose epoch is `stepsPerEpoch` optimizer steps over
 * `examples` examples: 3 passes; on small data enough passes for 100 steps (at most 25); on large
 * data at most 25,000 examples trained (at least 1 pass).
 */
export function autoEpochs(stepsPerEpoch: number, examples: number): number {
  const A = D.autoEpochs;
  if (stepsPerEpoch * A.epochs < A.minSteps) return Math.min(A.maxEpochs, Math.ceil(A.minSteps / Math.max(1, stepsPerEpoch)));
  if (examples * A.epochs > A.maxExamples) return Math.max(1, Math.floor(A.maxExamples / examples));
  return A.epochs;
}

/** The most tokens a job of `n_epochs` passes over `size` tokens can train on (auto included), for the job-size limit. */
export function epochsTokenBound(h: Pick<ResolvedHyperparameters, 'n_epochs'> & Parameters<typeof tokensPerStep>[0], size: number): number {
  if (h.n_epochs !== 'auto') return h.n_epochs * size;
  // auto raises the passes only up to minSteps steps (+ one epoch's rounding) and otherwise keeps at most 3
  return Math.max(D.autoEpochs.epochs * size, (D.autoEpochs.minSteps + 1) * tokensPerStep(h) + size);
}

/**
 * max_steps, warmup and the passes once the size of the training data is known: `size` is its
 * tokens, or for a dpo job its preference pairs (an epoch is every pair once), for a reinforcement
 * job its prompts; `examples` its records (conversations, pairs, prompts).
 */
export function finalizeSchedule(
  h: ResolvedHyperparameters,
  data: { size: number; examples: number },
): { maxSteps: number; warmupSteps: number; nEpochs: number } {
  const perStep = h.dpo || h.reinforcement ? h.batch_size * h.gradient_accumulation_steps : tokensPerStep(h);
  const stepsPerEpoch = Math.max(1, Math.ceil(data.size / perStep));
  const nEpochs = h.n_epochs === 'auto' ? autoEpochs(stepsPerEpoch, data.examples) : h.n_epochs;
  const maxSteps = h.max_steps ?? Math.max(1, Math.ceil((nEpochs * data.size) / perStep));
  const warmup = h.warmup_steps ?? (h.warmup_ratio !== null ? Math.round(h.warmup_ratio * maxSteps) : defaultWarmupSteps(maxSteps));
  return { maxSteps, warmupSteps: Math.min(warmup, maxSteps), nEpochs };
}

/**
 * Tokens one optimizer step trains on (at most): sequences x their length x accumulated
 * micro-batches. A dpo step reads two sequences per pair, a reinforcement step group_size
 * sampled answers per prompt, each at most block_size long.
 */
export function tokensPerStep(h: Pick<ResolvedHyperparameters, 'batch_size' | 'block_size' | 'gradient_accumulation_steps' | 'dpo' | 'reinforcement'>): number {
  const rows = h.dpo ? 2 : h.reinforcement ? h.reinforcement.group_size : 1;
  return rows * h.batch_size * h.block_size * h.gradient_accumulation_steps;
}

/** The trainer's config for a job: the one mapping from a resolved spec to TrainConfig. */
export function trainConfigFor(h: ResolvedHyperparameters, method: MethodType, schedule: { maxSteps: number; warmupSteps: number }, seed: number): TrainConfig {
  return {
    objective: method === 'mlm' ? 'mlm' : method === 'dpo' ? 'dpo' : method === 'reinforcement' ? 'grpo' : 'causal',
    ...(h.dpo ? { dpo: { beta: h.dpo.beta, rpoAlpha: h.dpo.rpo_alpha, lengthNormalize: h.dpo.length_normalize } } : {}),
    ...(h.reinforcement
      ? {
          grpo: {
            groupSize: h.reinforcement.group_size,
            klBeta: h.reinforcement.kl_beta,
            clipEpsilon: D.grpoClipEpsilon,
            temperature: h.reinforcement.temperature,
            maxCompletionTokens: h.reinforcement.max_completion_tokens,
            evalSamples: h.reinforcement.eval_samples,
          },
        }
      : {}),
    ...(h.packing ? { packing: true } : {}),
    maxSteps: schedule.maxSteps,
    batchSize: h.batch_size,
    seqLen: h.block_size,
    gradAccumSteps: h.gradient_accumulation_steps,
    activationCheckpointing: h.activation_checkpointing ?? D.activationCheckpointing, // records from before the option lack it
    maxGradNorm: h.max_grad_norm,
    evalInterval: h.eval_interval,
    evalBatches: h.eval_batches,
    logInterval: h.log_interval,
    checkpointInterval: h.checkpoint_interval,
    seed,
    mlmProbability: D.mlmProbability,
    ...(method === 'mlm' ? { shortWindows: defaultShortWindows(schedule.maxSteps, h.block_size) } : {}),
    schedule: {
      kind: h.lr_scheduler,
      lr: h.learning_rate,
      minLr: h.min_learning_rate,
      warmupSteps: schedule.warmupSteps,
      decaySteps: schedule.maxSteps,
    },
    optimizer: { kind: h.optimizer, beta1: h.beta1, beta2: h.beta2, eps: D.optimizer.eps, weightDecay: h.weight_decay },
  };
}

export type { PresetName };
export { type Architecture, isCausal, isPreset, PRECISIONS, PRESETS, type Precision };
