// The file resource (datasets), shaped like OpenAI's, with Crucible's validation report, data
// preparation, statistics and tokenization preview.
import { type Static, Type } from '@sinclair/typebox';
import { Nullable } from './common';

export const FILE_FORMATS = ['text', 'jsonl_text', 'jsonl_prompt_completion', 'jsonl_chat'] as const;
export type FileFormat = (typeof FILE_FORMATS)[number];

/** fine-tune (OpenAI's; any format), pretrain (text), supervised (prompt/completion or chat), evals (any). */
export const FILE_PURPOSES = ['fine-tune', 'pretrain', 'supervised', 'evals'] as const;

/** The formats each purpose accepts (validation reports a mismatch as purpose_mismatch). */
export const PURPOSE_FORMATS: Record<(typeof FILE_PURPOSES)[number], readonly FileFormat[]> = {
  'fine-tune': FILE_FORMATS,
  pretrain: ['text', 'jsonl_text'],
  supervised: ['jsonl_prompt_completion', 'jsonl_chat'],
  evals: FILE_FORMATS,
};

export const FILE_STATUSES = ['pending', 'processed', 'error'] as const;

export const DatasetProblem = Type.Object(
  {
    line: Nullable(Type.Integer({ description: '1-based line; null for a problem of the whole file.' })),
    field: Nullable(Type.String({ description: 'The record field (messages[2].role), or the setting (purpose, file).' })),
    code: Type.String({ description: 'invalid_json, invalid_field, mixed_formats, line_too_long, too_few_examples, purpose_mismatch, ...' }),
    message: Type.String(),
  },
  { $id: 'DatasetProblem' },
);

export const FileObject = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('file'),
    bytes: Type.Integer(),
    created_at: Type.Integer({ description: 'Unix seconds.' }),
    filename: Type.String(),
    purpose: Type.String(),
    status: Type.Union(
      FILE_STATUSES.map((s) => Type.Literal(s)),
      { description: 'pending: stored, being validated (or prepared); processed: usable; error: see status_details and the report.' },
    ),
    status_details: Nullable(Type.String({ description: 'The validation summary and first problems.' })),
    expires_at: Nullable(Type.Integer()),
    format: Nullable(
      Type.Union(
        FILE_FORMATS.map((f) => Type.Literal(f)),
        { description: 'What Crucible found in the file: plain text, or JSONL of {text}, {prompt, completion} or {messages}. null while pending.' },
      ),
    ),
    lines: Type.Integer({ description: 'Examples: non-empty lines of text, or JSONL records.' }),
    sha256: Type.String(),
    problem_count: Nullable(Type.Integer({ description: 'Problems validation found (null while pending).' })),
    problems: Type.Array(DatasetProblem, { description: 'The first problems (all of the first 100: GET /files/{id}/report).' }),
    source_file: Nullable(Type.String({ description: 'For a prepared file: the file it was prepared from.' })),
  },
  { $id: 'File' },
);
export type FileObject = Static<typeof FileObject>;

const Histogram = Type.Object({
  unit: Type.Union([Type.Literal('characters'), Type.Literal('tokens')]),
  buckets: Type.Array(Type.Object({ le: Type.Integer({ description: 'Upper bound of the bucket (powers of two).' }), count: Type.Integer() })),
});

export const ValidationReportObject = Type.Object({
  format: Nullable(Type.String()),
  records: Type.Integer(),
  lines: Type.Integer(),
  bytes: Type.Integer(),
  characters: Type.Integer(),
  length_histogram: Histogram,
  problems: Type.Array(DatasetProblem),
  problem_count: Type.Integer(),
  limits: Type.Object({ max_line_bytes: Type.Integer(), min_examples: Type.Integer(), max_bytes: Type.Integer() }),
});

export const PII_KINDS = ['email', 'phone', 'ip_address', 'credit_card', 'secret'] as const;

/** Near-duplicate removal when a request does not say: Jaccard 0.8 over word 5-grams. */
export const NEAR_DUPLICATE_DEFAULTS = { threshold: 0.8, unit: 'word', n: 5 } as const;

