// Inference runs on a worker (the API never loads TensorFlow.js): a request becomes an inference
// queue job; streamed text comes back over a Redis channel, the final result as the job's return
// value. A problem of the request found by the worker (too long, no mask) comes back as a 400.
import {
  CrucibleError,
  type EmbeddingPayload,
  type FillMaskPayload,
  type GenerationPayload,
  guard,
  ID_PREFIX,
  INFERENCE_INPUT_ERROR,
  type InferencePayload,
  type InferenceResult,
  isCausal,
  isTransientError,
  MODEL_CAPACITY_ERROR,
  newId,
  RetryLaterError,
  renderChat,
  ServiceUnavailableError,
} from '@crucible/domain';
import { ROUTE_PICKUP_MS } from '@crucible/queue';
import type { Job } from 'bullmq';
import type { Actor } from '../auth';
import type { Deps } from '../deps';
import { getModel, getSamplingModel } from '../models/service';
import type { WorkerQueue } from './worker-queues';

export interface SamplingRequest {
  model: string;
  max_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  stop?: string | string[] | null;
  seed?: number | null;
  n?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  logit_bias?: Record<string, number> | null;
  best_of?: number | null;
  suffix?: string | null;
}

/** A prompt (or all inputs together) longer than the project's MAX_PROMPT_CHARS never reaches the queue. */
function checkPromptSize(actor: Actor, text: string, param: string): void {
  if (text.length > actor.limits.maxPromptChars) {
    throw new CrucibleError(
      'prompt_too_large',
      `${param} holds ${text.length} characters; this project's limit is ${actor.limits.maxPromptChars} (MAX_PROMPT_CHARS)`,
      param,
    );
  }
}

/** Refuses OpenAI parameters Crucible does not implement unless they hold their neutral value. */
function refuseUnsupported(req: SamplingRequest): void {
  const unsupported = (param: string, why: string) => {
    throw new CrucibleError('unsupported_parameter', `${param} is not supported by Crucible (${why})`, param);
  };
  if (req.presence_penalty) unsupported('presence_penalty', 'only 0 is accepted');
  if (req.frequency_penalty) unsupported('frequency_penalty', 'only 0 is accepted');
  if (req.logit_bias && Object.keys(req.logit_bias).length > 0) unsupported('logit_bias', 'only an empty object is accepted');
  if (req.best_of != null && req.best_of !== 1 && req.best_of !== (req.n ?? 1)) unsupported('best_of', 'only 1, or a value equal to n, is accepted');
  if (req.suffix != null) unsupported('suffix', 'insertion is not implemented');
}

/** The payload of a completion or chat completion. `logprobs`: alternatives per token, or null. */
export async function generationPayload(
  deps: Pick<Deps, 'store' | 'storage'>,
  actor: Actor,
  req: SamplingRequest,
  prompt: string,
  opts: { chat: boolean; logprobs: number | null; echo: boolean; messages?: Array<{ role: string; content: string }> },
): Promise<GenerationPayload> {
  refuseUnsupported(req);
  checkPromptSize(actor, prompt, opts.chat ? 'messages' : 'prompt');
  const maxTokens = req.max_tokens ?? 64;
  if (maxTokens > actor.limits.maxCompletionTokens) {
    throw new CrucibleError(
      'invalid_request',
      `max_tokens ${maxTokens} is above this project's limit of ${actor.limits.maxCompletionTokens} (MAX_COMPLETION_TOKENS)`,
      'max_tokens',
    );
  }
  const m = await getSamplingModel(deps, actor, req.model);
  if (!isCausal(m.arch))
    throw new CrucibleError('invalid_request', `model ${m.id} is a masked LM (bert); text generation needs a causal (gpt or llama) model`, 'model');
  const stop = req.stop == null ? [] : Array.isArray(req.stop) ? req.stop : [req.stop];
  return {
    kind: 'generate',
    projectId: actor.projectId,
    model: m.id,
    prompt,
    ...(opts.messages ? { messages: opts.messages } : {}),
    maxTokens,
    temperature: req.temperature ?? 1,
    topP: req.top_p ?? 1,
    topK: req.top_k ?? 0,
    // chat turns end at <|im_end|> in Crucible's template (the worker adds its text where the
    // tokenizer lacks the token), at the model's end-of-sequence ids in a model's own template
    stop,
    stopRoles: opts.chat ? ['eot', 'im_end'] : ['eot'],
    seed: req.seed ?? Math.floor(Math.random() * 2 ** 30),
    n: req.n ?? 1,
    logprobs: opts.logprobs,
    echo: opts.echo,
  };
}

