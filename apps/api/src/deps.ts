// What the API's services need, built once at boot (and by tests against real services).
import { createStore, JobCache, JobSignals, type Store } from '@crucible/db';
import { QUEUES } from '@crucible/domain';
import {
  type EvaluationQueue,
  evaluationQueue,
  type InferenceQueue,
  inferenceQueue,
  ModelRoutes,
  Reconciler,
  redisConnection,
  type TrainingQueue,
  trainingQueue,
} from '@crucible/queue';
import { Storage } from '@crucible/storage';
import { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { KeyAuthenticator, keyEventsChannel } from './auth';
import { InferenceAdmission } from './completions/admission';
import { StreamHub } from './completions/stream-hub';
import { WorkerQueues } from './completions/worker-queues';
import type { ApiConfig } from './config';
import { FileWorkPool } from './files/file-work-pool';
import { FileProcessor } from './files/processor';
import { Idempotency } from './front-door/idempotency';
import { ApiMetrics } from './front-door/metrics';
import { RateLimiter } from './front-door/rate-limit';
import { WebhookDispatcher } from './webhooks/dispatcher';

export interface Deps {
  store: Store;
  storage: Storage;
  trainingQueue: TrainingQueue;
  inferenceQueue: InferenceQueue;
  evaluationQueue: EvaluationQueue;
  inferenceEvents: QueueEvents;
  /** Which live workers hold a model loaded (model routing). */
  routes: ModelRoutes;
  /** The inference queues of single workers, for requests routed to them. */
  workerQueues: WorkerQueues;
  /** Publishes control messages (cancel, pause); fails at once while Redis is down. */
  redis: Redis;
  /** A new connection for subscribing; the caller closes it. */
  subscriber: () => Redis;
  /** Streamed inference text, every stream on one subscriber connection. */
  streams: StreamHub;
  /** A project's inference requests in flight (MAX_CONCURRENT_INFERENCE) and their queue priority. */
  admission: InferenceAdmission;
  /** Rebuilds the training queue from PostgreSQL (started by the server). */
  reconciler: Reconciler;
  /** Scopes control channels (several deployments can share one Redis). */
  queuePrefix: string;
  /** Validates and prepares stored files in the background. */
  processor: FileProcessor;
  /** Heavy file work (validation, preparation, statistics, estimates) in worker threads, off the event loop. */
  fileWork: FileWorkPool;
  /** API keys, cached, with revocations announced over Redis. */
  keys: KeyAuthenticator;
  rateLimiter: RateLimiter;
  idempotency: Idempotency;
  metrics: ApiMetrics;
  /** Job records cached in this process, dropped by the database's change notifications. */
  jobCache: JobCache;
  /** Wakes event streams when a job has a new event or changes (LISTEN). */
  jobSignals: JobSignals;
  /** Sends webhook deliveries (started by the server). */
  webhooks: WebhookDispatcher;
  close(): Promise<void>;
}

export async function createDeps(cfg: ApiConfig): Promise<Deps> {
  const store = createStore(cfg.databaseUrl);
  const storage = new Storage(cfg.s3);
  await storage.ensureBucket();
  const redis = redisConnection(cfg.redisUrl, 'command');
  const connection = redisConnection(cfg.redisUrl, 'command');
  const prefix = cfg.queuePrefix;
  const training = trainingQueue(connection, prefix);
  const inference = inferenceQueue(connection, prefix);
  const evaluation = evaluationQueue(connection, prefix);
  const eventsConnection = redisConnection(cfg.redisUrl, 'blocking');
  const inferenceEvents = new QueueEvents(QUEUES.inference, { connection: eventsConnection, prefix });
  inferenceEvents.on('error', () => {}); // reconnects by itself; requests see their own errors
  await inferenceEvents.waitUntilReady();
  const workerQueues = new WorkerQueues(connection, () => redisConnection(cfg.redisUrl, 'blocking'), prefix);
  const reconciler = new Reconciler({
    store,
    queue: training,
    deadAfterMs: cfg.jobs.deadAfterMs,
    queuedGraceMs: cfg.jobs.queuedGraceMs,
    intervalMs: cfg.jobs.reconcileIntervalMs,
  });
  const fileWork = new FileWorkPool(storage, cfg.s3, cfg.fileWorkThreads);
  const processor = new FileProcessor(store, storage, fileWork, {
    limits: cfg.datasetLimits,
    concurrency: cfg.fileProcessingConcurrency,
  });
  const keys = new KeyAuthenticator(store, cfg.limits, {
    ttlMs: cfg.keyCacheTtlMs,
    channel: keyEventsChannel(prefix),
    subscribe: () => redisConnection(cfg.redisUrl, 'command'),
    publisher: redis,
  });
  await keys.start();
  const metrics = new ApiMetrics(store, { training, inference, evaluation });
  const webhooks = new WebhookDispatcher(store, cfg.webhooks, metrics);
  const jobCache = new JobCache(cfg.databaseUrl, { ttlMs: cfg.jobCacheTtlMs });
  const streams = new StreamHub(() => redisConnection(cfg.redisUrl, 'command'));
  await jobCache.start();
  const jobSignals = new JobSignals(cfg.databaseUrl);
  await jobSignals.start();
  return {
    store,
    storage,
    processor,
    fileWork,
    trainingQueue: training,
    inferenceQueue: inference,
    evaluationQueue: evaluation,
    inferenceEvents,
    routes: new ModelRoutes(redis, prefix),
    workerQueues,
    redis,
    subscriber: () => redisConnection(cfg.redisUrl, 'command'),
    streams,
    admission: new InferenceAdmission(redis, prefix),
    reconciler,
    queuePrefix: prefix,
    keys,
    rateLimiter: new RateLimiter(redis, prefix),
    idempotency: new Idempotency(redis, prefix, cfg.idempotencyTtlMs),
    metrics,
    webhooks,
    jobCache,
    jobSignals,
    async close() {
      await jobCache.stop();
      await jobSignals.stop();
      await reconciler.stop();
      await webhooks.stop();
      await keys.close();
      await processor.close();
      await fileWork.close();
      streams.close();
      await Promise.allSettled([training.close(), inference.close(), evaluation.close(), inferenceEvents.close(), workerQueues.close()]);
      // BullMQ leaves connections it was given open
      for (const c of [redis, connection, eventsConnection]) c.disconnect();
      storage.destroy();
      await store.close();
    },
  };
}
