// bench:ddp: data parallelism over Gloo on this machine. Each rank is its own process (1 native
// thread each) joined through the local Redis; prints the allreduce bandwidth, then the step time,
// the communication time per step and tokens/s of nano and gpt2-small with 1 and 2 ranks, and
// 1 rank with 2 threads (the same cores used by one process).
//   npm run bench:ddp [-- --steps 20 --models gpt-nano,gpt2-small]
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const { gloo, glooMissing } = createRequire(import.meta.url)('@crucible/collectives') as typeof import('@crucible/collectives');
if (!gloo) throw new Error(`bench:ddp needs Gloo: ${glooMissing}`);
const argv = process.argv.slice(2);
const opt = (k: string, d: string) => {
  const i = argv.indexOf(`--${k}`);
  return i >= 0 ? (argv[i + 1] as string) : d;
};
const steps = Number(opt('steps', '20'));
const models = opt('models', 'gpt-nano,gpt2-small').split(',');
const RANK = join(import.meta.dirname, 'ddp-rank.ts');
const TSX = join(import.meta.dirname, '../../../node_modules/.bin/tsx');

interface Report {
  params: number;
  losses: number[];
  stepMs: number[];
  commMs: number[];
  bandwidth?: { bytes: number; ms: number }[];
}

async function ranks(size: number, args: string[]): Promise<Report[]> {
  const prefix = `bench:ddp:${randomUUID()}`;
  const outs = Array.from({ length: size }, () => join(tmpdir(), `ddp-bench-${randomUUID()}.json`));
  await Promise.all(
    outs.map((out, rank) =>
      run(TSX, [RANK, '--rank', String(rank), '--size', String(size), '--prefix', prefix, '--out', out, '--no-params', ...args], {
        maxBuffer: 1 << 24,
        timeout: 1_800_000,
      }),
    ),
  );
  return outs.map((o) => JSON.parse(readFileSync(o, 'utf8')) as Report);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

console.log(`machine: ${cpus()[0]?.model} x ${cpus().length} cores; ranks are processes on this machine over loopback TCP`);
console.log('\nallreduce (2 ranks, float32, sum), ms per call and bus bandwidth 2(n-1)/n x bytes / time:');
const [bw] = await ranks(2, ['--bandwidth']);
for (const r of bw?.bandwidth ?? []) {
  const gbs = r.bytes / (r.ms / 1000) / 1e9; // n = 2: bus bandwidth = algorithm bandwidth
  console.log(`  ${(r.bytes / 2 ** 20).toFixed(2).padStart(6)} MiB: ${r.ms.toFixed(2).padStart(8)} ms, ${gbs.toFixed(2)} GB/s`);
}

const SHAPES: Record<string, { batch: number; seq: number }> = { 'gpt-nano': { batch: 8, seq: 64 }, 'gpt2-small': { batch: 2, seq: 64 } };
console.log(`\ntraining, ${steps} steps (median of the steps after the first 3):`);
console.log('| model | params | run | global batch | step ms | comm ms/step | tokens/s |');
console.log('|---|---|---|---|---|---|---|');
for (const model of models) {
  const { batch, seq } = SHAPES[model] ?? { batch: 4, seq: 64 };
  const common = ['--model', model, '--seq', String(seq), '--steps', String(steps), '--checkpoint-interval', '0'];
  const row = (label: string, reps: Report[], globalBatch: number) => {
    const r0 = reps[0] as Report;
    const step = median(r0.stepMs.slice(3));
    const comm = median(r0.commMs.slice(3));
    console.log(
      `| ${model} | ${(r0.params / 1e6).toFixed(1)} M | ${label} | ${globalBatch} x ${seq} | ${step.toFixed(0)} | ${comm.toFixed(1)} | ${((globalBatch * seq * 1000) / step).toFixed(0)} |`,
    );
  };
  row('1 rank, 1 thread', await ranks(1, [...common, '--batch', String(batch), '--threads', '1']), batch);
  row('1 rank, 2 threads', await ranks(1, [...common, '--batch', String(2 * batch), '--threads', '2']), 2 * batch);
  row(
    '2 ranks, 1 thread each, allreduce after the backward',
    await ranks(2, [...common, '--batch', String(batch), '--threads', '1', '--no-overlap']),
    2 * batch,
  );
  row('2 ranks, 1 thread each, allreduce during the backward', await ranks(2, [...common, '--batch', String(batch), '--threads', '1']), 2 * batch);
}
