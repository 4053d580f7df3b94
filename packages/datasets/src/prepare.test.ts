import { describe, expect, it } from 'vitest';
import { DEFAULT_RULES, PreparationError, preparedFileName, prepareText, resolveRules } from './prepare';

const only = (rule: string, extra: object = {}) =>
  resolveRules({
    normalize_unicode: false,
    remove_control_characters: false,
    normalize_whitespace: false,
    deduplicate: false,
    near_duplicates: false,
    scrub_pii: false,
    [rule]: true,
    ...extra,
  });

describe('preparation rules', () => {
  it('normalises to NFC', () => {
    const { output, report } = prepareText('{"text": "cafe\u0301"}\n{"text": "caf\u00e9"}\n', 'jsonl_text', only('normalize_unicode'));
    expect(output).toBe('{"text":"caf\u00e9"}\n{"text":"caf\u00e9"}\n');
    expect(report.counts.normalize_unicode).toBe(1);
    expect(report.examples[0]).toMatchObject({ rule: 'normalize_unicode', line: 1 });
  });

  it('removes control characters but keeps tabs and newlines', () => {
    const { output, report } = prepareText(JSON.stringify({ text: 'a\u0007b\u200Bc\td\ne\u0000' }), 'jsonl_text', only('remove_control_characters'));
    expect(JSON.parse(output).text).toBe('abc\td\ne');
    expect(report.control_characters_removed).toBe(3);
  });

  it('normalises whitespace (paragraphs trimmed, a completion keeps its leading space)', () => {
    const text = prepareText('  To  be,\u00A0or   not  \nto be\t\t \n', 'text', only('normalize_whitespace'));
    expect(text.output).toBe('To be, or not\nto be\n');
    const pc = prepareText(JSON.stringify({ prompt: 'Q:  2+2?', completion: ' 4  ' }), 'jsonl_prompt_completion', only('normalize_whitespace'));
    expect(JSON.parse(pc.output)).toEqual({ prompt: 'Q: 2+2?', completion: ' 4 ' });
  });

  it('removes exact duplicates after cleaning, naming the kept line', () => {
    const rows = ['{"text": "a  b"}', '{"text": "c"}', '{"text": "a b"}', '{"text": "c"}'].join('\n');
    const { output, report } = prepareText(rows, 'jsonl_text', resolveRules({ near_duplicates: false, scrub_pii: false }));
    expect(output).toBe('{"text":"a b"}\n{"text":"c"}\n');
    expect(report.counts.exact_duplicates).toBe(2);
    expect(report.examples.filter((e) => e.rule === 'exact_duplicates').map((e) => [e.line, e.duplicate_of_line])).toEqual([
      [3, 1],
      [4, 2],
    ]);
    expect(report).toMatchObject({ records_in: 4, records_out: 2 });
  });

  it('removes near duplicates at the threshold and keeps those below', () => {
    const w = (ids: number[]) => JSON.stringify({ text: ids.map((i) => `w${i}`).join(' ') });
    const rows = [w([1, 2, 3, 4, 5, 6, 7, 8, 9]), w([1, 2, 3, 4, 5, 6, 7, 8, 10]), w([21, 22, 23, 24, 25, 26, 27, 28]), w([21, 22, 23, 24, 25, 26, 27, 29])];
    const { report } = prepareText(rows.join('\n'), 'jsonl_text', only('near_duplicates', { near_duplicates: { threshold: 0.8, unit: 'word', n: 1 } }));
    expect(report.counts.near_duplicates).toBe(1); // 8/10 = 0.8 goes, 7/9 stays
    expect(report.examples.find((e) => e.rule === 'near_duplicates')).toMatchObject({ line: 2, duplicate_of_line: 1, similarity: 0.8 });
    expect(report.records_out).toBe(3);
  });

  it('scrubs personal data in every string field, never in roles', () => {
    const row = {
      messages: [
        { role: 'user', content: 'my mail is a.b@example.com' },
        { role: 'assistant', content: 'noted, a.b@example.com' },
      ],
    };
    const { output, report } = prepareText(JSON.stringify(row), 'jsonl_chat', only('scrub_pii'));
    expect(JSON.parse(output).messages).toEqual([
      { role: 'user', content: 'my mail is <EMAIL>' },
      { role: 'assistant', content: 'noted, <EMAIL>' },
    ]);
    expect(report.pii.email).toBe(2);
    expect(report.examples[0]).toMatchObject({ rule: 'scrub_pii', types: ['email'] });
  });

  it('treats plain text as paragraphs', () => {
    const { output, report } = prepareText('First para\nline two\n\n\nSecond\n\nFirst para\nline two\n', 'text', DEFAULT_RULES);
    expect(output).toBe('First para\nline two\n\nSecond\n');
    expect(report.counts.exact_duplicates).toBe(1);
    expect(report.examples.find((e) => e.rule === 'exact_duplicates')).toMatchObject({ line: 7, duplicate_of_line: 1 });
  });
});

describe('sources the pipeline cannot prepare', () => {
  it('refuses a line nested past the depth limit with a PreparationError naming it (never a stack overflow)', () => {
    const deep = `{"text": "a", "x": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    expect(() => prepareText(`{"text": "ok"}\n${deep}\n`, 'jsonl_text', DEFAULT_RULES)).toThrow(PreparationError);
    expect(() => prepareText(`{"text": "ok"}\n${deep}\n`, 'jsonl_text', DEFAULT_RULES)).toThrow(/line 2 nests .* more than 64 levels deep/);
  });
});

describe('preparedFileName', () => {
  it('keeps the extension, and a JSONL file stays named .jsonl', () => {
    expect(preparedFileName('raw.jsonl', 'jsonl_text')).toBe('raw.prepared.jsonl');
    expect(preparedFileName('corpus.txt', 'text')).toBe('corpus.prepared.txt');
    expect(preparedFileName('raw.jsonl', 'jsonl_chat', 'clean')).toBe('clean.jsonl');
    expect(preparedFileName('README', 'text')).toBe('README.prepared');
  });
});
