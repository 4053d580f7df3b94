import { CharTokenizer } from '@crucible/model-files';
import { describe, expect, it } from 'vitest';
import { encodeDataset, encodePreferences, recordTokens, splitStream } from './tokens';

const tok = CharTokenizer.train('abcdefghijklmnopqrstuvwxyz :\n', ['<|endoftext|>']);
const eot = tok.special('eot') as number;

describe('encodeDataset', () => {
  it('separates documents with end-of-text and has no weights for plain text', () => {
    const s = encodeDataset('{"text": "ab"}\n{"text": "cd"}', 'jsonl_text', tok);
    expect([...s.tokens]).toEqual([...tok.encode('ab'), eot, ...tok.encode('cd')]);
    expect(s.weights).toBeUndefined();
    expect(s.docStarts).toEqual([0, 3]);
  });

  it('gives prompts weight 0 and answers (with their end-of-text) weight 1', () => {
    const s = encodeDataset('{"prompt": "q:", "completion": "yes"}\n{"prompt": "r:", "completion": "no"}', 'jsonl_prompt_completion', tok);
    const want = [...tok.encode('q:'), ...tok.encode('yes'), eot, ...tok.encode('r:'), ...tok.encode('no'), eot];
    expect([...s.tokens]).toEqual(want);
    expect([...(s.weights ?? [])]).toEqual([0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1]);
  });

  it('encodes a preference pair as the rendered conversation and each answer with its end marker', () => {
    const chat = CharTokenizer.train('abcdefghijklmnopqrstuvwxyzABC \n', ['<|endoftext|>', '<|im_start|>', '<|im_end|>']);
    const line = JSON.stringify({
      input: { messages: [{ role: 'user', content: 'hi' }] },
      preferred_output: [{ role: 'assistant', content: 'ABC' }],
      non_preferred_output: [{ role: 'assistant', content: 'abc' }],
    });
    const [pair] = encodePreferences(`${line}\n`, chat);
    const ids = (s: string) => [...chat.encode(s)];
    // Crucible's template: <|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n, then the answer and <|im_end|>
    expect([...(pair?.prompt ?? [])]).toEqual([...ids('<|im_start|>user\n'), ...ids('hi<|im_end|>'), ...ids('\n'), ...ids('<|im_start|>assistant\n')]);
    expect([...(pair?.chosen ?? [])]).toEqual(ids('ABC<|im_end|>'));
    expect([...(pair?.rejected ?? [])]).toEqual(ids('abc<|im_end|>'));
  });

  it('keeps where documents start in both parts (packing reads them)', () => {
    // a b <eot> c d <eot> e f: documents at 0, 3 and 6
    const s = encodeDataset('{"text": "ab"}\n{"text": "cd"}\n{"text": "ef"}', 'jsonl_text', tok);
    expect(s.docStarts).toEqual([0, 3, 6]);
    const end = splitStream(s, 0.25); // the first 6 tokens train
    expect([end.train.docStarts, end.val.docStarts]).toEqual([[0, 3], [0]]);
    const seeded = splitStream(s, 0.34, 7); // one whole document held out
    expect(seeded.val.docStarts).toEqual([0]);
    expect(seeded.train.docStarts).toEqual([0, 3]);
  });

  it('holds out the last 10% for validation', () => {
    const { train, val } = splitStream({ tokens: new Int32Array(100) });
    expect([train.tokens.length, val.tokens.length]).toEqual([90, 10]);
  });

  it('with a seed, holds out whole records chosen by the seed, the same for the same seed', () => {
    const rows = Array.from({ length: 20 }, (_, i) => JSON.stringify({ text: String.fromCharCode(97 + (i % 26)).repeat(3) })).join('\n');
    const s = encodeDataset(rows, 'jsonl_text', tok);
    const a = splitStream(s, 0.2, 7);
    const b = splitStream(s, 0.2, 7);
    const c = splitStream(s, 0.2, 8);
    expect([...a.val.tokens]).toEqual([...b.val.tokens]);
    expect([...a.val.tokens]).not.toEqual([...c.val.tokens]);
    expect(a.train.tokens.length + a.val.tokens.length).toBe(s.tokens.length);
    // 4 of 20 records held out: 4 x 3 letters plus their separators
    const letters = [...a.val.tokens].filter((t) => t !== eot);
    expect(letters.length).toBe(12);
    expect(new Set(tok.decode(letters).match(/(.)\1\1/g)).size).toBe(4);
    expect([...a.val.tokens]).not.toEqual([...s.tokens.subarray(s.tokens.length - a.val.tokens.length)]);
  });

  it('gives each token of a record its loss flag (previews)', () => {
    const t = recordTokens('{"prompt": "q:", "completion": "ab"}', 'jsonl_prompt_completion', tok);
    expect(t.map((x) => x.loss)).toEqual([false, false, true, true, true]);
    expect(t.at(-1)?.id).toBe(eot);
  });
});
