// Model configuration and the named presets. One config describes both architectures:
// `gpt` (causal decoder) and `bert` (bidirectional encoder with a masked-LM head).

import { type Architecture, isPreset, type ModelConfig, PRESETS, type PresetName, type PresetShape } from '@crucible/training-config';

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
  if (c.dModel % c.nHead !== 0) throw new RangeError(`model config: dModel (${c.dModel}) must be divisible by nHead (${c.nHead})`);
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new RangeError(`model config: dropout must be in [0, 1), got ${c.dropout}`);
  if (c.arch !== 'gpt' && c.arch !== 'bert') throw new RangeError(`model config: arch must be gpt or bert, got ${c.arch}`);
}

/** Parameter count (tied head counted once). */
export function countParams(c: ModelConfig): number {
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
