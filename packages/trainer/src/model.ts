// The transformer: token + position embeddings, n_layer pre-LayerNorm blocks (multi-head
// self-attention and a GELU MLP, each a residual branch), a final LayerNorm and the LM head.
// arch 'gpt' masks attention causally; arch 'bert' attends both ways and adds an MLM head.
// Parameters live in a name -> tf.Variable map with Hugging Face GPT-2 style names, so any of
// them can be frozen, adapted or exported by name. A config with `peft` adds LoRA matrices to the
// chosen linear layers or bottleneck adapters after each branch, and freezes every base weight.

import { isAdapterParam, paramSpecs, type Weights } from '@crucible/model-files';
import type { LoraConfig } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import { type ModelConfig, validateModelConfig } from './config';
import { decoderHidden } from './decoder';
import { groupedAttention, ropeInverseFrequencies, ropeTables } from './decoder-ops';
import { cachedCausalMask, type DecodeSegments, type KvCache, segmentPositions } from './kv-cache';
import { attention, dropout as dropoutOp, gelu, layerNorm, linear, qkvProjection } from './ops';
import { type PackedRows, packedAttention } from './packing';
import { mixSeed } from './rng';
import { spanAdapters, withSpanLora } from './span-lora';

export interface ForwardOptions {
  /** Enables dropout. Default false. */
  training?: boolean;
  /** Seed for this call's dropout masks. */
  seed?: number;
  /** [B, T] with 1 for real tokens and 0 for padding (keys that must not be attended to). */
  attentionMask?: tf.Tensor2D;
  /**
   * Causal models: the keys and values of the positions read so far. `idx` holds the tokens at
   * positions cache.length.., which attend to every cached position; the cache grows by T.
   */
  cache?: KvCache;
  /**
   * Activation checkpointing (llama architecture, training): each layer keeps only its input for the
   * backward pass, which recomputes the layer. Less memory for about one more forward pass.
   */
  checkpointActivations?: boolean;
  /** Packed examples (training, evaluation): attention within each, positions from 0 in each (packing.ts). */
  packing?: PackedRows;
  /** Several sequences' new tokens in one pass, each with its own cache (kv-cache.ts's DecodeSegments). */
  segments?: DecodeSegments;
}

let modelCounter = 0;

export class Transformer {
  readonly config: ModelConfig;
  /** The model whose parameters a LoRA model made by withLora shares: its base. */
  loraBase?: Transformer;
  /** Every parameter by name, e.g. `h.0.attn.c_attn.weight`. */
  readonly params: Map<string, tf.Variable>;
  private readonly frozen = new Set<string>();
  private readonly causalMasks = new Map<number, tf.Tensor>();
  private readonly ropeCache = new Map<number, { cos: tf.Tensor2D; sin: tf.Tensor2D }>();
  private ropeFrequencies: Float64Array | undefined;

  /**
   * `borrowed`: parameters another model owns (withLora's base), which dispose() leaves alone.
   */
  private constructor(
    config: ModelConfig,
    params: Map<string, tf.Variable>,
    private readonly borrowed: ReadonlySet<string> = new Set(),
  ) {
    this.config = config;
    this.params = params;
  }

  /**
   * A model for `config`. Parameters found in `weights` take those values (shapes checked); the
   * rest are initialized: N(0, 0.02), residual projections scaled by 1/sqrt(2 n_layer), LoRA A
   * uniform in +-1/sqrt(in) and LoRA B zero, adapter up-projections zero. With `weights` given,
   * every base parameter must be in it (only adapter parameters may be new). A config with peft
   * freezes every base parameter.
   */
  static create(config: ModelConfig, seed = 1337, weights?: Weights, consume = false): Transformer {
    validateModelConfig(config);
    const id = ++modelCounter;
    const params = new Map<string, tf.Variable>();
    const projStd = 0.02 / Math.sqrt(2 * config.nLayer);
    paramSpecs(config).forEach((spec, i) => {
      const given = weights?.get(spec.name);
      if (weights && !given && !isAdapterParam(spec.name)) throw new Error(`weights lack parameter ${spec.name}`);
      if (given && given.shape.join(',') !== spec.shape.join(',')) {
        throw new Error(`parameter ${spec.name}: shape [${given.shape}] does not match the config's [${spec.shape}]`);
      }
      const value = tf.tidy(() => {
        if (given) return tf.tensor(given.data, given.shape, 'float32');
        switch (spec.init) {
          case 'zeros':
            return tf.zeros(spec.shape);
          case 'ones':
            return tf.ones(spec.shape);
          case 'normal':
            return tf.randomNormal(spec.shape, 0, 0.02, 'float32', mixSeed(seed, i));
          case 'proj':
            return tf.randomNormal(spec.shape, 0, projStd, 'float32', mixSeed(seed, i));
          case 'lora_a':
          case 'lora_a_t': {
            const bound = 1 / Math.sqrt(spec.shape[spec.init === 'lora_a' ? 0 : 1] as number);
            return tf.randomUniform(spec.shape, -bound, bound, 'float32', mixSeed(seed, i));
          }
        }
      });
      params.set(spec.name, tf.variable(value, true, `crucible${id}/${spec.name}`));
      value.dispose();
      if (consume) weights?.delete(spec.name); // its values are in the variable now
    });
    const model = new Transformer(config, params);
    if (config.peft) model.freeze((name: string) => !isAdapterParam(name));
    return model;
  }

