// The inference queues of single workers (model routing, @crucible/queue's model-routes.ts): a
// queue and its events per worker that requests were routed to, opened on first use. Each holds
// one blocking Redis connection for its events; past MAX_OPEN the least recently used is closed.
import type { InferencePayload, InferenceResult } from '@crucible/domain';
import { workerInferenceQueue } from '@crucible/queue';
import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';

const MAX_OPEN = 32;

export interface WorkerQueue {
  queue: Queue<InferencePayload, InferenceResult>;
  events: QueueEvents;
}

export class WorkerQueues {
  private readonly open = new Map<string, Promise<WorkerQueue & { connection: Redis }>>();

  constructor(
    private readonly connection: Redis,
    private readonly blocking: () => Redis,
    private readonly prefix: string,
  ) {}

  get(worker: string): Promise<WorkerQueue> {
    const hit = this.open.get(worker);
    if (hit) {
      this.open.delete(worker); // most recently used last
      this.open.set(worker, hit);
      return hit;
    }
    const opened = (async () => {
      const name = workerInferenceQueue(worker);
      const connection = this.blocking();
      const events = new QueueEvents(name, { connection, prefix: this.prefix });
      events.on('error', () => {}); // reconnects by itself; requests see their own errors
      await events.waitUntilReady();
      return { queue: new Queue<InferencePayload, InferenceResult>(name, { connection: this.connection, prefix: this.prefix }), events, connection };
    })();
    opened.catch(() => this.open.delete(worker));
    this.open.set(worker, opened);
    while (this.open.size > MAX_OPEN) {
      const [oldest, q] = this.open.entries().next().value as [string, Promise<WorkerQueue & { connection: Redis }>];
      this.open.delete(oldest);
      void q.then(close, () => {});
    }
    return opened;
  }

  async close(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.allSettled(all.map((q) => q.then(close)));
  }
}

async function close(q: WorkerQueue & { connection: Redis }): Promise<void> {
  await Promise.allSettled([q.queue.close(), q.events.close()]);
  q.connection.disconnect();
}
