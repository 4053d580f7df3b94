// A Hugging Face tokenizer.json run as the `tokenizers` library runs it: added tokens split out
// first (leftmost, longest), then each remaining piece normalized, pre-tokenized and encoded by
// the model (BPE with byte-level or byte-fallback alphabets, or WordPiece). `encode` gives the
// ids without the post-processor (what datasets concatenate); `encodePrompt` adds what the
// post-processor adds by default (TinyLlama's <s>, BERT's [CLS] ... [SEP]), as transformers'
// tokenizer(text) does. Special-token roles come from tokenizer_config.json when given.

import {
  buildDecoder,
  buildModel,
  buildNormalizer,
  buildPostProcessor,
  buildPreTokenizer,
  byteLevelBytes,
  isWhitespace,
  type Json,
  type Piece,
  type TokenModel,
  UnsupportedTokenizerError,
} from './hf-pipeline';
import { type HfTokenizerJson, SPECIAL_TOKENS, type SpecialRole, type Tokenizer } from './tokenizer';

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  lstrip: boolean;
  rstrip: boolean;
  singleWord: boolean;
}

/** tokenizer_config.json's names for the roles Crucible uses. */
const CONFIG_ROLES: Array<[SpecialRole, string]> = [
  ['eot', 'eos_token'],
  ['pad', 'pad_token'],
  ['mask', 'mask_token'],
  ['cls', 'cls_token'],
  ['sep', 'sep_token'],
  ['unk', 'unk_token'],
];

/** Names the roles go by in tokenizers without a config (BERT's brackets, SentencePiece's angle brackets). */
const CONVENTIONAL_NAMES: Array<[SpecialRole, string[]]> = [
  ['eot', ['</s>', '<|end_of_text|>']],
  ['pad', ['[PAD]', '<pad>']],
  ['mask', ['[MASK]', '<mask>']],
  ['cls', ['[CLS]']],
  ['sep', ['[SEP]']],
  ['unk', ['[UNK]', '<unk>']],
];

export class HfTokenizer implements Tokenizer {
  readonly kind: 'bpe' | 'wordpiece';
  readonly vocabSize: number;
  readonly specialTokens: ReadonlyMap<string, number>;
  /** The beginning-of-sequence token, when the tokenizer config names one. */
  readonly bos: number | undefined;
  private readonly model: TokenModel;
  private readonly normalize?: (s: string) => string;
  private readonly preTokenize?: (pieces: Piece[]) => Piece[];
  private readonly postProcess?: (ids: number[]) => number[];
  private readonly decodeTokens?: (tokens: string[]) => string[];
  private readonly added: AddedToken[];
  private readonly addedPattern: RegExp | undefined;
  private readonly addedByContent = new Map<string, AddedToken>();
  private readonly idToToken: string[] = [];
  private readonly roles = new Map<SpecialRole, number>();

  /** tokenizer_config.json as given (its chat template and special tokens), written back on export. */
  readonly config: Json | undefined;

  constructor(
    private readonly doc: Json,
    config?: Json,
  ) {
    this.config = config;
    config ??= {};
    if (doc?.truncation || doc?.padding)
      throw new UnsupportedTokenizerError('truncation', doc.truncation ?? doc.padding, 'and padding are not supported in tokenizer.json');
    this.model = buildModel(doc.model);
    this.kind = this.model.constructor.name === 'WordPieceModel' ? 'wordpiece' : 'bpe';
    this.normalize = buildNormalizer(doc.normalizer);
    this.preTokenize = buildPreTokenizer(doc.pre_tokenizer);
    this.decodeTokens = buildDecoder(doc.decoder);
    for (const [t, id] of this.model.vocab) this.idToToken[id] = t;
    this.added = ((doc.added_tokens ?? []) as Json[]).map((t) => ({
      id: t.id,
      content: t.content,
      special: !!t.special,
      lstrip: !!t.lstrip,
      rstrip: !!t.rstrip,
      singleWord: !!t.single_word,
    }));
    for (const t of this.added) {
      this.idToToken[t.id] = t.content;
      this.addedByContent.set(t.content, t);
    }
    this.postProcess = buildPostProcessor(doc.post_processor, (tok) => this.addedByContent.get(tok)?.id ?? this.model.vocab.get(tok));
    const names = this.added.map((t) => t.content).sort((a, b) => b.length - a.length);
    this.addedPattern = names.length ? new RegExp(names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'gu') : undefined;
    this.specialTokens = new Map(this.added.filter((t) => t.special).map((t) => [t.content, t.id]));
    this.vocabSize = this.idToToken.length;
    const token = (v: Json): string | undefined => (typeof v === 'string' ? v : typeof v?.content === 'string' ? v.content : undefined);
    const idOf = (s: string | undefined) => (s === undefined ? undefined : (this.addedByContent.get(s)?.id ?? this.model.vocab.get(s)));
    for (const [role, key] of CONFIG_ROLES) {
      const id = idOf(token(config[key]));
      if (id !== undefined) this.roles.set(role, id);
    }
    // without a config: the conventional names of these roles, and the chat template's frame
    for (const role of Object.keys(SPECIAL_TOKENS) as SpecialRole[]) {
      if (this.roles.has(role)) continue;
      const id = idOf(SPECIAL_TOKENS[role]);
      if (id !== undefined) this.roles.set(role, id);
    }
    for (const [role, names] of CONVENTIONAL_NAMES) {
      for (const name of names) if (!this.roles.has(role) && idOf(name) !== undefined) this.roles.set(role, idOf(name) as number);
    }
    this.bos = idOf(token(config.bos_token));
  }

