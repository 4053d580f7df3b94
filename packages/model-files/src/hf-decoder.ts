// The llama architecture in Hugging Face's own layout: Llama (SmolLM2, TinyLlama, Llama 3.x),
// Qwen2 (Qwen2, Qwen2.5) and Qwen3 decoders. Parameters carry transformers' names and shapes
// unchanged (linear weights are [out, in], as nn.Linear stores them), so a checkpoint is a
// transformers state dict and LoRA targets are the module names people know (q_proj, ..., down_proj).
//
//   model.embed_tokens.weight                         [vocab, C]
//   model.layers.N.input_layernorm.weight             [C]
//   model.layers.N.self_attn.{q,k,v}_proj.weight      [heads x head_dim, C]  (k, v: kv heads)
//   model.layers.N.self_attn.{q,k,v}_proj.bias        Qwen2; attention_bias
//   model.layers.N.self_attn.{q,k}_norm.weight        [head_dim]  (Qwen3)
//   model.layers.N.self_attn.o_proj.weight            [C, heads x head_dim]  (+ bias with attention_bias)
//   model.layers.N.post_attention_layernorm.weight    [C]
//   model.layers.N.mlp.{gate,up}_proj.weight          [intermediate, C]
//   model.layers.N.mlp.down_proj.weight               [C, intermediate]
//   model.norm.weight                                 [C]
//   lm_head.weight                                    [vocab, C]  (untied only)

import {
  DECODER_FAMILIES,
  DECODER_LORA_TARGETS,
  type DecoderConfig,
  type DecoderFamily,
  type DecoderLoraTarget,
  type ModelConfig,
} from '@crucible/training-config';
import { ModelFormatError, type Weights } from './hf-gpt2';
import type { ParamSpec } from './params';

/** The transformers classes of each family (config.json's `architectures`). */
export const DECODER_ARCHITECTURES: Record<DecoderFamily, string> = {
  llama: 'LlamaForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
};

export function decoderParamSpecs(c: ModelConfig): ParamSpec[] {
  const d = decoderOf(c);
  const C = c.dModel;
  const q = c.nHead * d.headDim;
  const kv = d.nKvHead * d.headDim;
  const I = d.intermediateSize;
  const specs: ParamSpec[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, C], init: 'normal' }];
  const add = (name: string, shape: number[], init: ParamSpec['init']) => specs.push({ name, shape, init });
  const lin = (name: string, out: number, inDim: number, bias: boolean) => {
    add(`${name}.weight`, [out, inDim], 'normal');
    if (bias) add(`${name}.bias`, [out], 'zeros');
  };
  for (let l = 0; l < c.nLayer; l++) {
    const h = `model.layers.${l}.`;
    add(`${h}input_layernorm.weight`, [C], 'ones');
    lin(`${h}self_attn.q_proj`, q, C, d.qkvBias);
    lin(`${h}self_attn.k_proj`, kv, C, d.qkvBias);
    lin(`${h}self_attn.v_proj`, kv, C, d.qkvBias);
    if (d.qkNorm) {
      add(`${h}self_attn.q_norm.weight`, [d.headDim], 'ones');
      add(`${h}self_attn.k_norm.weight`, [d.headDim], 'ones');
    }
    lin(`${h}self_attn.o_proj`, C, q, d.oBias);
    add(`${h}post_attention_layernorm.weight`, [C], 'ones');
    lin(`${h}mlp.gate_proj`, I, C, d.mlpBias);
    lin(`${h}mlp.up_proj`, I, C, d.mlpBias);
    lin(`${h}mlp.down_proj`, C, I, d.mlpBias);
  }
  add('model.norm.weight', [C], 'ones');
  if (!c.tiedEmbeddings) add('lm_head.weight', [c.vocabSize, C], 'normal');
  return specs;
}

/** Where a LoRA target sits in a block, and its [out, in]. */
export function decoderModule(c: ModelConfig, target: DecoderLoraTarget): { path: string; out: number; in: number } {
  const d = decoderOf(c);
  const q = c.nHead * d.headDim;
  const kv = d.nKvHead * d.headDim;
  const C = c.dModel;
  const I = d.intermediateSize;
  const dims: Record<DecoderLoraTarget, [string, number, number]> = {
    q_proj: ['self_attn', q, C],
    k_proj: ['self_attn', kv, C],
    v_proj: ['self_attn', kv, C],
    o_proj: ['self_attn', C, q],
    gate_proj: ['mlp', I, C],
    up_proj: ['mlp', I, C],
    down_proj: ['mlp', C, I],
  };
  const [where, out, inDim] = dims[target];
  return { path: `${where}.${target}`, out, in: inDim };
}

