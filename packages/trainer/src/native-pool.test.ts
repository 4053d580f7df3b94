// The native backend's buffer pool never hands out memory that something can still see: a live
// view (Slice, Split, Unpack and StridedSlice return subarrays of their input), values read out
// with dataSync()/data(), or a buffer shared by two tensors. Checked on the pool alone, on the
// backend, by a randomized stress of interleaved async graphs against the cpu backend (bit for
// bit), by concurrent generations against the same generations run alone, and by training runs
// whose graphs slice (LoRA on every target, packed examples: attention in tfjs ops) against the cpu
// backend.
import { CharTokenizer } from '@crucible/model-files';
import type { PeftConfig } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend';
import { BufferPool } from './buffer-pool';
import { modelConfig } from './config';
import { Transformer } from './model';
import { nativeKernels, ownedValues } from './native-backend';
import { gelu } from './ops';
import { sampleStream } from './sample';
import { defaultTrainConfig, Trainer } from './train';

const k = nativeKernels();

/** mulberry32: deterministic uniform values in [0, 1). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const values = (n: number, seed: number) => {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => Math.round((r() * 2 - 1) * 64) / 8); // exact in float32
};

describe('BufferPool', () => {
  it('reuses a buffer only after its last view is gone', () => {
    const pool = new BufferPool(1 << 20);
    const a = pool.take(16);
    const view = a.subarray(4, 8);
    pool.hold(a);
    pool.hold(view);
    pool.release(a); // the owner goes, the view stays
    expect(pool.take(16)).not.toBe(a);
    expect(pool.idleBytes).toBe(0);
    pool.release(view);
    expect(pool.idleBytes).toBe(64);
    expect(pool.take(16)).toBe(a); // the whole array comes back, not the view
  });

  it('never reuses a buffer whose values were read out, nor one it did not allocate', () => {
    const pool = new BufferPool(1 << 20);
    const a = pool.take(8);
    pool.hold(a);
    pool.pin(a.subarray(2)); // a view read out pins the whole buffer
    pool.release(a);
    const foreign = new Float32Array(8);
    pool.hold(foreign);
    pool.release(foreign);
    expect(pool.idleBytes).toBe(0);
    expect(pool.take(8)).not.toBe(a);
  });

  it('says a buffer is exclusive only with one live user and nothing read out', () => {
    const pool = new BufferPool(1 << 20);
    const a = pool.take(8);
    pool.hold(a);
    expect(pool.exclusive(a)).toBe(true);
    pool.hold(a.subarray(1, 3));
    expect(pool.exclusive(a)).toBe(false);
    pool.release(a.subarray(1, 3));
    expect(pool.exclusive(a)).toBe(true);
    pool.pin(a);
    expect(pool.exclusive(a)).toBe(false);
  });

  it('keeps no more idle bytes than its cap', () => {
    const pool = new BufferPool(100);
    const [a, b] = [pool.take(16), pool.take(16)];
    for (const x of [a, b]) {
      pool.hold(x);
      pool.release(x);
    }
    expect(pool.idleBytes).toBe(64);
  });
});

describe.skipIf(!k)('native backend: memory a live tensor sees is never reused', () => {
  beforeAll(async () => {
    expect((await initBackend('native', () => {}, { nativeThreads: 2 })).name).toBe('native');
  });

  const x = () => tf.tensor2d(values(64, 1), [8, 8]);
  const sameSize = () => tf.tidy(() => [gelu(tf.neg(x())), tf.mul(x(), 3), tf.add(x(), 5), tf.matMul(x(), x())]);

  it.each<[string, (t: tf.Tensor2D) => tf.Tensor]>([
    ['slice', (t) => t.slice([7, 0], [1, 8])],
    ['split', (t) => (tf.split(t, 4, 0) as tf.Tensor[])[3] as tf.Tensor],
    ['unstack', (t) => tf.unstack(t)[5] as tf.Tensor],
    ['stridedSlice', (t) => tf.stridedSlice(t, [2, 0], [4, 8], [1, 1])],
  ])('a %s of a disposed tensor keeps its values while tensors of its source size are made', (_name, view) => {
    const input = x();
    const v = tf.tidy(() => view(gelu(input) as tf.Tensor2D)); // the gelu output goes back to the pool
    const want = Array.from(tf.tidy(() => view(gelu(input) as tf.Tensor2D).dataSync()));
    const fillers = sameSize();
    expect(Array.from(v.dataSync())).toEqual(want);
    tf.dispose([input, v, ...fillers]);
  });

  it('the issue’s smallest reproduction', () => {
    const t = tf.tensor2d(
      Float32Array.from({ length: 64 }, (_, i) => Math.sin(i)),
      [8, 8],
    );
    const row = tf.tidy(() => gelu(t).slice([7, 0], [1, 8]));
    const want = Array.from(row.dataSync());
    const other = gelu(tf.neg(t));
    expect(Array.from(row.dataSync())).toEqual(want);
    tf.dispose([t, row, other]);
  });

  it('never updates in place a parameter another tensor views or that was read out', () => {
    const init = tf.tidy(() => tf.add(x(), 0));
    const p = tf.variable(init);
    init.dispose();
    expect(ownedValues(p)).toBeInstanceOf(Float32Array);
    const row = p.slice([0, 0], [1, 8]);
    expect(ownedValues(p)).toBeUndefined(); // a live view
    row.dispose();
    expect(ownedValues(p)).toBeInstanceOf(Float32Array);
    const shared = tf.tensor(ownedValues(p) as Float32Array, p.shape); // a second tensor on the same memory
    expect(ownedValues(p)).toBeUndefined();
    shared.dispose();
    p.dataSync(); // handed out: the reader may keep it
    expect(ownedValues(p)).toBeUndefined();
    tf.tidy(() => p.assign(tf.mul(p, 2))); // a fresh buffer is free again
    expect(ownedValues(p)).toBeInstanceOf(Float32Array);
    p.dispose();
  });
});

// ---- randomized stress: interleaved async graphs, each against the same graph alone on cpu ----

const R = 8;
const C = 16;
type Step = (s: tf.Tensor2D, r: () => number) => tf.Tensor2D;

/** Graph steps whose results are exact in float32 (add, multiply by powers of two, moves), so the
 * native and cpu backends agree bit for bit; each keeps the [R, C] shape and slices something. */
