// The fine-tuning job resource and its sub-resources (events, checkpoints, metrics), shaped like
// OpenAI's fine-tuning API, plus Crucible's methods (pretrain, mlm) and full hyperparameters.
import { TRAINING_DEFAULTS as D, DECODER_LORA_TARGETS, LORA_TARGETS, PEFT_DEFAULTS } from '@crucible/training-config';
import { type Static, Type } from '@sinclair/typebox';
import { JOB_STATUSES } from '../jobs/state-machine';
import { EventLevelSchema, FailureError, Metadata, Nullable } from './common';
import { PreparationRules, PreparationRulesRequest } from './files';
import { Grader } from './graders';

const auto = Type.Literal('auto');
const intOrAuto = (min: number, max: number, description: string) => Type.Union([Type.Integer({ minimum: min, maximum: max }), auto], { description });

export const Tokenizer = Type.Union(
  [
    Type.Object({ type: Type.Literal('char') }, { additionalProperties: false }),
    Type.Object(
      { type: Type.Literal('bpe'), vocab_size: Type.Integer({ minimum: 261, maximum: 65536, description: 'Includes 256 byte tokens and 5 special tokens.' }) },
      { additionalProperties: false },
    ),
  ],
  { description: 'Tokenizer to train on the dataset (pretrain, mlm). Supervised jobs reuse the base model tokenizer.' },
);

