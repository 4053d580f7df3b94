// Evaluations: a model or checkpoint of the project scored on a processed file by a worker (its
// own queue). Create checks the model and the file before anything is written; cancel is a
// conditional update the worker notices between batches.
import { findModelRef } from '@crucible/db';
import {
  COMPARISON_COLUMNS,
  type CreateEvaluationRequest,
  CrucibleError,
  EVALUATION_DEFAULTS as D,
  type EvaluationEventRecord,
  type EvaluationObject,
  type EvaluationRecord,
  ID_PREFIX,
  newId,
  ServiceUnavailableError,
} from '@crucible/domain';
import { dispatchEvaluation, redispatchEvaluation } from '@crucible/queue';
import type { Actor } from '../auth';
import type { Deps } from '../deps';
import { getFile, getProcessedFile } from '../files/service';
import { page, unix } from '../pagination';

export function evaluationObject(e: EvaluationRecord): EvaluationObject {
  return {
    id: e.id,
    object: 'evaluation',
    model: e.model,
    file: e.fileId,
    status: e.status,
    progress: e.progress,
    options: e.options,
    metrics: e.metrics,
    samples: e.samples ?? [],
    error: e.error,
    metadata: e.metadata,
    created_at: unix(e.createdAt) as number,
    started_at: unix(e.startedAt),
    finished_at: unix(e.finishedAt),
  };
}

export async function createEvaluation(deps: Deps, actor: Actor, req: CreateEvaluationRequest): Promise<EvaluationObject> {
  const ref = await findModelRef(deps.store, actor.projectId, req.model);
  if (!ref) {
    throw new CrucibleError(
      'model_not_found',
      `model ${req.model} does not exist in this project: evaluate a trained or imported model, or a checkpoint (presets have no trained weights)`,
      'model',
    );
  }
  await getProcessedFile(deps, actor, req.file, 'file');
  const e = await deps.store.evaluations.create({
    id: newId(ID_PREFIX.evaluation),
    projectId: actor.projectId,
    model: req.model,
    fileId: req.file,
    options: {
      max_examples: req.max_examples ?? D.maxExamples,
      samples: req.samples ?? D.samples,
      max_tokens: req.max_tokens ?? D.maxTokens,
      batch_size: req.batch_size ?? D.batchSize,
      seed: req.seed ?? D.seed,
    },
    metadata: req.metadata ?? null,
  });
  // the record is the source of truth: if the queue is down now, the sweeper dispatches it later
  await dispatchEvaluation(deps.evaluationQueue, e).catch((err) => {
    if (!(err instanceof ServiceUnavailableError)) throw err;
  });
  return evaluationObject(e);
}

export async function getEvaluation(deps: Pick<Deps, 'store'>, actor: Actor, id: string): Promise<EvaluationRecord> {
  const e = await deps.store.evaluations.get(actor.projectId, id);
  if (!e) throw new CrucibleError('evaluation_not_found', `no evaluation ${id} in this project`, 'evaluation_id');
  return e;
}

export async function listEvaluations(deps: Pick<Deps, 'store'>, actor: Actor, q: { after?: string; limit?: number; file?: string; model?: string }) {
  if (q.after) await getEvaluation(deps, actor, q.after);
  const r = await deps.store.evaluations.list(actor.projectId, { after: q.after, limit: q.limit ?? 20, file: q.file, model: q.model });
  return page(r.items.map(evaluationObject), r.hasMore);
}

export async function cancelEvaluation(deps: Pick<Deps, 'store'>, actor: Actor, id: string): Promise<EvaluationObject> {
  const e = await getEvaluation(deps, actor, id);
  const done = await deps.store.evaluations.finish(actor.projectId, id, 'cancelled', {}, { message: 'Evaluation cancelled' });
  if (!done) throw new CrucibleError('invalid_state', `evaluation ${id} is ${e.status}; only queued or running evaluations can be cancelled`, 'evaluation_id');
  return evaluationObject(await getEvaluation(deps, actor, id));
}

function eventObject(e: EvaluationEventRecord) {
  return { id: e.id, object: 'evaluation.event' as const, created_at: unix(e.createdAt) as number, level: e.level, message: e.message, data: e.data };
}