export async function embeddingPayload(
  deps: Pick<Deps, 'store'>,
  actor: Actor,
  model: string,
  inputs: string[],
  pooling: 'mean' | 'cls',
): Promise<EmbeddingPayload> {
  checkPromptSize(actor, inputs.join(''), 'input');
  const m = await getModel(deps, actor, model);
  if (pooling === 'cls' && m.arch !== 'bert') throw new CrucibleError('invalid_request', `cls pooling needs a bert model; ${m.id} is ${m.arch}`, 'pooling');
  return { kind: 'embed', projectId: actor.projectId, model: m.id, inputs, pooling };
}

export async function fillMaskPayload(deps: Pick<Deps, 'store'>, actor: Actor, model: string, inputs: string[], topK: number): Promise<FillMaskPayload> {
  checkPromptSize(actor, inputs.join(''), 'input');
  const m = await getModel(deps, actor, model);
  if (m.arch !== 'bert') throw new CrucibleError('invalid_request', `fill-mask needs a masked LM (bert); ${m.id} is a ${m.arch} model`, 'model');
  return { kind: 'fill_mask', projectId: actor.projectId, model: m.id, inputs, topK };
}

export interface InferenceOptions {
  /** The project's MAX_CONCURRENT_INFERENCE: admission and queue priority (see admission.ts). */
  cap?: number;
  /** Aborted when the client has gone: a queued request is removed, a stream stops. */
  signal?: AbortSignal;
}

/** The client left before its answer: nothing is sent back. */
export class ClientGoneError extends Error {
  override readonly name = 'ClientGoneError';
}