export const Hyperparameters = Type.Object(
  {
    n_epochs: Type.Optional(
      intOrAuto(
        1,
        100,
        `Passes over the training data; used when max_steps is not set. auto: pretrain and mlm ${D.nEpochs}; fine-tuning ${D.autoEpochs.epochs}, raised on small data to make ${D.autoEpochs.minSteps} steps (at most ${D.autoEpochs.maxEpochs}), lowered on large data to train on at most ${D.autoEpochs.maxExamples} examples. The job object gives the passes chosen once it runs.`,
      ),
    ),
    batch_size: Type.Optional(intOrAuto(1, 512, `Sequences per micro-batch. auto = ${D.batchSize}.`)),
    learning_rate_multiplier: Type.Optional(
      Type.Union([Type.Number({ exclusiveMinimum: 0, maximum: 100 }), auto], { description: 'Scales learning_rate. auto = 1.' }),
    ),
    max_steps: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Optimizer steps; overrides n_epochs.' })),
    learning_rate: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        maximum: 1,
        description: `Peak learning rate. Default ${D.learningRate} (pretrain, mlm), ${D.fineTuneLearningRate} (supervised).`,
      }),
    ),
    min_learning_rate: Type.Optional(
      Type.Number({ minimum: 0, maximum: 1, description: `Floor of the decay. Default learning_rate x ${D.minLearningRateRatio}.` }),
    ),
    lr_scheduler: Type.Optional(Type.Union([Type.Literal('cosine'), Type.Literal('linear'), Type.Literal('constant')], { default: D.lrScheduler })),
    warmup_steps: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    warmup_ratio: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1,
        description: `Warmup as a share of max_steps (if warmup_steps is not set). Default: min(${D.maxWarmupSteps}, ${100 * D.maxWarmupShare}%).`,
      }),
    ),
    optimizer: Type.Optional(Type.Union([Type.Literal('adamw'), Type.Literal('adam'), Type.Literal('lamb')], { default: D.optimizer.kind })),
    weight_decay: Type.Optional(Type.Number({ minimum: 0, maximum: 1, default: D.optimizer.weightDecay })),
    beta1: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1, default: D.optimizer.beta1 })),
    beta2: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1, default: D.optimizer.beta2 })),
    max_grad_norm: Type.Optional(Type.Number({ minimum: 0, maximum: 1000, default: D.maxGradNorm, description: '0 disables clipping.' })),
    gradient_accumulation_steps: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024, default: D.gradAccumSteps })),
    activation_checkpointing: Type.Optional(
      Type.Boolean({
        default: D.activationCheckpointing,
        description:
          'Llama-architecture models: each layer keeps only its input for the backward pass, which recomputes the layer. Less memory for about one more forward pass of time.',
      }),
    ),
    block_size: Type.Optional(Type.Integer({ minimum: 4, maximum: 4096, description: 'Context length; default: the model preset.' })),
    dropout: Type.Optional(Type.Number({ minimum: 0, maximum: 0.9, default: D.dropout })),
    eval_interval: Type.Optional(
      Type.Union([Type.Integer({ minimum: 0, maximum: 1_000_000 }), auto], {
        description: `Steps between evaluations; 0: only at the end. auto = ${D.evalInterval}.`,
      }),
    ),
    eval_batches: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: D.evalBatches })),
    checkpoint_interval: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 1_000_000,
        default: D.checkpointInterval,
        description: '0: checkpoint only at the end. A job whose worker is lost resumes from the latest checkpoint.',
      }),
    ),
    log_interval: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: D.logInterval, description: 'Steps between metric records.' })),
    tokenizer: Type.Optional(Tokenizer),
    early_stopping: Type.Optional(
      Nullable(
        Type.Object(
          {
            patience: Type.Optional(
              Type.Integer({ minimum: 1, maximum: 10_000, default: D.earlyStoppingPatience, description: 'Evaluations without improvement before stopping.' }),
            ),
            min_delta: Type.Optional(
              Type.Number({
                minimum: 0,
                maximum: 100,
                default: D.earlyStoppingMinDelta,
                description: 'Smallest decrease of the validation loss that counts as an improvement.',
              }),
            ),
          },
          { additionalProperties: false, description: 'Stop when the validation loss stops improving (checked at every eval_interval).' },
        ),
      ),
    ),
    model_selection: Type.Optional(
      Type.Union([Type.Literal('last'), Type.Literal('best')], {
        default: 'last',
        description: 'Which weights become fine_tuned_model: those of the last step, or of the best checkpoint (lowest validation loss).',
      }),
    ),
    validation_split: Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        maximum: 0.5,
        default: D.validationSplit,
        description: 'Share of the training data held out for validation when no validation_file is given.',
      }),
    ),
    validation_split_seed: Type.Optional(
      Nullable(
        Type.Integer({
          minimum: 0,
          maximum: 2147483647,
          description:
            'Hold out a seeded random selection of records (or, for plain text, of chunks) instead of the end of the training data. Default: the end.',
        }),
      ),
    ),
    packing: Type.Optional(
      Type.Boolean({
        default: false,
        description:
          'supervised: pack several whole examples into each sequence, attention and positions kept per example (the loss of each is its unpacked loss), instead of windows over the concatenated data.',
      }),
    ),
    beta: Type.Optional(
      Type.Union([Type.Number({ exclusiveMinimum: 0, maximum: 100 }), auto], {
        description: `dpo: how far the model may move from the reference (the beta of the DPO loss; smaller moves further). auto = ${D.dpoBeta}.`,
      }),
    ),
    rpo_alpha: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 100,
        default: D.dpoRpoAlpha,
        description: 'dpo: weight of an added NLL term on the preferred answers (RPO, as Together’s rpo_alpha). 0: none.',
      }),
    ),
    length_normalize: Type.Optional(
      Type.Boolean({
        default: false,
        description: 'dpo: compare the answers by their log-probability per token instead of in total (longer answers no longer weigh more).',
      }),
    ),
    group_size: Type.Optional(
      Type.Integer({
        minimum: 2,
        maximum: 64,
        default: D.grpoGroupSize,
        description: 'reinforcement: answers sampled per prompt; each is scored against the others of its group (GRPO).',
      }),
    ),
    kl_beta: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 100,
        default: D.grpoKlBeta,
        description: 'reinforcement: weight of the KL penalty that keeps the model near the one it started from. 0: none.',
      }),
    ),
    temperature: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, maximum: 2, default: D.grpoTemperature, description: 'reinforcement: sampling temperature of the answers.' }),
    ),
    max_completion_tokens: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 4096, default: D.grpoMaxCompletionTokens, description: 'reinforcement: the longest answer sampled, in tokens.' }),
    ),
    eval_samples: Type.Optional(intOrAuto(1, 64, `reinforcement: answers sampled per validation prompt at each evaluation. auto = ${D.grpoEvalSamples}.`)),
    compute_multiplier: Type.Optional(
      Type.Union([Type.Number({ minimum: 0.1, maximum: 16 }), auto], {
        description: 'reinforcement: scales the answers sampled per prompt (group_size x this, at least 2). auto = 1.',
      }),
    ),
    reasoning_effort: Type.Optional(
      Type.Union([Type.Literal('default'), Type.Literal('low'), Type.Literal('medium'), Type.Literal('high')], {
        description: 'reinforcement: OpenAI’s reasoning models only; accepted as default, any other value is refused.',
      }),
    ),
    chat_loss: Type.Optional(
      Type.Union([Type.Literal('assistant'), Type.Literal('all')], {
        default: 'assistant',
        description: 'Chat data: loss on the assistant turns only (default) or on every token.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type Hyperparameters = Static<typeof Hyperparameters>;

export const Peft = Type.Union(
  [
    Type.Object({ type: Type.Literal('full') }, { additionalProperties: false, description: 'Every weight is trained (the default).' }),
    Type.Object(
      {
        type: Type.Literal('lora'),
        rank: Type.Optional(Type.Integer({ minimum: 1, maximum: 256, default: PEFT_DEFAULTS.lora.rank })),
        alpha: Type.Optional(
          Type.Number({ exclusiveMinimum: 0, maximum: 4096, default: PEFT_DEFAULTS.lora.alpha, description: 'The update is scaled by alpha / rank.' }),
        ),
        dropout: Type.Optional(
          Type.Number({ minimum: 0, maximum: 0.9, default: PEFT_DEFAULTS.lora.dropout, description: 'Dropout on the input of the LoRA path.' }),
        ),
        target_modules: Type.Optional(
          Type.Array(Type.Union([...LORA_TARGETS, ...DECODER_LORA_TARGETS].map((t) => Type.Literal(t))), {
            minItems: 1,
            uniqueItems: true,
            description:
              'Linear layers to adapt in every block. gpt models: attention qkv (attn.c_attn) and output (attn.c_proj), MLP in (mlp.c_fc) and out (mlp.c_proj); default attn.c_attn, attn.c_proj. llama-architecture models (Llama, Qwen, SmolLM): Hugging Face module names q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj; default q_proj, k_proj, v_proj, o_proj.',
          }),
        ),
      },
      { additionalProperties: false, description: 'LoRA: frozen base weights plus (alpha / rank) x A B on each target; B starts at zero.' },
    ),
    Type.Object(
      {
        type: Type.Literal('adapter'),
        size: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096, default: PEFT_DEFAULTS.adapter.size, description: 'Bottleneck width.' })),
      },
      { additionalProperties: false, description: 'Houlsby bottleneck adapters after the attention and MLP branches of every block; base weights frozen.' },
    ),
  ],
  { description: 'How much of the model trains: all of it (full), LoRA matrices, or bottleneck adapters. LoRA and adapters need a trained gpt base.' },
);
export type Peft = Static<typeof Peft>;

