// Byte-level BPE (GPT-2 style): UTF-8 bytes mapped to printable characters, GPT-2's pre-tokenizer,
// and merges learned on a corpus. Because every byte has a token, every Unicode string round-trips.

import { BYTE_TO_CHAR, fromByteChars, preTokenize, toByteChars } from './byte-level';
import { addedTokens, encodeWithSpecials, type HfTokenizerJson, roleLookup, type SpecialRole, splitOnSpecials, type Tokenizer } from './tokenizer';

export type Merge = readonly [string, string];

export interface BpeTrainOptions {
  /** Target vocabulary size, special tokens and the 256 byte tokens included. */
  vocabSize: number;
  /** Special tokens; they take the first ids. Default: none. */
  specialTokens?: readonly string[];
  /** A pair must occur at least this often to be merged. Default 2. */
  minFrequency?: number;
}

const SEP = '\u0000';
const decoder = new TextDecoder('utf-8');

export class BpeTokenizer implements Tokenizer {
  readonly kind = 'bpe';
  readonly specialTokens: ReadonlyMap<string, number>;
  readonly merges: readonly Merge[];
  private readonly vocab: Map<string, number>;
  private readonly idToToken: string[];
  private readonly ranks: Map<string, number>;
  private readonly cache = new Map<string, number[]>();

  /** `vocab` maps byte-level token strings to ids; specials map their content to ids. */
  constructor(vocab: ReadonlyMap<string, number>, merges: readonly Merge[], specials: ReadonlyMap<string, number>) {
    this.vocab = new Map(vocab);
    this.merges = merges;
    this.specialTokens = new Map(specials);
    this.ranks = new Map(merges.map(([a, b], i) => [a + SEP + b, i]));
    this.idToToken = [];
    for (const [tok, id] of this.vocab) this.idToToken[id] = tok;
    for (const [tok, id] of this.specialTokens) this.idToToken[id] = tok;
    for (let i = 0; i < this.idToToken.length; i++) {
      if (this.idToToken[i] === undefined) throw new Error(`BPE vocabulary has no token with id ${i}`);
    }
    for (const c of BYTE_TO_CHAR) {
      if (!this.vocab.has(c)) throw new Error(`BPE vocabulary lacks the byte token ${JSON.stringify(c)}`);
    }
  }

  /**
   * Learns merges on `text`: repeatedly merges the most frequent adjacent pair inside
   * pre-tokenized words. Ties go to the pair whose (left, right) strings sort first.
   */
  static train(text: string, opts: BpeTrainOptions): BpeTokenizer {
    const specials = opts.specialTokens ?? [];
    const minFrequency = opts.minFrequency ?? 2;
    const base = specials.length + 256;
    if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < base) {
      throw new RangeError(`vocab_size must be an integer >= ${base} (256 bytes + ${specials.length} special tokens)`);
    }
    const specialIds = new Map(specials.map((s, i) => [s, i]));
    const vocab = new Map<string, number>();
    BYTE_TO_CHAR.forEach((c, b) => {
      vocab.set(c, specials.length + b);
    });

    // Distinct words with their counts; special tokens never take part in merges.
    const wordCounts = new Map<string, number>();
    for (const piece of splitOnSpecials(text, specialIds)) {
      if (typeof piece === 'number') continue;
      for (const w of preTokenize(piece)) {
        const bw = toByteChars(w);
        wordCounts.set(bw, (wordCounts.get(bw) ?? 0) + 1);
      }
    }
    const words: string[][] = [];
    const counts: number[] = [];
    for (const [w, n] of wordCounts) {
      words.push([...w]);
      counts.push(n);
    }

    const pairCount = new Map<string, number>();
    const pairWords = new Map<string, Set<number>>();
    const addPairs = (wi: number, sign: 1 | -1) => {
      const sym = words[wi] as string[];
      const n = counts[wi] as number;
      for (let i = 0; i + 1 < sym.length; i++) {
        const key = sym[i] + SEP + sym[i + 1];
        pairCount.set(key, (pairCount.get(key) ?? 0) + sign * n);
        if (sign > 0) {
          let set = pairWords.get(key);
          if (!set) pairWords.set(key, (set = new Set()));
          set.add(wi);
        }
      }
    };
    for (let wi = 0; wi < words.length; wi++) addPairs(wi, 1);