export async function listEvaluationEvents(deps: Pick<Deps, 'store'>, actor: Actor, id: string, q: { after?: string; limit?: number }) {
  await getEvaluation(deps, actor, id);
  const r = await deps.store.evaluations.listEvents(actor.projectId, id, { after: q.after, limit: q.limit ?? 20 });
  return page(r.items.map(eventObject), r.hasMore);
}

/** Lower is better for losses and perplexities; higher for accuracies; `tokens` is not ranked. */
const LOWER_IS_BETTER = new Set(['loss', 'perplexity', 'answer_loss', 'answer_perplexity']);

/**
 * Marks each column's best row (none when several tie for it, or with fewer than two rows) and
 * sorts the rows by the first column some row has (tokens aside), best first. Returns that column.
 */
export function rankTable(columns: string[], rows: Array<{ values: Array<number | null>; best: string[] }>): string {
  columns.forEach((c, i) => {
    if (c === 'tokens' || rows.length < 2) return;
    const vals = rows.map((r) => r.values[i]).filter((v): v is number => v !== null && v !== undefined);
    if (vals.length === 0) return;
    const target = LOWER_IS_BETTER.has(c) ? Math.min(...vals) : Math.max(...vals);
    const winners = rows.filter((r) => r.values[i] === target);
    if (winners.length === 1) winners[0]?.best.push(c);
  });
  const primary = columns.find((c, i) => c !== 'tokens' && rows.some((r) => r.values[i] != null)) ?? (columns[0] as string);
  const at = columns.indexOf(primary);
  const lower = LOWER_IS_BETTER.has(primary);
  rows.sort((a, b) => {
    const x = a.values[at] ?? null;
    const y = b.values[at] ?? null;
    if (x === null || y === null) return x === null ? (y === null ? 0 : 1) : -1;
    return lower ? x - y : y - x;
  });
  return primary;
}

/** Supervised data (prompt/completion, chat) is judged by its answers: their metrics come first. */
const ANSWER_FIRST = ['exact_match', 'answer_loss', 'answer_token_accuracy', 'answer_perplexity', 'loss', 'perplexity', 'token_accuracy', 'tokens'] as const;

/**
 * One table of the latest succeeded evaluation of each model on a file: a row per model, a
 * column per metric, and for each column the row that did best (none when several tie for it).
 * The columns start with the metric that matters for the file (answers for supervised data, the
 * loss for text), and the rows are ranked by it.
 */
export async function compareEvaluations(deps: Pick<Deps, 'store'>, actor: Actor, fileId: string, models?: string[]) {
  const file = await getFile(deps, actor, fileId, 'file'); // another project's file is missing here, not an empty table
  const supervised = file.format === 'jsonl_prompt_completion' || file.format === 'jsonl_chat';
  const all = await deps.store.evaluations.succeededOn(actor.projectId, fileId);
  const latest = new Map<string, EvaluationRecord>();
  for (const e of all) if (!latest.has(e.model)) latest.set(e.model, e);
  const chosen = models ? models.filter((m) => latest.has(m)).map((m) => latest.get(m) as EvaluationRecord) : [...latest.values()];
  const columns: string[] = supervised ? [...ANSWER_FIRST] : [...COMPARISON_COLUMNS];
  const rows = chosen.map((e) => ({
    model: e.model,
    evaluation: e.id,
    finished_at: unix(e.finishedAt),
    values: columns.map((c) => {
      const v = (e.metrics as Record<string, number | null> | null)?.[c];
      return typeof v === 'number' && Number.isFinite(v) ? v : null;
    }),
    best: [] as string[],
  }));
  const primary = rankTable(columns, rows);
  return {
    object: 'evaluation.comparison' as const,
    file: fileId,
    columns,
    primary,
    rows,
    missing: models ? models.filter((m) => !latest.has(m)) : [],
  };
}

/** Queues again the queued evaluations whose queue entry was lost (Redis restarted empty). */
export async function redispatchEvaluations(deps: Pick<Deps, 'store' | 'evaluationQueue'>, olderThan: Date): Promise<number> {
  let n = 0;
  for (const e of await deps.store.evaluations.unfinished(olderThan)) {
    // a running one is retried by BullMQ's stalled-job check
    if (e.status === 'queued' && (await redispatchEvaluation(deps.evaluationQueue, e))) n++;
  }
  return n;
}
