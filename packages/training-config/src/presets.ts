// The named model shapes. One table for the trainer, the CLI and the platform.

/**
 * gpt: GPT-2's decoder (learned positions, LayerNorm, GELU). bert: the bidirectional encoder with
 * a masked-LM head. llama: the decoder of the open models people fine-tune (Llama, Qwen2, Qwen3,
 * SmolLM: RMSNorm, RoPE, SwiGLU, grouped-query attention), shaped by `ModelConfig.decoder`.
 */
export type Architecture = 'gpt' | 'bert' | 'llama';

/** Whether a model of this architecture predicts the next token (generates text). */
export function isCausal(arch: Architecture): boolean {
  return arch !== 'bert';
}
export type PresetName = 'gpt-nano' | 'gpt-micro' | 'gpt2-small' | 'bert-mini';

export interface PresetShape {
  arch: Architecture;
  nLayer: number;
  nHead: number;
  /** Width of the residual stream (C). */
  dModel: number;
  /** Longest context (T). */
  blockSize: number;
}

export const PRESETS: Record<PresetName, PresetShape> = {
  'gpt-nano': { arch: 'gpt', nLayer: 4, nHead: 4, dModel: 128, blockSize: 64 },
  'gpt-micro': { arch: 'gpt', nLayer: 6, nHead: 6, dModel: 384, blockSize: 256 },
  'gpt2-small': { arch: 'gpt', nLayer: 12, nHead: 12, dModel: 768, blockSize: 1024 },
  'bert-mini': { arch: 'bert', nLayer: 4, nHead: 4, dModel: 256, blockSize: 128 },
};

export function isPreset(name: string): name is PresetName {
  return Object.hasOwn(PRESETS, name);
}
