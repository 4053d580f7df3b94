import { describe, expect, it } from 'vitest';
import { CHAT_STOP, renderChat } from './chat-template';
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
  });

  it('renders chat lines with the chat template, loss on every assistant turn (or on all tokens)', () => {
    const line = JSON.stringify({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'hello' },
        { role: 'user', content: 'again' },
        { role: 'assistant', content: 'hi again' },
      ],
    });
    const [doc] = datasetDocuments(line, 'jsonl_chat');
    const text = (doc ?? []).map((s) => s.text).join('');
    // the template, written out by hand
    expect(text).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello<|im_end|>\n' +
        '<|im_start|>user\nagain<|im_end|>\n<|im_start|>assistant\nhi again<|im_end|>\n',
    );
    const trained = (doc ?? []).filter((s) => s.train).map((s) => s.text);
    expect(trained).toEqual(['hello<|im_end|>', 'hi again<|im_end|>']);
    const all = datasetDocuments(line, 'jsonl_chat', 'all')[0] ?? [];
    expect(all.every((s) => s.train)).toBe(true);
  });

  it('the serving prompt is the training text up to the assistant turn (round trip)', () => {
    const messages = [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello' },
    ];
    const [doc] = datasetDocuments(JSON.stringify({ messages }), 'jsonl_chat');
    const trainingText = (doc ?? []).map((s) => s.text).join('');
    const prompt = renderChat(messages.slice(0, 1));
    expect(trainingText.startsWith(prompt)).toBe(true);
    expect(trainingText.slice(prompt.length)).toBe(`hello${CHAT_STOP}\n`);
    expect(renderChat(messages, false)).toBe(trainingText);
  });
});
