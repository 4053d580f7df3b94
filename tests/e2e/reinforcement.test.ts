// Reinforcement fine-tuning (method reinforcement, GRPO) end to end through the official openai
// client. The questions ("is 3 less than 7?") are all true, and string_check grades the answer
// against the line's answer field (yes). The starting model is a tiny chat model fine-tuned on
// answers a quarter of which are yes; after GRPO the validation reward (answers sampled for held-out
// questions) rises by a clear margin. (A prompt-dependent task is learnt in the trainer's own test,
// grpo.test.ts: a character model of this size does not learn to read digits in a CI budget.)
// Bad graders, files and models are refused at creation naming the line or field.
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
let chatModel: string;

beforeAll(async () => {
  // float32 jobs: the reward thresholds below were set on float32's trajectory through this tiny
  // problem; bf16, the default where the CPU has AVX512-BF16, takes another one (a final held-out
  // reward of 0.83 instead of at least 0.9). bf16's numerics are tested in the trainer's own tests.
  // Crucible's own matrix product, pinned: NATIVE_GEMM=auto picks the fastest library by timing it,
  // so a busy machine can pick another one, whose rounding sends this chaotic little problem down
  // another path (a CI run under load ended at a held-out reward of 0)
  p = await startPlatform({ env: { NATIVE_PRECISION: 'float32', NATIVE_GEMM: 'crucible' } });
  client = p.openai();
});
afterAll(async () => {
  await p?.close();
});

// comparisons of different digits, all true: "is 3 less than 7?"; the right answer is always yes
const PROBLEMS = Array.from({ length: 100 }, (_, i) => [Math.floor(i / 10), i % 10] as const).filter(([a, b]) => a < b);
const question = ([a, b]: readonly [number, number]) => `is ${a} less than ${b}?`;

/** Chat lines for the starting model: a quarter answer yes, the rest no (it learns to say yes about a quarter of the time). */
function eitherAnswer(copies: number): string {
  return Array.from({ length: copies }, (_, c) =>
    PROBLEMS.map((q, i) =>
      JSON.stringify({
        messages: [
          { role: 'user', content: question(q) },
          { role: 'assistant', content: (c + i) % 4 === 0 ? 'yes' : 'no' },
        ],
      }),
    ),
  )
    .flat()
    .join('\n');
}

/** OpenAI's reinforcement format: the prompt, and the fields the grader reads. */
function prompts(problems: ReadonlyArray<readonly [number, number]>): string {
  return problems.map((q) => JSON.stringify({ messages: [{ role: 'user', content: question(q) }], answer: 'yes' })).join('\n');
}

async function upload(text: string, name: string): Promise<string> {
  const f = await client.files.create({ file: await toFile(Buffer.from(text), name), purpose: 'fine-tune' });
  const r = await eventually(async () => {
    const x = await client.files.retrieve(f.id);
    return (x.status as string) === 'pending' ? undefined : x;
  });
  expect(r.status).toBe('processed');
  return r.id;
}

const grader = { type: 'string_check' as const, name: 'sum', input: '{{sample.output_text}}', reference: '{{item.answer}}', operation: 'eq' as const };

