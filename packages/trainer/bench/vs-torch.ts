// Crucible's trainer against a PyTorch GPT of the same shape, same data and same optimizer, in one
// invocation on one machine: the nanoGPT CPU configuration (2000 iterations) and gpt2-small at
// batch 4 x 1024 tokens (a few iterations; fully and with LoRA), at 1 and 2 threads. Prints ms/iter, tokens/s,
// validation losses, peak memory and the ratio. Installs Debian's python3-torch (with OpenBLAS)
// when missing; PyTorch is never a dependency of Crucible itself.
// NATIVE_PRECISION=bf16 runs Crucible's matrix products in bf16 (mixed precision; PyTorch stays float32).
// TORCH_OPENBLAS_CORETYPE=SkylakeX gives PyTorch's OpenBLAS its AVX-512 kernels where the environment pins
// older ones (OPENBLAS_CORETYPE); NATIVE_GEMM=openblas puts Crucible's products on OpenBLAS too (default: auto, the fastest measured).
// Usage: npm run bench:vs-torch [-- --crucible-only] [-- --only nano|gpt2|gpt2-lora] [-- --iters 2000] [-- --gpt2-iters 3] [-- --gpt2-block 1024] [-- --threads 1,2]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as T from '../src/index';
import { corpusPath } from './corpus';
import { flopsPerToken, sgemmPeak, utilisation } from './utilisation';

interface Shape {
  name: 'nano' | 'gpt2' | 'gpt2-lora';
  label: string;
  layers: number;
  heads: number;
  dmodel: number;
  block: number;
  batch: number;
  iters: number;
  evalInterval: number;
  evalBatches: number;
  /** LoRA rank on the attention projections (alpha = 2 x rank; base frozen); 0 = full training. */
  lora: number;
}

interface Result {
  impl: string;
  threads: number;
  ms_per_iter: number;
  wall_s: number;
  peak_rss_mb: number;
  evals: Array<[number, number]>;
  backend?: string;
  memory_at_end_mb?: Record<string, number>;
  /** useful floating-point operations per token (bench/utilisation.ts) */
  flops_per_token?: number;
  /** the best sgemm of the same process at the same threads */
  sgemm_peak?: { gflops: number; library: string };
}

const argv = process.argv.slice(2);
const arg = (k: string) => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : undefined;
};

if (argv[0] === '--crucible') {
  // child process: one Crucible run, one JSON line out
  const shape = JSON.parse(argv[1] as string) as Shape;
  const threads = Number(argv[2]);
  console.log(JSON.stringify(await crucibleRun(shape, threads)));
  process.exit(0);
}

const PY = '/usr/bin/python3';
// as the worker runs (package.json, infra/Dockerfile): a small young generation keeps a training
// loop's short-lived objects from piling up in the old generation (peak RSS, not speed)
const SEMI_SPACE = '--max-semi-space-size=4';
const nanoIters = Number(arg('--iters') ?? 2000);
const gpt2Block = Number(arg('--gpt2-block') ?? 1024);
const gpt2: Shape = {
  name: 'gpt2',
  label: `gpt2-small shape (12 layers, d 768, 4 x ${gpt2Block} tokens)`,
  layers: 12,
  heads: 12,
  dmodel: 768,
  block: gpt2Block,
  batch: 4,
  iters: Number(arg('--gpt2-iters') ?? 3),
  evalInterval: 0,
  evalBatches: 0,
  lora: 0,
};
const shapes: Shape[] = [
  {
    name: 'nano',
    label: 'nanoGPT CPU config (4 layers, d 128, 12 x 64 tokens)',
    layers: 4,
    heads: 4,
    dmodel: 128,
    block: 64,
    batch: 12,
    iters: nanoIters,
    evalInterval: 250,
    evalBatches: 20,
    lora: 0,
  },
  gpt2,
  { ...gpt2, name: 'gpt2-lora', label: `gpt2-small shape, LoRA r8 on the attention projections (4 x ${gpt2Block} tokens)`, lora: 8 },
].filter((s) => !arg('--only') || s.name === arg('--only')) as Shape[];
const threadCounts = (arg('--threads') ?? '1,2').split(',').map(Number);

