// The evaluation resource: a model (or a checkpoint) scored on a file, run by workers through
// their own queue. Crucible's own shape (OpenAI's evals API is a different product).
import { type Static, Type } from '@sinclair/typebox';
import { EventLevelSchema, FailureError, Metadata, Nullable } from './common';

export const EVALUATION_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type EvaluationStatus = (typeof EVALUATION_STATUSES)[number];
export const EVALUATION_TERMINAL: readonly EvaluationStatus[] = ['succeeded', 'failed', 'cancelled'];

export const EVALUATION_DEFAULTS = {
  /** Prompt/completion and chat records whose answers are generated (exact match). */
  maxExamples: 100,
  /** Sample generations kept in the result. */
  samples: 3,
  /** Longest generated answer, in tokens. */
  maxTokens: 64,
  batchSize: 8,
  seed: 0,
} as const;

export const CreateEvaluationRequest = Type.Object(
  {
    model: Type.String({
      minLength: 1,
      maxLength: 256,
      description: 'A trained or imported model of the project, or a checkpoint (ft:...:ckpt-step-N or ftckpt-...).',
    }),
    file: Type.String({ minLength: 1, maxLength: 128, description: 'A processed file of the project (any purpose).' }),
    max_examples: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 100_000,
        default: EVALUATION_DEFAULTS.maxExamples,
        description: 'Records whose answers are generated greedily for exact match (prompt/completion and chat data). 0: none.',
      }),
    ),
    samples: Type.Optional(Type.Integer({ minimum: 0, maximum: 20, default: EVALUATION_DEFAULTS.samples, description: 'Sample generations to keep.' })),
    max_tokens: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024, default: EVALUATION_DEFAULTS.maxTokens, description: 'Longest generated answer.' })),
    batch_size: Type.Optional(Type.Integer({ minimum: 1, maximum: 256, default: EVALUATION_DEFAULTS.batchSize, description: 'Windows per forward pass.' })),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2147483647, default: EVALUATION_DEFAULTS.seed, description: 'Masking of masked LMs.' })),
    metadata: Type.Optional(Nullable(Metadata)),
  },
  { additionalProperties: false },
);
export type CreateEvaluationRequest = Static<typeof CreateEvaluationRequest>;

export interface EvaluationOptions {
  max_examples: number;
  samples: number;
  max_tokens: number;
  batch_size: number;
  seed: number;
}

const num = (description: string) => Nullable(Type.Number({ description }));

export const EvaluationMetrics = Type.Object(
  {
    loss: num('Mean cross-entropy per predicted token (nats): every next token (gpt), the masked tokens (bert).'),
    perplexity: num('exp(loss).'),
    token_accuracy: num('Share of predicted tokens whose most likely token is the right one (masked tokens for bert).'),
    tokens: Type.Integer({ description: 'Tokens predicted.' }),
    records: Type.Integer(),
    answer_loss: num('Prompt/completion and chat: mean loss over the answer tokens only.'),
    answer_perplexity: num('exp(answer_loss).'),
    answer_token_accuracy: num('Token accuracy over the answer tokens only.'),
    answer_tokens: Nullable(Type.Integer()),
    exact_match: num('Share of generated answers (greedy) equal to the expected answer (whitespace at the ends ignored).'),
    exact_match_examples: Nullable(Type.Integer({ description: 'Records generated for exact match.' })),
  },
  { $id: 'EvaluationMetrics' },
);
export type EvaluationMetrics = Static<typeof EvaluationMetrics>;

export const EvaluationSample = Type.Object({
  line: Type.Integer(),
  prompt: Type.String(),
  expected: Nullable(Type.String()),
  output: Type.String(),
  exact_match: Nullable(Type.Boolean()),
});
export type EvaluationSample = Static<typeof EvaluationSample>;

export const EvaluationObject = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('evaluation'),
    model: Type.String(),
    file: Type.String(),
    status: Type.Union(EVALUATION_STATUSES.map((s) => Type.Literal(s))),
    progress: Type.Number({ description: 'Share of the work done, 0 to 1.' }),
    options: Type.Object({
      max_examples: Type.Integer(),
      samples: Type.Integer(),
      max_tokens: Type.Integer(),
      batch_size: Type.Integer(),
      seed: Type.Integer(),
    }),
    metrics: Nullable(EvaluationMetrics),
    samples: Type.Array(EvaluationSample),
    error: Nullable(FailureError),
    metadata: Nullable(Type.Record(Type.String(), Type.String())),
    created_at: Type.Integer(),
    started_at: Nullable(Type.Integer()),
    finished_at: Nullable(Type.Integer()),
  },
  { $id: 'Evaluation' },
);
export type EvaluationObject = Static<typeof EvaluationObject>;

export const EvaluationEventObject = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('evaluation.event'),
    created_at: Type.Integer(),
    level: EventLevelSchema,
    message: Type.String(),
    data: Nullable(Type.Record(Type.String(), Type.Unknown())),
  },
  { $id: 'EvaluationEvent' },
);

export const ComparisonQuery = Type.Object({
  file: Type.String({ description: 'The file the evaluations ran on.' }),
  models: Type.Optional(Type.String({ description: 'Comma-separated models or checkpoints to include (default: every model evaluated on the file).' })),
});

export const COMPARISON_COLUMNS = [
  'loss',
  'perplexity',
  'token_accuracy',
  'answer_loss',
  'answer_perplexity',
  'answer_token_accuracy',
  'exact_match',
  'tokens',
] as const;

export const EvaluationComparison = Type.Object(
  {
    object: Type.Literal('evaluation.comparison'),
    file: Type.String(),
    columns: Type.Array(Type.String(), { description: 'Answer metrics first for supervised files (prompt/completion, chat), the loss first for text.' }),
    primary: Type.String({ description: 'The column the rows are ranked by (best first): the first one the file’s rows have.' }),
    rows: Type.Array(
      Type.Object({
        model: Type.String(),
        evaluation: Type.String({ description: 'The latest succeeded evaluation of this model on the file.' }),
        finished_at: Nullable(Type.Integer()),
        values: Type.Array(Nullable(Type.Number()), { description: 'One value per column.' }),
        best: Type.Array(Type.String(), { description: 'Columns where this row alone is the best of the table (a tie marks none).' }),
      }),
    ),
    missing: Type.Array(Type.String({ description: 'Requested models with no succeeded evaluation on the file.' })),
  },
  { $id: 'EvaluationComparison' },
);
