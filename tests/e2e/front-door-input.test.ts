// Inputs that used to answer 500, hang, or be changed without a word: every string field is
// checked (NUL, lone surrogates), filenames go back out per RFC 6266 / 5987, framework errors come
// in Crucible's shape, sizes are bounded, and 0 stays 0 (or is refused).
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shakespeare } from '../support/data';
import { type ErrorBodyShape, isErrorBody, leftovers } from '../support/leftovers';
import { startPlatform, type TestPlatform } from '../support/platform';

let p: TestPlatform;
let client: OpenAI;
let textFile: string;

beforeAll(async () => {
  p = await startPlatform({ worker: false });
  client = p.openai();
  textFile = (await client.files.create({ file: await toFile(Buffer.from(shakespeare(5000)), 'a.txt'), purpose: 'fine-tune' })).id;
});
afterAll(async () => {
  await p?.close();
});

/** POSTs a raw JSON text (so that lone surrogates reach the server as the escapes a client sent). */
async function postRaw(path: string, json: string, headers: Record<string, string> = {}) {
  const res = await p.api(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: json });
  return { status: res.status, headers: res.headers, body: (await res.json()) as ErrorBodyShape & Record<string, unknown> };
}

async function expectRefused(r: { status: number; body: unknown }, status: number, code: string, param: string | null) {
  expect(r.status).toBe(status);
  expect(isErrorBody(r.body)).toBe(true);
  expect((r.body as ErrorBodyShape).error).toMatchObject({ code, param });
}

describe('strings PostgreSQL and HTTP cannot hold', () => {
  const job = (extra: string) => `{"model": "gpt-nano", "training_file": "${'{FILE}'}"${extra}}`;
  it.each([
    ['a NUL in a metadata value', ', "metadata": {"k": "a\\u0000b"}', 'metadata.k'],
    ['a NUL in a metadata key', ', "metadata": {"a\\u0000": "v"}', 'metadata'],
    ['a lone high surrogate in a metadata value', ', "metadata": {"k": "x\\ud800y"}', 'metadata.k'],
    ['a lone low surrogate in the suffix', ', "suffix": "\\udc00"', 'suffix'],
  ])('refuses %s with a 400 naming the field, and stores nothing', async (_what, extra, param) => {
    const before = await leftovers(p);
    const r = await postRaw('/fine_tuning/jobs', job(extra).replace('{FILE}', textFile));
    await expectRefused(r, 400, 'invalid_request', param);
    expect(r.body.error.message).toMatch(/NUL|surrogate/);
    expect(await leftovers(p)).toEqual(before);
  });

  it('refuses them in model, training_file, path ids and query strings', async () => {
    await expectRefused(await postRaw('/fine_tuning/jobs', `{"model": "gpt\\u0000nano", "training_file": "${textFile}"}`), 400, 'invalid_request', 'model');
    await expectRefused(await postRaw('/fine_tuning/jobs', '{"model": "gpt-nano", "training_file": "file-\\ud83d"}'), 400, 'invalid_request', 'training_file');
    for (const path of ['/files/file-%00x', '/fine_tuning/jobs/ftjob-%00', '/models/m%00']) {
      const res = await p.api(path);
      await expectRefused({ status: res.status, body: await res.json() }, 400, 'invalid_request', path.startsWith('/models') ? 'model' : 'id');
    }
    const q = await p.api('/fine_tuning/jobs?after=ftjob-%00');
    await expectRefused({ status: q.status, body: await q.json() }, 400, 'invalid_request', 'after');
  });

  it('refuses a chat message with a NUL, naming messages.0.content', async () => {
    const r = await postRaw('/chat/completions', '{"model": "m", "messages": [{"role": "user", "content": "hi\\u0000"}]}');
    await expectRefused(r, 400, 'invalid_request', 'messages.0.content');
  });

  it('checks uploaded filenames: control characters and over-long names are refused, a directory part is dropped', async () => {
    const before = await leftovers(p);
    for (const [name, why] of [
      ['a\u0001b.txt', /control character/],
      [`${'x'.repeat(5000)}.txt`, /longer than 255/],
    ] as const) {
      const err = await client.files.create({ file: await toFile(Buffer.from('hello'), name), purpose: 'fine-tune' }).catch((e) => e);
      expect(err.status).toBe(400);
      expect(err.error).toMatchObject({ code: 'invalid_request', param: 'filename' });
      expect(err.message).toMatch(why);
    }
    expect(await leftovers(p)).toEqual(before);
    const f = await client.files.create({ file: await toFile(Buffer.from('hello there'), 'C:\\Users\\me\\data.txt'), purpose: 'fine-tune' });
    expect(f.filename).toBe('data.txt');
  });
});

