// Evaluations end to end over HTTP: a pretraining job (on data the job prepares itself) leaves
// checkpoints; two of them and the final model are evaluated on a prompt/completion file through
// the evaluation queue; the loss is checked against one computed here, independently, from the
// checkpoint's weights; the comparison table ranks them; a cancel sticks. Early stopping ends a
// job whose validation loss stops improving, and the best checkpoint survives retention.
import { encodeDataset } from '@crucible/datasets';
import { decodeCheckpoint, initBackend, readTokenizer, type Transformer } from '@crucible/trainer';
import * as tf from '@tensorflow/tfjs';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHAKESPEARE, shakespeare } from '../support/data';
import { eventually, startPlatform, type TestPlatform, waitForJobStatus } from '../support/platform';

let p: TestPlatform;
let client: OpenAI;

beforeAll(async () => {
  p = await startPlatform();
  client = p.openai();
  await initBackend('auto');
});
afterAll(async () => {
  await p?.close();
});

interface Evaluation {
  id: string;
  status: string;
  progress: number;
  model: string;
  metrics: Record<string, number | null> | null;
  samples: Array<{ line: number; prompt: string; expected: string | null; output: string; exact_match: boolean | null }>;
  error: unknown;
}

async function call<T>(path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await p.api(path, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as T };
}

async function evaluate(model: string, file: string, extra: object = {}): Promise<Evaluation> {
  const created = await call<Evaluation>('/evaluations', { model, file, max_examples: 6, samples: 2, max_tokens: 16, ...extra });
  expect(created.status).toBe(200);
  return eventually(async () => {
    const e = (await call<Evaluation>(`/evaluations/${created.body.id}`)).body;
    if (e.status === 'failed') throw new Error(`evaluation failed: ${JSON.stringify(e.error)}`);
    return e.status === 'succeeded' ? e : undefined;
  }, 180_000);
}

/** Mean next-token loss over the stream in windows of `T`, by a float64 log-sum-exp written here. */
function independentLoss(model: Transformer, tokens: Int32Array, T: number): number {
  let sum = 0;
  let n = 0;
  for (let s = 0; s + 1 < tokens.length; s += T) {
    const len = Math.min(T, tokens.length - 1 - s);
    const x = [...tokens.slice(s, s + len)];
    const logits = tf.tidy(() => model.forward(tf.tensor2d(x, [1, len], 'int32')).arraySync() as number[][][])[0] as number[][];
    logits.forEach((row, j) => {
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
      sum += lse - (row[tokens[s + 1 + j] as number] as number);
      n++;
    });
  }
  return sum / n;
}

const QA = [
  ['First Citizen:', ' Speak, speak.'],
  ['All:', ' We know it.'],
  ['MENENIUS:', ' What work is here?'],
  ['Second Citizen:', ' Nay, but speak not maliciously.'],
] as const;

