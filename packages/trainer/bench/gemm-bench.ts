// The native addon's matrix-product libraries side by side, in one run: Crucible's own (built with
// the C compiler alone) against oneDNN's and OpenBLAS's sgemm where the addon was built with them,
// on the products a training step runs (forward, and both products of the backward pass) for
// gpt2-small at 4 x 1024, a Qwen2.5-0.5B shape at 4 x 512 and the nanoGPT configuration (12 x 64
// tokens, d 128), in all
// four transpose variants, at 1 and 2 threads. Prints GFLOP/s per library (the best of several
// interleaved runs, each round in another order), Crucible's share of oneDNN's (or OpenBLAS's), the geometric means and the
// CPU's flags; and, where the CPU has AVX512-BF16, Crucible's bf16 kernel as one more column (its speed-up over the float32 kernel).
// Usage: npm run bench:gemm [-- --threads 1,2] [-- --only gpt2] [-- --seconds 0.3]
import { readFileSync } from 'node:fs';
import type { GemmLibrary } from '@crucible/native-kernels';
import { nativeKernels } from '../src/native-backend';

const k = nativeKernels();
if (!k) throw new Error('the native addon is not built (npm rebuild @crucible/native-kernels)');
const arg = (name: string, d: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? d) : d;
};
const threadCounts = arg('--threads', '1,2').split(',').map(Number);
const only = arg('--only', '');
const seconds = Number(arg('--seconds', '0.3'));

// [model, product, M, N, K]: y = x W (forward), dx = dy W^T and dW = x^T dy (backward) appear as
// the same (M, N, K) triples with other transposes; every triple runs in all four variants
const shapes: Array<[string, string, number, number, number]> = [
  ['gpt2', 'qkv', 4096, 2304, 768],
  ['gpt2', 'attn proj', 4096, 768, 768],
  ['gpt2', 'mlp up', 4096, 3072, 768],
  ['gpt2', 'mlp down', 4096, 768, 3072],
  ['gpt2', 'dW qkv', 768, 2304, 4096],
  ['gpt2', 'scores (per head)', 1024, 1024, 64],
  ['gpt2', 'probs x v (per head)', 1024, 64, 1024],
  ['gpt2', 'lm head (8k-vocab slice)', 4096, 8192, 768],
  ['qwen', 'q/o proj', 2048, 896, 896],
  ['qwen', 'k/v proj', 2048, 128, 896],
  ['qwen', 'mlp gate/up', 2048, 4864, 896],
  ['qwen', 'mlp down', 2048, 896, 4864],
  ['qwen', 'dW mlp', 896, 4864, 2048],
  ['qwen', 'lora A (r 16)', 2048, 16, 896],
  ['nano', 'qkv', 768, 384, 128],
  ['nano', 'mlp up', 768, 512, 128],
  ['nano', 'mlp down', 768, 128, 512],
  ['nano', 'dW mlp', 128, 512, 768],
  ['nano', 'lm head', 768, 65, 128],
  ['nano', 'scores (per head)', 64, 64, 32],
];

const libraries = k.info().gemmLibraries;
// Crucible's bf16 kernel as one more column where the CPU has AVX512-BF16 (operands rounded to bf16)
type Column = GemmLibrary | 'bf16';
const columns: Column[] = [...libraries, ...(k.info().features.avx512bf16 ? (['bf16'] as const) : [])];
const bf16Speedups = new Map<number, number[]>();
const reference = libraries.includes('onednn') ? 'onednn' : libraries.includes('openblas') ? 'openblas' : undefined;
const flags = (readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '').split(' ').filter((f) => /avx|amx|fma|bf16/.test(f));
console.log(
  `CPU: ${readFileSync('/proc/cpuinfo', 'utf8')
    .match(/^model name\s*:(.*)$/m)?.[1]
    ?.trim()}; flags: ${flags.join(' ')}`,
);
console.log(`libraries: ${libraries.join(', ')}; Crucible's kernel: ${k.info().gemmIsa}`);

const random = (n: number) => {
  const a = new Float32Array(n);
  let s = 1;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
};

const ratios = new Map<number, number[]>();
for (const threads of threadCounts) {
  k.setThreads(threads);
  console.log(`\n${threads} thread${threads > 1 ? 's' : ''}: GFLOP/s (best of interleaved runs)`);
  console.log(`| model | product | M x N x K | op | ${columns.join(' | ')} |${reference ? ` crucible / ${reference} |` : ''}`);
  console.log(`|---|---|---|---|${columns.map(() => '---:').join('|')}|${reference ? '---:|' : ''}`);
  for (const [model, product, M, N, K] of shapes) {
    if (only && model !== only) continue;
    const a = random(M * K);
    const b = random(K * N);
    const c = new Float32Array(M * N);
    const flops = 2 * M * N * K;
    for (const [ta, tb] of [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ] as const) {
      const run = (lib: Column) => {
        const t0 = performance.now();
        k.gemm(lib, ta, tb, M, N, K, 1, a, ta ? M : K, b, tb ? K : N, 0, c, N);
        return (performance.now() - t0) / 1000;
      };
      const best = new Map(columns.map((lib) => [lib, run(lib)]));
      const reps = Math.max(2, Math.min(20, Math.ceil(seconds / Math.max(...best.values()))));
      // each round starts at another library, so that none always runs right after one whose threads
      // still spin (OpenBLAS's busy-wait after a call)
      for (let r = 0; r < reps; r++)
        for (let i = 0; i < columns.length; i++) {
          const lib = columns[(r + i) % columns.length] as Column;
          best.set(lib, Math.min(best.get(lib) as number, run(lib)));
        }
      const gflops = columns.map((lib) => flops / (best.get(lib) as number) / 1e9);
      if (best.has('bf16')) bf16Speedups.set(threads, [...(bf16Speedups.get(threads) ?? []), (best.get('crucible') as number) / (best.get('bf16') as number)]);
      const ratio = reference ? (best.get(reference) as number) / (best.get('crucible') as number) : undefined;
      if (ratio) ratios.set(threads, [...(ratios.get(threads) ?? []), ratio]);
      const op = `${ta ? 'Aᵀ' : 'A'}${tb ? 'Bᵀ' : 'B'}`;
      console.log(
        `| ${model} | ${product} | ${M} x ${N} x ${K} | ${op} | ${gflops.map((g) => g.toFixed(1)).join(' | ')} |${ratio ? ` ${(100 * ratio).toFixed(0)}% |` : ''}`,
      );
    }
  }
}
const geomean = (xs: number[]) => Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
for (const [threads, rs] of ratios)
  console.log(
    `${threads} thread${threads > 1 ? 's' : ''}: Crucible at ${(100 * geomean(rs)).toFixed(1)}% of ${reference} (geometric mean of ${rs.length} products; lowest ${(100 * Math.min(...rs)).toFixed(0)}%)`,
  );
for (const [threads, rs] of bf16Speedups)
  console.log(
    `${threads} thread${threads > 1 ? 's' : ''}: Crucible's bf16 kernel at ${geomean(rs).toFixed(2)}x its float32 kernel (geometric mean of ${rs.length} products; lowest ${Math.min(...rs).toFixed(2)}x, highest ${Math.max(...rs).toFixed(2)}x)`,
  );