const methodBody = Type.Object({ hyperparameters: Type.Optional(Hyperparameters), peft: Type.Optional(Peft) }, { additionalProperties: false });
export const METHOD_TYPES = ['pretrain', 'mlm', 'supervised', 'dpo', 'reinforcement'] as const;
const reinforcementBody = Type.Object(
  { grader: Grader, hyperparameters: Type.Optional(Hyperparameters), peft: Type.Optional(Peft) },
  { additionalProperties: false },
);
export type MethodType = (typeof METHOD_TYPES)[number];

export const Method = Type.Union(
  [
    Type.Object({ type: Type.Literal('pretrain'), pretrain: Type.Optional(methodBody) }, { additionalProperties: false }),
    Type.Object({ type: Type.Literal('mlm'), mlm: Type.Optional(methodBody) }, { additionalProperties: false }),
    Type.Object({ type: Type.Literal('supervised'), supervised: Type.Optional(methodBody) }, { additionalProperties: false }),
    Type.Object({ type: Type.Literal('dpo'), dpo: Type.Optional(methodBody) }, { additionalProperties: false }),
    Type.Object({ type: Type.Literal('reinforcement'), reinforcement: reinforcementBody }, { additionalProperties: false }),
  ],
  {
    description:
      'pretrain: causal LM on text (from a gpt preset, or continued from a trained gpt model); mlm: masked LM on text (bert preset or trained bert model); supervised: fine-tune a trained or imported model, or a checkpoint, on prompt/completion or chat data (loss on the answers); dpo: Direct Preference Optimization of a trained or imported model on preference pairs (OpenAI’s format), against the starting model as the reference; reinforcement: GRPO against a grader (OpenAI’s reinforcement fine-tuning) on prompts with fields for the grader, from a trained or imported chat model.',
  },
);
export type Method = Static<typeof Method>;
export type MethodSettings = Static<typeof methodBody> & { grader?: Grader };

