// Key management (scopes, last use, revocation that holds across API processes), every limit
// reached and reported, per-project overrides set by the operator's tool, Idempotency-Key, and
// the Prometheus metrics.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { buildApp, createDeps, createProjectWithKey, parseApiConfig } from '@crucible/api';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shakespeare } from '../support/data';
import { type ErrorBodyShape, leftovers } from '../support/leftovers';
import { eventually, startPlatform, type TestPlatform } from '../support/platform';

let p: TestPlatform;
/** A second API process on the same database and Redis (its own key cache). */
let other: { app: FastifyInstance; url: string; close(): Promise<void> };

const LIMITS = {
  RATE_LIMIT_RPM: '40',
  MAX_QUEUED_JOBS: '2',
  MAX_JOB_TOKENS: '1000000',
  MAX_PROMPT_CHARS: '100',
  MAX_COMPLETION_TOKENS: '50',
  MAX_STORAGE_BYTES: '20000',
};

beforeAll(async () => {
  p = await startPlatform({ worker: false, env: LIMITS });
  const cfg = parseApiConfig(p.env);
  const deps = await createDeps(cfg);
  const app = await buildApp(cfg, deps);
  await app.listen({ host: '127.0.0.1', port: 0 });
  other = {
    app,
    url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`,
    async close() {
      await app.close();
      await deps.close();
    },
  };
});
afterAll(async () => {
  await other?.close();
  await p?.close();
});

async function call(key: string, method: string, path: string, body?: unknown, base = p.url, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as ErrorBodyShape & Record<string, unknown> };
}

/** The operator's tool, run as a user would run it, against this platform's database and Redis. */
async function projectsTool(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)('npx', ['tsx', 'apps/api/scripts/projects.ts', ...args], { env: { ...process.env, ...p.env } });
  return stdout;
}

async function upload(key: string, text: string, name = 'a.txt') {
  const form = new FormData();
  form.append('purpose', 'fine-tune');
  form.append('file', new Blob([text]), name);
  const res = await fetch(`${p.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form });
  return { status: res.status, body: (await res.json()) as ErrorBodyShape & { id: string } };
}

describe('API keys', () => {
  it('creates keys with scopes; a read key reads but cannot write; only admin keys manage keys', async () => {
    const { apiKey: admin, projectId } = await p.newProject('keys');
    const made = await call(admin, 'POST', `/projects/${projectId}/api_keys`, { name: 'ci reader', scopes: ['read'] });
    expect(made.status).toBe(200);
    expect(made.body).toMatchObject({ object: 'api_key', name: 'ci reader', scopes: ['read'], project_id: projectId, revoked_at: null });
    const reader = made.body.secret as string;
    expect(reader).toMatch(/^sk-crucible-/);
    expect(reader.startsWith(made.body.prefix as string)).toBe(true);

    expect((await call(reader, 'GET', '/files')).status).toBe(200);
    const denied = await call(reader, 'POST', '/fine_tuning/jobs', { model: 'gpt-nano', training_file: 'file-x' });
    expect(denied.status).toBe(403);
    expect(denied.body.error).toMatchObject({ code: 'forbidden', param: 'authorization' });
    expect((await call(reader, 'GET', `/projects/${projectId}/api_keys`)).status).toBe(403);

    const writer = (await call(admin, 'POST', `/projects/${projectId}/api_keys`, { name: 'trainer' })).body;
    expect(writer.scopes).toEqual(['read', 'write']);
    expect((await call(writer.secret as string, 'POST', '/projects', { name: 'nope' })).status).toBe(403);

    const list = await call(admin, 'GET', `/projects/${projectId}/api_keys`);
    const data = list.body.data as Array<Record<string, unknown>>;
    expect(data.map((k) => k.name).sort()).toEqual(['ci reader', 'default', 'trainer']);
    // GET /me: any key learns its project and its own scopes (never a secret)
    const me = await call(reader, 'GET', '/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ object: 'caller', project: { id: projectId, object: 'project' }, api_key: { id: made.body.id, scopes: ['read'] } });
    expect(me.body.api_key).not.toHaveProperty('secret');
    for (const k of data) {
      expect(k).not.toHaveProperty('secret');
      expect(k).toHaveProperty('prefix');
      expect(k).toHaveProperty('created_at');
    }
    // last_used_at is written (asynchronously) once the key is used
    await eventually(async () => {
      const k = (await call(admin, 'GET', `/projects/${projectId}/api_keys/${made.body.id}`)).body;
      return typeof k.last_used_at === 'number' ? k : undefined;
    }, 10_000);
  });

  it('revocation takes effect on the next request, here and (within moments) in another API process', async () => {
    const { apiKey: admin, projectId } = await p.newProject('revoke');
    const victim = (await call(admin, 'POST', `/projects/${projectId}/api_keys`, { name: 'leaked', scopes: ['read'] })).body;
    const secret = victim.secret as string;
    // both processes have the key cached
    expect((await call(secret, 'GET', '/files')).status).toBe(200);
    expect((await call(secret, 'GET', '/files', undefined, other.url)).status).toBe(200);
    const revoked = await call(admin, 'DELETE', `/projects/${projectId}/api_keys/${victim.id}`);
    expect(revoked.status).toBe(200);
    expect(typeof revoked.body.revoked_at).toBe('number');
    const next = await call(secret, 'GET', '/files');
    expect(next.status).toBe(401);
    expect(next.body.error.code).toBe('unauthorized');
    expect(next.body.error.message).toMatch(/was revoked at \d{4}-/); // a client can tell its user why
    const started = Date.now();
    await eventually(async () => ((await call(secret, 'GET', '/files', undefined, other.url)).status === 401 ? true : undefined), 2_000, 5);
    expect(Date.now() - started).toBeLessThan(1_000);
    // the admin key still works, and the revoked key stays listed
    const listed = (await call(admin, 'GET', `/projects/${projectId}/api_keys`)).body.data as Array<{ id: string; revoked_at: number | null }>;
    expect(listed.find((k) => k.id === victim.id)?.revoked_at).not.toBeNull();
  });

  it('an admin key cannot create projects nor grant operator; an operator key creates a project whose key sees only that project', async () => {
    const { apiKey: admin, projectId } = await p.newProject('parent');
    const refused = await call(admin, 'POST', '/projects', { name: 'team b' });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: 'forbidden', message: expect.stringMatching(/lacks the operator scope/) });
    const escalate = await call(admin, 'POST', `/projects/${projectId}/api_keys`, { name: 'up', scopes: ['operator'] });
    expect(escalate.status).toBe(403);
    expect(escalate.body.error).toMatchObject({ code: 'forbidden', param: 'scopes' });
    // the server operator's key (npm run projects -- create ops --scopes read,write,admin,operator)
    const ops = (await createProjectWithKey(p.deps.store, 'ops', ['read', 'write', 'admin', 'operator'])).secret;
    const created = await call(ops, 'POST', '/projects', { name: 'team b' });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ object: 'project', name: 'team b', usage: { storage_bytes: 0, queued_jobs: 0, running_jobs: 0 } });
    expect((created.body.limits as Record<string, number>).max_queued_jobs).toBe(2);
    const key = (created.body.api_key as { secret: string }).secret;
    expect((await call(key, 'GET', `/projects/${created.body.id}`)).status).toBe(200);
    const foreign = await call(key, 'GET', `/projects/${projectId}`);
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe('project_not_found');
    expect((await call(key, 'GET', `/projects/${projectId}/api_keys`)).status).toBe(404);
    // the new project's first key is admin, not operator
    expect(created.body.api_key).toMatchObject({ scopes: ['read', 'write', 'admin'] });
    expect((await call(key, 'POST', '/projects', { name: 'team c' })).status).toBe(403);
  });
});

