// The native addon's matrix products against a plain float64 product: Crucible's own (in each
// instruction-set variant the CPU can run) and oneDNN's and OpenBLAS's where built in, over random
// shapes with odd sizes and sizes across the cache blocks, all four transpose variants, leading
// dimensions larger than the rows, alpha and beta, at 1 and 2 threads; the bias of `linear`; and
// the auto choice's measured table.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { nativeKernels } from './native-backend';
import { rand, toBf16 } from './test-helpers';

const k = nativeKernels();
type Library = 'crucible' | 'onednn' | 'openblas';
const libraries: Library[] = k?.info().gemmLibraries ?? [];

interface Case {
  ta: boolean;
  tb: boolean;
  M: number;
  N: number;
  K: number;
  alpha: number;
  beta: number;
  /** extra columns in each operand's leading dimension */
  pad: number;
}

/**
 * Runs one case on a library; returns the worst error relative to sum |a||b| per cell. 'bf16' is
 * Crucible's bf16 kernel, against the product of the bf16-rounded operands.
 */
function worstError(lib: Library | 'auto' | 'bf16', c: Case, seed: number): number {
  if (!k) throw new Error('no addon');
  const { ta, tb, M, N, K, alpha, beta, pad } = c;
  // BLAS's rule: a leading dimension is at least 1, even for an empty operand
  const lda = Math.max(1, (ta ? M : K) + pad);
  const ldb = Math.max(1, (tb ? K : N) + pad);
  const ldc = Math.max(1, N + pad);
  const a = rand(Math.max(1, (ta ? K : M) * lda), seed);
  const b = rand(Math.max(1, (tb ? N : K) * ldb), seed + 1);
  const c0 = rand(M * ldc, seed + 2);
  // beta 0 must not read C: NaN there would leak into the result
  if (beta === 0) c0.fill(Number.NaN);
  const out = c0.slice();
  k.gemm(lib, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, out, ldc);
  const ra = lib === 'bf16' ? a.map(toBf16) : a;
  const rb = lib === 'bf16' ? b.map(toBf16) : b;
  let worst = 0;
  for (let i = 0; i < M; i++)
    for (let j = 0; j < ldc; j++) {
      const got = out[i * ldc + j] as number;
      if (j >= N) {
        // the padding between rows of C stays as it was
        if (!Object.is(got, c0[i * ldc + j])) return Number.POSITIVE_INFINITY;
        continue;
      }
      let sum = 0;
      let scale = 0;
      for (let p = 0; p < K; p++) {
        const x = (ta ? ra[p * lda + i] : ra[i * lda + p]) as number;
        const y = (tb ? rb[j * ldb + p] : rb[p * ldb + j]) as number;
        sum += x * y;
        scale += Math.abs(x * y);
      }
      const want = alpha * sum + (beta === 0 ? 0 : beta * (c0[i * ldc + j] as number));
      const err = Math.abs(got - want) / (Math.abs(alpha) * scale + Math.abs(beta * (beta === 0 ? 0 : (c0[i * ldc + j] as number))) + 1e-30);
      if (!(err <= worst)) worst = Number.isNaN(err) ? Number.POSITIVE_INFINITY : err;
    }
  return worst;
}

// sizes around the tiles (14 x 32, 6 x 16, 6 x 8) and blocks (K 256-384, M 112-144), narrow ones, and odd ones
const SHAPES: Array<[number, number, number]> = [
  [1, 1, 1],
  [1, 37, 5],
  [13, 1, 29],
  [14, 32, 7],
  [15, 33, 16],
  [29, 65, 1],
  [113, 47, 385],
  [150, 100, 260],
  [7, 515, 33],
  [260, 20, 9],
  [200, 16, 45], // narrow: a LoRA rank's width, run transposed
  [70, 3, 33],
  [0, 5, 3],
  [4, 6, 0],
];
const VARIANTS = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const;

function cases(): Case[] {
  const out: Case[] = [];
  SHAPES.forEach(([M, N, K], s) => {
    for (const [ta, tb] of VARIANTS) {
      out.push({ ta, tb, M, N, K, alpha: 1, beta: 0, pad: 0 });
      out.push({ ta, tb, M, N, K, alpha: s % 2 ? -0.5 : 1.75, beta: s % 3 ? 1 : -0.25, pad: 3 + (s % 5) });
    }
  });
  return out;
}