/** The settings a method object carries under its own type's name (`{type: 'supervised', supervised: {...}}`). */
export function methodSettings(m: Method): MethodSettings | undefined {
  switch (m.type) {
    case 'pretrain':
      return m.pretrain;
    case 'mlm':
      return m.mlm;
    case 'supervised':
      return m.supervised;
    case 'dpo':
      return m.dpo;
    case 'reinforcement':
      return m.reinforcement;
  }
}

export const CreateJobRequest = Type.Object(
  {
    model: Type.String({
      minLength: 1,
      maxLength: 256,
      description:
        'A preset (gpt-nano, gpt-micro, gpt2-small, bert-mini), a trained or imported model id, or a checkpoint (its fine_tuned_model_checkpoint name or ftckpt- id).',
    }),
    training_file: Type.String({ minLength: 1, maxLength: 128 }),
    validation_file: Type.Optional(Nullable(Type.String({ maxLength: 128 }))),
    method: Type.Optional(Method),
    hyperparameters: Type.Optional(Hyperparameters),
    seed: Type.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 2147483647 }))),
    suffix: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.-]+$' }))),
    metadata: Type.Optional(Nullable(Metadata)),
    integrations: Type.Optional(Nullable(Type.Array(Type.Unknown()))),
    precision: Type.Optional(
      Nullable(
        Type.Union([Type.Literal('bf16'), Type.Literal('float32')], {
          description:
            "Crucible: the precision of the training step's matrix products. bf16 rounds both operands to bfloat16 and sums in float32 (master weights, optimizer state, attention, normalisation and losses stay float32), about 1.8x float32's products where the CPU has AVX512-BF16 or AMX-BF16; elsewhere the job trains in float32 and says so in an event. Absent or null: the worker's CPU chooses (bf16 where it has those instructions).",
        }),
      ),
    ),
    resources: Type.Optional(
      Nullable(
        Type.Object(
          {
            workers: Type.Optional(
              Type.Integer({
                minimum: 1,
                maximum: 1024,
                description:
                  "Crucible: workers that train the job at once (data parallelism over Gloo; default 1). Each worker trains on batch_size rows of every global batch of workers x batch_size rows, and their gradients are averaged, so that the job trains like one worker with workers x batch_size. At most the project's max_job_workers; methods supervised, pretrain and mlm; refused where the server has no Gloo.",
              }),
            ),
          },
          { additionalProperties: false, description: 'Crucible: what the job runs on.' },
        ),
      ),
    ),
    data_preparation: Type.Optional(
      Nullable(
        Type.Object(PreparationRulesRequest.properties, {
          additionalProperties: false,
          description:
            'Prepare the training file before training (rules as in POST /files/{id}/prepare); the job trains on the prepared file, named in prepared_training_file.',
        }),
      ),
    ),
  },
  { additionalProperties: false },
);
export type CreateJobRequest = Static<typeof CreateJobRequest>;

