// Statistics and a tokenization preview of a processed file, read as a stream (one record in
// memory at a time). Tokens are counted per record with the chosen model's tokenizer, the way the
// trainer encodes them (chat data with its template; plain text per line, with its newlines).

import { Histogram, LineSplitter, recordTokens } from '@crucible/datasets';
import { findModelRef } from '@crucible/db';
import { CrucibleError, type FileFormat } from '@crucible/domain';
import type { Tokenizer } from '@crucible/model-files';
import type { Actor } from '../auth';
import type { Deps } from '../deps';
import { storedTokenizer } from '../models/stored';
import { getProcessedFile } from './service';

async function tokenizerOf(deps: Pick<Deps, 'store' | 'storage'>, actor: Actor, model: string): Promise<Tokenizer> {
  const ref = await findModelRef(deps.store, actor.projectId, model);
  if (!ref) throw new CrucibleError('model_not_found', `model ${model} does not exist in this project (presets have no tokenizer until trained)`, 'model');
  return storedTokenizer(deps.storage, ref);
}

/** Each non-empty record of a stored file with its line number. */
async function* records(deps: Pick<Deps, 'storage'>, key: string, limit = Number.POSITIVE_INFINITY): AsyncGenerator<{ line: number; text: string }> {
  const splitter = new LineSplitter(Number.MAX_SAFE_INTEGER);
  const dec = new TextDecoder();
  const body = await deps.storage.getStream(key);
  let n = 0;
  try {
    for await (const chunk of body) {
      for (const l of splitter.push(chunk as Uint8Array)) {
        const text = dec.decode(l.bytes);
        if (!text.trim()) continue;
        yield { line: l.number, text };
        if (++n >= limit) return;
      }
    }
    for (const l of splitter.end()) {
      const text = dec.decode(l.bytes);
      if (text.trim()) yield { line: l.number, text };
    }
  } finally {
    body.destroy();
  }
}

export async function fileStats(deps: Pick<Deps, 'store' | 'storage'>, actor: Actor, id: string, model?: string) {
  const f = await getProcessedFile(deps, actor, id, 'file_id');
  const report = f.report as { records: number; characters: number; bytes: number; length_histogram: ReturnType<Histogram['toJSON']> };
  let tokens = null;
  if (model) {
    const tok = await tokenizerOf(deps, actor, model);
    const hist = new Histogram('tokens');
    let total = 0;
    let trained = 0;
    let max = 0;
    let n = 0;
    for await (const r of records(deps, f.storageKey)) {
      const t = recordTokens(f.format === 'text' ? `${r.text}\n` : r.text, f.format as FileFormat, tok);
      const eotBetween = f.format !== 'text' && n > 0 ? 1 : 0; // documents are separated by end-of-text
      total += t.length + eotBetween;
      trained += t.filter((x) => x.loss).length;
      max = Math.max(max, t.length);
      hist.add(t.length);
      n++;
    }
    tokens = { model, total, trained, mean_per_record: n ? total / n : 0, max_per_record: max, length_histogram: hist.toJSON() };
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
  for await (const r of records(deps, f.storageKey, count)) {
    const t = recordTokens(f.format === 'text' ? `${r.text}\n` : r.text, f.format as FileFormat, tok);
    out.push({ line: r.line, tokens: t.map((x) => ({ id: x.id, text: tok.decode([x.id]), loss: x.loss })) });
  }
  return { object: 'file.preview' as const, file_id: f.id, model, records: out };
}