  /**
   * A model whose parameters all take the given values (shapes are checked against the config).
   * With `consume`, each entry leaves `weights` once it is in the model, so a large model is never
   * held twice.
   */
  static fromWeights(config: ModelConfig, weights: Weights, consume = false): Transformer {
    for (const spec of paramSpecs(config)) if (!weights.has(spec.name)) throw new Error(`weights lack parameter ${spec.name}`);
    return Transformer.create(config, 0, weights, consume);
  }

  /**
   * A LoRA model served unmerged: `base`'s parameters, shared (not copied: the new model costs only
   * its adapter's bytes), plus the low-rank matrices in `adapter` (Crucible's names and layout, as
   * loraFromPeft gives them). `base` must be a plain model of the same shape; it must outlive the
   * new model, whose dispose() frees only the adapter's own tensors.
   */
  static withLora(base: Transformer, peft: LoraConfig, adapter: Weights): Transformer {
    if (base.config.peft) throw new Error('withLora: the base model must be a plain model (no peft of its own)');
    const config: ModelConfig = { ...base.config, peft };
    validateModelConfig(config);
    const id = ++modelCounter;
    const params = new Map<string, tf.Variable>();
    const borrowed = new Set<string>();
    for (const spec of paramSpecs(config)) {
      if (!isAdapterParam(spec.name)) {
        params.set(spec.name, base.param(spec.name));
        borrowed.add(spec.name);
        continue;
      }
      const given = adapter.get(spec.name);
      if (!given) throw new Error(`the adapter lacks parameter ${spec.name}`);
      if (given.shape.join(',') !== spec.shape.join(',')) {
        throw new Error(`adapter parameter ${spec.name}: shape [${given.shape}] does not match the base's [${spec.shape}]`);
      }
      const value = tf.tensor(given.data, given.shape, 'float32');
      params.set(spec.name, tf.variable(value, false, `crucible${id}/${spec.name}`));
      value.dispose();
    }
    const model = new Transformer(config, params, borrowed);
    model.freeze(() => true);
    model.loraBase = base;
    return model;
  }

  /** Every parameter's current values, by name (read back from the backend). */
  weights(): Weights {
    return new Map([...this.params].map(([n, v]) => [n, { shape: v.shape.slice(), data: v.dataSync() as Float32Array }]));
  }

  param(name: string): tf.Variable {
    const p = this.params.get(name);
    if (!p) throw new Error(`no parameter named ${name}`);
    return p;
  }

  /**
   * Freezes every parameter whose name matches (a string prefix, a RegExp or a predicate). Its
   * variable is marked untrainable too: its linear layers then keep nothing of their inputs for a
   * backward pass that computes no gradient for it (ops.ts's linear).
   */
  freeze(match: Matcher): void {
    for (const [name, v] of this.params)
      if (matches(name, match)) {
        this.frozen.add(name);
        v.trainable = false;
      }
  }

  unfreeze(match: Matcher): void {
    for (const name of [...this.frozen])
      if (matches(name, match)) {
        this.frozen.delete(name);
        (this.params.get(name) as tf.Variable).trainable = true;
      }
  }

