// The Hugging Face GPT-2 layout, both ways. A Crucible GPT model is GPT-2's architecture
// (pre-LayerNorm blocks, fused c_attn, GELU-tanh MLP, learned positions, Conv1D weights stored
// [in, out]), so its parameters map one to one onto `transformer.*` names with the same
// orientation; config.json uses GPT-2's keys plus a `crucible` section for what GPT-2 lacks.
//
//   Crucible name                 Hugging Face name                          shape
//   wte.weight                    transformer.wte.weight                     [vocab, C]
//   wpe.weight                    transformer.wpe.weight                     [n_positions, C]
//   h.N.ln_1.{weight,bias}        transformer.h.N.ln_1.{weight,bias}         [C]
//   h.N.attn.c_attn.weight        transformer.h.N.attn.c_attn.weight         [C, 3C]  (q | k | v columns)
//   h.N.attn.c_proj.weight        transformer.h.N.attn.c_proj.weight         [C, C]
//   h.N.mlp.c_fc.weight           transformer.h.N.mlp.c_fc.weight            [C, n_inner]
//   h.N.mlp.c_proj.weight         transformer.h.N.mlp.c_proj.weight          [n_inner, C]
//   ln_f.{weight,bias}            transformer.ln_f.{weight,bias}             [C]
//   lm_head.weight (untied only)  lm_head.weight                             [vocab, C]
//
// Models without biases export zero biases (the same function); reading such a file back gives
// a model with zero biases. Bottleneck adapters have no GPT-2 equivalent: those models are
// written with model_type `crucible_gpt2_adapters`, which Hugging Face refuses by name instead
// of loading a different model.

import type { AdapterConfig, LORA_TARGETS, ModelConfig } from '@crucible/training-config';
import { baseParamSpecs, type ParamSpec } from './params';
import type { NamedTensor } from './safetensors';
import { SPECIAL_TOKENS, type Tokenizer } from './tokenizer';

export type Weights = Map<string, { shape: number[]; data: Float32Array }>;

export const HF_PREFIX = 'transformer.';
/** The model_type of GPT models with bottleneck adapters (no Hugging Face class loads them). */
export const ADAPTER_MODEL_TYPE = 'crucible_gpt2_adapters';
const LN_EPS = 1e-5;

export class ModelFormatError extends Error {
  constructor(
    message: string,
    readonly file: string,
  ) {
    super(message);
  }
}

/** GPT-2's config.json for a Crucible GPT model. */
export function gpt2Config(c: ModelConfig, tokenizer: Pick<Tokenizer, 'special'>): Record<string, unknown> {
  if (c.arch !== 'gpt') throw new Error('only gpt models have a GPT-2 layout');
  const eot = tokenizer.special('eot') ?? null;
  const adapters = c.peft?.type === 'adapter' ? c.peft : undefined;
  return {
    architectures: [adapters ? 'CrucibleGPT2WithAdapters' : 'GPT2LMHeadModel'],
    model_type: adapters ? ADAPTER_MODEL_TYPE : 'gpt2',
    vocab_size: c.vocabSize,
    n_positions: c.blockSize,
    n_ctx: c.blockSize,
    n_embd: c.dModel,
    n_layer: c.nLayer,
    n_head: c.nHead,
    n_inner: c.dModel * c.ffnMult,
    activation_function: 'gelu_new',
    resid_pdrop: c.dropout,
    embd_pdrop: c.dropout,
    attn_pdrop: c.dropout,
    layer_norm_epsilon: LN_EPS,
    initializer_range: 0.02,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    use_cache: true,
    tie_word_embeddings: c.tiedEmbeddings,
    bos_token_id: eot,
    eos_token_id: eot,
    pad_token_id: tokenizer.special('pad') ?? null,
    torch_dtype: 'float32',
    crucible: {
      format_version: 1,
      bias: c.bias,
      ...(adapters ? { adapters: { size: adapters.size } } : {}),
      ...(c.bias ? {} : { note: 'trained without biases: the bias tensors are zeros' }),
    },
  };
}

