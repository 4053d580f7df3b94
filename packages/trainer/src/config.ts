// Model configuration and the named presets. One config describes both architectures:
// `gpt` (causal decoder) and `bert` (bidirectional encoder with a masked-LM head).

import { type Architecture, DECODER_LORA_TARGETS, isPreset, type ModelConfig, PRESETS, type PresetName, type PresetShape } from '@crucible/training-config';

export type { Architecture, ModelConfig, PresetName, PresetShape };
export { isPreset, PRESETS };

/** A full config from a preset, a vocabulary size and overrides; validated. */
export function modelConfig(preset: PresetName | PresetShape, vocabSize: number, overrides: Partial<ModelConfig> = {}): ModelConfig {
  const shape = typeof preset === 'string' ? PRESETS[preset] : preset;
  const cfg: ModelConfig = {
    ffnMult: 4,
    dropout: 0,
    bias: true,
    tiedEmbeddings: true,
    ...shape,
    vocabSize,
    ...overrides,
  };
  validateModelConfig(cfg);
  return cfg;
}

export function validateModelConfig(c: ModelConfig): void {
  const positive = ['vocabSize', 'nLayer', 'nHead', 'dModel', 'blockSize', 'ffnMult'] as const;
  for (const k of positive) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) throw new RangeError(`model config: ${k} must be a positive integer, got ${c[k]}`);
  }
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new RangeError(`model config: dropout must be in [0, 1), got ${c.dropout}`);
  if (c.arch === 'llama') {
    validateDecoder(c);
    return;
  }
  if (c.decoder) throw new RangeError(`model config: a ${c.arch} model has no decoder section`);
  if (c.dModel % c.nHead !== 0) throw new RangeError(`model config: dModel (${c.dModel}) must be divisible by nHead (${c.nHead})`);
  if (c.arch !== 'gpt' && c.arch !== 'bert') throw new RangeError(`model config: arch must be gpt, bert or llama, got ${c.arch}`);
}

function validateDecoder(c: ModelConfig): void {
  const d = c.decoder;
  if (!d) throw new RangeError('model config: a llama model needs its decoder section');
  for (const k of ['nKvHead', 'headDim', 'intermediateSize'] as const) {
    if (!Number.isInteger(d[k]) || d[k] <= 0) throw new RangeError(`model config: decoder.${k} must be a positive integer, got ${d[k]}`);
  }
  if (c.nHead % d.nKvHead !== 0) throw new RangeError(`model config: decoder.nKvHead (${d.nKvHead}) must divide nHead (${c.nHead})`);
  if (d.headDim % 2 !== 0) throw new RangeError(`model config: decoder.headDim (${d.headDim}) must be even`);
  if (!(d.rmsNormEps > 0) || !(d.ropeTheta > 0)) throw new RangeError('model config: decoder.rmsNormEps and decoder.ropeTheta must be positive');
  if (c.peft?.type === 'adapter') throw new RangeError('model config: bottleneck adapters are not available on llama-architecture models (use LoRA)');
  for (const t of c.peft?.type === 'lora' ? c.peft.targets : []) {
    if (!(DECODER_LORA_TARGETS as readonly string[]).includes(t))
      throw new RangeError(`model config: LoRA target ${t} is not a module of a llama-architecture model (${DECODER_LORA_TARGETS.join(', ')})`);
  }
}

/** Parameter count (tied head counted once). */
export function countParams(c: ModelConfig): number {
  if (c.arch === 'llama') return countDecoderParams(c);
  const C = c.dModel;
  const H = C * c.ffnMult;
  const b = c.bias ? 1 : 0;
  const ln = C + b * C;
  const block = 2 * ln + C * 3 * C + b * 3 * C + C * C + b * C + C * H + b * H + H * C + b * C;
  let n = c.vocabSize * C + c.blockSize * C + c.nLayer * block + ln;
  if (!c.tiedEmbeddings) n += c.vocabSize * C;
  if (c.arch === 'bert') n += C * C + b * C + ln + c.vocabSize;
  return n;
}

function countDecoderParams(c: ModelConfig): number {
  const d = c.decoder as NonNullable<ModelConfig['decoder']>;
  const C = c.dModel;
  const q = c.nHead * d.headDim;
  const kv = d.nKvHead * d.headDim;
  const I = d.intermediateSize;
  const attn = C * q + 2 * C * kv + q * C + (d.qkvBias ? q + 2 * kv : 0) + (d.oBias ? C : 0) + (d.qkNorm ? 2 * d.headDim : 0);
  const mlp = 3 * C * I + (d.mlpBias ? 2 * I + C : 0);
  const block = attn + mlp + 2 * C;
  return c.vocabSize * C * (c.tiedEmbeddings ? 1 : 2) + c.nLayer * block + C;
}
