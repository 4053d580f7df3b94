// Trained models loaded for inference, least recently used evicted first.
import type { Storage } from '@crucible/storage';
import { decodeCheckpoint, type Tokenizer, type Transformer } from '@crucible/trainer';

interface Loaded {
  model: Transformer;
  tokenizer: Tokenizer;
}

export class ModelCache {
  private readonly entries = new Map<string, Promise<Loaded>>();

  constructor(
    private readonly storage: Storage,
    private readonly capacity: number,
  ) {}

  get(storageKey: string): Promise<Loaded> {
    let hit = this.entries.get(storageKey);
    if (hit) {
      this.entries.delete(storageKey); // re-insert: most recently used last
      this.entries.set(storageKey, hit);
      return hit;
    }
    hit = this.storage.get(storageKey).then((bytes) => {
      const ck = decodeCheckpoint(bytes);
      return { model: ck.model, tokenizer: ck.tokenizer };
    });
    hit.catch(() => this.entries.delete(storageKey));
    this.entries.set(storageKey, hit);
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
