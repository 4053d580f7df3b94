// Requests from a hostile tenant that used to crash the API, answer 500, hang or be changed
// without a word: deep JSON, invalid UTF-8, malformed HTTP, bodies that stall, multipart bodies
// that never end, dataset lines nested 100,000 deep or spelling NUL with escapes, and broken or
// oversized model imports. Each gets a 4xx in Crucible's shape (or a reported problem), and
// nothing is left behind. Traffic goes to 127.0.0.1 only.
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ustar as tar, tinyModelFolder } from '../support/data';
import { type ErrorBodyShape, isErrorBody, leftovers } from '../support/leftovers';
import { startPlatform, type TestPlatform } from '../support/platform';

let p: TestPlatform;
let client: OpenAI;
let port: number;

beforeAll(async () => {
  p = await startPlatform({ worker: false, env: { BODY_IDLE_TIMEOUT_MS: '500' } });
  client = p.openai();
  port = Number(new URL(p.url).port);
});
afterAll(async () => {
  await p?.close();
});

/** Sends raw bytes on a new connection; resolves with what came back when the server closes it (or after `ms`). */
function raw(parts: Array<string | Buffer>, opts: { gapMs?: number; ms?: number } = {}): Promise<{ text: string; closed: boolean; elapsed: number }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('utf8'), closed, elapsed: Date.now() - t0 });
    };
    socket.on('data', (c) => chunks.push(c));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    const timer = setTimeout(() => finish(false), opts.ms ?? 5000);
    timer.unref();
    socket.on('connect', async () => {
      for (const part of parts) {
        if (socket.destroyed) return;
        socket.write(part);
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
    });
  });
}

function parse(text: string): { status: number; body: unknown } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  const at = text.indexOf('\r\n\r\n');
  let body: unknown = null;
  try {
    body = JSON.parse(text.slice(at + 4));
  } catch {
    body = text.slice(at + 4);
  }
  return { status, body };
}

const auth = () => `Authorization: Bearer ${p.apiKey}\r\n`;

function expectShape(r: { status: number; body: unknown }, status: number, code: string) {
  expect(r.status).toBe(status);
  expect(isErrorBody(r.body), JSON.stringify(r.body)).toBe(true);
  expect((r.body as ErrorBodyShape).error.code).toBe(code);
}

describe('JSON bodies', () => {
  it('refuses a body nested 10,000 deep on any route with a 400, and the API keeps answering', async () => {
    const deep = `{"model": "gpt-nano", "x": ${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
    for (const path of ['/fine_tuning/jobs', '/completions', '/webhook_endpoints']) {
      const res = await p.api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: deep });
      const body = (await res.json()) as ErrorBodyShape;
      expect(res.status, path).toBe(400);
      expect(body.error).toMatchObject({ code: 'invalid_request', param: 'body' });
      expect(body.error.message).toMatch(/more than 64 levels deep/);
    }
    expect((await fetch(`${p.url}/health`)).status).toBe(200);
  });

  it('refuses invalid UTF-8 with a 400 naming the field that holds it, and stores nothing', async () => {
    const before = await leftovers(p);
    const body = Buffer.concat([
      Buffer.from('{"model": "gpt-nano", "training_file": "file-x", "metadata": {"k": "a'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}}'),
    ]);
    const res = await p.api('/fine_tuning/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorBodyShape).error).toMatchObject({
      code: 'invalid_request',
      param: 'metadata.k',
      message: 'metadata.k holds bytes that are not valid UTF-8',
    });
    const outside = await p.api('/fine_tuning/jobs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from([0x7b, 0xff, 0x7d]),
    });
    expect(((await outside.json()) as ErrorBodyShape).error).toMatchObject({ code: 'invalid_request', param: 'body' });
    expect(await leftovers(p)).toEqual(before);
  });
});

describe('malformed HTTP, answered in Crucible’s shape', () => {
  // refused by the HTTP parser, before any key is read
  const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
  it.each<[string, string | Buffer, number, string]>([
    ['a 100 KB query string', get(`/v1/files?after=${'a'.repeat(100_000)}`), 431, 'request_header_too_large'],
    ['20,000 query parameters', get(`/v1/files?${Array.from({ length: 20_000 }, (_, i) => `p${i}=1`).join('&')}`), 431, 'request_header_too_large'],
    ['an over-long id in the path', get(`/v1/files/${'f'.repeat(70_000)}`), 431, 'request_header_too_large'],
    [
      'Content-Length with Transfer-Encoding',
      `POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      400,
      'invalid_request',
    ],
    ['two Content-Lengths', `POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd`, 400, 'invalid_request'],
    ['a bad chunk size', `POST /v1/files HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`, 400, 'invalid_request'],
    ['a control character in a header', `GET /v1/files HTTP/1.1\r\nHost: x\r\nX-A: a\u0001b\r\n\r\n`, 400, 'invalid_request'],
    ['bare LF line endings', `GET /v1/files HTTP/1.1\nHost: x\n\n`, 400, 'invalid_request'],
    ['an unknown method', `BREW /v1/files HTTP/1.1\r\nHost: x\r\n\r\n`, 400, 'invalid_request'],
  ])('%s', async (_what, request, status, code) => {
    const r = await raw([request]);
    expectShape(parse(r.text), status, code);
  });
});