export const JobObject = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('fine_tuning.job'),
    created_at: Type.Integer(),
    error: Nullable(FailureError),
    fine_tuned_model: Nullable(Type.String()),
    finished_at: Nullable(Type.Integer()),
    hyperparameters: Type.Record(Type.String(), Type.Unknown(), { description: 'Resolved hyperparameters (defaults filled in).' }),
    model: Type.String(),
    organization_id: Type.String({ description: 'The project id.' }),
    result_files: Type.Array(Type.String()),
    seed: Type.Integer(),
    status: Type.Union(JOB_STATUSES.map((s) => Type.Literal(s))),
    trained_tokens: Nullable(Type.Integer()),
    training_file: Type.String(),
    validation_file: Nullable(Type.String()),
    estimated_finish: Nullable(Type.Integer()),
    integrations: Nullable(Type.Array(Type.Unknown())),
    metadata: Nullable(Type.Record(Type.String(), Type.String())),
    method: Type.Record(Type.String(), Type.Unknown()),
    user_provided_suffix: Nullable(Type.String()),
    backend: Nullable(Type.String({ description: 'TensorFlow.js backend the worker trained on.' })),
    precision: Nullable(
      Type.Union([Type.Literal('bf16'), Type.Literal('float32')], {
        description: "Crucible: the precision the job trains in once it runs; before, as requested (null: the worker's CPU will choose).",
      }),
    ),
    running_seconds: Type.Number({ description: 'Crucible: seconds spent running so far, over every attempt; time paused or queued does not count.' }),
    resources: Type.Object({ workers: Type.Integer({ description: 'Crucible: workers that train the job at once (one rank each).' }) }),
    ranks: Nullable(
      Type.Array(
        Type.Object({
          rank: Type.Integer(),
          worker: Type.String({ description: 'The worker (WORKER_NAME) that holds the rank.' }),
          host: Type.String({ description: 'The address the other ranks reach it at (WORKER_ADVERTISE_HOST).' }),
        }),
        { description: "Crucible: a multi-worker job's ranks in its current attempt, once they all joined; null before, and for one worker." },
      ),
    ),
    data_preparation: Nullable(PreparationRules),
    prepared_training_file: Nullable(Type.String({ description: 'The prepared file the job trained on.' })),
  },
  { $id: 'FineTuningJob' },
);
export type JobObject = Static<typeof JobObject>;

// ── a run's output: the data of its metrics events ───────────────────────────────────────────
// One declared shape per kind, written by the worker and read by the SDK and the dashboard through
// the OpenAPI document (no hand-written parser on either side).

/** A logged training step (every `log_interval` steps). */
const reward = (what: string, method = 'dpo') => Type.Optional(Type.Number({ description: `${method} jobs: ${what}` }));

/** DPO's rewards of a step's pairs, under TRL's names: beta x (log pi - log ref) of each answer, averaged; GRPO's, under TRL's names too. */
const TrainRewards = {
  'rewards/chosen': reward('mean reward of the preferred answers.'),
  'rewards/rejected': reward('mean reward of the non-preferred answers.'),
  'rewards/margins': reward('mean of chosen - rejected.'),
  'rewards/accuracies': reward('share of pairs whose preferred answer has the higher reward.'),
  reward: reward('mean grader score of the step’s sampled answers.', 'reinforcement'),
  reward_std: reward('mean standard deviation of the scores within a group.', 'reinforcement'),
  kl: reward('mean per-token KL divergence of the model from the one it started from (k3 estimate).', 'reinforcement'),
  frac_reward_nonzero_std: reward(
    'share of the step’s groups whose scores differ (only those teach anything; TRL logs 1 - this as frac_reward_zero_std).',
    'reinforcement',
  ),
  completion_length: reward('mean length of the sampled answers, in tokens.', 'reinforcement'),
};

