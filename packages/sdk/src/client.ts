// The Crucible client: the typed OpenAPI client (`api`) plus the helpers people need around it:
// uploads with progress, waiting for jobs with progress callbacks, event streams as async
// iterators, pagination, streamed completions and model downloads. Every failure is a
// CrucibleApiError with the HTTP status and the API's error code.
import createClient, { type Client } from 'openapi-fetch';
import { CrucibleApiError, CrucibleConfigError, CrucibleConnectionError, CrucibleTimeoutError, errorBodyFrom } from './errors.js';
import type { components, paths } from './schema.js';
import { sseData } from './sse.js';
import { sendUpload, type UploadInput, type UploadOptions } from './upload.js';

export type CrucibleClient = Client<paths>;
type Schemas = components['schemas'];
export type FineTuningJob = Schemas['FineTuningJob'];
export type JobEvent = Schemas['FineTuningJobEvent'];
/** The data of a `metrics` event: a logged step, a validation, or a checkpoint, told apart by `kind`. */
export type MetricsEventData = Schemas['MetricsEventData'];
export type StepMetrics = Schemas['StepMetrics'];
export type ValidationMetrics = Schemas['ValidationMetrics'];
/** One step's recorded numbers (GET /fine_tuning/jobs/{id}/metrics). */
export type MetricPoint = Schemas['MetricPoint'];
export type Checkpoint = Schemas['FineTuningJobCheckpoint'];
export type FileObject = Schemas['File'];
export type Model = Schemas['Model'];
export type Evaluation = Schemas['Evaluation'];
export type EvaluationEvent = Schemas['EvaluationEvent'];
export type ApiError = Schemas['Error'];
/** The body of a webhook POST (verify its signature first, e.g. with the openai client's webhooks.unwrap). */
export type WebhookEvent = Schemas['WebhookEvent'];
export type PreparationReport = Schemas['PreparationReport'];
export type ValidationReport = Schemas['ValidationReport'];
type Json<P extends keyof paths, M extends 'get' | 'post' | 'delete'> = paths[P][M] extends { requestBody?: { content: { 'application/json': infer B } } }
  ? B
  : never;
type Ok<P extends keyof paths, M extends 'get' | 'post' | 'delete'> = paths[P][M] extends { responses: { 200: { content: { 'application/json': infer R } } } }
  ? R
  : never;
export type CreateJobRequest = Json<'/fine_tuning/jobs', 'post'>;
export type CreateEvaluationRequest = Json<'/evaluations', 'post'>;
export type CompletionRequest = Json<'/completions', 'post'>;
export type ChatCompletionRequest = Json<'/chat/completions', 'post'>;
export type Completion = Ok<'/completions', 'post'>;
export type ChatCompletion = Ok<'/chat/completions', 'post'>;
export type JobMetrics = Ok<'/fine_tuning/jobs/{id}/metrics', 'get'>;
export type EvaluationComparison = Ok<'/evaluations/comparison', 'get'>;
export type FileReport = Ok<'/files/{id}/report', 'get'>;
export type FileStats = Ok<'/files/{id}/stats', 'get'>;
export type PrepareFileRequest = Json<'/files/{id}/prepare', 'post'>;
export type FilePreview = Ok<'/files/{id}/preview', 'get'>;
export type JobEstimate = Ok<'/fine_tuning/jobs/estimate', 'post'>;
export type Caller = Ok<'/me', 'get'>;
export type ApiKey = Caller['api_key'];
export type CreateApiKeyRequest = Json<'/projects/{id}/api_keys', 'post'>;
export type WebhookEndpoint = Ok<'/webhook_endpoints/{id}', 'get'>;
export type CreateWebhookRequest = Json<'/webhook_endpoints', 'post'>;
export type WebhookDelivery = Ok<'/webhook_endpoints/{id}/deliveries', 'get'>['data'][number];
export type WebhookTestResult = Ok<'/webhook_endpoints/{id}/test', 'post'>;
export type Deleted = { id: string; object: string; deleted: boolean };

/** One streamed piece of a completion (`POST /completions` with `stream: true`). */
export interface CompletionChunk {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: { index: number; text: string; finish_reason: string | null }[];
}
/** One streamed piece of a chat completion. */
export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: { index: number; delta: { role?: string; content?: string }; finish_reason: string | null }[];
}

