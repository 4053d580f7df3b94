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
  loraFromPeft,
  type ModelConfig,
  mergeLora,
  readModelFolder,
  readTokenizer,
  safetensorsMetadata,
  storedConfig,
  type Tokenizer,
  Transformer,
  takeDecoderWeights,
  type Weights,
  weightBytes,
} from '@crucible/trainer';
import type { CacheItem, Loaded } from './model-cache';

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

  /**
   * What the model cache loads for a model id or checkpoint name of the project, or undefined when
   * there is none. A LoRA model whose base is a model of the project with the same shape is served
   * unmerged: its adapter files on the base's cache entry. Otherwise (its base deleted, a base
   * that is itself a LoRA model or a checkpoint) its stored merged weights are loaded whole.
   */
  async item(projectId: string, ref: string): Promise<CacheItem | undefined> {
    const found = await findModelRef(this.store, projectId, ref);
    if (!found) return undefined;
    if (found.kind === 'checkpoint') {
      const key = found.checkpoint.storageKey;
      // the checkpoint file (weights and optimizer state) bounds what its weights take
      return { key, kind: 'model', estimateBytes: (await this.storage.size(key)) ?? 0, load: () => this.load(projectId, ref).then(asModel) };
    }
    const m = found.model;
    const whole: CacheItem = {
      key: m.storageKey,
      kind: 'model',
      estimateBytes: weightBytes(m.config as unknown as ModelConfig),
      load: () => this.loadRecord(m).then(asModel),
    };
    return (await this.adapterItem(m)) ?? whole;
  }

  /** A LoRA model as its adapter on its base's cache entry, where that can be done (see item()). */
  private async adapterItem(m: ModelRecord): Promise<CacheItem | undefined> {
    if (m.peft?.type !== 'lora' || !(m.arch === 'gpt' || m.arch === 'llama')) return undefined;
    const base = await findModelRef(this.store, m.projectId, m.baseModel);
    if (base?.kind !== 'model' || base.model.peft?.type === 'lora' || !sameShape(base.model.config, m.config)) return undefined;
    const file = (name: string) => keys.modelFile(m.projectId, m.id, name);
    if (!(await this.storage.exists(file('adapter_model.safetensors')))) return undefined;
    const b = base.model;
    const peft = m.peft;
    return {
      key: `${m.storageKey}#adapter`,
      kind: 'adapter',
      estimateBytes: weightBytes({ ...(m.config as unknown as ModelConfig), peft }) - weightBytes(m.config as unknown as ModelConfig),
      base: { key: b.storageKey, kind: 'model', estimateBytes: weightBytes(b.config as unknown as ModelConfig), load: () => this.loadRecord(b).then(asModel) },
      load: async (loadedBase) => {
        if (!loadedBase) throw new Error(`adapter ${m.id}: its base ${m.baseModel} is not loaded`);
        const get = (name: string) => this.storage.get(file(name));
        const config = JSON.parse(new TextDecoder().decode(await get('adapter_config.json'))) as Record<string, unknown>;
        const { peft: files, weights } = loraFromPeft(config, decodeSafetensors(await get('adapter_model.safetensors')).tensors, m.arch);
        const tokenizerConfig = (await this.storage.exists(file('tokenizer_config.json'))) ? await get('tokenizer_config.json') : undefined;
        const tokenizer = readTokenizer(await get('tokenizer.json'), tokenizerConfig);
        const generation = (await this.storage.exists(file('generation_config.json')))
          ? (JSON.parse(new TextDecoder().decode(await get('generation_config.json'))) as Record<string, unknown>)
          : undefined;
        return {
          model: Transformer.withLora(loadedBase.model, { ...files, dropout: 0 }, weights),
          tokenizer,
          eosIds: eosIdsOf(generation) ?? loadedBase.eosIds,
        };
      },
    };
  }

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

/** Whether two stored model configs have the same parameters (a LoRA model's base, and the merged model). */
function sameShape(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const shape = (c: Record<string, unknown>) =>
    JSON.stringify([c.arch, c.vocabSize, c.nLayer, c.nHead, c.dModel, c.ffnMult, c.bias, c.tiedEmbeddings, c.decoder ?? null]);
  return shape(a) === shape(b);
}

/** Loaded weights as a model for inference (taken tensor by tensor: never two full copies at once). */
function asModel(w: LoadedWeights): Loaded {
  return { model: Transformer.fromWeights(w.config, w.weights, true), tokenizer: w.tokenizer, eosIds: w.eosIds };
}
