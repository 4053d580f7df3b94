import { describe, expect, it } from 'vitest';
import { CHAT_STOP, renderChat } from './chat-template';
import { datasetDocuments } from './datasets';

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
