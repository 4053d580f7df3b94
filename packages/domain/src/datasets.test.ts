import { describe, expect, it } from 'vitest';
import { CHAT_STOP, renderChat } from './chat-template';
import { datasetDocuments, UnknownCharacters, unknownCharacters } from './datasets';

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

describe('UnknownCharacters (a file read line by line)', () => {
  const known = (ch: string) => /[a-z \n]/.test(ch);
  it('finds the characters a vocabulary lacks, with the first line of each, and the newline once', () => {
    const u = new UnknownCharacters('text', (ch) => /[a-z ]/.test(ch), ['<|endoftext|>']);
    ['ab <|endoftext|>', 'cD', 'E!D'].forEach((l, i, all) => {
      u.line(l, i + 1, i === all.length - 1);
    });
    expect(u.result()).toEqual([
      { char: 'D', line: 2 },
      { char: 'E', line: 3 },
      { char: '!', line: 3 },
      { char: '\n', line: 1 },
    ]);
  });

  it('reads JSONL records as the trainer renders them, skipping blank lines; a one-line text has no newline', () => {
    const u = new UnknownCharacters('jsonl_prompt_completion', known, []);
    u.line(JSON.stringify({ prompt: 'a', completion: 'B' }), 1);
    u.line('   ', 2);
    u.line(JSON.stringify({ prompt: 'C?', completion: 'b' }), 3, true);
    expect(u.result()).toEqual([
      { char: 'B', line: 1 },
      { char: 'C', line: 3 },
      { char: '?', line: 3 },
    ]);
    const one = new UnknownCharacters('text', (ch) => ch === 'a', []);
    one.line('aaa', 1, true);
    expect(one.result()).toEqual([]);
  });

  it('stops at the limit', () => {
    expect(unknownCharacters('0123456789ABC', 'text', () => false, [], 3).map((m) => m.char)).toEqual(['0', '1', '2']);
  });
});
