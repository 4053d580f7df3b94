// The shape of a training run's configuration (no tensors, no I/O): what the trainer runs and
// what the platform maps a job's hyperparameters to.

export type Objective = 'causal' | 'mlm' | 'dpo' | 'grpo';

/** Direct Preference Optimization: the loss of a preference pair (see the trainer's preference.ts). */
export interface DpoConfig {
  /** Scales the log-ratio difference inside the sigmoid. */
  beta: number;
  /** Weight of an added NLL term on the preferred answer (RPO); 0 for none. */
  rpoAlpha: number;
  /** Log-probabilities per answer token instead of summed over the answer. */
  lengthNormalize: boolean;
}

/**
 * Group Relative Policy Optimization (Shao et al., 2024), the loss of OpenAI's reinforcement method
 * (see the trainer's grpo.ts): completions sampled in groups per prompt, scored by a grader.
 */
export interface GrpoConfig {
  /** Completions sampled per prompt. */
  groupSize: number;
  /** Weight of the KL penalty to the reference (0: none, and no reference is kept). */
  klBeta: number;
  /** The policy ratio is clipped to [1 - clipEpsilon, 1 + clipEpsilon]. */
  clipEpsilon: number;
  /** Sampling temperature of the completions. */
  temperature: number;
  /** Longest completion, in tokens. */
  maxCompletionTokens: number;
  /** Completions sampled per validation prompt at each evaluation. */
  evalSamples: number;
}
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

/** The precisions a training step can run in. */
export type Precision = 'float32' | 'bf16';
export const PRECISIONS: readonly Precision[] = ['float32', 'bf16'];

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
  /**
   * Short windows first (masked LMs): windows of `seqLen` tokens until `holdSteps`, then windows
   * growing linearly to the full length at `steps`, the batch scaled up to keep the tokens per
   * step. With few positions to attend to, attention finds the neighbouring tokens quickly, which
   * ends the long plateau small masked LMs otherwise sit on (the most frequent token everywhere);
   * growing the windows gradually lets the later positions learn from there.
   */
  shortWindows?: { seqLen: number; steps: number; holdSteps?: number };
  /**
   * Activation checkpointing (llama-architecture models): each layer keeps only its input for the
   * backward pass, which recomputes the layer. Less memory for about one more forward pass.
   */
  activationCheckpointing?: boolean;
  /**
   * The precision of the training step's matrix products (native backend): 'bf16' rounds both
   * operands to bfloat16 and sums in float32, where the CPU has AVX512-BF16 or AMX-BF16 (elsewhere
   * float32 stays). Master weights, optimizer state, attention, normalisation and losses stay
   * float32. Absent: float32.
   */
  precision?: Precision;
  /** The DPO loss's settings (objective 'dpo'). */
  dpo?: DpoConfig;
  /** The GRPO loss's and sampling's settings (objective 'grpo'). */
  grpo?: GrpoConfig;
  /**
   * Causal objective: rows of whole examples packed together (attention and positions per example)
   * instead of windows over the stream; needs the data's document starts.
   */
  packing?: boolean;
}

/** The shape of a transformer; one config describes both architectures. */
export interface ModelConfig {
  arch: import('./presets').Architecture;
  vocabSize: number;
  nLayer: number;
  nHead: number;
  /** Width of the residual stream (C). */
  dModel: number;
  /** Longest context (T). */
  blockSize: number;
  /** Feed-forward width as a multiple of dModel. Default 4. */
  ffnMult: number;
  /** Dropout on attention weights, residual branches and embeddings. Default 0. */
  dropout: number;
  /** Biases in Linear layers and LayerNorms. Default true. */
  bias: boolean;
  /** LM head shares the token embedding matrix. Default true. */
  tiedEmbeddings: boolean;
  /** Parameter-efficient adaptation: extra trainable parameters beside frozen base weights. */
  peft?: PeftConfig;
  /**
   * The llama architecture's shape (required for arch 'llama', absent otherwise). There, nHead is
   * the query heads, dModel the hidden size, blockSize the longest context (max_position_embeddings:
   * no position table, RoPE), and ffnMult, bias and dropout are not used.
   */
  decoder?: DecoderConfig;
}

/** The Hugging Face model types the llama architecture reads. */
export const DECODER_FAMILIES = ['llama', 'qwen2', 'qwen3'] as const;
export type DecoderFamily = (typeof DECODER_FAMILIES)[number];

/** Llama 3.x's RoPE frequency scaling (`rope_scaling` with `rope_type: "llama3"`). */
export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface DecoderConfig {
  /** config.json's model_type. */
  family: DecoderFamily;
  /** Key/value heads (grouped-query attention); divides nHead. */
  nKvHead: number;
  /** Width of one head (may differ from dModel / nHead). */
  headDim: number;
  /** The SwiGLU MLP's inner width. */
  intermediateSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling?: Llama3RopeScaling;
  /** Biases on q_proj, k_proj and v_proj (Qwen2; Llama's and Qwen3's attention_bias). */
  qkvBias: boolean;
  /** A bias on o_proj (Llama's and Qwen3's attention_bias). */
  oBias: boolean;
  /** Biases on gate_proj, up_proj and down_proj (Llama's mlp_bias). */
  mlpBias: boolean;
  /** RMSNorm of each query and key head before RoPE (Qwen3's q_norm and k_norm). */
  qkNorm: boolean;
}

/** The linear layers LoRA can adapt in a gpt model, by their name inside a block. */
export const LORA_TARGETS = ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'] as const;
/** The linear layers LoRA can adapt in a llama-architecture model: Hugging Face's module names. */
export const DECODER_LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type DecoderLoraTarget = (typeof DECODER_LORA_TARGETS)[number];
export type LoraTarget = (typeof LORA_TARGETS)[number] | DecoderLoraTarget;

/** LoRA: W x + (alpha / rank) * B(A(dropout(x))) on each target; A ~ N(0, 1/rank)-ish, B = 0. */
export interface LoraConfig {
  type: 'lora';
  rank: number;
  alpha: number;
  dropout: number;
  targets: LoraTarget[];
}

/** Houlsby bottleneck adapters after the attention and MLP branches: h + up(gelu(down(h))), up = 0. */
export interface AdapterConfig {
  type: 'adapter';
  /** Bottleneck width. */
  size: number;
}

export type PeftConfig = LoraConfig | AdapterConfig;

export const PEFT_DEFAULTS = {
  lora: {
    rank: 8,
    alpha: 16,
    dropout: 0,
    targets: ['attn.c_attn', 'attn.c_proj'] as LoraTarget[],
    /** The default on llama-architecture models (PEFT's and most recipes'). */
    decoderTargets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] as LoraTarget[],
  },
  adapter: { size: 16 },
} as const;