describe('multipart part headers', () => {
  it.each(['/v1/files', '/v1/models'])(
    'refuses a filename holding CR LF on %s (the parser would cut it short) with a 400, and stores nothing',
    async (path) => {
      const before = await leftovers(p);
      const b = 'crlf-boundary';
      const fields = path === '/v1/files' ? `--${b}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n` : '';
      const part = `${fields}--${b}\r\nContent-Disposition: form-data; name="file"; filename="a\r\nb.txt"\r\nContent-Type: text/plain\r\n\r\n${'hello\n'.repeat(10)}\r\n--${b}--\r\n`;
      const head = `POST ${path} HTTP/1.1\r\nHost: x\r\n${auth()}Content-Type: multipart/form-data; boundary=${b}\r\nContent-Length: ${part.length}\r\nConnection: close\r\n\r\n`;
      const r = parse((await raw([head, part])).text);
      expectShape(r, 400, 'invalid_request');
      expect((r.body as ErrorBodyShape).error.param).toBe('filename');
      expect(await leftovers(p)).toEqual(before);
    },
  );
});

describe('bodies that stall', () => {
  it('cuts off a body that stops arriving with a 408 in Crucible’s shape', async () => {
    const r = await raw([`POST /v1/fine_tuning/jobs HTTP/1.1\r\nHost: x\r\n${auth()}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model":`]);
    expect(r.closed).toBe(true);
    expectShape(parse(r.text), 408, 'request_timeout');
    expect(r.elapsed).toBeLessThan(3000);
  });

  it('cuts off a drip of one byte at a time slower than the idle timeout', async () => {
    const head = `POST /v1/fine_tuning/jobs HTTP/1.1\r\nHost: x\r\n${auth()}Content-Type: application/json\r\nContent-Length: 50\r\n\r\n`;
    const r = await raw([head, ...'{"model": "gpt-nano"'.split('')], { gapMs: 800, ms: 8000 });
    expectShape(parse(r.text), 408, 'request_timeout');
  });

  it.each(['/v1/files', '/v1/models'])('answers a multipart body without its closing boundary on %s, and leaves nothing reserved', async (path) => {
    const before = await leftovers(p);
    const b = 'hostile-boundary';
    const fields = path === '/v1/files' ? `--${b}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n` : '';
    const name = path === '/v1/files' ? 'a.txt' : 'config.json';
    const part = `${fields}--${b}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n${'x'.repeat(2000)}\r\n`;
    const head = `POST ${path} HTTP/1.1\r\nHost: x\r\n${auth()}Content-Type: multipart/form-data; boundary=${b}\r\nContent-Length: ${part.length + 100}\r\n\r\n`;
    const r = await raw([head, part], { ms: 5000 });
    expect(r.closed).toBe(true);
    expectShape(parse(r.text), 408, 'request_timeout');
    // what the upload reserved is released at once, not by the hourly sweeper
    for (let i = 0; i < 50 && JSON.stringify(await leftovers(p)) !== JSON.stringify(before); i++) await new Promise((res) => setTimeout(res, 100));
    expect(await leftovers(p)).toEqual(before);
  });
});