describe.skipIf(!k)('native matrix products against a float64 product', () => {
  for (const lib of ['crucible', 'onednn', 'openblas', 'auto'] as const) {
    it.skipIf(lib !== 'auto' && !libraries.includes(lib))(`${lib}: every transpose, stride, alpha and beta, at 1 and 2 threads`, () => {
      for (const threads of [1, 2]) {
        k?.setThreads(threads);
        for (const [i, c] of cases().entries()) {
          const worst = worstError(lib, c, 100 + i);
          expect(worst, `${lib}, ${threads} threads, ${JSON.stringify(c)}`).toBeLessThan(1e-6);
        }
      }
      k?.setThreads(1);
    });
  }

  it('a wrong leading dimension or a short array is refused, not read past', () => {
    if (!k) return;
    const a = new Float32Array(6);
    const c = new Float32Array(4);
    expect(() => k.gemm('crucible', false, false, 2, 2, 3, 1, a, 2, a, 2, 0, c, 2)).toThrow(/leading dimension/);
    expect(() => k.gemm('crucible', false, false, 2, 2, 4, 1, a, 4, a, 2, 0, c, 2)).toThrow(/shorter than the shapes/);
    expect(() => k.gemm('mkl' as 'crucible', false, false, 1, 1, 1, 1, a, 1, a, 1, 0, c, 1)).toThrow(/unknown library/);
  });

  it('linear adds its bias on every library', () => {
    if (!k) return;
    const [M, K, N] = [37, 70, 45];
    const x = rand(M * K, 1);
    const w = rand(N * K, 2);
    const bias = rand(N, 3);
    for (const lib of libraries) {
      k.setGemm(lib);
      for (const tw of [false, true]) {
        const y = new Float32Array(M * N);
        k.linear(x, w, bias, y, M, K, N, tw);
        let worst = 0;
        for (let i = 0; i < M; i++)
          for (let j = 0; j < N; j++) {
            let s = bias[j] as number;
            for (let p = 0; p < K; p++) s += (x[i * K + p] as number) * (tw ? (w[j * K + p] as number) : (w[p * N + j] as number));
            worst = Math.max(worst, Math.abs((y[i * N + j] as number) - s));
          }
        expect(worst, `${lib}, transposed ${tw}`).toBeLessThan(1e-4);
      }
    }
    k.setGemm('auto');
  });

  it("Crucible's product gives a row of C the same sums whatever the number of rows (continuous batching)", () => {
    if (!k) return;
    // wide and narrow (N at most one tile: its own path from 56 rows on), K over one block of k
    for (const [N, K] of [
      [384, 128],
      [4, 1000],
      [16, 1000],
      [40, 700],
      [3, 5],
    ] as const)
      for (const tb of [false, true])
        for (const threads of [1, 2]) {
          k.setThreads(threads);
          const A = rand(90 * K, N + K);
          const B = rand(K * N, N);
          const rows = (M: number) => {
            const c = new Float32Array(M * N);
            k.gemm('crucible', false, tb, M, N, K, 1, A, K, B, tb ? K : N, 0, c, N);
            return c;
          };
          const one = rows(1);
          for (const M of [2, 13, 14, 55, 56, 57, 90])
            expect(rows(M).subarray(0, N), `${N} x ${K}, transposed ${tb}, ${threads} threads, ${M} rows`).toEqual(one);
        }
    k.setThreads(1);
  });

  it('auto measures every library built in once per shape class and keeps the fastest', () => {
    if (!k) return;
    expect(k.setGemm('auto')).toBe('auto');
    expect(k.gemmTable()).toEqual([]);
    const [M, N, K] = [96, 80, 64];
    const a = rand(M * K, 4);
    const b = rand(K * (N + 20), 5);
    const c = new Float32Array(M * (N + 20));
    k.gemm('auto', false, true, M, N, K, 1, a, K, b, K, 0, c, N);
    k.gemm('auto', false, true, M - 5, N + 20, K, 1, a, K, b, K, 0, c, N + 20); // the same class (128, 128, 64)
    const table = k.gemmTable();
    if (libraries.length === 1) {
      expect(table, 'one library: nothing to measure').toEqual([]);
      return;
    }
    expect(table).toHaveLength(1);
    const [e] = table;
    expect(e).toMatchObject({ transA: false, transB: true, m: 128, n: 128, k: 64 });
    expect(Object.keys(e?.gflops ?? {}).sort()).toEqual([...libraries].sort());
    const fastest = Object.entries(e?.gflops ?? {}).sort((x, y) => y[1] - x[1])[0]?.[0];
    expect(e?.library).toBe(fastest);
    // pinning a library forgets the table
    expect(k.setGemm('crucible')).toBe('crucible');
    expect(k.gemmTable()).toEqual([]);
    k.setGemm('auto');
  });
});

