// npm run bench:decode: tokens/s at batch 1 through the KV cache for SmolLM2-135M- and
// Qwen2.5-0.5B-shaped models (the real configs' shapes, random weights), next to the bound memory
// bandwidth sets: every weight is read once per token, so tokens/s <= copy bandwidth / weight
// bytes, with the copy bandwidth measured here in the same run. Also the same decode without the
// cache (the whole context recomputed per token), for a few tokens.
// Usage: npm run bench:decode [-- --tokens 64] [-- --prompt 32] [-- --only smollm2]
import * as tf from '@tensorflow/tfjs';
import * as T from '../src/index';
import { QWEN25_05B, SMOLLM2_135M } from './open-shapes';

const arg = (k: string, d: number) => {
  const i = process.argv.indexOf(k);
  return i >= 0 ? Number(process.argv[i + 1]) : d;
};
const NEW = arg('--tokens', 64);
const PROMPT = arg('--prompt', 32);
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;

const SHAPES: Record<string, Record<string, unknown>> = { 'smollm2-135m': SMOLLM2_135M, 'qwen2.5-0.5b': QWEN25_05B };

/** Bytes copied per second by a 256 MB typed-array copy (best of 5). */
function copyBandwidth(): number {
  const n = 64 * 2 ** 20;
  const src = new Float32Array(n).fill(1);
  const dst = new Float32Array(n);
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    dst.set(src);
    best = Math.min(best, performance.now() - t0);
  }
  return (n * 4) / (best / 1000);
}

const backend = await T.initBackend('auto');
const bw = copyBandwidth();
console.log(`backend ${backend.name} (${backend.matmul}), copy bandwidth ${(bw / 1e9).toFixed(1)} GB/s; prompt ${PROMPT} tokens, ${NEW} new tokens\n`);
const rows: string[] = [];
for (const [name, hf] of Object.entries(SHAPES)) {
  if (only && !name.startsWith(only)) continue;
  const config = T.decoderConfigFromHf(hf);
  const t0 = performance.now();
  const model = T.Transformer.create(config, 1);
  const built = (performance.now() - t0) / 1000;
  const params = T.countParams(config);
  // per token: every matrix once (the tied embedding as the head), norms negligible
  const weightBytes = params * 4;
  const rng = new T.Rng(1);
  const prompt = Array.from({ length: PROMPT }, (_, i) => (i * 7919) % config.vocabSize);
  const cache = new T.KvCache();
  const p0 = performance.now();
  let logits = tf.tidy(() => model.forwardLast(tf.tensor2d([prompt], [1, PROMPT], 'int32'), { cache }).reshape([-1]));
  let data = (await logits.data()) as Float32Array;
  logits.dispose();
  const prefillMs = performance.now() - p0;
  const d0 = performance.now();
  for (let n = 0; n < NEW; n++) {
    const next = T.pickToken(data, rng, { temperature: 0.8, topP: 0.95 });
    logits = tf.tidy(() => model.forwardLast(tf.tensor2d([[next]], [1, 1], 'int32'), { cache }).reshape([-1]));
    data = (await logits.data()) as Float32Array;
    logits.dispose();
  }
  const decodeS = (performance.now() - d0) / 1000;
  cache.dispose();
  // without the cache: a few tokens, each recomputing the whole context
  const FULL = 4;
  const ids = [...prompt];
  const f0 = performance.now();
  for (let n = 0; n < FULL; n++) {
    const l = tf.tidy(() => model.forwardLast(tf.tensor2d([ids], [1, ids.length], 'int32')).reshape([-1]));
    ids.push(T.pickToken((await l.data()) as Float32Array, rng, { temperature: 0 }));
    l.dispose();
  }
  const fullTps = FULL / ((performance.now() - f0) / 1000);
  const tps = NEW / decodeS;
  const bound = bw / weightBytes;
  const rss = process.memoryUsage().rss / 2 ** 20;
  console.log(
    `${name}: ${(params / 1e6).toFixed(1)} M params (${(weightBytes / 2 ** 30).toFixed(2)} GiB f32), built in ${built.toFixed(1)} s; prefill ${PROMPT} tokens ${prefillMs.toFixed(0)} ms; ` +
      `decode ${tps.toFixed(2)} tokens/s (${((decodeS * 1000) / NEW).toFixed(0)} ms/token) = ${((100 * tps) / bound).toFixed(0)}% of the bandwidth bound ${bound.toFixed(2)} tokens/s; ` +
      `without the cache ${fullTps.toFixed(2)} tokens/s; RSS ${rss.toFixed(0)} MiB`,
  );
  rows.push(
    `| ${name}-shaped | ${(params / 1e6).toFixed(1)} M | ${tps.toFixed(2)} | ${bound.toFixed(2)} (${(bw / 1e9).toFixed(1)} GB/s) | ${((100 * tps) / bound).toFixed(0)}% | ${fullTps.toFixed(2)} | ${rss.toFixed(0)} MiB |`,
  );
  model.dispose();
}
console.log(
  '\n| model | params | decode tokens/s (cache) | bandwidth bound tokens/s | of bound | tokens/s without cache | RSS |\n|---|---|---|---|---|---|---|',
);
for (const r of rows) console.log(r);
