// Adapter files. LoRA is written as Hugging Face PEFT writes it for GPT-2:
//   adapter_model.safetensors  base_model.model.transformer.h.N.<module>.lora_A.weight  [rank, in]
//                              base_model.model.transformer.h.N.<module>.lora_B.weight  [out, rank]
//   adapter_config.json        peft_type LORA, r, lora_alpha, lora_dropout, target_modules,
//                              fan_in_fan_out true (GPT-2's Conv1D stores weights [in, out])
// Crucible keeps A as [in, rank] and B as [rank, out] (x @ A @ B), so both are transposed.
// Bottleneck adapters have no PEFT type; they are written in Crucible's own documented names.

import { type AdapterConfig, DECODER_LORA_TARGETS, type LoraConfig, type LoraTarget, type ModelConfig, PEFT_DEFAULTS } from '@crucible/training-config';
import { HF_PREFIX, ModelFormatError, PEFT_TARGET_NAMES, type Weights } from './hf-gpt2';
import type { NamedTensor } from './safetensors';

const PEFT_PREFIX = `base_model.model.${HF_PREFIX}`;
export const ADAPTER_PEFT_TYPE = 'CRUCIBLE_BOTTLENECK';

/** Whether a parameter name belongs to an adapter (LoRA or bottleneck), not to the base model. */
export function isAdapterParam(name: string): boolean {
  return name.includes('.lora_') || name.includes('.adapter_');
}

export function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = data[i * cols + j] as number;
  return out;
}

/**
 * LoRA parameters -> PEFT's adapter_model.safetensors tensors and adapter_config.json. A
 * llama-architecture model's are already in PEFT's names and layout (fan_in_fan_out false).
 */
export function loraToPeft(
  c: LoraConfig,
  weights: Weights,
  baseModel: string,
  arch: ModelConfig['arch'] = 'gpt',
): { tensors: Map<string, NamedTensor>; config: Record<string, unknown> } {
  const tensors = new Map<string, NamedTensor>();
  const decoder = arch === 'llama';
  for (const [name, w] of weights) {
    if (!name.includes('.lora_')) continue;
    const [rows, cols] = w.shape as [number, number];
    if (decoder) tensors.set(`base_model.model.${name}`, { dtype: 'F32', shape: [rows, cols], data: w.data });
    else tensors.set(PEFT_PREFIX + name, { dtype: 'F32', shape: [cols, rows], data: transpose(w.data, rows, cols) });
  }
  return {
    tensors,
    config: {
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: baseModel,
      r: c.rank,
      lora_alpha: c.alpha,
      lora_dropout: c.dropout,
      target_modules: decoder ? [...c.targets] : c.targets.map((t) => PEFT_TARGET_NAMES[t as keyof typeof PEFT_TARGET_NAMES]),
      fan_in_fan_out: !decoder,
      bias: 'none',
      inference_mode: true,
      init_lora_weights: true,
      modules_to_save: null,
      layers_to_transform: null,
      use_rslora: false,
      use_dora: false,
      revision: null,
    },
  };
}

/**
 * PEFT LoRA files -> Crucible's LoRA config and parameters: for GPT-2 (fan_in_fan_out) A [in, rank]
 * and B [rank, out]; for the llama architecture PEFT's own names and layout.
 */