const STEPS: Step[] = [
  (s, r) => {
    const i = Math.floor(r() * R);
    return tf.concat([tf.slice(tf.mul(s, 0.5), [i, 0], [R - i, C]), tf.slice(tf.add(s, 1), [0, 0], [i, C])], 0) as tf.Tensor2D;
  },
  (s) => {
    const parts = tf.split(tf.add(s, s), 4, 0) as tf.Tensor2D[];
    return tf.concat(parts.reverse(), 0) as tf.Tensor2D;
  },
  (s) => tf.stack(tf.unstack(tf.sub(s, 0.25)).reverse()) as tf.Tensor2D,
  (s, r) => {
    const j = 1 + Math.floor(r() * (C - 1));
    const [a, b] = tf.split(tf.mul(s, -1), [j, C - j], 1) as [tf.Tensor2D, tf.Tensor2D];
    return tf.concat([b, a], 1) as tf.Tensor2D;
  },
  (s) => tf.concat([tf.stridedSlice(tf.add(s, 2), [1, 0], [R, C], [1, 1]) as tf.Tensor2D, tf.slice(s, [0, 0], [1, C])], 0) as tf.Tensor2D,
  (s) => tf.transpose(tf.transpose(tf.mul(s, 2))) as tf.Tensor2D,
];