describe('limits', () => {
  it('rate-limits a key with 429, Retry-After and remaining headers, counted across API processes', async () => {
    const { apiKey, projectId } = await p.newProject('rate');
    expect(await projectsTool('limits', projectId, 'rate_limit_rpm=6')).toMatch(/rate_limit_rpm\s+6\s+\(project override\)/);
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 0; i < 8; i++) {
      last = await call(apiKey, 'GET', '/files', undefined, i % 2 ? other.url : p.url);
      statuses.push(last.status);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(6);
    expect(statuses.slice(6)).toEqual([429, 429]);
    expect(last?.body.error.code).toBe('rate_limited');
    const retryAfter = Number(last?.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 120).toBe(true);
    expect(last?.headers.get('x-ratelimit-limit-requests')).toBe('6');
    expect(last?.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    // 0 turns it off for the project
    await projectsTool('limits', projectId, 'rate_limit_rpm=0');
    expect((await call(apiKey, 'GET', '/files')).status).toBe(200);
  });

  it('refuses a job beyond MAX_QUEUED_JOBS, leaving nothing behind, and takes one once a slot is free', async () => {
    const { apiKey } = await p.newProject('queued');
    const file = (await upload(apiKey, shakespeare(3000))).body.id;
    const job = { model: 'gpt-nano', training_file: file, hyperparameters: { max_steps: 5 } };
    const first = await call(apiKey, 'POST', '/fine_tuning/jobs', job);
    expect(first.status).toBe(200);
    expect((await call(apiKey, 'POST', '/fine_tuning/jobs', job)).status).toBe(200);
    const before = await leftovers(p);
    const third = await call(apiKey, 'POST', '/fine_tuning/jobs', job);
    expect(third.status).toBe(429);
    expect(third.body.error.code).toBe('quota_exceeded');
    expect(third.body.error.message).toMatch(/MAX_QUEUED_JOBS/);
    expect(await leftovers(p)).toEqual(before);
    await call(apiKey, 'POST', `/fine_tuning/jobs/${first.body.id}/cancel`);
    expect((await call(apiKey, 'POST', '/fine_tuning/jobs', job)).status).toBe(200);
  });

  it('refuses jobs larger than MAX_JOB_TOKENS, by steps or by epochs, in create and estimate', async () => {
    const { apiKey } = await p.newProject('size');
    const file = (await upload(apiKey, shakespeare(15_000))).body.id;
    const before = await leftovers(p);
    const bySteps = { model: 'gpt-nano', training_file: file, hyperparameters: { max_steps: 1_000_000, batch_size: 64 } };
    for (const path of ['/fine_tuning/jobs', '/fine_tuning/jobs/estimate']) {
      const r = await call(apiKey, 'POST', path, bySteps);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'job_too_large', param: 'hyperparameters.max_steps' });
    }
    const byEpochs = await call(apiKey, 'POST', '/fine_tuning/jobs', { model: 'gpt-nano', training_file: file, hyperparameters: { n_epochs: 100 } });
    expect(byEpochs.body.error).toMatchObject({ code: 'job_too_large', param: 'hyperparameters.n_epochs' });
    expect(await leftovers(p)).toEqual(before);
  });

  it('refuses prompts over MAX_PROMPT_CHARS and max_tokens over MAX_COMPLETION_TOKENS before they reach the queue', async () => {
    const { apiKey } = await p.newProject('prompts');
    const before = await leftovers(p);
    const long = await call(apiKey, 'POST', '/completions', { model: 'm', prompt: 'x'.repeat(101) });
    expect(long.status).toBe(400);
    expect(long.body.error).toMatchObject({ code: 'prompt_too_large', param: 'prompt' });
    const chat = await call(apiKey, 'POST', '/chat/completions', { model: 'm', messages: [{ role: 'user', content: 'y'.repeat(200) }] });
    expect(chat.body.error).toMatchObject({ code: 'prompt_too_large', param: 'messages' });
    const tokens = await call(apiKey, 'POST', '/completions', { model: 'm', prompt: 'hi', max_tokens: 51 });
    expect(tokens.body.error).toMatchObject({ code: 'invalid_request', param: 'max_tokens' });
    const embed = await call(apiKey, 'POST', '/embeddings', { model: 'm', input: ['z'.repeat(60), 'z'.repeat(60)] });
    expect(embed.body.error).toMatchObject({ code: 'prompt_too_large', param: 'input' });
    expect(await leftovers(p)).toEqual(before);
  });

  it('refuses an upload past MAX_STORAGE_BYTES, keeping nothing of it, and shows the usage', async () => {
    const { apiKey, projectId } = await p.newProject('storage');
    expect((await upload(apiKey, shakespeare(15_000))).status).toBe(200);
    const before = await leftovers(p);
    const over = await upload(apiKey, shakespeare(10_000));
    expect(over.status).toBe(429);
    expect(over.body.error).toMatchObject({ code: 'quota_exceeded', param: 'file' });
    expect(over.body.error.message).toMatch(/MAX_STORAGE_BYTES/);
    expect(await leftovers(p)).toEqual(before);
    const project = await call(apiKey, 'GET', `/projects/${projectId}`);
    expect((project.body.usage as { storage_bytes: number }).storage_bytes).toBe(Buffer.byteLength(shakespeare(15_000)));
    // an operator raises the project's quota: the next upload fits
    await projectsTool('limits', projectId, 'max_storage_bytes=100000');
    expect((await upload(apiKey, shakespeare(10_000))).status).toBe(200);
  });
});

