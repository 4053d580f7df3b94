// Fine-tuning for real, end to end over HTTP: pretrain a tiny base, LoRA fine-tune it on
// prompt/completion data, chat with it, download the adapter and the merged model and load both
// back; import a GPT-2 folder written here; n / logprobs / echo; embeddings and fill-mask.
import { createHash } from 'node:crypto';
import { encodeSafetensors, type NamedTensor } from '@crucible/model-files';
import { keys } from '@crucible/storage';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pretrainTinyBase } from '../support/base-model';
import { shakespeare, untarGz } from '../support/data';
import { eventually, startPlatform, type TestPlatform, waitForJobStatus } from '../support/platform';

let p: TestPlatform;
let client: OpenAI;
let baseId: string;
let loraId: string;

beforeAll(async () => {
  p = await startPlatform();
  client = p.openai();
});
afterAll(async () => {
  await p?.close();
});

/** Tensors of a safetensors file, parsed here (8-byte length, JSON header, raw little-endian data). */
function readSafetensors(buf: Buffer): Map<string, { shape: number[]; data: Float32Array; raw: Buffer }> {
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { shape: number[]; data: Float32Array; raw: Buffer }>();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const raw = Buffer.from(buf.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]));
    out.set(name, { shape: e.shape, data: new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4), raw });
  }
  return out;
}

const PAIRS = [
  ['Who comes here?', ' The king, my lord.'],
  ['What say you?', ' Nothing, good sir.'],
  ['Where is he?', ' Gone to the tower.'],
  ['Shall we go?', ' Ay, let us away.'],
] as const;

async function download(model: string, variant = 'full'): Promise<Map<string, Buffer>> {
  const res = await p.api(`/models/${encodeURIComponent(model)}/download?variant=${variant}`);
  expect(res.status).toBe(200);
  return untarGz(new Uint8Array(await res.arrayBuffer()));
}

async function importFiles(name: string, files: Array<[string, Uint8Array]>): Promise<Response> {
  const form = new FormData();
  form.append('name', name);
  for (const [fname, data] of files) form.append('file', new Blob([data]), fname);
  return p.api('/models', { method: 'POST', body: form });
}

