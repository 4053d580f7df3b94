// Statistics and a tokenization preview of a processed file: the routes' side. The reading itself
// (reading-work.ts) runs in the file work threads, streaming.

import type { Histogram } from '@crucible/datasets';
import { findModelRef } from '@crucible/db';
import { CrucibleError, type FileFormat } from '@crucible/domain';
import type { Actor } from '../auth';
import type { Deps } from '../deps';
import { type TokenizerSource, tokenizerSource } from '../models/stored';
import { getProcessedFile } from './service';

async function tokenizerOf(deps: Pick<Deps, 'store'>, actor: Actor, model: string): Promise<TokenizerSource> {
  const ref = await findModelRef(deps.store, actor.projectId, model);
  if (!ref) throw new CrucibleError('model_not_found', `model ${model} does not exist in this project (presets have no tokenizer until trained)`, 'model');
  return tokenizerSource(ref);
}

export async function fileStats(deps: Pick<Deps, 'store' | 'fileWork'>, actor: Actor, id: string, model?: string) {
  const f = await getProcessedFile(deps, actor, id, 'file_id');
  const report = f.report as { records: number; characters: number; bytes: number; length_histogram: ReturnType<Histogram['toJSON']> };
  let tokens = null;
  if (model) {
    const tokenizer = await tokenizerOf(deps, actor, model);
    const [t, unknown] = await Promise.all([
      deps.fileWork.run({ kind: 'tally', key: f.storageKey, format: f.format as FileFormat, counting: { tokenizer } }),
      deps.fileWork.run({ kind: 'unknown-characters', key: f.storageKey, format: f.format as FileFormat, tokenizer }),
    ]);
    tokens = {
      model,
      total: t.total,
      trained: t.trained,
      mean_per_record: t.records ? t.total / t.records : 0,
      max_per_record: t.maxPerRecord,
      length_histogram: t.histogram,
      // what a job from this model would refuse the file for (a character-level tokenizer's gaps)
      unknown_characters: unknown.missing,
      lacks_chat_tokens: unknown.lacksChatTokens,
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

export async function filePreview(deps: Pick<Deps, 'store' | 'fileWork'>, actor: Actor, id: string, model: string, count: number) {
  const f = await getProcessedFile(deps, actor, id, 'file_id');
  const tokenizer = await tokenizerOf(deps, actor, model);
  const { records } = await deps.fileWork.run({ kind: 'preview', key: f.storageKey, format: f.format as FileFormat, tokenizer, count });
  return { object: 'file.preview' as const, file_id: f.id, model, records };
}
