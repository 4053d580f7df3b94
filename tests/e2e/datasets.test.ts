// The dataset pipeline over HTTP: background validation with a report at known lines, purpose
// checks, files that are not processed refused by jobs and evaluations, the preparation pipeline
// (cleaning, duplicates, near duplicates, personal data) producing a new file and a report,
// statistics, and a streamed upload larger than the API's heap limit.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import Ajv from 'ajv';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startPlatform, type TestPlatform } from '../support/platform';

let p: TestPlatform;
let client: OpenAI;

beforeAll(async () => {
  p = await startPlatform({ worker: false });
  client = p.openai();
});
afterAll(async () => {
  await p?.close();
});

interface FileBody {
  id: string;
  status: string;
  status_details: string | null;
  format: string | null;
  lines: number;
  problem_count: number | null;
  problems: Array<{ line: number | null; field: string | null; code: string; message: string }>;
  source_file: string | null;
}

async function upload(text: string, name: string, purpose = 'fine-tune'): Promise<FileBody> {
  return (await client.files.create({ file: await toFile(Buffer.from(text), name), purpose: purpose as 'fine-tune' })) as unknown as FileBody;
}

async function get<T>(path: string): Promise<T> {
  const res = await p.api(path);
  expect(res.status, path).toBe(200);
  return (await res.json()) as T;
}

describe('validation', () => {
  it('reports several problems of one file at their lines, fields and reasons', async () => {
    const lines = [
      JSON.stringify({
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
        ],
      }), // 1 ok
      JSON.stringify({
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'wizard', content: 'x' },
        ],
      }), // 2 bad role, last not assistant
      '{"messages": [', // 3 not JSON
      JSON.stringify({
        messages: [
          { role: 'user', content: 5 },
          { role: 'assistant', content: 'x' },
        ],
      }), // 4 content not a string
      JSON.stringify({ prompt: 'q', completion: 'a' }), // 5 another format
      '', // 6 blank
      JSON.stringify({
        messages: [
          { role: 'user', content: 'again' },
          { role: 'assistant', content: 'yes' },
        ],
      }), // 7 ok
    ];
    const f = await upload(lines.join('\n'), 'chat.jsonl', 'supervised');
    expect(f).toMatchObject({ status: 'error', format: 'jsonl_chat', problem_count: 5 });
    expect(f.status_details).toMatch(/^5 problems found: line 2: messages\[1\]\.role/);
    const report = await get<{ validation: { problems: FileBody['problems']; problem_count: number; records: number; limits: Record<string, number> } }>(
      `/files/${f.id}/report`,
    );
    expect(report.validation.problems.map((x) => [x.line, x.field, x.code])).toEqual([
      [2, 'messages[1].role', 'invalid_field'],
      [2, 'messages[1].role', 'invalid_field'],
      [3, null, 'invalid_json'],
      [4, 'messages[0].content', 'invalid_field'],
      [5, null, 'mixed_formats'],
    ]);
    expect(report.validation.records).toBe(2);
    expect(report.validation.limits).toMatchObject({ min_examples: 1, max_line_bytes: 2 ** 20 });
  });

  it('checks that the purpose fits the content', async () => {
    const f = await upload('To be, or not to be, that is the question.\n', 'prose.txt', 'supervised');
    expect(f.status).toBe('error');
    expect(f.problems[0]).toMatchObject({ line: null, field: 'purpose', code: 'purpose_mismatch' });
    const ok = await upload('To be, or not to be.\n', 'prose.txt', 'pretrain');
    expect(ok).toMatchObject({ status: 'processed', format: 'text', lines: 1, problem_count: 0 });
  });

  it('refuses jobs and evaluations on a file that is still pending, with file_not_ready', async () => {
    const f = await upload('some text\n', 'a.txt');
    await p.sql("UPDATE files SET state = 'pending' WHERE id = $1", [f.id]);
    const job = await p.api('/fine_tuning/jobs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-nano', training_file: f.id }),
    });
    expect(job.status).toBe(409);
    expect(((await job.json()) as { error: unknown }).error).toMatchObject({ code: 'file_not_ready', param: 'training_file' });
    expect(await p.sql('SELECT id FROM jobs')).toEqual([]);
  });
});