describe('LoRA fine-tuning through the API', () => {
  it('pretrains a tiny base model', async () => {
    baseId = await pretrainTinyBase(client);
  });

  it('refuses a dataset with characters the base tokenizer lacks, naming them and their line', async () => {
    const rows = [JSON.stringify({ prompt: 'Who?', completion: ' A' }), JSON.stringify({ prompt: 'Count: 7', completion: ' {seven}' })].join('\n');
    const f = await client.files.create({ file: await toFile(Buffer.from(rows), 'digits.jsonl'), purpose: 'fine-tune' });
    const err = await client.fineTuning.jobs.create({ model: baseId, training_file: f.id }).catch((e) => e);
    expect(err.status).toBe(400);
    expect(err.error).toMatchObject({ code: 'invalid_file', param: 'training_file' });
    expect(err.error.message).toMatch(/"7" \(line 2\)/);
    // the file's statistics against that base say so before any job (the dashboard's check)
    await client.files.waitForProcessing(f.id);
    const stats = (await (await p.api(`/files/${f.id}/stats?model=${encodeURIComponent(baseId)}`)).json()) as {
      tokens: { unknown_characters: Array<{ char: string; line: number }> };
    };
    expect(stats.tokens.unknown_characters).toContainEqual({ char: '7', line: 2 });
    expect(stats.tokens.unknown_characters.map((u) => u.char)).toEqual(expect.arrayContaining(['{', '}']));
  });

  it('trains only LoRA matrices, learns the answers, and keeps the base model unchanged', async () => {
    const rows = Array.from({ length: 48 }, (_, i) => {
      const [prompt, completion] = PAIRS[i % PAIRS.length] as readonly [string, string];
      return JSON.stringify({ prompt, completion });
    }).join('\n');
    const f = await client.files.create({ file: await toFile(Buffer.from(rows), 'sft.jsonl'), purpose: 'fine-tune' });
    const baseBefore = createHash('sha256')
      .update((await download(baseId)).get('model.safetensors') as Buffer)
      .digest('hex');
    const job = await client.fineTuning.jobs.create({
      model: baseId,
      training_file: f.id,
      suffix: 'lora',
      method: {
        type: 'supervised',
        supervised: {
          peft: { type: 'lora', rank: 8, alpha: 16, target_modules: ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'] },
          hyperparameters: { max_steps: 200, batch_size: 8, block_size: 32, eval_interval: 0, eval_batches: 2, checkpoint_interval: 50 },
        },
      } as never,
    });
    const done = await waitForJobStatus(client, job.id, ['succeeded'], 300_000);
    loraId = done.fine_tuned_model as string;
    expect(loraId).toMatch(/^ft:gpt-nano:lora:/);
    expect(done.hyperparameters).toMatchObject({ learning_rate: 5e-3, peft: { type: 'lora', rank: 8, alpha: 16 } });
    expect((done as unknown as { method: { supervised: { peft: unknown } } }).method.supervised.peft).toMatchObject({ type: 'lora', rank: 8 });
    // checkpoints hold the adapter only: a few hundred kB for a model of a few MB
    const [ck] = await p.sql<{ storage_key: string }>('SELECT storage_key FROM job_checkpoints WHERE job_id = $1 ORDER BY step LIMIT 1', [job.id]);
    const ckBytes = await p.deps.storage.get(ck?.storage_key as string);
    const baseBytes = (await download(baseId)).get('model.safetensors') as Buffer;
    expect(ckBytes.length).toBeLessThan(baseBytes.length / 2);
    expect([...readSafetensors(ckBytes).keys()].filter((n) => n.startsWith('model.')).every((n) => n.includes('.lora_'))).toBe(true);
    // the base model's stored weights are untouched
    expect(createHash('sha256').update(baseBytes).digest('hex')).toBe(baseBefore);
    // it learned the answers: greedy completions match most of them exactly, and the base matches none
    const exact = async (model: string) => {
      let n = 0;
      for (const [prompt, completion] of PAIRS)
        if ((await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0 })).choices[0]?.text === completion) n++;
      return n;
    };
    expect(await exact(loraId)).toBeGreaterThanOrEqual(2);
    expect(await exact(baseId)).toBe(0);
    // served unmerged: the adapter on the base's cache entry, which the base's own requests share;
    // the adapter costs its own bytes (8 x (in + out) per adapted matrix), not a copy of the base
    const loaded = p.worker?.models() ?? [];
    expect(loaded.map((e) => e.kind).sort()).toEqual(['adapter', 'model']);
    const adapterEntry = loaded.find((e) => e.kind === 'adapter');
    const baseEntry = loaded.find((e) => e.kind === 'model');
    expect(adapterEntry?.key).toContain(encodeURIComponent(loraId));
    expect(baseEntry?.key).toContain(encodeURIComponent(baseId));
    const perLayer = 8 * (128 + 384) + 8 * (128 + 128) + 8 * (128 + 512) + 8 * (512 + 128);
    expect(adapterEntry?.bytes).toBe(4 * perLayer * 4);
    expect(baseEntry?.bytes).toBeGreaterThan(10 * (adapterEntry?.bytes ?? 0));
    // the job's last checkpoint (step 200, what the model was published from) is served the same
    // way: its adapter tensors on the same base entry, answering as the model does
    const last = (await client.fineTuning.jobs.checkpoints.list(job.id)).data.find((c) => c.step_number === 200);
    const ckName = last?.fine_tuned_model_checkpoint as string;
    expect(ckName).toMatch(/:ckpt-step-200$/);
    for (const [prompt] of PAIRS.slice(0, 2)) {
      const ask = (model: string) => client.completions.create({ model, prompt, max_tokens: 12, temperature: 0 });
      expect((await ask(ckName)).choices[0]?.text).toBe((await ask(loraId)).choices[0]?.text);
    }
    const after = p.worker?.models() ?? [];
    expect(after.filter((e) => e.kind === 'model')).toHaveLength(1);
    expect(after.filter((e) => e.kind === 'adapter').map((e) => e.bytes)).toEqual([adapterEntry?.bytes, adapterEntry?.bytes]);
    const model = await client.models.retrieve(loraId);
    expect(model).toMatchObject({ source: 'trained', peft: { type: 'lora', rank: 8 }, base_model: baseId });
  });

  it('chats with the fine-tuned model, with log-probabilities', async () => {
    const chat = await client.chat.completions.create({
      model: loraId,
      messages: [{ role: 'user', content: 'Who comes here?' }],
      max_tokens: 12,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
    });
    const choice = chat.choices[0];
    expect(choice?.message.role).toBe('assistant');
    const lp = choice?.logprobs?.content ?? [];
    expect(lp.length).toBe(chat.usage?.completion_tokens);
    for (const t of lp) {
      expect(t.top_logprobs).toHaveLength(3);
      // greedy: the chosen token is the most likely one
      expect(t.logprob).toBeCloseTo(t.top_logprobs[0]?.logprob as number, 5);
      expect(t.logprob).toBeLessThanOrEqual(0);
    }
    expect(lp.map((t) => t.token).join('')).toBe(choice?.message.content);
  });

  it('downloads the adapter in PEFT layout and the merged model, and both load back', async () => {
    const adapter = await download(loraId, 'adapter');
    expect([...adapter.keys()]).toEqual(expect.arrayContaining(['adapter_model.safetensors', 'adapter_config.json', 'tokenizer.json']));
    expect(adapter.has('model.safetensors')).toBe(false);
    const cfg = JSON.parse((adapter.get('adapter_config.json') as Buffer).toString('utf8'));
    expect(cfg).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 8, lora_alpha: 16, fan_in_fan_out: true, base_model_name_or_path: baseId });
    expect(cfg.target_modules).toEqual(['c_attn', 'attn.c_proj', 'c_fc', 'mlp.c_proj']);
    const lora = readSafetensors(adapter.get('adapter_model.safetensors') as Buffer);
    expect(lora.get('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight')?.shape).toEqual([8, 128]);
    expect(lora.get('base_model.model.transformer.h.0.attn.c_attn.lora_B.weight')?.shape).toEqual([384, 8]);
    expect(lora.get('base_model.model.transformer.h.3.mlp.c_proj.lora_B.weight')?.shape).toEqual([128, 8]);

    // PEFT's merge for GPT-2's Conv1D (fan_in_fan_out): W + (alpha / r) (B A)^T, done here by hand
    const base = readSafetensors((await download(baseId)).get('model.safetensors') as Buffer);
    const merged = await download(loraId);
    const mergedW = readSafetensors(merged.get('model.safetensors') as Buffer);
    const W = base.get('transformer.h.1.attn.c_proj.weight') as { data: Float32Array };
    const A = lora.get('base_model.model.transformer.h.1.attn.c_proj.lora_A.weight') as { data: Float32Array }; // [r, in]
    const B = lora.get('base_model.model.transformer.h.1.attn.c_proj.lora_B.weight') as { data: Float32Array }; // [out, r]
    const M = mergedW.get('transformer.h.1.attn.c_proj.weight') as { data: Float32Array };
    let maxErr = 0;
    let maxDelta = 0;
    for (let i = 0; i < 128; i++)
      for (let o = 0; o < 128; o++) {
        let d = 0;
        for (let k = 0; k < 8; k++) d += (B.data[o * 8 + k] as number) * (A.data[k * 128 + i] as number);
        const want = (W.data[i * 128 + o] as number) + 2 * d;
        maxErr = Math.max(maxErr, Math.abs(want - (M.data[i * 128 + o] as number)));
        maxDelta = Math.max(maxDelta, Math.abs(2 * d));
      }
    expect(maxDelta).toBeGreaterThan(1e-3); // the adapter learned something
    expect(maxErr).toBeLessThan(1e-5);
    expect(JSON.parse((merged.get('config.json') as Buffer).toString('utf8')).model_type).toBe('gpt2');

    // the merged folder, imported as a new model, answers exactly like the LoRA model
    const res = await importFiles(
      'merged-back',
      [...merged].map(([n, d]) => [n, new Uint8Array(d)] as [string, Uint8Array]),
    );
    expect(res.status, await res.clone().text()).toBe(200);
    const imported = (await res.json()) as { id: string; source: string };
    expect(imported.source).toBe('imported');
    for (const [prompt] of PAIRS.slice(0, 2)) {
      const a = await client.completions.create({ model: loraId, prompt, max_tokens: 16, temperature: 0 });
      const b = await client.completions.create({ model: imported.id, prompt, max_tokens: 16, temperature: 0 });
      expect(b.choices[0]?.text).toBe(a.choices[0]?.text);
    }
  });

  it('fine-tunes from a checkpoint by its name, with bottleneck adapters', async () => {
    const ckpts = await client.fineTuning.jobs.checkpoints.list(
      (await p.sql<{ id: string }>('SELECT id FROM jobs WHERE fine_tuned_model = $1', [loraId]))[0]?.id as string,
    );
    const ckName = ckpts.data[0]?.fine_tuned_model_checkpoint as string;
    expect(ckName).toMatch(/:ckpt-step-\d+$/);
    const f = await client.files.create({
      file: await toFile(
        Buffer.from(
          Array.from({ length: 12 }, () => PAIRS.map(([prompt, completion]) => JSON.stringify({ prompt, completion })))
            .flat()
            .join('\n'),
        ),
        'few.jsonl',
      ),
      purpose: 'fine-tune',
    });
    const job = await client.fineTuning.jobs.create({
      model: ckName,
      training_file: f.id,
      method: {
        type: 'supervised',
        supervised: { peft: { type: 'adapter', size: 8 }, hyperparameters: { max_steps: 5, batch_size: 4, block_size: 32, eval_interval: 0, eval_batches: 1 } },
      } as never,
    });
    const done = await waitForJobStatus(client, job.id);
    expect(done.fine_tuned_model).toMatch(/^ft:gpt-nano:crucible:/);
    const files = await download(done.fine_tuned_model as string);
    // bottleneck adapters have no GPT-2 equivalent: the config says so instead of posing as gpt2
    expect(JSON.parse((files.get('config.json') as Buffer).toString('utf8'))).toMatchObject({ model_type: 'crucible_gpt2_adapters' });
    const r = await client.completions.create({ model: done.fine_tuned_model as string, prompt: 'Who comes here?', max_tokens: 4 });
    expect(r.choices).toHaveLength(1);
  });

  it('packs short examples per sequence when asked (supervised only), and learns the answers so', async () => {
    const rows = Array.from({ length: 48 }, (_, i) => {
      const [prompt, completion] = PAIRS[i % PAIRS.length] as readonly [string, string];
      return JSON.stringify({ prompt, completion });
    }).join('\n');
    const f = await client.files.create({ file: await toFile(Buffer.from(rows), 'packed.jsonl'), purpose: 'fine-tune' });
    const hyperparameters = { packing: true, max_steps: 60, batch_size: 4, block_size: 32, eval_interval: 0, eval_batches: 2 };
    const job = await client.fineTuning.jobs.create({
      model: baseId,
      training_file: f.id,
      method: { type: 'supervised', supervised: { hyperparameters } } as never,
    });
    const done = await waitForJobStatus(client, job.id);
    expect(done.hyperparameters).toMatchObject({ packing: true });
    const metrics = (await (await p.api(`/fine_tuning/jobs/${job.id}/metrics`)).json()) as {
      data: Array<{ train_loss: number | null; valid_mean_token_accuracy: number | null }>;
    };
    const train = metrics.data.map((m) => m.train_loss).filter((x): x is number => x !== null);
    expect(train.at(-1) as number).toBeLessThan((train[0] as number) / 3);
    expect(metrics.data.at(-1)?.valid_mean_token_accuracy).toBeGreaterThan(0.8);
    const refused = await client.fineTuning.jobs
      .create({ model: 'gpt-nano', training_file: f.id, method: { type: 'pretrain', pretrain: { hyperparameters: { packing: true } } } as never })
      .catch((e) => e);
    expect(refused.status).toBe(400);
    expect(refused.error.param).toBe('method.pretrain.hyperparameters.packing');
  });
});

