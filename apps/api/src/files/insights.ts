// Statistics and a tokenization preview of a processed file, read as a stream (one record in
// memory at a time). Tokens are counted the way the trainer encodes the file (`encodeDataset`):
// chat data with its template, plain text line by line with its newlines, and end-of-text between
// JSONL documents unless one already ends with it.

import { Histogram, recordTokens } from '@crucible/datasets';
import { findModelRef } from '@crucible/db';
import { CrucibleError, type FileFormat, type FileRecord } from '@crucible/domain';
import type { Tokenizer } from '@crucible/model-files';
import type { Storage } from '@crucible/storage';
import type { Actor } from '../auth';
import type { Deps } from '../deps';
import { storedTokenizer } from '../models/stored';
import { getProcessedFile } from './service';
import { storedLines } from './stored-lines';

async function tokenizerOf(deps: Pick<Deps, 'store' | 'storage'>, actor: Actor, model: string): Promise<Tokenizer> {
  const ref = await findModelRef(deps.store, actor.projectId, model);
  if (!ref) throw new CrucibleError('model_not_found', `model ${model} does not exist in this project (presets have no tokenizer until trained)`, 'model');
  return storedTokenizer(deps.storage, ref);
}

/** One record's tokens: how many, how many carry loss, and whether the last is end-of-text. */
export interface RecordCount {
  total: number;
  trained: number;
  endsWithEot: boolean;
}

/** Counts a record with a real tokenizer. */
export function tokenizerCount(tok: Tokenizer, format: FileFormat): (text: string) => RecordCount {
  const eot = tok.special('eot');
  return (text) => {
    const t = recordTokens(text, format, tok);
    return { total: t.length, trained: t.filter((x) => x.loss).length, endsWithEot: eot !== undefined && t.at(-1)?.id === eot };
  };
}

export interface TokenTally {
  total: number;
  trained: number;
  /** Non-empty records. */
  records: number;
  maxPerRecord: number;
  histogram: Histogram;
}

/** Walks a stored file as the trainer encodes it, counting each record with `count`. */
export async function tallyTokens(storage: Storage, file: FileRecord, count: (text: string) => RecordCount): Promise<TokenTally> {
  const format = file.format as FileFormat;
  const tally: TokenTally = { total: 0, trained: 0, records: 0, maxPerRecord: 0, histogram: new Histogram('tokens') };
  let previousEndsWithEot = true; // nothing goes before the first document
  for await (const l of storedLines(storage, file.storageKey)) {
    const blank = !l.text.trim();
    if (format !== 'text' && blank) continue; // plain text keeps its blank lines
    const c = count(format === 'text' && !l.unterminated ? `${l.text}\n` : l.text);
    if (format !== 'text' && !previousEndsWithEot) tally.total += 1; // end-of-text between documents
    previousEndsWithEot = c.endsWithEot;
    tally.total += c.total;
    tally.trained += c.trained;
    if (blank) continue;
    tally.records++;
    tally.maxPerRecord = Math.max(tally.maxPerRecord, c.total);
    tally.histogram.add(c.total);
  }
  return tally;
}

export async function fileStats(deps: Pick<Deps, 'store' | 'storage'>, actor: Actor, id: string, model?: string) {
  const f = await getProcessedFile(deps, actor, id, 'file_id');
  const report = f.report as { records: number; characters: number; bytes: number; length_histogram: ReturnType<Histogram['toJSON']> };
  let tokens = null;
  if (model) {
    const t = await tallyTokens(deps.storage, f, tokenizerCount(await tokenizerOf(deps, actor, model), f.format as FileFormat));
    tokens = {
      model,
      total: t.total,
      trained: t.trained,
      mean_per_record: t.records ? t.total / t.records : 0,
      max_per_record: t.maxPerRecord,
      length_histogram: t.histogram.toJSON(),
    };
  }
  return {
    object: 'file.stats' as const,
    file_id: f.id,
    format: f.format,
    records: report.records,
    characters: report.characters,
    bytes: report.bytes,
    length_histogram: report.length_histogram,
    tokens,
  };
}

export async function filePreview(deps: Pick<Deps, 'store' | 'storage'>, actor: Actor, id: string, model: string, count: number) {
  const f = await getProcessedFile(deps, actor, id, 'file_id');
  const tok = await tokenizerOf(deps, actor, model);
  const out: Array<{ line: number; tokens: Array<{ id: number; text: string; loss: boolean }> }> = [];
  for await (const l of storedLines(deps.storage, f.storageKey)) {
    if (!l.text.trim()) continue;
    const t = recordTokens(f.format === 'text' ? `${l.text}\n` : l.text, f.format as FileFormat, tok);
    out.push({ line: l.number, tokens: t.map((x) => ({ id: x.id, text: tok.decode([x.id]), loss: x.loss })) });
    if (out.length >= count) break;
  }
  return { object: 'file.preview' as const, file_id: f.id, model, records: out };
}
