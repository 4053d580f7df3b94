// What this worker has loaded, announced for routing (@crucible/queue's model-routes.ts): each
// model name a request was served under, by the cache entry that holds it, announced once, renewed
// while the worker lives and withdrawn when the entry is evicted or the worker stops.
import { type ModelName, type ModelRoutes, ROUTE_TTL_MS } from '@crucible/queue';

export class LoadedModels {
  private readonly byKey = new Map<string, Map<string, ModelName>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly routes: ModelRoutes,
    private readonly worker: string,
  ) {}

  /** A request for `name` was served from the cache entry `key`. */
  served(key: string, name: ModelName): void {
    let names = this.byKey.get(key);
    if (!names) this.byKey.set(key, (names = new Map()));
    const id = `${name.projectId}\n${name.model}`;
    if (names.has(id)) return;
    names.set(id, name);
    void this.routes.announce(this.worker, [name]).catch(() => {});
  }

  /** The cache entry `key` was evicted: its names are withdrawn. */
  evicted(key: string): void {
    const names = this.byKey.get(key);
    this.byKey.delete(key);
    if (names) void this.routes.withdraw(this.worker, [...names.values()]).catch(() => {});
  }

  start(): void {
    this.timer = setInterval(() => void this.routes.announce(this.worker, this.all()).catch(() => {}), ROUTE_TTL_MS / 3);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    const all = this.all();
    this.byKey.clear();
    await this.routes.withdraw(this.worker, all).catch(() => {});
  }

  private all(): ModelName[] {
    return [...this.byKey.values()].flatMap((names) => [...names.values()]);
  }
}