// Crucible's own product in the older instruction sets this CPU can also run (picked at load)
describe.skipIf(!k)("Crucible's product in each instruction-set variant", () => {
  for (const isa of ['avx2', 'baseline'] as const) {
    it.skipIf(isa === 'avx2' && !k?.info().features.avx2)(`${isa}: odd shapes and every transpose against a float64 product`, () => {
      const script = `
        const { native: k } = require('@crucible/native-kernels');
        const out = { isa: k.info().gemmIsa, worst: 0 };
        let s = 7;
        const r = (n) => Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1);
        for (const t of [1, 2]) { k.setThreads(t);
        for (const [M, N, K] of [[1, 1, 1], [7, 17, 9], [37, 70, 300], [150, 33, 261], [70, 3, 33]])
          for (const ta of [false, true]) for (const tb of [false, true]) {
            const a = r(M * K), b = r(K * N), c = new Float32Array(M * N);
            k.gemm('crucible', ta, tb, M, N, K, 1, a, ta ? M : K, b, tb ? K : N, 0, c, N);
            for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
              let sum = 0, scale = 0;
              for (let p = 0; p < K; p++) { const x = ta ? a[p * M + i] : a[i * K + p], y = tb ? b[j * K + p] : b[p * N + j]; sum += x * y; scale += Math.abs(x * y); }
              out.worst = Math.max(out.worst, Math.abs(c[i * N + j] - sum) / scale);
            }
          } }
        console.log(JSON.stringify(out));`;
      const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, CRUCIBLE_GEMM_ISA: isa }, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { isa: string; worst: number };
      expect(out.isa).toMatch(isa === 'avx2' ? /^AVX2/ : /^baseline/);
      expect(out.worst).toBeLessThan(1e-6);
    });
  }
});

