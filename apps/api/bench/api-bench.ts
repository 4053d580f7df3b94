// npm run bench:api: the API's speed next to a bare Fastify hello-world on the same machine in the
// same run (autocannon, each server in its own process, the load generator in this one):
//   1. bare Fastify GET /                         (the ceiling)
//   2. Crucible GET /health                       (no key, no database)
//   3. Crucible GET /v1/fine_tuning/jobs/{id}     (key checked, job read from PostgreSQL), rate limit off
//   4. the same with the per-key rate limit on (one Redis round trip per request)
//   5. POST /v1/fine_tuning/jobs with 20 clients: saturated, and at a steady 100 requests/s
// Prints requests/s, latency percentiles and the ratio of (3) to (1). Needs PostgreSQL and Redis.
import { type ChildProcess, spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { createProjectWithKey } from '@crucible/api';
import { createStore } from '@crucible/db';
import autocannon from 'autocannon';
import { benchApiEnv, startBenchServices } from './bench-services';

const DURATION_S = Number(process.env.BENCH_SECONDS ?? 10);
const name = 'apibench';

/** Starts `code` in a child Node process (with tsx) and resolves the URL it prints. */
async function child(code: string, env: Record<string, string> = {}): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', '-e', code], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const url: string = await new Promise((resolve, reject) => {
    proc.stdout?.on('data', (d) => {
      const m = /(http:\/\/\S+)/.exec(String(d));
      if (m) resolve(m[1] as string);
    });
    proc.on('exit', (c) => reject(new Error(`server exited with ${c}`)));
  });
  return { url, proc };
}

async function load(title: string, opts: autocannon.Options) {
  const r = await autocannon({ duration: DURATION_S, connections: 50, ...opts });
  const ok = r.requests.total - r.non2xx;
  const row = {
    title,
    rps: Math.round(r.requests.average),
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    errors: r.errors + r.non2xx,
    ok,
  };
  console.log(
    `${title.padEnd(58)} ${String(row.rps).padStart(7)} req/s  p50 ${row.p50} ms  p90 ${row.p90} ms  p99 ${row.p99} ms  non-2xx/errors ${row.errors}`,
  );
  return row;
}

const services = await startBenchServices(name);
const apiEnv = (extra: Record<string, string>) => benchApiEnv(services, name, { LOG_LEVEL: 'warn', MAX_QUEUED_JOBS: '1000000', ...extra });
const startApi = (extra: Record<string, string>) =>
  child(
    `const { startServer } = await import('@crucible/api'); const s = await startServer(process.env); s.app.log.level = 'warn'; console.log(s.url);`,
    apiEnv(extra),
  );
const procs: ChildProcess[] = [];
try {
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}; node ${process.version}; ${DURATION_S} s per run, autocannon in this process\n`);
  const bare = await child(
    `const Fastify = (await import('fastify')).default; const app = Fastify(); app.get('/', async () => ({ hello: 'world' })); await app.listen({ port: 0, host: '127.0.0.1' }); console.log('http://127.0.0.1:' + app.server.address().port);`,
  );
  procs.push(bare.proc);
  const api = await startApi({ RATE_LIMIT_RPM: '0' });
  procs.push(api.proc);

  // a project, a file and a job to read
  const store = createStore(services.databaseUrl);
  const { secret } = await createProjectWithKey(store, name);
  await store.close();
  const auth = { authorization: `Bearer ${secret}` };
  const form = new FormData();
  form.append('purpose', 'fine-tune');
  form.append('file', new Blob(['To be, or not to be, that is the question.\n'.repeat(200)]), 'bench.txt');
  const file = (await (await fetch(`${api.url}/v1/files`, { method: 'POST', headers: auth, body: form })).json()) as { id: string };
  const jobBody = JSON.stringify({ model: 'gpt-nano', training_file: file.id, hyperparameters: { max_steps: 10 } });
  const post = { method: 'POST' as const, headers: { ...auth, 'content-type': 'application/json' }, body: jobBody };
  const job = (await (await fetch(`${api.url}/v1/fine_tuning/jobs`, post)).json()) as { id: string };

  // warm-up (JIT, connection pools)
  await autocannon({ url: `${api.url}/v1/fine_tuning/jobs/${job.id}`, headers: auth, duration: 2, connections: 10 });
  await autocannon({ url: `${bare.url}/`, duration: 2, connections: 10 });

  const base = await load('bare Fastify GET /', { url: `${bare.url}/` });
  await load('Crucible GET /health (no key)', { url: `${api.url}/health` });
  const read = await load('Crucible GET /v1/fine_tuning/jobs/{id} (rate limit off)', { url: `${api.url}/v1/fine_tuning/jobs/${job.id}`, headers: auth });
  api.proc.kill();
  const limited = await startApi({ RATE_LIMIT_RPM: '10000000' });
  procs.push(limited.proc);
  await autocannon({ url: `${limited.url}/v1/fine_tuning/jobs/${job.id}`, headers: auth, duration: 2, connections: 10 });
  const readLimited = await load('Crucible GET /v1/fine_tuning/jobs/{id} (rate limit on)', {
    url: `${limited.url}/v1/fine_tuning/jobs/${job.id}`,
    headers: auth,
  });
  const single = await load('POST /v1/fine_tuning/jobs, 1 client, one after another', {
    url: `${limited.url}/v1/fine_tuning/jobs`,
    connections: 1,
    ...post,
  });
  const create = await load('POST /v1/fine_tuning/jobs, 20 clients, saturated', {
    url: `${limited.url}/v1/fine_tuning/jobs`,
    connections: 20,
    ...post,
  });
  // 20 clients, each sending 5 requests a second (paced per connection, not in bursts)
  const steady = await load('POST /v1/fine_tuning/jobs, 20 clients x 5 req/s', {
    url: `${limited.url}/v1/fine_tuning/jobs`,
    connections: 20,
    connectionRate: 5,
    ...post,
  });
  console.log(`\nauthenticated read / bare Fastify: ${((100 * read.rps) / base.rps).toFixed(1)} % (goal >= 25 %)`);
  console.log(`with the rate limit on:            ${((100 * readLimited.rps) / base.rps).toFixed(1)} %`);
  console.log(`job creation alone: p50 ${single.p50} ms, p99 ${single.p99} ms`);
  console.log(`job creation p99: ${create.p99} ms saturated (${create.rps} jobs/s), ${steady.p99} ms at 20 x 5/s (goal < 20 ms)`);
} finally {
  for (const p of procs) p.kill();
  services.stop();
}
