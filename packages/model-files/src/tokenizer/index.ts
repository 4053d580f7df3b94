// Tokenizer entry points: train one from text, or load one from a Hugging Face tokenizer.json.

import { BpeTokenizer, type Merge } from './bpe-tokenizer';
import { CharTokenizer } from './char-tokenizer';
import { HfTokenizer } from './hf-tokenizer';
import { DEFAULT_SPECIAL_TOKENS, type HfTokenizerJson, type Tokenizer } from './tokenizer';

export { BpeTokenizer } from './bpe-tokenizer';
export { CharTokenizer } from './char-tokenizer';
export { UnsupportedTokenizerError } from './hf-pipeline';
export { HfTokenizer } from './hf-tokenizer';
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

/**
 * Loads a tokenizer.json: Crucible's own (byte-level BPE or characters) and GPT-2's with the
 * classes that wrote them; any other Hugging Face tokenizer (SentencePiece-style BPE, a Split
 * regex before ByteLevel, WordPiece, normalizers, a BOS post-processor) with HfTokenizer, which
 * runs every stage as Hugging Face's library does. `config` is tokenizer_config.json (its
 * bos/eos/pad/unk/mask/cls/sep tokens give the roles).
 */
export function tokenizerFromJSON(json: HfTokenizerJson | string, config?: Record<string, unknown>): Tokenizer {
  const doc: HfTokenizerJson = typeof json === 'string' ? JSON.parse(json) : json;
  if (!isCrucibleShaped(doc)) return HfTokenizer.fromJSON(doc, config);
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

/** A document Crucible's own classes read exactly: a BPE with no normalizer and at most GPT-2's byte-level stages. */
function isCrucibleShaped(doc: HfTokenizerJson): boolean {
  const d = doc as unknown as Record<string, { type?: string } | null | undefined>;
  const model = doc?.model as unknown as { type?: string; byte_fallback?: boolean; ignore_merges?: boolean } | undefined;
  return (
    model?.type === 'BPE' &&
    !model.byte_fallback &&
    !model.ignore_merges &&
    !d.normalizer &&
    (!d.pre_tokenizer || d.pre_tokenizer.type === 'ByteLevel') &&
    (!d.post_processor || d.post_processor.type === 'ByteLevel')
  );
}
