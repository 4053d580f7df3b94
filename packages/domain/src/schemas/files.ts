// The file resource (datasets), shaped like OpenAI's, with Crucible's validation report, data
// preparation, statistics and tokenization preview.
import { type Static, Type } from '@sinclair/typebox';
import { Nullable } from './common';

export const FILE_FORMATS = ['text', 'jsonl_text', 'jsonl_prompt_completion', 'jsonl_chat', 'jsonl_preference', 'jsonl_reinforcement'] as const;
export type FileFormat = (typeof FILE_FORMATS)[number];

/** fine-tune (OpenAI's; any format), pretrain (text), supervised (prompt/completion or chat), evals (any). Preference pairs (dpo) and reinforcement prompts are fine-tune files, as OpenAI's. */
export const FILE_PURPOSES = ['fine-tune', 'pretrain', 'supervised', 'evals'] as const;

/** The formats each purpose accepts (validation reports a mismatch as purpose_mismatch). */
export const PURPOSE_FORMATS: Record<(typeof FILE_PURPOSES)[number], readonly FileFormat[]> = {
  'fine-tune': FILE_FORMATS,
  pretrain: ['text', 'jsonl_text'],
  supervised: ['jsonl_prompt_completion', 'jsonl_chat'],
  evals: ['text', 'jsonl_text', 'jsonl_prompt_completion', 'jsonl_chat'],
};

export const FILE_STATUSES = ['pending', 'processed', 'error'] as const;

const FileFormatSchema = (description?: string) =>
  Type.Union(
    FILE_FORMATS.map((f) => Type.Literal(f)),
    { description },
  );

/** Why a line (or the whole file) is refused. */
export const PROBLEM_CODES = [
  'invalid_utf8',
  'binary_data',
  'line_too_long',
  'invalid_json',
  'too_deep',
  'invalid_string',
  'not_an_object',
  'unknown_shape',
  'mixed_formats',
  'invalid_field',
  'empty_file',
  'too_few_examples',
  'file_too_large',
  'purpose_mismatch',
  'processing_failed',
] as const;
export type ProblemCode = (typeof PROBLEM_CODES)[number];

