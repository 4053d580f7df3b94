// Limits a hostile tenant used to get past, and secrets it could read back: storage reserved
// atomically (parallel uploads, prepares and model imports all count), the queued-job limit exact
// under concurrent creates, a client that waits Retry-After admitted, failed authentications
// limited per address, upload replays fingerprinted by content, and no secret kept at rest in the
// idempotency store.
import { createProjectWithKey, RateLimiter } from '@crucible/api';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shakespeare, tinyModelFolder } from '../support/data';
import { type ErrorBodyShape, leftovers } from '../support/leftovers';
import { startPlatform, type TestPlatform } from '../support/platform';

let p: TestPlatform;

beforeAll(async () => {
  p = await startPlatform({ worker: false, env: { MAX_STORAGE_BYTES: '1000000', MAX_QUEUED_JOBS: '2' } });
});
afterAll(async () => {
  await p?.close();
});

async function call(key: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${p.url}/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as ErrorBodyShape & Record<string, unknown> };
}

async function upload(key: string, bytes: Buffer | string, headers: Record<string, string> = {}) {
  const form = new FormData();
  form.append('purpose', 'fine-tune');
  form.append('file', new Blob([bytes]), 'a.txt');
  const res = await fetch(`${p.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${key}`, ...headers }, body: form });
  return { status: res.status, body: (await res.json()) as ErrorBodyShape & { id: string; bytes: number } };
}

const storageUsed = async (projectId: string) =>
  Number((await p.sql<{ n: string }>('SELECT (SELECT coalesce(sum(bytes), 0) FROM files WHERE project_id = $1) AS n', [projectId]))[0]?.n);

describe('storage (MAX_STORAGE_BYTES 1,000,000)', () => {
  it('lets no more parallel uploads through than fit: 8 of 400 KB at once, 2 pass', async () => {
    const { apiKey, projectId } = await p.newProject('parallel');
    const text = `${shakespeare(400_000)}`;
    const results = await Promise.all(Array.from({ length: 8 }, () => upload(apiKey, text)));
    const ok = results.filter((r) => r.status === 200);
    expect(ok.length).toBe(2);
    for (const r of results.filter((x) => x.status !== 200)) {
      expect(r.status).toBe(429);
      expect(r.body.error.code).toBe('quota_exceeded');
    }
    expect(await storageUsed(projectId)).toBeLessThanOrEqual(1_000_000);
    expect(Number((await p.sql<{ n: string }>("SELECT count(*) AS n FROM files WHERE project_id = $1 AND state = 'uploading'", [projectId]))[0]?.n)).toBe(0);
  });

  it('counts a prepared file from its start, and a model import', async () => {
    const { apiKey, projectId } = await p.newProject('prepares');
    const first = await upload(apiKey, shakespeare(400_000));
    expect(first.status).toBe(200);
    // the prepared copy holds its source's size while it is made: room for one, not two
    const prep = () => call(apiKey, 'POST', `/files/${first.body.id}/prepare`, {});
    expect((await prep()).status).toBe(200);
    const second = await prep();
    expect(second.status).toBe(429);
    expect(second.body.error).toMatchObject({ code: 'quota_exceeded', param: 'file_id' });

    // imports count: the project's usage grows by the model's bytes
    const before = ((await call(apiKey, 'GET', `/projects/${projectId}`)).body.usage as { storage_bytes: number }).storage_bytes;
    const form = new FormData();
    const folder = tinyModelFolder();
    for (const name of ['config.json', 'tokenizer.json', 'model.safetensors']) form.append('file', new Blob([folder[name] as Buffer]), name);
    const imported = await fetch(`${p.url}/v1/models`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}` }, body: form });
    expect(imported.status).toBe(200);
    const after = ((await call(apiKey, 'GET', `/projects/${projectId}`)).body.usage as { storage_bytes: number }).storage_bytes;
    expect(after - before).toBeGreaterThanOrEqual((folder['model.safetensors'] as Buffer).length);
    expect(Number((await p.sql<{ n: string }>('SELECT count(*) AS n FROM storage_reservations WHERE project_id = $1', [projectId]))[0]?.n)).toBe(0);
  });

  it('refuses an import whose declared size does not fit, before reading it, leaving nothing', async () => {
    const { apiKey } = await p.newProject('big-import');
    const before = await leftovers(p);
    const form = new FormData();
    form.append('file', new Blob([Buffer.alloc(1_200_000)]), 'model.safetensors');
    const r = await fetch(`${p.url}/v1/models`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}` }, body: form });
    expect(r.status).toBe(429);
    expect(((await r.json()) as ErrorBodyShape).error.code).toBe('quota_exceeded');
    expect(await leftovers(p)).toEqual(before);
  });
});