export async function runInference<R extends InferenceResult>(
  deps: Deps,
  payload: InferencePayload,
  timeoutMs: number,
  inputParam = 'input',
  opts: InferenceOptions = {},
): Promise<R> {
  const requestId = newId('inf');
  let priority: number | undefined;
  if (opts.cap !== undefined) {
    const a = await deps.admission.admit(payload.projectId, requestId, opts.cap, timeoutMs + 10_000);
    if (!a.admitted) {
      throw new RetryLaterError(
        'rate_limited',
        `this project has ${a.inFlight} inference requests in flight, its limit (MAX_CONCURRENT_INFERENCE ${opts.cap}); retry in 1 s`,
        1,
      );
    }
    priority = a.priority;
  }
  let held = opts.cap !== undefined;
  const release = () => {
    if (!held) return;
    held = false;
    void deps.admission.release(payload.projectId, requestId);
  };
  try {
    const placed = await place(deps, payload, priority, timeoutMs);
    const finished = placed.finished;
    let onAbort = () => {};
    const gone = new Promise<never>((_, reject) => {
      onAbort = () => reject(new ClientGoneError('the client closed the connection'));
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return (await Promise.race([finished, gone])) as R;
    } catch (err) {
      if (err instanceof ClientGoneError) {
        // a request still waiting goes from the queue; one being generated keeps its place until it ends
        const removed = await placed
          .job()
          .remove()
          .then(
            () => true,
            () => false,
          );
        if (!removed) {
          held = false;
          void finished.catch(() => {}).finally(() => deps.admission.release(payload.projectId, requestId));
        }
        throw err;
      }
      const message = (err as Error).message;
      if (/timed out/i.test(message)) {
        await placed
          .job()
          .remove()
          .catch(() => {});
        throw new CrucibleError('inference_timeout', `no worker finished the request within ${timeoutMs} ms`, null);
      }
      if (isTransientError(err)) throw new ServiceUnavailableError('queue', err);
      const full = message.indexOf(MODEL_CAPACITY_ERROR);
      if (full >= 0) {
        const e = JSON.parse(message.slice(full + MODEL_CAPACITY_ERROR.length)) as { message: string; retryAfter: number };
        throw new RetryLaterError('model_capacity', `${e.message}; retry in ${e.retryAfter} s`, e.retryAfter, 'model');
      }
      const at = message.indexOf(INFERENCE_INPUT_ERROR);
      if (at >= 0) {
        const e = JSON.parse(message.slice(at + INFERENCE_INPUT_ERROR.length)) as { message: string; index: number };
        throw new CrucibleError('invalid_request', e.message, e.index >= 0 && inputParam === 'input' ? `input[${e.index}]` : inputParam);
      }
      // the worker could not reach a dependency (its error arrives as text through the queue)
      const dep = /the (database|queue|storage) is unavailable/.exec(message)?.[1];
      if (dep) throw new ServiceUnavailableError(dep as 'database' | 'queue' | 'storage', err);
      throw new CrucibleError('internal_error', 'inference failed', null);
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  } finally {
    release();
  }
}

/**
 * Puts a request on a queue and answers its result: on the queue of a live worker that holds its
 * model loaded (model routing), or the shared one. A routed request still waiting when its worker
 * no longer announces the model (it stopped, died or evicted the model; checked every
 * ROUTE_PICKUP_MS) is taken back and put on the shared queue; a busy worker keeps its requests in
 * their order. `job()` is the entry as it is now (to remove it when the client leaves).
 */
async function place(
  deps: Deps,
  payload: InferencePayload,
  priority: number | undefined,
  timeoutMs: number,
): Promise<{ job: () => Job<InferencePayload, InferenceResult>; finished: Promise<InferenceResult> }> {
  const name = { projectId: payload.projectId, model: payload.model };
  const holders = await deps.routes.holders(name);
  const worker = holders[Math.floor(Math.random() * holders.length)];
  const add = async (target: WorkerQueue) => {
    const job = await guard('queue', () => target.queue.add(payload.kind, payload, priority ? { priority } : {}));
    return { job, finished: job.waitUntilFinished(target.events, timeoutMs) as Promise<InferenceResult> };
  };
  const shared: WorkerQueue = { queue: deps.inferenceQueue, events: deps.inferenceEvents };
  const routed = worker ? await deps.workerQueues.get(worker).catch(() => undefined) : undefined;
  let current = await add(routed ?? shared);
  if (!routed) return { job: () => current.job, finished: current.finished };
  const finished = (async () => {
    const first = current;
    const done = first.finished.then(settled, settled);
    for (;;) {
      if (await Promise.race([done, new Promise((r) => setTimeout(r, ROUTE_PICKUP_MS, false))])) return first.finished;
      // once its worker has taken it (or it is gone), its result or the timeout is the answer
      const state = await first.job.getState().catch(() => 'unknown');
      if (state !== 'waiting' && state !== 'prioritized') return first.finished;
      // a worker that still announces the model is alive (busy, perhaps): the request keeps its place
      if ((await deps.routes.holders(name)).includes(worker as string)) continue;
      if (!(await first.job.remove().then(settled, () => false))) continue;
      first.finished.catch(() => {}); // removed: that wait ends unread
      current = await add(shared);
      return current.finished;
    }
  })();
  return { job: () => current.job, finished };
}

const settled = () => true;

/**
 * Runs a generation and calls `onText(index, text)` for each streamed piece. The worker publishes
 * JSON messages {"index", "text"} and finally {"done": true}; the result waits for that marker so
 * that no piece arrives after it (pub/sub and queue events travel on different connections). The
 * channel is unsubscribed the moment the client goes: the worker's next piece reaches nobody and
 * it stops generating.
 */
export async function streamInference<R extends InferenceResult>(
  deps: Deps,
  payload: GenerationPayload,
  timeoutMs: number,
  onText: (index: number, t: string) => void,
  opts: InferenceOptions = {},
): Promise<R> {
  const channel = `crucible:stream:${newId('s')}`;
  let markDone: () => void = () => {};
  const done = new Promise<void>((r) => {
    markDone = r;
  });
  const stop = await guard('queue', () =>
    deps.streams.listen(channel, (msg) => {
      const m = JSON.parse(msg) as { index?: number; text?: string; done?: boolean };
      if (m.text) onText(m.index ?? 0, m.text);
      if (m.done) markDone();
    }),
  );
  const leave = () => void stop();
  opts.signal?.addEventListener('abort', leave, { once: true });
  try {
    const result = await runInference<R>(deps, { ...payload, streamChannel: channel }, timeoutMs, 'prompt', opts);
    await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
    return result;
  } finally {
    opts.signal?.removeEventListener('abort', leave);
    await stop();
  }
}

export const completionId = () => newId(ID_PREFIX.completion);
export const chatCompletionId = () => newId(ID_PREFIX.chatCompletion);
export { renderChat };
