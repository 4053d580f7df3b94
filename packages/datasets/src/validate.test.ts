import { describe, expect, it } from 'vitest';
import { DatasetValidator, MAX_REPORTED_PROBLEMS, validateBytes } from './validate';

const limits = { maxLineBytes: 1000, minExamples: 1, maxBytes: 10_000_000 };
const enc = (s: string) => new TextEncoder().encode(s);
const v = (text: string, name = 'd.jsonl', purpose = 'fine-tune', l = limits) => validateBytes(enc(text), name, purpose, l);

describe('DatasetValidator', () => {
  it.each([
    ['plain.txt', 'To be, or not to be\n\nthat is the question', 'text', 2],
    ['t.jsonl', '{"text": "a"}\n\n{"text": "b"}\n', 'jsonl_text', 2],
    ['pc.jsonl', '{"prompt": "2+2=", "completion": "4"}\n', 'jsonl_prompt_completion', 1],
    ['chat.jsonl', '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}', 'jsonl_chat', 1],
    [
      'dpo.jsonl',
      '{"input": {"messages": [{"role": "user", "content": "hi"}]}, "preferred_output": [{"role": "assistant", "content": "HELLO"}], "non_preferred_output": [{"role": "assistant", "content": "hello"}]}',
      'jsonl_preference',
      1,
    ],
    [
      'rft.jsonl',
      '{"messages": [{"role": "user", "content": "2+3?"}], "answer": "5"}\n{"messages": [{"role": "user", "content": "1+1?"}], "answer": 2}',
      'jsonl_reinforcement',
      2,
    ],
  ])('detects the format of %s', (name, text, format, records) => {
    const r = v(text, name);
    expect(r).toMatchObject({ format, records, problem_count: 0, problems: [] });
  });

  it('tells reinforcement prompts (ending in a user message) from chat records, and checks their messages by field', () => {
    const prompt = (content: unknown, role = 'user') => JSON.stringify({ messages: [{ role, content }], answer: '5' });
    const chat = JSON.stringify({
      messages: [
        { role: 'user', content: 'q' },
        { role: 'assistant', content: 'a' },
      ],
    });
    const r = v([prompt('2+3?'), prompt(7), chat].join('\n'));
    expect(r.format).toBe('jsonl_reinforcement');
    expect(r.problems.map((p) => [p.line, p.field, p.code])).toEqual([
      [2, 'messages[0].content', 'invalid_field'],
      [3, null, 'mixed_formats'],
    ]);
    expect(r.problems[1]?.message).toMatch(
      /chat \(ending in the assistant's answer\) record but line 1 set the file's format to .*prompt \(ending in a user message/,
    );
    // a record ending in a system message is neither: a chat record without its answer
    expect(v(prompt('be brief', 'system')).problems[0]?.message).toMatch(/the last message must be the assistant's answer/);
  });

  it('checks preference pairs (OpenAI’s DPO format) by line and field', () => {
    const user = { role: 'user', content: 'q' };
    const answer = (content: string, role = 'assistant') => [{ role, content }];
    const lines = [
      { input: { messages: [user] }, preferred_output: answer('A'), non_preferred_output: answer('b') }, // 1 ok
      { input: { messages: [user] }, non_preferred_output: answer('b') }, // 2 no preferred_output
      { input: { messages: [user] }, preferred_output: [...answer('A'), ...answer('B')], non_preferred_output: answer('b') }, // 3 two answers
      { input: { messages: [user] }, preferred_output: answer('A', 'user'), non_preferred_output: answer('b') }, // 4 not the assistant
      { input: [user], preferred_output: answer('A'), non_preferred_output: answer('b') }, // 5 input not {messages}
      { input: { messages: [{ role: 'robot', content: 'q' }] }, preferred_output: answer('A'), non_preferred_output: answer('') }, // 6 bad role, empty answer
      { input: { messages: [user] }, preferred_output: answer('A'), non_preferred_output: answer('c') }, // 7 ok
    ].map((l) => JSON.stringify(l));
    const r = v(lines.join('\n'));
    expect(r.format).toBe('jsonl_preference');
    expect(r.records).toBe(2);
    expect(r.problems.map((p) => [p.line, p.field])).toEqual([
      [2, 'preferred_output'],
      [3, 'preferred_output'],
      [4, 'preferred_output[0].role'],
      [5, 'input'],
      [6, 'input.messages[0].role'],
      [6, 'non_preferred_output[0].content'],
    ]);
    expect(r.problems[0]?.message).toMatch(/line 2: "preferred_output" must hold exactly one assistant message/);
    // a supervised-purpose file is prompt/completion or chat: pairs are fine-tune data, as OpenAI's
    expect(v(lines[0] as string, 'd.jsonl', 'supervised').problems[0]?.code).toBe('purpose_mismatch');
  });

  it('reports every bad line of a file with its line, field and reason', () => {
    const lines = [
      '{"prompt": "a", "completion": "b"}', // 1 ok
      '{"prompt": "a", "completion": 4}', // 2 completion not a string
      'not json', // 3
      '', // 4 blank: fine
      '[1, 2]', // 5
      '{"text": "x"}', // 6 mixed formats
      '{"foo": 1}', // 7 unknown shape
      '{"prompt": "q", "completion": ""}', // 8 empty completion
      '{"prompt": "q", "completion": "ok"}', // 9 ok
    ];
    const r = v(lines.join('\n'));
    expect(r.format).toBe('jsonl_prompt_completion');
    expect(r.records).toBe(2);
    expect(r.problems.map((p) => [p.line, p.field, p.code])).toEqual([
      [2, 'completion', 'invalid_field'],
      [3, null, 'invalid_json'],
      [5, null, 'not_an_object'],
      [6, null, 'mixed_formats'],
      [7, null, 'unknown_shape'],
      [8, 'completion', 'invalid_field'],
    ]);
    expect(r.problem_count).toBe(6);
    expect(r.problems[3]?.message).toMatch(/line 6 .*line 1/);
  });

  it('names the field inside chat messages', () => {
    const r = v(
      [
        JSON.stringify({
          messages: [
            { role: 'user', content: 'hi' },
            { role: 'robot', content: 'x' },
          ],
        }),
        JSON.stringify({
          messages: [
            { role: 'user', content: 3 },
            { role: 'assistant', content: 'x' },
          ],
        }),
        JSON.stringify({ messages: [] }),
      ].join('\n'),
    );
    expect(r.problems.map((p) => [p.line, p.field])).toEqual([
      [1, 'messages[1].role'],
      [1, 'messages[1].role'],
      [2, 'messages[0].content'],
      [3, 'messages'],
    ]);
  });

  it('keeps the first 100 problems and counts them all', () => {
    const r = v(Array.from({ length: 250 }, () => '{bad').join('\n'));
    expect(r.problems).toHaveLength(MAX_REPORTED_PROBLEMS);
    expect(r.problem_count).toBe(250);
    expect(r.problems.at(-1)?.line).toBe(100);
  });

  it('finds invalid UTF-8, NUL bytes and over-long lines by line, whatever the chunking', () => {
    const bytes = Buffer.concat([enc('good line\n'), Buffer.from([0xc3, 0x28, 0x0a]), enc('a\u0000b\n'), enc(`${'x'.repeat(50)}\n`), enc('end')]);
    const val = new DatasetValidator('t.txt', 'pretrain', { ...limits, maxLineBytes: 20 });
    for (let i = 0; i < bytes.length; i += 3) val.push(bytes.subarray(i, i + 3));
    const r = val.end();
    expect(r.problems.map((p) => [p.line, p.code])).toEqual([
      [2, 'invalid_utf8'],
      [3, 'binary_data'],
      [4, 'line_too_long'],
    ]);
    expect(r.lines).toBe(5);
    expect(r.records).toBe(2);
    expect(r.bytes).toBe(bytes.length);
  });

  it('reports a line nested past the depth limit, and strings spelled with NUL or lone-surrogate escapes, naming the field', () => {
    const deep = `{"text": "a", "x": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const rows = [deep, '{"prompt": "a\\u0000b", "completion": " c"}', '{"prompt": "q", "completion": " \\ud800"}', '{"prompt": "fine", "completion": " ok"}'];
    const r = v(`${rows.join('\n')}\n`, 'a.jsonl', 'fine-tune', { ...limits, maxLineBytes: 2 ** 20 });
    expect(r.problems.map((p) => [p.line, p.code, p.field])).toEqual([
      [1, 'too_deep', null],
      [2, 'invalid_string', 'prompt'],
      [3, 'invalid_string', 'completion'],
    ]);
    expect(r.problems[0]?.message).toMatch(/more than 64 levels deep/);
    expect(r.problems[1]?.message).toMatch(/line 2: prompt holds a NUL byte/);
    expect(r.records).toBe(1);
  });

  it('applies the limits: minimum examples and file size, and says which limit', () => {
    const r = v('{"text": "a"}\n{"text": "b"}\n', 'a.jsonl', 'fine-tune', { ...limits, minExamples: 10, maxBytes: 10 });
    expect(r.problems.map((p) => p.code)).toEqual(['file_too_large', 'too_few_examples']);
    expect(r.problems[1]?.message).toMatch(/2 example\(s\); at least 10/);
    expect(r.limits).toEqual({ max_line_bytes: 1000, min_examples: 10, max_bytes: 10 });
    expect(v(' \n\n', 'a.txt').problems.map((p) => p.code)).toEqual(['empty_file']);
  });

  it('checks that the purpose fits the content', () => {
    expect(v('just some prose\n', 'chat.txt', 'supervised').problems[0]).toMatchObject({ field: 'purpose', code: 'purpose_mismatch' });
    expect(v('{"prompt": "q", "completion": "a"}\n', 'p.jsonl', 'pretrain').problems[0]).toMatchObject({ code: 'purpose_mismatch' });
    expect(v('{"prompt": "q", "completion": "a"}\n', 'p.jsonl', 'supervised').problem_count).toBe(0);
    expect(v('prose\n', 'a.txt', 'fine-tune').problem_count).toBe(0);
  });

  it('builds a power-of-two histogram of record lengths', () => {
    const r = v(['a', 'bb', 'ccc', 'dddd', 'e'.repeat(100)].join('\n'), 'a.txt', 'pretrain');
    expect(r.length_histogram.buckets.filter((b) => b.count > 0)).toEqual([
      { le: 1, count: 1 },
      { le: 2, count: 1 },
      { le: 4, count: 2 },
      { le: 128, count: 1 },
    ]);
    expect(r.characters).toBe(110);
  });
});