export function loraFromPeft(
  config: Record<string, unknown>,
  tensors: Map<string, NamedTensor>,
  arch: ModelConfig['arch'] = 'gpt',
): { peft: LoraConfig; weights: Weights } {
  if (config.peft_type !== 'LORA')
    throw new ModelFormatError(`adapter_config.json: peft_type ${JSON.stringify(config.peft_type)} is not LORA`, 'adapter_config.json');
  const decoder = arch === 'llama';
  const byPeftName: Record<string, LoraTarget> = decoder
    ? Object.fromEntries(DECODER_LORA_TARGETS.map((t) => [t, t]))
    : Object.fromEntries(Object.entries(PEFT_TARGET_NAMES).map(([k, v]) => [v, k as LoraTarget]));
  const targets = ((config.target_modules as string[]) ?? []).map((m) => {
    const t = byPeftName[m];
    if (!t) throw new ModelFormatError(`adapter_config.json: target module ${m} is not one Crucible adapts`, 'adapter_config.json');
    return t;
  });
  const prefix = decoder ? 'base_model.model.' : PEFT_PREFIX;
  const weights: Weights = new Map();
  for (const [name, t] of tensors) {
    if (!name.startsWith(prefix)) throw new ModelFormatError(`adapter_model.safetensors: unexpected tensor ${name}`, 'adapter_model.safetensors');
    if (t.dtype !== 'F32' || t.shape.length !== 2)
      throw new ModelFormatError(`adapter_model.safetensors: ${name} is not a 2-D F32 tensor`, 'adapter_model.safetensors');
    const [rows, cols] = t.shape as [number, number];
    const data = t.data as Float32Array;
    weights.set(name.slice(prefix.length), decoder ? { shape: [rows, cols], data } : { shape: [cols, rows], data: transpose(data, rows, cols) });
  }
  const peft: LoraConfig = {
    type: 'lora',
    rank: config.r as number,
    alpha: (config.lora_alpha as number) ?? PEFT_DEFAULTS.lora.alpha,
    dropout: (config.lora_dropout as number) ?? 0,
    targets,
  };
  return { peft, weights };
}

/** The config of what a model is stored as: a LoRA model's merged weights are a plain model. */
export function storedConfig(c: ModelConfig): ModelConfig {
  if (c.peft?.type !== 'lora') return c;
  const { peft: _peft, ...plain } = c;
  return plain;
}

/**
 * W + (alpha / rank) * A @ B for every adapted weight (gpt: W [in, out], A [in, r], B [r, out]);
 * W + (alpha / rank) * B @ A on a llama-architecture model (PEFT's layout: W [out, in], A [r, in],
 * B [out, r]). The LoRA parameters are dropped.
 */
export function mergeLora(c: ModelConfig, weights: Weights): Weights {
  if (c.peft?.type !== 'lora') throw new Error('mergeLora needs a LoRA model');
  const scale = c.peft.alpha / c.peft.rank;
  const out: Weights = new Map();
  for (const [name, w] of weights) if (!name.includes('.lora_')) out.set(name, { shape: w.shape, data: Float32Array.from(w.data) });
  for (const [name, a] of weights) {
    if (!name.endsWith('.lora_A.weight')) continue;
    const target = name.slice(0, -'.lora_A.weight'.length);
    const b = weights.get(`${target}.lora_B.weight`);
    const w = out.get(`${target}.weight`);
    if (!b || !w) throw new Error(`LoRA ${target}: missing B or base weight`);
    if (c.arch === 'llama')
      addScaledProduct(w.data, b, a, scale); // W [out, in] += B [out, r] A [r, in]
    else addScaledProduct(w.data, a, b, scale); // W [in, out] += A [in, r] B [r, out]
  }
  return out;
}

/** Bottleneck adapter parameters -> adapter_model.safetensors tensors and adapter_config.json. */
export function bottleneckToFiles(
  c: AdapterConfig,
  weights: Weights,
  baseModel: string,
): { tensors: Map<string, NamedTensor>; config: Record<string, unknown> } {
  const tensors = new Map<string, NamedTensor>();
  for (const [name, w] of weights) if (name.includes('.adapter_')) tensors.set(HF_PREFIX + name, { dtype: 'F32', shape: w.shape, data: w.data });
  return {
    tensors,
    config: {
      peft_type: ADAPTER_PEFT_TYPE,
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: baseModel,
      adapter_size: c.size,
      placement: 'after the attention and MLP output projections, before each residual add (Houlsby)',
      non_linearity: 'gelu_new',
      formula: 'h + up(gelu(down(h)))',
    },
  };
}

/** w [rows, cols] += scale * left [rows, r] @ right [r, cols]. */
function addScaledProduct(w: Float32Array, left: { shape: number[]; data: Float32Array }, right: { shape: number[]; data: Float32Array }, scale: number): void {
  const [rows, r] = left.shape as [number, number];
  const cols = right.shape[1] as number;
  for (let i = 0; i < rows; i++) {
    for (let k = 0; k < r; k++) {
      const lik = (left.data[i * r + k] as number) * scale;
      if (lik === 0) continue;
      const row = i * cols;
      const rrow = k * cols;
      for (let j = 0; j < cols; j++) w[row + j] = (w[row + j] as number) + lik * (right.data[rrow + j] as number);
    }
  }
}