describe('evaluations', () => {
  let jobId: string;
  let model: string;
  let corpus: { id: string; text: string };
  let evalFile: string;
  const checkpoints: Array<{ name: string; step: number; key: string }> = [];

  it('trains a job on a file it prepares itself, leaving checkpoints', async () => {
    const text = `${shakespeare(30_000)}\n\n${shakespeare(2000)}`; // a repeated passage: the job's preparation removes it
    const f = await client.files.create({ file: await toFile(Buffer.from(text), 'corpus.txt'), purpose: 'pretrain' as 'fine-tune' });
    corpus = { id: f.id, text };
    const job = await client.fineTuning.jobs.create({
      model: 'gpt-nano',
      training_file: f.id,
      method: {
        type: 'pretrain',
        pretrain: {
          hyperparameters: { max_steps: 120, batch_size: 8, block_size: 32, eval_interval: 40, eval_batches: 2, checkpoint_interval: 40, learning_rate: 3e-3 },
        },
      } as never,
      data_preparation: { scrub_pii: false },
    } as never);
    const done = (await waitForJobStatus(client, job.id)) as unknown as { fine_tuned_model: string; prepared_training_file: string };
    jobId = job.id;
    model = done.fine_tuned_model;
    const prepared = (await call<{ source_file: string; status: string }>(`/files/${done.prepared_training_file}`)).body;
    expect(prepared).toMatchObject({ source_file: f.id, status: 'processed' });
    const report = (await call<{ preparation: { report: { counts: Record<string, number> } } }>(`/files/${done.prepared_training_file}/report`)).body;
    expect(report.preparation.report.counts.exact_duplicates).toBeGreaterThan(0);
    const rows = await p.sql<{ step: number; storage_key: string }>('SELECT step, storage_key FROM job_checkpoints WHERE job_id = $1 ORDER BY step', [jobId]);
    const list = await client.fineTuning.jobs.checkpoints.list(jobId);
    for (const c of list.data) {
      const key = rows.find((r) => r.step === c.step_number)?.storage_key as string;
      checkpoints.push({ name: c.fine_tuned_model_checkpoint, step: c.step_number, key });
    }
    checkpoints.sort((a, b) => a.step - b.step);
    expect(checkpoints.map((c) => c.step)).toEqual([40, 80, 120]);
    // every checkpoint carries the evaluation at its own step
    for (const c of list.data) expect(c.metrics.valid_loss).not.toBeNull();
  });

  it('estimates a job before it runs: tokens, steps, and a duration from the throughput measured by the first job', async () => {
    const hp = { n_epochs: 2, batch_size: 8, block_size: 32 };
    const r = await call<{
      tokens: { total: number; training: number; per_step: number };
      steps: number;
      throughput: { tokens_per_second: number; jobs: string[] } | null;
      estimated_seconds: number;
    }>('/fine_tuning/jobs/estimate', { model: 'gpt-nano', training_file: corpus.id, method: { type: 'pretrain', pretrain: { hyperparameters: hp } } });
    expect(r.status).toBe(200);
    const chars = [...corpus.text].length; // a character tokenizer: one token per character
    const training = Math.floor(chars * 0.9); // 10% held out for validation
    expect(r.body.tokens).toEqual({ total: chars, training, per_step: 256, tokenizer: 'characters (trained on the data)', approximate: false });
    expect(r.body.steps).toBe(Math.ceil((2 * training) / 256));
    const measured =
      (await client.fineTuning.jobs.retrieve(jobId)) &&
      (await call<{ data: Array<{ tokens_per_second: number | null }> }>(`/fine_tuning/jobs/${jobId}/metrics`)).body.data;
    const tps = measured.map((m) => m.tokens_per_second).filter((x): x is number => x !== null);
    expect(r.body.throughput?.jobs).toEqual([jobId]);
    expect(r.body.throughput?.tokens_per_second).toBeCloseTo(tps.reduce((a, b) => a + b, 0) / tps.length, 6);
    expect(r.body.estimated_seconds).toBe(Math.round((r.body.steps * 256) / (r.body.throughput?.tokens_per_second as number)));
    // nothing was created
    expect((await client.fineTuning.jobs.list()).data).toHaveLength(1);
  });

  it('evaluates two checkpoints and the model on a prompt/completion file, with an independent loss check', async () => {
    const rows = Array.from({ length: 12 }, (_, i) => JSON.stringify({ prompt: QA[i % 4]?.[0], completion: QA[i % 4]?.[1] })).join('\n');
    const f = await client.files.create({ file: await toFile(Buffer.from(rows), 'qa.jsonl'), purpose: 'evals' as 'fine-tune' });
    evalFile = f.id;
    const [a, b, m] = await Promise.all([
      evaluate(checkpoints[0]?.name as string, f.id),
      evaluate(checkpoints[1]?.name as string, f.id),
      evaluate(model, f.id),
    ]);
    for (const e of [a, b, m]) {
      const x = e.metrics as Record<string, number>;
      expect(x.perplexity).toBeCloseTo(Math.exp(x.loss as number), 9);
      expect(x.answer_perplexity).toBeCloseTo(Math.exp(x.answer_loss as number), 9);
      expect(x.records).toBe(12);
      expect(x.exact_match_examples).toBe(6);
      expect(x.exact_match).toBeGreaterThanOrEqual(0);
      expect(x.exact_match).toBeLessThanOrEqual(1);
      expect(x.token_accuracy).toBeGreaterThan(0);
      expect(e.samples).toHaveLength(2);
      expect(e.samples[0]).toMatchObject({ line: 1, prompt: 'First Citizen:', expected: ' Speak, speak.' });
      expect(e.progress).toBe(1);
    }
    // the same loss, computed here from the checkpoint's weights
    const ck = decodeCheckpoint(await p.deps.storage.get(checkpoints[0]?.key as string));
    const stream = encodeDataset(rows, 'jsonl_prompt_completion', ck.tokenizer);
    expect(a.metrics?.tokens).toBe(stream.tokens.length - 1);
    expect(a.metrics?.loss).toBeCloseTo(independentLoss(ck.model, stream.tokens, ck.modelConfig.blockSize), 4);
    ck.model.dispose();
    // training goes on: the last checkpoint is the model itself, and the loss on this file moves
    expect(a.metrics?.loss).not.toBe(b.metrics?.loss);

    const events = (await call<{ data: Array<{ message: string }> }>(`/evaluations/${a.id}/events`)).body.data.map((e) => e.message);
    expect(events[0]).toMatch(/^Evaluation succeeded: loss/);
    expect(events.at(-1)).toMatch(/^Created evaluation/);
  });

  it('compares the evaluations of one file in one table', async () => {
    const names = [checkpoints[0]?.name as string, checkpoints[1]?.name as string, 'ft:not-evaluated'];
    const r = await call<{
      columns: string[];
      primary: string;
      rows: Array<{ model: string; values: Array<number | null>; best: string[] }>;
      missing: string[];
    }>(`/evaluations/comparison?file=${evalFile}&models=${encodeURIComponent(names.join(','))}`);
    expect(r.status).toBe(200);
    // a prompt/completion file: the answers' metrics come first and rank the rows, best first
    expect(r.body.columns.slice(0, 2)).toEqual(['exact_match', 'answer_loss']);
    expect(['exact_match', 'answer_loss']).toContain(r.body.primary);
    const pi = r.body.columns.indexOf(r.body.primary);
    const [p0, p1] = r.body.rows.map((x) => x.values[pi] as number);
    expect(r.body.primary === 'answer_loss' ? (p0 as number) <= (p1 as number) : (p0 as number) >= (p1 as number)).toBe(true);
    expect(r.body.rows.map((x) => x.model).sort()).toEqual(names.slice(0, 2).sort());
    expect(r.body.missing).toEqual(['ft:not-evaluated']);
    const li = r.body.columns.indexOf('loss');
    const [l0, l1] = r.body.rows.map((x) => x.values[li] as number);
    const winner = (l0 as number) < (l1 as number) ? 0 : 1;
    expect(r.body.rows[winner]?.best).toContain('loss');
    expect(r.body.rows[1 - winner]?.best).not.toContain('loss');
    const all = await call<{ data: Evaluation[] }>(`/evaluations?file=${evalFile}`);
    expect(all.body.data).toHaveLength(3);
  });

  it('gives token statistics and a preview marking which tokens carry loss', async () => {
    const s = await call<{ tokens: { total: number; trained: number } }>(`/files/${evalFile}/stats?model=${encodeURIComponent(model)}`);
    // character tokenizer: one token per character and an end-of-text after each completion, which
    // also separates the records (the trainer adds no second one)
    const chars = (i: number) => (QA[i % 4]?.[0].length as number) + (QA[i % 4]?.[1].length as number);
    const total = Array.from({ length: 12 }, (_, i) => chars(i) + 1).reduce((x, y) => x + y, 0);
    const trained = Array.from({ length: 12 }, (_, i) => (QA[i % 4]?.[1].length as number) + 1).reduce((x, y) => x + y, 0);
    expect(s.body.tokens).toMatchObject({ total, trained });
    // the trainer's own encoding of the same file, with the model's tokenizer.json
    const tokenizer = readTokenizer(new Uint8Array(await (await p.api(`/models/${encodeURIComponent(model)}/files/tokenizer.json`)).arrayBuffer()));
    const text = await (await p.api(`/files/${evalFile}/content`)).text();
    const encoded = encodeDataset(text, 'jsonl_prompt_completion', tokenizer);
    expect(s.body.tokens).toMatchObject({ total: encoded.tokens.length, trained: encoded.weights?.reduce((a, w) => a + w, 0) });
    const pv = await call<{ records: Array<{ line: number; tokens: Array<{ text: string; loss: boolean }> }> }>(
      `/files/${evalFile}/preview?model=${encodeURIComponent(model)}&records=1`,
    );
    const toks = pv.body.records[0]?.tokens ?? [];
    expect(
      toks
        .filter((t) => !t.loss)
        .map((t) => t.text)
        .join(''),
    ).toBe('First Citizen:');
    expect(
      toks
        .filter((t) => t.loss)
        .map((t) => t.text)
        .join(''),
    ).toBe(' Speak, speak.<|endoftext|>');
  });

  it('cancels an evaluation, and the cancel sticks', async () => {
    const created = await call<Evaluation>('/evaluations', { model, file: evalFile, max_examples: 1000, max_tokens: 512 });
    const cancelled = await call<Evaluation>(`/evaluations/${created.body.id}/cancel`, {});
    expect(cancelled.body.status).toBe('cancelled');
    await new Promise((r) => setTimeout(r, 1500));
    expect((await call<Evaluation>(`/evaluations/${created.body.id}`)).body.status).toBe('cancelled');
    const again = await call<{ error: { code: string } }>(`/evaluations/${created.body.id}/cancel`, {});
    expect(again.status).toBe(409);
  });

  it('refuses presets and unknown files with clear errors', async () => {
    const preset = await call<{ error: { code: string; param: string } }>('/evaluations', { model: 'gpt-nano', file: evalFile });
    expect(preset.status).toBe(404);
    expect(preset.body.error).toMatchObject({ code: 'model_not_found', param: 'model' });
    const nofile = await call<{ error: { code: string; param: string } }>('/evaluations', { model, file: 'file-nope' });
    expect(nofile.body.error).toMatchObject({ code: 'file_not_found', param: 'file' });
  });
});