describe('importing a GPT-2 folder', () => {
  const C = 16;
  const V = 12;
  const P = 16;
  const tensors = new Map<string, NamedTensor>();
  let seed = 1;
  const rand = (n: number, scale: number) =>
    Float32Array.from({ length: n }, () => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return ((seed / 2 ** 32) * 2 - 1) * scale;
    });
  const put = (name: string, shape: number[], scale = 0.3, offset = 0) =>
    tensors.set(name, {
      dtype: 'F32',
      shape,
      data: rand(
        shape.reduce((a, b) => a * b, 1),
        scale,
      ).map((v) => v + offset),
    });
  put('wte.weight', [V, C]);
  put('wpe.weight', [P, C]);
  for (let l = 0; l < 2; l++) {
    for (const ln of ['ln_1', 'ln_2']) {
      put(`h.${l}.${ln}.weight`, [C], 0.1, 1);
      put(`h.${l}.${ln}.bias`, [C]);
    }
    put(`h.${l}.attn.c_attn.weight`, [C, 3 * C]);
    put(`h.${l}.attn.c_attn.bias`, [3 * C]);
    put(`h.${l}.attn.c_proj.weight`, [C, C]);
    put(`h.${l}.attn.c_proj.bias`, [C]);
    put(`h.${l}.mlp.c_fc.weight`, [C, 4 * C]);
    put(`h.${l}.mlp.c_fc.bias`, [4 * C]);
    put(`h.${l}.mlp.c_proj.weight`, [4 * C, C]);
    put(`h.${l}.mlp.c_proj.bias`, [C]);
    tensors.set(`h.${l}.attn.bias`, { dtype: 'F32', shape: [1, 1, P, P], data: new Float32Array(P * P).fill(1) }); // the Hub's mask buffer
  }
  put('ln_f.weight', [C], 0.1, 1);
  put('ln_f.bias', [C]);
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  const config = { model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], n_embd: C, n_head: 2, n_layer: 2, n_positions: P, vocab_size: V, eos_token_id: 11 };
  // a character-level tokenizer.json as Hugging Face writes one: BPE without merges, specials in the vocab
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: 11, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab: Object.fromEntries([...'abcdefghijk', '<|endoftext|>'].map((c, i) => [c, i])),
      merges: [],
    },
  };
  const weights = encodeSafetensors(tensors, { format: 'pt' });

  it('imports separate files, serves it, and exports the same tensors byte for byte', async () => {
    const res = await importFiles('tiny', [
      ['model.safetensors', weights],
      ['config.json', enc(config)],
      ['tokenizer.json', enc(tokenizer)],
    ]);
    expect(res.status, await res.clone().text()).toBe(200);
    const m = (await res.json()) as { id: string; source: string; arch: string };
    expect(m).toMatchObject({ source: 'imported', arch: 'gpt' });
    expect(m.id).toMatch(/^imported:tiny:/);
    const files = await download(m.id);
    const back = readSafetensors(files.get('model.safetensors') as Buffer);
    for (const [name, t] of tensors) {
      if (name.endsWith('attn.bias')) continue;
      const b = back.get(name) ?? back.get(`transformer.${name}`);
      expect(b?.raw.equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), name).toBe(true);
    }
    expect(files.has('tokenizer_config.json')).toBe(true);
    const r = await client.completions.create({ model: m.id, prompt: 'abc', max_tokens: 5, temperature: 0, n: 2, logprobs: 2, echo: true });
    expect(r.choices).toHaveLength(2);
    expect(r.choices[0]?.text).toBe(r.choices[1]?.text); // greedy: the same for both
    const lp = r.choices[0]?.logprobs as { tokens: string[]; token_logprobs: Array<number | null>; text_offset: number[] };
    expect(r.choices[0]?.text.startsWith('abc')).toBe(true);
    expect(lp.tokens.slice(0, 3)).toEqual(['a', 'b', 'c']);
    expect(lp.token_logprobs[0]).toBeNull();
    expect(lp.token_logprobs.slice(1).every((v) => typeof v === 'number' && v <= 0)).toBe(true);
    expect(lp.text_offset.slice(0, 3)).toEqual([0, 1, 2]);
    // fine-tuning an import keeps names flat
    const f = await client.files.create({ file: await toFile(Buffer.from('abcdefghijk'.repeat(40)), 'abc.txt'), purpose: 'fine-tune' });
    const job = await client.fineTuning.jobs.create({
      model: m.id,
      training_file: f.id,
      method: { type: 'pretrain', pretrain: { hyperparameters: { max_steps: 3, batch_size: 2, block_size: 16, eval_interval: 0, eval_batches: 1 } } } as never,
    });
    expect((await waitForJobStatus(client, job.id)).fine_tuned_model).toMatch(/^ft:tiny:crucible:/);
  });

  it('imports the same folder as a .tar.gz', async () => {
    const tiny = (await client.models.list()).data.find((x) => x.id.startsWith('imported:tiny:'));
    const res = await p.api(`/models/${encodeURIComponent(tiny?.id as string)}/download`);
    const form = new FormData();
    form.append('name', 'tiny-again');
    form.append('file', new Blob([new Uint8Array(await res.arrayBuffer())]), 'tiny.tar.gz');
    const imp = await p.api('/models', { method: 'POST', body: form });
    expect(imp.status, await imp.clone().text()).toBe(200);
    expect(((await imp.json()) as { id: string }).id).toMatch(/^imported:tiny-again:/);
  });

  it('refuses a folder whose parts disagree, leaving no record and no object', async () => {
    const before = await p.deps.storage.list(`projects/${p.projectId}/models/`);
    const res = await importFiles('broken', [
      ['model.safetensors', weights],
      ['config.json', enc({ ...config, n_embd: 32 })],
      ['tokenizer.json', enc(tokenizer)],
    ]);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string; message: string; param: string } }).error).toMatchObject({
      code: 'invalid_model',
      param: 'model.safetensors',
      message: expect.stringMatching(/transformer.wte.weight has shape \[12,16\], config.json implies \[12,32\]/),
    });
    expect(await p.deps.storage.list(`projects/${p.projectId}/models/`)).toEqual(before);
    expect((await client.models.list()).data.some((x) => x.id.startsWith('imported:broken'))).toBe(false);
    expect(keys.modelPrefix(p.projectId, 'x')).toMatch(/models/);
  });
});

