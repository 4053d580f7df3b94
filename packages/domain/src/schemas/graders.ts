// OpenAI's graders, as the reinforcement method takes them. The ones that need no outside service
// are declared in full (string_check, text_similarity, multi); the ones that need a hosted model or
// Python (score_model, label_model, python) are accepted by the schema so that a job naming one is
// refused with `unsupported_grader`, saying why, rather than with a schema error.
import { type Static, Type } from '@sinclair/typebox';

const template = (what: string) =>
  Type.String({
    minLength: 1,
    maxLength: 4096,
    description: `${what}: text with {{sample.output_text}} (the model's answer) and {{item.<field>}} (a field of the training line, dotted paths allowed).`,
  });
const name = Type.String({ minLength: 1, maxLength: 128, description: 'The grader’s name (a multi grader’s formula refers to its graders by name).' });

export const STRING_CHECK_OPERATIONS = ['eq', 'ne', 'like', 'ilike'] as const;
export const StringCheckGrader = Type.Object(
  {
    type: Type.Literal('string_check'),
    name,
    input: template('The text checked'),
    reference: template('What it is checked against'),
    operation: Type.Union(
      STRING_CHECK_OPERATIONS.map((o) => Type.Literal(o)),
      { description: 'eq: equal; ne: not equal; like: input contains reference; ilike: the same, ignoring case. 1 when it holds, else 0.' },
    ),
  },
  { additionalProperties: false },
);
export type StringCheckGrader = Static<typeof StringCheckGrader>;

/** The metrics text_similarity computes here (meteor needs WordNet's synonyms: refused). */
export const SIMILARITY_METRICS = ['fuzzy_match', 'bleu', 'gleu', 'rouge_1', 'rouge_2', 'rouge_3', 'rouge_4', 'rouge_5', 'rouge_l', 'cosine'] as const;
export type SimilarityMetric = (typeof SIMILARITY_METRICS)[number];
export const TextSimilarityGrader = Type.Object(
  {
    type: Type.Literal('text_similarity'),
    name,
    input: template('The text graded'),
    reference: template('The text it is compared with'),
    evaluation_metric: Type.Union(
      [...SIMILARITY_METRICS, 'meteor' as const].map((m) => Type.Literal(m)),
      {
        description:
          'A score in [0, 1]. fuzzy_match: 2 x LCS / (|input| + |reference|) over characters; bleu: sentence BLEU over words (up to 4-grams, fewer for short texts, brevity penalty); gleu: Google-BLEU (min of n-gram precision and recall, 1-4); rouge_n: F1 of n-gram overlap; rouge_l: F1 of the longest common word subsequence (ROUGE words: lower case, letters and digits); cosine: cosine similarity of the two texts’ embeddings by the job’s base model (mean of its final hidden states). meteor: refused (unsupported_grader).',
      },
    ),
    pass_threshold: Type.Optional(Type.Number({ description: 'Accepted for OpenAI’s evals; training uses the score itself.' })),
  },
  { additionalProperties: false },
);
export type TextSimilarityGrader = Static<typeof TextSimilarityGrader>;

/** Graders that need a hosted model or a Python sandbox: their shape is OpenAI's, and a job naming one is refused. */
export const UNSUPPORTED_GRADERS = ['python', 'score_model', 'label_model'] as const;
export const UnsupportedGrader = Type.Object(
  { type: Type.Union(UNSUPPORTED_GRADERS.map((t) => Type.Literal(t))), name: Type.Optional(Type.String()) },
  { additionalProperties: true, description: 'Needs a hosted model or Python: refused with unsupported_grader.' },
);

export type UnsupportedGrader = Static<typeof UnsupportedGrader>;

export const SubGrader = Type.Union([StringCheckGrader, TextSimilarityGrader, UnsupportedGrader]);
export type SubGrader = Static<typeof SubGrader>;

export const MultiGrader = Type.Object(
  {
    type: Type.Literal('multi'),
    name,
    graders: Type.Union([SubGrader, Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), SubGrader)], {
      description: 'The graders combined: one grader, or an object of graders by name (the formula uses those names).',
    }),
    calculate_output: Type.String({
      minLength: 1,
      maxLength: 1024,
      description: 'A formula over the graders’ scores by name: numbers, + - * / ^, parentheses, min, max, abs, floor, ceil, exp, sqrt, log.',
    }),
  },
  { additionalProperties: false },
);
export type MultiGrader = Static<typeof MultiGrader>;

export const Grader = Type.Union([StringCheckGrader, TextSimilarityGrader, MultiGrader, UnsupportedGrader], {
  description:
    'How a reinforcement job scores each sampled answer (OpenAI’s grader objects). string_check, text_similarity and multi run here; python, score_model and label_model are refused (unsupported_grader).',
});
export type Grader = Static<typeof Grader>;
