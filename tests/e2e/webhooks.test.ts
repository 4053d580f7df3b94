// Webhooks: endpoints managed through the official openai client, events written by the database
// when jobs and evaluations end, signatures verified by the openai client's own verifier and by an
// HMAC computed here, bodies checked against the published openapi.json, retries with backoff
// after receiver failures, the delivery log; and the
// per-project concurrent-jobs limit, seen from the jobs' statuses while they train.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { resolve } from 'node:path';
import Ajv from 'ajv';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shakespeare } from '../support/data';
import { eventually, startPlatform, type TestPlatform, waitForJobStatus } from '../support/platform';

interface Received {
  at: number;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A receiver: records every POST and answers with `plan[path]`'s next status (then 200). */
class Receiver {
  readonly received: Received[] = [];
  readonly plan = new Map<string, number[]>();
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const path = req.url ?? '/';
        this.received.push({ at: Date.now(), path, headers: req.headers, body });
        res.statusCode = this.plan.get(path)?.shift() ?? 200;
        res.end('ok');
      });
    });
    this.server = server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  }

  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    await new Promise((r) => this.server?.close(r));
  }
}

/** Standard Webhooks, computed here from the spec: base64 HMAC-SHA256 of `id.timestamp.body` with the secret's base64 bytes. */
function expectedSignature(secret: string, r: Received): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return createHmac('sha256', key).update(`${r.headers['webhook-id']}.${r.headers['webhook-timestamp']}.${r.body}`).digest('base64');
}

let p: TestPlatform;
let client: OpenAI;
const receiver = new Receiver();
let file: string;

beforeAll(async () => {
  await receiver.start();
  p = await startPlatform({
    env: { WEBHOOK_RETRY_BASE_MS: '300', WEBHOOK_MAX_ATTEMPTS: '4', MAX_CONCURRENT_JOBS: '1', TRAINING_CONCURRENCY: '2', WEBHOOK_TIMEOUT_MS: '1500' },
  });
  client = p.openai();
  file = (await client.files.create({ file: await toFile(Buffer.from(shakespeare(20_000)), 'w.txt'), purpose: 'fine-tune' })).id;
});
afterAll(async () => {
  await p?.close();
  await receiver.close();
});

const shortJob = (steps: number) => ({
  model: 'gpt-nano',
  training_file: file,
  method: { type: 'pretrain' as const, pretrain: { hyperparameters: { max_steps: steps, batch_size: 4, block_size: 32, eval_interval: steps } } },
});

