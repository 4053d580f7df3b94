// Checkpoint format, version 1: one safetensors file.
//   tensors   "model.<param>"        F32   every model parameter, by name
//             "optim.m.<param>"      F32   AdamW/Adam/LAMB first moment   (training checkpoints)
//             "optim.v.<param>"      F32   second moment                  (training checkpoints)
//             "ref.train", "ref.val" F32   a dpo run's reference log-probabilities, [2N] per set
//   metadata  "format"        "crucible-checkpoint/1"
//             "model_config"  JSON ModelConfig
//             "tokenizer"     Hugging Face tokenizer.json
//             "train_config"  JSON TrainConfig                           (training checkpoints)
//             "state"         JSON {step, dataRng, optimizerT, frozen}   (training checkpoints)
//             "base_model"    what a LoRA/adapter model was built on      (peft models)
// A model with peft (LoRA, adapters) stores only its trainable adapter tensors ("partial":
// "adapters"): its base weights are read from base_model when it is loaded, so checkpoints stay
// small. Model exports are Hugging Face folders (see @crucible/model-files' writeModelFolder).

import {
  CHECKPOINT_FORMAT,
  encodeSafetensors,
  isAdapterParam,
  type ModelFiles,
  type NamedTensor,
  readCheckpointFile,
  safetensorsMetadata,
  type Tokenizer,
  type Weights,
  writeModelFolder,
} from '@crucible/model-files';
import type * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from './config';
import { Transformer } from './model';
import type { Optimizer } from './optim';
import type { RngState } from './rng';
import type { TrainConfig } from './train';

// the format's name lives in @crucible/model-files (which reads checkpoint files without TensorFlow.js)
export { CHECKPOINT_FORMAT };

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
  /** The base a peft model was built on (a model id or checkpoint name): required with peft. */
  baseModel?: string;
  /** A dpo run's reference log-probabilities. */
  reference?: { train: Float32Array; val: Float32Array };
}

export interface DecodedCheckpoint {
  model: Transformer;
  tokenizer: Tokenizer;
  modelConfig: ModelConfig;
  train?: TrainConfig;
  state?: TrainingState;
  /** "m.<param>" and "v.<param>" optimizer moments. */
  optimizerState: Map<string, NamedTensor>;
  baseModel?: string;
  reference?: { train: Float32Array; val: Float32Array };
}

/** What a checkpoint is, read from its header only: whether it needs base weights, and which. */
export function checkpointInfo(bytes: Uint8Array): { modelConfig: ModelConfig; partial: boolean; baseModel?: string } {
  const metadata = safetensorsMetadata(bytes);
  if (metadata.format !== CHECKPOINT_FORMAT) throw new Error(`not a Crucible checkpoint (format ${metadata.format ?? 'missing'})`);
  return { modelConfig: JSON.parse(metadata.model_config as string), partial: metadata.partial === 'adapters', baseModel: metadata.base_model };
}

function f32(t: tf.Tensor): NamedTensor {
  return { dtype: 'F32', shape: t.shape.slice(), data: t.dataSync() as Float32Array };
}

export function encodeCheckpoint(c: CheckpointInput): Uint8Array {
  const tensors = new Map<string, NamedTensor>();
  const partial = c.model.config.peft !== undefined;
  if (partial && !c.baseModel) throw new Error('a checkpoint of a peft model needs its base model name');
  for (const [name, p] of c.model.params) if (!partial || isAdapterParam(name)) tensors.set(`model.${name}`, f32(p));
  if (c.optimizer) {
    for (const [name, m] of c.optimizer.m) tensors.set(`optim.m.${name}`, f32(m));
    for (const [name, v] of c.optimizer.v) tensors.set(`optim.v.${name}`, f32(v));
  }
  if (c.reference) {
    for (const [set, data] of Object.entries(c.reference)) tensors.set(`ref.${set}`, { dtype: 'F32', shape: [data.length], data });
  }
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    model_config: JSON.stringify(c.model.config),
    tokenizer: JSON.stringify(c.tokenizer.toJSON()),
  };
  if (partial) {
    metadata.partial = 'adapters';
    metadata.base_model = c.baseModel as string;
  }
  if (c.train) metadata.train_config = JSON.stringify(c.train);
  if (c.state) {
    const frozen = [...c.model.params.keys()].filter((n) => !c.model.trainable().has(n));
    metadata.state = JSON.stringify({ ...c.state, frozen });
  }
  return encodeSafetensors(tensors, metadata);
}

/** Decodes a checkpoint; one that holds adapters only (peft) needs its base model's weights. */
export function decodeCheckpoint(bytes: Uint8Array, baseWeights?: Weights): DecodedCheckpoint {
  const { metadata, modelConfig, weights: stored, optimizerState, reference: ref, tokenizer } = readCheckpointFile(bytes);
  const weights: Weights = new Map();
  if (metadata.partial === 'adapters') {
    if (!baseWeights) throw new Error(`this checkpoint holds adapter weights only; load it with the weights of its base model ${metadata.base_model}`);
    for (const [n, w] of baseWeights) if (!isAdapterParam(n)) weights.set(n, w);
  }
  for (const [n, w] of stored) weights.set(n, w);
  const model = Transformer.fromWeights(modelConfig, weights);
  const train = metadata.train_config ? (JSON.parse(metadata.train_config) as TrainConfig) : undefined;
  let state: TrainingState | undefined;
  if (metadata.state) {
    const s = JSON.parse(metadata.state) as TrainingState & { frozen?: string[] };
    for (const name of s.frozen ?? []) model.freeze(new RegExp(`^${name.replace(/\./g, '\\.')}$`));
    state = { step: s.step, dataRng: s.dataRng, optimizerT: s.optimizerT };
  }
  const reference = ref.has('train') && ref.has('val') ? { train: ref.get('train') as Float32Array, val: ref.get('val') as Float32Array } : undefined;
  return { model, tokenizer, modelConfig, train, state, optimizerState, baseModel: metadata.base_model, reference };
}

/** A model as a Hugging Face folder: model.safetensors, config.json, tokenizer files (and adapter files). */
export function exportModel(model: Transformer, tokenizer: Tokenizer, baseModel = 'crucible'): ModelFiles {
  return writeModelFolder({ config: model.config, weights: model.weights(), tokenizer, baseModel });
}