/** The same on the validation pairs or prompts (this API's valid_ prefix, as valid_loss). */
const ValidRewards = {
  'valid_rewards/chosen': reward('rewards/chosen on the validation pairs.'),
  'valid_rewards/rejected': reward('rewards/rejected on the validation pairs.'),
  'valid_rewards/margins': reward('rewards/margins on the validation pairs.'),
  'valid_rewards/accuracies': reward('rewards/accuracies on the validation pairs.'),
  valid_reward: reward('mean grader score of answers sampled for the validation prompts (eval_samples each).', 'reinforcement'),
  valid_completion_length: reward('mean length of those answers, in tokens.', 'reinforcement'),
};

/** The names of the methods' reward metrics (dpo's and reinforcement's), train then validation. */
export const REWARD_METRICS = [...Object.keys(TrainRewards), ...Object.keys(ValidRewards)] as Array<keyof typeof TrainRewards | keyof typeof ValidRewards>;
export type RewardMetrics = Partial<Record<(typeof REWARD_METRICS)[number], number>>;

/** The reward metrics a step's or an evaluation's data carries; null when none (every method but dpo and reinforcement). */
export function rewardsOf(data: Record<string, unknown>): RewardMetrics | null {
  const out: RewardMetrics = {};
  for (const k of REWARD_METRICS) if (typeof data[k] === 'number') out[k] = data[k] as number;
  return Object.keys(out).length > 0 ? out : null;
}

export const StepMetrics = Type.Object(
  {
    kind: Type.Literal('step'),
    step: Type.Integer({ minimum: 1 }),
    total_steps: Type.Integer({ minimum: 1, description: 'The steps of the whole run.' }),
    train_loss: Type.Number({ description: 'Mean training loss of the step (over its micro-batches).' }),
    learning_rate: Type.Number(),
    grad_norm: Type.Number({ description: 'Global gradient norm before clipping.' }),
    tokens_per_second: Type.Number({ description: 'Training throughput of the step.' }),
    ...TrainRewards,
  },
  { $id: 'StepMetrics' },
);
export type StepMetrics = Static<typeof StepMetrics>;

/** An evaluation on the validation data (every `eval_interval` steps, at step 0 and at the end). */
export const ValidationMetrics = Type.Object(
  {
    kind: Type.Literal('evaluation'),
    step: Type.Integer({ minimum: 0 }),
    valid_loss: Type.Number({
      description: 'dpo jobs: the DPO loss of the validation pairs; reinforcement jobs: minus valid_reward (lower is better, as for every method).',
    }),
    valid_perplexity: Type.Number({
      description: 'dpo jobs: of the preferred answers; reinforcement jobs: of the sampled validation answers under the model that sampled them.',
    }),
    valid_mean_token_accuracy: Type.Number({
      description: 'dpo jobs: of the preferred answers; reinforcement jobs: share of the sampled answers’ tokens that were the most likely one.',
    }),
    best: Type.Boolean({ description: 'The lowest validation loss of the run so far (step 0 never counts).' }),
    ...ValidRewards,
  },
  { $id: 'ValidationMetrics' },
);
export type ValidationMetrics = Static<typeof ValidationMetrics>;

/** A checkpoint saved (its record is under /checkpoints). */
export const CheckpointSaved = Type.Object(
  {
    kind: Type.Literal('checkpoint'),
    step: Type.Integer({ minimum: 0 }),
  },
  { $id: 'CheckpointSaved' },
);
export type CheckpointSaved = Static<typeof CheckpointSaved>;

