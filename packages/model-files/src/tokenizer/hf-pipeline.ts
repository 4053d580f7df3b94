// The stages of a Hugging Face tokenizer.json, run as the Rust `tokenizers` library runs them:
// normalizers, pre-tokenizers, the BPE and WordPiece models, post-processors and decoders. Each
// stage is built from its JSON once; a type Crucible cannot run exactly is refused by name
// (UnsupportedTokenizerError), never approximated.

import { BYTE_TO_CHAR, CHAR_TO_BYTE } from './byte-level';
import {
  MARK_IN_TOKENIZERS_TABLES,
  NOT_MARK_IN_TOKENIZERS_TABLES,
  newerThanTokenizersTables as newer,
  PUNCTUATION_IN_TOKENIZERS_TABLES,
} from './unicode-tables';

// biome-ignore lint/suspicious/noExplicitAny: tokenizer.json stages are read field by field
export type Json = any;

export class UnsupportedTokenizerError extends Error {
  constructor(
    readonly field: string,
    readonly value: unknown,
    reason = 'is not supported',
  ) {
    super(`${field} ${JSON.stringify(value)} ${reason}`);
  }
}

/** Oniguruma's (and Rust's) \s: Unicode White_Space. JavaScript's \s also holds U+FEFF and lacks U+0085. */
const WS = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WHITESPACE = new RegExp(`[${WS}]`, 'u');
export const isWhitespace = (c: string) => WHITESPACE.test(c);

/**
 * Digits assigned in Unicode versions newer than the Oniguruma tables the tokenizers library was
 * built with (\p{N} there does not hold them): found by encoding every letter and digit with both.
 */
const NUMBERS_NEWER_THAN_ONIG = '\\u{11de0}-\\u{11de9}\\u{16ff4}-\\u{16ff6}';

/** An Oniguruma pattern from tokenizer.json as a JavaScript regular expression (flags gv: classes may subtract). */
export function onigToJs(pattern: string): RegExp {
  if (/\(\?[<>=!]?[a-z]*-[a-z]|\(\?>|[*+?]\+/.test(pattern))
    throw new UnsupportedTokenizerError('pre_tokenizer.pattern', pattern, 'uses a construct Crucible cannot run');
  let out = '';
  let inClass = false;
  let caseless = 0; // depth of (?i: ... ) groups still open
  const groups: boolean[] = []; // for each open group: whether it is a (?i: group
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '\\') {
      const n = pattern[i + 1] as string;
      i++;
      if (n === 's') out += inClass ? WS : `[${WS}]`;
      else if (n === 'S') {
        if (inClass) throw new UnsupportedTokenizerError('pre_tokenizer.pattern', pattern, 'uses \\S inside a character class');
        out += `[^${WS}]`;
      } else if (n === 'p' || n === 'P') {
        const end = pattern.indexOf('}', i);
        const prop = pattern.slice(i + 1, end + 1);
        // \p{N} as the library's tables have it
        out += n === 'p' && prop === '{N}' ? `[\\p{N}--[${NUMBERS_NEWER_THAN_ONIG}]]` : `\\${n}${prop}`;
        i = end;
      } else out += `\\${n}`;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      out += c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      if (pattern[i + 1] === '^') {
        out += '^';
        i++;
      }
      continue;
    }
    if (c === '(') {
      if (pattern.startsWith('(?i:', i)) {
        groups.push(true);
        caseless++;
        out += '(?:';
        i += 3;
        continue;
      }
      groups.push(false);
      out += c;
      continue;
    }
    if (c === ')') {
      if (groups.pop()) caseless--;
      out += c;
      continue;
    }
    if (caseless > 0 && /[a-zA-Z]/.test(c)) out += `[${c.toLowerCase()}${c.toUpperCase()}]`;
    else out += c;
  }
  return new RegExp(out, 'gv');
}

// ── normalizers ─────────────────────────────────────────────────────────────────────────────

type Normalize = (s: string) => string;