describe('Idempotency-Key', () => {
  it('replays a POST with the same key and body: same job, no second one; another body is refused', async () => {
    const { apiKey } = await p.newProject('idem');
    const file = (await upload(apiKey, shakespeare(3000))).body.id;
    const job = { model: 'gpt-nano', training_file: file, hyperparameters: { max_steps: 5 } };
    const headers = { 'idempotency-key': 'create-42' };
    const a = await call(apiKey, 'POST', '/fine_tuning/jobs', job, p.url, headers);
    expect(a.status).toBe(200);
    const before = await leftovers(p);
    // the replay may land on another API process
    const b = await call(apiKey, 'POST', '/fine_tuning/jobs', job, other.url, headers);
    expect(b.status).toBe(200);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    expect(b.body).toEqual(a.body);
    expect(await leftovers(p)).toEqual(before);
    const c = await call(apiKey, 'POST', '/fine_tuning/jobs', { ...job, seed: 7 }, p.url, headers);
    expect(c.status).toBe(422);
    expect(c.body.error).toMatchObject({ code: 'idempotency_key_reused', param: 'idempotency-key' });
    // a 4xx is kept too: the same bad request gets the same answer
    const bad = { model: 'gpt-nano', training_file: 'file-missing' };
    const d1 = await call(apiKey, 'POST', '/fine_tuning/jobs', bad, p.url, { 'idempotency-key': 'bad-1' });
    const d2 = await call(apiKey, 'POST', '/fine_tuning/jobs', bad, p.url, { 'idempotency-key': 'bad-1' });
    expect([d1.status, d2.status]).toEqual([404, 404]);
    expect(d2.headers.get('idempotent-replayed')).toBe('true');
  });

  it('replays an upload, and keys are scoped to the project', async () => {
    const one = await p.newProject('idem-upload-1');
    const two = await p.newProject('idem-upload-2');
    const send = async (key: string) => {
      const form = new FormData();
      form.append('purpose', 'fine-tune');
      form.append('file', new Blob(['hello world\n']), 'h.txt');
      const res = await fetch(`${p.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'idempotency-key': 'up-1' }, body: form });
      return (await res.json()) as { id: string };
    };
    const a = await send(one.apiKey);
    const b = await send(one.apiKey);
    const c = await send(two.apiKey);
    expect(b.id).toBe(a.id);
    expect(c.id).not.toBe(a.id);
    expect(Number((await p.sql<{ n: string }>('SELECT count(*) AS n FROM files WHERE project_id = $1', [one.projectId]))[0]?.n)).toBe(1);
  });

  it('refuses a malformed key', async () => {
    const r = await call(p.apiKey, 'POST', '/fine_tuning/jobs', {}, p.url, { 'idempotency-key': 'x'.repeat(300) });
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe('idempotency-key');
  });
});

describe('metrics', () => {
  it('serves Prometheus metrics: requests per route, latencies, rate-limit hits, queue depth and jobs', async () => {
    await call(p.apiKey, 'GET', '/files');
    const text = await (await fetch(`${p.url}/metrics`)).text();
    expect(text).toMatch(/^crucible_http_requests_total\{method="GET",route="\/v1\/files",status="200"\} \d+/m);
    expect(text).toMatch(/^crucible_http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/v1\/files"\} \d+/m);
    expect(text).toMatch(/^crucible_rate_limited_total \d+/m);
    expect(text).toMatch(/^crucible_queue_jobs\{queue="training",state="waiting"\} \d+/m);
    expect(text).toMatch(/^crucible_jobs\{status="queued"\} [1-9]\d*/m);
    expect(text).toMatch(/^crucible_job_duration_seconds_count \d+/m);
    expect(text).toMatch(/^crucible_training_tokens_per_second \d+/m);
    // a refused request is counted too (in the other process's registry, the 429 above counted there or here)
    expect(text).not.toMatch(/ftjob-|file-[A-Za-z0-9]{24}/);
  });
});