/** The data of a `metrics` event, told apart by `kind`. */
export const MetricsEventData = Type.Union([StepMetrics, ValidationMetrics, CheckpointSaved], { $id: 'MetricsEventData' });
export type MetricsEventData = Static<typeof MetricsEventData>;

const eventFields = {
  id: Type.String(),
  object: Type.Literal('fine_tuning.job.event'),
  created_at: Type.Integer(),
  level: EventLevelSchema,
  message: Type.String(),
};

/** OpenAI's job event; Crucible declares the data of its `metrics` events. */
export const EventObject = Type.Union(
  [
    Type.Object({ ...eventFields, type: Type.Literal('metrics'), data: MetricsEventData }),
    Type.Object({ ...eventFields, type: Type.Literal('message'), data: Nullable(Type.Record(Type.String(), Type.Unknown())) }),
  ],
  { $id: 'FineTuningJobEvent' },
);
export type EventObject = Static<typeof EventObject>;

export const CheckpointObject = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('fine_tuning.job.checkpoint'),
    created_at: Type.Integer(),
    fine_tuned_model_checkpoint: Type.String(),
    fine_tuning_job_id: Type.String(),
    step_number: Type.Integer(),
    metrics: Type.Record(Type.String(), Type.Union([Type.Number(), Type.Null()])),
    best: Type.Boolean({ description: 'The checkpoint with the lowest validation loss so far (retention keeps it).' }),
  },
  { $id: 'FineTuningJobCheckpoint' },
);
export type CheckpointObject = Static<typeof CheckpointObject>;

export const MetricPoint = Type.Object(
  {
    step: Type.Integer(),
    train_loss: Nullable(Type.Number()),
    valid_loss: Nullable(Type.Number()),
    valid_mean_token_accuracy: Nullable(Type.Number()),
    learning_rate: Nullable(Type.Number()),
    grad_norm: Nullable(Type.Number()),
    tokens_per_second: Nullable(Type.Number()),
    ...TrainRewards,
    ...ValidRewards,
  },
  { $id: 'MetricPoint' },
);

export const MetricsQuery = Type.Object({
  max_points: Type.Optional(
    Type.Integer({ minimum: 2, maximum: 10_000, default: 500, description: 'Downsample to at most this many points (first and last kept).' }),
  ),
});

export const MetricsList = Type.Object({
  object: Type.Literal('list'),
  job_id: Type.String(),
  total_points: Type.Integer(),
  data: Type.Array(MetricPoint),
});

export const JobEstimate = Type.Object(
  {
    object: Type.Literal('fine_tuning.job.estimate'),
    model: Type.String(),
    method: Type.String(),
    training_file: Type.String(),
    tokens: Type.Object({
      total: Type.Integer({ description: 'Tokens of the training file as the trainer encodes it.' }),
      training: Type.Integer({ description: 'Without the validation share when no validation_file is given.' }),
      per_step: Type.Integer({ description: 'batch_size x block_size x gradient_accumulation_steps.' }),
      tokenizer: Type.String(),
      approximate: Type.Boolean({ description: 'True when the tokenizer does not exist yet (BPE trained by the job).' }),
    }),
    steps: Type.Integer(),
    epochs: Type.Number({ description: 'Passes over the training data that the steps make.' }),
    n_epochs: Type.Integer({ description: 'The passes n_epochs asks for, auto resolved for this data.' }),
    hyperparameters: Type.Record(Type.String(), Type.Unknown(), {
      description: 'Every hyperparameter the job would run with (the defaults filled in, max_steps and n_epochs for this data).',
    }),
    throughput: Nullable(
      Type.Object({
        tokens_per_second: Type.Number(),
        measured_on: Type.String({ description: 'The model whose earlier jobs measured it.' }),
        jobs: Type.Array(Type.String()),
        backend: Nullable(Type.String()),
      }),
    ),
    estimated_seconds: Nullable(Type.Integer()),
    note: Type.String(),
  },
  { $id: 'FineTuningJobEstimate' },
);
