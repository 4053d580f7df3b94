// A whole Crucible for one fault test, every part its own: PostgreSQL cluster, Redis, S3 server,
// the API and the worker as separate processes (so they can be killed), and checks that a job
// came through a fault whole: succeeded, metrics without duplicate or missing steps, no orphan
// records or objects.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createProjectWithKey } from '@crucible/api';
import { createStore, deployMigrations } from '@crucible/db';
import { QUEUES, trainingQueueEntryId } from '@crucible/domain';
import { keys, Storage } from '@crucible/storage';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { shakespeare } from '../../support/data';
import { freePort, PostgresCluster, RedisServer, S3Server, sleep } from './services';

const ROOT = resolve(import.meta.dirname, '../../..');

/**
 * Timings for tests: dead workers noticed in seconds. FAULT_TIMINGS=production runs with the
 * production defaults instead (30 s heartbeat silence, 10 s passes), to measure them.
 */
const FAST: Record<string, string> =
  process.env.FAULT_TIMINGS === 'production'
    ? {}
    : { JOB_HEARTBEAT_MS: '500', WORKER_DEAD_AFTER_MS: '4000', RECONCILE_INTERVAL_MS: '1000', QUEUED_GRACE_MS: '2000', WORKER_LOCK_MS: '5000' };

export const JOB_HP = { block_size: 16, batch_size: 2, eval_interval: 100, eval_batches: 2, checkpoint_interval: 20, log_interval: 5 };

export interface Job {
  id: string;
  status: string;
  fine_tuned_model: string | null;
  error: unknown;
  hyperparameters: Record<string, unknown>;
}

export class Rig {
  readonly logDir = join(tmpdir(), `crucible-faults-${process.pid}-${Math.random().toString(36).slice(2, 7)}`);
  api: ChildProcess | undefined;
  workers: ChildProcess[] = [];
  apiKey = '';
  projectId = '';
  apiPort = 0;
  private started = Date.now();
  private n = 0;

  private constructor(
    readonly pg: PostgresCluster,
    readonly redis: RedisServer,
    readonly s3: S3Server,
  ) {
    mkdirSync(this.logDir, { recursive: true });
  }

