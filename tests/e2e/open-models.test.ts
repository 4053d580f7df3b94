// Open models in Hugging Face layout, built here at test time: a Qwen2-shaped decoder (q/k/v
// biases, grouped-query attention, an embedding padded past the tokenizer, as real Qwen models
// have) sharded in two BF16 files with their index, imported through POST /v1/models, served by a
// worker (the same greedy tokens and log-probabilities as the trainer computes from the same
// BF16-rounded weights in this process), and given back byte for byte. Every malformed import is a
// 400 invalid_model naming the field and its value, and leaves nothing in storage.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Crucible } from '@crucible/sdk';
import { BpeTokenizer, decoderConfigFromHf, initBackend, sample, Transformer, type Weights } from '@crucible/trainer';
import { Template } from '@huggingface/jinja';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fineTuneBase } from '../../scripts/quickstart-base';
import { SHAKESPEARE, untarGz } from '../support/data';
import { type ErrorBodyShape, leftovers } from '../support/leftovers';
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

const tokenizer = BpeTokenizer.train(SHAKESPEARE.slice(0, 50_000), { vocabSize: 300, specialTokens: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] });
const VOCAB = tokenizer.vocabSize + 20; // padded past the tokenizer, as Qwen's 151,936 rows for 151,665 ids
const CONFIG = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  hidden_size: 32,
  intermediate_size: 64,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_hidden_layers: 2,
  vocab_size: VOCAB,
  max_position_embeddings: 128,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
};

/** float32 -> bfloat16 by truncation (the top 16 bits), written independently of Crucible's reader. */
function bf16(values: Float32Array): { bytes: Uint8Array; rounded: Float32Array } {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  const rounded = new Float32Array(values.length);
  const back = new Uint32Array(rounded.buffer);
  for (let i = 0; i < values.length; i++) {
    out[i] = (bits[i] as number) >>> 16;
    back[i] = (out[i] as number) << 16;
  }
  return { bytes: new Uint8Array(out.buffer), rounded };
}

/** A safetensors file from (name, dtype, shape, bytes), laid out here from the format's description. */
function safetensors(tensors: Array<[string, string, number[], Uint8Array]>): Buffer {
  const header: Record<string, unknown> = {};
  let at = 0;
  for (const [name, dtype, shape, bytes] of tensors) {
    header[name] = { dtype, shape, data_offsets: [at, at + bytes.byteLength] };
    at += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, Buffer.from(json), ...tensors.map((t) => Buffer.from(t[3]))]);
}

/** The folder: random weights for the config's parameters, BF16 in two shards, and the model as the trainer builds it from the rounded values. */
function folder(config: Record<string, unknown> = CONFIG) {
  const mc = decoderConfigFromHf(config);
  const shell = Transformer.create(mc, 3);
  const rounded: Weights = new Map();
  const tensors: Array<[string, string, number[], Uint8Array]> = [];
  for (const [name, v] of shell.params) {
    const scale = /norm\.weight$/.test(name) ? 1 : 12; // confident predictions: greedy decoding is stable
    const values = Float32Array.from(v.dataSync() as Float32Array, (x) => (/norm\.weight$/.test(name) ? 1 + x : x * scale));
    const b = bf16(values);
    rounded.set(name, { shape: v.shape.slice(), data: b.rounded });
    tensors.push([name, 'BF16', v.shape.slice(), b.bytes]);
  }
  shell.dispose();
  const half = Math.ceil(tensors.length / 2);
  const shards = [tensors.slice(0, half), tensors.slice(half)];
  const names = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  const weightMap = Object.fromEntries(shards.flatMap((s, i) => s.map(([n]) => [n, names[i]])));
  const files: Record<string, Buffer> = {
    'config.json': Buffer.from(JSON.stringify(config, null, 2)),
    'tokenizer.json': Buffer.from(JSON.stringify(tokenizer.toJSON())),
    'generation_config.json': Buffer.from(JSON.stringify({ eos_token_id: [tokenizer.special('im_end'), tokenizer.special('eot')] })),
    'model.safetensors.index.json': Buffer.from(JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap })),
    [names[0] as string]: safetensors(shards[0] ?? []),
    [names[1] as string]: safetensors(shards[1] ?? []),
  };
  return { files, rounded, config: mc };
}