    const merges: Merge[] = [];
    while (vocab.size + specials.length < opts.vocabSize) {
      let best: string | undefined;
      let bestCount = 0;
      for (const [key, n] of pairCount) {
        if (n > bestCount || (n === bestCount && n > 0 && best !== undefined && comparePairs(key, best) < 0)) {
          best = key;
          bestCount = n;
        }
      }
      if (best === undefined || bestCount < minFrequency) break;
      const [a, b] = best.split(SEP) as [string, string];
      const merged = a + b;
      merges.push([a, b]);
      if (!vocab.has(merged)) vocab.set(merged, vocab.size + specials.length);
      for (const wi of pairWords.get(best) ?? []) {
        const sym = words[wi] as string[];
        addPairs(wi, -1);
        const out: string[] = [];
        for (let i = 0; i < sym.length; i++) {
          if (i + 1 < sym.length && sym[i] === a && sym[i + 1] === b) {
            out.push(merged);
            i++;
          } else out.push(sym[i] as string);
        }
        words[wi] = out;
        addPairs(wi, 1);
      }
      pairWords.delete(best);
      for (const [key, n] of pairCount) if (n <= 0) pairCount.delete(key);
    }
    return new BpeTokenizer(vocab, merges, specialIds);
  }

  get vocabSize(): number {
    return this.idToToken.length;
  }

  special(role: SpecialRole): number | undefined {
    return roleLookup(this.specialTokens, role);
  }

  encode(text: string): number[] {
    return encodeWithSpecials(text, this.specialTokens, (piece, ids) => {
      for (const w of preTokenize(piece)) ids.push(...this.encodeWord(toByteChars(w)));
    });
  }

  tokenBytes(id: number): Uint8Array {
    const tok = this.idToToken[id];
    if (tok === undefined) throw new RangeError(`token id ${id} is out of range 0..${this.vocabSize - 1}`);
    if (this.specialTokens.get(tok) === id) return new TextEncoder().encode(tok);
    const bytes: number[] = [];
    fromByteChars(tok, bytes);
    return Uint8Array.from(bytes);
  }

  decode(ids: ArrayLike<number>): string {
    let out = '';
    let bytes: number[] = [];
    const flush = () => {
      if (bytes.length) out += decoder.decode(Uint8Array.from(bytes));
      bytes = [];
    };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      const tok = this.idToToken[id];
      if (tok === undefined) throw new RangeError(`token id ${id} is out of range 0..${this.vocabSize - 1}`);
      if (this.specialTokens.get(tok) === id) {
        flush();
        out += tok;
      } else fromByteChars(tok, bytes);
    }
    flush();
    return out;
  }

  private encodeWord(word: string): number[] {
    const hit = this.cache.get(word);
    if (hit) return hit;
    let sym = [...word];
    while (sym.length > 1) {
      let bestRank = Number.POSITIVE_INFINITY;
      let bestI = -1;
      for (let i = 0; i + 1 < sym.length; i++) {
        const r = this.ranks.get(sym[i] + SEP + sym[i + 1]);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          bestI = i;
        }
      }
      if (bestI < 0) break;
      const a = sym[bestI] as string;
      const b = sym[bestI + 1] as string;
      const out: string[] = [];
      for (let i = 0; i < sym.length; i++) {
        if (i + 1 < sym.length && sym[i] === a && sym[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(sym[i] as string);
      }
      sym = out;
    }
    const ids = sym.map((s) => this.vocab.get(s) as number);
    if (this.cache.size < 100_000) this.cache.set(word, ids);
    return ids;
  }

  toJSON(): HfTokenizerJson {
    const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true } as const;
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: addedTokens(this.specialTokens),
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: null,
      decoder: byteLevel,
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: '',
        end_of_word_suffix: '',
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        // every special token is in the vocabulary at its id too: Hugging Face's Rust library gives
        // an added token missing from model.vocab a new id after the vocabulary
        vocab: Object.fromEntries([...this.vocab, ...this.specialTokens].sort((a, b) => a[1] - b[1])),
        merges: this.merges.map(([a, b]) => [a, b] as [string, string]),
      },
    };
  }
}

function comparePairs(x: string, y: string): number {
  const [xa, xb] = x.split(SEP) as [string, string];
  const [ya, yb] = y.split(SEP) as [string, string];
  if (xa !== ya) return xa < ya ? -1 : 1;
  return xb === yb ? 0 : xb < yb ? -1 : 1;
}
