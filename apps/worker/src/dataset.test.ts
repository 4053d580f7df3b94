import { CharTokenizer } from '@crucible/trainer';
import { describe, expect, it } from 'vitest';
import { encodeDataset, splitStream } from './dataset';

const tok = CharTokenizer.train('abcdefghijklmnopqrstuvwxyz :\n', ['<|endoftext|>']);
const eot = tok.special('eot') as number;

describe('encodeDataset', () => {
  it('separates documents with end-of-text and has no weights for plain text', () => {
    const s = encodeDataset('{"text": "ab"}\n{"text": "cd"}', 'jsonl_text', tok);
    expect([...s.tokens]).toEqual([...tok.encode('ab'), eot, ...tok.encode('cd')]);
    expect(s.weights).toBeUndefined();
  });

  it('gives prompts weight 0 and answers (with their end-of-text) weight 1', () => {
    const s = encodeDataset('{"prompt": "q:", "completion": "yes"}\n{"prompt": "r:", "completion": "no"}', 'jsonl_prompt_completion', tok);
    const want = [...tok.encode('q:'), ...tok.encode('yes'), eot, ...tok.encode('r:'), ...tok.encode('no'), eot];
    expect([...s.tokens]).toEqual(want);
    expect([...(s.weights ?? [])]).toEqual([0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1]);
  });

  it('holds out the last 10% for validation', () => {
    const { train, val } = splitStream({ tokens: new Int32Array(100) });
    expect([train.tokens.length, val.tokens.length]).toEqual([90, 10]);
  });
});
