// What a request may leave behind: rows, stored objects and queue entries of a test platform.
// A rejected request must leave every count as it was.
import type { TestPlatform } from './platform';

const TABLES = [
  'files',
  'jobs',
  'job_events',
  'evaluations',
  'models',
  'api_keys',
  'projects',
  'webhook_endpoints',
  'webhook_deliveries',
  'storage_reservations',
] as const;

export async function leftovers(p: TestPlatform): Promise<Record<string, number>> {
  const rows = await p.sql<Record<string, string>>(`SELECT ${TABLES.map((t) => `(SELECT count(*) FROM ${t}) AS ${t}`).join(', ')}`);
  const counts: Record<string, number> = Object.fromEntries(Object.entries(rows[0] ?? {}).map(([k, v]) => [k, Number(v)]));
  counts.objects = (await p.deps.storage.list('projects/')).length;
  counts.training_queue = await p.deps.trainingQueue.count();
  counts.inference_queue = await p.deps.inferenceQueue.count();
  counts.evaluation_queue = await p.deps.evaluationQueue.count();
  return counts;
}

/** The error body every 4xx and 5xx carries. */
export interface ErrorBodyShape {
  error: { code: string; message: string; param: string | null; type: string };
}

export function isErrorBody(b: unknown): b is ErrorBodyShape {
  const e = (b as ErrorBodyShape | null)?.error;
  return !!e && typeof e.code === 'string' && typeof e.message === 'string' && (e.param === null || typeof e.param === 'string') && typeof e.type === 'string';
}