/** A loop that carries views across yields, as a generation carries its logits. */
async function program(seed: number, interleave: boolean): Promise<number[][]> {
  const r = rng(seed);
  let state = tf.keep(tf.tensor2d(values(R * C, seed), [R, C]));
  const seen: number[][] = [];
  for (let n = 0; n < 24; n++) {
    const step = STEPS[Math.floor(r() * STEPS.length)] as Step;
    // a row of the step's result outlives the result itself, across a yield
    const row = tf.tidy(() => tf.slice(step(state, r), [Math.floor(r() * R), 0], [1, C]));
    const next = tf.tidy(() => step(state, r));
    tf.dispose(state);
    state = tf.keep(next);
    const yieldToOthers = r() < 0.5; // drawn in both modes: the two runs take the same steps
    if (interleave) await (yieldToOthers ? new Promise((res) => setImmediate(res)) : Promise.resolve());
    seen.push(Array.from((await row.data()) as Float32Array));
    row.dispose();
  }
  seen.push(Array.from(state.dataSync()));
  state.dispose();
  return seen;
}

describe.skipIf(!k)('native backend under interleaved work', () => {
  beforeAll(async () => {
    expect((await initBackend('native', () => {}, { nativeThreads: 2 })).name).toBe('native');
  });

  it('16 interleaved graph loops equal the same loops run alone on the cpu backend, bit for bit', async () => {
    const seeds = Array.from({ length: 16 }, (_, i) => 1000 + i * 7);
    await tf.setBackend('cpu');
    const alone: number[][][] = [];
    try {
      for (const s of seeds) alone.push(await program(s, false));
    } finally {
      await tf.setBackend('native');
    }
    const together = await Promise.all(seeds.map((s) => program(s, true)));
    for (const [i, got] of together.entries()) expect(got, `loop ${i}`).toEqual(alone[i]);
  });

  it('generations stepped together (and graph loops between them) equal each generation run alone', async () => {
    const text = 'ROMEO: But soft, what light through yonder window breaks? It is the east.\n'.repeat(4);
    const tok = CharTokenizer.train(text, ['<|endoftext|>']);
    const models = [1, 2, 3].map((seed) =>
      Transformer.create(modelConfig({ arch: 'gpt', nLayer: 2, nHead: 2, dModel: 32, blockSize: 24 }, tok.vocabSize), seed),
    );
    const generate = async (i: number) => {
      const it = sampleStream(models[i % 3] as Transformer, tok, `ROMEO ${i}:`, { maxNewTokens: 20, temperature: 0, topP: 1, topK: 0, logprobs: 3 });
      for (;;) {
        const r = await it.next();
        if (r.done) return r.value;
        await new Promise((res) => setImmediate(res)); // as the worker awaits each streamed piece's publish
      }
    };
    const alone: Awaited<ReturnType<typeof generate>>[] = [];
    for (let i = 0; i < 8; i++) alone.push(await generate(i));
    for (let round = 0; round < 3; round++) {
      const [together] = await Promise.all([Promise.all(Array.from({ length: 8 }, (_, i) => generate(i))), program(round, true)]);
      together.forEach((got, i) => {
        expect(got.tokens, `round ${round}, generation ${i}`).toEqual(alone[i]?.tokens);
        expect(got.logprobs, `round ${round}, generation ${i}`).toEqual(alone[i]?.logprobs);
      });
    }
    for (const m of models) m.dispose();
  });
});

// ---- training whose graphs slice (LoRA on every target, attention dropout, packed examples: tfjs-op attention),
// ---- sharing the process with generations, as a worker with training and inference does