export interface ClientOptions {
  /** The API root including /v1, e.g. `http://127.0.0.1:8080/v1`. */
  baseUrl: string;
  apiKey: string;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
}

/** The typed client alone: `client.GET('/fine_tuning/jobs/{id}', { params: { path: { id } } })` answers `{ data, error, response }`. */
export function createCrucibleClient(opts: ClientOptions): CrucibleClient {
  return createClient<paths>({ baseUrl: opts.baseUrl, headers: { authorization: `Bearer ${opts.apiKey}` }, fetch: opts.fetch });
}

/** The data of a typed call, or its error thrown as a CrucibleApiError. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || result.data === undefined) {
    throw new CrucibleApiError(result.response.status, errorBodyFrom(result.error, result.response.status, result.response.statusText));
  }
  return result.data;
}

/** Where a job stands, as its metric events tell it. */
export interface JobProgress {
  step: number;
  totalSteps: number | null;
  /** step / totalSteps, 0..1 (null until the total is known). */
  fraction: number | null;
  trainLoss: number | null;
  validLoss: number | null;
  learningRate: number | null;
  tokensPerSecond: number | null;
}

export interface WaitOptions {
  /** Give up (CrucibleTimeoutError) after this long. Default: one hour. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Poll interval where there is no event stream (files, evaluations, a paused job). */
  intervalMs?: number;
}

/** The statuses a job or an evaluation ends in (a paused job is settled, not final). */
export const FINAL_STATUSES: readonly string[] = ['succeeded', 'failed', 'cancelled'];
const FINAL = new Set(FINAL_STATUSES);

export function isFinalStatus(status: string): boolean {
  return FINAL.has(status);
}

/**
 * `fetch` as the client uses it: a connection that fails is a CrucibleConnectionError (not
 * `TypeError: fetch failed`), and a 404 from a base URL without /v1 says so in its message.
 */
function guardedFetch(f: typeof fetch, base: string): typeof fetch {
  const withoutV1 = !/\/v1$/.test(new URL(base).pathname);
  return async (input, init) => {
    let res: Response;
    try {
      res = await f(input, init);
    } catch (err) {
      if ((err as Error)?.name === 'AbortError' || init?.signal?.aborted) throw err;
      throw new CrucibleConnectionError(base, err);
    }
    if (res.status !== 404 || !withoutV1) return res;
    const body = errorBodyFrom(await res.json().catch(() => null), 404, res.statusText);
    const hint = `${body.message} (the base URL ${base} has no /v1: Crucible's API is under /v1, e.g. ${base}/v1)`;
    return new Response(JSON.stringify({ error: { ...body, message: hint, type: 'invalid_request_error' } }), {
      status: 404,
      headers: { 'content-type': 'application/json' },
    });
  };
}

export class Crucible {
  /** The typed OpenAPI client on the same base URL and key. */
  readonly api: CrucibleClient;
  private readonly fetchFn: typeof fetch;
  private readonly base: string;
  private readonly auth: Record<string, string>;

  constructor(readonly options: ClientOptions) {
    if (typeof options?.baseUrl !== 'string' || !/^https?:\/\//.test(options.baseUrl)) {
      throw new CrucibleConfigError(
        `baseUrl must be the API's http(s) address with /v1, e.g. http://127.0.0.1:8080/v1; got ${JSON.stringify(options?.baseUrl)}`,
      );
    }
    if (typeof options.apiKey !== 'string' || options.apiKey.trim() === '') {
      throw new CrucibleConfigError(
        'apiKey is missing: pass a project API key (crucible_sk-...), e.g. new Crucible({ baseUrl, apiKey: process.env.CRUCIBLE_API_KEY })',
      );
    }
    this.base = options.baseUrl.replace(/\/+$/, '');
    this.fetchFn = guardedFetch(options.fetch ?? ((...a: Parameters<typeof fetch>) => fetch(...a)), this.base);
    this.api = createCrucibleClient({ ...options, fetch: this.fetchFn });
    this.auth = { authorization: `Bearer ${options.apiKey}` };
  }

