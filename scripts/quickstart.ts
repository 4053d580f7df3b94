// The quickstart: bring Crucible up on this machine with embedded defaults, create a project and
// API key, and run a real job end to end (upload Tiny Shakespeare, pretrain gpt-nano on it, then
// sample from the trained model). `--serve` keeps the API and worker running afterwards.
// SIGINT (Ctrl-C) or SIGTERM at any point stops the worker first (a running job saves a checkpoint
// and is queued again, to resume from it at the next start), then the API, then the local services.
// With `--base DIR` (an instruct model's Hugging Face folder on this machine), the job is a LoRA
// fine-tune of that model on a small chat dataset instead (scripts/quickstart-base.ts).
// CRUCIBLE_STATE_DIR: where the local services keep their data (default .crucible).
//   npm run quickstart [-- --steps 300] [-- --serve] [-- --embedded-postgres] [-- --base DIR]
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createProjectWithKey, startServer } from '@crucible/api';
import { deployMigrations, ensureDatabase } from '@crucible/db';
import { ConfigError } from '@crucible/domain';
import { Crucible } from '@crucible/sdk';
import { parseWorkerConfig, startWorker } from '@crucible/worker';
import { startLocalServices } from './local-services';
import { fineTuneBase } from './quickstart-base';

const root = resolve(import.meta.dirname, '..');
const arg = (name: string) => process.argv.includes(name);
const num = (name: string, d: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : d;
};
const str = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

async function main() {
  const services = await startLocalServices(process.env.CRUCIBLE_STATE_DIR ?? join(root, '.crucible'), process.env, {
    embeddedPostgres: arg('--embedded-postgres'),
  });
  for (const n of services.notes) console.log(`  ${n}`);
  const env: Record<string, string | undefined> = {
    ...process.env,
    ...services.env,
    PORT: process.env.PORT ?? '8080',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  };
  await ensureDatabase(env.DATABASE_URL as string);
  await deployMigrations(env.DATABASE_URL as string, (m) => console.log(`  ${m}`));
  const server = await startServer(env);
  const worker = await startWorker(parseWorkerConfig(env), (m) => console.log(`  [worker] ${m}`));
  const { secret, projectId } = await createProjectWithKey(server.deps.store, 'quickstart');
  const baseUrl = `${server.url}/v1`;
  console.log(`\nCrucible API: ${baseUrl}  (OpenAPI: ${server.url}/openapi.json, reference: ${server.url}/docs)`);
  console.log(`Dashboard: ${server.url}/dashboard/  (sign in with the key below)`);
  console.log(`Project ${projectId}, API key (shown once): ${secret}\n`);

  // worker first: its running job checkpoints and is queued again before the API and the services go
  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    (stopping ??= (async () => {
      await worker.close();
      await server.close();
      await services.stop();
    })());
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (stopping) return; // already stopping: let the checkpoint finish
      console.log(`\n${sig}: stopping the worker (a running job saves a checkpoint and resumes from it at the next start), then the API`);
      shutdown().then(
        () => {
          console.log('stopped');
          process.exit(0);
        },
        (err: Error) => {
          console.error(`stopping failed: ${err.message}`);
          process.exit(1);
        },
      );
    });
  }
  try {
    const crucible = new Crucible({ baseUrl, apiKey: secret });
    const baseDir = str('--base');
    if (baseDir) await baseDemo(crucible, resolve(baseDir), baseUrl, secret);
    else await pretrainDemo(crucible, baseUrl, secret);
  } catch (err) {
    if (stopping) return; // a signal is stopping everything: the job's failure to answer is that
    await shutdown();
    throw err;
  }
  if (arg('--serve')) {
    console.log('\nserving; Ctrl-C to stop');
  } else {
    await shutdown();
  }
}

/** With --base: an instruct model on this machine, fine-tuned with LoRA on chat data, then asked a question. */
async function baseDemo(crucible: Crucible, dir: string, baseUrl: string, secret: string) {
  const question = 'Who wrote Hamlet?';
  const r = await fineTuneBase(crucible, dir, {
    chatFile: join(root, 'data/quickstart-chat.jsonl'),
    steps: num('--steps', 60),
    question,
    onEvent: (e) => console.log(`  ${e.message}`),
    log: (line) => console.log(line),
  });
  console.log(`\nmodel ${r.model} (LoRA on ${r.base}), asked "${question}", says:\n\n${r.answer}\n`);
  console.log(
    `try it yourself:\n  curl ${baseUrl}/chat/completions -H 'authorization: Bearer ${secret}' -H 'content-type: application/json' \\\n    -d '{"model": "${r.model}", "messages": [{"role": "user", "content": "Where is Macbeth set?"}]}'`,
  );
}

/** The default job: pretrain gpt-nano on Tiny Shakespeare, then sample from it. */
async function pretrainDemo(crucible: Crucible, baseUrl: string, secret: string) {
  const text = readFileSync(join(root, 'data/tinyshakespeare.txt'), 'utf8').slice(0, num('--chars', 300_000));
  const file = await crucible.uploadFile({ name: 'tinyshakespeare.txt', data: text }, { purpose: 'pretrain' });
  console.log(`uploaded ${file.id} (${file.bytes} bytes)`);
  const steps = num('--steps', 300);
  const job = await crucible.createJob({
    model: 'gpt-nano',
    training_file: file.id,
    suffix: 'quickstart',
    seed: 1337,
    method: {
      type: 'pretrain',
      pretrain: {
        hyperparameters: {
          max_steps: steps,
          batch_size: 12,
          eval_interval: 100,
          eval_batches: 5,
          checkpoint_interval: 100,
          log_interval: 25,
          // byte-level BPE: every byte has a token, so the model can be fine-tuned on any text
          tokenizer: { type: 'bpe', vocab_size: 512 },
        },
      },
    },
  });
  console.log(`job ${job.id}: ${steps} steps of gpt-nano on ${text.length} characters\n`);
  const done = await crucible.waitForJob(job.id, { onEvent: (e) => console.log(`  ${e.message}`) });
  if (done.status !== 'succeeded') throw new Error(`job ${done.status}: ${JSON.stringify(done.error)}`);
  const sample = await crucible.createCompletion({ model: done.fine_tuned_model as string, prompt: 'ROMEO:', max_tokens: 200, temperature: 0.8, seed: 1 });
  console.log(`\nmodel ${done.fine_tuned_model} says:\n\nROMEO:${sample.choices[0]?.text}\n`);
  console.log(
    `try it yourself:\n  curl ${baseUrl}/completions -H 'authorization: Bearer ${secret}' -H 'content-type: application/json' \\\n    -d '{"model": "${done.fine_tuned_model}", "prompt": "JULIET:", "max_tokens": 100}'`,
  );
}

main().catch((err) => {
  console.error(`quickstart failed: ${err instanceof ConfigError ? err.message : (err as Error).message}`);
  process.exit(1);
});
