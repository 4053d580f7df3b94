// Property-based fuzzing (fast-check) of every route's body, query and path, and of dataset
// files: the answer is always a 2xx, or a 4xx in Crucible's error shape, never a 5xx or a hang;
// and a rejected request leaves no record, object or queue entry behind. FUZZ_RUNS sets the
// number of requests per route (default 12), FUZZ_SEED replays a failing run.
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shakespeare, tinyModelFolder, ustar } from '../support/data';
import { isErrorBody, leftovers } from '../support/leftovers';
import { eventually, startPlatform, type TestPlatform, waitForJobStatus } from '../support/platform';
import { exampleBody, exampleQuery, fillPath, hasParams, type Resources, type Route, v1Routes } from '../support/routes';

const RUNS = Number(process.env.FUZZ_RUNS ?? 12);
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const REQUEST_TIMEOUT_MS = 30_000;

let p: TestPlatform;
let own: Resources;

beforeAll(async () => {
  // small limits keep whatever the fuzzer manages to create cheap
  p = await startPlatform({ env: { MAX_COMPLETION_TOKENS: '8', MAX_JOB_TOKENS: '20000', MAX_QUEUED_JOBS: '1000', MAX_PROMPT_CHARS: '4000' } });
  const client = p.openai();
  const file = (await client.files.create({ file: await toFile(Buffer.from(shakespeare(4000)), 'fuzz.txt'), purpose: 'fine-tune' })).id;
  const job = await client.fineTuning.jobs.create({
    model: 'gpt-nano',
    training_file: file,
    method: { type: 'pretrain', pretrain: { hyperparameters: { max_steps: 3, batch_size: 2, block_size: 16, eval_interval: 3 } } } as never,
  });
  const model = (await waitForJobStatus(client, job.id)).fine_tuned_model as string;
  const post = async (path: string, body: unknown) =>
    (await (await p.api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json()) as { id: string };
  const evaluation = (await post('/evaluations', { model, file, max_examples: 1 })).id;
  const webhook = (await post('/webhook_endpoints', { name: 'f', url: 'http://127.0.0.1:9/f', event_types: ['fine_tuning.job.failed'] })).id;
  const keyId = (await post(`/projects/${p.projectId}/api_keys`, { name: 'fuzz', scopes: ['read'] })).id;
  own = { projectId: p.projectId, apiKey: p.apiKey, keyId, file, job: job.id, model, evaluation, webhook };
  await settle();
}, 300_000);
afterAll(async () => {
  await p?.close();
});

/** Waits until background work (validation, training, evaluation, inference) has stopped changing anything. */
async function settle(): Promise<void> {
  let last = '';
  await eventually(
    async () => {
      const busy = (await p.sql<{ n: string }>(`SELECT count(*) AS n FROM files WHERE state IN ('uploading', 'pending')`))[0]?.n !== '0';
      const active =
        (await p.deps.trainingQueue.getActiveCount()) + (await p.deps.evaluationQueue.getActiveCount()) + (await p.deps.inferenceQueue.getActiveCount());
      const now = JSON.stringify(await leftovers(p));
      const quiet = !busy && active === 0 && now === last;
      last = now;
      return quiet ? true : undefined;
    },
    120_000,
    300,
  );
}

/** Percent-encodes bytes one by one (so invalid UTF-8, NUL and slashes reach the server as sent). */
const encodeBytes = (bytes: Uint8Array) => [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

/** Strings that have broken things before: NUL, lone surrogates, very long, control characters, unicode. */
const nasty = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('\u0000', 'a\u0000b', '\ud800', 'x\udc00', '\u202e', '日本', '', ' ', '../../etc/passwd', 'ftjob-', 'null'),
  fc.string({ minLength: 300, maxLength: 5000 }),
);

const weird = fc.oneof(nasty, fc.jsonValue({ maxDepth: 3 }), fc.constantFrom(0, -1, 1e308, -0, 2 ** 53, 0.5, null, true, [], {}), fc.double(), fc.integer());

/** A valid example body with one field replaced, removed or added, or something else altogether. */
function bodyArbitrary(example: unknown): fc.Arbitrary<unknown> {
  const options: fc.Arbitrary<unknown>[] = [fc.jsonValue({ maxDepth: 4 }), weird];
  if (example && typeof example === 'object' && !Array.isArray(example)) {
    const obj = example as Record<string, unknown>;
    const keys = Object.keys(obj);
    if (keys.length) {
      options.push(fc.tuple(fc.constantFrom(...keys), weird).map(([k, v]) => ({ ...obj, [k]: v })));
      options.push(fc.constantFrom(...keys).map((k) => Object.fromEntries(Object.entries(obj).filter(([key]) => key !== k))));
      options.push(fc.constant(obj));
    }
    options.push(fc.tuple(nasty, weird).map(([k, v]) => ({ ...obj, [k]: v })));
  }
  return fc.oneof(...options);
}

const pathArbitrary = (route: Route) =>
  fc.oneof(
    fc.constant(fillPath(route, own)),
    fc.uint8Array({ maxLength: 60 }).map((bytes) => route.url.replace(/:\w+/g, () => encodeBytes(bytes) || 'x')),
    nasty.map((s) => route.url.replace(/:\w+/g, () => encodeBytes(Buffer.from(s.replace(/[\ud800-\udfff]/g, '\ufffd'))) || 'x')),
  );

const QUERY_KEYS = ['after', 'limit', 'stream', 'purpose', 'model', 'models', 'records', 'max_points', 'file', 'variant', 'x'];
const queryArbitrary = () =>
  fc.dictionary(
    fc.constantFrom(...QUERY_KEYS),
    fc.oneof(nasty, fc.integer().map(String), fc.constantFrom('true', 'false', '0', '-1', '1e9', own.job, own.file)),
    {
      maxKeys: 3,
    },
  );

interface Answer {
  status: number;
  text: string;
}

async function send(method: string, path: string, body: unknown, contentType = 'application/json'): Promise<Answer> {
  const res = await fetch(`${p.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${p.apiKey}`, ...(body !== undefined ? { 'content-type': contentType } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' || body instanceof FormData || body instanceof Uint8Array ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  // a stream (SSE) is read to its end: it must end too
  return { status: res.status, text: await res.text() };
}

/** The property: 2xx, or 4xx with Crucible's error body; a rejected change leaves everything as it was. */
async function check(method: string, path: string, body: unknown, contentType?: string): Promise<void> {
  const before = method === 'GET' ? undefined : await leftovers(p);
  const r = await send(method, path, body, contentType);
  const where = `${method} ${path.slice(0, 200)} ${JSON.stringify(body)?.slice(0, 300)}`;
  expect(r.status, `${where} -> ${r.status} ${r.text.slice(0, 300)}`).toBeLessThan(500);
  if (r.status >= 400) {
    expect(isErrorBody(JSON.parse(r.text)), `${where}: error body ${r.text.slice(0, 300)}`).toBe(true);
    if (before) expect(await leftovers(p), `${where} left something behind`).toEqual(before);
  } else if (method !== 'GET') {
    await cleanUp(r.text);
  }
}

/** What an accepted request started is stopped (a job or an evaluation), and background work settles. */
async function cleanUp(text: string): Promise<void> {
  const id = (JSON.parse(text) as { id?: string }).id ?? '';
  if (id.startsWith('ftjob-') && id !== own.job) await send('POST', `/v1/fine_tuning/jobs/${id}/cancel`, undefined);
  if (id.startsWith('eval-') && id !== own.evaluation) await send('POST', `/v1/evaluations/${id}/cancel`, undefined);
  await settle();
}

describe('fuzzing every route', () => {
  it('covers the whole route table', () => {
    const routes = v1Routes(p);
    expect(routes.length).toBeGreaterThan(40);
    // every POST route has an example body to mutate (throws for one without)
    for (const r of routes) if (r.method === 'POST') exampleBody(r, own);
  });

  it.each(['GET', 'POST', 'DELETE'])(
    '%s routes: path, query and body',
    async (method) => {
      const routes = v1Routes(p).filter((r) => r.method === method);
      for (const route of routes) {
        const example = method === 'POST' ? exampleBody(route, own) : undefined;
        if (example === 'multipart') continue; // uploads are fuzzed below
        const path = hasParams(route) ? pathArbitrary(route) : fc.constant(route.url);
        await fc.assert(
          fc.asyncProperty(path, queryArbitrary(), method === 'POST' ? bodyArbitrary(example) : fc.constant(undefined), async (pth, query, body) => {
            const qs = new URLSearchParams(query).toString();
            await check(method, `${pth}${qs ? `?${qs}` : exampleQuery(route)}`, body);
          }),
          { numRuns: RUNS, seed: SEED, endOnFailure: true },
        );
      }
    },
    1_200_000,
  );

  it('raw bodies: broken JSON, wrong content types, nasty bytes', async () => {
    const routes = v1Routes(p).filter((r) => r.method === 'POST');
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 200 }),
          fc.constantFrom('{', '[]', '{"a":', 'null', '"x"', '{"model": "\\ud800"}'),
          // deep nesting, in arrays and objects, past the limit and near it
          fc.integer({ min: 60, max: 20_000 }).map((d) => `${'['.repeat(d)}${']'.repeat(d)}`),
          fc.integer({ min: 60, max: 5_000 }).map((d) => `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`),
          // invalid UTF-8 inside and outside strings
          fc
            .tuple(
              fc.uint8Array({ minLength: 1, maxLength: 4 }).map((b) => b.map((x) => x | 0x80)),
              fc.boolean(),
            )
            .map(([bad, inString]) =>
              Buffer.concat(
                inString ? [Buffer.from('{"model": "a'), Buffer.from(bad), Buffer.from('"}')] : [Buffer.from('{"model": '), Buffer.from(bad), Buffer.from('}')],
              ),
            ),
        ),
        fc.constantFrom(
          'application/json',
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=x',
          'application/json; charset=latin1',
        ),
        async (route, raw, contentType) =>
          check('POST', fillPath(route, own), raw, contentType).catch((err) => {
            // a header value the fetch client itself refuses is not the server's problem
            if (/Headers|ByteString/i.test(String(err))) return;
            throw err;
          }),
      ),
      { numRuns: RUNS * 10, seed: SEED, endOnFailure: true },
    );
  }, 600_000);
});