  /** A raw request to an API path (e.g. `/models/m/download`) with the key; a 4xx/5xx answer is thrown as CrucibleApiError. */
  async request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = {
      ...this.auth,
      ...(init.body && typeof init.body === 'string' ? { 'content-type': 'application/json' } : {}),
      ...(init.headers as Record<string, string>),
    };
    const res = await this.fetchFn(`${this.base}${path}`, { ...init, headers });
    if (!res.ok) throw await CrucibleApiError.fromResponse(res);
    return res;
  }

  private async json<T>(path: string, init: RequestInit = {}): Promise<T> {
    return (await (await this.request(path, init)).json()) as T;
  }

  // ---- files ----

  /** Uploads a dataset (bytes, string, Blob or stream) with optional progress; answers the file object (status may still be `pending`). */
  async uploadFile(input: UploadInput, opts: UploadOptions = {}): Promise<FileObject> {
    return (await sendUpload({ url: `${this.base}/files`, headers: this.auth, fetch: this.fetchFn }, input, opts)) as FileObject;
  }

  retrieveFile(id: string): Promise<FileObject> {
    return this.json(`/files/${encodeURIComponent(id)}`);
  }

  /** The validation report (every kept problem with its line and field) and, for a prepared file, what preparation did. */
  fileReport(id: string): Promise<FileReport> {
    return this.json(`/files/${encodeURIComponent(id)}/report`);
  }

  /** Records, characters, length histogram; with `model`, tokens as that model's tokenizer counts them. */
  fileStats(id: string, model?: string): Promise<FileStats> {
    return this.json(`/files/${encodeURIComponent(id)}/stats${model ? `?model=${encodeURIComponent(model)}` : ''}`);
  }

  /** The first records as the trainer tokenizes them with `model`'s tokenizer, each token marked with whether it carries loss. */
  previewFile(id: string, model: string, records = 3): Promise<FilePreview> {
    return this.json(`/files/${encodeURIComponent(id)}/preview?${new URLSearchParams({ model, records: String(records) })}`);
  }

  /** Runs the preparation pipeline (cleaning, dedup, PII scrubbing) on a processed file; answers the new file (pending until prepared and validated). */
  prepareFile(id: string, body: PrepareFileRequest = {}): Promise<FileObject> {
    return this.json(`/files/${encodeURIComponent(id)}/prepare`, { method: 'POST', body: JSON.stringify(body) });
  }

  /** Deletes a file (refused while a job uses it). */
  deleteFile(id: string): Promise<Deleted> {
    return this.json(`/files/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  /** Waits until a file's validation (or preparation) is done: status `processed` or `error`. */
  async waitForFile(id: string, opts: WaitOptions = {}): Promise<FileObject> {
    return this.poll(
      () => this.retrieveFile(id),
      (f) => f.status !== 'pending',
      `file ${id}`,
      { intervalMs: 500, ...opts },
    );
  }

  // ---- jobs ----

  createJob(body: CreateJobRequest): Promise<FineTuningJob> {
    return this.json('/fine_tuning/jobs', { method: 'POST', body: JSON.stringify(body) });
  }

  /** What a job would do before it runs: tokens, steps, n_epochs, every hyperparameter resolved, and a duration when one was measured. */
  estimateJob(body: CreateJobRequest): Promise<JobEstimate> {
    return this.json('/fine_tuning/jobs/estimate', { method: 'POST', body: JSON.stringify(body) });
  }

  retrieveJob(id: string): Promise<FineTuningJob> {
    return this.json(`/fine_tuning/jobs/${encodeURIComponent(id)}`);
  }

  cancelJob(id: string): Promise<FineTuningJob> {
    return this.json(`/fine_tuning/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
  }

  pauseJob(id: string): Promise<FineTuningJob> {
    return this.json(`/fine_tuning/jobs/${encodeURIComponent(id)}/pause`, { method: 'POST' });
  }

  resumeJob(id: string): Promise<FineTuningJob> {
    return this.json(`/fine_tuning/jobs/${encodeURIComponent(id)}/resume`, { method: 'POST' });
  }

  jobMetrics(id: string, maxPoints?: number): Promise<JobMetrics> {
    return this.json(`/fine_tuning/jobs/${encodeURIComponent(id)}/metrics${maxPoints ? `?max_points=${maxPoints}` : ''}`);
  }

  /**
   * A job's events as they happen (Server-Sent Events): every event from the start, then live, ending
   * when the job settles (succeeded, failed, cancelled or paused). Break out of the loop to stop.
   */
  jobEvents(id: string, opts: { signal?: AbortSignal } = {}): AsyncGenerator<JobEvent> {
    return this.sse<JobEvent>(`/fine_tuning/jobs/${encodeURIComponent(id)}/events?stream=true`, { signal: opts.signal });
  }

  /**
   * Waits until a job succeeds, fails or is cancelled, following its event stream: `onEvent` gets every
   * event once, `onProgress` the step and losses after each metrics event. A dropped stream is
   * reopened; a paused job is waited for until it is resumed and ends.
   */
  async waitForJob(
    id: string,
    opts: WaitOptions & { onEvent?: (e: JobEvent) => void; onProgress?: (p: JobProgress, job: { id: string }) => void } = {},
  ): Promise<FineTuningJob> {
    const { signal, done } = this.deadline(opts, `job ${id}`);
    const seen = new Set<string>();
    const progress: JobProgress = { step: 0, totalSteps: null, fraction: null, trainLoss: null, validLoss: null, learningRate: null, tokensPerSecond: null };
    try {
      for (let failures = 0; ; ) {
        try {
          for await (const e of this.jobEvents(id, { signal })) {
            if (seen.has(e.id)) continue;
            seen.add(e.id);
            opts.onEvent?.(e);
            if (e.type === 'metrics' && e.data.kind !== 'checkpoint') {
              updateProgress(progress, e.data);
              opts.onProgress?.({ ...progress }, { id });
            }
          }
          failures = 0;
          const job = await this.retrieveJob(id);
          if (FINAL.has(job.status)) return job;
          await sleep(opts.intervalMs ?? 1000, signal); // paused, or the stream ended early
        } catch (err) {
          if (signal.aborted) throw done();
          if (err instanceof CrucibleApiError && err.status < 500) throw err;
          await sleep(Math.min(10_000, 250 * 2 ** failures++), signal); // the API is restarting: reconnect
        }
      }
    } catch (err) {
      if (signal.aborted) throw done();
      throw err;
    } finally {
      done();
    }
  }

  // ---- evaluations ----

  createEvaluation(body: CreateEvaluationRequest): Promise<Evaluation> {
    return this.json('/evaluations', { method: 'POST', body: JSON.stringify(body) });
  }

  retrieveEvaluation(id: string): Promise<Evaluation> {
    return this.json(`/evaluations/${encodeURIComponent(id)}`);
  }

  /** Polls an evaluation until it succeeds, fails or is cancelled. */
  waitForEvaluation(id: string, opts: WaitOptions & { onProgress?: (e: Evaluation) => void } = {}): Promise<Evaluation> {
    return this.poll(
      async () => {
        const e = await this.retrieveEvaluation(id);
        opts.onProgress?.(e);
        return e;
      },
      (e) => FINAL.has(e.status),
      `evaluation ${id}`,
      opts,
    );
  }

  /** One row per model (or checkpoint) evaluated on `file`, side by side. */
  compareEvaluations(file: string, models?: string[]): Promise<EvaluationComparison> {
    const q = new URLSearchParams({ file });
    if (models?.length) q.set('models', models.join(','));
    return this.json(`/evaluations/comparison?${q}`);
  }

  // ---- lists ----

  /**
   * Every item of a list endpoint, page after page (`after` = the last id seen):
   * `for await (const job of crucible.paginate<FineTuningJob>('/fine_tuning/jobs')) ...`
   */
  async *paginate<T extends { id: string }>(path: string, query: Record<string, string | number> = {}, pageSize = 100): AsyncGenerator<T> {
    let after: string | undefined;
    for (;;) {
      const q = new URLSearchParams({ ...Object.fromEntries(Object.entries(query).map(([k, v]) => [k, String(v)])), limit: String(pageSize) });
      if (after) q.set('after', after);
      const page = await this.json<{ data: T[]; has_more: boolean; last_id?: string | null }>(`${path}${path.includes('?') ? '&' : '?'}${q}`);
      for (const item of page.data) yield item;
      const last = page.last_id ?? page.data.at(-1)?.id;
      if (!page.has_more || !last || last === after) return;
      after = last;
    }
  }

  listJobs(): AsyncGenerator<FineTuningJob> {
    return this.paginate<FineTuningJob>('/fine_tuning/jobs');
  }

  listFiles(purpose?: string): AsyncGenerator<FileObject> {
    return this.paginate<FileObject>('/files', purpose ? { purpose } : {});
  }

  listModels(): AsyncGenerator<Model> {
    return this.paginate<Model>('/models');
  }

  listEvaluations(): AsyncGenerator<Evaluation> {
    return this.paginate<Evaluation>('/evaluations');
  }

  listCheckpoints(jobId: string): AsyncGenerator<Checkpoint> {
    return this.paginate<Checkpoint>(`/fine_tuning/jobs/${encodeURIComponent(jobId)}/checkpoints`);
  }

  // ---- models and sampling ----

  retrieveModel(id: string): Promise<Model> {
    return this.json(`/models/${encodeURIComponent(id)}`);
  }

  /**
   * Imports a Hugging Face model folder (GPT-2, or a Llama, Qwen2/3 or SmolLM decoder): its files
   * (config.json, model.safetensors or its shards with their index, tokenizer.json,
   * tokenizer_config.json, generation_config.json), each as a Blob (in Node, `fs.openAsBlob(path)`
   * streams it from disk). The model's id is `imported:<name>:<random>`.
   */
  async importModel(files: Array<{ name: string; data: Blob }>, opts: { name?: string; signal?: AbortSignal } = {}): Promise<Model> {
    const form = new FormData();
    if (opts.name) form.append('name', opts.name);
    for (const f of files) form.append('file', f.data, f.name);
    return (await (await this.request('/models', { method: 'POST', body: form, signal: opts.signal })).json()) as Model;
  }

  /** Deletes a fine-tuned or imported model (its checkpoints' files stay with their job). */
  deleteModel(id: string): Promise<Deleted> {
    return this.json(`/models/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  // ---- the project, its keys and webhooks ----

  /** The key in use (scopes, never its secret) and its project with limits and usage. */
  me(): Promise<Caller> {
    return this.json('/me');
  }

  listApiKeys(projectId: string): AsyncGenerator<ApiKey> {
    return this.paginate<ApiKey>(`/projects/${encodeURIComponent(projectId)}/api_keys`);
  }

  /** A new key (admin scope); its `secret` is in this answer only. */
  createApiKey(projectId: string, body: CreateApiKeyRequest): Promise<ApiKey> {
    return this.json(`/projects/${encodeURIComponent(projectId)}/api_keys`, { method: 'POST', body: JSON.stringify(body) });
  }

  revokeApiKey(projectId: string, keyId: string): Promise<ApiKey> {
    return this.json(`/projects/${encodeURIComponent(projectId)}/api_keys/${encodeURIComponent(keyId)}`, { method: 'DELETE' });
  }

  listWebhookEndpoints(): AsyncGenerator<WebhookEndpoint> {
    return this.paginate<WebhookEndpoint>('/webhook_endpoints');
  }

  /** A new endpoint (admin scope); its `signing_secret` is in this answer only. */
  createWebhookEndpoint(body: CreateWebhookRequest): Promise<WebhookEndpoint> {
    return this.json('/webhook_endpoints', { method: 'POST', body: JSON.stringify(body) });
  }

  deleteWebhookEndpoint(id: string): Promise<Deleted> {
    return this.json(`/webhook_endpoints/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  /** Sends one signed sample event now (not retried, not logged) and reports the receiver's status. */
  testWebhookEndpoint(id: string, eventType: string): Promise<WebhookTestResult> {
    return this.json(`/webhook_endpoints/${encodeURIComponent(id)}/test`, { method: 'POST', body: JSON.stringify({ event_type: eventType }) });
  }

  listWebhookDeliveries(id: string): AsyncGenerator<WebhookDelivery> {
    return this.paginate<WebhookDelivery>(`/webhook_endpoints/${encodeURIComponent(id)}/deliveries`);
  }

  /** The model archive (.tar.gz) as a streaming Response; `variant: 'adapter'` for a LoRA/adapter model's own files. */
  downloadModel(id: string, opts: { variant?: 'full' | 'adapter'; signal?: AbortSignal } = {}): Promise<Response> {
    return this.request(`/models/${encodeURIComponent(id)}/download${opts.variant ? `?variant=${opts.variant}` : ''}`, { signal: opts.signal });
  }

  createCompletion(body: Omit<CompletionRequest, 'stream'>): Promise<Completion> {
    return this.json('/completions', { method: 'POST', body: JSON.stringify({ ...body, stream: false }) });
  }

  /** A completion streamed chunk by chunk: `for await (const c of crucible.streamCompletion({...})) write(c.choices[0].text)`. */
  streamCompletion(body: Omit<CompletionRequest, 'stream'>, opts: { signal?: AbortSignal } = {}): AsyncGenerator<CompletionChunk> {
    return this.streamChunks<CompletionChunk>('/completions', body, opts.signal);
  }

  createChatCompletion(body: Omit<ChatCompletionRequest, 'stream'>): Promise<ChatCompletion> {
    return this.json('/chat/completions', { method: 'POST', body: JSON.stringify({ ...body, stream: false }) });
  }

  streamChatCompletion(body: Omit<ChatCompletionRequest, 'stream'>, opts: { signal?: AbortSignal } = {}): AsyncGenerator<ChatCompletionChunk> {
    return this.streamChunks<ChatCompletionChunk>('/chat/completions', body, opts.signal);
  }

  private async *streamChunks<T>(path: string, body: object, signal?: AbortSignal): AsyncGenerator<T> {
    for await (const chunk of this.sse<T & { error?: ApiError['error'] }>(path, { method: 'POST', body: JSON.stringify({ ...body, stream: true }), signal })) {
      if (chunk.error) throw new CrucibleApiError(200, chunk.error); // failed after the stream began (its answer was a 200)
      yield chunk as T;
    }
  }

  /** The JSON payloads of a Server-Sent Events answer, in order. */
  private async *sse<T>(path: string, init: RequestInit): AsyncGenerator<T> {
    const res = await this.request(path, { ...init, headers: { accept: 'text/event-stream' } });
    if (!res.body) return;
    for await (const data of sseData(res.body, init.signal ?? undefined)) yield JSON.parse(data) as T;
  }

  // ---- internals ----

  private deadline(opts: WaitOptions, what: string): { signal: AbortSignal; done: () => Error } {
    const controller = new AbortController();
    const timeoutMs = opts.timeoutMs ?? 3_600_000;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    (timer as { unref?: () => void }).unref?.();
    if (opts.signal?.aborted) controller.abort();
    opts.signal?.addEventListener('abort', () => controller.abort(), { once: true });
    return {
      signal: controller.signal,
      done: () => {
        clearTimeout(timer);
        return timedOut ? new CrucibleTimeoutError(`${what} not finished after ${timeoutMs} ms`) : (opts.signal?.reason ?? new Error('aborted'));
      },
    };
  }

  private async poll<T>(get: () => Promise<T>, finished: (t: T) => boolean, what: string, opts: WaitOptions): Promise<T> {
    const { signal, done } = this.deadline(opts, what);
    try {
      for (;;) {
        const t = await get();
        if (finished(t)) return t;
        await sleep(opts.intervalMs ?? 1000, signal);
      }
    } catch (err) {
      if (signal.aborted) throw done();
      throw err;
    } finally {
      done();
    }
  }
}

function updateProgress(p: JobProgress, d: StepMetrics | ValidationMetrics): void {
  if (d.kind === 'step') {
    p.step = d.step;
    p.totalSteps = d.total_steps;
    p.trainLoss = d.train_loss;
    p.learningRate = d.learning_rate;
    p.tokensPerSecond = d.tokens_per_second;
  } else {
    p.validLoss = d.valid_loss;
  }
  p.fraction = p.totalSteps ? Math.min(1, p.step / p.totalSteps) : null;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