describe('dataset lines', () => {
  it('reports a line nested 100,000 deep as a line problem, and the API keeps answering', async () => {
    const deep = `{"text": "a", "x": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const f = await client.files.create({ file: await toFile(Buffer.from(`{"text": "fine"}\n${deep}\n`), 'deep.jsonl'), purpose: 'fine-tune' });
    const done = await client.files.waitForProcessing(f.id, { pollInterval: 200 });
    expect(done.status).toBe('error');
    const report = (await (await p.api(`/files/${f.id}/report`)).json()) as { validation: { problems: Array<{ line: number; code: string }> } };
    expect(report.validation.problems).toEqual([expect.objectContaining({ line: 2, code: 'too_deep' })]);
    // preparing it is refused (its source failed validation), and nothing crashes
    const prep = await p.api(`/files/${f.id}/prepare`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(prep.status).toBe(400);
    expect((await fetch(`${p.url}/health`)).status).toBe(200);
  });

  it('prepares a long line of digits off the event loop: /health keeps answering while it runs', async () => {
    const line = '1 '.repeat(200_000); // seconds of work for the personal-data rules
    const f = await client.files.create({ file: await toFile(Buffer.from(`${line}\n`), 'digits.txt'), purpose: 'fine-tune' });
    expect((await client.files.waitForProcessing(f.id, { pollInterval: 200 })).status).toBe('processed');
    const started = (await (
      await p.api(`/files/${f.id}/prepare`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ rules: { scrub_pii: true } }),
      })
    ).json()) as { id: string };
    let answered = 0;
    let worst = 0;
    for (;;) {
      const t0 = Date.now();
      expect((await fetch(`${p.url}/health`)).status).toBe(200);
      worst = Math.max(worst, Date.now() - t0);
      answered++;
      const s = (await p.sql<{ state: string }>('SELECT state FROM files WHERE id = $1', [started.id]))[0]?.state;
      if (s !== 'pending') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // the prepare took seconds; /health was answered all along (one synchronous pass would have held it)
    expect(answered).toBeGreaterThan(5);
    expect(worst).toBeLessThan(1000);
  });

  it('refuses NUL and lone surrogates spelled as escapes in an evaluation file, naming line and field', async () => {
    const rows = ['{"prompt": "a", "completion": " b"}', '{"prompt": "x\\u0000y", "completion": " z"}', '{"prompt": "q", "completion": " \\ud800"}'];
    const f = await client.files.create({ file: await toFile(Buffer.from(`${rows.join('\n')}\n`), 'eval.jsonl'), purpose: 'fine-tune' });
    const done = await client.files.waitForProcessing(f.id, { pollInterval: 200 });
    expect(done.status).toBe('error');
    const report = (await (await p.api(`/files/${f.id}/report`)).json()) as { validation: { problems: Array<{ line: number; code: string; field: string }> } };
    expect(report.validation.problems.map((x) => [x.line, x.code, x.field])).toEqual([
      [2, 'invalid_string', 'prompt'],
      [3, 'invalid_string', 'completion'],
    ]);
  });
});

// ---- model imports ----

// a real folder (a tiny GPT-2 with a character tokenizer), as Crucible writes and reads them
const FOLDER = tinyModelFolder();
const GPT2 = JSON.parse((FOLDER['config.json'] as Buffer).toString()) as Record<string, unknown>;
const TOKENIZER = (FOLDER['tokenizer.json'] as Buffer).toString();
const weightsFile = () => FOLDER['model.safetensors'] as Buffer;

function safetensors(header: unknown, data = 16, rawHeader?: string): Uint8Array {
  const json = Buffer.from(rawHeader ?? JSON.stringify(header));
  const out = Buffer.alloc(8 + json.length + data);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  return out;
}

async function importModel(files: Array<[string, Uint8Array | string]>): Promise<{ status: number; body: ErrorBodyShape }> {
  const form = new FormData();
  for (const [name, data] of files) form.append('file', new Blob([typeof data === 'string' ? data : Buffer.from(data)]), name);
  const res = await p.api('/models', { method: 'POST', body: form });
  return { status: res.status, body: (await res.json()) as ErrorBodyShape };
}

const withWeights = (weights: Uint8Array, config: object = GPT2): Array<[string, Uint8Array | string]> => [
  ['config.json', JSON.stringify(config)],
  ['tokenizer.json', TOKENIZER],
  ['model.safetensors', weights],
];

/**
 * A .tar.gz whose one entry is 1 GiB of zeros, about 1 MB sent: gzip members (concatenated, as
 * gzip allows) of the header and of 64 MiB zero blocks, so the test never holds the whole.
 */
function bomb(name: string): Buffer {
  const size = 2 ** 30;
  const header = tar([[name, Buffer.alloc(0), { size: `${size.toString(8).padStart(11, '0')}\0` }]]).subarray(0, 512);
  const zeros = gzipSync(Buffer.alloc(64 * 2 ** 20), { level: 9 });
  return Buffer.concat([gzipSync(header), ...Array.from({ length: size / (64 * 2 ** 20) }, () => zeros), gzipSync(Buffer.alloc(1024))]);
}

describe('model imports', () => {
  it('imports a well-formed folder (the cases below differ from it in one way each)', async () => {
    const r = await importModel(withWeights(weightsFile()));
    expect(r.status).toBe(200);
  });

  const bad: Array<[string, () => Array<[string, Uint8Array | string]>, RegExp]> = [
    ['a header length of 0', () => withWeights(Buffer.alloc(64)), /cannot hold/],
    ['a header length of 2x10^8', () => withWeights(Buffer.from(new BigUint64Array([200_000_000n]).buffer)), /above/],
    ['a header length of 2^63', () => withWeights(Buffer.from(new BigUint64Array([2n ** 63n]).buffer)), /above/],
    ['a header length of 2^64-1', () => withWeights(Buffer.from(new BigUint64Array([2n ** 64n - 1n]).buffer)), /above/],
    ['a 5-byte file', () => withWeights(Uint8Array.from([1, 2, 3, 4, 5])), /shorter than its 8-byte header length/],
    ['a null header', () => withWeights(safetensors(null)), /not a JSON object/],
    ['an entry without data_offsets', () => withWeights(safetensors({ w: { dtype: 'F32', shape: [4] } })), /data_offsets/],
    ['a shape given as a string', () => withWeights(safetensors({ w: { dtype: 'F32', shape: '4', data_offsets: [0, 16] } })), /shape/],
    [
      'overlapping offsets',
      () => withWeights(safetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } })),
      /overlaps/,
    ],
    [
      'every tensor at [0, 0]',
      () => withWeights(safetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 0] }, b: { dtype: 'F32', shape: [2], data_offsets: [0, 0] } })),
      /span 0 bytes/,
    ],
    ['F16 declared over F32-sized data', () => withWeights(safetensors({ w: { dtype: 'F16', shape: [4], data_offsets: [0, 16] } })), /span 16 bytes/],
    ['begin greater than end', () => withWeights(safetensors({ w: { dtype: 'F32', shape: [0], data_offsets: [16, 0] } })), /end before they begin/],
    ['negative offsets', () => withWeights(safetensors({ w: { dtype: 'F32', shape: [4], data_offsets: [-16, 0] } })), /data_offsets/],
    [
      '10^12 parameters over a 4-byte body',
      () => withWeights(safetensors({ w: { dtype: 'F32', shape: [1_000_000, 1_000_000], data_offsets: [0, 4] } }, 4)),
      /span 4 bytes/,
    ],
    ['n_layer 10,000,000', () => withWeights(weightsFile(), { ...GPT2, n_layer: 10_000_000 }), /n_layer 10000000 implies/],
    [
      'a config of {"model_type":"crucible_bert"}',
      () => withWeights(weightsFile(), { model_type: 'crucible_bert' }),
      /model_type "crucible_bert" is not supported/,
    ],
  ];
  it.each(bad)('refuses %s with 400 invalid_model, leaving nothing behind', async (_what, files, message) => {
    const before = await leftovers(p);
    const t0 = Date.now();
    const r = await importModel(files());
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.error.code).toBe('invalid_model');
    expect(r.body.error.message).toMatch(message);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await leftovers(p)).toEqual(before);
  });

  const files = () => [Buffer.from(JSON.stringify(GPT2)), Buffer.from(TOKENIZER), Buffer.from(weightsFile())] as const;
  const archive = (extra: Array<[string, Buffer, { size?: string }?]> = []) => {
    const [c, t, w] = files();
    return tar([['config.json', c], ['tokenizer.json', t], ...extra, ['model.safetensors', w]]);
  };
  const archives: Array<[string, () => [string, Buffer], RegExp]> = [
    ['a truncated .tar', () => ['m.tar', archive().subarray(0, 1500)], /ends inside/],
    ['a truncated .tar.gz', () => ['m.tar.gz', gzipSync(archive()).subarray(0, 200)], /not a valid gzip stream|ends inside/],
    ['a .tar.gz that is not gzip', () => ['m.tar.gz', Buffer.from('this is not gzip at all')], /not a valid gzip stream/],
    ['a garbage tar header', () => ['m.tar', Buffer.concat([Buffer.alloc(512, 0x41), archive()])], /checksum/],
    ['a base-256 size field', () => ['m.tar', archive([['README.md', Buffer.alloc(0), { size: '\x80\0\0\0\0\0\0\x02\0\0\0\0' }]])], /base-256/],
    ['a non-octal size field', () => ['m.tar', archive([['README.md', Buffer.alloc(0), { size: '00000000099\0' }]])], /not octal/],
    [
      'a gzip bomb: a skipped 1 GiB entry in 1 MB',
      () => ['m.tar.gz', bomb('pytorch_model.bin')],
      /pytorch_model.bin is 1073741824 bytes, above the 67108864 accepted/,
    ],
    ['a gzip bomb: model.safetensors of 1 GiB in 1 MB', () => ['m.tar.gz', bomb('model.safetensors')], /expands more than 100-fold/],
  ];
  it.each(archives)('refuses %s with 400 invalid_model, leaving nothing behind', async (_what, make, message) => {
    const before = await leftovers(p);
    const [name, data] = make();
    const t0 = Date.now();
    const r = await importModel([[name, data]]);
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'invalid_model', param: 'file' });
    expect(r.body.error.message).toMatch(message);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await leftovers(p)).toEqual(before);
  });

  it('still imports a well-formed .tar.gz', async () => {
    const r = await importModel([['m.tar.gz', gzipSync(archive([['README.md', Buffer.from('hello')]]))]]);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  });
});
