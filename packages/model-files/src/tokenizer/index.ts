// Tokenizer entry points: train one from text, or load one from a Hugging Face tokenizer.json.

import { BpeTokenizer, type Merge } from './bpe-tokenizer';
import { CharTokenizer } from './char-tokenizer';
import { DEFAULT_SPECIAL_TOKENS, type HfTokenizerJson, type Tokenizer } from './tokenizer';

export { BpeTokenizer } from './bpe-tokenizer';
export { CharTokenizer } from './char-tokenizer';
export * from './tokenizer';

export interface TokenizerConfig {
  type: 'char' | 'bpe';
  /** Required for `bpe`: the vocabulary size to learn. */
  vocabSize?: number;
  /** Default: all five Crucible special tokens (end of text, pad, mask, cls, sep). */
  specialTokens?: readonly string[];
}

export function trainTokenizer(text: string, cfg: TokenizerConfig): Tokenizer {
  const specialTokens = cfg.specialTokens ?? DEFAULT_SPECIAL_TOKENS;
  if (cfg.type === 'char') return CharTokenizer.train(text, specialTokens);
  if (cfg.vocabSize === undefined) throw new RangeError('a bpe tokenizer needs vocab_size');
  return BpeTokenizer.train(text, { vocabSize: cfg.vocabSize, specialTokens });
}

/** Loads a tokenizer.json written by Crucible (or a compatible byte-level BPE from Hugging Face). */
export function tokenizerFromJSON(json: HfTokenizerJson | string): Tokenizer {
  const doc: HfTokenizerJson = typeof json === 'string' ? JSON.parse(json) : json;
  if (doc?.model?.type !== 'BPE') throw new Error('tokenizer.json: only BPE models are supported');
  const specials = new Map<string, number>();
  for (const t of doc.added_tokens ?? []) specials.set(t.content, t.id);
  const merges: Merge[] = (doc.model.merges ?? []).map((m) => {
    if (Array.isArray(m)) return [m[0], m[1]] as Merge;
    const i = m.indexOf(' ');
    return [m.slice(0, i), m.slice(i + 1)] as Merge;
  });
  const vocab = new Map(Object.entries(doc.model.vocab));
  for (const s of specials.keys()) vocab.delete(s);
  if (doc.pre_tokenizer?.type === 'ByteLevel') return new BpeTokenizer(vocab, merges, specials);
  if (merges.length > 0) throw new Error('tokenizer.json: a BPE model with merges needs a ByteLevel pre-tokenizer');
  const chars: string[] = [];
  for (const [c, id] of vocab) chars[id] = c;
  if (chars.length !== vocab.size || chars.some((c) => c === undefined)) {
    throw new Error('tokenizer.json: character vocabulary ids must be 0..n-1');
  }
  return new CharTokenizer(
    chars,
    [...specials].sort((a, b) => a[1] - b[1]).map(([s]) => s),
  );
}
