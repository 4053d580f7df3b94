// npm run bench:serve -- --only streams: the platform serving concurrent streams. The API and a
// worker (INFERENCE_CONCURRENCY 32) each in their own process on a local S3 server, PostgreSQL and
// Redis; a SmolLM2-135M-shaped model (its real config and tokenizer from ../shared, random
// weights) imported through the API; the official openai client sends 1, 8 and 32 concurrent
// streamed completions (temperature 0, `--tokens` each, distinct prompts) and then the same 32 one
// at a time. Prints tokens/s over the wall time and p50/p99 time to first token.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { createProjectWithKey } from '@crucible/api';
import { createStore } from '@crucible/db';
import { decoderConfigFromHf, initBackend, readTokenizer, Transformer, writeModelFolder } from '@crucible/trainer';
import OpenAI from 'openai';
import { benchApiEnv, startBenchServices } from '../../api/bench/bench-services';

const at = process.argv.indexOf('--tokens');
const TOKENS = at >= 0 ? Number(process.argv[at + 1]) : 32;
const FOLDER = join(import.meta.dirname, '../../../../shared/data/hf-tokenizers/smollm2-135m-instruct');
const name = 'servebench';

/** Starts `code` in a child Node process (with tsx) and resolves the line it prints. */
async function child(code: string, env: Record<string, string>): Promise<{ line: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', '-e', code], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const line: string = await new Promise((resolve, reject) => {
    proc.stdout?.on('data', (d) => {
      const m = /READY (\S+)/.exec(String(d));
      if (m) resolve(m[1] as string);
    });
    proc.on('exit', (c) => reject(new Error(`child exited with ${c}`)));
  });
  return { line, proc };
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
};

export async function streamsBench(): Promise<void> {
  if (!existsSync(join(FOLDER, 'config.json'))) {
    console.log(`skipped: SmolLM2-135M's config and tokenizer are not at ${FOLDER}`);
    return;
  }
  const services = await startBenchServices(name);
  const env = benchApiEnv(services, name, {
    LOG_LEVEL: 'warn',
    RATE_LIMIT_RPM: '0',
    INFERENCE_CONCURRENCY: '32',
    MAX_CONCURRENT_INFERENCE: '64',
    INFERENCE_TIMEOUT_MS: '1200000',
  });
  const procs: ChildProcess[] = [];
  try {
    const api = await child(
      `const { startServer } = await import('@crucible/api'); const s = await startServer(process.env); console.log('READY ' + s.url);`,
      env,
    );
    procs.push(api.proc);
    const worker = await child(
      `const { parseWorkerConfig, startWorker } = await import('@crucible/worker'); const w = await startWorker(parseWorkerConfig(process.env), () => {}); console.log('READY ' + w.backend);`,
      env,
    );
    procs.push(worker.proc);
    const store = createStore(services.databaseUrl);
    const { secret } = await createProjectWithKey(store, name);
    await store.close();

    // the model: SmolLM2-135M's shape and tokenizer, random weights
    await initBackend('cpu');
    const hf = JSON.parse(readFileSync(join(FOLDER, 'config.json'), 'utf8')) as Record<string, unknown>;
    const config = decoderConfigFromHf(hf);
    const tokenizer = readTokenizer(readFileSync(join(FOLDER, 'tokenizer.json')), readFileSync(join(FOLDER, 'tokenizer_config.json')));
    const model = Transformer.create(config, 1);
    const files = writeModelFolder({ config, weights: model.weights(), tokenizer, baseModel: 'smollm2-135m-random' });
    model.dispose();
    const form = new FormData();
    form.append('name', 'smollm2-random');
    for (const [file, data] of Object.entries(files)) form.append('file', new Blob([data]), file);
    const imported = (await (await fetch(`${api.line}/v1/models`, { method: 'POST', headers: { authorization: `Bearer ${secret}` }, body: form })).json()) as {
      id: string;
    };
    const client = new OpenAI({ apiKey: secret, baseURL: `${api.line}/v1`, maxRetries: 0, timeout: 1_200_000 });

    /** One streamed completion: its time to first piece and its pieces (one per token, text held back at most a few). */
    const stream = async (i: number) => {
      const t0 = performance.now();
      let first = 0;
      let pieces = 0;
      const s = await client.completions.create({
        model: imported.id,
        prompt: `Story ${i}: once upon a time`,
        max_tokens: TOKENS,
        temperature: 0,
        stream: true,
      });
      for await (const c of s) {
        if (!c.choices[0]?.text) continue;
        if (!first) first = performance.now() - t0;
        pieces++;
      }
      return { ttft: first, pieces };
    };
    await stream(0); // the model loads
    console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}; worker backend ${worker.line}; ${TOKENS} tokens per request\n`);
    console.log('| requests | how | tokens/s | p50 TTFT | p99 TTFT | wall |');
    console.log('|---|---|---|---|---|---|');
    for (const n of [1, 8, 32]) {
      const t0 = performance.now();
      const r = await Promise.all(Array.from({ length: n }, (_, i) => stream(i + 1)));
      const wall = (performance.now() - t0) / 1000;
      const tokens = r.reduce((a, x) => a + x.pieces, 0);
      const ttft = r.map((x) => x.ttft);
      console.log(
        `| ${n} | concurrent | ${(tokens / wall).toFixed(1)} | ${quantile(ttft, 0.5).toFixed(0)} ms | ${quantile(ttft, 0.99).toFixed(0)} ms | ${wall.toFixed(1)} s |`,
      );
    }
    const t0 = performance.now();
    const seq = [];
    for (let i = 1; i <= 32; i++) seq.push(await stream(i));
    const wall = (performance.now() - t0) / 1000;
    const ttft = seq.map((x) => x.ttft);
    console.log(
      `| 32 | one at a time | ${(seq.reduce((a, x) => a + x.pieces, 0) / wall).toFixed(1)} | ${quantile(ttft, 0.5).toFixed(0)} ms | ${quantile(ttft, 0.99).toFixed(0)} ms | ${wall.toFixed(1)} s |`,
    );
  } finally {
    for (const p of procs) p.kill();
    services.stop();
  }
}
