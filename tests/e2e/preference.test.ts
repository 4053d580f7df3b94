// Preference tuning (method dpo) end to end through the official openai client: a tiny base
// pretrained on Shakespeare answers in lower case, as the text it read; pairs prefer the same
// answer in upper case. After DPO the held-out pairs' reward accuracy is at least 90% and their
// margin positive, read from the metrics endpoint, the events and the published schema. Bad pairs,
// a bad beta and a method that does not fit are refused naming the line or field.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import Ajv from 'ajv';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pretrainTinyBase } from '../support/base-model';
import { shakespeare } from '../support/data';
import { eventually, startPlatform, type TestPlatform, waitForJobStatus } from '../support/platform';

let p: TestPlatform;
let client: OpenAI;
let baseId: string;

beforeAll(async () => {
  p = await startPlatform();
  client = p.openai();
});
afterAll(async () => {
  await p?.close();
});

const TRAIN_WORDS = 'king lord good night love death sweet heart blood crown grace honour noble sword father mother'.split(' ');
const HELD_OUT_WORDS = 'queen sir son time life name man hand word day'.split(' ');

/** OpenAI's DPO format: the preferred answer shouts the word, the other one says it. */
function pairs(words: string[], copies: number): string {
  return Array.from({ length: copies }, () => words)
    .flat()
    .map((w) =>
      JSON.stringify({
        input: { messages: [{ role: 'user', content: `say ${w}` }] },
        preferred_output: [{ role: 'assistant', content: w.toUpperCase() }],
        non_preferred_output: [{ role: 'assistant', content: w }],
      }),
    )
    .join('\n');
}

async function upload(text: string, name: string): Promise<string> {
  const f = await client.files.create({ file: await toFile(Buffer.from(text), name), purpose: 'fine-tune' });
  return (
    await eventually(async () => {
      const r = await client.files.retrieve(f.id);
      return (r.status as string) === 'pending' ? undefined : r;
    })
  ).id;
}