describe('fuzzing raw HTTP', () => {
  /** One raw request on its own connection: the answer's status and body, or null when the connection closed without one. */
  function rawRequest(bytes: Buffer): Promise<{ status: number; body: string } | null> {
    return new Promise((resolve) => {
      const socket = connect(Number(new URL(p.url).port), '127.0.0.1');
      const chunks: Buffer[] = [];
      const done = () => {
        socket.destroy();
        const text = Buffer.concat(chunks).toString('utf8');
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
        resolve(status ? { status, body: text.slice(text.indexOf('\r\n\r\n') + 4) } : null);
      };
      socket.on('data', (c) => {
        chunks.push(c);
        // the first answer is enough (keep-alive would wait for the next request)
        if (Buffer.concat(chunks).includes('\r\n\r\n')) setTimeout(done, 50);
      });
      socket.on('close', done);
      socket.on('error', done);
      setTimeout(done, 5000).unref();
      socket.on('connect', () => socket.write(bytes));
    });
  }
  const method = fc.constantFrom('GET', 'POST', 'DELETE', 'BREW', 'G\u0001T', '');
  const target = fc.oneof(
    fc.constantFrom('/v1/files', '/v1/models', '/health', '*', '/v1/fine_tuning/jobs?after=x'),
    fc.integer({ min: 1, max: 70_000 }).map((n) => `/v1/files?after=${'a'.repeat(n)}`),
  );
  const header = fc.oneof(
    fc.constantFrom(
      'Content-Length: 4',
      'Content-Length: -1',
      'Content-Length: 4, 5',
      'Transfer-Encoding: chunked',
      'Transfer-Encoding: gzip, chunked',
      'X-A: a\u0001b',
      'Host:',
      'Expect: 100-continue',
    ),
    fc.string({ unit: 'binary-ascii', maxLength: 40 }),
  );
  const ending = fc.constantFrom('\r\n', '\n', '\r');
  const body = fc.oneof(fc.constantFrom('', 'abcd', '0\r\n\r\n', 'zz\r\nabc\r\n0\r\n\r\n', '4\r\nabcd\r\n0\r\n\r\n'), fc.string({ maxLength: 100 }));

  it('answers every malformed request with a 4xx in Crucible’s shape (or a 2xx), never a 5xx or Node’s bare text', async () => {
    const seen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(method, target, fc.array(header, { maxLength: 4 }), ending, body, async (m, t, hs, eol, b) => {
        const text = `${m} ${t} HTTP/1.1${eol}Host: 127.0.0.1${eol}${hs.map((h) => `${h}${eol}`).join('')}${eol}${b}`;
        const r = await rawRequest(Buffer.from(text, 'latin1'));
        if (!r) return; // closed without an answer (e.g. waiting for a body that never came, then cut): allowed
        seen.add(r.status);
        expect(r.status, text.slice(0, 200)).toBeLessThan(500);
        if (r.status >= 400) expect(isErrorBody(JSON.parse(r.body)), `${text.slice(0, 200)} -> ${r.status} ${r.body.slice(0, 200)}`).toBe(true);
      }),
      { numRuns: RUNS * 8, seed: SEED, endOnFailure: true },
    );
    // the generator reaches the HTTP parser's refusals; well-formed raw requests reach the routes behind it
    expect(seen.has(400)).toBe(true);
    const routed = await rawRequest(Buffer.from('GET /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'));
    expect(routed?.status).toBe(401);
    expect(isErrorBody(JSON.parse(routed?.body ?? 'null'))).toBe(true);
  }, 600_000);

  it('answers every truncated or corrupted model archive with a 4xx, keeping nothing', async () => {
    const tarBytes = ustar(Object.entries(tinyModelFolder()));
    const gz = gzipSync(tarBytes);
    const archive = fc.oneof(
      fc.integer({ min: 0, max: gz.length - 1 }).map((n) => ['m.tar.gz', gz.subarray(0, n)] as const),
      fc.integer({ min: 0, max: tarBytes.length - 1 }).map((n) => ['m.tar', tarBytes.subarray(0, n)] as const),
      fc.tuple(fc.integer({ min: 0, max: tarBytes.length - 1 }), fc.integer({ min: 0, max: 255 })).map(([at, byte]) => {
        const t = Buffer.from(tarBytes);
        t[at] = byte;
        return ['m.tar', t] as const;
      }),
    );
    await fc.assert(
      fc.asyncProperty(archive, async ([name, bytes]) => {
        const form = new FormData();
        form.append('file', new Blob([bytes]), name);
        await check('POST', '/v1/models', form);
      }),
      { numRuns: RUNS * 3, seed: SEED, endOnFailure: true },
    );
  }, 600_000);
});

