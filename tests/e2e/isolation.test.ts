// Tenant isolation, table-driven over the routes the app registered: every route with a path
// parameter is called with another project's ids (every verb, every kind of id) and must answer
// 404 with Crucible's error body; ids in bodies and query strings too; lists never show the
// other project's resources; and the other project's resources are unchanged afterwards. A new
// route is picked up here by itself, and fails until tests/support/routes.ts knows its kind of id.
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shakespeare } from '../support/data';
import { isErrorBody } from '../support/leftovers';
import { eventually, startPlatform, type TestPlatform, waitForJobStatus } from '../support/platform';
import { BODY_REFERENCES, exampleBody, exampleQuery, fillPath, hasParams, NO_REFERENCES, QUERY_REFERENCES, type Resources, v1Routes } from '../support/routes';

let p: TestPlatform;

/** One project with one of every kind of resource. */
async function populate(name: string, apiKey: string, projectId: string): Promise<Resources> {
  const client = new OpenAI({ apiKey, baseURL: `${p.url}/v1`, maxRetries: 0 });
  const call = async (method: string, path: string, body?: unknown) =>
    (await (
      await fetch(`${p.url}/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    ).json()) as Record<string, unknown>;
  const file = (await client.files.create({ file: await toFile(Buffer.from(shakespeare(4000)), `${name}.txt`), purpose: 'fine-tune' })).id;
  const job = await client.fineTuning.jobs.create({
    model: 'gpt-nano',
    training_file: file,
    method: { type: 'pretrain' as never, pretrain: { hyperparameters: { max_steps: 3, batch_size: 2, block_size: 16, eval_interval: 3 } } } as never,
  });
  const model = (await waitForJobStatus(client, job.id)).fine_tuned_model as string;
  const evaluation = (await call('POST', '/evaluations', { model, file, max_examples: 1 })).id as string;
  // settled, so that nothing of it changes while the other project probes it
  await eventually(async () => ((await call('GET', `/evaluations/${evaluation}`)).status === 'succeeded' ? true : undefined), 60_000);
  const webhook = (await call('POST', '/webhook_endpoints', { name, url: 'http://127.0.0.1:9/x', event_types: ['fine_tuning.job.failed'] })).id as string;
  const keyId = (await call('POST', `/projects/${projectId}/api_keys`, { name: 'extra', scopes: ['read'] })).id as string;
  return { projectId, apiKey, keyId, file, job: job.id, model, evaluation, webhook };
}

let a: Resources;
let b: Resources;

beforeAll(async () => {
  p = await startPlatform();
  a = await populate('a', p.apiKey, p.projectId);
  const other = await p.newProject('b');
  b = await populate('b', other.apiKey, other.projectId);
});
afterAll(async () => {
  await p?.close();
});

async function send(key: string, method: string, path: string, body?: unknown) {
  const multipart = body === 'multipart';
  const res = await fetch(`${p.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined && !multipart ? { 'content-type': 'application/json' } : {}) },
    body: multipart ? new FormData() : body !== undefined ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  return { status: res.status, text, body: text.startsWith('{') ? (JSON.parse(text) as unknown) : text };
}

/** What project B has, read with B's key: must be the same after A has tried everything. */
async function snapshot(r: Resources) {
  const get = async (path: string) => (await send(r.apiKey, 'GET', `/v1${path}`)).body;
  return {
    file: await get(`/files/${r.file}`),
    job: await get(`/fine_tuning/jobs/${r.job}`),
    model: await get(`/models/${encodeURIComponent(r.model)}`),
    evaluation: await get(`/evaluations/${r.evaluation}`),
    webhook: await get(`/webhook_endpoints/${r.webhook}`),
    keys: ((await get(`/projects/${r.projectId}/api_keys`)) as { data: Array<{ id: string; revoked_at: unknown }> }).data.map((k) => [k.id, k.revoked_at]),
  };
}

describe('tenant isolation over the route table', () => {
  it('answers 404 to every route called with another project’s ids, and leaves that project as it was', async () => {
    const routes = v1Routes(p);
    expect(routes.length).toBeGreaterThan(40);
    const before = await snapshot(b);
    const failures: string[] = [];
    let checked = 0;
    for (const route of routes.filter(hasParams)) {
      const path = fillPath(route, b) + exampleQuery(route);
      const body = route.method === 'POST' ? exampleBody(route, a) : undefined;
      const r = await send(a.apiKey, route.method, path, body);
      checked++;
      if (r.status !== 404 || !isErrorBody(r.body)) failures.push(`${route.method} ${route.url} -> ${r.status} ${r.text.slice(0, 200)}`);
    }
    // A's own project with B's key id
    const keyRoute = await send(a.apiKey, 'GET', `/v1/projects/${a.projectId}/api_keys/${b.keyId}`);
    if (keyRoute.status !== 404) failures.push(`A's project, B's key -> ${keyRoute.status}`);
    const revoke = await send(a.apiKey, 'DELETE', `/v1/projects/${a.projectId}/api_keys/${b.keyId}`);
    if (revoke.status !== 404) failures.push(`revoke B's key through A's project -> ${revoke.status}`);
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThan(30);
    expect(await snapshot(b)).toEqual(before);
    // B's key still works
    expect((await send(b.apiKey, 'GET', '/v1/files')).status).toBe(200);
  });

  it('answers 404 to ids of another project in request bodies and query strings', async () => {
    const failures: string[] = [];
    for (const route of v1Routes(p).filter((r) => !hasParams(r))) {
      const key = `${route.method} ${route.url}`;
      if (route.method === 'POST') {
        if (NO_REFERENCES.has(key)) continue;
        const make = BODY_REFERENCES[key];
        if (!make) {
          failures.push(`${key}: not in BODY_REFERENCES or NO_REFERENCES (tests/support/routes.ts)`);
          continue;
        }
        const r = await send(a.apiKey, 'POST', route.url, make(b, a));
        if (r.status !== 404 || !isErrorBody(r.body)) failures.push(`${key} with B's ids -> ${r.status} ${r.text.slice(0, 200)}`);
      } else if (route.method === 'GET') {
        const make = QUERY_REFERENCES[key];
        if (!make) {
          failures.push(`${key}: not in QUERY_REFERENCES (tests/support/routes.ts)`);
          continue;
        }
        const query = make(b);
        if (Object.keys(query).length === 0) continue;
        const r = await send(a.apiKey, 'GET', `${route.url}?${new URLSearchParams(query)}`);
        if (r.status !== 404 || !isErrorBody(r.body)) failures.push(`${key}?${new URLSearchParams(query)} -> ${r.status} ${r.text.slice(0, 200)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('never lists another project’s resources', async () => {
    const theirs = [b.file, b.job, b.model, b.evaluation, b.webhook, b.keyId, b.projectId];
    const ours = [a.file, a.job, a.model, a.evaluation, a.webhook];
    const lists = [
      ...v1Routes(p)
        .filter((r) => r.method === 'GET' && !hasParams(r) && r.url !== '/v1/evaluations/comparison')
        .map((r) => r.url),
      `/v1/projects/${a.projectId}/api_keys`,
      `/v1/fine_tuning/jobs/${a.job}/events`,
      `/v1/fine_tuning/jobs/${a.job}/checkpoints`,
      `/v1/evaluations/comparison?file=${a.file}`,
    ];
    let seenOurs = 0;
    for (const url of lists) {
      const r = await send(a.apiKey, 'GET', url);
      expect(r.status, url).toBe(200);
      for (const id of theirs) expect(r.text.includes(id), `${url} shows ${id}`).toBe(false);
      seenOurs += ours.filter((id) => r.text.includes(id)).length;
    }
    // the lists are not simply empty: A's own resources show up
    expect(seenOurs).toBeGreaterThanOrEqual(ours.length);
  });
});
