// The worker process: choose the TensorFlow.js backend, run the reconciler, then consume the
// training and inference queues. SIGTERM/SIGINT stop running jobs at the next step, save
// checkpoints, queue the jobs again for another worker, and exit.
import { createStore } from '@crucible/db';
import {
  ConfigError,
  type EvaluationPayload,
  INFERENCE_INPUT_ERROR,
  type InferencePayload,
  type InferenceResult,
  MODEL_CAPACITY_ERROR,
  QUEUES,
  type TrainingPayload,
} from '@crucible/domain';
import { ModelRoutes, Reconciler, redisConnection, trainingQueue, workerInferenceQueue } from '@crucible/queue';
import { Storage } from '@crucible/storage';
import { initBackend } from '@crucible/trainer';
import { DelayedError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { parseWorkerConfig, type WorkerConfig } from './config';
import { JobControl } from './control';
import { handleEvaluation } from './evaluation-handler';
import { handleInference } from './inference-handler';
import { LoadedModels } from './loaded-models';
import { type CacheEntryInfo, ModelCache } from './model-cache';
import { ModelLoader } from './model-loader';
import { Slots } from './slots';
import { handleTraining } from './training/handler';

export interface RunningWorker {
  backend: string;
  /** The models loaded for inference now (the model cache's entries), least recently used first. */
  models(): CacheEntryInfo[];
  close(): Promise<void>;
}

/** A worker log line: a message and the ids it concerns (job_id, evaluation_id, ...). */
export type WorkerLog = (msg: string, fields?: Record<string, unknown>) => void;

/** JSON lines on stdout, like the API's: time, level, worker, message and ids. */
export function jsonLog(worker: string): WorkerLog {
  return (msg, fields = {}) => process.stdout.write(`${JSON.stringify({ level: 'info', time: new Date().toISOString(), worker, msg, ...fields })}\n`);
}

export async function startWorker(cfg: WorkerConfig, log: WorkerLog = jsonLog(cfg.workerName)): Promise<RunningWorker> {
  const choice = await initBackend(cfg.backend, log, {
    nativeKernels: cfg.nativeKernels,
    nativeThreads: cfg.nativeThreads,
    gemm: cfg.nativeGemm,
  });
  const store = createStore(cfg.databaseUrl);
  const storage = new Storage(cfg.s3);
  await storage.ensureBucket();
  const connections: Redis[] = [];
  const conn = (role: 'blocking' | 'command') => {
    const c = redisConnection(cfg.redisUrl, role);
    connections.push(c);
    return c;
  };
  const redis = conn('command');
  const control = new JobControl(cfg.queuePrefix);
  await control.listen(conn('blocking'));
  const loaded = new LoadedModels(new ModelRoutes(redis, cfg.queuePrefix), cfg.workerName);
  const cache = new ModelCache(cfg.modelCacheBytes, (key) => loaded.evicted(key));
  const loader = new ModelLoader(store, storage);
  const queue = trainingQueue(conn('command'), cfg.queuePrefix);
  const reconciler = new Reconciler({
    store,
    queue,
    deadAfterMs: cfg.jobs.deadAfterMs,
    queuedGraceMs: cfg.jobs.queuedGraceMs,
    intervalMs: cfg.jobs.reconcileIntervalMs,
    log,
  });

  const training = new Worker<TrainingPayload>(
    QUEUES.training,
    async (job, token) => {
      // a project at its concurrent-jobs limit: the entry waits (delayed) and is tried again
      const defer = async (ms: number): Promise<never> => {
        await job.moveToDelayed(Date.now() + ms, token);
        throw new DelayedError();
      };
      return handleTraining({ store, storage, control, queue, cfg, redis, log, defer }, job.data, (pct) => job.updateProgress(pct));
    },
    {
      connection: conn('blocking'),
      prefix: cfg.queuePrefix,
      concurrency: cfg.trainingConcurrency,
      lockDuration: cfg.lockDurationMs,
      stalledInterval: Math.min(30_000, cfg.lockDurationMs),
    },
  );
  // the shared inference queue and this worker's own (requests routed to the models it holds),
  // at most INFERENCE_CONCURRENCY requests at once over both
  const slots = new Slots(cfg.inferenceConcurrency);
  const serve = (job: { data: InferencePayload }) =>
    slots.run(() =>
      handleInference(
        {
          cache,
          loader,
          redis,
          served: (key, name) => loaded.served(key, name),
          batching: { maxBatch: cfg.decodeMaxBatch, prefillChunk: cfg.prefillChunk, maxCacheBytes: cfg.decodeCacheBytes },
        },
        job.data,
      ),
    );
  const inferenceWorker = (name: string) =>
    new Worker<InferencePayload, InferenceResult>(name, serve, {
      connection: conn('blocking'),
      prefix: cfg.queuePrefix,
      concurrency: cfg.inferenceConcurrency,
    });
  const inference = inferenceWorker(QUEUES.inference);
  const routed = inferenceWorker(workerInferenceQueue(cfg.workerName));
  const evaluation = new Worker<EvaluationPayload>(QUEUES.evaluation, async (job) => handleEvaluation({ store, storage, log }, job.data), {
    connection: conn('blocking'),
    prefix: cfg.queuePrefix,
    concurrency: cfg.evaluationConcurrency,
    lockDuration: cfg.lockDurationMs,
  });
  for (const w of [training, inference, routed, evaluation]) w.on('error', (err) => log(`queue error: ${err.message}`));
  // a request's own problems (input, capacity) go back to its client; anything else is the worker's
  for (const w of [inference, routed])
    w.on('failed', (job, err) => {
      if (!err.message.includes(INFERENCE_INPUT_ERROR) && !err.message.includes(MODEL_CAPACITY_ERROR))
        log(`inference ${job?.id ?? ''} failed: ${err.stack ?? err.message}`);
    });
  await Promise.all([training.waitUntilReady(), inference.waitUntilReady(), routed.waitUntilReady(), evaluation.waitUntilReady()]);
  reconciler.start();
  loaded.start();
  log(`consuming ${QUEUES.training}, ${QUEUES.inference} and ${QUEUES.evaluation} (backend ${choice.name})`);

  return {
    backend: choice.name,
    models: () => cache.list(),
    async close() {
      await reconciler.stop();
      await loaded.stop(); // no request is routed here any more
      control.stopAll();
      await Promise.allSettled([training.close(), inference.close(), routed.close(), evaluation.close()]);
      await queue.close().catch(() => {});
      cache.clear();
      for (const c of connections) c.disconnect(); // BullMQ leaves connections it was given open
      storage.destroy();
      await store.close();
    },
  };
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  let cfg: WorkerConfig;
  try {
    cfg = parseWorkerConfig(process.env);
  } catch (err) {
    console.error(err instanceof ConfigError ? err.message : err);
    process.exit(1);
  }
  startWorker(cfg).then(
    (w) => {
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void w.close().then(() => process.exit(0)));
    },
    (err: Error) => {
      console.error(err);
      process.exit(1);
    },
  );
}