describe('method dpo', () => {
  it('pretrains a tiny base model', async () => {
    // (the alphabet once, so that the character tokenizer knows every capital)
    baseId = await pretrainTinyBase(client, { text: `${shakespeare(40_000)}\nABCDEFGHIJKLMNOPQRSTUVWXYZ\n`, blockSize: 48 });
  });

  it('learns to prefer the upper-case answers: held-out reward accuracy >= 90% and a positive margin', async () => {
    const training = await upload(pairs(TRAIN_WORDS, 4), 'prefs.jsonl');
    const validation = await upload(pairs(HELD_OUT_WORDS, 1), 'held-out.jsonl');
    const body = {
      model: baseId,
      training_file: training,
      validation_file: validation,
      method: { type: 'dpo' as const, dpo: { hyperparameters: { beta: 0.5, batch_size: 8, learning_rate_multiplier: 2, n_epochs: 5 } } },
    };
    // the estimate counts steps by pairs: 64 pairs / 8 per step x 5 epochs
    const estimate = (await (
      await p.api('/fine_tuning/jobs/estimate', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    ).json()) as {
      steps: number;
      epochs: number;
    };
    expect(estimate).toMatchObject({ steps: 40, epochs: 5 });
    // n_epochs auto on this small file: 8 steps a pass, so ceil(100 / 8) = 13 passes make 104 steps
    const auto = { ...body, method: { type: 'dpo', dpo: { hyperparameters: { beta: 0.5, batch_size: 8 } } } };
    const autoEstimate = (await (
      await p.api('/fine_tuning/jobs/estimate', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(auto) })
    ).json()) as { steps: number; n_epochs: number; hyperparameters: Record<string, unknown> };
    expect(autoEstimate).toMatchObject({ steps: 104, n_epochs: 13, hyperparameters: { n_epochs: 13, max_steps: 104, beta: 0.5, batch_size: 8 } });
    // exactly OpenAI's body: the client's own types accept it (no cast)
    const job = await client.fineTuning.jobs.create({
      model: baseId,
      training_file: training,
      validation_file: validation,
      method: { type: 'dpo', dpo: { hyperparameters: { beta: 0.5, batch_size: 8, learning_rate_multiplier: 2, n_epochs: 5 } } },
    });
    expect(job.method?.type).toBe('dpo');
    const done = await waitForJobStatus(client, job.id, ['succeeded'], 300_000);
    expect(done.method?.dpo?.hyperparameters).toMatchObject({ beta: 0.5, batch_size: 8, learning_rate_multiplier: 2, n_epochs: 5 });
    expect((await client.fineTuning.jobs.list()).data.map((j) => j.id)).toContain(job.id);

    // 64 pairs / 8 per step x 5 epochs = 40 steps; the metrics carry the rewards under TRL's names
    const metrics = (await (await p.api(`/fine_tuning/jobs/${job.id}/metrics`)).json()) as { data: Array<Record<string, number | null>> };
    const last = metrics.data.at(-1) as Record<string, number>;
    expect(last.step).toBe(40);
    expect(last['valid_rewards/accuracies']).toBeGreaterThanOrEqual(0.9);
    expect(last['valid_rewards/margins']).toBeGreaterThan(0);
    expect(last['rewards/margins']).toBeGreaterThan(0);
    // at step 0 the policy is the reference: every reward is 0
    const first = metrics.data[0] as Record<string, number>;
    expect(first.step).toBe(0);
    expect(first['valid_rewards/margins']).toBeCloseTo(0, 4);

    // the events carry them too, in the shape the published openapi.json declares
    const doc = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../openapi.json'), 'utf8'));
    const check = new Ajv({ strict: false }).compile({ $ref: '#/components/schemas/MetricsEventData', components: doc.components });
    const events = await client.fineTuning.jobs.listEvents(job.id, { limit: 100 });
    const data = events.data.filter((e) => e.type === 'metrics').map((e) => e.data as Record<string, unknown>);
    for (const d of data) expect(check(d), JSON.stringify(check.errors)).toBe(true);
    const evaluation = data.find((d) => d.kind === 'evaluation' && d.step === 40) as Record<string, number>;
    expect(evaluation['valid_rewards/accuracies']).toBe(last['valid_rewards/accuracies']);
    expect(data.some((d) => d.kind === 'step' && typeof d['rewards/chosen'] === 'number')).toBe(true);
  });

  it('refuses bad pairs at upload, naming the line and field', async () => {
    const good = pairs(['king'], 1);
    const missing = JSON.stringify({
      input: { messages: [{ role: 'user', content: 'say lord' }] },
      non_preferred_output: [{ role: 'assistant', content: 'lord' }],
    });
    const f = await client.files.create({ file: await toFile(Buffer.from(`${good}\n${missing}\n`), 'bad.jsonl'), purpose: 'fine-tune' });
    const r = await eventually(async () => {
      const x = await client.files.retrieve(f.id);
      return (x.status as string) === 'pending' ? undefined : (x as unknown as { status: string; problems: Array<{ line: number; field: string }> });
    });
    expect(r.status).toBe('error');
    expect(r.problems[0]).toMatchObject({ line: 2, field: 'preferred_output' });
  });

  it('refuses beta <= 0, a preset base and a file of another format, naming the field', async () => {
    const training = await upload(pairs(TRAIN_WORDS, 1), 'prefs2.jsonl');
    const create = (body: Record<string, unknown>) => client.fineTuning.jobs.create(body as never).catch((e) => e);
    const beta = await create({ model: baseId, training_file: training, method: { type: 'dpo', dpo: { hyperparameters: { beta: 0 } } } });
    expect(beta.status).toBe(400);
    expect(beta.error.param).toBe('method.dpo.hyperparameters.beta');
    const preset = await create({ model: 'gpt-nano', training_file: training, method: { type: 'dpo' } });
    expect(preset.status).toBe(400);
    expect(preset.error).toMatchObject({ code: 'unsupported_method', param: 'model' });
    const sft = await upload(JSON.stringify({ prompt: 'say king', completion: ' KING' }), 'sft.jsonl');
    const wrong = await create({ model: baseId, training_file: sft, method: { type: 'dpo' } });
    expect(wrong.status).toBe(400);
    expect(wrong.error).toMatchObject({ code: 'invalid_file', param: 'training_file' });
    expect(wrong.error.message).toMatch(/dpo jobs train on jsonl_preference/);
    const onlyDpo = await create({ model: baseId, training_file: sft, method: { type: 'supervised', supervised: { hyperparameters: { beta: 0.1 } } } });
    expect(onlyDpo.status).toBe(400);
    expect(onlyDpo.error.param).toBe('method.supervised.hyperparameters.beta');
  });
});