  static async start(opts: { worker?: boolean } = {}): Promise<Rig> {
    const [pgc, redis, s3] = await Promise.all([PostgresCluster.start(), RedisServer.start(), S3Server.start()]);
    const rig = new Rig(pgc, redis, s3);
    await deployMigrations(pgc.url, () => {});
    const store = createStore(pgc.url);
    const k = await createProjectWithKey(store, 'faults');
    await store.close();
    rig.apiKey = k.secret;
    rig.projectId = k.projectId;
    rig.apiPort = await freePort();
    await rig.startApi();
    if (opts.worker !== false) await rig.startWorker();
    return rig;
  }

  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...(process.env as Record<string, string>),
      DATABASE_URL: this.pg.url,
      REDIS_URL: this.redis.url,
      S3_ENDPOINT: this.s3.endpoint,
      S3_BUCKET: 'crucible-faults',
      QUEUE_PREFIX: 'crucible-faults',
      HOST: '127.0.0.1',
      PORT: String(this.apiPort),
      LOG_LEVEL: 'warn',
      ...FAST,
      ...extra,
    };
  }

  private spawnApp(name: string, script: string, extra: Record<string, string>): ChildProcess {
    const out = openSync(join(this.logDir, `${name}-${++this.n}.log`), 'a');
    const p = spawn(process.execPath, ['--import', 'tsx', join(ROOT, script)], { env: this.env(extra), stdio: ['ignore', out, out], cwd: ROOT });
    closeSync(out);
    return p;
  }

  async startApi(extra: Record<string, string> = {}): Promise<void> {
    this.api = this.spawnApp('api', 'apps/api/src/server.ts', extra);
    const end = Date.now() + 60_000;
    while (Date.now() < end) {
      if (
        await fetch(`${this.url}/health`).then(
          (r) => r.ok,
          () => false,
        )
      )
        return;
      if (this.api.exitCode !== null) break;
      await sleep(200);
    }
    throw new Error(`API did not start; log:\n${this.logs('api')}`);
  }

  async startWorker(extra: Record<string, string> = {}): Promise<ChildProcess> {
    const w = this.spawnApp('worker', 'apps/worker/src/main.ts', extra);
    this.workers.push(w);
    return w;
  }

  /** SIGKILL: the process gets no chance to save anything. */
  async kill9(p: ChildProcess | undefined): Promise<void> {
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  }

  get url(): string {
    return `http://127.0.0.1:${this.apiPort}`;
  }

  /** An /v1 request that never hangs: 10 s and it counts as a failure. */
  async call(path: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
    const res = await fetch(`${this.url}${path.startsWith('/v1') || path.startsWith('/ready') || path.startsWith('/health') ? path : `/v1${path}`}`, {
      ...init,
      headers: {
        authorization: `Bearer ${this.apiKey}`,
        ...(init.body && typeof init.body === 'string' ? { 'content-type': 'application/json' } : {}),
        ...init.headers,
      },
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text);
    } catch {
      body = { text };
    }
    return { status: res.status, body, headers: res.headers };
  }

  async upload(chars = 30_000): Promise<string> {
    const form = new FormData();
    form.append('purpose', 'fine-tune');
    form.append('file', new Blob([shakespeare(chars)]), 'faults.txt');
    const r = await this.call('/files', { method: 'POST', body: form });
    if (r.status !== 200) throw new Error(`upload: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.id as string;
  }

  /** A pretraining job of gpt-nano; `body` adds fields to the request (resources, ...). */
  async createJob(fileId: string, maxSteps: number, hp: Record<string, unknown> = {}, body: Record<string, unknown> = {}): Promise<Job> {
    const r = await this.call('/fine_tuning/jobs', {
      method: 'POST',
      body: JSON.stringify({
        model: 'gpt-nano',
        training_file: fileId,
        seed: 7,
        method: { type: 'pretrain', pretrain: { hyperparameters: { ...JOB_HP, ...hp, max_steps: maxSteps } } },
        ...body,
      }),
    });
    if (r.status !== 200) throw new Error(`create job: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as unknown as Job;
  }

  async job(id: string): Promise<Job> {
    const r = await this.call(`/fine_tuning/jobs/${id}`);
    if (r.status !== 200) throw new Error(`job ${id}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as unknown as Job;
  }

  async waitFor(id: string, statuses: string[], ms = 240_000): Promise<Job> {
    const end = Date.now() + ms;
    let last: Job | undefined;
    while (Date.now() < end) {
      last = await this.job(id).catch(() => last);
      if (last && statuses.includes(last.status)) return last;
      if (last?.status === 'failed') throw new Error(`job ${id} failed: ${JSON.stringify(last.error)}\nworker logs:\n${this.logs('worker')}`);
      await sleep(250);
    }
    throw new Error(`job ${id} not ${statuses.join('|')} within ${ms} ms (last ${last?.status})\nworker logs:\n${this.logs('worker')}`);
  }

  /** Direct SQL on this rig's database (what the API does not expose). */
  async sql<T = Record<string, unknown>>(query: string, params: unknown[] = []): Promise<T[]> {
    const c = new pg.Client({ connectionString: this.pg.url });
    await c.connect();
    try {
      return (await c.query(query, params)).rows as T[];
    } finally {
      await c.end();
    }
  }

  async latestCheckpointStep(jobId: string): Promise<number> {
    const rows = await this.sql<{ step: number }>('SELECT max(step) AS step FROM job_checkpoints WHERE job_id = $1', [jobId]);
    return rows[0]?.step ?? 0;
  }

  async latestMetricStep(jobId: string): Promise<number> {
    const rows = await this.sql<{ step: number }>('SELECT max(step) AS step FROM job_metrics WHERE job_id = $1 AND train_loss IS NOT NULL', [jobId]);
    return rows[0]?.step ?? 0;
  }

  async waitForCheckpoint(jobId: string, atLeast: number, ms = 120_000): Promise<number> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const s = await this.latestCheckpointStep(jobId).catch(() => 0);
      if (s >= atLeast) return s;
      await sleep(50);
    }
    throw new Error(`no checkpoint at step >= ${atLeast} of ${jobId} within ${ms} ms\nworker logs:\n${this.logs('worker')}`);
  }

  /** Every event message of a job, oldest first. */
  async events(jobId: string): Promise<Array<{ message: string; data: Record<string, unknown> | null }>> {
    return this.sql('SELECT message, data FROM job_events WHERE job_id = $1 ORDER BY seq', [jobId]);
  }

  /**
   * The whole-job checks after a fault: every logged step exactly once (no duplicates, none
   * missing), one metric event per logged step, and no orphan records or objects.
   */
  async assertWhole(jobId: string, maxSteps: number, logInterval = JOB_HP.log_interval): Promise<{ stepsRedone: number; resumes: number }> {
    const problems: string[] = [];
    const m = await this.call(`/fine_tuning/jobs/${jobId}/metrics?max_points=10000`);
    const trainSteps = (m.body.data as Array<{ step: number; train_loss: number | null }>).filter((d) => d.train_loss !== null).map((d) => d.step);
    const expected = Array.from({ length: Math.floor(maxSteps / logInterval) }, (_, i) => (i + 1) * logInterval);
    if (maxSteps % logInterval !== 0) expected.push(maxSteps);
    if (JSON.stringify(trainSteps) !== JSON.stringify(expected))
      problems.push(`metric steps ${JSON.stringify(trainSteps)} != every ${logInterval} to ${maxSteps}`);
    const events = await this.events(jobId);
    const stepEvents = events
      .map((e) => /^Step (\d+)\/\d+: training loss/.exec(e.message)?.[1])
      .filter(Boolean)
      .map(Number);
    if (JSON.stringify(stepEvents) !== JSON.stringify(expected)) problems.push(`step events ${JSON.stringify(stepEvents)} != ${JSON.stringify(expected)}`);
    problems.push(...(await this.orphans()));
    problems.push(...(await this.retriesOutsideTheOwner(jobId, events)));
    if (problems.length) throw new Error(`job ${jobId} not whole:\n  ${problems.join('\n  ')}`);
    const resumed = events.filter((e) => e.data && typeof e.data.steps_redone === 'number');
    return { stepsRedone: resumed.reduce((s, e) => s + (e.data?.steps_redone as number), 0), resumes: resumed.length };
  }

  /**
   * Retries made other than by requeueAttempt (@crucible/queue), the one retry owner: every new
   * attempt of the job has exactly one requeue event naming it (data.new_attempt), and no queue
   * entry of any attempt was retried by BullMQ itself.
   */
  async retriesOutsideTheOwner(jobId: string, events: Array<{ data: Record<string, unknown> | null }>): Promise<string[]> {
    const out: string[] = [];
    const [row] = await this.sql<{ attempt: number }>('SELECT attempt FROM jobs WHERE id = $1', [jobId]);
    const attempts = row?.attempt ?? 0;
    const named = events.map((e) => e.data?.new_attempt).filter((a): a is number => typeof a === 'number');
    const want = Array.from({ length: attempts }, (_, i) => i + 1);
    if (JSON.stringify(named) !== JSON.stringify(want)) out.push(`requeue events name attempts ${JSON.stringify(named)}; the job is at attempt ${attempts}`);
    const connection = new Redis(this.redis.url, { maxRetriesPerRequest: 1 });
    const queue = new Queue(QUEUES.training, { connection, prefix: 'crucible-faults' });
    try {
      for (let a = 0; a <= attempts; a++) {
        const entry = await queue.getJob(trainingQueueEntryId(jobId, a));
        if (entry && (entry.opts.attempts !== 1 || entry.attemptsMade > 1)) {
          out.push(`queue entry of attempt ${a} ran ${entry.attemptsMade} times (attempts: ${entry.opts.attempts})`);
        }
      }
    } finally {
      await queue.close();
      connection.disconnect();
    }
    return out;
  }

  /** Records without their objects, objects without their records, jobs still owned by nobody. */
  async orphans(): Promise<string[]> {
    const out: string[] = [];
    const storage = new Storage({
      endpoint: this.s3.endpoint,
      region: 'us-east-1',
      bucket: 'crucible-faults',
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
    });
    try {
      const objects = new Set(await storage.list('projects/'));
      const want = new Set<string>();
      for (const f of await this.sql<{ id: string; storage_key: string; state: string }>('SELECT id, storage_key, state FROM files')) {
        // settled files (processed, or error with their report) are fine; uploading or pending ones are stuck
        if (f.state !== 'processed' && f.state !== 'error') out.push(`file ${f.id} left ${f.state}`);
        want.add(f.storage_key);
      }
      for (const c of await this.sql<{ storage_key: string }>('SELECT storage_key FROM job_checkpoints')) want.add(c.storage_key);
      // a model's folder: the three files every model has, and whatever else sits in its prefix
      const modelPrefixes: string[] = [];
      for (const mdl of await this.sql<{ id: string; project_id: string }>('SELECT id, project_id FROM models')) {
        modelPrefixes.push(keys.modelPrefix(mdl.project_id, mdl.id));
        for (const name of ['model.safetensors', 'config.json', 'tokenizer.json']) want.add(keys.modelPrefix(mdl.project_id, mdl.id) + name);
      }
      for (const k of want) if (!objects.has(k)) out.push(`record without object: ${k}`);
      for (const k of objects) if (!want.has(k) && !modelPrefixes.some((p) => k.startsWith(p))) out.push(`object without record: ${k}`);
      const stuck = await this.sql<{ id: string; status: string }>("SELECT id, status FROM jobs WHERE status IN ('running', 'validating_files')");
      for (const j of stuck) out.push(`job ${j.id} still ${j.status}`);
    } finally {
      storage.destroy();
    }
    return out;
  }

  logs(kind: 'api' | 'worker'): string {
    const parts: string[] = [];
    for (let i = 1; i <= this.n; i++) {
      try {
        parts.push(readFileSync(join(this.logDir, `${kind}-${i}.log`), 'utf8').slice(-3000));
      } catch {}
    }
    return parts.join('\n---\n');
  }

  /** Figures for RELIABILITY.md, written under .crucible/reliability/. */
  record(name: string, figures: Record<string, unknown>): void {
    const dir = join(ROOT, '.crucible', 'reliability');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name}.json`), `${JSON.stringify({ ...figures, test_seconds: Math.round((Date.now() - this.started) / 1000) }, null, 2)}\n`);
  }

  async close(): Promise<void> {
    for (const w of this.workers) await this.kill9(w);
    await this.kill9(this.api);
    await Promise.allSettled([this.redis.stop(), this.s3.destroy(), this.pg.destroy()]);
  }
}