describe('method reinforcement', () => {
  it('starts from a tiny chat model that answers yes about a quarter of the time', async () => {
    // seeded, as every job after it: the run is the same each time (an unseeded base once ended at 5 of 6 held-out answers)
    const base = await pretrainTinyBase(client, { text: `${shakespeare(40_000)}\n0123456789+=\n`, blockSize: 48, seed: 7 });
    const sft = await upload(eitherAnswer(4), 'either-answer.jsonl');
    const job = await client.fineTuning.jobs.create({
      model: base,
      training_file: sft,
      seed: 1,
      method: {
        type: 'supervised',
        supervised: { hyperparameters: { max_steps: 150, batch_size: 16, learning_rate: 3e-3, eval_interval: 0, eval_batches: 2 } as never },
      },
    });
    chatModel = (await waitForJobStatus(client, job.id, ['succeeded'], 300_000)).fine_tuned_model as string;
  });

  it('raises the validation reward of answers graded by string_check by a clear margin', async () => {
    const training = await upload(prompts(PROBLEMS.filter((_, i) => i % 5 !== 0)), 'questions.jsonl');
    const validation = await upload(prompts(PROBLEMS.filter((_, i) => i % 5 === 0)), 'held-out-questions.jsonl');
    // exactly OpenAI's body: the client's own types accept it (no cast)
    const job = await client.fineTuning.jobs.create({
      model: chatModel,
      training_file: training,
      validation_file: validation,
      method: {
        type: 'reinforcement',
        reinforcement: {
          grader,
          hyperparameters: { n_epochs: 4, batch_size: 8, eval_interval: 6, eval_samples: 2, learning_rate_multiplier: 2, compute_multiplier: 'auto' },
        },
      },
      seed: 1,
    });
    expect(job.method?.type).toBe('reinforcement');
    const done = await waitForJobStatus(client, job.id, ['succeeded'], 400_000);
    expect(done.method?.reinforcement?.grader).toEqual(grader);
    expect(done.method?.reinforcement?.hyperparameters).toMatchObject({ n_epochs: 4, batch_size: 8, eval_interval: 6, eval_samples: 2 });
    expect((await client.fineTuning.jobs.list()).data.map((j) => j.id)).toContain(job.id);

    const metrics = (await (await p.api(`/fine_tuning/jobs/${job.id}/metrics`)).json()) as { data: Array<Record<string, number | null>> };
    const evaluations = metrics.data.filter((m) => typeof m.valid_reward === 'number') as Array<Record<string, number>>;
    const first = evaluations[0] as Record<string, number>;
    const last = evaluations.at(-1) as Record<string, number>;
    expect(first.step).toBe(0);
    expect(last.step).toBe(18); // 36 prompts / 8 per step x 4 epochs
    // the starting model says yes about a quarter of the time; after training nearly always
    expect(first.valid_reward).toBeLessThanOrEqual(0.6);
    expect(last.valid_reward).toBeGreaterThanOrEqual(0.9);
    expect((last.valid_reward as number) - (first.valid_reward as number)).toBeGreaterThanOrEqual(0.3);
    // the step metrics under TRL's names
    const steps = metrics.data.filter((m) => typeof m.reward === 'number') as Array<Record<string, number>>;
    expect(steps.map((s) => s.step)).toEqual([10, 18]); // log_interval 10, and the last step
    for (const s of steps) {
      expect(s.reward).toBeGreaterThanOrEqual(0);
      expect(s.reward).toBeLessThanOrEqual(1);
      expect(s.frac_reward_nonzero_std).toBeGreaterThanOrEqual(0);
      expect(s.kl).toBeGreaterThanOrEqual(0);
    }

    // the events carry them too, in the shape the published openapi.json declares
    const doc = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../openapi.json'), 'utf8'));
    const check = new Ajv({ strict: false }).compile({ $ref: '#/components/schemas/MetricsEventData', components: doc.components });
    const events = await client.fineTuning.jobs.listEvents(job.id, { limit: 100 });
    const data = events.data.filter((e) => e.type === 'metrics').map((e) => e.data as Record<string, unknown>);
    for (const d of data) expect(check(d), JSON.stringify(check.errors)).toBe(true);
    expect(data.some((d) => d.kind === 'evaluation' && typeof d.valid_reward === 'number')).toBe(true);
    // the fine-tuned model answers in chat
    const chat = await client.chat.completions.create({
      model: done.fine_tuned_model as string,
      messages: [{ role: 'user', content: question([2, 6]) }],
      temperature: 0,
      max_tokens: 4,
    });
    expect(chat.choices[0]?.message.content).toBe('yes');
  });

  it('refuses graders that need a service, templates naming a field the data lacks, other formats and reasoning effort, naming the field', async () => {
    const training = await upload(prompts(PROBLEMS.slice(0, 10)), 'questions2.jsonl');
    const create = (body: Record<string, unknown>) => client.fineTuning.jobs.create(body as never).catch((e) => e);
    const rl = (g: unknown, hyperparameters: Record<string, unknown> = {}, file = training) =>
      create({ model: chatModel, training_file: file, method: { type: 'reinforcement', reinforcement: { grader: g, hyperparameters } } });

    const python = await rl({ type: 'python', name: 'p', source: 'def grade(sample, item): return 1.0' });
    expect(python.status).toBe(400);
    expect(python.error).toMatchObject({ code: 'unsupported_grader', param: 'method.reinforcement.grader.type' });
    const model = await rl({ type: 'score_model', name: 's', model: 'gpt-4o-2024-08-06', input: [{ role: 'user', content: 'score {{sample.output_text}}' }] });
    expect(model.error?.code).toBe('unsupported_grader');

    const unknown = await rl({ ...grader, reference: '{{item.solution}}' });
    expect(unknown.status).toBe(400);
    expect(unknown.error).toMatchObject({ code: 'invalid_grader', param: 'method.reinforcement.grader.reference' });
    expect(unknown.error.message).toMatch(/\{\{item\.solution\}\}, which line 1 of training_file/);
    const formula = await rl({ type: 'multi', name: 'm', graders: { exact: grader }, calculate_output: 'exact + close' });
    expect(formula.error).toMatchObject({ code: 'invalid_grader', param: 'method.reinforcement.grader.calculate_output' });
    const effort = await rl(grader, { reasoning_effort: 'high' });
    expect(effort.error).toMatchObject({ code: 'unsupported_parameter', param: 'method.reinforcement.hyperparameters.reasoning_effort' });
    const sft = await upload(eitherAnswer(1), 'chat.jsonl');
    const wrong = await rl(grader, {}, sft);
    expect(wrong.error).toMatchObject({ code: 'invalid_file', param: 'training_file' });
    expect(wrong.error.message).toMatch(/reinforcement jobs train on jsonl_reinforcement/);
    const noGrader = await create({ model: chatModel, training_file: training, method: { type: 'reinforcement', reinforcement: {} } });
    expect(noGrader.status).toBe(400);
    expect(JSON.stringify(noGrader.error)).toMatch(/grader/);
    // and nothing was created
    expect((await client.fineTuning.jobs.list({ limit: 100 })).data.filter((j) => j.training_file === training)).toEqual([]);
  });
});