const crucibleOnly = argv.includes('--crucible-only');
if (!crucibleOnly) ensureTorch();
const data = corpusPath();
const rows: string[] = [];
let backendUsed = '?';
for (const shape of shapes) {
  for (const threads of threadCounts) {
    const torch = crucibleOnly
      ? undefined
      : runJson(PY, [join(import.meta.dirname, 'torch_gpt.py'), ...torchArgs(shape, threads, data)], {
          OPENBLAS_NUM_THREADS: String(threads),
          OMP_NUM_THREADS: String(threads),
          OMP_WAIT_POLICY: 'passive',
          ...(process.env.TORCH_OPENBLAS_CORETYPE ? { OPENBLAS_CORETYPE: process.env.TORCH_OPENBLAS_CORETYPE } : {}),
        });
    const ours = runJson(process.execPath, [...process.execArgv, SEMI_SPACE, import.meta.filename, '--crucible', JSON.stringify(shape), String(threads)], {});
    backendUsed = ours.backend ?? backendUsed;
    const tokens = shape.batch * shape.block;
    for (const r of torch ? [torch, ours] : [ours]) {
      console.log(
        `${shape.name} ${threads}T ${r.impl.padEnd(9)} ${r.ms_per_iter.toFixed(1).padStart(9)} ms/iter ${((tokens * 1000) / r.ms_per_iter).toFixed(0).padStart(7)} tok/s  ${ours.flops_per_token ? `${utilisation(ours.flops_per_token, (tokens * 1000) / r.ms_per_iter, ours.sgemm_peak)}  ` : ''}peak ${r.peak_rss_mb.toFixed(0)} MB${r.memory_at_end_mb ? ` (at the end: JS heap ${r.memory_at_end_mb.heapTotal} MB, array buffers ${r.memory_at_end_mb.arrayBuffers} MB)` : ''}  wall ${r.wall_s.toFixed(0)} s  val ${fmtEvals(r.evals)}`,
      );
    }
    const maxGap = torch?.evals.length ? Math.max(...torch.evals.map(([, l], i) => Math.abs(l - (ours.evals[i]?.[1] ?? Number.NaN)))) : Number.NaN;
    rows.push(
      `| ${shape.name} | ${threads} | ${torch?.ms_per_iter.toFixed(1) ?? '-'} | ${ours.ms_per_iter.toFixed(1)} | **${torch ? (ours.ms_per_iter / torch.ms_per_iter).toFixed(2) : '-'}** | ${((tokens * 1000) / ours.ms_per_iter).toFixed(0)} | ${ours.flops_per_token && ours.sgemm_peak ? `${((100 * ours.flops_per_token * tokens * 1000) / ours.ms_per_iter / 1e9 / ours.sgemm_peak.gflops).toFixed(0)}%` : '-'} | ${torch?.peak_rss_mb.toFixed(0) ?? '-'} / ${ours.peak_rss_mb.toFixed(0)} MB | ${torch ? fmtEvals(torch.evals) : '-'} | ${fmtEvals(ours.evals)} | ${Number.isNaN(maxGap) ? '-' : maxGap.toFixed(3)} |`,
    );
  }
}
console.log(`\n--- result (${new Date().toISOString().slice(0, 10)}; Crucible on ${backendUsed}) ---`);
for (const s of shapes) console.log(`${s.name}: ${s.label}, ${s.iters} iterations`);
console.log(
  '| config | threads | PyTorch ms/iter | Crucible ms/iter | ratio (Crucible / PyTorch) | Crucible tokens/s | Crucible, share of the sgemm peak | peak RSS PyTorch / Crucible | PyTorch val loss | Crucible val loss | max val gap |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);

function fmtEvals(evals: Array<[number, number]>): string {
  return evals.length
    ? evals
        .filter(([s]) => s % 500 === 0)
        .map(([s, l]) => `${s}: ${l.toFixed(3)}`)
        .join(', ')
    : '-';
}

function torchArgs(s: Shape, threads: number, file: string): string[] {
  const a = {
    lora: s.lora,
    layers: s.layers,
    heads: s.heads,
    dmodel: s.dmodel,
    block: s.block,
    batch: s.batch,
    iters: s.iters,
    threads,
    'eval-interval': s.evalInterval,
    'eval-batches': s.evalBatches,
  };
  return ['--data', file, ...Object.entries(a).flatMap(([k, v]) => [`--${k}`, String(v)])];
}

function runJson(cmd: string, args: string[], env: Record<string, string>): Result {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 28 });
  const line = r.stdout
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (r.status !== 0 || !line) throw new Error(`${cmd} ${args.slice(0, 2).join(' ')} failed (${r.status}):\n${r.stderr.slice(-3000)}`);
  return JSON.parse(line) as Result;
}