export const PreparationRulesRequest = Type.Object(
  {
    normalize_unicode: Type.Optional(Type.Boolean({ description: 'Unicode NFC. Default true.' })),
    remove_control_characters: Type.Optional(
      Type.Boolean({ description: 'C0/C1 controls, zero-width and bidi characters (keeps tab and newline). Default true.' }),
    ),
    normalize_whitespace: Type.Optional(Type.Boolean({ description: 'Runs of spaces, Unicode spaces, CRLF, blank-line runs. Default true.' })),
    deduplicate: Type.Optional(Type.Boolean({ description: 'Remove exact duplicate records (after cleaning). Default true.' })),
    near_duplicates: Type.Optional(
      Type.Union([
        Type.Boolean(),
        Type.Object(
          {
            threshold: Type.Optional(
              Type.Number({ exclusiveMinimum: 0, maximum: 1, default: NEAR_DUPLICATE_DEFAULTS.threshold, description: 'Jaccard similarity of shingle sets.' }),
            ),
            unit: Type.Optional(Type.Union([Type.Literal('word'), Type.Literal('char')], { default: NEAR_DUPLICATE_DEFAULTS.unit })),
            n: Type.Optional(Type.Integer({ minimum: 1, maximum: 32, default: NEAR_DUPLICATE_DEFAULTS.n, description: 'Shingle length in units.' })),
          },
          { additionalProperties: false },
        ),
      ]),
    ),
    scrub_pii: Type.Optional(
      Type.Union([
        Type.Boolean(),
        Type.Object(
          { types: Type.Optional(Type.Array(Type.Union(PII_KINDS.map((k) => Type.Literal(k))), { minItems: 1, uniqueItems: true })) },
          { additionalProperties: false },
        ),
      ]),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Data preparation rules; every rule is on unless set to false. Records are JSONL lines, or paragraphs of plain text. Personal data becomes <EMAIL>, <PHONE>, <IP_ADDRESS>, <CREDIT_CARD>, <SECRET>.',
  },
);
export type PreparationRulesRequest = Static<typeof PreparationRulesRequest>;

export const PrepareFileRequest = Type.Object(
  {
    rules: Type.Optional(PreparationRulesRequest),
    filename: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'Name of the new file. Default: <name>.prepared.<ext>.' })),
  },
  { additionalProperties: false },
);

export const FileReport = Type.Object(
  {
    object: Type.Literal('file.report'),
    file_id: Type.String(),
    status: Type.Union(FILE_STATUSES.map((s) => Type.Literal(s))),
    validation: Nullable(ValidationReportObject),
    preparation: Nullable(
      Type.Object({
        source_file: Type.String(),
        rules: Type.Record(Type.String(), Type.Unknown()),
        report: Nullable(Type.Record(Type.String(), Type.Unknown(), { description: 'records_in/out, counts per rule, pii counts, examples.' })),
      }),
    ),
  },
  { $id: 'FileReport' },
);

export const FileStatsQuery = Type.Object({
  model: Type.Optional(Type.String({ description: 'Count tokens with this model’s (or checkpoint’s) tokenizer.' })),
});

export const FileStats = Type.Object(
  {
    object: Type.Literal('file.stats'),
    file_id: Type.String(),
    format: Type.String(),
    records: Type.Integer(),
    characters: Type.Integer(),
    bytes: Type.Integer(),
    length_histogram: Histogram,
    tokens: Nullable(
      Type.Object({
        model: Type.String(),
        total: Type.Integer({ description: 'Tokens the trainer sees (chat data with its template, end-of-text between documents).' }),
        trained: Type.Integer({ description: 'Tokens that carry loss (answers of supervised data; all for text).' }),
        mean_per_record: Type.Number(),
        max_per_record: Type.Integer(),
        length_histogram: Histogram,
      }),
    ),
  },
  { $id: 'FileStats' },
);

export const FilePreviewQuery = Type.Object({
  model: Type.String({ description: 'The model (or checkpoint) whose tokenizer to use.' }),
  records: Type.Optional(Type.Integer({ minimum: 1, maximum: 20, default: 3 })),
});

export const FilePreview = Type.Object(
  {
    object: Type.Literal('file.preview'),
    file_id: Type.String(),
    model: Type.String(),
    records: Type.Array(
      Type.Object({
        line: Type.Integer(),
        tokens: Type.Array(
          Type.Object({ id: Type.Integer(), text: Type.String(), loss: Type.Boolean({ description: 'Whether training computes loss on this token.' }) }),
        ),
      }),
    ),
  },
  { $id: 'FilePreview' },
);