interface F32 {
  shape: number[];
  data: Float32Array;
}

/** The F32 tensors of a safetensors file, read here from the format's description. */
function readF32(buf: Buffer): Record<string, F32> {
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString()) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out: Record<string, F32> = {};
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    expect(e.dtype).toBe('F32');
    const bytes = buf.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]);
    out[name] = { shape: e.shape, data: new Float32Array(Uint8Array.from(bytes).buffer) };
  }
  return out;
}

async function importFiles(files: Record<string, Uint8Array>): Promise<{ status: number; body: { id: string; arch: string } & ErrorBodyShape }> {
  const form = new FormData();
  for (const [name, data] of Object.entries(files)) form.append('file', new Blob([Buffer.from(data)]), name);
  const res = await p.api('/models', { method: 'POST', body: form });
  return { status: res.status, body: (await res.json()) as { id: string; arch: string } & ErrorBodyShape };
}

describe('a Qwen2-shaped folder, sharded in BF16', () => {
  const made = folder();
  let id = '';

  it('imports as a llama-architecture model', async () => {
    const r = await importFiles(made.files);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.arch).toBe('llama');
    id = r.body.id;
  });

  it('is served: the same greedy tokens and log-probabilities as the trainer computes from the same weights', async () => {
    const prompt = 'ROMEO:\nWhat say';
    const served = await client.completions.create({ model: id, prompt, max_tokens: 12, temperature: 0, logprobs: 2 });
    const local = Transformer.fromWeights(made.config, new Map(made.rounded));
    const ours = await sample(local, tokenizer, prompt, {
      maxNewTokens: 12,
      temperature: 0,
      logprobs: 2,
      stopTokens: [tokenizer.special('im_end') as number, tokenizer.special('eot') as number],
    });
    local.dispose();
    expect(served.choices[0]?.text).toBe(ours.text);
    const lps = served.choices[0]?.logprobs?.token_logprobs ?? [];
    expect(lps.length).toBe(ours.tokens.length);
    lps.forEach((lp, i) => {
      expect(lp).toBeCloseTo(ours.logprobs?.[i]?.logprob as number, 3);
    });
  });

  it('is refused for reinforcement at creation: imported without a chat template, it has none to render prompts with', async () => {
    const line = JSON.stringify({ messages: [{ role: 'user', content: 'Q1:' }], answer: 'yes' });
    const f = await client.files.create({ file: await toFile(Buffer.from(`${line}\n${line}\n`), 'rft.jsonl'), purpose: 'fine-tune' });
    await eventually(async () => ((await client.files.retrieve(f.id)).status === 'processed' ? true : undefined));
    const grader = { type: 'string_check', name: 'g', input: '{{sample.output_text}}', reference: '{{item.answer}}', operation: 'eq' } as const;
    const err = await client.fineTuning.jobs
      .create({ model: id, training_file: f.id, method: { type: 'reinforcement', reinforcement: { grader } } })
      .then(() => undefined)
      .catch((e: { status: number; error: ErrorBodyShape['error'] }) => e);
    expect(err?.status).toBe(400);
    expect(err?.error).toMatchObject({ code: 'unsupported_method', param: 'model' });
    expect(err?.error.message).toMatch(/no chat template/);
  });

  it('fine-tunes in full (supervised): the loss falls, and the result is a folder transformers loads, which imports again', async () => {
    const rows = Array.from({ length: 24 }, (_, i) => JSON.stringify({ prompt: `Q${i % 3}:`, completion: [' yes', ' no', ' maybe'][i % 3] })).join('\n');
    const f = await client.files.create({ file: await toFile(Buffer.from(rows), 'qa.jsonl'), purpose: 'fine-tune' });
    const job = await client.fineTuning.jobs.create({
      model: id,
      training_file: f.id,
      suffix: 'qa',
      method: {
        type: 'supervised',
        supervised: {
          hyperparameters: { max_steps: 12, batch_size: 4, block_size: 16, learning_rate: 3e-3, eval_interval: 0, eval_batches: 1, log_interval: 1 },
        },
      } as never,
    });
    const done = await waitForJobStatus(client, job.id, ['succeeded'], 240_000);
    const losses = (
      await p.sql<{ train_loss: number }>('SELECT train_loss FROM job_metrics WHERE job_id = $1 AND train_loss IS NOT NULL ORDER BY step', [job.id])
    ).map((r) => Number(r.train_loss));
    expect(losses.length).toBeGreaterThan(2);
    expect(losses.at(-1) as number).toBeLessThan(losses[0] as number);
    const res = await p.api(`/models/${done.fine_tuned_model}/download`);
    const out = untarGz(new Uint8Array(await res.arrayBuffer()));
    const cfg = JSON.parse((out.get('config.json') as Buffer).toString());
    expect(cfg).toMatchObject({
      model_type: 'qwen2',
      architectures: ['Qwen2ForCausalLM'],
      hidden_size: 32,
      num_key_value_heads: 2,
      vocab_size: VOCAB,
      tie_word_embeddings: true,
    });
    const again = await importFiles(Object.fromEntries(out));
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    const a = await client.completions.create({ model: done.fine_tuned_model as string, prompt: 'Q1:', max_tokens: 4, temperature: 0 });
    const b = await client.completions.create({ model: again.body.id, prompt: 'Q1:', max_tokens: 4, temperature: 0 });
    expect(b.choices[0]?.text).toBe(a.choices[0]?.text);
  });

  it('LoRA with Hugging Face module names and activation checkpointing: the adapter in PEFT layout, and the merged download equals a merge done by hand', async () => {
    const rows = Array.from({ length: 24 }, (_, i) => JSON.stringify({ prompt: `Q${i % 3}:`, completion: [' yes', ' no', ' maybe'][i % 3] })).join('\n');
    const f = await client.files.create({ file: await toFile(Buffer.from(rows), 'qa-lora.jsonl'), purpose: 'fine-tune' });
    const job = await client.fineTuning.jobs.create({
      model: id,
      training_file: f.id,
      suffix: 'lora',
      method: {
        type: 'supervised',
        supervised: {
          peft: { type: 'lora', rank: 4, alpha: 8, target_modules: ['q_proj', 'v_proj', 'down_proj'] },
          // each layer recomputed in the backward pass: the same training, less memory
          hyperparameters: {
            max_steps: 8,
            batch_size: 4,
            block_size: 16,
            learning_rate: 1e-2,
            eval_interval: 0,
            eval_batches: 1,
            activation_checkpointing: true,
          },
        },
      } as never,
    });
    expect((job.method as unknown as { supervised: { hyperparameters: Record<string, unknown> } }).supervised.hyperparameters.activation_checkpointing).toBe(
      true,
    );
    const done = await waitForJobStatus(client, job.id, ['succeeded'], 240_000);
    const adapter = untarGz(new Uint8Array(await (await p.api(`/models/${done.fine_tuned_model}/download?variant=adapter`)).arrayBuffer()));
    const full = untarGz(new Uint8Array(await (await p.api(`/models/${done.fine_tuned_model}/download`)).arrayBuffer()));
    const cfg = JSON.parse((adapter.get('adapter_config.json') as Buffer).toString());
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, fan_in_fan_out: false, target_modules: ['q_proj', 'v_proj', 'down_proj'] });
    const lora = readF32(adapter.get('adapter_model.safetensors') as Buffer);
    const merged = readF32(full.get('model.safetensors') as Buffer);
    expect(Object.keys(lora).sort()).toContain('base_model.model.model.layers.1.mlp.down_proj.lora_A.weight');
    // W' = W + (alpha / r) B A, by hand, for one module of each kind
    for (const m of ['model.layers.0.self_attn.q_proj', 'model.layers.1.mlp.down_proj']) {
      const A = lora[`base_model.model.${m}.lora_A.weight`] as F32;
      const B = lora[`base_model.model.${m}.lora_B.weight`] as F32;
      const W = made.rounded.get(`${m}.weight`)?.data as Float32Array;
      const [r, n] = A.shape as [number, number];
      const out = B.shape[0] as number;
      expect(B.data.some((x) => x !== 0)).toBe(true); // trained
      let worst = 0;
      for (let i = 0; i < out; i++) {
        for (let j = 0; j < n; j++) {
          let delta = 0;
          for (let k = 0; k < r; k++) delta += (B.data[i * r + k] as number) * (A.data[k * n + j] as number);
          worst = Math.max(worst, Math.abs((W[i * n + j] as number) + 2 * delta - ((merged[`${m}.weight`] as F32).data[i * n + j] as number)));
        }
      }
      expect(worst).toBeLessThan(1e-5);
    }
    // served unmerged (the adapter on the imported base's weights), it answers as its merged
    // weights imported as a model of their own do, log-probability for log-probability
    const mergedImport = await importFiles(Object.fromEntries([...full].filter(([name]) => !name.startsWith('adapter_'))));
    expect(mergedImport.status, JSON.stringify(mergedImport.body)).toBe(200);
    const ask = (model: string) => client.completions.create({ model, prompt: 'Q1:', max_tokens: 4, temperature: 0, logprobs: 3 });
    const [unmergedAnswer, mergedAnswer] = [await ask(done.fine_tuned_model as string), await ask(mergedImport.body.id)];
    expect(unmergedAnswer.choices[0]?.text).toBe(mergedAnswer.choices[0]?.text);
    const lp = (c: typeof unmergedAnswer) => c.choices[0]?.logprobs?.token_logprobs as number[];
    expect(lp(unmergedAnswer).length).toBe(4);
    for (const [i, v] of lp(unmergedAnswer).entries()) expect(Math.abs(v - (lp(mergedAnswer)[i] as number))).toBeLessThan(1e-4);
    expect(
      p.worker
        ?.models()
        .filter((e) => e.kind === 'adapter')
        .map((e) => e.key),
    ).toEqual([expect.stringContaining(encodeURIComponent(done.fine_tuned_model as string))]);
  });

  it('gives its files back byte for byte', async () => {
    const res = await p.api(`/models/${id}/download`);
    expect(res.status).toBe(200);
    const back = untarGz(new Uint8Array(await res.arrayBuffer()));
    for (const [name, bytes] of Object.entries(made.files)) expect(Buffer.compare(back.get(name) as Buffer, bytes), name).toBe(0);
  });
});