describe('preparation', () => {
  const near = 'the quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat by the kitchen door';
  const rows = [
    { text: 'Cafe\u0301  au   lait\u0007 is served' }, // 1: NFC, control character, whitespace
    { text: 'Write to jane.doe@example.com or call +1 415-555-2671 today' }, // 2: e-mail, phone
    { text: 'server 192.168.10.20 runs version 1.2.3.4 of the tool' }, // 3: IP scrubbed, version kept
    { text: 'card 4111 1111 1111 1111 but not order 4111 1111 1111 1112' }, // 4: valid card scrubbed, Luhn failure kept
    { text: 'key sk-proj-abcdefghijklmnopqrstuvwxyz0123 leaked' }, // 5: secret
    { text: 'Café au lait is served' }, // 6: exact duplicate of line 1 once cleaned
    { text: near }, // 7
    { text: `${near} today` }, // 8: near duplicate of 7 (word 5-gram Jaccard 17/18)
    { text: 'a completely different sentence about kings and queens of old' }, // 9
  ];

  it('makes a new file with the rules applied and reports counts and examples per rule', async () => {
    const src = await upload(rows.map((r) => JSON.stringify(r)).join('\n'), 'raw.jsonl');
    expect(src.status).toBe('processed');
    const res = await p.api(`/files/${src.id}/prepare`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(200);
    const made = (await res.json()) as FileBody;
    expect(made).toMatchObject({ status: 'pending', source_file: src.id });
    const done = await eventually(async () => {
      const f = await get<FileBody>(`/files/${made.id}`);
      return f.status === 'pending' ? undefined : f;
    }, 30_000);
    expect(done).toMatchObject({ status: 'processed', format: 'jsonl_text', lines: 7 });
    const content = await (await p.api(`/files/${made.id}/content`)).text();
    expect(
      content
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).text),
    ).toEqual([
      'Café au lait is served',
      'Write to <EMAIL> or call <PHONE> today',
      'server <IP_ADDRESS> runs version 1.2.3.4 of the tool',
      'card <CREDIT_CARD> but not order 4111 1111 1111 1112',
      'key <SECRET> leaked',
      near,
      'a completely different sentence about kings and queens of old',
    ]);
    const report = await get<{ preparation: { source_file: string; report: Record<string, unknown> } }>(`/files/${made.id}/report`);
    expect(report.preparation.source_file).toBe(src.id);
    // the stored reports are the shapes published in openapi.json
    const doc = JSON.parse(readFileSync(join(import.meta.dirname, '../../openapi.json'), 'utf8'));
    const schema = doc.paths['/files/{id}/report'].get.responses['200'].content['application/json'].schema;
    const check = new Ajv({ strict: false }).compile({ ...schema, components: doc.components });
    expect(check(report), JSON.stringify(check.errors)).toBe(true);
    expect(report.preparation.report).toMatchObject({
      records_in: 9,
      records_out: 7,
      counts: { normalize_unicode: 1, remove_control_characters: 1, normalize_whitespace: 1, exact_duplicates: 1, near_duplicates: 1, scrub_pii: 4 },
      pii: { email: 1, phone: 1, ip_address: 1, credit_card: 1, secret: 1 },
    });
    const examples = report.preparation.report.examples as Array<{ rule: string; line: number; duplicate_of_line?: number }>;
    expect(examples.find((e) => e.rule === 'exact_duplicates')).toMatchObject({ line: 6, duplicate_of_line: 1 });
    expect(examples.find((e) => e.rule === 'near_duplicates')).toMatchObject({ line: 8, duplicate_of_line: 7 });
  });

  it('applies only the rules asked for, and refuses unknown ones', async () => {
    const src = await upload(rows.map((r) => JSON.stringify(r)).join('\n'), 'raw2.jsonl');
    const res = await p.api(`/files/${src.id}/prepare`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rules: { scrub_pii: false, near_duplicates: false }, filename: 'clean.jsonl' }),
    });
    const made = (await res.json()) as FileBody;
    const done = await eventually(async () => {
      const f = await get<FileBody>(`/files/${made.id}`);
      return f.status === 'pending' ? undefined : f;
    }, 30_000);
    expect(done.lines).toBe(8); // only the exact duplicate goes
    const bad = await p.api(`/files/${src.id}/prepare`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rules: { shout: true } }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toMatch(/shout/);
  });

  it('gives statistics: records, characters and a length histogram', async () => {
    const f = await upload(['a', 'bb', 'cccc', 'd'.repeat(100)].join('\n'), 'lens.txt', 'pretrain');
    const s = await get<{ records: number; characters: number; length_histogram: { buckets: Array<{ le: number; count: number }> } }>(`/files/${f.id}/stats`);
    expect(s).toMatchObject({ records: 4, characters: 107 });
    expect(s.length_histogram.buckets.filter((b) => b.count > 0)).toEqual([
      { le: 1, count: 1 },
      { le: 2, count: 1 },
      { le: 4, count: 1 },
      { le: 128, count: 1 },
    ]);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('streamed uploads', () => {
  let api: ChildProcess | undefined;
  afterAll(() => {
    api?.kill('SIGKILL');
  });

  it('stores and validates a file larger than the API process heap limit', async () => {
    const port = await freePort();
    api = spawn(process.execPath, ['--max-old-space-size=96', '--import', 'tsx', join(import.meta.dirname, '../../apps/api/src/server.ts')], {
      env: { ...process.env, ...p.env, PORT: String(port), LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const url = `http://127.0.0.1:${port}`;
    await eventually(async () => ((await fetch(`${url}/health`).catch(() => null))?.ok ? true : undefined), 60_000);

    // 160 MiB of JSONL, generated while it is sent
    const line = `${JSON.stringify({ text: 'To be, or not to be, that is the question: whether tis nobler in the mind to suffer. '.repeat(10) })}\n`;
    const count = Math.ceil((160 * 2 ** 20) / Buffer.byteLength(line));
    const boundary = 'crucible-big-upload';
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\npretrain\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\nContent-Type: application/jsonl\r\n\r\n`;
    const tail = `\r\n--${boundary}--\r\n`;
    const size = Buffer.byteLength(head) + count * Buffer.byteLength(line) + Buffer.byteLength(tail);
    const answer = await new Promise<{ status: number; body: FileBody }>((resolve, reject) => {
      const req = request(`${url}/v1/files`, {
        method: 'POST',
        headers: { authorization: `Bearer ${p.apiKey}`, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(size) },
      });
      req.on('error', reject);
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      });
      req.write(head);
      const block = line.repeat(1000);
      let sent = 0;
      const pump = () => {
        while (sent < count) {
          const n = Math.min(1000, count - sent);
          sent += n;
          if (!req.write(n === 1000 ? block : line.repeat(n))) {
            req.once('drain', pump);
            return;
          }
        }
        req.end(tail);
      };
      pump();
    });
    expect(answer.status).toBe(200);
    const f = await eventually(async () => {
      const b = await get<FileBody & { bytes: number }>(`/files/${answer.body.id}`);
      return b.status === 'pending' ? undefined : b;
    }, 180_000);
    expect(f).toMatchObject({ status: 'processed', format: 'jsonl_text', lines: count, bytes: count * Buffer.byteLength(line) });
    expect(api.exitCode).toBeNull(); // still alive
  });
});
