// npm run bench:hostile: /health latency while a hostile tenant attacks the API (issue 20's list).
// The API runs in a child process with its defaults (file work in worker threads); this process
// sends the attack and, beside it, one GET /health every 10 ms, and prints the probe's p50, p99
// and worst latency per attack, with what the attack got. Goal: p99 under 100 ms.
//   BENCH_ESTIMATE_MB (default 100): the size of the file the estimate and statistics read.
// Needs PostgreSQL (local socket), Redis and curl-free loopback HTTP only.
import { type ChildProcess, spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { cpus } from 'node:os';
import { createGzip } from 'node:zlib';
import { createProjectWithKey } from '@crucible/api';
import { createStore } from '@crucible/db';
import { BpeTokenizer, baseParamSpecs, writeModelFolder } from '@crucible/model-files';
import type { ModelConfig } from '@crucible/training-config';
import { SHAKESPEARE } from '../../../tests/support/data';
import { benchApiEnv, startBenchServices } from './bench-services';

const name = 'hostilebench';
const ESTIMATE_MB = Number(process.env.BENCH_ESTIMATE_MB ?? 100);

async function child(code: string, env: Record<string, string>): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', '-e', code], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const url: string = await new Promise((resolve, reject) => {
    proc.stdout?.on('data', (d) => {
      const m = /(http:\/\/\S+)/.exec(String(d));
      if (m) resolve(m[1] as string);
    });
    proc.on('exit', (c) => reject(new Error(`API exited with ${c}`)));
  });
  return { url, proc };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GET /health every 10 ms until stopped; the latencies in ms. */
function probe(url: string): { stop: () => Promise<number[]> } {
  const times: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      const r = await fetch(`${url}/health`);
      await r.arrayBuffer();
      times.push(performance.now() - t0);
      await sleep(10);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return times;
    },
  };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

const rows: Array<{ attack: string; n: number; p50: number; p99: number; max: number; outcome: string }> = [];

async function measure(attack: string, run: () => Promise<string>): Promise<void> {
  const p = probe(api);
  const t0 = performance.now();
  const outcome = await run();
  const seconds = (performance.now() - t0) / 1000;
  const t = await p.stop();
  const row = { attack, n: t.length, p50: pct(t, 50), p99: pct(t, 99), max: Math.max(...t), outcome: `${outcome}; ${seconds.toFixed(1)} s` };
  rows.push(row);
  console.log(
    `${attack.padEnd(52)} /health n ${String(row.n).padStart(4)}  p50 ${row.p50.toFixed(1).padStart(6)} ms  p99 ${row.p99.toFixed(1).padStart(6)} ms  max ${row.max.toFixed(1).padStart(6)} ms  | ${row.outcome}`,
  );
}

/** Opens a connection, writes `head`, then `drip` bytes one at a time every `gapMs`; resolves when the server closes it. */
function rawConnection(port: number, head: string, drip = '', gapMs = 1000): Promise<string> {
  return new Promise((resolve) => {
    const s: Socket = connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => {
      out += d;
    });
    s.on('error', () => {});
    s.on('close', () => resolve(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 'closed'));
    s.on('connect', async () => {
      s.write(head);
      for (const ch of drip) {
        await sleep(gapMs);
        if (s.destroyed) return;
        s.write(ch);
      }
    });
  });
}

function tally(statuses: string[]): string {
  const c = new Map<string, number>();
  for (const s of statuses) c.set(s, (c.get(s) ?? 0) + 1);
  return [...c].map(([s, n]) => `${n} x ${s}`).join(', ');
}

async function upload(buf: Buffer, filename: string): Promise<string> {
  const form = new FormData();
  form.set('purpose', 'fine-tune');
  form.set('file', new Blob([buf]), filename);
  const r = await fetch(`${api}/v1/files`, { method: 'POST', headers: auth, body: form });
  const f = (await r.json()) as { id: string; status: string };
  if (!r.ok) throw new Error(`upload ${filename}: ${JSON.stringify(f)}`);
  return f.id;
}