/**
 * LoRA on a llama-architecture model, in PEFT's own layout: model.layers.N.<module>.lora_A.weight
 * [rank, in] (random) and lora_B.weight [out, rank] (zeros), so the adapted model starts equal to
 * the base. Bottleneck adapters are not offered on these models.
 */
export function decoderLoraSpecs(c: ModelConfig): ParamSpec[] {
  const p = c.peft;
  if (!p) return [];
  if (p.type !== 'lora') throw new Error('bottleneck adapters are not available on llama-architecture models (use LoRA)');
  const specs: ParamSpec[] = [];
  for (let l = 0; l < c.nLayer; l++) {
    for (const t of p.targets) {
      if (!(DECODER_LORA_TARGETS as readonly string[]).includes(t)) throw new Error(`LoRA target ${t} is not a module of a llama-architecture model`);
      const m = decoderModule(c, t as DecoderLoraTarget);
      specs.push({ name: `model.layers.${l}.${m.path}.lora_A.weight`, shape: [p.rank, m.in], init: 'lora_a_t' });
      specs.push({ name: `model.layers.${l}.${m.path}.lora_B.weight`, shape: [m.out, p.rank], init: 'zeros' });
    }
  }
  return specs;
}

export function decoderOf(c: ModelConfig): DecoderConfig {
  if (c.arch !== 'llama' || !c.decoder) throw new Error(`a ${c.arch} model has no llama decoder config`);
  return c.decoder;
}

/**
 * The ModelConfig of a Hugging Face config.json of a supported family. What Crucible cannot run
 * exactly as transformers does (another model_type or class, a RoPE scaling other than llama3, a
 * sliding window, another activation) is refused naming the field and its value.
 */
export function decoderConfigFromHf(cfg: Record<string, unknown>, file = 'config.json'): ModelConfig {
  const fail = (field: string, why: string): never => {
    throw new ModelFormatError(`${file}: ${field} ${why}`, file);
  };
  const family = cfg.model_type;
  if (typeof family !== 'string' || !(DECODER_FAMILIES as readonly string[]).includes(family)) {
    fail('model_type', `${JSON.stringify(family)} is not supported (supported: ${DECODER_FAMILIES.join(', ')}, gpt2)`);
  }
  const f = family as DecoderFamily;
  const archs = cfg.architectures;
  if (archs !== undefined && !(Array.isArray(archs) && archs.length === 1 && archs[0] === DECODER_ARCHITECTURES[f])) {
    fail('architectures', `${JSON.stringify(archs)} is not supported for model_type ${f} (expected ["${DECODER_ARCHITECTURES[f]}"])`);
  }
  const int = (k: string, dflt?: number): number => {
    const v = cfg[k] ?? dflt;
    if (!Number.isSafeInteger(v) || (v as number) <= 0) fail(k, `must be a positive integer, got ${JSON.stringify(cfg[k])}`);
    return v as number;
  };
  const num = (k: string, dflt?: number): number => {
    const v = cfg[k] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(k, `must be a positive number, got ${JSON.stringify(cfg[k])}`);
    return v as number;
  };
  const bool = (k: string, dflt: boolean): boolean => {
    const v = cfg[k] ?? dflt;
    if (typeof v !== 'boolean') fail(k, `must be true or false, got ${JSON.stringify(cfg[k])}`);
    return v as boolean;
  };
  const hidden = int('hidden_size');
  const heads = int('num_attention_heads');
  const kvHeads = int('num_key_value_heads', heads);
  if (heads % kvHeads !== 0) fail('num_key_value_heads', `${kvHeads} must divide num_attention_heads ${heads}`);
  // Qwen3's head_dim defaults to 128; the others' to hidden_size / num_attention_heads
  const headDim = cfg.head_dim === undefined || cfg.head_dim === null ? (f === 'qwen3' ? 128 : hidden / heads) : int('head_dim');
  if (!Number.isInteger(headDim)) fail('hidden_size', `${hidden} is not a multiple of num_attention_heads ${heads} and head_dim is not given`);
  if (headDim % 2 !== 0) fail('head_dim', `${headDim} must be even (RoPE rotates pairs)`);
  const act = cfg.hidden_act ?? 'silu';
  if (act !== 'silu') fail('hidden_act', `${JSON.stringify(act)} is not supported (silu)`);
  if (cfg.rope_interleaved === true) fail('rope_interleaved', 'true is not supported (Hugging Face rotate_half layout only)');
  if (f !== 'llama' && cfg.use_sliding_window === true) fail('use_sliding_window', 'true is not supported (full attention only)');
  if (cfg.pretraining_tp !== undefined && cfg.pretraining_tp !== 1) fail('pretraining_tp', `${JSON.stringify(cfg.pretraining_tp)} is not supported (1)`);
  if (cfg.partial_rotary_factor !== undefined && cfg.partial_rotary_factor !== 1)
    fail('partial_rotary_factor', `${JSON.stringify(cfg.partial_rotary_factor)} is not supported (1)`);
  const attentionBias = bool('attention_bias', false);
  const decoder: DecoderConfig = {
    family: f,
    nKvHead: kvHeads,
    headDim,
    intermediateSize: int('intermediate_size'),
    rmsNormEps: num('rms_norm_eps', 1e-6),
    ropeTheta: num('rope_theta', 10000),
    // Qwen2 always has q/k/v biases and no o_proj bias; Llama and Qwen3 follow attention_bias for all four
    qkvBias: f === 'qwen2' ? true : attentionBias,
    oBias: f === 'qwen2' ? false : attentionBias,
    mlpBias: f === 'llama' ? bool('mlp_bias', false) : false,
    qkNorm: f === 'qwen3',
  };
  const scaling = cfg.rope_scaling;
  if (scaling !== undefined && scaling !== null) {
    const s = scaling as Record<string, unknown>;
    const type = s.rope_type ?? s.type;
    if (typeof scaling !== 'object' || Array.isArray(scaling) || type !== 'llama3') {
      fail('rope_scaling', `${JSON.stringify(scaling)} is not supported (only rope_type "llama3")`);
    }
    const sub = (k: string): number => {
      const v = s[k];
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(`rope_scaling.${k}`, `must be a positive number, got ${JSON.stringify(v)}`);
      return v as number;
    };
    decoder.ropeScaling = {
      type: 'llama3',
      factor: sub('factor'),
      lowFreqFactor: sub('low_freq_factor'),
      highFreqFactor: sub('high_freq_factor'),
      originalMaxPositionEmbeddings: sub('original_max_position_embeddings'),
    };
    if (decoder.ropeScaling.highFreqFactor <= decoder.ropeScaling.lowFreqFactor) {
      fail('rope_scaling.high_freq_factor', `${decoder.ropeScaling.highFreqFactor} must exceed low_freq_factor ${decoder.ropeScaling.lowFreqFactor}`);
    }
  }
  return {
    arch: 'llama',
    vocabSize: int('vocab_size'),
    nLayer: int('num_hidden_layers'),
    nHead: heads,
    dModel: hidden,
    blockSize: int('max_position_embeddings', 2048),
    ffnMult: 4,
    dropout: 0,
    bias: false,
    // these classes' configs default to an untied lm_head
    tiedEmbeddings: bool('tie_word_embeddings', false),
    decoder,
  };
}