describe('webhooks', () => {
  it('signs a cancelled job’s event; the receiver’s two 500s are retried with backoff; the log shows it delivered', async () => {
    const endpoint = await client.webhooks.create({ name: 'cancellations', url: `${receiver.url}/cancel`, event_types: ['fine_tuning.job.cancelled'] });
    expect(endpoint.signing_secret).toMatch(/^whsec_/);
    expect((await client.webhooks.retrieve(endpoint.id)).signing_secret_hint).toBe(`${endpoint.signing_secret.slice(0, 10)}…`);
    receiver.plan.set('/cancel', [500, 500]);
    // no worker will start it (the worker is busy with nothing: cancel right away)
    const job = await client.fineTuning.jobs.create(shortJob(2000) as never);
    await client.fineTuning.jobs.cancel(job.id);
    const attempts = await eventually(async () => (receiver.at('/cancel').length >= 3 ? receiver.at('/cancel') : undefined), 30_000);
    const [first, second, third] = attempts as [Received, Received, Received];
    // one event: the same id on every attempt, signed each time
    expect(new Set(attempts.map((a) => a.headers['webhook-id'])).size).toBe(1);
    for (const a of attempts) {
      const event = (await client.webhooks.unwrap(a.body, a.headers as Record<string, string>, endpoint.signing_secret)) as unknown as {
        type: string;
        data: { id: string };
        id: string;
      };
      expect(event).toMatchObject({ object: 'event', type: 'fine_tuning.job.cancelled', data: { id: job.id } });
      expect(a.headers['webhook-signature']).toBe(`v1,${expectedSignature(endpoint.signing_secret, a)}`);
    }
    // the same bytes on every attempt, and the shape published in openapi.json (its webhooks section names it)
    expect(new Set(attempts.map((a) => a.body)).size).toBe(1);
    const doc = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../openapi.json'), 'utf8'));
    const schema = doc.webhooks['fine_tuning.job.cancelled'].post.requestBody.content['application/json'].schema;
    const check = new Ajv({ strict: false }).compile({ ...schema, components: doc.components });
    expect(check(JSON.parse(first.body)), JSON.stringify(check.errors)).toBe(true);
    expect(check({ ...JSON.parse(first.body), type: 'fine_tuning.job.paused' })).toBe(false);
    // the verifier can fail: a changed body or another secret is refused
    await expect(client.webhooks.unwrap(`${first.body} `, first.headers as Record<string, string>, endpoint.signing_secret)).rejects.toThrow();
    await expect(
      client.webhooks.unwrap(first.body, first.headers as Record<string, string>, `whsec_${Buffer.from('x'.repeat(32)).toString('base64')}`),
    ).rejects.toThrow();
    // backoff: the second wait is longer than the first (300 ms, then 600 ms, +-20 %)
    expect(second.at - first.at).toBeGreaterThanOrEqual(200);
    expect(third.at - second.at).toBeGreaterThan(second.at - first.at);
    const log = await eventually(async () => {
      const res = (await (await p.api(`/webhook_endpoints/${endpoint.id}/deliveries`)).json()) as {
        data: Array<{ status: string; attempts: number; last_status_code: number; event_type: string }>;
      };
      return res.data[0]?.status === 'delivered' ? res.data : undefined;
    }, 10_000);
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ status: 'delivered', attempts: 3, last_status_code: 200, event_type: 'fine_tuning.job.cancelled' });
  });

  it('marks a delivery failed after WEBHOOK_MAX_ATTEMPTS, with each error in the log', async () => {
    const endpoint = await client.webhooks.create({ name: 'down', url: `${receiver.url}/down`, event_types: ['fine_tuning.job.failed'] });
    receiver.plan.set('/down', [503, 503, 503, 503, 503]);
    // the database writes the event whoever fails the job: here, an operator's SQL
    const job = await client.fineTuning.jobs.create(shortJob(2000) as never);
    await p.sql(`UPDATE jobs SET status = 'failed', finished_at = now() WHERE id = $1`, [job.id]);
    const entry = await eventually(async () => {
      const res = (await (await p.api(`/webhook_endpoints/${endpoint.id}/deliveries`)).json()) as {
        data: Array<{ status: string; attempts: number; last_status_code: number; last_error: string; payload: { data: { id: string } } }>;
      };
      return res.data[0]?.status === 'failed' ? res.data[0] : undefined;
    }, 30_000);
    expect(entry).toMatchObject({ attempts: 4, last_status_code: 503, payload: { data: { id: job.id } } });
    expect(entry.last_error).toMatch(/503/);
    expect(receiver.at('/down')).toHaveLength(4);
  });

  it('rotates the secret (later deliveries use the new one) and sends a test event on request', async () => {
    const endpoint = await client.webhooks.create({ name: 'rotating', url: `${receiver.url}/rotate`, event_types: ['fine_tuning.job.cancelled'] });
    const rotated = await client.webhooks.rotateSecret(endpoint.id);
    expect(rotated.signing_secret).not.toBe(endpoint.signing_secret);
    const test = await client.webhooks.test(endpoint.id, { event_type: 'fine_tuning.job.cancelled' });
    expect(test).toMatchObject({ object: 'webhook_endpoint.test', status_code: 200, success: true });
    const sample = receiver.at('/rotate')[0] as Received;
    await client.webhooks.unwrap(sample.body, sample.headers as Record<string, string>, rotated.signing_secret);
    await expect(client.webhooks.unwrap(sample.body, sample.headers as Record<string, string>, endpoint.signing_secret)).rejects.toThrow();
    const listed = await client.webhooks.list();
    expect(listed.data.map((e) => e.id)).toContain(endpoint.id);
    expect(await client.webhooks.delete(endpoint.id)).toMatchObject({ id: endpoint.id, deleted: true });
  });

  it('the test event reports what the receiver answered; one that cannot be reached is a 422 saying no more than that', async () => {
    const endpoint = await client.webhooks.create({ name: 'statuses', url: `${receiver.url}/statuses`, event_types: ['fine_tuning.job.failed'] });
    receiver.plan.set('/statuses', [500, 401, 302]);
    for (const status of [500, 401, 302, 200]) {
      const r = await p.api(`/webhook_endpoints/${endpoint.id}/test`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ event_type: 'fine_tuning.job.failed' }),
      });
      expect(await r.json()).toMatchObject({ status_code: status, success: true, delivered: status === 200 });
    }
    // a closed port, and a receiver that never answers
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedUrl = `http://127.0.0.1:${(closed.address() as { port: number }).port}/x`;
    await new Promise((r) => closed.close(r));
    const silent = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}/x`;
    for (const url of [closedUrl, silentUrl]) {
      const e = await client.webhooks.create({ name: 'unreachable', url, event_types: ['fine_tuning.job.failed'] });
      const r = await p.api(`/webhook_endpoints/${e.id}/test`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ event_type: 'fine_tuning.job.failed' }),
      });
      expect(r.status).toBe(422);
      expect(((await r.json()) as { error: unknown }).error).toMatchObject({
        code: 'webhook_unreachable',
        message: 'the test event could not be delivered: unreachable',
        param: 'url',
      });
    }
    silent.closeAllConnections();
    await new Promise((r) => silent.close(r));
  });

  it('refuses a URL that is not http(s) and unknown event types', async () => {
    const bad = await p.api('/webhook_endpoints', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x', url: 'file:///etc/passwd', event_types: ['fine_tuning.job.failed'] }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe('url');
    const unknown = await p.api('/webhook_endpoints', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x', url: `${receiver.url}/x`, event_types: ['batch.completed'] }),
    });
    expect(unknown.status).toBe(400);
  });
});

describe('the webhook address policy (WEBHOOK_ALLOW_PRIVATE_NETWORKS unset)', () => {
  it('refuses loopback, private, link-local and metadata addresses at creation and update, connecting to none', async () => {
    const strict = await startPlatform({ worker: false, env: { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false' } });
    try {
      const create = (url: string) =>
        strict.api('/webhook_endpoints', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'x', url, event_types: ['fine_tuning.job.failed'] }),
        });
      const before = receiver.received.length;
      for (const url of [
        receiver.url, // loopback: the receiver is up, and must get nothing
        'http://10.1.2.3/x',
        'http://172.16.0.1/x',
        'http://192.168.1.1/x',
        'http://169.254.169.254/latest/meta-data/',
        'http://[::1]/x',
        'http://[fe80::1]/x',
        'http://[::ffff:127.0.0.1]/x',
        'http://0.0.0.0/x',
        'http://localhost/x',
      ]) {
        const r = await create(url);
        expect(r.status, url).toBe(400);
        const error = ((await r.json()) as { error: { param: string; message: string } }).error;
        expect(error.param).toBe('url');
        expect(error.message).toMatch(/loopback, private, link-local or reserved/);
      }
      expect(receiver.received.length).toBe(before);
    } finally {
      await strict.close();
    }
  });
});

describe('MAX_CONCURRENT_JOBS with real training', () => {
  it('trains one job at a time for the project (the other waits queued), both succeed and their events and the evaluation’s are delivered', async () => {
    const endpoint = await client.webhooks.create({
      name: 'done',
      url: `${receiver.url}/done`,
      // evaluation.* is Crucible's own event type (the openai client's types list OpenAI's)
      event_types: ['fine_tuning.job.succeeded', 'evaluation.succeeded' as never],
    });
    const a = await client.fineTuning.jobs.create(shortJob(30) as never);
    const b = await client.fineTuning.jobs.create(shortJob(30) as never);
    let most = 0;
    const seen = new Set<string>();
    await eventually(
      async () => {
        const rows = await p.sql<{ id: string; status: string }>('SELECT id, status FROM jobs WHERE id = ANY($1)', [[a.id, b.id]]);
        const working = rows.filter((r) => r.status === 'validating_files' || r.status === 'running');
        for (const r of working) seen.add(r.id);
        most = Math.max(most, working.length);
        if (rows.some((r) => r.status === 'failed')) throw new Error(`a job failed: ${JSON.stringify(rows)}`);
        return rows.every((r) => r.status === 'succeeded') ? true : undefined;
      },
      240_000,
      50,
    );
    expect(seen.size).toBe(2);
    expect(most).toBe(1);
    const model = (await waitForJobStatus(client, a.id)).fine_tuned_model as string;
    const evaluation = (await (
      await p.api('/evaluations', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, file, max_examples: 2 }) })
    ).json()) as { id: string };
    const types = await eventually(async () => {
      const got = receiver.at('/done').map((r) => JSON.parse(r.body) as { type: string; data: { id: string } });
      return got.length >= 3 ? got : undefined;
    }, 120_000);
    expect(types.map((t) => `${t.type} ${t.data.id}`).sort()).toEqual(
      [`evaluation.succeeded ${evaluation.id}`, `fine_tuning.job.succeeded ${a.id}`, `fine_tuning.job.succeeded ${b.id}`].sort(),
    );
    for (const r of receiver.at('/done')) await client.webhooks.unwrap(r.body, r.headers as Record<string, string>, endpoint.signing_secret);
  });
});
