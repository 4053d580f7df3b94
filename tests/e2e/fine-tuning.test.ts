// The platform end to end through HTTP with the official `openai` client: upload, pretrain,
// follow events, checkpoints, metrics, models, completions (plain and streamed), download.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { keys } from '@crucible/storage';
import Ajv from 'ajv';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shakespeare, untarGz } from '../support/data';
import { eventually, startPlatform, type TestPlatform, waitForJobStatus } from '../support/platform';

let p: TestPlatform;
let client: OpenAI;

beforeAll(async () => {
  p = await startPlatform();
  client = p.openai();
});
afterAll(async () => {
  await p?.close();
});

/** Whether this CPU has bf16 instructions (read from the kernel, not from Crucible). */
const cpuHasBf16 = /\b(avx512_bf16|amx_bf16)\b/.test(existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '');

// char tokenizer: the slice's distinct characters plus Crucible's 8 special tokens
const VOCAB = new Set(shakespeare(60_000)).size + 8;

const smallRun = {
  max_steps: 30,
  batch_size: 4,
  block_size: 32,
  eval_interval: 10,
  eval_batches: 2,
  checkpoint_interval: 10,
  log_interval: 5,
  learning_rate: 3e-3,
  warmup_steps: 5,
  tokenizer: { type: 'char' },
};

