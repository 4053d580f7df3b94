// Routing inference to the worker that has the model loaded. Each worker consumes the shared
// inference queue and a queue of its own; it announces in Redis the models (by project and name)
// it holds loaded, with an expiry it renews while it lives, and withdraws them when it evicts them
// or stops. The API sends a request for a model that some live worker holds to that worker's own
// queue, so the model is not loaded a second time elsewhere. A routed request still waiting when
// its worker no longer announces the model (it stopped, died or evicted it; the API looks every
// ROUTE_PICKUP_MS) goes back to the shared queue; a busy worker keeps its requests in order.
//
// Why per-worker queues on BullMQ: a BullMQ worker takes whatever entry is next in its queue, and
// cannot pick entries by model; a queue per worker keeps BullMQ's priorities (fair inference),
// locks, stalled-job handling and removal of a waiting entry when its client leaves, which a
// hand-made dispatch would have to redo.
import { QUEUES } from '@crucible/domain';
import type { Redis } from 'ioredis';

/** How long an announcement lives unless renewed (a worker renews every third of it): a dead worker's goes within this. */
export const ROUTE_TTL_MS = 6_000;
/** How often the API looks whether the worker a waiting request was routed to still announces its model. */
export const ROUTE_PICKUP_MS = 1_000;

/** The inference queue of one worker (BullMQ queue names take no ':'). */
export function workerInferenceQueue(worker: string): string {
  return `${QUEUES.inference}-at-${worker.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
}

export interface ModelName {
  projectId: string;
  model: string;
}

export class ModelRoutes {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(m: ModelName): string {
    return `${this.prefix}:loaded:${m.projectId}:${m.model}`;
  }

  /** `worker` holds these models loaded, for `ttlMs` unless renewed. */
  async announce(worker: string, models: ModelName[], ttlMs = ROUTE_TTL_MS, now = Date.now()): Promise<void> {
    if (models.length === 0) return;
    const tx = this.redis.multi();
    for (const m of models) {
      tx.zadd(this.key(m), now + ttlMs, worker);
      tx.pexpire(this.key(m), 2 * ttlMs);
    }
    await tx.exec();
  }

  /** `worker` no longer holds these models. */
  async withdraw(worker: string, models: ModelName[]): Promise<void> {
    if (models.length === 0) return;
    const tx = this.redis.multi();
    for (const m of models) tx.zrem(this.key(m), worker);
    await tx.exec();
  }

  /** The live workers that hold the model loaded ([] when none, or when Redis cannot say). */
  async holders(m: ModelName, now = Date.now()): Promise<string[]> {
    return this.redis.zrangebyscore(this.key(m), now, '+inf').catch(() => []);
  }
}