// Crucible's bf16 kernel (AVX512-BF16): both operands rounded to bf16, sums in float32
const ownBf16 = Boolean(k?.info().features.avx512bf16);
describe.skipIf(!ownBf16)(`Crucible's bf16 product (${ownBf16 ? 'AVX512-BF16' : 'skipped: this CPU has no AVX512-BF16'})`, () => {
  it('equals the product of the bf16-rounded operands: every transpose, stride, alpha and beta, at 1 and 2 threads', () => {
    for (const threads of [1, 2]) {
      k?.setThreads(threads);
      // past one block of k (1024 pairs' worth), and rows split over the threads with op(B) packed by
      // all of them together, over two blocks of columns (3072) and of k
      const wide = [
        { ta: true, tb: false, M: 45, N: 70, K: 1100, alpha: 1, beta: 0.5, pad: 1 },
        { ta: false, tb: true, M: 99, N: 3080, K: 1030, alpha: 1, beta: 0.5, pad: 2 },
        { ta: true, tb: false, M: 113, N: 3075, K: 1027, alpha: -0.5, beta: 0, pad: 0 },
      ];
      for (const [i, c] of [...cases(), ...(threads === 2 ? wide : wide.slice(0, 1))].entries()) {
        const worst = worstError('bf16', c, 300 + i);
        expect(worst, `${threads} threads, ${JSON.stringify(c)}`).toBeLessThan(1e-6);
      }
    }
    k?.setThreads(1);
  });

  it('rounds to nearest with ties to even, keeps NaN, and really rounds (hand-computed)', () => {
    if (!k) return;
    // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: to 1 (even); 1 + 3 x 2^-8 halfway between
    // 1 + 2^-7 and 1 + 2^-6: to 1 + 2^-6 (even); 1 + 2^-8 + 2^-12 is above the half: up to 1 + 2^-7
    const values = [1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -12, -(1 + 2 ** -8)];
    const want = [1, 1 + 2 ** -6, 1 + 2 ** -7, -1];
    // a 1 x K row times K x 32 of ones picks each value out alone: C[0][j] = a[j] when B = I-ish
    const K = values.length;
    const N = 32;
    const b = new Float32Array(K * N);
    for (let p = 0; p < K; p++) b[p * N + p] = 1;
    const c = new Float32Array(N);
    k.gemm('bf16', false, false, 1, N, K, 1, Float32Array.from(values), K, b, N, 0, c, N);
    expect(Array.from(c.slice(0, K))).toEqual(want);
    const nan = new Float32Array(N);
    k.gemm('bf16', false, false, 1, N, K, 1, Float32Array.from([Number.NaN, 1, 1, 1]), K, b, N, 0, nan, N);
    expect(Number.isNaN(nan[0])).toBe(true);
  });

  it('takes operands already in bf16 (toBf16) and gives the same numbers bit for bit', () => {
    if (!k) return;
    for (const [M, N, K] of [
      [37, 45, 71],
      [130, 33, 1030],
    ] as const)
      for (const [ta, tb] of VARIANTS) {
        const a = rand(M * K, M + K);
        const b = rand(K * N, N + K);
        const a16 = new Uint16Array(a.length);
        const b16 = new Uint16Array(b.length);
        k.toBf16(a, a16, a.length);
        k.toBf16(b, b16, b.length);
        // the conversion rounds as an independent rounding does
        expect(Array.from(a16.slice(0, 50), (u) => new Float32Array(new Uint32Array([u << 16]).buffer)[0])).toEqual(Array.from(a.slice(0, 50), toBf16));
        const lda = ta ? M : K;
        const ldb = tb ? K : N;
        const want = new Float32Array(M * N);
        k.gemm('bf16', ta, tb, M, N, K, 1, a, lda, b, ldb, 0, want, N);
        for (const [x, y] of [
          [a16, b],
          [a, b16],
          [a16, b16],
        ] as const) {
          const got = new Float32Array(M * N);
          k.gemmBf16(ta, tb, M, N, K, 1, x, lda, y, ldb, 0, got, N);
          expect(got, `${M} x ${N} x ${K}, ${ta} ${tb}, ${x.constructor.name} ${y.constructor.name}`).toEqual(want);
        }
      }
  });

  it("linearBf16Input keeps x in bf16 and gives linear's numbers bit for bit", () => {
    if (!k) return;
    k.setGemm('crucible');
    expect(k.setPrecision('bf16')).toBe('bf16');
    try {
      for (const [M, K, N] of [
        [37, 71, 45],
        [130, 1030, 33],
        [20, 64, 16], // 16 columns: float32, x still stored in bf16
      ] as const)
        for (const tw of [false, true]) {
          const x = rand(M * K, M + K);
          const w = rand(K * N, N);
          const bias = rand(N, 5);
          const want = new Float32Array(M * N);
          k.linear(x, w, bias, want, M, K, N, tw);
          const want16 = new Uint16Array(M * K);
          k.toBf16(x, want16, want16.length);
          const got = new Float32Array(M * N);
          const x16 = new Uint16Array(M * K);
          k.linearBf16Input(x, x16, w, bias, got, M, K, N, tw);
          expect(got, `${M} x ${K} x ${N}, transposed ${tw}`).toEqual(want);
          expect(x16).toEqual(want16);
        }
    } finally {
      k.setPrecision('float32');
      k.setGemm('auto');
    }
  });

  it("setPrecision('bf16') runs products wider than 16 columns on it, narrower ones in float32", () => {
    if (!k) return;
    const [M, K] = [50, 90];
    const a = rand(M * K, 11);
    const b = rand(K * 40, 12);
    const run = (lib: 'auto' | 'bf16' | 'crucible', N: number) => {
      const c = new Float32Array(M * N);
      k.gemm(lib, false, false, M, N, K, 1, a, K, b, N, 0, c, N);
      return c;
    };
    k.setGemm('crucible');
    expect(k.setPrecision('bf16')).toBe('bf16');
    try {
      expect(run('auto', 40)).toEqual(run('bf16', 40));
      expect(run('auto', 40)).not.toEqual(run('crucible', 40));
      expect(run('auto', 16)).toEqual(run('crucible', 16));
    } finally {
      k.setPrecision('float32');
      k.setGemm('auto');
    }
    expect(run('auto', 40)).not.toEqual(run('bf16', 40));
  });
});
