// npm run bench:serve: what serving LoRA fine-tunes unmerged saves. On a SmolLM2-135M-shaped model
// (the real config's shape, random weights), each in its own process:
//   unmerged  one base + N LoRA adapters loaded through the worker's model cache (each adapter on
//             the shared base, as the worker serves a LoRA model)
//   merged    N whole models (what serving each fine-tune as its merged copy holds)
// and prints peak RSS, the cache's bytes and the load time, then greedy decode speed through the
// KV cache on the base alone and on an adapter (the low-rank products' cost per token), and
// continuous batching's throughput with 8 requests on the base, on one adapter and on 8 adapters.
// Then the platform serving 1, 8 and 32 concurrent streams (serve-streams.ts).
// Usage: npm run bench:serve [-- --adapters 20] [-- --rank 8] [-- --tokens 32] [-- --only memory|streams]
import { spawnSync } from 'node:child_process';
import {
  batchedSample,
  CharTokenizer,
  ContinuousBatcher,
  decoderConfigFromHf,
  initBackend,
  isAdapterParam,
  KvCache,
  paramSpecs,
  Rng,
  Transformer,
  type Weights,
} from '@crucible/trainer';
import type { LoraConfig } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import { SMOLLM2_135M } from '../../../packages/trainer/bench/open-shapes';
import { ModelCache } from '../src/model-cache';
import { streamsBench } from './serve-streams';

