// The worker's model cache by memory (MODEL_CACHE_BYTES): with room for one gpt-nano model, two
// models served one after the other evict each other, and a request for the second while the
// first is generating gets 503 model_capacity with Retry-After (streamed too: a stream starts with
// its first piece), never an out-of-memory crash or another error; once the first is done it is served.
import type OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pretrainTinyBase } from '../support/base-model';
import { startPlatform, type TestPlatform } from '../support/platform';

let p: TestPlatform;
let client: OpenAI;
const BUDGET = 5 * 2 ** 20;

beforeAll(async () => {
  p = await startPlatform({ env: { MODEL_CACHE_BYTES: '5MiB', INFERENCE_CONCURRENCY: '4', TRAINING_CONCURRENCY: '2' } });
  client = p.openai();
});
afterAll(async () => {
  await p?.close();
});

describe('a model cache by memory', () => {
  it('evicts the least recently used model, and answers 503 model_capacity while the models in memory are in use', async () => {
    const [a, b] = await Promise.all([pretrainTinyBase(client, { seed: 1 }), pretrainTinyBase(client, { seed: 2 })]);
    const complete = (model: string) => client.completions.create({ model, prompt: 'ROMEO:', max_tokens: 8, temperature: 0 });
    await complete(a);
    const [entry] = p.worker?.models() ?? [];
    // the premise: one model fits in the budget, two do not
    expect(entry?.bytes).toBeGreaterThan(BUDGET / 2);
    expect(entry?.bytes).toBeLessThan(BUDGET);
    await complete(b);
    expect(p.worker?.models().map((e) => e.key)).toEqual([expect.stringContaining(encodeURIComponent(b))]);

    // a long generation on a keeps it in use; b cannot be loaded beside it meanwhile
    const long = await client.completions.create({ model: a, prompt: 'ROMEO:', max_tokens: 2000, temperature: 1, stream: true });
    const pieces = long[Symbol.asyncIterator]();
    await pieces.next(); // a is loaded and generating
    const res = await p.api('/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: b, prompt: 'ROMEO:', max_tokens: 4 }),
    });
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    const body = (await res.json()) as { error: { code: string; message: string; param: string } };
    expect(body.error).toMatchObject({ code: 'model_capacity', param: 'model', type: 'server_error' });
    expect(body.error.message).toMatch(/MODEL_CACHE_BYTES.*retry in \d+ s/);
    // through the official client, and streamed
    const err = await complete(b).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503, code: 'model_capacity' });
    // a stream starts with its first piece: until then a failure is an ordinary answer, here a 503
    const streamErr = await client.chat.completions
      .create({ model: b, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, stream: true })
      .catch((e: unknown) => e);
    expect(streamErr).toMatchObject({ status: 503, code: 'model_capacity' });
    expect(p.worker?.models().map((e) => [e.kind, e.users])).toEqual([['model', 1]]);

    // the client of the long generation leaves: a is free again and b is served
    long.controller.abort();
    const served = await (async () => {
      for (let i = 0; i < 50; i++) {
        const r = await complete(b).catch((e: unknown) => e as Error);
        if (!(r instanceof Error)) return r;
        expect(r).toMatchObject({ status: 503, code: 'model_capacity' });
        await new Promise((ok) => setTimeout(ok, 200));
      }
    })();
    expect(served?.choices[0]?.text).toEqual(expect.any(String));
    expect(p.worker?.models().map((e) => e.key)).toEqual([expect.stringContaining(encodeURIComponent(b))]);
  }, 240_000);
});