/** A ModelConfig from a GPT-2 config.json (Crucible's or Hugging Face's), or a clear error. */
export function configFromGpt2(doc: Record<string, unknown>): ModelConfig {
  const fail = (msg: string): never => {
    throw new ModelFormatError(`config.json: ${msg}`, 'config.json');
  };
  const type = doc.model_type;
  if (type !== 'gpt2' && type !== ADAPTER_MODEL_TYPE) fail(`model_type must be "gpt2" (GPT-2 architecture), got ${JSON.stringify(type)}`);
  const int = (key: string, fallback?: string): number => {
    const v = doc[key] ?? (fallback ? doc[fallback] : undefined);
    if (!Number.isSafeInteger(v) || (v as number) <= 0) fail(`${key} must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const C = int('n_embd');
  const nHead = int('n_head');
  if (C % nHead !== 0) fail(`n_embd (${C}) must be divisible by n_head (${nHead})`);
  const inner = doc.n_inner == null ? 4 * C : int('n_inner');
  if (inner % C !== 0) fail(`n_inner (${inner}) must be a multiple of n_embd (${C}); Crucible's MLP width is a multiple of the model width`);
  const act = doc.activation_function ?? 'gelu_new';
  if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') fail(`activation_function ${JSON.stringify(act)} is not supported (only GPT-2's gelu_new)`);
  const eps = doc.layer_norm_epsilon ?? LN_EPS;
  if (typeof eps !== 'number' || Math.abs(eps - LN_EPS) > 1e-12) fail(`layer_norm_epsilon must be ${LN_EPS}, got ${JSON.stringify(eps)}`);
  if (doc.scale_attn_by_inverse_layer_idx === true) fail('scale_attn_by_inverse_layer_idx is not supported');
  if (doc.scale_attn_weights === false) fail('scale_attn_weights=false is not supported');
  const crucible = (doc.crucible ?? {}) as { bias?: boolean; adapters?: { size?: number } };
  const dropout = typeof doc.resid_pdrop === 'number' ? doc.resid_pdrop : 0;
  const config: ModelConfig = {
    arch: 'gpt',
    vocabSize: int('vocab_size'),
    nLayer: int('n_layer'),
    nHead,
    dModel: C,
    blockSize: int('n_positions', 'n_ctx'),
    ffnMult: inner / C,
    dropout: dropout >= 0 && dropout < 1 ? dropout : 0,
    bias: crucible.bias !== false,
    tiedEmbeddings: doc.tie_word_embeddings !== false,
  };
  if (type === ADAPTER_MODEL_TYPE) {
    const size = crucible.adapters?.size;
    if (!Number.isInteger(size) || (size as number) <= 0) fail('crucible.adapters.size must be a positive integer');
    config.peft = { type: 'adapter', size } as AdapterConfig;
  }
  return config;
}

/** Crucible parameter name -> Hugging Face name. */
export function hfName(name: string): string {
  if (name === 'lm_head.weight') return name;
  return HF_PREFIX + name;
}

/** A tensor's name without `transformer.` (published files use both), or null for GPT-2's attention-mask buffers. */
function bareName(name: string): string | null {
  const bare = name.startsWith(HF_PREFIX) ? name.slice(HF_PREFIX.length) : name;
  return /^h\.\d+\.attn\.(masked_)?bias$/.test(bare) ? null : bare;
}

/** GPT-2's parameters for a config: a GPT-2 file always has biases (a model without them writes zeros). */
function gpt2Specs(c: ModelConfig): ParamSpec[] {
  const { peft: _peft, ...plain } = c;
  return baseParamSpecs({ ...plain, bias: true });
}

/** GPT-2 tensor names (bare) and shapes implied by a config, for checking a file by its header. */
export function expectedGpt2Shapes(c: ModelConfig): Map<string, number[]> {
  return new Map(gpt2Specs(c).map((s) => [s.name, s.shape]));
}

/** The GPT-2 tensors of a model (LoRA merged beforehand; adapter tensors kept under their own names). */
export function toGpt2Tensors(c: ModelConfig, weights: Weights): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const [name, w] of weights) {
    if (name.includes('.lora_')) throw new Error(`merge LoRA before exporting (found ${name})`);
    out.set(hfName(name), { dtype: 'F32', shape: w.shape, data: w.data });
  }
  if (!c.bias) {
    for (const s of gpt2Specs(c)) {
      if (s.name.endsWith('.bias') && !weights.has(s.name))
        out.set(hfName(s.name), { dtype: 'F32', shape: s.shape, data: new Float32Array(s.shape[0] as number) });
    }
  }
  return out;
}

/**
 * Crucible weights (base parameters) from GPT-2 tensors. Names may carry the `transformer.` prefix
 * or not; GPT-2's attention-mask buffers are ignored; a model without biases drops the file's
 * (zero) biases.
 */
export function fromGpt2Tensors(c: ModelConfig, tensors: Map<string, NamedTensor>): Weights {
  const byName = new Map<string, NamedTensor>();
  for (const [name, t] of tensors) {
    const bare = bareName(name);
    if (bare !== null) byName.set(bare, t);
  }
  const { peft: _peft, ...plain } = c;
  const out: Weights = new Map();
  for (const { name, shape } of baseParamSpecs(plain)) {
    const t = byName.get(name);
    if (!t) throw new ModelFormatError(`model.safetensors lacks ${hfName(name)} (shape [${shape}])`, 'model.safetensors');
    if (t.dtype !== 'F32') throw new ModelFormatError(`${hfName(name)}: dtype ${t.dtype} is not a float type`, 'model.safetensors');
    if (t.shape.join(',') !== shape.join(',')) {
      throw new ModelFormatError(`${hfName(name)} has shape [${t.shape}], config.json implies [${shape}]`, 'model.safetensors');
    }
    out.set(name, { shape, data: t.data as Float32Array });
    byName.delete(name);
  }
  if (c.tiedEmbeddings) byName.delete('lm_head.weight'); // some files store the tied head too
  if (!c.bias) for (const n of [...byName.keys()]) if (n.endsWith('.bias')) byName.delete(n);
  const extra = [...byName.keys()];
  if (extra.length)
    throw new ModelFormatError(`model.safetensors has tensors a GPT-2 model of this config does not: ${extra.slice(0, 5).join(', ')}`, 'model.safetensors');
  return out;
}

/** Checks a safetensors header against a config without reading the tensors (imports). */
export function checkGpt2Header(c: ModelConfig, entries: Map<string, { dtype: string; shape: number[] }>): void {
  // the config's layer count against the file's tensors before anything is built from the config:
  // a config.json claiming millions of layers is refused from two numbers (then the expected
  // shapes, bounded by the file's own tensor count, are checked one by one)
  const tensors = 4 + 12 * c.nLayer;
  if (entries.size < tensors) {
    throw new ModelFormatError(`config.json's n_layer ${c.nLayer} implies ${tensors} tensors; model.safetensors has ${entries.size}`, 'config.json');
  }
  const found = new Map<string, { dtype: string; shape: number[] }>();
  for (const [name, e] of entries) {
    const bare = bareName(name);
    if (bare !== null) found.set(bare, e);
  }
  for (const [name, shape] of expectedGpt2Shapes(c)) {
    const e = found.get(name);
    if (!e) throw new ModelFormatError(`model.safetensors lacks ${hfName(name)} (shape [${shape}])`, 'model.safetensors');
    if (!['F32', 'F16', 'BF16'].includes(e.dtype))
      throw new ModelFormatError(`${hfName(name)}: dtype ${e.dtype} is not supported (F32, F16, BF16)`, 'model.safetensors');
    if (e.shape.join(',') !== shape.join(',')) {
      throw new ModelFormatError(`${hfName(name)} has shape [${e.shape}], config.json implies [${shape}]`, 'model.safetensors');
    }
    found.delete(name);
  }
  found.delete('lm_head.weight');
  const adapters = [...found.keys()].filter((n) => /\.adapter_(attn|mlp)\./.test(n));
  for (const a of adapters) found.delete(a);
  if (found.size)
    throw new ModelFormatError(`model.safetensors has tensors a GPT-2 model does not: ${[...found.keys()].slice(0, 5).join(', ')}`, 'model.safetensors');
}