describe('pretraining a model through the OpenAI client', () => {
  let fileId: string;
  let jobId: string;
  let modelId: string;

  it('uploads a dataset and stores exactly its bytes', async () => {
    const text = shakespeare(60_000);
    const file = await client.files.create({ file: await toFile(Buffer.from(text), 'shakespeare.txt'), purpose: 'fine-tune' });
    expect(file).toMatchObject({ object: 'file', bytes: Buffer.byteLength(text), filename: 'shakespeare.txt', purpose: 'fine-tune' });
    fileId = file.id;
    const content = Buffer.from(await (await client.files.content(file.id)).arrayBuffer());
    expect(createHash('sha256').update(content).digest('hex')).toBe(createHash('sha256').update(text).digest('hex'));
    const listed = await client.files.list();
    expect(listed.data.map((f) => f.id)).toContain(file.id);
  });

  it('creates a pretraining job that runs to succeeded', async () => {
    const job = await client.fineTuning.jobs.create({
      model: 'gpt-nano',
      training_file: fileId,
      seed: 7,
      suffix: 'e2e',
      method: { type: 'pretrain', pretrain: { hyperparameters: smallRun } } as never,
    });
    expect(job.status).toBe('queued');
    expect(job.hyperparameters).toMatchObject({ batch_size: 4, block_size: 32, optimizer: 'adamw', lr_scheduler: 'cosine' });
    jobId = job.id;
    const done = await waitForJobStatus(client, jobId);
    expect(done.fine_tuned_model).toMatch(/^ft:gpt-nano:e2e:/);
    expect(done.trained_tokens).toBe(30 * 4 * 32);
    const { backend, precision } = done as unknown as { backend: string; precision: string };
    expect(backend).toMatch(/^(native\+(auto|crucible|onednn|openblas)(\+bf16)?|wasm(\+native(\+bf16)?)?|cpu|tensorflow)$/);
    // named by none: the worker's CPU chose, bf16 where it has the instructions (on the native backend)
    expect((job as unknown as { precision: unknown }).precision).toBeNull();
    const bf16Here = cpuHasBf16 && /^(native|wasm\+native)/.test(backend);
    expect(precision).toBe(bf16Here ? 'bf16' : 'float32');
    expect(backend.endsWith('+bf16')).toBe(bf16Here);
    modelId = done.fine_tuned_model as string;
  });

  it('trains in the precision a job asks for, or says why not; refuses an unknown one', async () => {
    const bad = await fetch(`${p.url}/v1/fine_tuning/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${p.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-nano', training_file: fileId, precision: 'fp16' }),
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toMatch(/precision/);
    const run = { ...smallRun, max_steps: 4, warmup_steps: 1, eval_interval: 2, checkpoint_interval: 2, log_interval: 2 };
    const jobs = await Promise.all(
      (['float32', 'bf16'] as const).map((precision) =>
        client.fineTuning.jobs.create({
          model: 'gpt-nano',
          training_file: fileId,
          seed: 7,
          method: { type: 'pretrain', pretrain: { hyperparameters: run } },
          precision,
        } as never),
      ),
    );
    expect(jobs.map((j) => (j as unknown as { precision: string }).precision)).toEqual(['float32', 'bf16']);
    const [f32, bf16] = (await Promise.all(jobs.map((j) => waitForJobStatus(client, j.id)))) as unknown as Array<{
      id: string;
      precision: string;
      backend: string;
    }>;
    expect(f32?.precision).toBe('float32');
    expect(f32?.backend.endsWith('+bf16')).toBe(false);
    const bf16Here = cpuHasBf16 && /^(native|wasm\+native)/.test(bf16?.backend ?? '');
    expect(bf16?.precision).toBe(bf16Here ? 'bf16' : 'float32');
    const warned: string[] = [];
    for await (const e of client.fineTuning.jobs.listEvents(bf16?.id as string, { limit: 50 })) if (e.level === 'warn') warned.push(e.message);
    expect(warned.some((m) => /bf16 was requested, but this worker runs no bf16 products/.test(m))).toBe(!bf16Here);
  });

  it('lists events newest first with cursor pagination', async () => {
    const first = await client.fineTuning.jobs.listEvents(jobId, { limit: 3 });
    expect(first.data).toHaveLength(3);
    expect(first.has_more).toBe(true);
    expect(first.data[0]?.message).toBe('The job has successfully completed');
    const next = await client.fineTuning.jobs.listEvents(jobId, { limit: 3, after: first.data[2]?.id });
    expect(next.data[0]?.id).not.toBe(first.data[2]?.id);
    const all: string[] = [];
    for await (const e of client.fineTuning.jobs.listEvents(jobId, { limit: 50 })) all.push(e.message);
    expect(all.at(-1)).toMatch(/^Created fine-tuning job/);
    expect(all.some((m) => /^Step 30\/30: training loss=/.test(m))).toBe(true);
  });

  it("declares its metrics events: each one's data matches MetricsEventData in the published openapi.json", async () => {
    const doc = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../openapi.json'), 'utf8'));
    const check = new Ajv({ strict: false }).compile({ $ref: '#/components/schemas/MetricsEventData', components: doc.components });
    const metrics: Array<{ kind: string; step: number }> = [];
    for await (const e of client.fineTuning.jobs.listEvents(jobId, { limit: 100 })) {
      if (e.type !== 'metrics') continue;
      expect(check(e.data), `${e.message}: ${JSON.stringify(e.data)} ${JSON.stringify(check.errors)}`).toBe(true);
      metrics.push(e.data as { kind: string; step: number });
    }
    const steps = (kind: string) =>
      metrics
        .filter((m) => m.kind === kind)
        .map((m) => m.step)
        .sort((a, b) => a - b);
    expect(steps('step')).toEqual([5, 10, 15, 20, 25, 30]); // log_interval 5
    expect(steps('evaluation')).toEqual([0, 10, 20, 30]); // eval_interval 10, and step 0
    expect(steps('checkpoint')).toEqual([10, 20, 30]); // checkpoint_interval 10
  });

  it('streams events as Server-Sent Events until [DONE]', async () => {
    const res = await p.api(`/fine_tuning/jobs/${jobId}/events?stream=true`);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const body = await res.text();
    const datas = body
      .split('\n\n')
      .filter(Boolean)
      .map((chunk) => chunk.replace(/^data: /, ''));
    expect(datas.at(-1)).toBe('[DONE]');
    const events = datas.slice(0, -1).map((d) => JSON.parse(d));
    expect(events[0].message).toMatch(/^Created fine-tuning job/);
    expect(events.at(-1).message).toBe('The job has successfully completed');
  });

  it('keeps checkpoints with their metrics', async () => {
    const cps = await client.fineTuning.jobs.checkpoints.list(jobId);
    expect(cps.data.map((c) => c.step_number)).toEqual([30, 20, 10]);
    expect(cps.data[0]?.metrics.valid_loss).toBeGreaterThan(0);
    expect(cps.data[0]?.fine_tuning_job_id).toBe(jobId);
  });

  it('records metrics that go down and downsamples them', async () => {
    const res = await p.api(`/fine_tuning/jobs/${jobId}/metrics`);
    const m = (await res.json()) as { total_points: number; data: Array<{ step: number; train_loss: number | null; valid_loss: number | null }> };
    const valid = m.data.filter((d) => d.valid_loss !== null);
    expect(valid.map((d) => d.step)).toEqual([0, 10, 20, 30]);
    expect((valid.at(-1) as { valid_loss: number }).valid_loss).toBeLessThan((valid[0] as { valid_loss: number }).valid_loss);
    expect(Math.abs((valid[0]?.valid_loss as number) - Math.log(VOCAB))).toBeLessThan(0.1); // ~ln(vocab) before training
    const few = await p.api(`/fine_tuning/jobs/${jobId}/metrics?max_points=3`);
    const f = (await few.json()) as { data: Array<{ step: number }> };
    expect(f.data.map((d) => d.step)).toEqual([0, m.data[Math.round((m.data.length - 1) / 2)]?.step, 30]);
  });

  it('shows the model in models next to the presets', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual(expect.arrayContaining(['gpt-nano', 'gpt-micro', 'gpt2-small', 'bert-mini', modelId]));
    const m = await client.models.retrieve(modelId);
    expect(m.owned_by).toBe(p.projectId);
  });

  it('serves completions and chat completions from the model, plain and streamed', async () => {
    // a weak 30-step model may end at once (end-of-text); find a seed with text to compare streams on
    const alphabet = new Set(shakespeare(60_000));
    let seed = 0;
    let c: OpenAI.Completion | undefined;
    for (seed = 1; seed <= 8; seed++) {
      c = await client.completions.create({ model: modelId, prompt: 'ROMEO:', max_tokens: 20, seed, temperature: 0.8 });
      expect(c.object).toBe('text_completion');
      expect(c.usage?.completion_tokens).toBeLessThanOrEqual(20);
      expect(c.usage?.prompt_tokens).toBe(6);
      // a trained model writes the training alphabet, never pad/mask/cls/sep tokens
      expect([...(c.choices[0]?.text ?? '')].every((ch) => alphabet.has(ch))).toBe(true);
      if ((c.choices[0]?.text.length ?? 0) > 0) break;
    }
    c = c as OpenAI.Completion;
    expect(c.choices[0]?.text.length).toBeGreaterThan(0);
    const again = await client.completions.create({ model: modelId, prompt: 'ROMEO:', max_tokens: 20, seed, temperature: 0.8 });
    expect(again.choices[0]?.text).toBe(c.choices[0]?.text);

    const stream = await client.completions.create({ model: modelId, prompt: 'ROMEO:', max_tokens: 20, seed, temperature: 0.8, stream: true });
    let streamed = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      streamed += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(streamed).toBe(c.choices[0]?.text);
    expect(finish).toBe(c.choices[0]?.finish_reason);

    const chat = await client.chat.completions.create({ model: modelId, messages: [{ role: 'user', content: 'Speak.' }], max_tokens: 10, seed: 2 });
    expect(chat.choices[0]?.message.role).toBe('assistant');
    const chatStream = await client.chat.completions.create({
      model: modelId,
      messages: [{ role: 'user', content: 'Speak.' }],
      max_tokens: 10,
      seed: 2,
      stream: true,
    });
    let chatText = '';
    for await (const chunk of chatStream) chatText += chunk.choices[0]?.delta?.content ?? '';
    expect(chatText.trim()).toBe(chat.choices[0]?.message.content);
  });

  it('downloads the model as a tar.gz of a Hugging Face GPT-2 folder', async () => {
    const res = await p.api(`/models/${encodeURIComponent(modelId)}/download`);
    expect(res.status).toBe(200);
    const files = untarGz(new Uint8Array(await res.arrayBuffer()));
    expect([...files.keys()].sort()).toEqual([
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const config = JSON.parse((files.get('config.json') as Buffer).toString('utf8'));
    expect(config).toMatchObject({ model_type: 'gpt2', n_layer: 4, n_head: 4, n_embd: 128, n_positions: 32, vocab_size: VOCAB });
    const st = files.get('model.safetensors') as Buffer;
    const n = Number(st.readBigUInt64LE(0));
    const header = JSON.parse(st.subarray(8, 8 + n).toString('utf8'));
    expect(header['transformer.wte.weight']).toMatchObject({ dtype: 'F32', shape: [VOCAB, 128] });
    expect(header.__metadata__).toEqual({ format: 'pt' });
    expect(JSON.parse((files.get('tokenizer.json') as Buffer).toString('utf8')).model.type).toBe('BPE');
    const one = await p.api(`/models/${encodeURIComponent(modelId)}/files/config.json`);
    expect(JSON.parse(await one.text())).toEqual(config);
    const noAdapter = await p.api(`/models/${encodeURIComponent(modelId)}/download?variant=adapter`);
    expect(noAdapter.status).toBe(400);
  });

  it('uses a checkpoint as a model: retrieve, sample and download it by its fine_tuned_model_checkpoint name', async () => {
    const cps = (await client.fineTuning.jobs.checkpoints.list(jobId)).data;
    const last = cps.find((c) => c.step_number === 30)?.fine_tuned_model_checkpoint as string;
    const first = cps.find((c) => c.step_number === 10)?.fine_tuned_model_checkpoint as string;
    const m = await client.models.retrieve(last);
    expect(m).toMatchObject({ id: last, source: 'checkpoint', fine_tuning_job: jobId, arch: 'gpt', base_model: 'gpt-nano' });
    // the last checkpoint holds the job's final weights: the same seed samples the same text
    const prompt = { prompt: 'ROMEO:', max_tokens: 12, seed: 3, temperature: 0.8 };
    const fromModel = await client.completions.create({ model: modelId, ...prompt });
    const fromLast = await client.completions.create({ model: last, ...prompt });
    expect(fromLast.choices[0]?.text).toBe(fromModel.choices[0]?.text);
    // and its download holds the model's tensors, bit for bit; step 10's differ
    const tensor = async (id: string) => {
      const res = await p.api(`/models/${encodeURIComponent(id)}/download`);
      expect(res.status).toBe(200);
      const st = untarGz(new Uint8Array(await res.arrayBuffer())).get('model.safetensors') as Buffer;
      const n = Number(st.readBigUInt64LE(0));
      const entry = JSON.parse(st.subarray(8, 8 + n).toString('utf8'))['transformer.h.0.mlp.c_fc.weight'] as { data_offsets: [number, number] };
      return createHash('sha256')
        .update(st.subarray(8 + n + entry.data_offsets[0], 8 + n + entry.data_offsets[1]))
        .digest('hex');
    };
    const model = await tensor(modelId);
    expect(await tensor(last)).toBe(model);
    expect(await tensor(first)).not.toBe(model);
    // a checkpoint is not listed among the models, and has no adapter to download
    const ids: string[] = [];
    for await (const x of client.models.list()) ids.push(x.id);
    expect(ids).not.toContain(last);
    expect((await p.api(`/models/${encodeURIComponent(last)}/download?variant=adapter`)).status).toBe(400);
  });

  it('fine-tunes the trained model on prompt/completion pairs (supervised)', async () => {
    const rows = Array.from({ length: 40 }, (_, i) =>
      JSON.stringify({ prompt: `ROMEO: ${['speak', 'say', 'tell me'][i % 3]}?`, completion: ' Ay, my lord.' }),
    ).join('\n');
    const f = await client.files.create({ file: await toFile(Buffer.from(rows), 'sft.jsonl'), purpose: 'fine-tune' });
    const job = await client.fineTuning.jobs.create({
      model: modelId,
      training_file: f.id,
      method: {
        type: 'supervised',
        supervised: { hyperparameters: { max_steps: 8, batch_size: 4, block_size: 32, eval_interval: 0, eval_batches: 2 } },
      } as never,
    });
    const done = await waitForJobStatus(client, job.id);
    // names stay flat: a fine-tune of ft:gpt-nano:... is ft:gpt-nano:..., never ft:ft:
    expect(done.fine_tuned_model).toMatch(/^ft:gpt-nano:crucible:[A-Za-z0-9]+$/);
    expect((await client.models.retrieve(done.fine_tuned_model as string)).owned_by).toBe(p.projectId);
    expect(done.hyperparameters).toMatchObject({ learning_rate: 1e-3, tokenizer: { type: 'inherited' } });
    const pretrainOnly = await client.fineTuning.jobs.create({ model: modelId, training_file: fileId, method: { type: 'supervised' } }).catch((e) => e);
    expect(pretrainOnly.error).toMatchObject({ code: 'invalid_file', param: 'training_file' });
  });

  it('trains a masked LM from bert-mini and refuses to sample from it', async () => {
    const job = await client.fineTuning.jobs.create({
      model: 'bert-mini',
      training_file: fileId,
      method: { type: 'mlm', mlm: { hyperparameters: { max_steps: 4, batch_size: 2, block_size: 32, eval_interval: 0, eval_batches: 1 } } } as never,
    });
    const done = await waitForJobStatus(client, job.id);
    const m = await client.models.retrieve(done.fine_tuned_model as string);
    expect((m as unknown as { arch: string }).arch).toBe('bert');
    const err = await client.completions.create({ model: m.id, prompt: 'x' }).catch((e) => e);
    expect(err.error).toMatchObject({ code: 'invalid_request', param: 'model' });
  });

  it('keeps projects apart: another key sees none of it', async () => {
    const other = await p.newProject('other');
    const c2 = p.openai(other.apiKey);
    await expect(c2.files.retrieve(fileId)).rejects.toMatchObject({ status: 404 });
    await expect(c2.fineTuning.jobs.retrieve(jobId)).rejects.toMatchObject({ status: 404 });
    await expect(c2.models.retrieve(modelId)).rejects.toMatchObject({ status: 404 });
    expect((await c2.fineTuning.jobs.list()).data).toHaveLength(0);
    const anon = await fetch(`${p.url}/v1/files`);
    expect(anon.status).toBe(401);
    expect(((await anon.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
  });

  it('deletes a model: record and objects', async () => {
    const del = await client.models.delete(modelId);
    expect(del).toMatchObject({ id: modelId, deleted: true });
    await expect(client.models.retrieve(modelId)).rejects.toMatchObject({ status: 404 });
    expect(await p.deps.storage.list(keys.modelPrefix(p.projectId, modelId))).toEqual([]);
    expect((await p.deps.storage.list(`projects/${p.projectId}/models/`)).length).toBeGreaterThan(0); // the other models stay
  });
});

describe('stopping jobs', () => {
  let fileId: string;
  beforeAll(async () => {
    fileId = (await client.files.create({ file: await toFile(Buffer.from(shakespeare(40_000)), 'slice.txt'), purpose: 'fine-tune' })).id;
  });

  const longJob = () =>
    client.fineTuning.jobs.create({
      model: 'gpt-nano',
      training_file: fileId,
      seed: 3,
      method: { type: 'pretrain', pretrain: { hyperparameters: { ...smallRun, max_steps: 100_000, eval_interval: 0, checkpoint_interval: 0 } } } as never,
    });

  const stepsRun = async (id: string) => {
    const res = await p.api(`/fine_tuning/jobs/${id}/metrics?max_points=10000`);
    return ((await res.json()) as { data: Array<{ step: number; train_loss: number | null }> }).data.filter((d) => d.train_loss !== null);
  };

  it('cancels a running job within seconds', async () => {
    const job = await longJob();
    await eventually(async () => ((await stepsRun(job.id)).length > 0 ? true : undefined));
    const cancelled = await client.fineTuning.jobs.cancel(job.id);
    expect(cancelled.status).toBe('cancelled');
    const t0 = Date.now();
    await eventually(async () => {
      const events = await client.fineTuning.jobs.listEvents(job.id, { limit: 5 });
      return events.data.some((e) => e.message.startsWith('Training stopped at step')) ? true : undefined;
    }, 10_000);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const after = (await stepsRun(job.id)).length;
    await new Promise((r) => setTimeout(r, 1000));
    expect((await stepsRun(job.id)).length).toBe(after); // no more steps
    await expect(client.fineTuning.jobs.cancel(job.id)).rejects.toMatchObject({ status: 409 });
  });

  it('pauses with a checkpoint and resumes from the same step', async () => {
    const job = await longJob();
    await eventually(async () => ((await stepsRun(job.id)).length >= 2 ? true : undefined));
    expect((await client.fineTuning.jobs.pause(job.id)).status).toBe('paused');
    const pausedAt = await eventually(async () => {
      const events = await client.fineTuning.jobs.listEvents(job.id, { limit: 5 });
      const m = events.data.map((e) => /^Paused at step (\d+)/.exec(e.message)).find(Boolean);
      return m ? Number(m[1]) : undefined;
    }, 10_000);
    // running time stands still while the job is paused (time paused is not duration)
    const runningSeconds = async () => ((await p.api(`/fine_tuning/jobs/${job.id}`).then((r) => r.json())) as { running_seconds: number }).running_seconds;
    const before = await runningSeconds();
    await new Promise((r) => setTimeout(r, 1500));
    expect(before).toBeGreaterThan(0);
    expect(await runningSeconds()).toBe(before);
    expect((await client.fineTuning.jobs.resume(job.id)).status).toBe('queued');
    const resumedAt = await eventually(async () => {
      const events = await client.fineTuning.jobs.listEvents(job.id, { limit: 10 });
      const m = events.data.map((e) => /^Resumed training at step (\d+)/.exec(e.message)).find(Boolean);
      return m ? Number(m[1]) : undefined;
    }, 30_000);
    expect(resumedAt).toBe(pausedAt);
    // let the resumed attempt train past the pause (and run long enough to show in the 0.1 s rounding)
    await eventually(async () => ((await stepsRun(job.id)).some((d) => d.step > (pausedAt ?? 0)) ? true : undefined), 30_000);
    await new Promise((r) => setTimeout(r, 300));
    await client.fineTuning.jobs.cancel(job.id);
    const settled = (await p.api(`/fine_tuning/jobs/${job.id}`).then((r) => r.json())) as { running_seconds: number; created_at: number; finished_at: number };
    expect(settled.running_seconds).toBeGreaterThan(before);
    expect(settled.running_seconds).toBeLessThan(settled.finished_at - settled.created_at); // the 1.5 s paused (whole seconds) are not counted
  });
});