describe('early stopping and the best checkpoint', () => {
  it('stops when the validation loss stops improving, and publishes the best or the last weights as asked', async () => {
    const f = await client.files.create({ file: await toFile(Buffer.from(shakespeare(20_000)), 'es.txt'), purpose: 'pretrain' as 'fine-tune' });
    // min_delta far above any possible improvement: the evaluation after step 0 is the last
    const job = await client.fineTuning.jobs.create({
      model: 'gpt-nano',
      training_file: f.id,
      method: {
        type: 'pretrain',
        pretrain: {
          hyperparameters: {
            max_steps: 500,
            batch_size: 4,
            block_size: 32,
            eval_interval: 10,
            eval_batches: 1,
            checkpoint_interval: 5,
            early_stopping: { patience: 1, min_delta: 100 },
          },
        },
      } as never,
    });
    const done = await waitForJobStatus(client, job.id);
    const events = (await client.fineTuning.jobs.listEvents(job.id, { limit: 100 })).data.map((e) => e.message);
    expect(events.some((m) => /^Early stopping at step 10: no improvement/.test(m))).toBe(true);
    expect(done.fine_tuned_model).toBeTruthy();
    expect(done.trained_tokens).toBe(10 * 4 * 32);

    // a run that keeps only 3 checkpoints still keeps its best one, and can publish it: a tiny
    // training set memorized by many steps makes the loss on other text fall, then rise
    const small = await client.files.create({ file: await toFile(Buffer.from(shakespeare(400)), 'tiny.txt'), purpose: 'pretrain' as 'fine-tune' });
    const other = await client.files.create({
      file: await toFile(Buffer.from(SHAKESPEARE.slice(50_000, 53_000)), 'other.txt'),
      purpose: 'pretrain' as 'fine-tune',
    });
    const g = await client.fineTuning.jobs.create({
      model: 'gpt-nano',
      training_file: small.id,
      validation_file: other.id,
      method: {
        type: 'pretrain',
        pretrain: {
          hyperparameters: {
            max_steps: 150,
            batch_size: 8,
            block_size: 32,
            eval_interval: 10,
            eval_batches: 4,
            checkpoint_interval: 10,
            learning_rate: 3e-3,
            model_selection: 'best',
          },
        },
      } as never,
    });
    const gd = await waitForJobStatus(client, g.id);
    const metrics = (await call<{ data: Array<{ step: number; valid_loss: number | null }> }>(`/fine_tuning/jobs/${g.id}/metrics`)).body.data;
    const evals = metrics.filter((m) => m.valid_loss !== null && m.step > 0);
    const bestEval = evals.reduce((x, y) => ((y.valid_loss as number) < (x.valid_loss as number) ? y : x));
    const cks = (await client.fineTuning.jobs.checkpoints.list(g.id, { limit: 100 })).data as unknown as Array<{
      step_number: number;
      best: boolean;
      fine_tuned_model_checkpoint: string;
    }>;
    const best = cks.filter((c) => c.best);
    expect(best).toHaveLength(1);
    expect(best[0]?.step_number).toBe(bestEval.step);
    expect(bestEval.step).toBeLessThan(150); // the weights published are not the last ones
    expect(cks.filter((c) => !c.best).map((c) => c.step_number)).toEqual([150, 140, 130]);
    const final = (await client.fineTuning.jobs.listEvents(g.id, { limit: 100 })).data.find((e) => /^New fine-tuned model created/.test(e.message));
    expect((final as unknown as { data: { model_step: number } }).data.model_step).toBe(bestEval.step);
    // the published weights are the best checkpoint's: the same loss on any file
    const [me, ce] = await Promise.all([
      evaluate(gd.fine_tuned_model as string, evalFileFor()),
      evaluate(best[0]?.fine_tuned_model_checkpoint as string, evalFileFor()),
    ]);
    expect(me.metrics?.loss).toBe(ce.metrics?.loss);
  });
});

let sharedEval: string | undefined;
function evalFileFor(): string {
  return sharedEval as string;
}
beforeAll(async () => {
  const f = await p.openai().files.create({ file: await toFile(Buffer.from(shakespeare(3000)), 'held.txt'), purpose: 'evals' as 'fine-tune' });
  sharedEval = f.id;
});