  /** A tokenizer.json document (and optionally tokenizer_config.json) as Hugging Face writes them. */
  static fromJSON(doc: Json, config?: Json): HfTokenizer {
    return new HfTokenizer(typeof doc === 'string' ? JSON.parse(doc) : doc, config);
  }

  encode(text: string): number[] {
    const ids: number[] = [];
    for (const piece of this.splitAdded(text)) {
      if (typeof piece === 'number') ids.push(piece);
      else this.encodePiece(piece, ids);
    }
    return ids;
  }

  /** What transformers' tokenizer(text) gives: `encode` with the post-processor's tokens (a BOS, [CLS] ... [SEP]). */
  encodePrompt(text: string): number[] {
    const ids = this.encode(text);
    return this.postProcess ? this.postProcess(ids) : ids;
  }

  decode(ids: ArrayLike<number>): string {
    const tokens = Array.from(ids, (id) => this.idToToken[id] ?? '');
    if (!this.decodeTokens) return tokens.join(' ');
    return this.decodeTokens(tokens).join('');
  }

  special(role: SpecialRole): number | undefined {
    return this.roles.get(role);
  }

  tokenBytes(id: number): Uint8Array {
    const t = this.idToToken[id] ?? '';
    if (this.addedByContent.has(t)) return new TextEncoder().encode(t);
    const fallback = /^<0x([0-9A-Fa-f]{2})>$/.exec(t);
    if (fallback) return Uint8Array.of(Number.parseInt(fallback[1] as string, 16));
    const bytes = byteLevelBytes(t);
    if (bytes && this.doc.decoder && JSON.stringify(this.doc.decoder).includes('"ByteLevel"')) return bytes;
    const prefix = this.kind === 'wordpiece' ? (this.doc.model.continuing_subword_prefix ?? '##') : undefined;
    const text = prefix && t.startsWith(prefix) ? t.slice(prefix.length) : prefix ? ` ${t}` : t.replaceAll('▁', ' ');
    return new TextEncoder().encode(text);
  }

  toJSON(): HfTokenizerJson {
    return this.doc as HfTokenizerJson;
  }

  /** The text around added tokens (each with whether it starts the input), and the added tokens' ids. */
  private splitAdded(text: string): Array<Piece | number> {
    const out: Array<Piece | number> = [];
    if (!this.addedPattern) return text ? [{ text, first: true }] : [];
    let last = 0;
    for (const m of text.matchAll(this.addedPattern)) {
      const t = this.addedByContent.get(m[0]) as AddedToken;
      let a = m.index;
      let b = a + m[0].length;
      if (t.singleWord && (/[\p{L}\p{N}_]/u.test(text[a - 1] ?? '') || /[\p{L}\p{N}_]/u.test(text[b] ?? ''))) continue;
      if (a < last) continue;
      if (t.lstrip) while (a > last && isWhitespace(text[a - 1] as string)) a--;
      if (t.rstrip) while (b < text.length && isWhitespace(text[b] as string)) b++;
      if (a > last) out.push({ text: text.slice(last, a), first: last === 0 });
      out.push(t.id);
      last = b;
    }
    if (last < text.length) out.push({ text: text.slice(last), first: last === 0 });
    return out;
  }

  private encodePiece(piece: Piece, out: number[]): void {
    const normalized = this.normalize ? this.normalize(piece.text) : piece.text;
    if (!normalized) return;
    const words = this.preTokenize ? this.preTokenize([{ text: normalized, first: piece.first }]) : [{ text: normalized, first: piece.first }];
    for (const w of words) this.model.tokenize(w.text, out);
  }
}
