// The SDK's helpers against a running API: typed calls and errors, uploads (bytes, streams, paths)
// with progress, waiting for a job through its event stream, pagination, streamed completions and
// downloads.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Crucible, CrucibleApiError, type JobEvent, type JobProgress, unwrap } from '@crucible/sdk';
import { downloadModelToFile, uploadFileFromPath } from '@crucible/sdk/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shakespeare, untarGz } from '../support/data';
import { startPlatform, type TestPlatform } from '../support/platform';

let p: TestPlatform;
let crucible: Crucible;
let dir: string;

beforeAll(async () => {
  p = await startPlatform();
  crucible = new Crucible({ baseUrl: `${p.url}/v1`, apiKey: p.apiKey });
  dir = mkdtempSync(join(tmpdir(), 'crucible-sdk-'));
});
afterAll(async () => {
  await p?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const tiny = (file: string, steps: number) => ({
  model: 'gpt-nano',
  training_file: file,
  method: {
    type: 'pretrain' as const,
    pretrain: { hyperparameters: { max_steps: steps, block_size: 16, batch_size: 2, eval_batches: 1, eval_interval: 2, log_interval: 1 } },
  },
});

describe('@crucible/sdk', () => {
  it('uploads, creates a job, follows its events with progress and reads its metrics', async () => {
    const { data: models } = await crucible.api.GET('/models');
    expect(models?.data.map((m) => m.id)).toContain('gpt-nano');
    const file = await crucible.waitForFile((await crucible.uploadFile({ name: 'slice.txt', data: shakespeare(8000) })).id);
    expect(file).toMatchObject({ format: 'text', status: 'processed' });
    const job = await crucible.createJob(tiny(file.id, 4));
    const progress: JobProgress[] = [];
    const events: JobEvent[] = [];
    const done = await crucible.waitForJob(job.id, { onProgress: (x) => progress.push(x), onEvent: (e) => events.push(e) });
    expect(done.status).toBe('succeeded');
    expect(progress.filter((x) => x.trainLoss !== null).map((x) => [x.step, x.totalSteps, x.fraction])).toEqual([
      [1, 4, 0.25],
      [2, 4, 0.5],
      [2, 4, 0.5], // the evaluation at step 2
      [3, 4, 0.75],
      [4, 4, 1],
      [4, 4, 1],
    ]);
    expect(progress.at(-1)?.validLoss).toBeGreaterThan(0);
    // every event once, oldest first, as the list endpoint has them (newest first there)
    const listed = unwrap(await crucible.api.GET('/fine_tuning/jobs/{id}/events', { params: { path: { id: job.id }, query: { limit: 100 } } }));
    expect(events.map((e) => e.id)).toEqual(listed.data.map((e) => e.id).reverse());
    const metrics = await crucible.jobMetrics(done.id);
    expect(metrics.data.filter((d) => d.train_loss !== null).map((d) => d.step)).toEqual([1, 2, 3, 4]);
    // the stream of a finished job replays its events and ends
    const replay: string[] = [];
    for await (const e of crucible.jobEvents(job.id)) replay.push(e.id);
    expect(replay).toEqual(events.map((e) => e.id));

    // a completion, streamed chunk by chunk, is the same text as the whole one with the same seed
    const body = { model: done.fine_tuned_model as string, prompt: 'ROMEO:', max_tokens: 12, seed: 7, temperature: 0.9 };
    let streamed = '';
    const finishes: (string | null)[] = [];
    for await (const c of crucible.streamCompletion(body)) {
      streamed += c.choices[0]?.text ?? '';
      finishes.push(c.choices[0]?.finish_reason ?? null);
    }
    const whole = await crucible.createCompletion(body);
    expect(streamed).toBe(whole.choices[0]?.text);
    expect(finishes.at(-1)).toBe(whole.choices[0]?.finish_reason);
    expect(finishes.at(-1)).toMatch(/^(stop|length)$/);

    // the model downloaded to a file, written whole
    const bytes: number[] = [];
    const dest = join(dir, 'model.tar.gz');
    const r = await downloadModelToFile(crucible, done.fine_tuned_model as string, dest, { onProgress: (x) => bytes.push(x.loaded) });
    const archive = readFileSync(dest);
    expect(r.bytes).toBe(archive.length);
    expect(bytes.at(-1)).toBe(archive.length);
    expect([...untarGz(archive).keys()].some((n) => n.endsWith('config.json'))).toBe(true);
  });

  it('uploads from a stream and from a path with progress, and lists page after page', async () => {
    const text = shakespeare(200_000);
    const seen: { loaded: number; total: number | null }[] = [];
    const bytes = new TextEncoder().encode(text);
    let at = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (at >= bytes.length) return c.close();
        c.enqueue(bytes.subarray(at, at + 16_384));
        at += 16_384;
      },
    });
    const a = await crucible.uploadFile({ name: 'streamed.txt', data: stream, size: text.length }, { purpose: 'pretrain', onProgress: (x) => seen.push(x) });
    expect(a).toMatchObject({ filename: 'streamed.txt', bytes: text.length, purpose: 'pretrain' });
    expect(seen.length).toBeGreaterThan(2);
    expect(seen.at(-1)).toEqual({ loaded: text.length, total: text.length });
    expect(seen.map((x) => x.loaded)).toEqual([...seen.map((x) => x.loaded)].sort((x, y) => x - y));
    const path = join(dir, 'from-path.txt');
    writeFileSync(path, text.slice(0, 5000));
    const b = await uploadFileFromPath(crucible, path, { purpose: 'pretrain' });
    expect(b).toMatchObject({ filename: 'from-path.txt', bytes: 5000 });
    const c = await crucible.uploadFile({ name: 'bytes.txt', data: new TextEncoder().encode('hello there\n') });
    // the same content through the API reads back byte for byte
    const back = await (await crucible.request(`/files/${a.id}/content`)).text();
    expect(back).toBe(text);
    const ids: string[] = [];
    for await (const f of crucible.paginate<{ id: string }>('/files', {}, 2)) ids.push(f.id);
    expect(ids).toEqual(expect.arrayContaining([a.id, b.id, c.id]));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('throws typed errors with the HTTP status and the API code', async () => {
    const missing = await crucible.waitForJob('ftjob-missing').catch((e) => e);
    expect(missing).toBeInstanceOf(CrucibleApiError);
    expect(missing).toMatchObject({ status: 404, code: 'job_not_found' });
    const stranger = new Crucible({ baseUrl: `${p.url}/v1`, apiKey: 'ck-not-a-key' });
    const denied = await stranger.waitForFile('file-x').catch((e) => e);
    expect(denied).toMatchObject({ status: 401, code: 'unauthorized', param: 'authorization' });
    const bad = await crucible
      .createJob({ ...tiny('file-missing', 1), method: { type: 'pretrain', pretrain: { hyperparameters: { max_steps: 0 } } } })
      .catch((e) => e);
    expect(bad).toMatchObject({ status: 400, code: 'invalid_hyperparameters', param: 'method.pretrain.hyperparameters.max_steps' });
    const binary = await crucible.uploadFile({ name: 'bad.bin', data: new Uint8Array([0x41, 0, 0x42]) }).catch((e) => e);
    expect(binary).toMatchObject({ status: 400, code: 'invalid_file', param: 'file' });
    // the typed client answers { error, response } and unwrap throws it
    const res = await crucible.api.GET('/fine_tuning/jobs/{id}', { params: { path: { id: 'ftjob-missing' } } });
    expect(res.response.status).toBe(404);
    expect(() => unwrap(res)).toThrow(CrucibleApiError);
    // a file whose lines are wrong is stored with status error and its report
    const lines = await crucible.waitForFile((await crucible.uploadFile({ name: 'bad.jsonl', data: '{"text": 1}\n' })).id);
    expect(lines).toMatchObject({ status: 'error', problem_count: 1 });
    expect((await crucible.fileReport(lines.id)).validation?.problems[0]).toMatchObject({ line: 1, field: 'text', code: 'invalid_field' });
  });

  it('gives up waiting after timeoutMs, and stops when its signal aborts', async () => {
    const file = await crucible.waitForFile((await crucible.uploadFile({ name: 'w.txt', data: shakespeare(4000) })).id);
    const job = await crucible.createJob(tiny(file.id, 400));
    const late = await crucible.waitForJob(job.id, { timeoutMs: 300 }).catch((e) => e);
    expect(late.name).toBe('CrucibleTimeoutError');
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(new Error('stop waiting')), 200);
    const stopped = await crucible.waitForJob(job.id, { signal: ctl.signal }).catch((e) => e);
    expect(stopped.message).toBe('stop waiting');
    expect((await crucible.cancelJob(job.id)).status).toMatch(/cancel/);
  });
});
