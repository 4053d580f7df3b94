// Trained models loaded for inference, least recently used evicted first.
import type { Store } from '@crucible/db';
import type { ModelRecord } from '@crucible/domain';
import type { Storage } from '@crucible/storage';
import { type Tokenizer, Transformer } from '@crucible/trainer';
import { type LoadedWeights, ModelLoader } from './model-loader';

interface Loaded {
  model: Transformer;
  tokenizer: Tokenizer;
  /** generation_config.json's end-of-sequence ids, when the folder names them. */
  eosIds?: number[];
}

export class ModelCache {
  private readonly entries = new Map<string, Promise<Loaded>>();
  private readonly loader: ModelLoader;

  constructor(
    store: Pick<Store, 'models' | 'jobs'>,
    storage: Storage,
    private readonly capacity: number,
  ) {
    this.loader = new ModelLoader(store, storage);
  }

  get(record: ModelRecord): Promise<Loaded> {
    return this.cached(record.storageKey, () => this.loader.loadRecord(record));
  }

  /** A job's checkpoint by its name (its adapters on its base model's weights, for a LoRA checkpoint). */
  getCheckpoint(projectId: string, ref: string, storageKey: string): Promise<Loaded> {
    return this.cached(storageKey, () => this.loader.load(projectId, ref));
  }

  private cached(key: string, load: () => Promise<LoadedWeights>): Promise<Loaded> {
    let hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key); // re-insert: most recently used last
      this.entries.set(key, hit);
      return hit;
    }
    // the weights are taken into the model tensor by tensor: never two full copies at once
    hit = load().then((w) => ({ model: Transformer.fromWeights(w.config, w.weights, true), tokenizer: w.tokenizer, eosIds: w.eosIds }));
    hit.catch(() => this.entries.delete(key));
    this.entries.set(key, hit);
    while (this.entries.size > this.capacity) {
      const [oldest, entry] = this.entries.entries().next().value as [string, Promise<Loaded>];
      this.entries.delete(oldest);
      void entry.then(
        (e) => e.model.dispose(),
        () => {},
      );
    }
    return hit;
  }

  clear(): void {
    for (const e of this.entries.values())
      void e.then(
        (x) => x.model.dispose(),
        () => {},
      );
    this.entries.clear();
  }
}
