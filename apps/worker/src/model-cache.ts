// Models loaded for inference, within a memory budget (MODEL_CACHE_BYTES), least recently used
// evicted first. An entry is a whole model (a base) or a LoRA adapter served unmerged on a base
// entry it shares: an adapter costs its own bytes, and its base stays loaded while it is. A model
// in use by a request is never evicted; when the bytes a request needs cannot be freed, it gets
// ModelCapacityError (503 model_capacity with Retry-After at the API), never an out-of-memory crash.
import type { Tokenizer, Transformer } from '@crucible/trainer';

export interface Loaded {
  model: Transformer;
  tokenizer: Tokenizer;
  /** generation_config.json's end-of-sequence ids, when the folder names them. */
  eosIds?: number[];
}

/** What to load: a key, its bytes before it loads, its base (an adapter's), and the loading. */
export interface CacheItem {
  key: string;
  kind: 'model' | 'adapter';
  /** Bytes reserved before it loads; once loaded, the bytes of the tensors it owns. */
  estimateBytes: number;
  /** An adapter's base, loaded first and kept while the adapter is. */
  base?: CacheItem;
  load(base?: Loaded): Promise<Loaded>;
}

/** A loaded model held for one request; release() when the request ends. */
export interface Lease extends Loaded {
  release(): void;
}

/** The request's model does not fit beside the models in use: retry after `retryAfter` seconds. */
export class ModelCapacityError extends Error {
  override readonly name = 'ModelCapacityError';
  constructor(
    message: string,
    readonly retryAfter = 5,
  ) {
    super(message);
  }
}

interface Entry {
  item: CacheItem;
  bytes: number;
  value: Promise<Loaded>;
  /** Requests using it now. */
  users: number;
  /** Adapters loaded on it (a base goes after them). */
  adapters: number;
  base?: Entry;
  lastUsed: number;
}

export interface CacheEntryInfo {
  key: string;
  kind: CacheItem['kind'];
  bytes: number;
  users: number;
}

export class ModelCache {
  private readonly entries = new Map<string, Entry>();
  private clock = 0;

  /** `onEvict(key)`: a model left the cache (evicted, or cleared). */
  constructor(
    readonly budgetBytes: number,
    private readonly onEvict: (key: string) => void = () => {},
  ) {}

  /** The item's model (and an adapter's base), loaded when it is not; held until release(). */
  async acquire(item: CacheItem): Promise<Lease> {
    const base = item.base ? await this.acquire(item.base) : undefined;
    try {
      const entry = this.entry(item, base);
      entry.users++;
      entry.lastUsed = ++this.clock;
      let loaded: Loaded;
      try {
        loaded = await entry.value;
      } catch (err) {
        entry.users--;
        throw err;
      }
      let held = true;
      return {
        ...loaded,
        release: () => {
          if (!held) return;
          held = false;
          entry.users--;
          base?.release();
        },
      };
    } catch (err) {
      base?.release();
      throw err;
    }
  }

  /** Bytes of the models loaded (or loading) now. */
  get bytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.bytes;
    return n;
  }

  /** What is loaded, most recently used last. */
  list(): CacheEntryInfo[] {
    return [...this.entries.values()]
      .sort((a, b) => a.lastUsed - b.lastUsed)
      .map((e) => ({ key: e.item.key, kind: e.item.kind, bytes: e.bytes, users: e.users }));
  }

  clear(): void {
    for (const e of [...this.entries.values()]) this.evict(e);
  }

  private entry(item: CacheItem, base: Lease | undefined): Entry {
    const hit = this.entries.get(item.key);
    if (hit) return hit;
    if (item.estimateBytes > this.budgetBytes) {
      throw new ModelCapacityError(
        `the model needs about ${mb(item.estimateBytes)} and this worker's model cache holds ${mb(this.budgetBytes)} (MODEL_CACHE_BYTES)`,
      );
    }
    this.makeRoom(item.estimateBytes);
    const baseEntry = item.base ? this.entries.get(item.base.key) : undefined;
    const entry: Entry = { item, bytes: item.estimateBytes, users: 0, adapters: 0, base: baseEntry, lastUsed: ++this.clock, value: Promise.resolve() as never };
    entry.value = item.load(base).then(
      (loaded) => {
        entry.bytes = loaded.model.ownBytes();
        return loaded;
      },
      (err: unknown) => {
        if (this.entries.get(item.key) === entry) this.remove(entry);
        throw err;
      },
    );
    if (baseEntry) baseEntry.adapters++;
    this.entries.set(item.key, entry);
    return entry;
  }

  /** Evicts models nobody uses, least recently used first, until `bytes` more fit. */
  private makeRoom(bytes: number): void {
    while (this.bytes + bytes > this.budgetBytes) {
      let victim: Entry | undefined;
      for (const e of this.entries.values()) if (e.users === 0 && e.adapters === 0 && (!victim || e.lastUsed < victim.lastUsed)) victim = e;
      if (!victim) {
        throw new ModelCapacityError(
          `the model needs about ${mb(bytes)}; ${mb(this.bytes)} of this worker's ${mb(this.budgetBytes)} model cache (MODEL_CACHE_BYTES) ` +
            'holds models in use by other requests',
        );
      }
      this.evict(victim);
    }
  }

  private evict(e: Entry): void {
    this.remove(e);
    this.onEvict(e.item.key);
    void e.value.then(
      (loaded) => loaded.model.dispose(),
      () => {},
    );
  }

  private remove(e: Entry): void {
    this.entries.delete(e.item.key);
    if (e.base) e.base.adapters--;
  }
}

const mb = (bytes: number) => `${Math.ceil(bytes / 2 ** 20)} MB`;