describe('completions never fail because of their prompt', () => {
  it('answers a prompt with characters outside a character vocabulary', async () => {
    const r = await client.completions.create({ model: baseId, prompt: 'Year 2026: 日本 ✓', max_tokens: 4 });
    expect(r.choices[0]?.finish_reason).toMatch(/stop|length/);
  });

  it('refuses OpenAI parameters it does not implement, naming them', async () => {
    const err = await client.completions.create({ model: baseId, prompt: 'a', presence_penalty: 0.5 }).catch((e) => e);
    expect(err.status).toBe(400);
    expect(err.error).toMatchObject({ code: 'unsupported_parameter', param: 'presence_penalty' });
  });
});

describe('masked LMs through the API', () => {
  let bertId: string;
  it('trains a bert model, embeds text and fills masks', async () => {
    const f = await client.files.create({ file: await toFile(Buffer.from(shakespeare(20_000)), 'mlm.txt'), purpose: 'fine-tune' });
    const job = await client.fineTuning.jobs.create({
      model: 'bert-mini',
      training_file: f.id,
      method: { type: 'mlm', mlm: { hyperparameters: { max_steps: 4, batch_size: 2, block_size: 32, eval_interval: 0, eval_batches: 1 } } } as never,
    });
    bertId = (await waitForJobStatus(client, job.id)).fine_tuned_model as string;
    const e = await client.embeddings.create({ model: bertId, input: ['To be, or not to be', 'that is the question'] });
    expect(e.data).toHaveLength(2);
    expect(e.data[0]?.embedding).toHaveLength(256);
    expect(e.usage.prompt_tokens).toBe('To be, or not to bethat is the question'.length);
    const b64 = await p.api('/embeddings', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: bertId, input: 'abc', encoding_format: 'base64', pooling: 'cls' }),
    });
    const bytes = Buffer.from(((await b64.json()) as { data: Array<{ embedding: string }> }).data[0]?.embedding as string, 'base64');
    expect(bytes.length).toBe(256 * 4);
    const fm = await p.api('/fill_mask', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: bertId, input: 'To b<|mask|>, or not', top_k: 3 }),
    });
    expect(fm.status).toBe(200);
    const out = (await fm.json()) as { data: Array<{ masks: Array<{ position: number; candidates: Array<{ score: number }> }> }> };
    expect(out.data[0]?.masks[0]?.position).toBe(4);
    const scores = out.data[0]?.masks[0]?.candidates.map((c) => c.score) ?? [];
    expect(scores).toHaveLength(3);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    const noMask = await p.api('/fill_mask', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: bertId, input: ['x', 'no mask here'] }),
    });
    expect(noMask.status).toBe(400);
    expect(((await noMask.json()) as { error: { param: string } }).error.param).toBe('input[0]');
  });

  it('evaluates a bert model by its masked-token loss and accuracy', async () => {
    const f = await client.files.create({ file: await toFile(Buffer.from(shakespeare(3000)), 'held.txt'), purpose: 'evals' as 'fine-tune' });
    const created = await p.api('/evaluations', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: bertId, file: f.id, seed: 5 }),
    });
    const { id } = (await created.json()) as { id: string };
    const done = await eventually(async () => {
      const e = (await (await p.api(`/evaluations/${id}`)).json()) as { status: string; metrics: Record<string, number | null>; samples: unknown[] };
      return e.status === 'queued' || e.status === 'running' ? undefined : e;
    }, 120_000);
    expect(done.status).toBe('succeeded');
    // about 15% of the 3000 tokens are masked and scored; no answers, no generation for a masked LM
    expect(done.metrics.tokens).toBeGreaterThan(300);
    expect(done.metrics.tokens).toBeLessThan(600);
    expect(done.metrics.perplexity).toBeCloseTo(Math.exp(done.metrics.loss as number), 9);
    expect(done.metrics).toMatchObject({ answer_loss: null, exact_match: null });
    expect(done.samples).toEqual([]);
  });
});