async function settled(id: string): Promise<string> {
  for (;;) {
    const f = (await (await fetch(`${api}/v1/files/${id}`, { headers: auth })).json()) as { status: string };
    if (f.status !== 'pending') return f.status;
    await sleep(100);
  }
}

async function prepare(id: string): Promise<string> {
  const r = await fetch(`${api}/v1/files/${id}/prepare`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ rules: { scrub_pii: true, normalize_whitespace: true } }),
  });
  const f = (await r.json()) as { id: string };
  return settled(f.id);
}

/** A .tar.gz holding one entry of `bytes` zeros, streamed through gzip (a bomb: about 1000 to 1). */
async function gzipBomb(bytes: number): Promise<Buffer> {
  const header = Buffer.alloc(512);
  header.write('model.safetensors', 0);
  header.write('0000644\0', 100);
  header.write(`${bytes.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.fill(0x20, 148, 156);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const x of header) sum += x;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const gz = createGzip({ level: 1 });
  const out: Buffer[] = [];
  gz.on('data', (d) => out.push(d));
  const done = new Promise((r) => gz.on('end', r));
  gz.write(header);
  const zeros = Buffer.alloc(1 << 20);
  for (let left = bytes; left > 0; left -= zeros.length) {
    if (!gz.write(left >= zeros.length ? zeros : zeros.subarray(0, left))) await new Promise((r) => gz.once('drain', r));
  }
  gz.end(Buffer.alloc(1024));
  await done;
  return Buffer.concat(out);
}

async function importModel(files: Record<string, Buffer | Uint8Array>): Promise<string> {
  const form = new FormData();
  for (const [n, b] of Object.entries(files)) form.append('file', new Blob([b]), n);
  const r = await fetch(`${api}/v1/models`, { method: 'POST', headers: auth, body: form });
  const body = (await r.json()) as { id?: string; error?: { code: string } };
  return r.ok ? (body.id as string) : `${r.status} ${body.error?.code}`;
}

const services = await startBenchServices(name);
let proc: ChildProcess | undefined;
let api = '';
let auth: Record<string, string> = {};
try {
  const env = benchApiEnv(services, name, { LOG_LEVEL: 'warn', MAX_STORAGE_BYTES: String(4 * 2 ** 30), MAX_UPLOAD_BYTES: String(512 * 2 ** 20) });
  ({ url: api, proc } = await child(
    `const { startServer } = await import('@crucible/api'); const s = await startServer(process.env); s.app.log.level = 'warn'; console.log(s.url);`,
    env,
  ));
  const store = createStore(services.databaseUrl);
  const { secret } = await createProjectWithKey(store, name);
  await store.close();
  auth = { authorization: `Bearer ${secret}` };
  const port = Number(new URL(api).port);
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}; node ${process.version}; the API in its own process with its defaults\n`);

  await measure('nothing (baseline, 3 s)', async () => {
    await sleep(3000);
    return 'idle';
  });

  await measure('JSON nested 100,000 deep, 8 clients for 5 s', async () => {
    const body = `{"model":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const statuses: string[] = [];
    const until = Date.now() + 5000;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (Date.now() < until) {
          const r = await fetch(`${api}/v1/fine_tuning/jobs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body });
          await r.arrayBuffer();
          statuses.push(String(r.status));
        }
      }),
    );
    return tally(statuses);
  });

  await measure('200 stalled bodies + 50 drips of 1 byte/s (until cut)', async () => {
    const head = (n: number) =>
      `POST /v1/fine_tuning/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth.authorization}\r\nContent-Type: application/json\r\nContent-Length: ${n}\r\n\r\n{"model":`;
    const stalled = Array.from({ length: 200 }, () => rawConnection(port, head(100)));
    const drips = Array.from({ length: 50 }, () => rawConnection(port, head(1000), ' '.repeat(900), 1000));
    return tally(await Promise.all([...stalled, ...drips]));
  });

  await measure('50 multipart uploads without a closing boundary', async () => {
    const b = 'bench-boundary';
    const part = `--${b}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n--${b}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n${'x'.repeat(100_000)}\r\n`;
    const head = `POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth.authorization}\r\nContent-Type: multipart/form-data; boundary=${b}\r\nContent-Length: ${part.length + 100}\r\n\r\n${part}`;
    return tally(await Promise.all(Array.from({ length: 50 }, () => rawConnection(port, head))));
  });

  const lines: Array<[string, string]> = [
    ['"1 1 1 ..."', '1 '.repeat(500_000)],
    ['"1.1.1..."', '1.'.repeat(500_000)],
    ['phone numbers', '+1 (555) 123-4567 '.repeat(55_000)],
    ['PEM headers', '-----BEGIN RSA PRIVATE KEY----- '.repeat(31_000)],
  ];
  const ids: Array<[string, string]> = [];
  for (const [what, line] of lines) ids.push([what, await upload(Buffer.from(`${line}\n`), `${what.replace(/\W+/g, '_')}.txt`)]);
  for (const [, id] of ids) await settled(id);
  await measure('4 prepares of a 1 MB line (digits, dots, phones, PEM)', async () => tally(await Promise.all(ids.map(([, id]) => prepare(id)))));

  const tenMb = Buffer.from(SHAKESPEARE.repeat(Math.ceil((10 * 2 ** 20) / SHAKESPEARE.length)).slice(0, 10 * 2 ** 20));
  const big = await upload(tenMb, 'ten-mb.txt');
  await settled(big);
  await measure('2 prepares of a 10 MB file', async () => tally(await Promise.all([prepare(big), prepare(big)])));

  // a model with a byte-level BPE tokenizer, so statistics tokenize for real
  const tokenizer = BpeTokenizer.train(SHAKESPEARE.slice(0, 200_000), { vocabSize: 512, specialTokens: ['<|endoftext|>'] });
  const config: ModelConfig = {
    arch: 'gpt',
    vocabSize: tokenizer.vocabSize,
    nLayer: 1,
    nHead: 1,
    dModel: 4,
    blockSize: 8,
    ffnMult: 4,
    dropout: 0,
    bias: true,
    tiedEmbeddings: true,
  };
  const weights = new Map(baseParamSpecs(config).map((s) => [s.name, { shape: s.shape, data: new Float32Array(s.shape.reduce((a, b) => a * b, 1)) }]));
  const model = await importModel(writeModelFolder({ config, weights, tokenizer, baseModel: 'bench' }));

  const record = `${JSON.stringify({ text: SHAKESPEARE.slice(0, 400) })}\n`;
  const large = Buffer.from(record.repeat(Math.ceil((ESTIMATE_MB * 2 ** 20) / record.length)));
  const largeId = await upload(large, 'large.jsonl');
  await settled(largeId);
  await measure(`estimate on a ${ESTIMATE_MB} MB file`, async () => {
    const r = await fetch(`${api}/v1/fine_tuning/jobs/estimate`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-nano', training_file: largeId, method: { type: 'pretrain' } }),
    });
    const body = (await r.json()) as { tokens?: { total: number } };
    return `${r.status}, ${body.tokens?.total} tokens`;
  });
  await measure(`token statistics of a ${ESTIMATE_MB} MB file (BPE)`, async () => {
    const r = await fetch(`${api}/v1/files/${largeId}/stats?model=${model}`, { headers: auth });
    const body = (await r.json()) as { tokens?: { total: number } };
    return `${r.status}, ${body.tokens?.total} tokens`;
  });

  const bomb = await gzipBomb(2 ** 30);
  await measure(`a .tar.gz bomb (${(bomb.length / 2 ** 20).toFixed(1)} MB holding 1 GiB)`, async () => importModel({ 'model.tar.gz': bomb }));
  await measure('a config.json with n_layer 10,000,000', async () => {
    const folder = writeModelFolder({ config, weights, tokenizer, baseModel: 'bench' });
    const cfg = JSON.parse(Buffer.from(folder['config.json'] as Uint8Array).toString());
    return importModel({ ...folder, 'config.json': Buffer.from(JSON.stringify({ ...cfg, n_layer: 10_000_000 })) });
  });

  const worst = rows.reduce((a, r) => Math.max(a, r.p99), 0);
  console.log(`\nworst /health p99 under attack: ${worst.toFixed(1)} ms (goal: under 100 ms)`);
} finally {
  proc?.kill();
  services.stop();
}
