// Every tokenizer.json Crucible writes, loaded by Hugging Face's own Rust `tokenizers` library:
// the ids and the decoded text must equal Crucible's on random Unicode strings with special
// tokens mixed in, and every special token must keep Crucible's id there.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SPECIAL_TOKENS, type Tokenizer, trainTokenizer } from './index';

const require = createRequire(import.meta.url);
let hf: { Tokenizer: { fromString(s: string): HfTok } } | undefined;
try {
  hf = require('tokenizers');
} catch {
  hf = undefined;
}
interface HfTok {
  encode(s: string, pair: null, o: { addSpecialTokens: boolean }): Promise<{ getIds(): number[] }>;
  decode(ids: number[], skipSpecial: boolean): Promise<string>;
  tokenToId(s: string): number | undefined;
}

const corpus = readFileSync(join(import.meta.dirname, '../../../../data/tinyshakespeare.txt'), 'utf8').slice(0, 60_000);
const specials = fc.constantFrom(...DEFAULT_SPECIAL_TOKENS);
const pieces = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
  { weight: 3, arbitrary: fc.constantFrom('the ', 'And', ' proceed', '\n\n', 'ROMEO:', "'ll", '  x', '12 34') },
  { weight: 2, arbitrary: specials },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }).filter((s) => s.isWellFormed()) },
);
const texts = fc.array(pieces, { maxLength: 8 }).map((a) => a.join(''));

describe.skipIf(!hf)("Hugging Face's tokenizers library (Rust) on Crucible's tokenizer.json", () => {
  const cases: Array<[string, Tokenizer]> = [
    ['byte-level BPE', trainTokenizer(corpus, { type: 'bpe', vocabSize: 400 })],
    ['character-level', trainTokenizer(corpus, { type: 'char' })],
  ];
  it.each(cases)('%s: special tokens keep their ids', (_n, tok) => {
    const theirs = hf?.Tokenizer.fromString(JSON.stringify(tok.toJSON())) as HfTok;
    for (const [s, id] of tok.specialTokens) expect(theirs.tokenToId(s), s).toBe(id);
  });

  it.each(cases)('%s: same ids and same decoded text on random strings with special tokens', async (_n, tok) => {
    const theirs = hf?.Tokenizer.fromString(JSON.stringify(tok.toJSON())) as HfTok;
    await fc.assert(
      fc.asyncProperty(texts, async (s) => {
        const ours = tok.encode(s);
        const enc = await theirs.encode(s, null, { addSpecialTokens: false });
        expect(enc.getIds()).toEqual(ours);
        expect(await theirs.decode(ours, false)).toBe(tok.decode(ours));
      }),
      { numRuns: 300 },
    );
  });

  it('character-level: characters outside the alphabet become <|unk|> on both sides', async () => {
    const tok = cases[1]?.[1] as Tokenizer;
    const theirs = hf?.Tokenizer.fromString(JSON.stringify(tok.toJSON())) as HfTok;
    const s = 'Year 2026: 日本 ✓';
    const ours = tok.encode(s);
    expect(ours.filter((id) => id === tok.special('unk')).length).toBeGreaterThan(3);
    expect((await theirs.encode(s, null, { addSpecialTokens: false })).getIds()).toEqual(ours);
  });
});
