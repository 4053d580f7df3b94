// Completions run on a worker (the API never loads TensorFlow.js): the request becomes an
// inference queue job; streamed text comes back over a Redis channel, the final result as the
// job's return value.
import {
  CHAT_STOP,
  CrucibleError,
  guard,
  ID_PREFIX,
  type InferencePayload,
  type InferenceResult,
  isTransientError,
  newId,
  renderChat,
  ServiceUnavailableError,
} from '@crucible/domain';
import type { Actor } from '../auth';
import type { Deps } from '../deps';
import { getModel } from '../models/service';

export interface SamplingRequest {
  model: string;
  max_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  stop?: string | string[] | null;
  seed?: number | null;
}

export async function inferencePayload(
  deps: Pick<Deps, 'store'>,
  actor: Actor,
  req: SamplingRequest,
  prompt: string,
  extraStop: string[] = [],
): Promise<InferencePayload> {
  const m = await getModel(deps, actor, req.model);
  if (m.arch !== 'gpt') throw new CrucibleError('invalid_request', `model ${m.id} is a masked LM (bert); completions need a causal (gpt) model`, 'model');
  const stop = req.stop == null ? [] : Array.isArray(req.stop) ? req.stop : [req.stop];
  return {
    projectId: actor.projectId,
    model: m.id,
    prompt,
    maxTokens: req.max_tokens ?? 64,
    temperature: req.temperature ?? 1,
    topP: req.top_p ?? 1,
    topK: req.top_k ?? 0,
    stop: [...stop, ...extraStop],
    seed: req.seed ?? Math.floor(Math.random() * 2 ** 31),
  };
}

export async function runInference(deps: Deps, payload: InferencePayload, timeoutMs: number): Promise<InferenceResult> {
  const job = await guard('queue', () => deps.inferenceQueue.add('sample', payload));
  try {
    return await job.waitUntilFinished(deps.inferenceEvents, timeoutMs);
  } catch (err) {
    if (/timed out/i.test((err as Error).message)) {
      await job.remove().catch(() => {});
      throw new CrucibleError('inference_timeout', `no worker finished the request within ${timeoutMs} ms`, null);
    }
    if (isTransientError(err)) throw new ServiceUnavailableError('queue', err);
    // the worker could not reach a dependency (its error arrives as text through the queue)
    const dep = /the (database|queue|storage) is unavailable/.exec((err as Error).message)?.[1];
    if (dep) throw new ServiceUnavailableError(dep as 'database' | 'queue' | 'storage', err);
    throw new CrucibleError('internal_error', `inference failed: ${(err as Error).message}`, null);
  }
}

/**
 * Runs a request and calls `onText` for each streamed piece. The worker publishes JSON messages
 * {"text": "..."} and finally {"done": true}; the result waits for that marker so that no piece
 * arrives after it (pub/sub and queue events travel on different connections).
 */
export async function streamInference(deps: Deps, payload: InferencePayload, timeoutMs: number, onText: (t: string) => void): Promise<InferenceResult> {
  const channel = `crucible:stream:${newId('s')}`;
  const sub = deps.subscriber();
  let markDone: () => void = () => {};
  const done = new Promise<void>((r) => {
    markDone = r;
  });
  try {
    await guard('queue', () => sub.subscribe(channel));
    sub.on('message', (_ch: string, msg: string) => {
      const m = JSON.parse(msg) as { text?: string; done?: boolean };
      if (m.text) onText(m.text);
      if (m.done) markDone();
    });
    const result = await runInference(deps, { ...payload, streamChannel: channel }, timeoutMs);
    await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
    return result;
  } finally {
    sub.disconnect();
  }
}

export const completionId = () => newId(ID_PREFIX.completion);
export const chatCompletionId = () => newId(ID_PREFIX.chatCompletion);
export { CHAT_STOP, renderChat };