describe("the quickstart's --base path", () => {
  it('imports an instruct model from a folder on disk, fine-tunes it with LoRA on the shipped chat data, and asks it in chat', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crucible-base-'));
    try {
      for (const [name, data] of Object.entries(folder().files)) writeFileSync(join(dir, name), data);
      const crucible = new Crucible({ baseUrl: `${p.url}/v1`, apiKey: p.apiKey });
      const r = await fineTuneBase(crucible, dir, {
        chatFile: join(import.meta.dirname, '../../data/quickstart-chat.jsonl'),
        steps: 4,
        question: 'Who wrote Hamlet?',
      });
      expect(r.base).toMatch(/^imported:quickstart-base:/);
      expect(await crucible.retrieveModel(r.base)).toMatchObject({ arch: 'llama', source: 'imported' });
      const model = await crucible.retrieveModel(r.model);
      expect(model).toMatchObject({ base_model: r.base, peft: { type: 'lora' } });
      const job = await crucible.retrieveJob(model.fine_tuning_job as string);
      expect(job).toMatchObject({ status: 'succeeded', method: { type: 'supervised' } });
      expect((await crucible.retrieveFile(job.training_file)).format).toBe('jsonl_chat');
      expect(typeof r.answer).toBe('string');
      // it answered as its adapter on the imported base, not as a merged copy
      expect(p.worker?.models().some((e) => e.kind === 'adapter' && e.key.includes(encodeURIComponent(r.model)))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('imports refused with 400 invalid_model naming the field and its value, leaving nothing behind', () => {
  const base = () => folder().files;
  const withConfig = (over: Record<string, unknown>) => {
    const { files } = folder({ ...CONFIG, ...over });
    return files;
  };
  const cases: Array<[string, () => Record<string, Buffer>, RegExp, string]> = [
    [
      'an unsupported model_type',
      () => ({ ...base(), 'config.json': Buffer.from(JSON.stringify({ ...CONFIG, model_type: 'mistral' })) }),
      /model_type "mistral" is not supported/,
      'config.json',
    ],
    [
      'an unsupported architectures',
      () => ({ ...base(), 'config.json': Buffer.from(JSON.stringify({ ...CONFIG, architectures: ['Qwen2ForTokenClassification'] })) }),
      /architectures \["Qwen2ForTokenClassification"\]/,
      'config.json',
    ],
    [
      'an unsupported rope_scaling',
      () => ({ ...base(), 'config.json': Buffer.from(JSON.stringify({ ...CONFIG, rope_scaling: { type: 'yarn', factor: 4 } })) }),
      /rope_scaling \{"type":"yarn","factor":4\} is not supported/,
      'config.json',
    ],
    [
      'a vocab_size other than the embedding rows',
      () => ({ ...base(), 'config.json': Buffer.from(JSON.stringify({ ...CONFIG, vocab_size: VOCAB + 1 })) }),
      new RegExp(`vocab_size ${VOCAB + 1} must equal the rows of model.embed_tokens.weight, ${VOCAB}`),
      'config.json',
    ],
    [
      'tokenizer ids past the embedding',
      () => withConfig({ vocab_size: tokenizer.vocabSize - 10 }),
      new RegExp(
        `ids up to ${tokenizer.vocabSize - 1} \\(${tokenizer.vocabSize} ids\\), but config.json's vocab_size and the embedding's rows are ${tokenizer.vocabSize - 10}`,
      ),
      'tokenizer.json',
    ],
    [
      'a tokenizer model Crucible cannot run',
      () => ({ ...base(), 'tokenizer.json': Buffer.from(JSON.stringify({ version: '1.0', added_tokens: [], model: { type: 'Unigram', vocab: [['a', 0]] } })) }),
      /model.type "Unigram" is not supported/,
      'tokenizer.json',
    ],
    [
      'a shard the index does not map',
      () => ({ ...base(), 'model.safetensors.index.json': Buffer.from(JSON.stringify({ weight_map: {} })) }),
      /is not in model.safetensors.index.json's weight_map/,
      'model-00001-of-00002.safetensors',
    ],
  ];
  it.each(cases)('%s', async (_what, files, message, param) => {
    const before = await leftovers(p);
    const r = await importFiles(files());
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.error.code).toBe('invalid_model');
    expect(r.body.error.message).toMatch(message);
    expect(r.body.error.param).toBe(param);
    expect(await leftovers(p)).toEqual(before);
  });
});

const SMOLLM = join(import.meta.dirname, '../../../shared/data/hf-tokenizers/smollm2-135m-instruct');
describe.skipIf(!existsSync(SMOLLM))("SmolLM2's own tokenizer files (from ../shared)", () => {
  let smol = '';

  it('an import with them encodes a prompt as Hugging Face does (the prompt token count)', async () => {
    const cfg = JSON.parse(readFileSync(join(SMOLLM, 'config.json'), 'utf8'));
    const small = { ...cfg, hidden_size: 24, intermediate_size: 32, num_attention_heads: 3, num_key_value_heads: 1, num_hidden_layers: 1 };
    const { files } = folder(small);
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) files[f] = readFileSync(join(SMOLLM, f));
    const r = await importFiles(files);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    smol = r.body.id;
    const prompt = 'Hello world!  123 🤗 <|im_start|>user';
    const served = await client.completions.create({ model: r.body.id, prompt, max_tokens: 1, temperature: 0 });
    // Hugging Face's own library on the same tokenizer.json
    const { Tokenizer } = createRequire(import.meta.url)('tokenizers') as {
      Tokenizer: { fromFile(f: string): Promise<{ encode(s: string): Promise<{ getIds(): number[] }> }> };
    };
    const theirs = await (await Tokenizer.fromFile(join(SMOLLM, 'tokenizer.json'))).encode(prompt);
    expect(served.usage?.prompt_tokens).toBe(theirs.getIds().length);

    // a chat completion is rendered with the model's own Jinja template (its default system prompt included)
    const messages = [{ role: 'user' as const, content: 'What is 7 plus 5?' }];
    const chat = await client.chat.completions.create({ model: r.body.id, messages, max_tokens: 1, temperature: 0 });
    const rendered = new Template(JSON.parse(readFileSync(join(SMOLLM, 'tokenizer_config.json'), 'utf8')).chat_template).render({
      messages,
      add_generation_prompt: true,
    });
    expect(rendered).toContain('You are a helpful AI assistant named SmolLM');
    const ids = await (await Tokenizer.fromFile(join(SMOLLM, 'tokenizer.json'))).encode(rendered);
    expect(chat.usage?.prompt_tokens).toBe(ids.getIds().length);
  });

  it('runs dpo and reinforcement (with LoRA) on it: its Jinja chat template renders the prompts, sampled answers stay within their budget', async () => {
    const upload = async (lines: unknown[], name: string) => {
      const f = await client.files.create({ file: await toFile(Buffer.from(lines.map((l) => JSON.stringify(l)).join('\n')), name), purpose: 'fine-tune' });
      return eventually(async () => ((await client.files.retrieve(f.id)).status === 'processed' ? f.id : undefined));
    };
    const words = ['red', 'green', 'blue', 'black', 'white', 'pink', 'gray', 'gold'];
    const user = (w: string) => [{ role: 'user', content: `name ${w}` }];
    const pairs = await upload(
      words.map((w) => ({
        input: { messages: user(w) },
        preferred_output: [{ role: 'assistant', content: w.toUpperCase() }],
        non_preferred_output: [{ role: 'assistant', content: w }],
      })),
      'smol-prefs.jsonl',
    );
    const prompts = await upload(
      words.map((w) => ({ messages: user(w), answer: w })),
      'smol-prompts.jsonl',
    );
    const small = { block_size: 64, batch_size: 2, max_steps: 3, eval_interval: 0, eval_batches: 1, log_interval: 1 };
    const dpo = await client.fineTuning.jobs.create({
      model: smol,
      training_file: pairs,
      method: { type: 'dpo', dpo: { hyperparameters: { ...small, beta: 0.5 } as never } },
    });
    // a multi grader: characters (fuzzy_match) and meaning (cosine of the starting model's embeddings)
    const grader = {
      type: 'multi',
      name: 'both',
      graders: {
        close: { type: 'text_similarity', name: 'close', input: '{{sample.output_text}}', reference: '{{item.answer}}', evaluation_metric: 'fuzzy_match' },
        similar: { type: 'text_similarity', name: 'similar', input: '{{sample.output_text}}', reference: '{{item.answer}}', evaluation_metric: 'cosine' },
      },
      calculate_output: '0.5 * close + 0.5 * similar',
    } as const;
    const rl = await client.fineTuning.jobs.create({
      model: smol,
      training_file: prompts,
      // with LoRA: the reference is the base, loaded frozen beside the adapted model
      method: {
        type: 'reinforcement',
        reinforcement: { grader, hyperparameters: { ...small, group_size: 2, max_completion_tokens: 4 }, peft: { type: 'lora' } },
      } as never,
    });
    await waitForJobStatus(client, dpo.id, ['succeeded'], 240_000);
    await waitForJobStatus(client, rl.id, ['succeeded'], 240_000);
    const metrics = async (id: string) => ((await (await p.api(`/fine_tuning/jobs/${id}/metrics`)).json()) as { data: Array<Record<string, number>> }).data;
    expect((await metrics(dpo.id)).some((m) => typeof m['rewards/margins'] === 'number')).toBe(true);
    const steps = (await metrics(rl.id)).filter((m) => typeof m.reward === 'number');
    expect(steps.map((m) => m.step)).toEqual([1, 2, 3]);
    for (const m of steps) {
      expect(m.reward).toBeGreaterThanOrEqual(0);
      expect(m.reward).toBeLessThanOrEqual(1);
      expect(m.kl).toBeGreaterThanOrEqual(0);
      expect(m.completion_length).toBeGreaterThan(0);
      expect(m.completion_length).toBeLessThanOrEqual(4);
    }
  });
});