const CJK: Array<[number, number]> = [
  [0x4e00, 0x9fff],
  [0x3400, 0x4dbf],
  [0x20000, 0x2a6df],
  [0x2a700, 0x2b73f],
  [0x2b740, 0x2b81f],
  [0x2b920, 0x2ceaf],
  [0xf900, 0xfaff],
  [0x2f800, 0x2fa1f],
];

export function buildNormalizer(n: Json): Normalize | undefined {
  if (n === null || n === undefined) return undefined;
  switch (n.type) {
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD':
      return (s) => s.normalize(n.type);
    case 'Lowercase':
      return lowercase;
    case 'Strip': {
      const left = n.strip_left ?? true;
      const right = n.strip_right ?? true;
      return (s) => {
        const chars = [...s];
        let a = 0;
        let b = chars.length;
        if (left) while (a < b && isWhitespace(chars[a] as string)) a++;
        if (right) while (b > a && isWhitespace(chars[b - 1] as string)) b--;
        return chars.slice(a, b).join('');
      };
    }
    case 'Replace': {
      const from = patternOf(n.pattern, 'normalizer.pattern');
      return (s) => s.replace(from, n.content);
    }
    case 'Prepend':
      return (s) => (s.length > 0 ? n.prepend + s : s);
    case 'Sequence': {
      const parts = (n.normalizers as Json[]).map(buildNormalizer).filter((f): f is Normalize => !!f);
      return (s) => parts.reduce((acc, f) => f(acc), s);
    }
    case 'BertNormalizer': {
      const lowercase = n.lowercase ?? true;
      const stripAccents = n.strip_accents ?? lowercase;
      return (s) => {
        let out = '';
        for (const c of s) {
          const cp = c.codePointAt(0) as number;
          if (n.clean_text ?? true) {
            // tokenizers' is_control: Cc, Cf, Co and Cs, not unassigned code points
            if (cp === 0 || cp === 0xfffd || (c !== '\t' && c !== '\n' && c !== '\r' && /[\p{Cc}\p{Cf}\p{Co}\p{Cs}]/u.test(c) && !newer(c))) continue;
            if (c === '\t' || c === '\n' || c === '\r' || /\p{Zs}/u.test(c)) {
              out += ' ';
              continue;
            }
          }
          if ((n.handle_chinese_chars ?? true) && CJK.some(([a, b]) => cp >= a && cp <= b)) out += ` ${c} `;
          else out += c;
        }
        if (stripAccents) out = stripMarks(out.normalize('NFD'));
        return lowercase ? lowercaseChars(out) : out;
      };
    }
    default:
      throw new UnsupportedTokenizerError('normalizer.type', n.type);
  }
}

/** Removes nonspacing marks (the accents NFD split off), except those newer than tokenizers' tables. */
function stripMarks(s: string): string {
  let out = '';
  for (const c of s) {
    const mark = MARK_IN_TOKENIZERS_TABLES.test(c) || (/\p{Mn}/u.test(c) && !newer(c) && !NOT_MARK_IN_TOKENIZERS_TABLES.test(c));
    if (!mark) out += c;
  }
  return out;
}

/** Lowercase character by character, as tokenizers does (no final-sigma rule: 'Σ' is always 'σ'). */
function lowercaseChars(s: string): string {
  let out = '';
  for (const c of s) out += c.toLowerCase();
  return out;
}
const lowercase = lowercaseChars;