/** A shard of a sharded checkpoint, as transformers names them. */
export const DECODER_SHARD = /^model-\d{5}-of-\d{5}\.safetensors$/;
export const DECODER_INDEX = 'model.safetensors.index.json';

/** Tensors a checkpoint may carry beyond the parameters, which loading ignores (transformers does too). */
function ignorable(c: ModelConfig, name: string): boolean {
  return /\.rotary_emb\.inv_freq$/.test(name) || (c.tiedEmbeddings && name === 'lm_head.weight');
}

/**
 * Checks the tensors of a llama-family checkpoint (every file's safetensors header, and the
 * index's weight_map when sharded) against its config before any weight is read: each parameter
 * once, with its shape, in F32, F16 or BF16; no tensor the architecture lacks. The embedding's
 * rows must equal config.json's vocab_size.
 */
export function checkDecoderHeaders(
  c: ModelConfig,
  files: ReadonlyMap<string, ReadonlyMap<string, { dtype: string; shape: number[] }>>,
  weightMap?: Record<string, unknown>,
): void {
  const specs = decoderParamSpecs(c);
  const total = [...files.values()].reduce((n, e) => n + e.size, 0);
  // a config claiming many more layers than the files hold is refused from two numbers
  if (total < specs.length) {
    throw new ModelFormatError(`config.json's num_hidden_layers ${c.nLayer} implies ${specs.length} tensors; the weights hold ${total}`, 'config.json');
  }
  const found = new Map<string, { file: string; dtype: string; shape: number[] }>();
  for (const [file, entries] of files) {
    for (const [name, e] of entries) {
      const seen = found.get(name);
      if (seen) throw new ModelFormatError(`${name} is in both ${seen.file} and ${file}`, file);
      found.set(name, { file, ...e });
    }
  }
  if (weightMap) {
    for (const [name, at] of found) {
      if (weightMap[name] !== at.file)
        throw new ModelFormatError(
          `${DECODER_INDEX}: weight_map puts ${name} in ${JSON.stringify(weightMap[name] ?? null)}, but it is in ${at.file}`,
          DECODER_INDEX,
        );
    }
    for (const name of Object.keys(weightMap))
      if (!found.has(name)) throw new ModelFormatError(`${DECODER_INDEX}: weight_map names ${name}, which no shard holds`, DECODER_INDEX);
  }
  const embed = found.get('model.embed_tokens.weight');
  if (embed && embed.shape[0] !== c.vocabSize) {
    throw new ModelFormatError(`config.json's vocab_size ${c.vocabSize} must equal the rows of model.embed_tokens.weight, ${embed.shape[0]}`, 'config.json');
  }
  for (const s of specs) {
    const e = found.get(s.name);
    if (!e) throw new ModelFormatError(`the weights lack ${s.name} (shape [${s.shape}])`, 'model.safetensors');
    if (!['F32', 'F16', 'BF16'].includes(e.dtype)) throw new ModelFormatError(`${s.name}: dtype ${e.dtype} is not supported (F32, F16, BF16)`, e.file);
    if (e.shape.join(',') !== s.shape.join(',')) throw new ModelFormatError(`${s.name} has shape [${e.shape}], config.json implies [${s.shape}]`, e.file);
    found.delete(s.name);
  }
  const extra = [...found.keys()].filter((n) => !ignorable(c, n));
  if (extra.length)
    throw new ModelFormatError(
      `the weights hold tensors a ${c.decoder?.family} model does not: ${extra.slice(0, 5).join(', ')}`,
      found.get(extra[0] as string)?.file ?? 'model.safetensors',
    );
}

