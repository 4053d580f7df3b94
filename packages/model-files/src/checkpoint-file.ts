// Reading Crucible's training checkpoint file (format crucible-checkpoint/1, described in
// @crucible/trainer's checkpoint.ts) without TensorFlow.js: the trainer decodes checkpoints with
// it, and the API converts models stored in this format before model folders existed.
import type { ModelConfig } from '@crucible/training-config';
import type { Weights } from './hf-gpt2';
import { decodeSafetensors, type NamedTensor } from './safetensors';
import { type Tokenizer, tokenizerFromJSON } from './tokenizer';

/** The safetensors metadata `format` of Crucible's training checkpoints (and of models stored before folders). */
export const CHECKPOINT_FORMAT = 'crucible-checkpoint/1';

export interface CheckpointFile {
  metadata: Record<string, string>;
  modelConfig: ModelConfig;
  /** The `model.<param>` tensors (adapter parameters only in a peft checkpoint). */
  weights: Weights;
  /** The `optim.m.<param>` / `optim.v.<param>` tensors, keyed `m.<param>` / `v.<param>`. */
  optimizerState: Map<string, NamedTensor>;
  /** The `ref.<set>` tensors of a dpo run: its reference log-probabilities per set (train, val). */
  reference: Map<string, Float32Array>;
  tokenizer: Tokenizer;
}

export function readCheckpointFile(bytes: Uint8Array): CheckpointFile {
  const { tensors, metadata } = decodeSafetensors(bytes);
  if (metadata.format !== CHECKPOINT_FORMAT) throw new Error(`not a Crucible checkpoint (format ${metadata.format ?? 'missing'})`);
  const weights: Weights = new Map();
  const optimizerState = new Map<string, NamedTensor>();
  const reference = new Map<string, Float32Array>();
  for (const [name, t] of tensors) {
    if (name.startsWith('model.')) weights.set(name.slice(6), { shape: t.shape, data: t.data as Float32Array });
    else if (name.startsWith('optim.')) optimizerState.set(name.slice(6), t);
    else if (name.startsWith('ref.')) reference.set(name.slice(4), t.data as Float32Array);
  }
  return {
    metadata,
    modelConfig: JSON.parse(metadata.model_config as string) as ModelConfig,
    weights,
    optimizerState,
    reference,
    tokenizer: tokenizerFromJSON(metadata.tokenizer as string),
  };
}
