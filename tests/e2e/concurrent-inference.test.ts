// Concurrent generations give the answers they give alone: a BPE base and three LoRA fine-tunes
// of it, eight streamed temperature-0 completions (request i on adapter i mod 3) plus eight with
// log-probabilities, sent one at a time and then all at once, must agree token for token and
// logprob for logprob. Streamed pieces make the worker interleave generations (each piece awaits a
// Redis publish), the path on which the native backend's buffer pool once handed a live view's
// memory to another request.
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shakespeare } from '../support/data';
import { startPlatform, type TestPlatform, waitForJobStatus } from '../support/platform';

let p: TestPlatform;
let client: OpenAI;

beforeAll(async () => {
  p = await startPlatform({ env: { INFERENCE_CONCURRENCY: '8', TRAINING_CONCURRENCY: '2', MAX_CONCURRENT_INFERENCE: '32' } });
  client = p.openai();
});
afterAll(async () => {
  await p?.close();
});

const PAIRS = [
  ['ROMEO 1:', ' I will go.'],
  ['ROMEO 2:', ' Stay, my lord.'],
  ['ROMEO 3:', ' Not I, good sir.'],
] as const;

async function fineTune(base: string, suffix: string, shift: number): Promise<string> {
  const rows = Array.from({ length: 24 }, (_, i) => {
    const [prompt, completion] = PAIRS[(i + shift) % PAIRS.length] as readonly [string, string];
    return JSON.stringify({ prompt, completion: PAIRS[(i + shift + 1) % PAIRS.length]?.[1] ?? completion });
  }).join('\n');
  const f = await client.files.create({ file: await toFile(Buffer.from(rows), `${suffix}.jsonl`), purpose: 'fine-tune' });
  const job = await client.fineTuning.jobs.create({
    model: base,
    training_file: f.id,
    suffix,
    seed: shift,
    method: {
      type: 'supervised',
      supervised: {
        peft: { type: 'lora', rank: 4, alpha: 8, target_modules: ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'] },
        hyperparameters: { max_steps: 30, batch_size: 4, block_size: 32, learning_rate: 1e-2, eval_interval: 0, eval_batches: 1 },
      },
    } as never,
  });
  return (await waitForJobStatus(client, job.id, ['succeeded'], 240_000)).fine_tuned_model as string;
}

interface Answer {
  text: string;
  logprobs?: Array<number | null>;
  tokens?: string[];
}

async function streamed(model: string, prompt: string): Promise<Answer> {
  const stream = await client.completions.create({ model, prompt, max_tokens: 48, temperature: 0, stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
  return { text };
}

async function withLogprobs(model: string, prompt: string): Promise<Answer> {
  const r = await client.completions.create({ model, prompt, max_tokens: 48, temperature: 0, logprobs: 3 });
  const c = r.choices[0];
  return { text: c?.text ?? '', tokens: c?.logprobs?.tokens ?? [], logprobs: c?.logprobs?.token_logprobs ?? [] };
}

describe('concurrent generations over several adapters of one base', () => {
  it('equal the same requests sent one at a time, token for token and logprob for logprob', async () => {
    const f = await client.files.create({ file: await toFile(Buffer.from(shakespeare(30_000)), 'base.txt'), purpose: 'fine-tune' });
    const job = await client.fineTuning.jobs.create({
      model: 'gpt-nano',
      training_file: f.id,
      seed: 11, // a fixed base: without one each run trains another, and a weak one may answer every prompt alike
      method: {
        type: 'pretrain',
        pretrain: {
          hyperparameters: {
            max_steps: 120,
            batch_size: 8,
            block_size: 32,
            eval_interval: 0,
            eval_batches: 1,
            learning_rate: 3e-3,
            tokenizer: { type: 'bpe', vocab_size: 320 },
          },
        },
      } as never,
    });
    const base = (await waitForJobStatus(client, job.id, ['succeeded'], 240_000)).fine_tuned_model as string;
    const adapters = await Promise.all([0, 1, 2].map((i) => fineTune(base, `a${i}`, i)));

    const requests = Array.from({ length: 16 }, (_, i) => ({
      model: adapters[i % 3] as string,
      prompt: `ROMEO ${i % 8}:`,
      send: i < 8 ? streamed : withLogprobs,
    }));
    const alone: Answer[] = [];
    for (const r of requests) alone.push(await r.send(r.model, r.prompt));
    // the adapters differ: not every request gives the same text
    expect(new Set(alone.map((a) => a.text)).size).toBeGreaterThan(1);
    for (let round = 0; round < 4; round++) {
      const together = await Promise.all(requests.map((r) => r.send(r.model, r.prompt)));
      for (const [i, got] of together.entries()) expect(got, `round ${round}, request ${i} (${requests[i]?.model}, ${requests[i]?.prompt})`).toEqual(alone[i]);
    }
  });
});