/** Every tokenizer id must have a row in the embedding (Qwen pads the embedding past the tokenizer: that is valid). */
export function checkTokenizerFits(c: ModelConfig, tokenizerIds: number): void {
  if (tokenizerIds > c.vocabSize) {
    throw new ModelFormatError(
      `tokenizer.json has ids up to ${tokenizerIds - 1} (${tokenizerIds} ids), but config.json's vocab_size and the embedding's rows are ${c.vocabSize}`,
      'tokenizer.json',
    );
  }
}

/** The parameters of a llama-family model from its decoded tensors (float32), by their own names; other tensors are left. */
export function takeDecoderWeights(c: ModelConfig, tensors: Map<string, { shape: number[]; data: Float32Array | Int32Array }>, into: Weights): void {
  for (const s of decoderParamSpecs(c)) {
    const t = tensors.get(s.name);
    if (!t) continue; // in another shard
    if (!(t.data instanceof Float32Array)) throw new ModelFormatError(`${s.name} is not a floating-point tensor`, 'model.safetensors');
    into.set(s.name, { shape: s.shape, data: t.data });
    tensors.delete(s.name);
  }
}

export { DECODER_FAMILIES, type DecoderFamily, type ModelConfig };

/** config.json for transformers' LlamaForCausalLM, Qwen2ForCausalLM or Qwen3ForCausalLM (what decoderConfigFromHf reads back). */
export function hfDecoderConfig(c: ModelConfig, ids: { bos?: number; eos?: number; pad?: number } = {}): Record<string, unknown> {
  const d = decoderOf(c);
  const s = d.ropeScaling;
  return {
    architectures: [DECODER_ARCHITECTURES[d.family]],
    model_type: d.family,
    hidden_size: c.dModel,
    intermediate_size: d.intermediateSize,
    num_attention_heads: c.nHead,
    num_key_value_heads: d.nKvHead,
    num_hidden_layers: c.nLayer,
    head_dim: d.headDim,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.blockSize,
    rms_norm_eps: d.rmsNormEps,
    rope_theta: d.ropeTheta,
    rope_scaling: s
      ? {
          rope_type: 'llama3',
          factor: s.factor,
          low_freq_factor: s.lowFreqFactor,
          high_freq_factor: s.highFreqFactor,
          original_max_position_embeddings: s.originalMaxPositionEmbeddings,
        }
      : null,
    ...(d.family === 'qwen2' ? { use_sliding_window: false } : { attention_bias: d.qkvBias }),
    ...(d.family === 'llama' ? { mlp_bias: d.mlpBias } : {}),
    hidden_act: 'silu',
    tie_word_embeddings: c.tiedEmbeddings,
    bos_token_id: ids.bos ?? null,
    eos_token_id: ids.eos ?? null,
    pad_token_id: ids.pad ?? null,
    torch_dtype: 'float32',
    use_cache: true,
  };
}
