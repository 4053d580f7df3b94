// Character-level tokenizer (nanoGPT's shakespeare_char): one id per distinct code point of the
// training text, sorted by code point, then the special tokens. A character outside the alphabet
// encodes to <|unk|> (tokenizers saved before it existed skip such characters, as Hugging Face's
// BPE does without an unk_token), so no input string makes encoding fail.

import { addedTokens, encodeWithSpecials, type HfTokenizerJson, roleLookup, SPECIAL_TOKENS, type SpecialRole, type Tokenizer } from './tokenizer';

export class CharTokenizer implements Tokenizer {
  readonly kind = 'char';
  readonly specialTokens: ReadonlyMap<string, number>;
  private readonly toId: Map<string, number>;
  private readonly toStr: string[];

  constructor(chars: readonly string[], specials: readonly string[] = []) {
    this.toStr = [...chars, ...specials];
    this.toId = new Map(chars.map((c, i) => [c, i]));
    this.specialTokens = new Map(specials.map((s, i) => [s, chars.length + i]));
  }

  /** Builds the alphabet from `text`: its distinct code points in code-point order. */
  static train(text: string, specials: readonly string[] = []): CharTokenizer {
    const chars = [...new Set(text)].sort((a, b) => (a.codePointAt(0) as number) - (b.codePointAt(0) as number));
    return new CharTokenizer(chars, specials);
  }

  get vocabSize(): number {
    return this.toStr.length;
  }

  special(role: SpecialRole): number | undefined {
    return roleLookup(this.specialTokens, role);
  }

  encode(text: string): number[] {
    const unk = this.special('unk');
    return encodeWithSpecials(text, this.specialTokens, (piece, ids) => {
      for (const c of piece) {
        const id = this.toId.get(c) ?? unk;
        if (id !== undefined) ids.push(id);
      }
    });
  }

  /** Whether a character is in the alphabet (and so encodes to its own id, not <|unk|>). */
  knows(ch: string): boolean {
    return this.toId.has(ch);
  }

  tokenBytes(id: number): Uint8Array {
    const s = this.toStr[id];
    if (s === undefined) throw new RangeError(`token id ${id} is out of range 0..${this.vocabSize - 1}`);
    return new TextEncoder().encode(s);
  }

  decode(ids: ArrayLike<number>): string {
    let out = '';
    for (let i = 0; i < ids.length; i++) {
      const s = this.toStr[ids[i] as number];
      if (s === undefined) throw new RangeError(`token id ${ids[i]} is out of range 0..${this.vocabSize - 1}`);
      out += s;
    }
    return out;
  }

  /** A BPE model with single-character tokens and no merges, joined by a Fuse decoder. */
  toJSON(): HfTokenizerJson {
    const vocab: Record<string, number> = {};
    this.toId.forEach((id, c) => {
      vocab[c] = id;
    });
    for (const [s, id] of this.specialTokens) vocab[s] = id; // specials keep their ids in Hugging Face's BPE too
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: addedTokens(this.specialTokens),
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: { type: 'Fuse' },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: this.special('unk') === undefined ? null : SPECIAL_TOKENS.unk,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges: [],
      },
    };
  }
}
