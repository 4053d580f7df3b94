// The tokenizer contract shared by the character-level and byte-level BPE tokenizers,
// plus the special tokens every Crucible tokenizer may carry.

/**
 * Special tokens, by role. Causal LMs use `eot`; masked LMs use pad/mask/cls/sep; `unk` stands for
 * a character outside a character-level vocabulary; `im_start` / `im_end` frame the messages of
 * the chat template (see @crucible/domain's renderChat). Tokenizers trained by Crucible carry all
 * eight, in this order, at ids 0-7.
 */
export const SPECIAL_TOKENS = {
  eot: '<|endoftext|>',
  pad: '<|pad|>',
  mask: '<|mask|>',
  cls: '<|cls|>',
  sep: '<|sep|>',
  unk: '<|unk|>',
  im_start: '<|im_start|>',
  im_end: '<|im_end|>',
} as const;
export type SpecialRole = keyof typeof SPECIAL_TOKENS;
export const DEFAULT_SPECIAL_TOKENS: readonly string[] = Object.values(SPECIAL_TOKENS);

export interface Tokenizer {
  readonly kind: 'char' | 'bpe' | 'wordpiece';
  /** Number of ids, special tokens included. */
  readonly vocabSize: number;
  /** Special token string -> id. */
  readonly specialTokens: ReadonlyMap<string, number>;
  encode(text: string): number[];
  /** A prompt as transformers' tokenizer(text) encodes it (its post-processor's BOS, ...); absent: as encode. */
  encodePrompt?(text: string): number[];
  decode(ids: ArrayLike<number>): string;
  /** The id of a special token by role, or undefined when this tokenizer lacks it. */
  special(role: SpecialRole): number | undefined;
  /** The UTF-8 bytes one token stands for (a BPE token may hold part of a character). */
  tokenBytes(id: number): Uint8Array;
  /** Hugging Face `tokenizer.json` document. */
  toJSON(): HfTokenizerJson;
}

export interface HfAddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** The subset of Hugging Face's tokenizer.json that Crucible writes and reads. */
export interface HfTokenizerJson {
  version: '1.0';
  truncation: null;
  padding: null;
  added_tokens: HfAddedToken[];
  normalizer: null;
  pre_tokenizer: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean } | null;
  post_processor: null;
  decoder: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean } | { type: 'Fuse' };
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: string | null;
    continuing_subword_prefix: string | null;
    end_of_word_suffix: string | null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: Array<[string, string]> | string[];
  };
}

export function addedTokens(specials: ReadonlyMap<string, number>): HfAddedToken[] {
  return [...specials].map(([content, id]) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
}

/**
 * Splits `text` around occurrences of special tokens, longest first, so that a special token
 * written in the text encodes to its id. Yields plain pieces as strings and specials as ids.
 */
export function splitOnSpecials(text: string, specials: ReadonlyMap<string, number>): Array<string | number> {
  if (specials.size === 0 || text.length === 0) return text.length ? [text] : [];
  const names = [...specials.keys()].sort((a, b) => b.length - a.length);
  const pattern = new RegExp(names.map(escapeRegExp).join('|'), 'g');
  const out: Array<string | number> = [];
  let last = 0;
  for (const m of text.matchAll(pattern)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(specials.get(m[0]) as number);
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/** Encodes `text`: special tokens written in it become their ids; every other piece goes to `encodePiece`. */
export function encodeWithSpecials(text: string, specials: ReadonlyMap<string, number>, encodePiece: (piece: string, out: number[]) => void): number[] {
  const ids: number[] = [];
  for (const piece of splitOnSpecials(text, specials)) {
    if (typeof piece === 'number') ids.push(piece);
    else encodePiece(piece, ids);
  }
  return ids;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function roleLookup(specials: ReadonlyMap<string, number>, role: SpecialRole): number | undefined {
  return specials.get(SPECIAL_TOKENS[role]);
}