describe('queued jobs (MAX_QUEUED_JOBS 2)', () => {
  it('admits exactly 2 of 12 concurrent creates', async () => {
    const { apiKey, projectId } = await p.newProject('queued');
    const file = (await upload(apiKey, shakespeare(3000))).body.id;
    const job = { model: 'gpt-nano', training_file: file, hyperparameters: { max_steps: 5 } };
    const results = await Promise.all(Array.from({ length: 12 }, () => call(apiKey, 'POST', '/fine_tuning/jobs', job)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(2);
    expect(results.filter((r) => r.status === 429 && r.body.error.code === 'quota_exceeded')).toHaveLength(10);
    expect(Number((await p.sql<{ n: string }>("SELECT count(*) AS n FROM jobs WHERE project_id = $1 AND status = 'queued'", [projectId]))[0]?.n)).toBe(2);
  });
});

describe('Retry-After', () => {
  it('admits a client that waits it, however many refused requests it sent meanwhile (real Redis, a clock of the test’s)', async () => {
    const redis = new Redis(p.env.REDIS_URL as string);
    try {
      const limiter = new RateLimiter(redis, `${p.env.QUEUE_PREFIX}-rl-test`);
      const key = `k${Date.now()}`;
      const t0 = Math.floor(Date.now() / 60_000) * 60_000 + 20_000; // 20 s into a window
      for (let i = 0; i < 3; i++) expect((await limiter.take(key, 3, t0 + i)).allowed).toBe(true);
      const refused = await limiter.take(key, 3, t0 + 10);
      expect(refused.allowed).toBe(false);
      // hammering while it waits takes nothing
      for (let s = 1; s < refused.retryAfter; s += 3) expect((await limiter.take(key, 3, t0 + 10 + s * 1000)).allowed).toBe(false);
      expect((await limiter.take(key, 3, t0 + 10 + refused.retryAfter * 1000)).allowed).toBe(true);
    } finally {
      redis.disconnect();
    }
  });
});

describe('Idempotency-Key and secrets', () => {
  it('fingerprints an upload by its content: same size, other bytes is a 422; the same bytes replay', async () => {
    const { apiKey } = await p.newProject('idem-content');
    const a = await upload(apiKey, 'hello world\n', { 'idempotency-key': 'same-size' });
    expect(a.status).toBe(200);
    const other = await upload(apiKey, 'HELLO WORLD\n', { 'idempotency-key': 'same-size' });
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe('idempotency_key_reused');
    const again = await upload(apiKey, 'hello world\n', { 'idempotency-key': 'same-size' });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(a.body.id);
  });

  it('keeps no secret in Redis: a replay of a key, project or webhook creation withholds it, and says so', async () => {
    const ops = await createProjectWithKey(p.deps.store, 'ops', ['read', 'write', 'admin', 'operator']);
    const secrets: string[] = [];
    const twice = async (path: string, body: unknown, field: (b: Record<string, unknown>) => unknown) => {
      const headers = { 'idempotency-key': `secret-${path}` };
      const first = await call(ops.secret, 'POST', path, body, headers);
      expect(first.status).toBe(200);
      const secret = field(first.body);
      expect(typeof secret).toBe('string');
      secrets.push(secret as string);
      const replay = await call(ops.secret, 'POST', path, body, headers);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(JSON.stringify(replay.body)).not.toContain(secret as string);
      expect(replay.body.secrets_withheld).toMatch(/shown only in the first answer/);
      expect(replay.body.id).toBe(first.body.id);
      return first.body;
    };
    const key = await twice(`/projects/${ops.projectId}/api_keys`, { name: 'k' }, (b) => b.secret);
    await twice('/projects', { name: 'p2' }, (b) => (b.api_key as { secret: string }).secret);
    const hook = await twice(
      '/webhook_endpoints',
      { name: 'w', url: 'http://127.0.0.1:9/x', event_types: ['fine_tuning.job.failed'] },
      (b) => b.signing_secret,
    );
    await twice(`/webhook_endpoints/${hook.id}/rotate_secret`, {}, (b) => b.signing_secret);
    // revocation wins: the replay after it still holds no secret
    await call(ops.secret, 'DELETE', `/projects/${ops.projectId}/api_keys/${key.id}`);
    const late = await call(
      ops.secret,
      'POST',
      `/projects/${ops.projectId}/api_keys`,
      { name: 'k' },
      { 'idempotency-key': `secret-/projects/${ops.projectId}/api_keys` },
    );
    expect(JSON.stringify(late.body)).not.toContain(secrets[0] as string);
    // and nothing under the idempotency prefix holds any of them
    const redis = new Redis(p.env.REDIS_URL as string);
    try {
      const keys = await redis.keys(`${p.env.QUEUE_PREFIX}:idem:*`);
      expect(keys.length).toBeGreaterThanOrEqual(4);
      const stored = (await Promise.all(keys.map((k) => redis.get(k)))).join('\n');
      for (const s of secrets) expect(stored).not.toContain(s);
    } finally {
      redis.disconnect();
    }
  });
});

describe('failed authentications (AUTH_FAILURES_PER_MINUTE 5)', () => {
  it('are limited per client address with 429 and Retry-After', async () => {
    const q = await startPlatform({ worker: false, env: { AUTH_FAILURES_PER_MINUTE: '5' } });
    try {
      const attempt = () => fetch(`${q.url}/v1/files`, { headers: { authorization: `Bearer sk-crucible-made-up-${Math.random()}` } });
      for (let i = 0; i < 5; i++) expect((await attempt()).status).toBe(401);
      const limited = await attempt();
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await limited.json()) as ErrorBodyShape).error).toMatchObject({
        code: 'rate_limited',
        message: expect.stringMatching(/failed authentications from this address/),
      });
    } finally {
      await q.close();
    }
  });
});
