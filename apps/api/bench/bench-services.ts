// What the API benchmarks stand on: a local S3 server in its own process (so its memory is not
// the API's) on a fresh folder, and a PostgreSQL database with the migrations applied; `stop`
// removes both. Then the API in the benchmark's own process (whose RSS it measures), curl in its
// own, and an RSS sampler. Needs the machine's PostgreSQL (local socket), Redis and curl.
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, createDeps, createProjectWithKey, parseApiConfig } from '@crucible/api';
import { deployMigrations, ensureDatabase } from '@crucible/db';

export interface BenchServices {
  s3Endpoint: string;
  databaseUrl: string;
  stop(): void;
}

export async function startBenchServices(name: string): Promise<BenchServices> {
  const s3Dir = join(tmpdir(), `crucible-bench-${name}-s3`);
  spawnSync('rm', ['-rf', s3Dir]);
  const s3 = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `const { startLocalS3 } = await import('@crucible/storage'); const s = await startLocalS3(${JSON.stringify(s3Dir)}, 0); console.log(s.endpoint);`,
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const s3Endpoint: string = await new Promise((r) => s3.stdout.on('data', (d) => r(String(d).trim())));
  const database = `crucible_bench_${name}`;
  const databaseUrl = `postgresql://root@localhost/${database}?host=/var/run/postgresql`;
  await ensureDatabase(databaseUrl);
  await deployMigrations(databaseUrl, () => {});
  return {
    s3Endpoint,
    databaseUrl,
    stop() {
      s3.kill();
      spawnSync('rm', ['-rf', s3Dir]);
      spawnSync('psql', ['-h', '/var/run/postgresql', '-d', 'postgres', '-c', `DROP DATABASE ${database} WITH (FORCE)`]);
    },
  };
}

export interface BenchApi {
  url: string;
  /** A project's API key. */
  secret: string;
  close(): Promise<void>;
}

/** The API's environment on the bench services, with `name` as its bucket and queue prefix. */
export function benchApiEnv(services: BenchServices, name: string, env: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: services.databaseUrl,
    REDIS_URL: 'redis://127.0.0.1:6379',
    S3_ENDPOINT: services.s3Endpoint,
    S3_BUCKET: name,
    QUEUE_PREFIX: name,
    PORT: '0',
    ...env,
  };
}

/** The API listening in this process on the bench services, with `name` as its bucket and queue prefix. */
export async function startBenchApi(services: BenchServices, name: string, env: Record<string, string> = {}): Promise<BenchApi> {
  const cfg = parseApiConfig(benchApiEnv(services, name, env));
  const deps = await createDeps(cfg);
  const app = await buildApp(cfg, deps);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { secret } = await createProjectWithKey(deps.store, name);
  return {
    url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`,
    secret,
    async close() {
      await app.close();
      await deps.close();
    },
  };
}

/** This process's RSS after a GC (with --expose-gc) and its peak from then on, sampled every 20 ms until `stop`. */
export function sampleRss(): { before: number; peak: () => number; stop: () => void } {
  global.gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  return { before, peak: () => peak, stop: () => clearInterval(timer) };
}

/** Runs curl in its own process (asynchronously: the API answering it lives in this one) and answers its stdout. */
export async function curl(args: string[]): Promise<string> {
  const child = spawn('curl', args);
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  await new Promise((r) => child.on('close', r));
  return out;
}
