import { CharTokenizer, isAdapterParam, paramSpecs, type Weights } from '@crucible/model-files';
import type { LoraConfig } from '@crucible/training-config';
import { beforeAll, describe, expect, it } from 'vitest';
import { type ModelConfig, modelConfig } from './config';
import { type BatchStep, batchedSample, ContinuousBatcher, kvBytesPerPosition } from './continuous-batching';
import { Transformer } from './model';
import { Rng } from './rng';
import { type SampleOptions, type SampleResult, sample } from './sample';
import { tinyLlamaConfig, useBackend } from './test-helpers';

beforeAll(useBackend);

const text = 'First Citizen:\nBefore we proceed any further, hear me speak.\nAll:\nSpeak, speak.\n';
const tok = CharTokenizer.train(text, ['<|endoftext|>']);
const models: Array<[string, ModelConfig, LoraConfig['targets']]> = [
  [
    'gpt',
    modelConfig({ arch: 'gpt', nLayer: 2, nHead: 2, dModel: 32, blockSize: 48 }, tok.vocabSize),
    ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'],
  ],
  ['llama', { ...tinyLlamaConfig(tok.vocabSize), blockSize: 48 }, ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'down_proj']],
];

/** Random LoRA matrices for cfg (B not zero, so the adapter changes the outputs). */
function adapterWeights(cfg: ModelConfig, peft: LoraConfig, seed: number): Weights {
  const rng = new Rng(seed);
  const w: Weights = new Map();
  for (const s of paramSpecs({ ...cfg, peft })) {
    if (!isAdapterParam(s.name)) continue;
    const n = s.shape.reduce((a, b) => a * b, 1);
    w.set(s.name, { shape: s.shape, data: Float32Array.from({ length: n }, () => (rng.next() - 0.5) * 0.6) });
  }
  return w;
}

// requests with different parameters: greedy, seeded sampling with top-k and top-p, logprobs, a stop
// sequence, prompts longer than a prefill chunk, and one that slides past the context
const requests: Array<[string, SampleOptions]> = [
  ['First Citizen:\n', { maxNewTokens: 12, temperature: 0 }],
  ['Speak', { maxNewTokens: 20, temperature: 0.9, topK: 8, seed: 3, logprobs: 2 }],
  ['Before we proceed any further, hear me', { maxNewTokens: 9, temperature: 1.2, topP: 0.9, seed: 11 }],
  ['All:', { maxNewTokens: 15, temperature: 0.7, seed: 5, stop: ['e'] }],
  [text.slice(0, 40), { maxNewTokens: 16, temperature: 0, logprobs: 1 }],
  ['A', { maxNewTokens: 0 }],
];