function ensureTorch(): void {
  const probe = () => spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
  if (probe()) return;
  console.log('PyTorch missing: apt-get install -y python3-torch libopenblas0-pthread (the reference side only)');
  const r = spawnSync('apt-get', ['install', '-y', '-qq', 'python3-torch', 'libopenblas0-pthread'], { stdio: 'inherit' });
  if (r.status !== 0 || !probe()) throw new Error('could not install python3-torch; install it (as root) and run again');
}

async function crucibleRun(s: Shape, threads: number): Promise<Result> {
  const precision = (process.env.NATIVE_PRECISION as 'bf16' | undefined) ?? 'float32';
  const gemm = (process.env.NATIVE_GEMM as T.GemmChoice | undefined) ?? 'auto';
  const choice = await T.initBackend((process.env.TFJS_BACKEND as T.BackendName) ?? 'auto', () => {}, { nativeThreads: threads, precision, gemm });
  const text = readFileSync(corpusPath(), 'utf8');
  const tok = T.trainTokenizer(text, { type: 'char', specialTokens: [] });
  const data = T.trainValSplit(Int32Array.from(tok.encode(text)));
  const peft = s.lora
    ? { peft: { type: 'lora' as const, rank: s.lora, alpha: 2 * s.lora, dropout: 0, targets: ['attn.c_attn' as const, 'attn.c_proj' as const] } }
    : {};
  const mc = T.modelConfig({ arch: 'gpt', nLayer: s.layers, nHead: s.heads, dModel: s.dmodel, blockSize: s.block, ...peft }, tok.vocabSize);
  const model = T.Transformer.create(mc, 1337);
  const tc = T.defaultTrainConfig(mc, {
    maxSteps: s.iters,
    batchSize: s.batch,
    evalInterval: s.evalInterval,
    evalBatches: Math.max(1, s.evalBatches),
    maxGradNorm: 1,
    checkpointInterval: 0,
    schedule: { kind: 'cosine', lr: 1e-3, minLr: 1e-4, warmupSteps: 100, decaySteps: 2000 },
    optimizer: { kind: 'adamw', beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 },
  });
  const trainer = new T.Trainer(model, tok, tc, data);
  const times: number[] = [];
  const evals: Array<[number, number]> = [];
  const t0 = performance.now();
  await trainer.run({
    onStep: (m) => {
      times.push(m.ms);
    },
    onEval: (e) => {
      if (s.evalInterval > 0) evals.push([e.step, e.loss]);
    },
  });
  const sorted = [...times].sort((a, b) => a - b);
  const params = model.numParams();
  const trainable = [...model.trainable().values()].reduce((n, p) => n + p.size, 0);
  return {
    flops_per_token: flopsPerToken({ params, trainable, layers: s.layers, dModel: s.dmodel, seqLen: s.block }),
    sgemm_peak: sgemmPeak(),
    impl: 'crucible',
    backend: `${choice.name}${choice.native ? ` (${choice.native.isa}, products on ${choice.native.gemm}${choice.native.precision === 'bf16' ? ` in bf16 (${choice.native.bf16})` : ', float32'})` : ''}`,
    threads,
    ms_per_iter: sorted[Math.floor(sorted.length / 2)] as number,
    wall_s: (performance.now() - t0) / 1000,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    evals,
    memory_at_end_mb: Object.fromEntries(Object.entries(process.memoryUsage()).map(([key, v]) => [key, Math.round(v / 2 ** 20)])),
  };
}
