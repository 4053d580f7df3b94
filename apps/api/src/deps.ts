// What the API's services need, built once at boot (and by tests against real services).
import type { Db } from '@crucible/db';
import { createDb } from '@crucible/db';
import { type InferencePayload, type InferenceResult, QUEUES, type TrainingPayload } from '@crucible/domain';
import { Storage } from '@crucible/storage';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import type { ApiConfig } from './config';

export interface Deps {
  db: Db;
  storage: Storage;
  trainingQueue: Queue<TrainingPayload>;
  inferenceQueue: Queue<InferencePayload, InferenceResult>;
  inferenceEvents: QueueEvents;
  /** Publishes control messages (cancel, pause). */
  redis: Redis;
  /** A new connection for subscribing (streams); the caller closes it. */
  subscriber: () => Redis;
  close(): Promise<void>;
}

export function redisConnection(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null });
}

export async function createDeps(cfg: ApiConfig): Promise<Deps> {
  const db = createDb(cfg.databaseUrl);
  const storage = new Storage(cfg.s3);
  await storage.ensureBucket();
  const redis = redisConnection(cfg.redisUrl);
  const connection = redisConnection(cfg.redisUrl);
  const prefix = cfg.queuePrefix;
  const trainingQueue = new Queue<TrainingPayload>(QUEUES.training, { connection, prefix });
  const inferenceQueue = new Queue<InferencePayload, InferenceResult>(QUEUES.inference, { connection, prefix });
  const eventsConnection = redisConnection(cfg.redisUrl);
  const inferenceEvents = new QueueEvents(QUEUES.inference, { connection: eventsConnection, prefix });
  await inferenceEvents.waitUntilReady();
  return {
    db,
    storage,
    trainingQueue,
    inferenceQueue,
    inferenceEvents,
    redis,
    subscriber: () => redisConnection(cfg.redisUrl),
    async close() {
      await Promise.allSettled([trainingQueue.close(), inferenceQueue.close(), inferenceEvents.close()]);
      // BullMQ leaves connections it was given open
      for (const c of [redis, connection, eventsConnection]) c.disconnect();
      storage.destroy();
      await db.$disconnect();
    },
  };
}
