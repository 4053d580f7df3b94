// Serves a completion request: load the model (cached), sample, stream pieces to the API.
import type { Store } from '@crucible/db';
import type { InferencePayload, InferenceResult } from '@crucible/domain';
import { sampleStream } from '@crucible/trainer';
import { UnrecoverableError } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ModelCache } from './model-cache';

export async function handleInference(deps: { store: Store; cache: ModelCache; redis: Redis }, p: InferencePayload): Promise<InferenceResult> {
  const row = await deps.store.models.get(p.projectId, p.model);
  if (!row) throw new UnrecoverableError(`model ${p.model} not found`);
  const { model, tokenizer } = await deps.cache.get(row.storageKey);
  const it = sampleStream(model, tokenizer, p.prompt, {
    maxNewTokens: p.maxTokens,
    temperature: p.temperature,
    topK: p.topK,
    topP: p.topP,
    stop: p.stop,
    seed: p.seed,
  });
  for (;;) {
    const r = await it.next();
    if (r.done) {
      if (p.streamChannel) await deps.redis.publish(p.streamChannel, JSON.stringify({ done: true }));
      return { text: r.value.text, finishReason: r.value.finishReason, promptTokens: r.value.promptTokens, completionTokens: r.value.tokens.length };
    }
    if (p.streamChannel) await deps.redis.publish(p.streamChannel, JSON.stringify({ text: r.value }));
  }
}