  /** Parameters the optimizer updates, by name. */
  trainable(): Map<string, tf.Variable> {
    return new Map([...this.params].filter(([n]) => !this.frozen.has(n)));
  }

  /** The trainable parameters whose names start with prefix. */
  private trainableUnder(prefix: string): tf.Variable[] {
    return [...this.trainable()].filter(([n]) => n.startsWith(prefix)).map(([, v]) => v);
  }

  /** Bytes of the parameters this model owns (a withLora model's adapter, not its shared base). */
  ownBytes(): number {
    let n = 0;
    for (const [name, p] of this.params) if (!this.borrowed.has(name)) n += p.size * 4;
    return n;
  }

  numParams(): number {
    return [...this.params.values()].reduce((n, p) => n + p.size, 0);
  }

  /** idx [B, T] int32 -> logits [B, T, V]. */
  forward(idx: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor3D {
    return tf.tidy(() => this.head(this.hidden(idx, opts)));
  }

  /** Logits [B, V] of the last position only: what decoding needs (the head over one position, not T). */
  forwardLast(idx: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor2D {
    return tf.tidy(() => {
      const h = this.hidden(idx, opts);
      const [B, T, C] = h.shape;
      return this.head(h.slice([0, T - 1, 0], [B, 1, C]) as tf.Tensor3D).reshape([B, this.config.vocabSize]) as tf.Tensor2D;
    });
  }

  /**
   * Continuous batching's step: idx [1, N] holds the spans of `segments` (each continuing its own
   * cache, which grows by its span); returns the logits [spans, V] of each span's last position.
   * Each span's numbers are those of decoding it alone, given products whose rows do not depend on
   * the others (backend.ts's withRowIndependentProducts).
   */
  forwardSegments(idx: tf.Tensor2D, segments: DecodeSegments): tf.Tensor2D {
    return tf.tidy(() => {
      const h = this.hidden(idx, { segments });
      const { starts } = segmentPositions(segments);
      const last = tf.tensor1d(
        starts.map((s, i) => s + (segments.lengths[i] as number) - 1),
        'int32',
      );
      const C = h.shape[2];
      const rows = tf.gather(h.reshape([-1, C]), last);
      return this.head(rows.reshape([1, starts.length, C]) as tf.Tensor3D).reshape([starts.length, this.config.vocabSize]) as tf.Tensor2D;
    });
  }

  /** The language-model head over final hidden states [B, T, C] -> logits [B, T, V]. */
  head(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => this.headFlat(x).reshape([x.shape[0], x.shape[1], this.config.vocabSize]) as tf.Tensor3D);
  }

  /**
   * idx [B, T] -> logits [B * T, V], what the losses take. No reshape of the logits is recorded:
   * TensorFlow.js's reshape gradient keeps its input, the largest tensor of a step, alive until the
   * backward pass reaches it.
   */
  forwardFlat(idx: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor2D {
    return tf.tidy(() => this.headFlat(this.hidden(idx, opts)));
  }

  /**
   * What a causal loss needs to run the head itself without holding the [B * T, V] logits
   * (linearCrossEntropy): the final hidden states [B * T, C], the head's weight [V, C] and its
   * parameter's name. Undefined for bert, whose head has a transform and a bias.
   */
  headInput(idx: tf.Tensor2D, opts: ForwardOptions = {}): { h: tf.Tensor2D; head: tf.Variable; name: string } | undefined {
    const c = this.config;
    if (c.arch === 'bert') return undefined;
    const name = c.tiedEmbeddings ? (c.arch === 'llama' ? 'model.embed_tokens.weight' : 'wte.weight') : 'lm_head.weight';
    const h = tf.tidy(() => {
      const x = this.hidden(idx, opts);
      const [B, T, C] = x.shape;
      return x.reshape([B * T, C]) as tf.Tensor2D;
    });
    return { h, head: this.param(name), name };
  }

  /** The head over hidden states [B, T, C] -> logits [B * T, V]. */
  private headFlat(x: tf.Tensor3D): tf.Tensor2D {
    return tf.tidy(() => {
      const c = this.config;
      const [B, T, C] = x.shape;
      const p = (n: string) => this.param(n);
      const pb = (n: string) => (c.bias ? this.param(n) : undefined);
      let h: tf.Tensor = x;
      if (c.arch === 'bert') {
        // MLM transform: dense -> GELU -> LayerNorm, then the (tied) decoder with its own bias.
        const t = gelu(linear(h, p('mlm_head.dense.weight'), pb('mlm_head.dense.bias')));
        h = layerNorm(t, p('mlm_head.ln.weight'), pb('mlm_head.ln.bias'));
      }
      const embedding = c.arch === 'llama' ? 'model.embed_tokens.weight' : 'wte.weight';
      const head = c.tiedEmbeddings ? p(embedding) : p('lm_head.weight'); // (V, C)
      let logits: tf.Tensor = linear(h.reshape([B * T, C]), head, undefined, true); // (B*T, C) x (V, C)^T
      if (c.arch === 'bert') logits = tf.add(logits, p('mlm_head.bias'));
      return logits as tf.Tensor2D;
    });
  }

  /** idx [B, T] int32 -> final hidden states [B, T, C] (after the last LayerNorm). */
  hidden(idx: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor3D {
    return tf.tidy(() => {
      const c = this.config;
      const [B, T] = idx.shape;
      const cache = opts.cache;
      const offset = cache?.length ?? 0;
      const segments = opts.segments;
      // (spans each have their own positions: checked below)
      if (!segments && offset + T > c.blockSize) throw new RangeError(`sequence length ${offset + T} exceeds block_size ${c.blockSize}`);
      const segs = segments ? segmentPositions(segments) : undefined;
      if (segments && segs) {
        if (B !== 1 || segs.positions.length !== T || segments.caches.length !== segments.lengths.length)
          throw new RangeError('segments: idx must be [1, N], N the sum of the spans');
        if (c.arch === 'bert' || cache || opts.attentionMask || opts.training || opts.packing)
          throw new RangeError('segments are for decoding a causal model, without padding, packing or training');
        if (segments.adapters && (c.peft || segments.adapters.some((a) => a && a.loraBase !== this)))
          throw new RangeError("segments' adapters must be LoRA models on this (plain) model");
        segments.caches.forEach((k, s) => {
          if (k.length + (segments.lengths[s] as number) > c.blockSize)
            throw new RangeError(`sequence length ${k.length + (segments.lengths[s] as number)} exceeds block_size ${c.blockSize}`);
        });
      }
      if (cache && (c.arch === 'bert' || opts.attentionMask || opts.training || opts.packing))
        throw new RangeError('a KV cache is for decoding a causal model, without padding, packing or training');
      if (opts.packing && (c.arch === 'bert' || opts.attentionMask)) throw new RangeError('packing is for causal models, without padding masks');
      const packed = opts.packing ? packedAttention(opts.packing, B, T) : undefined;
      if (c.arch === 'llama') {
        if (opts.training && c.dropout > 0) throw new RangeError('llama-architecture models train without dropout');
        const lora = c.peft?.type === 'lora' ? c.peft : undefined;
        const ctx = {
          param: (n: string) => this.param(n),
          rope: (t: number, at = 0) => this.rope(t, at),
          causalMask: (t: number) => this.causalMask(t),
          lora: lora && {
            targets: new Set<string>(lora.targets),
            scale: lora.alpha / lora.rank,
            dropout: opts.training ? lora.dropout : 0,
            seed: opts.seed ?? 0,
          },
          checkpoint: opts.checkpointActivations && opts.training ? { trainable: (prefix: string) => this.trainableUnder(prefix) } : undefined,
        };
        return decoderHidden(c, ctx, idx, opts.attentionMask, cache, packed, segments);
      }
      const C = c.dModel;
      const nh = c.nHead;
      const p = (n: string) => this.param(n);
      const pb = (n: string) => (c.bias ? this.param(n) : undefined);
      const rate = opts.training ? c.dropout : 0;
      let drops = 0;
      const drop = (t: tf.Tensor) => (rate > 0 ? dropoutOp(t, rate, mixSeed(opts.seed ?? 0, drops++)) : t);
      const peft = c.peft;
      const lora = peft?.type === 'lora' ? peft : undefined;
      const loraRate = opts.training && lora ? lora.dropout : 0;
      // LoRA's low-rank path x A (the B product follows per output block): undefined when not adapted
      const loraIn = (h: string, target: string, input: tf.Tensor): tf.Tensor | undefined => {
        if (!lora?.targets.includes(target as never)) return undefined;
        const xin = loraRate > 0 ? dropoutOp(input, loraRate, mixSeed(opts.seed ?? 0, 1000 + drops++)) : input;
        return tf.mul(linear(xin, p(`${h}${target}.lora_A.weight`)), lora.alpha / lora.rank);
      };
      const loraOut = (h: string, target: string, xa: tf.Tensor | undefined, y: tf.Tensor): tf.Tensor =>
        xa ? tf.add(y, linear(xa, p(`${h}${target}.lora_B.weight`))) : y;
      // each span's own adapter (continuous batching across LoRA fine-tunes of this model)
      const spans = segs && spanAdapters(segments, segs.starts);
      const spanLora = (h: string, target: string, input: tf.Tensor, y: tf.Tensor): tf.Tensor =>
        spans ? withSpanLora(y, input, spans, `${h}${target}`, target, 'gpt') : y;
      const adapter = (h: string, where: 'attn' | 'mlp', y: tf.Tensor): tf.Tensor => {
        if (peft?.type !== 'adapter') return y;
        const a = `${h}adapter_${where}.`;
        const down = gelu(linear(y, p(`${a}down.weight`), p(`${a}down.bias`)));
        return tf.add(y, linear(down, p(`${a}up.weight`), p(`${a}up.bias`)));
      };

      const tokEmb = tf.gather(p('wte.weight'), idx.reshape([-1])).reshape([B, T, C]); // (B, T, C)
      // (T, C), or per token (B, T, C) for packed examples, each from position 0
      // (all of wpe, when the rows span it, is wpe itself: a slice's gradient is a pad, a full copy)
      const wpe = p('wpe.weight');
      const posEmb = packed
        ? tf.gather(wpe, packed.positions).reshape([B, T, C])
        : segs
          ? tf.gather(wpe, tf.tensor1d(segs.positions, 'int32')).reshape([B, T, C])
          : offset === 0 && T === wpe.shape[0]
            ? wpe
            : tf.slice(wpe, [offset, 0], [T, C]);
      let x: tf.Tensor = drop(tf.add(tokEmb, posEmb)); // (B, T, C)

      // gpt attends causally; padding keys (attentionMask 0) are never attended to
      const attnOpts = {
        causal: c.arch === 'gpt',
        causalMask: () => this.causalMask(T),
        keyMask: opts.attentionMask,
        mask: packed?.mask,
        keyStart: packed?.keyStart,
      };

      for (let l = 0; l < c.nLayer; l++) {
        const input = x;
        // a scope per layer: what the backward pass does not keep is freed now, not after the last layer
        x = tf.tidy(() => {
          let x = input;
          const h = `h.${l}.`;
          // --- attention ---
          const a = layerNorm(x, p(`${h}ln_1.weight`), pb(`${h}ln_1.bias`));
          const xa = loraIn(h, 'attn.c_attn', a);
          const lora = xa ? { xa, b: p(`${h}attn.c_attn.lora_B.weight`) } : undefined;
          const projected = qkvProjection(a, p(`${h}attn.c_attn.weight`), pb(`${h}attn.c_attn.bias`), lora); // q, k, v: (B, T, C) each
          // (spans add their adapters' products to q, k and v side by side)
          const qkv = spans ? spanLora(h, 'attn.c_attn', a, Array.isArray(projected) ? tf.concat(projected, 2) : projected) : projected;
          const merged = segments
            ? segmentedAttention(qkv, nh, segments, segs?.starts ?? [], l)
            : cache
              ? cachedAttention(qkv, nh, cache, l, offset)
              : attention(qkv, nh, { ...attnOpts, dropout: rate > 0 ? { rate, seed: mixSeed(opts.seed ?? 0, drops++) } : undefined }); // (B, T, C), heads side by side
          const attnOut = spanLora(
            h,
            'attn.c_proj',
            merged,
            loraOut(h, 'attn.c_proj', loraIn(h, 'attn.c_proj', merged), linear(merged, p(`${h}attn.c_proj.weight`), pb(`${h}attn.c_proj.bias`))),
          );
          x = tf.add(x, drop(adapter(h, 'attn', attnOut)));
          // --- MLP ---
          const m = layerNorm(x, p(`${h}ln_2.weight`), pb(`${h}ln_2.bias`));
          const f = gelu(
            spanLora(h, 'mlp.c_fc', m, loraOut(h, 'mlp.c_fc', loraIn(h, 'mlp.c_fc', m), linear(m, p(`${h}mlp.c_fc.weight`), pb(`${h}mlp.c_fc.bias`)))),
          ); // (B, T, 4C)
          const mlpOut = spanLora(
            h,
            'mlp.c_proj',
            f,
            loraOut(h, 'mlp.c_proj', loraIn(h, 'mlp.c_proj', f), linear(f, p(`${h}mlp.c_proj.weight`), pb(`${h}mlp.c_proj.bias`))),
          ); // (B, T, C)
          x = tf.add(x, drop(adapter(h, 'mlp', mlpOut)));
          return x;
        });
      }
      cache?.advance(T);
      segments?.caches.forEach((k, s) => {
        k.advance(segments.lengths[s] as number);
      });
      return layerNorm(x, p('ln_f.weight'), pb('ln_f.bias')) as tf.Tensor3D;
    });
  }

  dispose(): void {
    for (const [name, v] of this.params) if (!this.borrowed.has(name)) v.dispose();
    for (const m of this.causalMasks.values()) m.dispose();
    for (const r of this.ropeCache.values()) tf.dispose([r.cos, r.sin]);
    this.params.clear();
    this.causalMasks.clear();
    this.ropeCache.clear();
  }

  /** RoPE's cos and sin tables for positions at..at+T-1 (llama architecture); those from 0 are kept per length. */
  private rope(T: number, at = 0): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
    this.ropeFrequencies ??= ropeInverseFrequencies(this.config.decoder as NonNullable<ModelConfig['decoder']>);
    if (at > 0) return ropeTables(this.ropeFrequencies, at, T); // decoding: disposed by the caller's tidy
    let r = this.ropeCache.get(T);
    if (!r) {
      const t = ropeTables(this.ropeFrequencies, 0, T);
      r = { cos: tf.keep(t.cos), sin: tf.keep(t.sin) };
      this.ropeCache.set(T, r);
    }
    return r;
  }

  private causalMask(T: number): tf.Tensor {
    let m = this.causalMasks.get(T);
    if (!m) {
      const data = new Float32Array(T * T);
      for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) data[i * T + j] = -1e9;
      m = tf.keep(tf.tensor2d(data, [T, T]));
      this.causalMasks.set(T, m);
    }
    return m;
  }
}

type Matcher = string | RegExp | ((name: string) => boolean);

function matches(name: string, m: Matcher): boolean {
  if (typeof m === 'function') return m(name);
  return typeof m === 'string' ? name.startsWith(m) : m.test(name);
}

/** GPT attention over the cache: the new positions' q, k and v ([B, T, C] each, or side by side), k and v appended to the layer's cache. */
function cachedAttention(qkv: tf.Tensor | [tf.Tensor, tf.Tensor, tf.Tensor], nh: number, cache: KvCache, layer: number, offset: number): tf.Tensor {
  const [q, k, v] = Array.isArray(qkv) ? qkv : (tf.split(qkv, 3, 2) as [tf.Tensor, tf.Tensor, tf.Tensor]);
  const [B, T, C] = q.shape as [number, number, number];
  const heads = (t: tf.Tensor) => t.reshape([B, T, nh, C / nh]).transpose([0, 2, 1, 3]) as tf.Tensor4D;
  const all = cache.append(layer, heads(k), heads(v));
  return groupedAttention(heads(q), all.k, all.v, { mask: cachedCausalMask(offset, T) });
}

/** GPT attention of several spans of new tokens (DecodeSegments), each over its own cache. */
function segmentedAttention(
  qkv: tf.Tensor | [tf.Tensor, tf.Tensor, tf.Tensor],
  nh: number,
  segments: DecodeSegments,
  starts: number[],
  layer: number,
): tf.Tensor {
  const span = (t: tf.Tensor, s: number) => t.slice([0, starts[s] as number, 0], [1, segments.lengths[s] as number, t.shape[2] as number]);
  const parts = segments.caches.map((cache, s) =>
    cachedAttention(Array.isArray(qkv) ? (qkv.map((t) => span(t, s)) as [tf.Tensor, tf.Tensor, tf.Tensor]) : span(qkv, s), nh, cache, layer, cache.length),
  );
  return parts.length === 1 ? (parts[0] as tf.Tensor) : tf.concat(parts, 1);
}
