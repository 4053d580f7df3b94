// Bad input gets a 4xx with a machine-readable code, names the problem, and leaves nothing behind.
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shakespeare } from '../support/data';
import { leftovers } from '../support/leftovers';
import { startPlatform, type TestPlatform } from '../support/platform';

let p: TestPlatform;
let client: OpenAI;
let textFile: string;

beforeAll(async () => {
  p = await startPlatform({ worker: false });
  client = p.openai();
  textFile = (await client.files.create({ file: await toFile(Buffer.from(shakespeare(5000)), 'a.txt'), purpose: 'fine-tune' })).id;
});
afterAll(async () => {
  await p?.close();
});

/** Rows, objects and queue entries: a rejected request leaves them all as they were. */
const counts = () => leftovers(p);

async function post(path: string, body: unknown) {
  const res = await p.api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as { error: { code: string; message: string; param: string | null } } };
}

describe('bad input', () => {
  it('marks a JSONL file whose line 3 is broken as error, naming the line, and refuses jobs on it', async () => {
    const jsonl = '{"text": "one"}\n{"text": "two"}\n{"text": "three"\n{"text": "four"}\n';
    const f = await client.files.create({ file: await toFile(Buffer.from(jsonl), 'data.jsonl'), purpose: 'fine-tune' });
    expect(f).toMatchObject({ status: 'error', problem_count: 1 });
    expect(f.status_details).toMatch(/line 3 is not valid JSON/);
    const before = await counts();
    const err = await client.fineTuning.jobs.create({ model: 'gpt-nano', training_file: f.id }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.error).toMatchObject({ code: 'invalid_file', param: 'training_file' });
    expect(err.message).toMatch(/line 3 is not valid JSON/);
    expect(await counts()).toEqual(before);
  });

  it('reports mixed JSONL record shapes, and answers non-UTF-8 bytes at once, storing nothing', async () => {
    const mixed = '{"text": "a"}\n{"prompt": "q", "completion": "a"}\n';
    const f = await client.files.create({ file: await toFile(Buffer.from(mixed), 'm.jsonl'), purpose: 'fine-tune' });
    expect(f.status).toBe('error');
    expect((f as unknown as { problems: Array<{ line: number; code: string }> }).problems[0]).toMatchObject({ line: 2, code: 'mixed_formats' });
    const before = await counts();
    const e2 = await client.files.create({ file: await toFile(Buffer.from([0xff, 0xfe, 0x41]), 'b.txt'), purpose: 'fine-tune' }).catch((e) => e);
    expect(e2.error).toMatchObject({ code: 'invalid_file' });
    expect(e2.message).toMatch(/UTF-8/);
    expect(await counts()).toEqual(before);
  });

  it('rejects an unknown model with model_not_found and creates no job', async () => {
    const before = await counts();
    const err = await client.fineTuning.jobs.create({ model: 'gpt-9000', training_file: textFile }).catch((e) => e);
    expect(err.status).toBe(404);
    expect(err.error).toMatchObject({ code: 'model_not_found', param: 'model' });
    expect(await counts()).toEqual(before);
  });

  it.each([
    [{ batch_size: 100_000 }, 'method.pretrain.hyperparameters.batch_size'],
    [{ learning_rate: 5 }, 'method.pretrain.hyperparameters.learning_rate'],
    [{ optimizer: 'sgd' }, 'method.pretrain.hyperparameters.optimizer'],
    [{ tokenizer: { type: 'bpe', vocab_size: 10 } }, 'method.pretrain.hyperparameters.tokenizer.vocab_size'],
    [{ learning_rate: 1e-3, min_learning_rate: 1e-2 }, 'method.pretrain.hyperparameters.min_learning_rate'],
    [{ warp_speed: 9 }, 'method.pretrain.hyperparameters.warp_speed'],
    [{ activation_checkpointing: true }, 'method.pretrain.hyperparameters.activation_checkpointing'],
  ])('rejects out-of-range hyperparameters %j at %s', async (hp, param) => {
    const before = await counts();
    const r = await post('/fine_tuning/jobs', { model: 'gpt-nano', training_file: textFile, method: { type: 'pretrain', pretrain: { hyperparameters: hp } } });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid_hyperparameters');
    expect(r.body.error.param).toBe(param);
    expect(await counts()).toEqual(before);
  });

  it.each([
    ['supervised', { learning_rate: -1 }, 'method.supervised.hyperparameters.learning_rate', /must be >/],
    ['supervised', { max_steps: -5 }, 'method.supervised.hyperparameters.max_steps', /must be >=/],
    ['supervised', { max_step: 3 }, 'method.supervised.hyperparameters.max_step', /unknown field/],
    ['mlm', { batch_size: 0 }, 'method.mlm.hyperparameters.batch_size', /must be >=/],
  ])('names the field and the rule in a %s job too (%j at %s)', async (type, hp, param, rule) => {
    const before = await counts();
    const r = await post('/fine_tuning/jobs', { model: 'gpt-nano', training_file: textFile, method: { type, [type]: { hyperparameters: hp } } });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'invalid_hyperparameters', param });
    expect(r.body.error.message).toMatch(rule);
    expect(r.body.error.message).toContain(param);
    expect(await counts()).toEqual(before);
  });

  it('rejects a method that does not fit the model, and a file of the wrong kind', async () => {
    const r1 = await post('/fine_tuning/jobs', { model: 'gpt-nano', training_file: textFile, method: { type: 'mlm' } });
    expect(r1.body.error).toMatchObject({ code: 'unsupported_method', param: 'model' });
    const r2 = await post('/fine_tuning/jobs', { model: 'gpt-nano', training_file: 'file-nope' });
    expect(r2.status).toBe(404);
    expect(r2.body.error).toMatchObject({ code: 'file_not_found', param: 'training_file' });
  });

  it('answers unknown ids and routes with 404 and a code', async () => {
    const r = await p.api(`/fine_tuning/jobs/ftjob-nope`);
    expect(r.status).toBe(404);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('job_not_found');
    const c = await client.completions.create({ model: 'gpt-nano', prompt: 'x' }).catch((e) => e);
    expect(c.error).toMatchObject({ code: 'invalid_request', param: 'model' });
  });

  it('requires a purpose and rejects an unknown one', async () => {
    const err = await client.files.create({ file: await toFile(Buffer.from('hello'), 'a.txt'), purpose: 'vision' as never }).catch((e) => e);
    expect(err.error).toMatchObject({ code: 'invalid_request', param: 'purpose' });
  });
});
