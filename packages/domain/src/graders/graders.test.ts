// The graders: each metric against numbers worked out by hand, templates and formulas parsed and
// refused as the API reports them, and whole graders (string_check, text_similarity, multi).
import { describe, expect, it } from 'vitest';
import { CrucibleError } from '../errors';
import type { Grader } from '../schemas/graders';
import { compileFormula, FormulaError } from './formula';
import { compileGrader } from './grade';
import { bleu, cosine, fuzzyMatch, gleu, rougeL, rougeN } from './similarity';
import { parseTemplate, renderTemplate, TemplateError } from './templates';

const refusal = (f: () => unknown): CrucibleError => {
  try {
    f();
  } catch (err) {
    if (err instanceof CrucibleError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
};

describe('text similarity metrics', () => {
  it('fuzzy_match is 2 x LCS / (|a| + |b|) over characters (rapidfuzz’s ratio / 100)', () => {
    // kitten / sitting: the longest common subsequence is "ittn"
    expect(fuzzyMatch('kitten', 'sitting')).toBeCloseTo(8 / 13, 10);
    expect(fuzzyMatch('same', 'same')).toBe(1);
    expect(fuzzyMatch('abc', 'xyz')).toBe(0);
    expect(fuzzyMatch('', '')).toBe(1);
  });

  it('bleu: the geometric mean of the clipped n-gram precisions, with the brevity penalty', () => {
    // hypothesis "the cat sat on the mat", reference "the cat sat on a mat":
    // 1-grams 5/6 ("the" clipped to once), 2-grams 3/5, 3-grams 2/4, 4-grams 1/3; equal lengths
    expect(bleu('the cat sat on the mat', 'the cat sat on a mat')).toBeCloseTo(((5 / 6) * (3 / 5) * (2 / 4) * (1 / 3)) ** 0.25, 10);
    // shorter than the reference: 3 words against 6, every n-gram matches, BP = e^(1 - 6/3)
    expect(bleu('the cat sat', 'the cat sat on a mat')).toBeCloseTo(Math.exp(1 - 2), 10);
    // a one-word answer is scored on 1-grams
    expect(bleu('7', '7')).toBe(1);
    expect(bleu('12', '13')).toBe(0);
  });

  it('gleu: min(matches / hypothesis n-grams, matches / reference n-grams) over 1-4-grams', () => {
    // matches 5 + 3 + 2 + 1 = 11 over 6 + 5 + 4 + 3 = 18 n-grams on each side
    expect(gleu('the cat sat on the mat', 'the cat sat on a mat')).toBeCloseTo(11 / 18, 10);
    // 3 words against 6: 6 matches; 6 n-grams in the hypothesis, 18 in the reference
    expect(gleu('the cat sat', 'the cat sat on a mat')).toBeCloseTo(6 / 18, 10);
  });

  it('rouge_n and rouge_l: F1 of n-gram overlap and of the longest common word subsequence, in lower case', () => {
    // "the cat sat on the mat" / "The cat is on the mat.": bigrams in common: the cat, on the, the mat
    expect(rougeN('the cat sat on the mat', 'The cat is on the mat.', 2)).toBeCloseTo((2 * 3) / 10, 10);
    expect(rougeN('the cat sat on the mat', 'The cat is on the mat.', 1)).toBeCloseTo((2 * 5) / 12, 10);
    // the longest common subsequence: the cat on the mat (5 of 6 words each)
    expect(rougeL('the cat sat on the mat', 'The cat is on the mat.')).toBeCloseTo((2 * 5) / 12, 10);
    expect(rougeL('nothing here', 'different words')).toBe(0);
  });

  it('cosine is the cosine of the angle, clamped to [0, 1]', () => {
    expect(cosine(Float32Array.from([1, 0]), Float32Array.from([1, 1]))).toBeCloseTo(Math.SQRT1_2, 6);
    expect(cosine(Float32Array.from([1, 0]), Float32Array.from([-1, 0]))).toBe(0);
    expect(cosine(Float32Array.from([0, 0]), Float32Array.from([1, 0]))).toBe(0);
  });
});

describe('templates', () => {
  it('render the answer and fields of the line (nested, numbers, objects as JSON)', () => {
    const t = parseTemplate('{{ sample.output_text }} vs {{item.answer}} / {{item.meta.n}} / {{item.meta}}');
    expect(renderTemplate(t, { output_text: '42' }, { answer: 'forty-two', meta: { n: 7 } })).toBe('42 vs forty-two / 7 / {"n":7}');
  });

  it('refuse what they cannot read', () => {
    expect(() => parseTemplate('{{sample.output_json.x}}')).toThrow(TemplateError);
    expect(() => parseTemplate('{{answer}}')).toThrow(/sample.output_text or item.<field>/);
    expect(() => parseTemplate('{{item}}')).toThrow(/name a field/);
  });
});

describe('formulas', () => {
  it('follow arithmetic precedence, with ^ right-associative and the listed functions', () => {
    const f = compileFormula('a + 2 * b ^ 2 ^ 0.5 - max(a, b, 0.25) / 2', ['a', 'b']);
    expect(f({ a: 1, b: 4 })).toBeCloseTo(1 + 2 * 4 ** Math.SQRT2 - 2, 10);
    expect(compileFormula('-a + abs(-3) + floor(2.7) + ceil(0.2) + sqrt(16) + exp(0) + log(1)', ['a'])({ a: 1 })).toBe(-1 + 3 + 2 + 1 + 4 + 1 + 0);
    expect(compileFormula('(a + b) * 0.5', ['a', 'b'])({ a: 1, b: 0 })).toBe(0.5);
  });

  it('refuse unknown names, unknown functions and broken syntax, saying where', () => {
    expect(() => compileFormula('a + c', ['a', 'b'])).toThrow(/"c" is not one of the graders \(a, b\)/);
    expect(() => compileFormula('pow(a, 2)', ['a'])).toThrow(/unknown function pow/);
    expect(() => compileFormula('a +', ['a'])).toThrow(FormulaError);
    expect(() => compileFormula('(a', ['a'])).toThrow(/expected "\)"/);
    expect(() => compileFormula('a b', ['a', 'b'])).toThrow(/after a complete expression/);
    expect(() => compileFormula('a $ b', ['a', 'b'])).toThrow(/unexpected "\$"/);
  });
});

describe('graders', () => {
  const item = { answer: 'Paris', alt: 'paris' };

  it('string_check: eq, ne, like (contains), ilike (contains, any case) score 1 or 0', () => {
    const g = (operation: 'eq' | 'ne' | 'like' | 'ilike', reference = '{{item.answer}}') =>
      compileGrader({ type: 'string_check', name: 's', input: '{{sample.output_text}}', reference, operation });
    expect(g('eq').grade('Paris', item)).toBe(1);
    expect(g('eq').grade('paris', item)).toBe(0);
    expect(g('ne').grade('paris', item)).toBe(1);
    expect(g('like').grade('It is Paris.', item)).toBe(1);
    expect(g('like').grade('It is PARIS.', item)).toBe(0);
    expect(g('ilike').grade('It is PARIS.', item)).toBe(1);
    expect(g('eq').fields).toEqual([{ path: ['answer'], param: 'method.reinforcement.grader.reference' }]);
  });

  it('text_similarity scores by its metric; cosine needs embeddings', () => {
    const g = compileGrader({
      type: 'text_similarity',
      name: 't',
      input: '{{sample.output_text}}',
      reference: '{{item.answer}}',
      evaluation_metric: 'fuzzy_match',
    });
    expect(g.grade('Pari', item)).toBeCloseTo(8 / 9, 10);
    const c = compileGrader({ type: 'text_similarity', name: 'c', input: '{{sample.output_text}}', reference: '{{item.answer}}', evaluation_metric: 'cosine' });
    expect(c.needsEmbeddings).toBe(true);
    const embed = (texts: string[]) => texts.map((t) => Float32Array.from([t.length, 1]));
    expect(c.grade('Paris', item, embed)).toBeCloseTo(1, 6);
  });

  it('multi combines its graders by the formula, given as an object of graders or as one named grader', () => {
    const g = compileGrader({
      type: 'multi',
      name: 'm',
      graders: {
        exact: { type: 'string_check', name: 'exact', input: '{{sample.output_text}}', reference: '{{item.answer}}', operation: 'eq' },
        close: { type: 'text_similarity', name: 'close', input: '{{sample.output_text}}', reference: '{{item.alt}}', evaluation_metric: 'fuzzy_match' },
      },
      calculate_output: '0.5 * exact + 0.5 * close',
    });
    expect(g.grade('Paris', item)).toBeCloseTo(0.5 + 0.5 * (8 / 10), 10);
    expect(g.fields.map((f) => f.path.join('.'))).toEqual(['answer', 'alt']);
    const one = compileGrader({
      type: 'multi',
      name: 'm',
      graders: { type: 'string_check', name: 'hit', input: '{{sample.output_text}}', reference: 'x', operation: 'like' },
      calculate_output: '2 * hit - 1',
    });
    expect(one.grade('xyz', {})).toBe(1);
    expect(one.grade('abc', {})).toBe(-1);
  });

  it('refuses graders that need a hosted model or Python (unsupported_grader), meteor, and bad templates or formulas (invalid_grader), naming the field', () => {
    const python = refusal(() => compileGrader({ type: 'python', name: 'p', source: 'def grade(s, i): return 1' } as Grader));
    expect([python.code, python.param]).toEqual(['unsupported_grader', 'method.reinforcement.grader.type']);
    const model = refusal(() => compileGrader({ type: 'score_model', name: 's', model: 'gpt-4o', input: [] } as Grader));
    expect(model.code).toBe('unsupported_grader');
    const meteor = refusal(() =>
      compileGrader({ type: 'text_similarity', name: 't', input: '{{sample.output_text}}', reference: 'x', evaluation_metric: 'meteor' }),
    );
    expect([meteor.code, meteor.param]).toEqual(['unsupported_grader', 'method.reinforcement.grader.evaluation_metric']);
    const template = refusal(() => compileGrader({ type: 'string_check', name: 's', input: '{{sample.output_json}}', reference: 'x', operation: 'eq' }));
    expect([template.code, template.param]).toEqual(['invalid_grader', 'method.reinforcement.grader.input']);
    const nested = refusal(() =>
      compileGrader({
        type: 'multi',
        name: 'm',
        graders: { a: { type: 'python', name: 'a', source: '' } as Grader & { type: 'python' } },
        calculate_output: 'a',
      }),
    );
    expect(nested.param).toBe('method.reinforcement.grader.graders.a.type');
    const formula = refusal(() =>
      compileGrader({
        type: 'multi',
        name: 'm',
        graders: { a: { type: 'string_check', name: 'a', input: 'x', reference: 'x', operation: 'eq' } },
        calculate_output: 'a + b',
      }),
    );
    expect([formula.code, formula.param]).toEqual(['invalid_grader', 'method.reinforcement.grader.calculate_output']);
  });
});