describe('Content-Disposition', () => {
  /** RFC 6266 / 5987, parsed here: the filename* value decoded from UTF-8 percent-encoding, else the quoted filename. */
  function filenameOf(header: string): { star: string | null; plain: string | null } {
    const star = /filename\*=UTF-8''([^;\s]+)/i.exec(header);
    const plain = /filename="([^"]*)"/i.exec(header);
    return { star: star ? decodeURIComponent(star[1] as string) : null, plain: plain ? (plain[1] as string) : null };
  }

  it.each(['日本.txt', 'résumé final’s (2).txt', 'a;b=c%20d.txt', 'plain-name.txt', 'emoji 🎉.jsonl'])(
    'sends %s back intact, and the download completes',
    async (name) => {
      const f = await client.files.create({ file: await toFile(Buffer.from('some text\n'), name), purpose: 'fine-tune' });
      const res = await p.api(`/files/${f.id}/content`, { signal: AbortSignal.timeout(10_000) });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('some text\n');
      const header = res.headers.get('content-disposition') as string;
      expect(header).toMatch(/^attachment;/);
      // header values are Latin-1 on the wire: everything beyond printable ASCII must be encoded
      expect(/^[\x20-\x7e]*$/.test(header)).toBe(true);
      const { star, plain } = filenameOf(header);
      expect(star ?? plain).toBe(name);
      if (plain !== null) expect(plain).not.toMatch(/["\\]/);
    },
  );
});

describe('framework errors in Crucible’s shape', () => {
  it('answers an over-long path id with a 400 naming it', async () => {
    const res = await p.api(`/fine_tuning/jobs/ftjob-${'a'.repeat(3000)}`);
    await expectRefused({ status: res.status, body: await res.json() }, 400, 'invalid_request', 'id');
  });

  it('answers a malformed URL (bad percent-encoding) with a 400 in Crucible’s shape', async () => {
    const res = await p.api('/files/%E0%A4%A');
    await expectRefused({ status: res.status, body: await res.json() }, 400, 'invalid_request', 'url');
  });

  it('answers broken JSON, an empty body and an unknown content type with 400s', async () => {
    await expectRefused(await postRaw('/fine_tuning/jobs', '{"model": '), 400, 'invalid_request', 'body');
    const empty = await p.api('/fine_tuning/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '' });
    await expectRefused({ status: empty.status, body: await empty.json() }, 400, 'invalid_request', 'body');
    const xml = await p.api('/fine_tuning/jobs', { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<a/>' });
    expect(xml.status).toBeGreaterThanOrEqual(400);
    expect(xml.status).toBeLessThan(500);
    expect(isErrorBody(await xml.json())).toBe(true);
  });

  it('answers two file parts with a 400 (not 413 file_too_large), storing nothing', async () => {
    const before = await leftovers(p);
    const form = new FormData();
    form.append('purpose', 'fine-tune');
    form.append('file', new Blob(['one']), 'one.txt');
    form.append('file', new Blob(['two']), 'two.txt');
    const res = await p.api('/files', { method: 'POST', body: form });
    await expectRefused({ status: res.status, body: await res.json() }, 400, 'invalid_request', 'file');
    expect(await leftovers(p)).toEqual(before);
  });
});

describe('no silent defaults, bounded sizes', () => {
  it('refuses max_tokens 0 and a null message content instead of replacing them', async () => {
    await expectRefused(await postRaw('/completions', '{"model": "m", "prompt": "x", "max_tokens": 0}'), 400, 'invalid_request', 'max_tokens');
    await expectRefused(
      await postRaw('/chat/completions', '{"model": "m", "messages": [{"role": "user", "content": null}]}'),
      400,
      'invalid_request',
      'messages.0.content',
    );
  });

  it('takes top_p 0 as 0 (the most likely token), not as 1: it reaches the model lookup', async () => {
    const r = await postRaw('/completions', '{"model": "no-such-model", "prompt": "x", "top_p": 0}');
    await expectRefused(r, 404, 'model_not_found', 'model');
  });

  it('bounds metadata: 17 pairs, a 65-character key or a 513-character value are refused', async () => {
    const before = await leftovers(p);
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']));
    for (const [metadata, param] of [
      [many, 'metadata'],
      [{ ['k'.repeat(65)]: 'v' }, 'metadata'],
      [{ k: 'v'.repeat(513) }, 'metadata.k'],
    ] as const) {
      const r = await postRaw('/fine_tuning/jobs', JSON.stringify({ model: 'gpt-nano', training_file: textFile, metadata }));
      await expectRefused(r, 400, 'invalid_request', param);
    }
    expect(await leftovers(p)).toEqual(before);
    const ok = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`.padEnd(64, 'x'), 'v'.repeat(512)]));
    const r = await postRaw('/fine_tuning/jobs/estimate', JSON.stringify({ model: 'gpt-nano', training_file: textFile, metadata: ok }));
    expect(r.status).toBe(200);
  });

  it('gives every answer a request id, and echoes a sane one the client sent', async () => {
    const a = await p.api('/files');
    expect(a.headers.get('x-request-id')).toMatch(/^req-/);
    const b = await p.api('/files', { headers: { 'x-request-id': 'trace-42' } });
    expect(b.headers.get('x-request-id')).toBe('trace-42');
  });
});