describe.each(models)('continuous batching (%s)', (_, cfg, targets) => {
  const model = Transformer.create(cfg, 7);
  const batcher = (onStep?: (s: BatchStep) => void) => {
    const b = new ContinuousBatcher(model, tok, { prefillChunk: 5, maxBatch: 4 });
    b.onStep = onStep;
    return b;
  };

  it('gives every request the tokens and logprobs it gets alone, with different parameters in one batch', async () => {
    // a stop sequence the greedy continuation of 'All:' reaches
    const greedy = await sample(model, tok, 'All:', { maxNewTokens: 15, temperature: 0 });
    expect(greedy.text.length).toBeGreaterThan(6);
    const withStop: Array<[string, SampleOptions]> = [...requests, ['All:', { maxNewTokens: 15, temperature: 0, stop: [greedy.text.slice(4, 6)] }]];
    const alone: SampleResult[] = [];
    for (const [prompt, o] of withStop) alone.push(await batchedSample(batcher(), prompt, o));
    const steps: BatchStep[] = [];
    const b = batcher((s) => steps.push(s));
    const together = await Promise.all(withStop.map(([prompt, o]) => batchedSample(b, prompt, o)));
    expect(together).toEqual(alone);
    // they did share steps, no more than maxBatch at once, and the long prompts were read in chunks
    expect(Math.max(...steps.map((s) => s.requests))).toBe(4);
    expect(steps.some((s) => s.tokens > s.requests)).toBe(true);
    const stopAt = greedy.text.indexOf(greedy.text.slice(4, 6));
    expect(alone[6]).toMatchObject({ text: greedy.text.slice(0, stopAt), finishReason: 'stop' });
    expect(alone[5]).toMatchObject({ text: '', tokens: [], finishReason: 'length' });
    expect(alone[1]?.logprobs).toHaveLength(20);
  });

  it('gives a request alone what sampleStream gives it (chunked prefill included)', async () => {
    for (const [prompt, o] of requests) {
      const want = await sample(model, tok, prompt, o);
      const got = await batchedSample(batcher(), prompt, o);
      expect(got.tokens, prompt).toEqual(want.tokens);
      expect(got.text).toBe(want.text);
      for (const [i, lp] of (want.logprobs ?? []).entries()) expect(got.logprobs?.[i]?.logprob).toBeCloseTo(lp.logprob, 5);
    }
  });

  it('requests for LoRA fine-tunes of the model share its steps, each with its own adapter, and get what they get alone', async () => {
    // two adapters of different ranks and targets, unmerged on the model
    const adapters = [
      Transformer.withLora(
        model,
        { type: 'lora', rank: 4, alpha: 8, dropout: 0, targets },
        adapterWeights(cfg, { type: 'lora', rank: 4, alpha: 8, dropout: 0, targets }, 1),
      ),
      Transformer.withLora(
        model,
        { type: 'lora', rank: 2, alpha: 8, dropout: 0, targets: targets.slice(0, 2) },
        adapterWeights(cfg, { type: 'lora', rank: 2, alpha: 8, dropout: 0, targets: targets.slice(0, 2) }, 2),
      ),
    ];
    const jobs = requests.slice(0, 5).map(([prompt, o], i) => ({ prompt, o, adapter: i % 3 === 0 ? undefined : adapters[i % 3 === 1 ? 0 : 1] }));
    // alone: each adapter as its own model (its own LoRA forward pass), the base as itself
    const alone: SampleResult[] = [];
    for (const j of jobs) alone.push(await batchedSample(new ContinuousBatcher(j.adapter ?? model, tok, { prefillChunk: 5 }), j.prompt, j.o));
    const steps: BatchStep[] = [];
    const together = await Promise.all(
      jobs.map((j) =>
        batchedSample(
          batcher((st) => steps.push(st)),
          j.prompt,
          j.o,
          j.adapter,
        ),
      ),
    );
    const b = batcher((st) => steps.push(st));
    const shared = await Promise.all(jobs.map((j) => batchedSample(b, j.prompt, j.o, j.adapter)));
    expect(steps.some((st) => st.requests >= 3)).toBe(true);
    for (const [i, got] of shared.entries()) {
      expect(got.tokens, `request ${i}`).toEqual(alone[i]?.tokens);
      for (const [t, lp] of (alone[i]?.logprobs ?? []).entries()) expect(got.logprobs?.[t]?.logprob).toBeCloseTo(lp.logprob, 5);
    }
    expect(together).toEqual(shared);
    // the adapters change what the model says
    expect(alone[1]?.tokens).not.toEqual((await batchedSample(batcher(), jobs[1]?.prompt as string, jobs[1]?.o as SampleOptions)).tokens);
    // another model's adapter is refused
    const other = Transformer.create(cfg, 8);
    const foreign = Transformer.withLora(
      other,
      { type: 'lora', rank: 2, alpha: 4, dropout: 0, targets },
      adapterWeights(cfg, { type: 'lora', rank: 2, alpha: 4, dropout: 0, targets }, 3),
    );
    await expect(batchedSample(batcher(), 'A', { maxNewTokens: 2 }, foreign)).rejects.toThrow(/its own model/);
    for (const m of [...adapters, foreign, other]) m.dispose();
  });

  it('a step may read more tokens than one context holds: each span has its own positions', async () => {
    const steps: BatchStep[] = [];
    const b = new ContinuousBatcher(model, tok, { prefillChunk: 40 });
    b.onStep = (s) => steps.push(s);
    const prompts = [text.slice(0, 40), text.slice(10, 50), text.slice(20, 60)];
    const together = await Promise.all(prompts.map((prompt) => batchedSample(b, prompt, { maxNewTokens: 4, temperature: 0 })));
    expect(steps[0]?.tokens).toBe(120);
    expect(steps[0]?.tokens).toBeGreaterThan(cfg.blockSize);
    for (const [i, prompt] of prompts.entries())
      expect(together[i]).toEqual(await batchedSample(new ContinuousBatcher(model, tok, { prefillChunk: 40 }), prompt, { maxNewTokens: 4, temperature: 0 }));
  });

  it('a request joins at the next step and a cancelled one leaves at once', async () => {
    const steps: BatchStep[] = [];
    const b = batcher((s) => steps.push(s));
    const stop = new AbortController();
    const budget = 100_000; // (the context slides past block_size: it never ends by itself here)
    const long = b.stream('Speak', { maxNewTokens: budget, temperature: 0, signal: stop.signal });
    const first = await long.next(); // the first piece: the request is decoding
    expect(first.done).toBe(false);
    const other = batchedSample(b, 'All:', { maxNewTokens: 6, temperature: 0 });
    while (!steps.some((s) => s.requests === 2)) await new Promise((r) => setImmediate(r));
    stop.abort();
    const before = steps.length;
    const rest: string[] = [];
    for (;;) {
      const r = await long.next();
      if (r.done) {
        expect(r.value.finishReason).toBe('length');
        expect(r.value.tokens.length).toBeLessThan(budget);
        break;
      }
      rest.push(r.value);
    }
    // the step after the abort no longer holds it
    await other;
    const after = steps.slice(before + 1);
    expect(after.every((s) => s.requests === 1)).toBe(true);
    expect(b.size).toBe(0);
  });

  it('runs only the requests whose KV caches fit its memory, the others waiting their turn in order', async () => {
    const perRequest = Math.min(cfg.blockSize, 'Speak'.length + 10) * kvBytesPerPosition(model);
    const steps: BatchStep[] = [];
    const b = new ContinuousBatcher(model, tok, { maxCacheBytes: 2 * perRequest });
    b.onStep = (s) => steps.push(s);
    const o = { maxNewTokens: 10, temperature: 0 };
    const all = await Promise.all(Array.from({ length: 5 }, () => batchedSample(b, 'Speak', o)));
    expect(Math.max(...steps.map((s) => s.requests))).toBe(2);
    for (const r of all) expect(r).toEqual(all[0]);
    // one request always runs, however small the budget
    const tiny = new ContinuousBatcher(model, tok, { maxCacheBytes: 1 });
    expect((await batchedSample(tiny, 'Speak', o)).tokens).toEqual(all[0]?.tokens);
  });

  it('a reader that stops reading takes its request out of the batch', async () => {
    const b = batcher();
    const it = b.stream('Speak', { maxNewTokens: 40, temperature: 0 });
    await it.next();
    expect(b.size).toBe(1);
    await it.return(undefined as never);
    expect(b.size).toBe(0);
  });
});