function patternOf(p: Json, field: string): RegExp {
  if (typeof p?.String === 'string') return new RegExp(p.String.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gu');
  if (typeof p?.Regex === 'string') return onigToJs(p.Regex);
  throw new UnsupportedTokenizerError(field, p);
}

// ── pre-tokenizers ──────────────────────────────────────────────────────────────────────────

/** A piece of text on its way to the model, and whether it starts the original input (Metaspace's "first"). */
export interface Piece {
  text: string;
  first: boolean;
}
type PreTokenize = (pieces: Piece[]) => Piece[];

type Behavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';

/** Splits each piece around the matches of `find` (delimiters), as tokenizers' SplitDelimiterBehavior. */
function splitPieces(pieces: Piece[], find: (s: string) => Array<[number, number]>, behavior: Behavior): Piece[] {
  const out: Piece[] = [];
  for (const p of pieces) {
    const spans: Array<[number, number, boolean]> = []; // [start, end, isDelimiter]
    let last = 0;
    for (const [a, b] of find(p.text)) {
      if (a > last) spans.push([last, a, false]);
      spans.push([a, b, true]);
      last = b;
    }
    if (last < p.text.length) spans.push([last, p.text.length, false]);
    const merged: Array<[number, number]> = [];
    for (let i = 0; i < spans.length; i++) {
      const [a, b, delim] = spans[i] as [number, number, boolean];
      if (!delim) {
        merged.push([a, b]);
        continue;
      }
      if (behavior === 'Removed') continue;
      if (behavior === 'Isolated') merged.push([a, b]);
      else if (behavior === 'Contiguous') {
        const prev = merged.at(-1);
        const prevSpan = spans[i - 1];
        if (prev && prevSpan?.[2] && prev[1] === a) prev[1] = b;
        else merged.push([a, b]);
      } else if (behavior === 'MergedWithPrevious') {
        const prev = merged.at(-1);
        if (prev && prev[1] === a) prev[1] = b;
        else merged.push([a, b]);
      } else {
        // MergedWithNext: the delimiter opens the next piece
        const next = spans[i + 1];
        if (next && !next[2]) {
          merged.push([a, next[1]]);
          i++;
        } else merged.push([a, b]);
      }
    }
    for (const [a, b] of merged) if (b > a) out.push({ text: p.text.slice(a, b), first: p.first && a === 0 });
  }
  return out;
}

function regexSpans(re: RegExp): (s: string) => Array<[number, number]> {
  return (s) => {
    const spans: Array<[number, number]> = [];
    for (const m of s.matchAll(re)) if (m[0].length > 0) spans.push([m.index, m.index + m[0].length]);
    return spans;
  };
}

function charSpans(test: (c: string) => boolean): (s: string) => Array<[number, number]> {
  return (s) => {
    const spans: Array<[number, number]> = [];
    let i = 0;
    for (const c of s) {
      if (test(c)) spans.push([i, i + c.length]);
      i += c.length;
    }
    return spans;
  };
}

const GPT2_PATTERN = onigToJs("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+");
const isPunctuation = (c: string) => /^[!-/:-@[-`{-~]$/.test(c) || PUNCTUATION_IN_TOKENIZERS_TABLES.test(c) || (/\p{P}/u.test(c) && !newer(c));

export function buildPreTokenizer(p: Json): PreTokenize | undefined {
  if (p === null || p === undefined) return undefined;
  switch (p.type) {
    case 'ByteLevel': {
      const prefix = p.add_prefix_space ?? true;
      const useRegex = p.use_regex ?? true;
      return (pieces) => {
        const spaced = prefix ? pieces.map((x) => (x.text.startsWith(' ') ? x : { ...x, text: ` ${x.text}` })) : pieces;
        const split = useRegex ? splitPieces(spaced, regexSpans(GPT2_PATTERN), 'Isolated') : spaced;
        return split.map((x) => ({ ...x, text: byteChars(x.text) }));
      };
    }
    case 'Split': {
      if (p.invert) throw new UnsupportedTokenizerError('pre_tokenizer.invert', p.invert);
      const behavior = p.behavior as Behavior;
      if (!['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'].includes(behavior)) {
        throw new UnsupportedTokenizerError('pre_tokenizer.behavior', p.behavior);
      }
      return (pieces) => splitPieces(pieces, regexSpans(patternOf(p.pattern, 'pre_tokenizer.pattern')), behavior);
    }
    case 'Digits': {
      const isDigit = (c: string) => /\p{N}/u.test(c); // Rust's char::is_numeric: Nd, Nl and No
      return (pieces) => splitPieces(pieces, charSpans(isDigit), p.individual_digits ? 'Isolated' : 'Contiguous');
    }
    case 'Metaspace': {
      const rep = p.replacement ?? '▁';
      const scheme = p.prepend_scheme ?? (p.add_prefix_space === false ? 'never' : 'always');
      const split = p.split ?? true;
      return (pieces) => {
        const replaced = pieces.map((x) => {
          let text = x.text.replaceAll(' ', rep);
          if (!text.startsWith(rep) && (scheme === 'always' || (scheme === 'first' && x.first))) text = rep + text;
          return { ...x, text };
        });
        return split
          ? splitPieces(
              replaced,
              charSpans((c) => c === rep),
              'MergedWithNext',
            )
          : replaced;
      };
    }
    case 'BertPreTokenizer':
      return (pieces) => splitPieces(splitPieces(pieces, charSpans(isWhitespace), 'Removed'), charSpans(isPunctuation), 'Isolated');
    case 'Whitespace': {
      // biome-ignore lint/suspicious/noMisleadingCharacterClass: the joiners are single characters of Rust's \w here
      const re = /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\u200c\u200d]+|[^\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\u200c\u200d\s]+/gu;
      return (pieces) => splitPieces(pieces, (s) => complementSpans(s, regexSpans(re)(s)), 'Removed');
    }
    case 'WhitespaceSplit':
      return (pieces) => splitPieces(pieces, charSpans(isWhitespace), 'Removed');
    case 'Punctuation':
      return (pieces) => splitPieces(pieces, charSpans(isPunctuation), (p.behavior ?? 'Isolated') as Behavior);
    case 'Sequence': {
      const stages = (p.pretokenizers as Json[]).map(buildPreTokenizer).filter((f): f is PreTokenize => !!f);
      return (pieces) => stages.reduce((acc, f) => f(acc), pieces);
    }
    default:
      throw new UnsupportedTokenizerError('pre_tokenizer.type', p.type);
  }
}

/** The gaps between spans (what a Whitespace pre-tokenizer drops). */
function complementSpans(s: string, spans: Array<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let last = 0;
  for (const [a, b] of spans) {
    if (a > last) out.push([last, a]);
    last = b;
  }
  if (last < s.length) out.push([last, s.length]);
  return out;
}

const utf8 = new TextEncoder();

/** The bytes a byte-level token stands for, or undefined when it holds a character outside that alphabet. */
export function byteLevelBytes(token: string): Uint8Array | undefined {
  const out: number[] = [];
  for (const c of token) {
    const b = CHAR_TO_BYTE.get(c);
    if (b === undefined) return undefined;
    out.push(b);
  }
  return Uint8Array.from(out);
}

export function byteChars(text: string): string {
  let out = '';
  for (const b of utf8.encode(text)) out += BYTE_TO_CHAR[b];
  return out;
}

// ── models ──────────────────────────────────────────────────────────────────────────────────

export interface TokenModel {
  /** Appends the ids of one pre-tokenized word. */
  tokenize(word: string, out: number[]): void;
  vocab: Map<string, number>;
}

/** BPE over a word's characters: merges by rank, with byte fallback, unknown-token fusing and ignore_merges. */
export class BpeModel implements TokenModel {
  readonly vocab: Map<string, number>;
  private readonly ranks = new Map<string, { rank: number; id: number }>(); // "a b" ids -> merge
  private readonly cache = new Map<string, number[]>();
  private readonly unk: number | undefined;
  private readonly prefix: string;
  private readonly suffix: string;

  constructor(private readonly m: Json) {
    if (m.dropout) throw new UnsupportedTokenizerError('model.dropout', m.dropout);
    this.vocab = new Map(Object.entries(m.vocab as Record<string, number>));
    this.prefix = m.continuing_subword_prefix ?? '';
    this.suffix = m.end_of_word_suffix ?? '';
    this.unk = m.unk_token ? this.vocab.get(m.unk_token) : undefined;
    (m.merges as Array<string | [string, string]>).forEach((merge, rank) => {
      const [a, b] = Array.isArray(merge) ? merge : splitMerge(merge);
      const ia = this.vocab.get(a);
      const ib = this.vocab.get(b);
      const joined = a + (this.prefix && b.startsWith(this.prefix) ? b.slice(this.prefix.length) : b);
      const id = this.vocab.get(joined);
      if (ia === undefined || ib === undefined || id === undefined)
        throw new UnsupportedTokenizerError('model.merges', merge, 'names a token outside the vocabulary');
      if (!this.ranks.has(`${ia} ${ib}`)) this.ranks.set(`${ia} ${ib}`, { rank, id });
    });
  }

  tokenize(word: string, out: number[]): void {
    const hit = this.cache.get(word);
    if (hit) {
      for (const id of hit) out.push(id);
      return;
    }
    const ids = this.word(word);
    if (this.cache.size > 50_000) this.cache.clear();
    this.cache.set(word, ids);
    for (const id of ids) out.push(id);
  }

  private word(word: string): number[] {
    if (this.m.ignore_merges) {
      const whole = this.vocab.get(word);
      if (whole !== undefined) return [whole];
    }
    const chars = [...word];
    const syms: number[] = [];
    let lastWasUnk = false;
    chars.forEach((c, i) => {
      let s = c;
      if (i > 0 && this.prefix) s = this.prefix + s;
      if (i === chars.length - 1 && this.suffix) s += this.suffix;
      const id = this.vocab.get(s);
      if (id !== undefined) {
        syms.push(id);
        lastWasUnk = false;
        return;
      }
      if (this.m.byte_fallback) {
        const bytes = [...utf8.encode(c)].map((b) => this.vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
        if (bytes.every((b) => b !== undefined)) {
          for (const b of bytes) syms.push(b as number);
          lastWasUnk = false;
          return;
        }
      }
      if (this.unk === undefined) return; // no unknown token: the character is dropped, as tokenizers does
      if (this.m.fuse_unk && lastWasUnk) return;
      syms.push(this.unk);
      lastWasUnk = true;
    });
    return this.merge(syms);
  }

  /** Applies merges lowest rank first (leftmost among equal ranks) with a heap over a linked list. */
  private merge(syms: number[]): number[] {
    const n = syms.length;
    if (n < 2) return syms;
    const id = syms.slice();
    const next = Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const prev = Array.from({ length: n }, (_, i) => i - 1);
    const alive = new Array<boolean>(n).fill(true);
    const heap = new MergeHeap();
    const consider = (i: number) => {
      const j = next[i] as number;
      if (j < 0) return;
      const m = this.ranks.get(`${id[i]} ${id[j]}`);
      if (m) heap.push({ rank: m.rank, pos: i, left: id[i] as number, right: id[j] as number, to: m.id });
    };
    for (let i = 0; i < n - 1; i++) consider(i);
    for (let top = heap.pop(); top; top = heap.pop()) {
      const i = top.pos;
      const j = next[i] as number;
      // stale entries: the pair changed since it was queued
      if (!alive[i] || j < 0 || id[i] !== top.left || id[j] !== top.right) continue;
      id[i] = top.to;
      alive[j] = false;
      next[i] = next[j] as number;
      if ((next[j] as number) >= 0) prev[next[j] as number] = i;
      if ((prev[i] as number) >= 0) consider(prev[i] as number);
      consider(i);
    }
    const outIds: number[] = [];
    for (let i = 0; i >= 0; i = next[i] as number) outIds.push(id[i] as number);
    return outIds;
  }
}

function splitMerge(m: string): [string, string] {
  const i = m.indexOf(' ', 1);
  return [m.slice(0, i), m.slice(i + 1)];
}

interface MergeEntry {
  rank: number;
  pos: number;
  left: number;
  right: number;
  to: number;
}

class MergeHeap {
  private readonly a: MergeEntry[] = [];
  private less(x: MergeEntry, y: MergeEntry): boolean {
    return x.rank < y.rank || (x.rank === y.rank && x.pos < y.pos);
  }
  push(e: MergeEntry): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i] as MergeEntry, a[p] as MergeEntry)) break;
      [a[i], a[p]] = [a[p] as MergeEntry, a[i] as MergeEntry];
      i = p;
    }
  }
  pop(): MergeEntry | undefined {
    const a = this.a;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop() as MergeEntry;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l] as MergeEntry, a[m] as MergeEntry)) m = l;
        if (r < a.length && this.less(a[r] as MergeEntry, a[m] as MergeEntry)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m] as MergeEntry, a[i] as MergeEntry];
        i = m;
      }
    }
    return top;
  }
}

/** WordPiece: greedy longest match from the left, continuation pieces with their prefix; an unmatched word is the unknown token. */
export class WordPieceModel implements TokenModel {
  readonly vocab: Map<string, number>;
  private readonly unk: number;

  constructor(private readonly m: Json) {
    this.vocab = new Map(Object.entries(m.vocab as Record<string, number>));
    const unk = this.vocab.get(m.unk_token ?? '[UNK]');
    if (unk === undefined) throw new UnsupportedTokenizerError('model.unk_token', m.unk_token, 'is not in the vocabulary');
    this.unk = unk;
  }

  tokenize(word: string, out: number[]): void {
    const chars = [...word];
    if (chars.length > (this.m.max_input_chars_per_word ?? 100)) {
      out.push(this.unk);
      return;
    }
    const prefix = this.m.continuing_subword_prefix ?? '##';
    const ids: number[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found: number | undefined;
      while (start < end) {
        const sub = (start > 0 ? prefix : '') + chars.slice(start, end).join('');
        found = this.vocab.get(sub);
        if (found !== undefined) break;
        end--;
      }
      if (found === undefined) {
        out.push(this.unk);
        return;
      }
      ids.push(found);
      start = end;
    }
    for (const id of ids) out.push(id);
  }
}

export function buildModel(m: Json): TokenModel {
  const type = m?.type ?? (m?.merges ? 'BPE' : m?.continuing_subword_prefix !== undefined && !m?.merges ? 'WordPiece' : undefined);
  if (type === 'BPE') return new BpeModel(m);
  if (type === 'WordPiece') return new WordPieceModel(m);
  throw new UnsupportedTokenizerError('model.type', m?.type ?? null, 'is not supported (BPE or WordPiece)');
}

// ── post-processors ─────────────────────────────────────────────────────────────────────────

type PostProcess = (ids: number[]) => number[];

export function buildPostProcessor(p: Json, idOf: (token: string) => number | undefined): PostProcess | undefined {
  if (p === null || p === undefined) return undefined;
  const need = (token: string, field: string): number => {
    const id = idOf(token);
    if (id === undefined) throw new UnsupportedTokenizerError(field, token, 'names a token outside the vocabulary');
    return id;
  };
  switch (p.type) {
    case 'ByteLevel':
      return undefined;
    case 'TemplateProcessing': {
      const parts: Array<number[] | 'A'> = (p.single as Json[]).map((item) => {
        if (item.Sequence) {
          if (item.Sequence.id !== 'A') throw new UnsupportedTokenizerError('post_processor.single', item);
          return 'A';
        }
        const name = item.SpecialToken.id as string;
        const special = p.special_tokens?.[name];
        return special?.ids ? (special.ids as number[]) : [need(name, 'post_processor.special_tokens')];
      });
      return (ids) => parts.flatMap((x) => (x === 'A' ? ids : x));
    }
    case 'BertProcessing':
    case 'RobertaProcessing': {
      const cls = p.cls[1] as number;
      const sep = p.sep[1] as number;
      return (ids) => [cls, ...ids, sep];
    }
    case 'Sequence': {
      const stages = (p.processors as Json[]).map((x) => buildPostProcessor(x, idOf)).filter((f): f is PostProcess => !!f);
      return (ids) => stages.reduce((acc, f) => f(acc), ids);
    }
    default:
      throw new UnsupportedTokenizerError('post_processor.type', p.type);
  }
}

// ── decoders ────────────────────────────────────────────────────────────────────────────────

type Decode = (tokens: string[]) => string[];

const CLEANUPS: Array<[string, string]> = [
  [' .', '.'],
  [' ?', '?'],
  [' !', '!'],
  [' ,', ','],
  [" ' ", "'"],
  [" n't", "n't"],
  [" 'm", "'m"],
  [' do not', " don't"],
  [" 's", "'s"],
  [" 've", "'ve"],
  [" 're", "'re"],
];

// a leading U+FEFF is text here, not a byte-order mark to drop
const utf8Lossy = new TextDecoder('utf-8', { ignoreBOM: true });

export function buildDecoder(d: Json): Decode | undefined {
  if (d === null || d === undefined) return undefined;
  switch (d.type) {
    case 'ByteLevel':
      return (tokens) => {
        const bytes: number[] = [];
        for (const t of tokens) {
          const mapped: number[] = [];
          let ok = true;
          for (const c of t) {
            const b = CHAR_TO_BYTE.get(c);
            if (b === undefined) {
              ok = false;
              break;
            }
            mapped.push(b);
          }
          for (const b of ok ? mapped : utf8.encode(t)) bytes.push(b);
        }
        return [utf8Lossy.decode(Uint8Array.from(bytes))];
      };
    case 'Metaspace': {
      const rep = d.replacement ?? '▁';
      const scheme = d.prepend_scheme ?? (d.add_prefix_space === false ? 'never' : 'always');
      return (tokens) =>
        tokens.map((t, i) => {
          const s = t.replaceAll(rep, ' ');
          return i === 0 && scheme !== 'never' && s.startsWith(' ') ? s.slice(1) : s;
        });
    }
    case 'ByteFallback':
      return (tokens) => {
        const out: string[] = [];
        let pending: number[] = [];
        const flush = () => {
          if (pending.length === 0) return;
          try {
            out.push(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(Uint8Array.from(pending)));
          } catch {
            for (let i = 0; i < pending.length; i++) out.push('\ufffd');
          }
          pending = [];
        };
        for (const t of tokens) {
          const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(t);
          if (m) pending.push(Number.parseInt(m[1] as string, 16));
          else {
            flush();
            out.push(t);
          }
        }
        flush();
        return out;
      };
    case 'Fuse':
      return (tokens) => [tokens.join('')];
    case 'Strip': {
      const c = d.content as string;
      return (tokens) =>
        tokens.map((t) => {
          const chars = [...t];
          let a = 0;
          let b = chars.length;
          for (let k = 0; k < d.start && a < b && chars[a] === c; k++) a++;
          for (let k = 0; k < d.stop && b > a && chars[b - 1] === c; k++) b--;
          return chars.slice(a, b).join('');
        });
    }
    case 'Replace': {
      const from = patternOf(d.pattern, 'decoder.pattern');
      return (tokens) => tokens.map((t) => t.replace(from, d.content));
    }
    case 'WordPiece': {
      const prefix = d.prefix ?? '##';
      return (tokens) =>
        tokens.map((t, i) => {
          let s = t;
          if (i !== 0) s = s.startsWith(prefix) ? s.slice(prefix.length) : ` ${s}`;
          if (d.cleanup ?? true) for (const [a, b] of CLEANUPS) s = s.replaceAll(a, b);
          return s;
        });
    }
    case 'Sequence': {
      const stages = (d.decoders as Json[]).map(buildDecoder).filter((f): f is Decode => !!f);
      return (tokens) => stages.reduce((acc, f) => f(acc), tokens);
    }
    default:
      throw new UnsupportedTokenizerError('decoder.type', d.type);
  }
}