export const DatasetProblem = Type.Object(
  {
    line: Nullable(Type.Integer({ description: '1-based line; null for a problem of the whole file.' })),
    field: Nullable(Type.String({ description: 'The record field (messages[2].role), or the setting (purpose, file).' })),
    code: Type.Union(
      PROBLEM_CODES.map((c) => Type.Literal(c)),
      { description: 'What is wrong: invalid_json, invalid_field, mixed_formats, line_too_long, too_few_examples, purpose_mismatch, ...' },
    ),
    message: Type.String(),
  },
  { $id: 'DatasetProblem' },
);
export type DatasetProblem = Static<typeof DatasetProblem>;

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
      FileFormatSchema(
        'What Crucible found in the file: plain text, or JSONL of {text}, {prompt, completion}, {messages} or preference pairs {input, preferred_output, non_preferred_output}. null while pending.',
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

/** Record lengths in power-of-two buckets: `le` is the bucket's upper bound. */
export const LengthHistogram = Type.Object({
  unit: Type.Union([Type.Literal('characters'), Type.Literal('tokens')]),
  buckets: Type.Array(Type.Object({ le: Type.Integer({ description: 'Upper bound of the bucket (powers of two).' }), count: Type.Integer() })),
});
export type LengthHistogram = Static<typeof LengthHistogram>;

/** What validation found in a file (stored with it; GET /v1/files/{id}/report). */
export const ValidationReport = Type.Object(
  {
    format: Nullable(FileFormatSchema('What the file holds; null when nothing valid was found.')),
    records: Type.Integer({ description: 'Examples: non-empty lines of text, or JSONL records.' }),
    lines: Type.Integer(),
    bytes: Type.Integer(),
    characters: Type.Integer({ description: "Characters of the records' text (for JSONL: of their string fields)." }),
    length_histogram: LengthHistogram,
    problems: Type.Array(DatasetProblem, { description: 'The first 100 problems, in line order.' }),
    problem_count: Type.Integer(),
    limits: Type.Object({ max_line_bytes: Type.Integer(), min_examples: Type.Integer(), max_bytes: Type.Integer() }),
  },
  { $id: 'ValidationReport' },
);
export type ValidationReport = Static<typeof ValidationReport>;

export const PII_KINDS = ['email', 'phone', 'ip_address', 'credit_card', 'secret'] as const;
export type PiiKind = (typeof PII_KINDS)[number];

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

const NearDuplicateRule = Type.Object({
  threshold: Type.Number({ description: 'Jaccard similarity of shingle sets.' }),
  unit: Type.Union([Type.Literal('word'), Type.Literal('char')]),
  n: Type.Integer({ description: 'Shingle length in units.' }),
});
const PiiKindSchema = Type.Union(PII_KINDS.map((k) => Type.Literal(k)));

/** A request's rules resolved over the defaults: what a preparation ran with (every field set). */
export const PreparationRules = Type.Object(
  {
    normalize_unicode: Type.Boolean(),
    remove_control_characters: Type.Boolean(),
    normalize_whitespace: Type.Boolean(),
    deduplicate: Type.Boolean(),
    near_duplicates: Type.Union([Type.Literal(false), NearDuplicateRule]),
    scrub_pii: Type.Union([Type.Literal(false), Type.Object({ types: Type.Array(PiiKindSchema) })]),
  },
  { description: "The preparation rules a file was (or a job's training file is) prepared with, resolved over the defaults." },
);
export type PreparationRules = Static<typeof PreparationRules>;

/** The rules a preparation report counts by (deduplicate counts as exact_duplicates). */
export const RULE_NAMES = [
  'normalize_unicode',
  'remove_control_characters',
  'normalize_whitespace',
  'scrub_pii',
  'exact_duplicates',
  'near_duplicates',
] as const;
export type RuleName = (typeof RULE_NAMES)[number];

/** An object with a count for each of `keys`. */
function countsOf<K extends string>(keys: readonly K[], description: string) {
  const properties = Object.fromEntries(keys.map((k) => [k, Type.Integer()]));
  return Type.Unsafe<Record<K, number>>(Type.Object(properties, { description, additionalProperties: false }));
}

export const PreparationExample = Type.Object({
  rule: Type.Union(RULE_NAMES.map((r) => Type.Literal(r))),
  line: Type.Integer({ description: 'First line of the record in the input file.' }),
  before: Type.Optional(Type.String()),
  after: Type.Optional(Type.String()),
  duplicate_of_line: Type.Optional(Type.Integer({ description: 'For duplicates: the line of the record kept.' })),
  similarity: Type.Optional(Type.Number()),
  types: Type.Optional(Type.Array(PiiKindSchema, { description: 'For scrubbing: the kinds replaced.' })),
});
export type PreparationExample = Static<typeof PreparationExample>;

/** What a preparation did: records in and out, changes per rule, a few examples of each. */
export const PreparationReport = Type.Object(
  {
    rules: PreparationRules,
    format: FileFormatSchema(),
    records_in: Type.Integer(),
    records_out: Type.Integer(),
    counts: countsOf(RULE_NAMES, 'Records changed (cleaning rules) or removed (duplicates) by each rule.'),
    control_characters_removed: Type.Integer(),
    pii: countsOf(PII_KINDS, 'Values replaced, per kind of personal data.'),
    examples: Type.Array(PreparationExample, { description: 'Up to 3 examples per rule.' }),
  },
  { $id: 'PreparationReport' },
);
export type PreparationReport = Static<typeof PreparationReport>;

/** What a prepared file's record holds: its rules, and its report once it is made. */
export interface StoredPreparation {
  rules: PreparationRules;
  report: PreparationReport | null;
}

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
    validation: Nullable(ValidationReport),
    preparation: Nullable(
      Type.Object({
        source_file: Type.String(),
        rules: PreparationRules,
        report: Nullable(PreparationReport),
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
    length_histogram: LengthHistogram,
    tokens: Nullable(
      Type.Object({
        model: Type.String(),
        total: Type.Integer({ description: 'Tokens the trainer sees (chat data with its template, end-of-text between documents).' }),
        trained: Type.Integer({ description: 'Tokens that carry loss (answers of supervised data; all for text).' }),
        mean_per_record: Type.Number(),
        max_per_record: Type.Integer(),
        length_histogram: LengthHistogram,
        unknown_characters: Type.Array(Type.Object({ char: Type.String(), line: Type.Integer() }), {
          description:
            'Characters a character-level tokenizer lacks, with the first line of each (a job from this model refuses the file for them); empty for BPE.',
        }),
        lacks_chat_tokens: Type.Boolean({ description: 'Chat data on a character-level tokenizer without the chat template’s tokens.' }),
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
