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
  DECODER_INDEX,
  decodeCheckpoint,
  decoderConfigFromHf,
  decodeSafetensors,
  type ModelConfig,
  mergeLora,
  readModelFolder,
  readTokenizer,
  safetensorsMetadata,
  storedConfig,
  type Tokenizer,
  takeDecoderWeights,
  type Weights,
} from '@crucible/trainer';

export interface LoadedWeights {
  config: ModelConfig;
  weights: Weights;
  tokenizer: Tokenizer;
  /** The ids that end a generation (generation_config.json's eos_token_id, which may be a list), when the folder names them. */
  eosIds?: number[];
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
    if (m.arch === 'llama') return this.loadDecoderFolder(m);
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

  /**
   * A Llama, Qwen2 or Qwen3 folder as imported: config.json, the tokenizer with its config, and
   * the weights file by file (one, or the shards of model.safetensors.index.json), each decoded,
   * widened to float32 and taken into the weights before the next is read.
   */
  private async loadDecoderFolder(m: ModelRecord): Promise<LoadedWeights> {
    const key = (name: string) => keys.modelFile(m.projectId, m.id, name);
    const json = async (name: string) =>
      (await this.storage.exists(key(name))) ? (JSON.parse(new TextDecoder().decode(await this.storage.get(key(name)))) as Record<string, unknown>) : undefined;
    const config = decoderConfigFromHf((await json('config.json')) as Record<string, unknown>);
    const tokenizerConfig = (await this.storage.exists(key('tokenizer_config.json'))) ? await this.storage.get(key('tokenizer_config.json')) : undefined;
    const tokenizer = readTokenizer(await this.storage.get(key('tokenizer.json')), tokenizerConfig);
    const index = m.storageKey.endsWith(DECODER_INDEX) ? await json(DECODER_INDEX) : undefined;
    const files = index ? [...new Set(Object.values(index.weight_map as Record<string, string>))] : ['model.safetensors'];
    const weights: Weights = new Map();
    for (const f of files) takeDecoderWeights(config, decodeSafetensors(await this.storage.get(key(f))).tensors, weights);
    return { config, weights, tokenizer, eosIds: eosIdsOf(await json('generation_config.json')) };
  }
}

/** generation_config.json's eos_token_id (a number or a list), if the folder has one. */
function eosIdsOf(doc: Record<string, unknown> | undefined): number[] | undefined {
  const e = doc?.eos_token_id;
  const ids = Array.isArray(e) ? e : e === undefined || e === null ? [] : [e];
  const valid = ids.filter((x): x is number => Number.isSafeInteger(x));
  return valid.length ? valid : undefined;
}

function mergeIfLora(config: ModelConfig, weights: Weights, tokenizer: Tokenizer): LoadedWeights {
  return { config: storedConfig(config), weights: config.peft?.type === 'lora' ? mergeLora(config, weights) : weights, tokenizer };
}