const arg = (k: string, d: number) => {
  const i = process.argv.indexOf(k);
  return i >= 0 ? Number(process.argv[i + 1]) : d;
};
const N = arg('--adapters', 20);
const RANK = arg('--rank', 8);
const TOKENS = arg('--tokens', 32);
const mode = process.argv.includes('--mode') ? process.argv[process.argv.indexOf('--mode') + 1] : undefined;
const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MB`;

const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
if (!mode && only === 'streams') {
  await streamsBench();
  process.exit(0);
}
if (!mode) {
  // each mode in its own process, so that one's memory never counts in the other's
  for (const m of ['unmerged', 'merged']) {
    const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1] as string, ...process.argv.slice(2), '--mode', m], { stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
  if (only !== 'memory') await streamsBench();
  process.exit(0);
}

const backend = await initBackend('auto');
const config = decoderConfigFromHf(SMOLLM2_135M);
const peft: LoraConfig = { type: 'lora', rank: RANK, alpha: 2 * RANK, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] };

/** Random LoRA matrices (B not zero, so the adapter changes the outputs). */
function adapterWeights(seed: number): Weights {
  const rng = new Rng(seed);
  const w: Weights = new Map();
  for (const s of paramSpecs({ ...config, peft })) {
    if (!isAdapterParam(s.name)) continue;
    const n = s.shape.reduce((a, b) => a * b, 1);
    w.set(s.name, { shape: s.shape, data: Float32Array.from({ length: n }, () => (rng.next() - 0.5) * 0.02) });
  }
  return w;
}

/** A character tokenizer for the batching figures (the random model's ids past it are never picked). */
const CHARS = CharTokenizer.train('Story 0123456789: once upon a time, there was abcdefghijklmnopqrstuvwxyz.\n', ['<|endoftext|>']);

let peak = process.memoryUsage().rss;
const sampleRss = () => {
  peak = Math.max(peak, process.memoryUsage().rss);
};
const timer = setInterval(sampleRss, 20);

/** Greedy tokens per second through the KV cache: a 16-token prompt, then TOKENS new tokens. */
async function decode(model: Transformer): Promise<number> {
  const cache = new KvCache();
  let ids = Array.from({ length: 16 }, (_, i) => (i * 7919) % config.vocabSize);
  const t0 = performance.now();
  for (let n = 0; n < TOKENS; n++) {
    const logits = tf.tidy(() => model.forwardLast(tf.tensor2d([ids], [1, ids.length], 'int32'), { cache }).reshape([-1]));
    const data = (await logits.data()) as Float32Array;
    logits.dispose();
    let best = 0;
    for (let i = 1; i < data.length; i++) if ((data[i] as number) > (data[best] as number)) best = i;
    ids = [best];
  }
  const s = (performance.now() - t0) / 1000;
  cache.dispose();
  return TOKENS / s;
}

const t0 = performance.now();
if (mode === 'unmerged') {
  const cache = new ModelCache(Number.MAX_SAFE_INTEGER);
  const base = {
    key: 'base',
    kind: 'model' as const,
    estimateBytes: 0,
    load: async () => ({ model: Transformer.create(config, 1), tokenizer: undefined as never }),
  };
  const leases = [];
  for (let i = 0; i < N; i++) {
    leases.push(
      await cache.acquire({
        key: `adapter-${i}`,
        kind: 'adapter',
        estimateBytes: 0,
        base,
        load: async (b) => ({ model: Transformer.withLora((b as { model: Transformer }).model, peft, adapterWeights(i)), tokenizer: undefined as never }),
      }),
    );
    sampleRss();
  }
  const loadS = (performance.now() - t0) / 1000;
  const baseLease = await cache.acquire(base);
  const adapterBytes = cache.list().filter((e) => e.kind === 'adapter')[0]?.bytes ?? 0;
  console.log(
    `backend ${backend.name}; SmolLM2-135M shape, LoRA rank ${RANK} on q/k/v/o_proj\n` +
      `unmerged: 1 base + ${N} adapters, cache ${mb(cache.bytes)} (base ${mb(baseLease.model.ownBytes())}, ${(adapterBytes / 2 ** 20).toFixed(2)} MB per adapter), ` +
      `loaded in ${loadS.toFixed(1)} s, peak RSS ${mb(peak)}`,
  );
  await decode(baseLease.model); // warm-up: the kernels' first calls
  const adapterModel = (leases[0] as { model: Transformer }).model;
  const baseTps = Math.max(await decode(baseLease.model), await decode(baseLease.model));
  const adapterTps = Math.max(await decode(adapterModel), await decode(adapterModel));
  console.log(`  decode (greedy, KV cache, ${TOKENS} tokens): base ${baseTps.toFixed(2)} tokens/s, adapter unmerged ${adapterTps.toFixed(2)} tokens/s`);
  // continuous batching: 8 requests in one batch on the base, on one adapter, on 8 adapters
  const adapters = leases.slice(0, 8).map((l) => (l as { model: Transformer }).model);
  const batchTps = async (of: (i: number) => Transformer | undefined): Promise<number> => {
    const b = new ContinuousBatcher(baseLease.model, CHARS);
    const t = performance.now();
    const r = await Promise.all(adapters.map((_, i) => batchedSample(b, `Story ${i}: once upon a time`, { maxNewTokens: TOKENS, temperature: 0 }, of(i))));
    return r.reduce((n, x) => n + x.tokens.length, 0) / ((performance.now() - t) / 1000);
  };
  await batchTps(() => undefined); // warm-up
  const best = async (of: (i: number) => Transformer | undefined) => Math.max(await batchTps(of), await batchTps(of));
  const onBase = await best(() => undefined);
  const single = await best(() => adapters[0]);
  const mixed = await best((i) => adapters[i]);
  console.log(
    `  continuous batching, 8 requests x ${TOKENS} tokens in one batch: base ${onBase.toFixed(1)} tokens/s, one adapter ${single.toFixed(1)} tokens/s, ` +
      `8 adapters (mixed) ${mixed.toFixed(1)} tokens/s`,
  );
} else {
  const models: Transformer[] = [];
  for (let i = 0; i < N; i++) {
    models.push(Transformer.create(config, 100 + i)); // a merged fine-tune is a whole model
    sampleRss();
  }
  const loadS = (performance.now() - t0) / 1000;
  const bytes = models.reduce((n, m) => n + m.ownBytes(), 0);
  console.log(`merged: ${N} whole models, ${mb(bytes)}, loaded in ${loadS.toFixed(1)} s, peak RSS ${mb(peak)}`);
  const first = models[0] as Transformer;
  await decode(first); // warm-up
  console.log(`  decode (greedy, KV cache, ${TOKENS} tokens): merged model ${Math.max(await decode(first), await decode(first)).toFixed(2)} tokens/s`);
}
sampleRss();
clearInterval(timer);
