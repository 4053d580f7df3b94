import { describe, expect, it } from 'vitest';
import { findUnsafeString, stringProblem } from './text';

describe('stringProblem', () => {
  it.each([
    ['plain', null],
    ['emoji 🎉 (a surrogate pair)', null],
    ['日本語', null],
    ['a\u0000b', /NUL byte \(U\+0000\) at index 1/],
    ['x\ud800', /lone UTF-16 surrogate at index 1/],
    ['\udc00y', /lone UTF-16 surrogate at index 0/],
    ['\ud83d\ud83d\ude00', /lone UTF-16 surrogate at index 0/],
  ])('%j', (s, expected) => {
    const got = stringProblem(s);
    if (expected === null) expect(got).toBeNull();
    else expect(got).toMatch(expected);
  });

  it('agrees with what UTF-8 can encode: a string passes exactly when it survives a UTF-8 round trip and has no NUL', () => {
    const samples = ['ok', 'a\u0000', '\ud800', '\udfff', '\ud83c\udf89', 'e\u0301', '\uffff', '\ud800\ud800\udc00'];
    for (const s of samples) {
      const roundTrips = Buffer.from(s, 'utf8').toString('utf8') === s;
      expect(stringProblem(s) === null, JSON.stringify(s)).toBe(roundTrips && !s.includes('\u0000'));
    }
  });
});

describe('findUnsafeString', () => {
  it('names the dotted path of the first bad value or key', () => {
    expect(findUnsafeString({ a: 'ok', metadata: { k: 'v\u0000' } })?.path).toBe('metadata.k');
    expect(findUnsafeString({ messages: [{ content: 'ok' }, { content: '\ud800' }] })?.path).toBe('messages.1.content');
    expect(findUnsafeString({ metadata: { 'bad\u0000key': 'v' } })).toMatchObject({ path: 'metadata', problem: expect.stringMatching(/key/) });
    expect(findUnsafeString('\u0000')).toMatchObject({ path: '' });
    expect(findUnsafeString({ n: 1, b: true, z: null, list: ['a', 'b'] })).toBeNull();
  });
});
