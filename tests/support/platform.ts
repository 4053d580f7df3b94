// A whole Crucible for one test file, on real services: a fresh PostgreSQL database with the
// migrations applied, Redis with a queue prefix of its own, a local S3 server on a temp folder,
// the API listening on a random port and a worker consuming its queues.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, createDeps, createProjectWithKey, type Deps, parseApiConfig } from '@crucible/api';
import { deployMigrations, ensureDatabase } from '@crucible/db';
import { startLocalS3 } from '@crucible/storage';
import { parseWorkerConfig, type RunningWorker, startWorker } from '@crucible/worker';
import type { FastifyInstance } from 'fastify';
import OpenAI from 'openai';
import pg from 'pg';

export const ADMIN_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://root@localhost/postgres?host=/var/run/postgresql';

export interface TestPlatform {
  url: string;
  apiKey: string;
  projectId: string;
  deps: Deps;
  app: FastifyInstance;
  env: Record<string, string>;
  /** The worker started beside the API (none with `worker: false`). */
  worker?: RunningWorker;
  /** Another project's key (for isolation checks). */
  newProject(name: string): Promise<{ apiKey: string; projectId: string }>;
  /** The official openai client on this API (no retries), with this project's key by default. */
  openai(apiKey?: string): OpenAI;
  /** fetch of an /v1 path with this project's key. */
  api(path: string, init?: RequestInit): Promise<Response>;
  /** Rows of a query on this platform's own database (for checks the API does not expose). */
  sql<T = Record<string, unknown>>(query: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

/** `env` adds to (or overrides) the test environment, e.g. limits. */
export async function startPlatform(opts: { worker?: boolean; env?: Record<string, string> } = {}): Promise<TestPlatform> {
  const tag = `${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const dbUrl = new URL(ADMIN_DATABASE_URL);
  dbUrl.pathname = `/crucible_test_${tag}`;
  await ensureDatabase(dbUrl.toString());
  await deployMigrations(dbUrl.toString(), () => {});
  const dir = mkdtempSync(join(tmpdir(), 'crucible-s3-'));
  const s3 = await startLocalS3(dir);
  const env = {
    DATABASE_URL: dbUrl.toString(),
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: 'crucible-test',
    QUEUE_PREFIX: `crucible-test-${tag}`,
    PORT: '0',
    INFERENCE_TIMEOUT_MS: '60000',
    TFJS_BACKEND: process.env.TFJS_BACKEND ?? 'auto',
    // notice lost work in seconds, not the production half-minute
    JOB_HEARTBEAT_MS: '500',
    WORKER_DEAD_AFTER_MS: '4000',
    RECONCILE_INTERVAL_MS: '1000',
    QUEUED_GRACE_MS: '2000',
    // tests poll often; the rate limit has its own test
    RATE_LIMIT_RPM: '0',
    AUTH_FAILURES_PER_MINUTE: '0',
    WEBHOOK_POLL_MS: '200',
    // the tests' receivers listen on 127.0.0.1 (the refusal of private addresses has its own test)
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
    ...opts.env,
  };
  const cfg = parseApiConfig(env);
  const deps = await createDeps(cfg);
  const app = await buildApp(cfg, deps);
  await app.listen({ host: '127.0.0.1', port: 0 });
  deps.webhooks.start();
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  // TEST_WORKER_LOG=1 prints the worker's log (debugging a failure)
  const workerLog = process.env.TEST_WORKER_LOG ? (m: unknown) => console.log('worker:', m) : () => {};
  const worker = opts.worker === false ? undefined : await startWorker(parseWorkerConfig(env), workerLog);
  const { secret, projectId } = await createProjectWithKey(deps.store, 'test');
  const sqlClient = new pg.Client({ connectionString: dbUrl.toString() });
  await sqlClient.connect();
  return {
    url,
    apiKey: secret,
    projectId,
    deps,
    app,
    env,
    worker,
    openai: (key = secret) => new OpenAI({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 0 }),
    api: (path, init = {}) => fetch(`${url}/v1${path}`, { ...init, headers: { authorization: `Bearer ${secret}`, ...init.headers } }),
    newProject: async (name) => {
      const p = await createProjectWithKey(deps.store, name);
      return { apiKey: p.secret, projectId: p.projectId };
    },
    sql: async <T>(query: string, params: unknown[] = []) => (await sqlClient.query(query, params)).rows as T[],
    async close() {
      await sqlClient.end().catch(() => {});
      await worker?.close();
      await app.close();
      await deps.trainingQueue.obliterate({ force: true }).catch(() => {});
      await deps.inferenceQueue.obliterate({ force: true }).catch(() => {});
      await deps.evaluationQueue.obliterate({ force: true }).catch(() => {});
      await deps.close();
      await s3.close();
      rmSync(dir, { recursive: true, force: true });
      const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "crucible_test_${tag}" WITH (FORCE)`);
      await admin.end();
    },
  };
}

/** Polls `fn` until it returns a value that is not undefined, or fails after `ms`. */
export async function eventually<T>(fn: () => Promise<T | undefined>, ms = 120_000, every = 200): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** Waits until a job reaches one of `statuses`; fails at once if it fails when that was not asked for. */
export async function waitForJobStatus<J extends { status: string; error?: unknown }>(
  client: { fineTuning: { jobs: { retrieve(id: string): PromiseLike<J> } } },
  id: string,
  statuses: string[] = ['succeeded'],
  ms = 180_000,
): Promise<J> {
  return eventually(async () => {
    const j = await client.fineTuning.jobs.retrieve(id);
    if (j.status === 'failed' && !statuses.includes('failed')) throw new Error(`job ${id} failed: ${JSON.stringify(j.error)}`);
    return statuses.includes(j.status) ? j : undefined;
  }, ms);
}
