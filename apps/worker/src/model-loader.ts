// Loads trained weights by reference, for training (a job's base) and for inference:
//   a model of the project   its stored folder (Hugging Face layout; see @crucible/model-files),
//                            or, for models stored before that layout, a crucible-checkpoint file
//   a checkpoint of a job    its training checkpoint; one that holds adapters only (LoRA,
//                            adapters) is loaded on top of its own base, recursively
// A LoRA checkpoint used as a base is merged, so what comes back is always plain base weights
// plus, for bottleneck-adapter models, their adapters.
import { findModelRef, type Store } from '@crucible/db';
import { CrucibleError, type ModelRecord } from '@crucible/domain';
import { keys, type Storage } from '@crucible/storage';
import {
  CHECKPOINT_FORMAT,
  checkpointInfo,
  decodeCheckpoint,
  type ModelConfig,
  mergeLora,
  readModelFolder,
  safetensorsMetadata,
  storedConfig,
  type Tokenizer,
  type Weights,
} from '@crucible/trainer';

export interface LoadedWeights {
  config: ModelConfig;
  weights: Weights;
  tokenizer: Tokenizer;
}

export class ModelLoader {
  constructor(
    private readonly store: Pick<Store, 'models' | 'jobs'>,
    private readonly storage: Storage,
  ) {}

  /** A model id or a checkpoint reference of the project. */
  async load(projectId: string, ref: string, depth = 0): Promise<LoadedWeights> {
    if (depth > 8) throw new CrucibleError('invalid_request', `model ${ref}: its chain of base models is too deep`, 'model');
    const found = await findModelRef(this.store, projectId, ref);
    if (!found) throw new CrucibleError('model_not_found', `model ${ref} no longer exists`, 'model');
    if (found.kind === 'model') return this.loadRecord(found.model);
    const bytes = await this.storage.get(found.checkpoint.storageKey);
    const info = checkpointInfo(bytes);
    const base = info.partial ? await this.load(projectId, info.baseModel as string, depth + 1) : undefined;
    const ck = decodeCheckpoint(bytes, base?.weights);
    try {
      const weights = ck.model.weights();
      return mergeIfLora(ck.modelConfig, weights, ck.tokenizer);
    } finally {
      ck.model.dispose();
    }
  }

  /** A stored model's weights (merged LoRA, or base + bottleneck adapters). */
  async loadRecord(m: ModelRecord): Promise<LoadedWeights> {
    const file = (name: string) => this.storage.get(keys.modelFile(m.projectId, m.id, name));
    const weightsFile = await this.storage.get(m.storageKey);
    if (safetensorsMetadata(weightsFile).format === CHECKPOINT_FORMAT) {
      const ck = decodeCheckpoint(weightsFile); // stored before models were Hugging Face folders
      try {
        return { config: ck.modelConfig, weights: ck.model.weights(), tokenizer: ck.tokenizer };
      } finally {
        ck.model.dispose();
      }
    }
    const [config, tokenizer] = await Promise.all([file('config.json'), file('tokenizer.json')]);
    return readModelFolder({ 'model.safetensors': weightsFile, 'config.json': config, 'tokenizer.json': tokenizer });
  }
}

function mergeIfLora(config: ModelConfig, weights: Weights, tokenizer: Tokenizer): LoadedWeights {
  return { config: storedConfig(config), weights: config.peft?.type === 'lora' ? mergeLora(config, weights) : weights, tokenizer };
}