/** LoRA targets as PEFT names them for GPT-2 (module names inside a block). */
export const PEFT_TARGET_NAMES: Record<(typeof LORA_TARGETS)[number], string> = {
  'attn.c_attn': 'c_attn',
  'attn.c_proj': 'attn.c_proj',
  'mlp.c_fc': 'c_fc',
  'mlp.c_proj': 'mlp.c_proj',
};

/** tokenizer_config.json, special_tokens_map.json and generation_config.json for a tokenizer. */
export function tokenizerSideFiles(tokenizer: Tokenizer, blockSize: number): Record<string, Record<string, unknown>> {
  const roles: Array<[string, keyof typeof SPECIAL_TOKENS]> = [
    ['bos_token', 'eot'],
    ['eos_token', 'eot'],
    ['unk_token', 'unk'],
    ['pad_token', 'pad'],
    ['mask_token', 'mask'],
    ['cls_token', 'cls'],
    ['sep_token', 'sep'],
  ];
  const map: Record<string, unknown> = {};
  for (const [key, role] of roles) if (tokenizer.special(role) !== undefined) map[key] = SPECIAL_TOKENS[role];
  const chat = ['im_start', 'im_end'].filter((r) => tokenizer.special(r as 'im_start') !== undefined).map((r) => SPECIAL_TOKENS[r as 'im_start']);
  if (chat.length) map.additional_special_tokens = chat;
  const decoder: Record<string, unknown> = {};
  for (const [content, id] of [...tokenizer.specialTokens].sort((a, b) => a[1] - b[1])) {
    decoder[String(id)] = { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  }
  const eot = tokenizer.special('eot');
  return {
    'tokenizer_config.json': {
      tokenizer_class: 'PreTrainedTokenizerFast',
      model_max_length: blockSize,
      clean_up_tokenization_spaces: false,
      add_bos_token: false,
      add_eos_token: false,
      added_tokens_decoder: decoder,
      ...map,
      ...(chat.length === 2 ? { chat_template: CHAT_TEMPLATE_JINJA } : {}),
    },
    'special_tokens_map.json': map,
    'generation_config.json': {
      ...(eot !== undefined ? { bos_token_id: eot, eos_token_id: tokenizer.special('im_end') !== undefined ? [eot, tokenizer.special('im_end')] : eot } : {}),
      ...(tokenizer.special('pad') !== undefined ? { pad_token_id: tokenizer.special('pad') } : {}),
    },
  };
}

/** The chat template of @crucible/domain's renderChat, in the Jinja that transformers runs. */
export const CHAT_TEMPLATE_JINJA =
  "{% for message in messages %}{% set role = 'system' if message['role'] == 'developer' else message['role'] %}" +
  "{{ '<|im_start|>' + role + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
