// Everything a training run allocates that holds tensors (models, trainers), disposed together
// on every path out of the run: success, cancel, pause, shutdown and failure alike.
export interface Disposable {
  dispose(): void;
}

export class Owned {
  private readonly items = new Set<Disposable>();

  add<T extends Disposable>(item: T): T {
    this.items.add(item);
    return item;
  }

  /** Disposes one item now (e.g. a base model whose weights were copied). */
  drop(item: Disposable): void {
    if (this.items.delete(item)) item.dispose();
  }

  disposeAll(): void {
    for (const item of [...this.items].reverse()) item.dispose();
    this.items.clear();
  }
}
