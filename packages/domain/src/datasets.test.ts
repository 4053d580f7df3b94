import { describe, expect, it } from 'vitest';
import { datasetDocuments, inspectDataset } from './datasets';
import type { CrucibleError } from './errors';

const enc = (s: string) => new TextEncoder().encode(s);

function errorOf(fn: () => unknown): CrucibleError {
  try {
    fn();
  } catch (e) {
    return e as CrucibleError;
  }
  throw new Error('expected an error');
}

describe('inspectDataset', () => {
  it.each([
    ['plain.txt', 'To be, or not to be\nthat is the question', 'text', 2],
    ['t.jsonl', '{"text": "a"}\n\n{"text": "b"}\n', 'jsonl_text', 2],
    ['pc.jsonl', '{"prompt": "2+2=", "completion": "4"}\n', 'jsonl_prompt_completion', 1],
    ['chat.jsonl', '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}', 'jsonl_chat', 1],
  ])('recognizes %s', (name, text, format, lines) => {
    expect(inspectDataset(enc(text), name)).toEqual({ format, lines });
  });

  it.each([
    ['{"text": "a"}\n{"text": "b"\n', 'line 2', /line 2 is not valid JSON/],
    ['{"text": "a"}\n[1, 2]\n', 'line 2', /line 2 is not a JSON object/],
    [
      '{"text": "a"}\n{"prompt": "q", "completion": "a"}',
      'line 2',
      /prompt\/completion record but earlier lines are jsonl_text|jsonl_prompt_completion record/,
    ],
    ['{"prompt": "q", "completion": 4}', 'line 1', /must both be strings/],
    ['{"messages": [{"role": "user", "content": "hi"}]}', 'line 1', /last message must be the assistant/],
    ['{"foo": 1}', 'line 1', /none of "text"/],
  ])('names the line of a bad JSONL record: %s', (text, param, message) => {
    const e = errorOf(() => inspectDataset(enc(text), 'x.jsonl'));
    expect(e.code).toBe('invalid_file');
    expect(e.param).toBe(param);
    expect(e.message).toMatch(message);
  });

  it('rejects empty files and invalid UTF-8', () => {
    expect(errorOf(() => inspectDataset(enc('  \n'), 'a.txt')).message).toMatch(/empty/);
    expect(errorOf(() => inspectDataset(Uint8Array.from([0xc3, 0x28]), 'a.txt')).message).toMatch(/UTF-8/);
  });
});

describe('datasetDocuments', () => {
  it('marks supervised prompts as no-loss and answers as trained', () => {
    expect(datasetDocuments('{"prompt": "Q: 2+2?", "completion": " 4"}', 'jsonl_prompt_completion')).toEqual([
      [
        { text: 'Q: 2+2?', train: false },
        { text: ' 4', train: true },
      ],
    ]);
    const chat = datasetDocuments('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}', 'jsonl_chat');
    expect(chat).toEqual([
      [
        { text: 'user: hi\nassistant:', train: false },
        { text: ' hello\n', train: true },
      ],
    ]);
  });
});
