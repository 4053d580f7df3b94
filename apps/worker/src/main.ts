// The worker process: choose the TensorFlow.js backend, then consume the training and inference
// queues. SIGTERM/SIGINT stop running jobs at the next step, save checkpoints, and exit.
import { createDb } from '@crucible/db';
import { ConfigError, type InferencePayload, type InferenceResult, QUEUES, type TrainingPayload } from '@crucible/domain';
import { Storage } from '@crucible/storage';
import { initBackend } from '@crucible/trainer';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { parseWorkerConfig, type WorkerConfig } from './config';
import { JobControl } from './control';
import { handleInference } from './inference-handler';
import { ModelCache } from './model-cache';
import { handleTraining } from './train-handler';

export interface RunningWorker {
  backend: string;
  close(): Promise<void>;
}

export async function startWorker(cfg: WorkerConfig, log: (msg: string) => void = (m) => console.log(`[worker] ${m}`)): Promise<RunningWorker> {
  const choice = await initBackend(cfg.backend, log, { nativeKernels: cfg.nativeKernels, nativeThreads: cfg.nativeThreads });
  const db = createDb(cfg.databaseUrl);
  const storage = new Storage(cfg.s3);
  await storage.ensureBucket();
  const connections: Redis[] = [];
  const conn = () => {
    const c = new Redis(cfg.redisUrl, { maxRetriesPerRequest: null });
    connections.push(c);
    return c;
  };
  const redis = conn();
  const sub = conn();
  const control = new JobControl();
  await control.listen(sub);
  const cache = new ModelCache(storage, cfg.modelCacheSize);

  const training = new Worker<TrainingPayload>(
    QUEUES.training,
    async (job) => handleTraining({ db, storage, control, cfg, log }, job.data, (pct) => job.updateProgress(pct)),
    {
      connection: conn(),
      prefix: cfg.queuePrefix,
      concurrency: cfg.trainingConcurrency,
      lockDuration: cfg.lockDurationMs,
      // look for jobs whose worker died at least once per lock period
      stalledInterval: Math.min(30_000, cfg.lockDurationMs),
    },
  );
  const inference = new Worker<InferencePayload, InferenceResult>(QUEUES.inference, async (job) => handleInference({ db, cache, redis }, job.data), {
    connection: conn(),
    prefix: cfg.queuePrefix,
    concurrency: cfg.inferenceConcurrency,
  });
  for (const w of [training, inference]) w.on('error', (err) => log(`queue error: ${err.message}`));
  await Promise.all([training.waitUntilReady(), inference.waitUntilReady()]);
  log(`consuming ${QUEUES.training} and ${QUEUES.inference} (backend ${choice.name})`);

  return {
    backend: choice.name,
    async close() {
      control.stopAll();
      await Promise.allSettled([training.close(), inference.close()]);
      cache.clear();
      for (const c of connections) c.disconnect(); // BullMQ leaves connections it was given open
      storage.destroy();
      await db.$disconnect();
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
