// Serves an inference request: load the model (cached), then generate (n choices, with
// log-probabilities when asked, streaming pieces to the API), embed, or fill masks. Generation goes
// through the loaded model's ContinuousBatcher: the requests (and choices) this worker serves for
// one model at once are decoded together. A problem of
// the request itself (too long, no mask, wrong architecture) goes back as an input error, which
// the API answers with a 400.

import {
  CHAT_STOP,
  type EmbeddingPayload,
  type FillMaskPayload,
  type GenerationChoice,
  type GenerationPayload,
  type GenerationResult,
  INFERENCE_INPUT_ERROR,
  type InferencePayload,
  type InferenceResult,
  MODEL_CAPACITY_ERROR,
  type TokenLogprobResult,
} from '@crucible/domain';
import {
  type BatcherOptions,
  ContinuousBatcher,
  chatTemplateOf,
  embed,
  fillMask,
  InputError,
  promptLogprobs,
  type SampleResult,
  type Tokenizer,
  type TokenLogprob,
  type Transformer,
} from '@crucible/trainer';
import { isCausal } from '@crucible/training-config';
import { UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';
import { type Lease, type ModelCache, ModelCapacityError } from './model-cache';
import type { ModelLoader } from './model-loader';

interface Deps {
  cache: ModelCache;
  loader: ModelLoader;
  redis: Redis;
  /** A request for `name` was served from the cache entry `key` (announced for routing). */
  served?: (key: string, name: { projectId: string; model: string }) => void;
  /** The batchers' limits (DECODE_MAX_BATCH, PREFILL_CHUNK). */
  batching?: BatcherOptions;
}

/** One batcher per loaded base model (a model evicted from the cache takes its batcher with it). */
const batchers = new WeakMap<Transformer, ContinuousBatcher>();

function batcherFor(model: Transformer, tokenizer: Tokenizer, opts: BatcherOptions = {}): ContinuousBatcher {
  let b = batchers.get(model);
  if (!b) batchers.set(model, (b = new ContinuousBatcher(model, tokenizer, opts)));
  return b;
}

export async function handleInference(deps: Deps, p: InferencePayload): Promise<InferenceResult> {
  // a model, or a job's checkpoint by its fine_tuned_model_checkpoint name
  const item = await deps.loader.item(p.projectId, p.model);
  if (!item) throw new UnrecoverableError(`model ${p.model} not found`);
  let lease: Lease;
  try {
    lease = await deps.cache.acquire(item);
  } catch (err) {
    if (err instanceof ModelCapacityError)
      throw new UnrecoverableError(`${MODEL_CAPACITY_ERROR}${JSON.stringify({ message: err.message, retryAfter: err.retryAfter })}`);
    throw err;
  }
  deps.served?.(item.key, { projectId: p.projectId, model: p.model });
  const { model, tokenizer, eosIds } = lease;
  try {
    if (p.kind === 'embed') return embedRequest(model, tokenizer, p);
    if (p.kind === 'fill_mask') return fillMaskRequest(model, tokenizer, p);
    return await generate(deps, model, tokenizer, p, eosIds);
  } catch (err) {
    if (err instanceof InputError) throw new UnrecoverableError(`${INFERENCE_INPUT_ERROR}${JSON.stringify({ message: err.message, index: err.index })}`);
    throw err;
  } finally {
    lease.release();
  }
}

function embedRequest(model: Transformer, tokenizer: Tokenizer, p: EmbeddingPayload): InferenceResult {
  const r = embed(model, tokenizer, p.inputs, p.pooling);
  return { kind: 'embed', vectors: r.vectors, tokens: r.tokens };
}

function fillMaskRequest(model: Transformer, tokenizer: Tokenizer, p: FillMaskPayload): InferenceResult {
  const r = fillMask(model, tokenizer, p.inputs, p.topK);
  return { kind: 'fill_mask', results: r.results, tokens: r.tokens };
}

async function generate(deps: Deps, model: Transformer, tokenizer: Tokenizer, p: GenerationPayload, eosIds: number[] = []): Promise<GenerationResult> {
  if (!isCausal(model.config.arch)) throw new InputError(`model ${p.model} is a masked LM (bert); text generation needs a causal (gpt or llama) model`, -1);
  // the roles' tokens, and the model's own end-of-sequence ids (generation_config.json's, possibly several)
  const stopTokens = [...new Set([...p.stopRoles.map((r) => tokenizer.special(r)).filter((id): id is number => id !== undefined), ...eosIds])];
  const describe = (lp: TokenLogprob): TokenLogprobResult => ({
    ...tokenInfo(tokenizer, lp.id),
    logprob: lp.logprob,
    top: lp.top.map((t) => ({ ...tokenInfo(tokenizer, t.id), logprob: t.logprob })),
  });
  let promptTokens = 0;
  // a streamed piece that reaches no subscriber means the client left: stop within that token
  const gone = new AbortController();
  // a chat completion: the conversation in the model's own template (Crucible's for its models,
  // whose answers end at the text <|im_end|> where the tokenizer lacks the token)
  const template = p.messages ? chatTemplateOf(tokenizer) : undefined;
  const prompt = template && p.messages ? template.prompt(p.messages) : p.prompt;
  const stop = template?.crucible ? [...p.stop, CHAT_STOP] : p.stop;
  // the n choices decoded together, each with its own seed; a LoRA model served unmerged shares its
  // base's batcher (its requests batch with the base's and with its other adapters')
  const base = model.loraBase;
  const batcher = batcherFor(base ?? model, tokenizer, deps.batching);
  const choose = async (index: number): Promise<SampleResult> => {
    const it = batcher.stream(
      prompt,
      {
        addSpecialTokens: !template,
        signal: gone.signal,
        maxNewTokens: p.maxTokens,
        temperature: p.temperature,
        topK: p.topK,
        topP: p.topP,
        stop,
        seed: p.seed + index,
        stopTokens,
        logprobs: p.logprobs ?? undefined,
      },
      base ? model : undefined,
      tokenizer,
    );
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
      if (p.streamChannel && (await deps.redis.publish(p.streamChannel, JSON.stringify({ index, text: r.value }))) === 0) gone.abort();
    }
  };
  let results: SampleResult[];
  try {
    results = await Promise.all(Array.from({ length: p.n }, (_, index) => choose(index)));
  } catch (err) {
    gone.abort(); // the other choices leave the batch at its next step
    throw err;
  }
  promptTokens = results[0]?.promptTokens ?? 0;
  const choices: GenerationChoice[] = results.map((r) => ({
    text: r.text,
    finishReason: r.finishReason,
    completionTokens: r.tokens.length,
    ...(r.logprobs ? { logprobs: r.logprobs.map(describe) } : {}),
  }));
  if (p.streamChannel) await deps.redis.publish(p.streamChannel, JSON.stringify({ done: true }));
  const result: GenerationResult = { kind: 'generate', promptTokens, choices };
  if (p.echo && p.logprobs !== null) {
    const ids = tokenizer.encode(p.prompt);
    result.promptLogprobs = promptLogprobs(model, ids, p.logprobs, tokenizer.vocabSize).map((lp, i) =>
      lp ? describe(lp) : { ...tokenInfo(tokenizer, ids[i] as number), logprob: null, top: [] },
    );
  }
  return result;
}

function tokenInfo(tokenizer: Tokenizer, id: number): { token: string; bytes: number[] } {
  const bytes = tokenizer.tokenBytes(id);
  return { token: new TextDecoder().decode(bytes), bytes: Array.from(bytes) };
}