describe('fuzzing dataset files', () => {
  const line = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
    fc.record({ text: nasty }).map((v) => JSON.stringify(v)),
    fc.record({ prompt: nasty, completion: nasty }).map((v) => JSON.stringify(v)),
    fc
      .record({ messages: fc.array(fc.record({ role: fc.constantFrom('user', 'assistant', 'system', 'x'), content: weird }), { maxLength: 3 }) })
      .map((v) => JSON.stringify(v)),
    nasty,
  );
  const content = fc.oneof(
    fc.uint8Array({ maxLength: 3000 }),
    fc.array(line, { maxLength: 30 }).map((lines) => Buffer.from(lines.join('\n'))),
    fc.string({ unit: 'grapheme', maxLength: 3000 }).map((s) => Buffer.from(s)),
  );
  const filename = fc.oneof(
    fc.constantFrom('d.jsonl', 'd.txt', 'd', '.jsonl', '日本.jsonl'),
    nasty.map((s) => `${s}.jsonl`),
  );

  it('answers every upload with a 2xx or a 4xx, keeping nothing of a rejected one', async () => {
    await fc.assert(
      fc.asyncProperty(content, filename, fc.constantFrom('fine-tune', 'fine-tune', 'x'), async (bytes, name, purpose) => {
        const form = new FormData();
        form.append('purpose', purpose);
        form.append('file', new Blob([bytes]), name);
        await check('POST', '/v1/files', form);
      }),
      { numRuns: RUNS * 4, seed: SEED, endOnFailure: true },
    );
  }, 600_000);
});
