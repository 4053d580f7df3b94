import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BpeTokenizer, CharTokenizer, DEFAULT_SPECIAL_TOKENS, tokenizerFromJSON, trainTokenizer } from './index';

const corpus = 'To be, or not to be: that is the question. Whether tis nobler in the mind to suffer\n'.repeat(20);

describe('byte-level BPE training', () => {
  it('learns the merges worked out by hand on a tiny corpus, ties going to the smaller pair', () => {
    // words: "xy" x1, " xy" x1, " yz" x2  ->  byte chars "xy", "Ġxy", "Ġyz"
    // pair counts: (x,y)=2 (Ġ,x)=1 (Ġ,y)=2 (y,z)=2 -> tie at 2; "x" < "y" < "Ġ" so (x,y) first
    // then (Ġ,xy)=1 (Ġ,y)=2 (y,z)=2 -> (y,z); then (Ġ,yz)=2 -> merged; (Ġ,xy)=1 is below min_frequency 2
    const tok = BpeTokenizer.train('xy xy yz yz', { vocabSize: 1000 });
    expect(tok.merges).toEqual([
      ['x', 'y'],
      ['y', 'z'],
      ['Ġ', 'yz'],
    ]);
    expect(tok.vocabSize).toBe(256 + 3);
    expect(tok.encode(' yz')).toHaveLength(1);
    expect(tok.encode(' xy')).toHaveLength(2);
  });

  it('stops at the requested vocabulary size, special tokens included', () => {
    const tok = BpeTokenizer.train(corpus, { vocabSize: 270, specialTokens: DEFAULT_SPECIAL_TOKENS });
    expect(tok.vocabSize).toBe(270);
    expect(tok.merges).toHaveLength(270 - 256 - DEFAULT_SPECIAL_TOKENS.length);
    expect(tok.special('eot')).toBe(0);
    expect(tok.special('mask')).toBe(2);
  });

  it('rejects a vocabulary smaller than the byte alphabet', () => {
    expect(() => BpeTokenizer.train(corpus, { vocabSize: 100 })).toThrow(/vocab_size must be an integer >= 256/);
  });

  it('encodes special tokens written in the text to their ids', () => {
    const tok = trainTokenizer(corpus, { type: 'bpe', vocabSize: 300 });
    const ids = tok.encode('to be<|endoftext|>not');
    expect(ids).toContain(tok.special('eot'));
    expect(tok.decode(ids)).toBe('to be<|endoftext|>not');
  });
});

describe('round trips', () => {
  const bpe = trainTokenizer(corpus, { type: 'bpe', vocabSize: 320 });
  it('decode(encode(s)) === s for random Unicode strings (byte-level BPE)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => bpe.decode(bpe.encode(s)) === s),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary' }).filter((s) => s.isWellFormed()),
        (s) => bpe.decode(bpe.encode(s)) === s,
      ),
      { numRuns: 500 },
    );
  });

  it('decode(encode(s)) === s for strings over the alphabet (char-level)', () => {
    const ch = trainTokenizer(corpus, { type: 'char' });
    const alphabet = [...new Set(corpus)];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...alphabet)), (cs) => {
        const s = cs.join('');
        return ch.decode(ch.encode(s)) === s;
      }),
    );
  });

  it('char-level: a character outside the alphabet encodes to <|unk|>, or is skipped by a tokenizer without one', () => {
    const ch = CharTokenizer.train('abc', DEFAULT_SPECIAL_TOKENS);
    const unk = ch.special('unk') as number;
    expect(ch.encode('ab9z日')).toEqual([0, 1, unk, unk, unk]);
    expect([...'ab9z日'].map((c) => ch.knows(c))).toEqual([true, true, false, false, false]);
    expect(CharTokenizer.train('abc').encode('abz')).toEqual([0, 1]);
  });

  it('saves to tokenizer.json and loads back to the same encoder (bpe and char)', () => {
    const ch = trainTokenizer(corpus, { type: 'char' });
    for (const tok of [bpe, ch]) {
      const json = JSON.stringify(tok.toJSON());
      const back = tokenizerFromJSON(json);
      expect(back.kind).toBe(tok.kind);
      expect(back.vocabSize).toBe(tok.vocabSize);
      const text = 'Whether tis nobler<|pad|> in the mind';
      expect(back.encode(text)).toEqual(tok.encode(text));
      expect([...back.specialTokens]).toEqual([...tok.specialTokens]);
    }
    const doc = bpe.toJSON();
    expect(doc.pre_tokenizer?.type).toBe('ByteLevel');
    expect(doc.model.type).toBe('BPE');
    expect(doc.added_tokens.map((t) => t.content)).toEqual([...DEFAULT_SPECIAL_TOKENS]);
  });

  it('reads merges written as "a b" strings (older tokenizer.json files)', () => {
    const doc = bpe.toJSON();
    const old = { ...doc, model: { ...doc.model, merges: (doc.model.merges as [string, string][]).map(([a, b]) => `${a} ${b}`) } };
    expect(tokenizerFromJSON(old).encode('to be or not')).toEqual(bpe.encode('to be or not'));
  });
});
