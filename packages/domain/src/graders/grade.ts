// A grader compiled once (when a reinforcement job is created, and again by its worker): its
// templates and formula parsed, unsupported kinds refused, and the item fields it reads listed so
// that the data can be checked before training. `grade` scores one sampled answer of one line.

import { CrucibleError } from '../errors';
import type { Grader, StringCheckGrader, SubGrader, TextSimilarityGrader } from '../schemas/graders';
import { compileFormula, FormulaError } from './formula';
import { bleu, cosine, fuzzyMatch, gleu, rougeL, rougeN } from './similarity';
import { itemFields, parseTemplate, renderTemplate, TemplateError, type TemplatePart } from './templates';

/** Embeds texts as vectors (the cosine metric's): supplied by the worker, from the job's base model. */
export type Embed = (texts: string[]) => Float32Array[];

export interface CompiledGrader {
  /** The answer's score for a line (an object of the dataset). */
  grade(outputText: string, item: unknown, embed?: Embed): number;
  /** Item fields the templates read: each as its dotted path, with the template's parameter. */
  readonly fields: ReadonlyArray<{ path: string[]; param: string }>;
  /** Whether grading needs embeddings (a cosine text_similarity). */
  readonly needsEmbeddings: boolean;
}

export const GRADER_PARAM = 'method.reinforcement.grader';

const WHY_UNSUPPORTED: Record<string, string> = {
  python: 'python graders run code in a sandbox this platform does not have',
  score_model: 'score_model graders call a hosted model',
  label_model: 'label_model graders call a hosted model',
};

/** Compiles a grader; throws CrucibleError unsupported_grader or invalid_grader naming the field. */
export function compileGrader(g: Grader, param = GRADER_PARAM): CompiledGrader {
  if (g.type !== 'multi') return compileSingle(g, param);
  const graders: Record<string, SubGrader> =
    'type' in g.graders && typeof g.graders.type === 'string'
      ? { [subName(g.graders, param)]: g.graders as SubGrader }
      : (g.graders as Record<string, SubGrader>);
  const names = Object.keys(graders);
  if (names.length === 0) throw new CrucibleError('invalid_grader', 'a multi grader needs at least one grader', `${param}.graders`);
  const compiled = names.map((n) => [n, compileSingle(graders[n] as SubGrader, `${param}.graders.${n}`)] as const);
  let formula: ReturnType<typeof compileFormula>;
  try {
    formula = compileFormula(g.calculate_output, names);
  } catch (err) {
    if (err instanceof FormulaError) throw new CrucibleError('invalid_grader', `calculate_output: ${err.message}`, `${param}.calculate_output`);
    throw err;
  }
  return {
    fields: compiled.flatMap(([, c]) => c.fields),
    needsEmbeddings: compiled.some(([, c]) => c.needsEmbeddings),
    grade(outputText, item, embed) {
      const scores: Record<string, number> = {};
      for (const [n, c] of compiled) scores[n] = c.grade(outputText, item, embed);
      const v = formula(scores);
      return Number.isFinite(v) ? v : 0;
    },
  };
}

function subName(g: SubGrader, param: string): string {
  const n = g.name;
  if (typeof n !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(n)) {
    throw new CrucibleError('invalid_grader', 'a multi grader’s single grader needs a name the formula can use (letters, digits, _)', `${param}.graders.name`);
  }
  return n;
}

const runsHere = (g: SubGrader): g is StringCheckGrader | TextSimilarityGrader => g.type === 'string_check' || g.type === 'text_similarity';

function compileSingle(g: SubGrader, param: string): CompiledGrader {
  if (!runsHere(g)) {
    throw new CrucibleError('unsupported_grader', `${WHY_UNSUPPORTED[g.type]}; use string_check, text_similarity or multi`, `${param}.type`);
  }
  const input = template(g.input, `${param}.input`);
  const reference = template(g.reference, `${param}.reference`);
  const fields = [
    ...itemFields(input).map((path) => ({ path, param: `${param}.input` })),
    ...itemFields(reference).map((path) => ({ path, param: `${param}.reference` })),
  ];
  const texts = (outputText: string, item: unknown) =>
    [renderTemplate(input, { output_text: outputText }, item), renderTemplate(reference, { output_text: outputText }, item)] as const;
  if (g.type === 'string_check') {
    const check = STRING_CHECKS[g.operation] as (a: string, b: string) => boolean;
    return { fields, needsEmbeddings: false, grade: (o, item) => (check(...texts(o, item)) ? 1 : 0) };
  }
  if (g.evaluation_metric === 'meteor') {
    throw new CrucibleError(
      'unsupported_grader',
      'meteor needs WordNet’s synonyms, which this platform does not ship; use bleu, gleu, rouge_* or fuzzy_match',
      `${param}.evaluation_metric`,
    );
  }
  if (g.evaluation_metric === 'cosine') {
    return {
      fields,
      needsEmbeddings: true,
      grade(o, item, embed) {
        if (!embed) throw new Error('the cosine metric needs embeddings');
        const [a, b] = embed([...texts(o, item)]);
        return cosine(a as Float32Array, b as Float32Array);
      },
    };
  }
  const metric = SIMILARITY[g.evaluation_metric] as (a: string, b: string) => number;
  return { fields, needsEmbeddings: false, grade: (o, item) => metric(...texts(o, item)) };
}

function template(source: string, param: string): TemplatePart[] {
  try {
    return parseTemplate(source);
  } catch (err) {
    if (err instanceof TemplateError) throw new CrucibleError('invalid_grader', err.message, param);
    throw err;
  }
}

const STRING_CHECKS: Record<string, (input: string, reference: string) => boolean> = {
  eq: (a, b) => a === b,
  ne: (a, b) => a !== b,
  like: (a, b) => a.includes(b),
  ilike: (a, b) => a.toLowerCase().includes(b.toLowerCase()),
};

const SIMILARITY: Record<string, (input: string, reference: string) => number> = {
  fuzzy_match: fuzzyMatch,
  bleu,
  gleu,
  rouge_1: (a, b) => rougeN(a, b, 1),
  rouge_2: (a, b) => rougeN(a, b, 2),
  rouge_3: (a, b) => rougeN(a, b, 3),
  rouge_4: (a, b) => rougeN(a, b, 4),
  rouge_5: (a, b) => rougeN(a, b, 5),
  rouge_l: rougeL,
};
