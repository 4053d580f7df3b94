// Reading a processed file back, with no database: token statistics, a tokenization preview, and
// the characters a character-level tokenizer lacks. Like file-work.ts, these run in the file
// work threads (a 200 MB file is tokenized off the API's event loop), streaming one line at a time.
// Tokens are counted the way the trainer encodes the file (`encodeDataset`): chat data with its
// template, plain text line by line with its newlines, and end-of-text between JSONL documents
// unless one already ends with it.
import { Histogram, recordTokens, storedLines } from '@crucible/datasets';
import { datasetDocuments, type FileFormat, fieldOf, UnknownCharacters } from '@crucible/domain';
import { CharTokenizer, type Tokenizer } from '@crucible/model-files';
import type { Storage } from '@crucible/storage';
import { readStoredTokenizer, type TokenizerSource } from '../models/stored';

/** UTF-8 bytes per token assumed for a BPE tokenizer not trained yet (typical of small vocabularies). */
export const BPE_BYTES_PER_TOKEN = 3;

/** How records are counted: with a stored tokenizer, or approximately before one exists (characters, or bytes / BPE_BYTES_PER_TOKEN). */
export type TokenCounting = { tokenizer: TokenizerSource } | { approximate: 'chars' | 'bpe' };

export interface TallyTask {
  kind: 'tally';
  key: string;
  format: FileFormat;
  counting: TokenCounting;
}

export interface PreviewTask {
  kind: 'preview';
  key: string;
  format: FileFormat;
  tokenizer: TokenizerSource;
  count: number;
}

export interface UnknownCharactersTask {
  kind: 'unknown-characters';
  key: string;
  format: FileFormat;
  tokenizer: TokenizerSource;
}

export interface TokenTally {
  total: number;
  trained: number;
  /** Non-empty records. */
  records: number;
  maxPerRecord: number;
  /** Histogram.toJSON(): the result crosses the thread boundary as plain data. */
  histogram: ReturnType<Histogram['toJSON']>;
}

export interface Preview {
  records: Array<{ line: number; tokens: Array<{ id: number; text: string; loss: boolean }> }>;
}

export interface UnknownCharactersFound {
  /** False when the tokenizer is not character-level (a byte-level BPE encodes every string). */
  characterLevel: boolean;
  missing: Array<{ char: string; line: number }>;
  /** The tokenizer lacks the chat template's <|im_start|> and <|im_end|>. */
  lacksChatTokens: boolean;
}

/** One record's tokens: how many, how many carry loss, and whether the last is end-of-text. */
interface RecordCount {
  total: number;
  trained: number;
  endsWithEot: boolean;
}

function tokenizerCount(tok: Tokenizer, format: FileFormat): (text: string) => RecordCount {
  const eot = tok.special('eot');
  return (text) => {
    const t = recordTokens(text, format, tok);
    let trained = 0;
    for (const x of t) if (x.loss) trained++;
    return { total: t.length, trained, endsWithEot: eot !== undefined && t.at(-1)?.id === eot };
  };
}

function approximateCount(unit: 'chars' | 'bpe', format: FileFormat): (text: string) => RecordCount {
  const endsWithEot = format === 'jsonl_prompt_completion'; // a completion ends with end-of-text
  const size = (s: string) => (unit === 'chars' ? [...s].length : Buffer.byteLength(s) / BPE_BYTES_PER_TOKEN);
  return (text) => {
    const segments = datasetDocuments(text, format).flat();
    const total = Math.round(segments.reduce((a, s) => a + size(s.text), 0)) + (endsWithEot ? 1 : 0);
    const trained = Math.round(segments.filter((s) => s.train).reduce((a, s) => a + size(s.text), 0)) + (endsWithEot ? 1 : 0);
    return { total, trained, endsWithEot };
  };
}

/** Walks a stored file as the trainer encodes it, counting each record. */
export async function tallyStored(storage: Storage, t: TallyTask): Promise<TokenTally> {
  const count =
    'tokenizer' in t.counting
      ? tokenizerCount(await readStoredTokenizer(storage, t.counting.tokenizer), t.format)
      : approximateCount(t.counting.approximate, t.format);
  const tally = { total: 0, trained: 0, records: 0, maxPerRecord: 0 };
  const histogram = new Histogram('tokens');
  let previousEndsWithEot = true; // nothing goes before the first document
  for await (const l of storedLines(storage, t.key)) {
    const blank = !l.text.trim();
    if (t.format !== 'text' && blank) continue; // plain text keeps its blank lines
    const c = count(t.format === 'text' && !l.unterminated ? `${l.text}\n` : l.text);
    if (t.format !== 'text' && !previousEndsWithEot) tally.total += 1; // end-of-text between documents
    previousEndsWithEot = c.endsWithEot;
    tally.total += c.total;
    tally.trained += c.trained;
    if (blank) continue;
    tally.records++;
    tally.maxPerRecord = Math.max(tally.maxPerRecord, c.total);
    histogram.add(c.total);
  }
  return { ...tally, histogram: histogram.toJSON() };
}

/** The first `count` non-empty records, token by token. */
export async function previewStored(storage: Storage, t: PreviewTask): Promise<Preview> {
  const tok = await readStoredTokenizer(storage, t.tokenizer);
  const records: Preview['records'] = [];
  if (t.count <= 0) return { records };
  for await (const l of storedLines(storage, t.key)) {
    if (!l.text.trim()) continue;
    const tokens = recordTokens(t.format === 'text' ? `${l.text}\n` : l.text, t.format, tok);
    records.push({ line: l.number, tokens: tokens.map((x) => ({ id: x.id, text: tok.decode([x.id]), loss: x.loss })) });
    if (records.length >= t.count) break;
  }
  return { records };
}

/** The characters of a stored file a character-level tokenizer cannot encode. */
export async function unknownCharactersStored(storage: Storage, t: UnknownCharactersTask): Promise<UnknownCharactersFound> {
  const tok = await readStoredTokenizer(storage, t.tokenizer);
  if (!(tok instanceof CharTokenizer)) return { characterLevel: false, missing: [], lacksChatTokens: false };
  const found = new UnknownCharacters(t.format, (ch) => tok.knows(ch), [...tok.specialTokens.keys()]);
  for await (const l of storedLines(storage, t.key)) found.line(l.text, l.number, l.unterminated);
  const missing = found.result();
  return {
    characterLevel: true,
    missing,
    lacksChatTokens: t.format === 'jsonl_chat' && (tok.special('im_start') === undefined || tok.special('im_end') === undefined),
  };
}

export interface MissingItemFieldTask {
  kind: 'missing-item-field';
  key: string;
  /** The dotted paths a grader reads from each line, with the grader's parameter that names each. */
  fields: Array<{ path: string[]; param: string }>;
}

export interface MissingItemField {
  line: number;
  path: string;
  param: string;
}

/** The first line of a stored JSONL file that lacks a field a grader reads ({{item.<path>}}); null when every line has them. */
export async function missingItemFieldStored(storage: Storage, t: MissingItemFieldTask): Promise<MissingItemField | null> {
  if (t.fields.length === 0) return null;
  for await (const l of storedLines(storage, t.key)) {
    if (!l.text.trim()) continue;
    const item = JSON.parse(l.text) as unknown;
    for (const f of t.fields) if (fieldOf(item, f.path) === undefined) return { line: l.number, path: f.path.join('.'), param: f.param };
  }
  return null;
}
