// @crucible/sdk: a typed client for the Crucible API, generated from openapi.json.
//   const crucible = createCrucibleClient({ baseUrl: 'http://127.0.0.1:8080/v1', apiKey });
//   const { data, error } = await crucible.GET('/fine_tuning/jobs/{id}', { params: { path: { id } } });
import createClient, { type Client } from 'openapi-fetch';
import type { components, operations, paths } from './schema';

export type { components, operations, paths };
export type CrucibleClient = Client<paths>;
export type FineTuningJob = components['schemas']['FineTuningJob'];
export type FileObject = components['schemas']['File'];
export type ApiError = components['schemas']['Error'];
export type Evaluation = components['schemas']['Evaluation'];
export type FilePurpose = 'fine-tune' | 'pretrain' | 'supervised' | 'evals';

export interface ClientOptions {
  /** The API root including /v1, e.g. http://127.0.0.1:8080/v1 */
  baseUrl: string;
  apiKey: string;
  fetch?: typeof fetch;
}

export function createCrucibleClient(opts: ClientOptions): CrucibleClient {
  return createClient<paths>({ baseUrl: opts.baseUrl, headers: { authorization: `Bearer ${opts.apiKey}` }, fetch: opts.fetch });
}

/** Uploads a dataset (multipart); the typed client does not build multipart bodies itself. */
export async function uploadFile(opts: ClientOptions, name: string, data: Uint8Array | string, purpose: FilePurpose = 'fine-tune'): Promise<FileObject> {
  const form = new FormData();
  form.set('purpose', purpose);
  form.set('file', new Blob([data]), name);
  const res = await (opts.fetch ?? fetch)(`${opts.baseUrl}/files`, { method: 'POST', headers: { authorization: `Bearer ${opts.apiKey}` }, body: form });
  const body = await res.json();
  if (!res.ok) throw new CrucibleApiError(res.status, (body as ApiError).error);
  return body as FileObject;
}

export class CrucibleApiError extends Error {
  constructor(
    readonly status: number,
    readonly error: ApiError['error'],
  ) {
    super(`${status} ${error.code}: ${error.message}`);
  }
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

/** Polls a job until it succeeds, fails or is cancelled. */
export async function waitForJob(
  client: CrucibleClient,
  id: string,
  opts: { intervalMs?: number; timeoutMs?: number; onStatus?: (job: FineTuningJob) => void } = {},
): Promise<FineTuningJob> {
  const end = Date.now() + (opts.timeoutMs ?? 3_600_000);
  for (;;) {
    const { data, error } = await client.GET('/fine_tuning/jobs/{id}', { params: { path: { id } } });
    if (error) throw new CrucibleApiError(0, error.error);
    opts.onStatus?.(data);
    if (FINAL.has(data.status)) return data;
    if (Date.now() > end) throw new Error(`job ${id} still ${data.status} after ${opts.timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 1000));
  }
}

/** Polls a file until its validation (or preparation) is done: status processed or error. */
export async function waitForFile(client: CrucibleClient, id: string, opts: { intervalMs?: number; timeoutMs?: number } = {}): Promise<FileObject> {
  const end = Date.now() + (opts.timeoutMs ?? 600_000);
  for (;;) {
    const { data, error } = await client.GET('/files/{id}', { params: { path: { id } } });
    if (error) throw new CrucibleApiError(0, error.error);
    if (data.status !== 'pending') return data;
    if (Date.now() > end) throw new Error(`file ${id} still pending after ${opts.timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 500));
  }
}

/** Polls an evaluation until it succeeds, fails or is cancelled. */
export async function waitForEvaluation(
  client: CrucibleClient,
  id: string,
  opts: { intervalMs?: number; timeoutMs?: number; onProgress?: (e: Evaluation) => void } = {},
): Promise<Evaluation> {
  const end = Date.now() + (opts.timeoutMs ?? 3_600_000);
  for (;;) {
    const { data, error } = await client.GET('/evaluations/{id}', { params: { path: { id } } });
    if (error) throw new CrucibleApiError(0, error.error);
    opts.onProgress?.(data);
    if (FINAL.has(data.status)) return data;
    if (Date.now() > end) throw new Error(`evaluation ${id} still ${data.status} after ${opts.timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 1000));
  }
}
