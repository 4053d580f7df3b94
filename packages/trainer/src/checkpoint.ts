// Checkpoint format, version 1: one safetensors file.
//   tensors   "model.<param>"        F32   every model parameter, by name
//             "optim.m.<param>"      F32   AdamW/Adam/LAMB first moment   (training checkpoints)
//             "optim.v.<param>"      F32   second moment                  (training checkpoints)
//   metadata  "format"        "crucible-checkpoint/1"
//             "model_config"  JSON ModelConfig
//             "tokenizer"     Hugging Face tokenizer.json
//             "train_config"  JSON TrainConfig                           (training checkpoints)
//             "state"         JSON {step, dataRng, optimizerT, frozen}   (training checkpoints)
// A model export carries only model tensors, model_config and tokenizer.

import type * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './config';
import { Transformer } from './model';
import type { Optimizer } from './optim';
import type { RngState } from './rng';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from './safetensors';
import { type Tokenizer, tokenizerFromJSON } from './tokenizer';
import type { TrainConfig } from './train';

export const CHECKPOINT_FORMAT = 'crucible-checkpoint/1';

export interface TrainingState {
  step: number;
  dataRng: RngState;
  optimizerT: number;
}

export interface CheckpointInput {
  model: Transformer;
  tokenizer: Tokenizer;
  train?: TrainConfig;
  state?: TrainingState;
  optimizer?: Optimizer;
}

export interface DecodedCheckpoint {
  model: Transformer;
  tokenizer: Tokenizer;
  modelConfig: ModelConfig;
  train?: TrainConfig;
  state?: TrainingState;
  /** "m.<param>" and "v.<param>" optimizer moments. */
  optimizerState: Map<string, NamedTensor>;
}

function f32(t: tf.Tensor): NamedTensor {
  return { dtype: 'F32', shape: t.shape.slice(), data: t.dataSync() as Float32Array };
}

export function encodeCheckpoint(c: CheckpointInput): Uint8Array {
  const tensors = new Map<string, NamedTensor>();
  for (const [name, p] of c.model.params) tensors.set(`model.${name}`, f32(p));
  if (c.optimizer) {
    for (const [name, m] of c.optimizer.m) tensors.set(`optim.m.${name}`, f32(m));
    for (const [name, v] of c.optimizer.v) tensors.set(`optim.v.${name}`, f32(v));
  }
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    model_config: JSON.stringify(c.model.config),
    tokenizer: JSON.stringify(c.tokenizer.toJSON()),
  };
  if (c.train) metadata.train_config = JSON.stringify(c.train);
  if (c.state) {
    const frozen = [...c.model.params.keys()].filter((n) => !c.model.trainable().has(n));
    metadata.state = JSON.stringify({ ...c.state, frozen });
  }
  return encodeSafetensors(tensors, metadata);
}

export function decodeCheckpoint(bytes: Uint8Array): DecodedCheckpoint {
  const { tensors, metadata } = decodeSafetensors(bytes);
  if (metadata.format !== CHECKPOINT_FORMAT) throw new Error(`not a Crucible checkpoint (format ${metadata.format ?? 'missing'})`);
  const modelConfig = JSON.parse(metadata.model_config as string) as ModelConfig;
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  const optimizerState = new Map<string, NamedTensor>();
  for (const [name, t] of tensors) {
    if (name.startsWith('model.')) weights.set(name.slice(6), { shape: t.shape, data: t.data as Float32Array });
    else if (name.startsWith('optim.')) optimizerState.set(name.slice(6), t);
  }
  const model = Transformer.fromWeights(modelConfig, weights);
  const tokenizer = tokenizerFromJSON(metadata.tokenizer as string);
  const train = metadata.train_config ? (JSON.parse(metadata.train_config) as TrainConfig) : undefined;
  let state: TrainingState | undefined;
  if (metadata.state) {
    const s = JSON.parse(metadata.state) as TrainingState & { frozen?: string[] };
    for (const name of s.frozen ?? []) model.freeze(new RegExp(`^${name.replace(/\./g, '\\.')}$`));
    state = { step: s.step, dataRng: s.dataRng, optimizerT: s.optimizerT };
  }
  return { model, tokenizer, modelConfig, train, state, optimizerState };
}

/** Weights + config + tokenizer as separate files (the shape of a Hugging Face model folder). */
export function exportModel(model: Transformer, tokenizer: Tokenizer): Record<string, Uint8Array> {
  const enc = new TextEncoder();
  return {
    'model.safetensors': encodeCheckpoint({ model, tokenizer }),
    'config.json': enc.encode(`${JSON.stringify(model.config, null, 2)}\n`),
    'tokenizer.json': enc.encode(JSON.stringify(tokenizer.toJSON())),
  };
}