describe.skipIf(!k)('training with views in its graph, beside generations', () => {
  const text = 'To be, or not to be, that is the question:\nWhether tis nobler in the mind to suffer\n'.repeat(20);
  const tok = CharTokenizer.train(text, ['<|endoftext|>']);
  const ids = Int32Array.from(tok.encode(text));
  const LORA: PeftConfig = { type: 'lora', rank: 4, alpha: 8, dropout: 0.1, targets: ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'] };
  // batch 1 x 12 tokens: the training logits have the size of a 12-token generation's forward output
  const shape = modelConfig({ arch: 'gpt', nLayer: 2, nHead: 2, dModel: 16, blockSize: 12 }, tok.vocabSize, { dropout: 0.2 });
  const STEPS = 8;

  function trainer(): { t: Trainer; dispose: () => void } {
    const base = Transformer.create(shape, 1);
    const model = Transformer.create({ ...shape, peft: LORA }, 2, base.weights());
    const cfg = defaultTrainConfig(model.config, {
      maxSteps: STEPS,
      batchSize: 1,
      logInterval: 1,
      evalInterval: 0,
      evalBatches: 1,
      schedule: { kind: 'constant', lr: 2e-2, minLr: 2e-2, warmupSteps: 0, decaySteps: STEPS },
      packing: true,
    });
    const starts = (n: number) => Array.from({ length: Math.ceil(n / 7) }, (_, i) => i * 7); // 7-token documents
    const data = { train: ids.subarray(0, 1200), val: ids.subarray(1200), trainDocStarts: starts(1200), valDocStarts: starts(ids.length - 1200) };
    const t = new Trainer(model, tok, cfg, data);
    return {
      t,
      dispose: () => {
        for (const x of [t.optimizer, model, base]) x.dispose();
      },
    };
  }

  /** Per-step losses, with `beside` running concurrently (the trainer yields between steps). */
  async function losses(backend: 'native' | 'cpu', beside: () => Promise<unknown> = async () => {}): Promise<number[]> {
    await tf.setBackend(backend);
    try {
      const { t, dispose } = trainer();
      const out: number[] = [];
      await Promise.all([t.run({ onStep: (m) => void out.push(m.loss) }), beside()]);
      dispose();
      return out;
    } finally {
      await tf.setBackend('native');
    }
  }

  const other = () => Transformer.create(shape, 9);
  /** Four streamed generations, one at a time or two at a time (the worker's default INFERENCE_CONCURRENCY). */
  async function generations(model: Transformer, twoAtATime: boolean): Promise<unknown[]> {
    const one = async (i: number) => {
      const it = sampleStream(model, tok, ['To be', 'Wheth', 'quest', 'noble'][i] as string, {
        maxNewTokens: 16,
        temperature: 0,
        topP: 1,
        topK: 0,
        logprobs: 2,
      });
      for (;;) {
        const r = await it.next();
        if (r.done) return r.value;
        await new Promise((res) => setImmediate(res));
      }
    };
    if (twoAtATime) return [...(await Promise.all([one(0), one(1)])), ...(await Promise.all([one(2), one(3)]))];
    return [await one(0), await one(1), await one(2), await one(3)];
  }

  beforeAll(async () => {
    expect((await initBackend('native', () => {}, { nativeThreads: 2 })).name).toBe('native');
  });

  it('has the same loss curve on the native and cpu backends, and twice in a row on native, while generations run beside it', async () => {
    const g = other();
    const alone = await generations(g, false);
    let beside: unknown[] = [];
    const native = await losses('native', async () => {
      beside = await generations(g, true);
    });
    expect(beside).toEqual(alone);
    const cpu = await losses('cpu');
    expect(native).toHaveLength(STEPS);
    for (const [i, l] of native.entries()) expect(Math.abs(l - (cpu[i] as number)), `step ${i + 1}: ${l} vs ${cpu[i]}`).toBeLessThan(1e-4 * (1 + Math.abs(l)));
    expect(await losses('native', () => generations(g, true))).toEqual(native);
    expect(native.at(-1)).toBeLessThan(native[0] as number);
    g.dispose();
  });

  it('training a model made from another model’s weights leaves the other unchanged', () => {
    const source = Transformer.create(shape, 3);
    const before = new Map([...source.weights()].map(([n, w]) => [n, Array.from(w.data)]));
    const copy = Transformer.create({ ...shape, dropout: 0 }, 3, source.weights()); // shares the arrays
    const cfg = defaultTrainConfig(copy.config, { maxSteps: 3, batchSize: 2, evalInterval: 0, evalBatches: 1 });
    const t = new Trainer(copy, tok, cfg, { train: ids.subarray(0, 1200), val: ids.subarray(1200) });
    for (let i = 0; i < 3; i++) t.trainStep();
    for (const [n, w] of source.weights()) expect(Array.from(w.data), n).toEqual(before.get(n));
    expect(Array.from(copy.param('wte.weight').dataSync())).not.toEqual(before.get('wte.weight'));
    for (const x of [t.optimizer, copy, source]) x.dispose();
  });
});
