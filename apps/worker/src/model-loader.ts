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
  isAdapterParam,
  loraFromPeft,
  type ModelConfig,
  mergeLora,
  readCheckpointFile,
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
import type { LoraConfig } from '@crucible/training-config';
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
   * there is none. A LoRA model, or a checkpoint of a LoRA job, whose base is a plain model of the
   * project is served unmerged: its adapter on the base's cache entry. Otherwise (its base deleted,
   * or itself a LoRA model or a checkpoint; a model of another shape) its weights are loaded whole,
   * merged.
   */
  async item(projectId: string, ref: string): Promise<CacheItem | undefined> {
    const found = await findModelRef(this.store, projectId, ref);
    if (!found) return undefined;
    if (found.kind === 'model') return (await this.adapterItem(found.model)) ?? this.wholeItem(found.model);
    const key = found.checkpoint.storageKey;
    if (found.jobPeft?.type === 'lora') {
      const base = await this.plainBase(projectId, found.jobModel);
      if (base) return this.checkpointAdapterItem(key, base, found.jobPeft);
    }
    // the checkpoint file (weights and optimizer state) bounds what its weights take
    return { key, kind: 'model', estimateBytes: (await this.storage.size(key)) ?? 0, load: () => this.load(projectId, ref).then(asModel) };
  }

  private wholeItem(m: ModelRecord): CacheItem {
    return { key: m.storageKey, kind: 'model', estimateBytes: weightBytes(stored(m)), load: () => this.loadRecord(m).then(asModel) };
  }

  /** The base a LoRA adapter can be served on unmerged: a plain (not LoRA) gpt or llama model of the project. */
  private async plainBase(projectId: string, ref: string): Promise<ModelRecord | undefined> {
    const base = await findModelRef(this.store, projectId, ref);
    if (base?.kind !== 'model' || base.model.peft?.type === 'lora' || !(base.model.arch === 'gpt' || base.model.arch === 'llama')) return undefined;
    return base.model;
  }

  /** A LoRA model as its adapter files on its base's cache entry, where that can be done (see item()). */
  private async adapterItem(m: ModelRecord): Promise<CacheItem | undefined> {
    if (m.peft?.type !== 'lora') return undefined;
    const b = await this.plainBase(m.projectId, m.baseModel);
    if (!b || !sameShape(b.config, m.config)) return undefined;
    const folder = this.folder(m);
    if (!(await folder.has('adapter_model.safetensors'))) return undefined;
    return {
      key: `${m.storageKey}#adapter`,
      kind: 'adapter',
      estimateBytes: adapterBytes(stored(m), m.peft),
      base: this.wholeItem(b),
      load: async (loadedBase) => {
        const config = JSON.parse(new TextDecoder().decode(await folder.get('adapter_config.json'))) as Record<string, unknown>;
        const { peft, weights } = loraFromPeft(config, decodeSafetensors(await folder.get('adapter_model.safetensors')).tensors, m.arch);
        const eosIds = eosIdsOf(await folder.json('generation_config.json')) ?? loadedBase?.eosIds;
        return { model: onBase(loadedBase, peft, weights), tokenizer: await folder.tokenizer(), eosIds };
      },
    };
  }

  /** A LoRA job's checkpoint (its adapter tensors alone) on its base's cache entry. */
  private checkpointAdapterItem(key: string, b: ModelRecord, peft: LoraConfig): CacheItem {
    return {
      key: `${key}#adapter`,
      kind: 'adapter',
      estimateBytes: adapterBytes(stored(b), peft),
      base: this.wholeItem(b),
      load: async (loadedBase) => {
        const ck = readCheckpointFile(await this.storage.get(key));
        const lora = ck.modelConfig.peft;
        if (ck.metadata.partial !== 'adapters' || lora?.type !== 'lora') throw new Error(`checkpoint ${key} holds no LoRA adapter`);
        const weights: Weights = new Map([...ck.weights].filter(([name]) => isAdapterParam(name)));
        return { model: onBase(loadedBase, lora, weights), tokenizer: ck.tokenizer, eosIds: loadedBase?.eosIds };
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
    const folder = this.folder(m);
    const config = decoderConfigFromHf((await folder.json('config.json')) as Record<string, unknown>);
    const tokenizer = await folder.tokenizer();
    const index = m.storageKey.endsWith(DECODER_INDEX) ? await folder.json(DECODER_INDEX) : undefined;
    const files = index ? [...new Set(Object.values(index.weight_map as Record<string, string>))] : ['model.safetensors'];
    const weights: Weights = new Map();
    for (const f of files) takeDecoderWeights(config, decodeSafetensors(await folder.get(f)).tensors, weights);
    return { config, weights, tokenizer, eosIds: eosIdsOf(await folder.json('generation_config.json')) };
  }

  /** A stored model's files: read whole, as JSON (undefined where the folder lacks it), and its tokenizer. */
  private folder(m: ModelRecord) {
    const key = (name: string) => keys.modelFile(m.projectId, m.id, name);
    const get = (name: string) => this.storage.get(key(name));
    const has = (name: string) => this.storage.exists(key(name));
    const optional = async (name: string) => ((await has(name)) ? get(name) : undefined);
    return {
      get,
      has,
      json: async (name: string) => {
        const bytes = await optional(name);
        return bytes && (JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>);
      },
      tokenizer: async () => readTokenizer(await get('tokenizer.json'), await optional('tokenizer_config.json')),
    };
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

/** Bytes of the LoRA matrices `peft` adds to a model of `config`. */
function adapterBytes(config: ModelConfig, peft: LoraConfig): number {
  return weightBytes({ ...config, peft }) - weightBytes(config);
}

/** A stored model's config (the trainer's ModelConfig of its stored, merged weights). */
function stored(m: ModelRecord): ModelConfig {
  return m.config as unknown as ModelConfig;
}

/** A LoRA adapter on its loaded base, never trained (no dropout). */
function onBase(base: Loaded | undefined, peft: LoraConfig, weights: Weights): Transformer {
  if (!base) throw new Error('a LoRA adapter needs its base model loaded first');
  return Transformer.withLora(base.model, { ...peft, dropout: 0 }, weights);
}
