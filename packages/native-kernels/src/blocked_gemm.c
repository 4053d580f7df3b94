// Crucible's own float32 matrix product, row-major C = alpha op(A) op(B) + beta C, in the layout of
// the BLIS papers (Goto and van de Geijn; Van Zee and van de Geijn): op(B) is packed in KC x NC
// blocks of NR-wide panels, op(A) in MC x KC blocks of MR-tall panels (both zero-padded, with the
// transposes resolved while packing), and a register-blocked microkernel multiplies one MR x KC
// panel by one KC x NR panel into an MR x NR tile of C held in registers.
//
// blocked_gemm_{v4,v3,base}.c compile this file once per instruction set with the tile that fits
// its registers; gemm.c picks the one the CPU supports. The vector code is written with GCC's
// vector extensions, so the one source serves 512-, 256- and 128-bit registers.
//
// Threads: C is split into as many row (or column) ranges as there are OpenMP threads, each computed
// with its own packing buffers. The sum over K runs in the same order whatever the thread count,
// so results do not depend on it. Inside a parallel region (per-head attention products) the
// product runs on the calling thread.
#ifndef CK_BLOCKED_GEMM
#error "compile through blocked_gemm_v4.c, blocked_gemm_v3.c or blocked_gemm_base.c"
#endif
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"

// VW floats per vector register, NV vectors per row of the tile: NR = VW * NV columns, MR rows.
// Blocks: KC of the sum per packed panel, MC rows of op(A) and NC columns of op(B) per packed block
// (defaults here; a variant may set its own).
#ifndef KC
#define KC 256
#endif
#ifndef MC
#define MC 144
#endif
#ifndef NC
#define NC 3072
#endif
#define NR (VW * NV)
typedef float vf __attribute__((vector_size(VW * 4)));
typedef float vfu __attribute__((vector_size(VW * 4), aligned(4)));

static inline vf load_u(const float* p) { return *(const vfu*)p; }
static inline void store_u(float* p, vf v) { *(vfu*)p = v; }

// Products smaller than this (in multiply-adds) stay on the calling thread.
#define PAR_MIN_FLOPS (1 << 18)

// tile = sum_k Ap[k][0..R) x Bp[k][0..V VW) over panels laid out MR rows and NR columns wide; then
// C = alpha tile + beta C over the first mr x nr. R and V are constants where this is inlined, so the
// accumulators live in registers; edge tiles use a smaller R and V instead of computing padding.
// beta == 0 never reads C (it may hold NaN).
static inline __attribute__((always_inline)) void tile(const int R, const int V, int64_t kc, const float* restrict Ap,
                                                       const float* restrict Bp, float* restrict C, int64_t ldc, float alpha, float beta,
                                                       int64_t mr, int64_t nr) {
  vf acc[MR][NV];
  for (int i = 0; i < R; i++)
    for (int j = 0; j < V; j++) acc[i][j] = (vf){0};
  for (int64_t k = 0; k < kc; k++) {
    vf b[NV];
    for (int j = 0; j < V; j++) b[j] = *(const vf*)(Bp + j * VW);
    for (int i = 0; i < R; i++)
      for (int j = 0; j < V; j++) acc[i][j] += b[j] * Ap[i];
    Ap += MR;
    Bp += NR;
  }
  if (mr == R && nr == V * VW) {
    for (int i = 0; i < R; i++)
      for (int j = 0; j < V; j++) {
        float* c = C + i * ldc + j * VW;
        vf r = acc[i][j] * alpha;
        store_u(c, beta == 0.0f ? r : r + load_u(c) * beta);
      }
    return;
  }
  float out[MR * NR] __attribute__((aligned(64)));
  for (int i = 0; i < R; i++)
    for (int j = 0; j < V; j++) *(vf*)(out + i * NR + j * VW) = acc[i][j];
  for (int64_t i = 0; i < mr && i < R; i++)
    for (int64_t j = 0; j < nr && j < V * VW; j++) {
      float* c = C + i * ldc + j;
      float r = alpha * out[i * NR + j];
      *c = beta == 0.0f ? r : r + beta * *c;
    }
}

// tile_R: R rows (at most MR) and as many vectors as hold nr columns
#define TILE_FOR_V(R)                                                                                                                        \
  static void tile_##R(int v, int64_t kc, const float* Ap, const float* Bp, float* C, int64_t ldc, float alpha, float beta, int64_t mr,    \
                       int64_t nr) {                                                                                                         \
    const int rows = (R) < MR ? (R) : MR;                                                                                                    \
    if (v >= NV) tile(rows, NV, kc, Ap, Bp, C, ldc, alpha, beta, mr, nr);                                                                    \
    else tile(rows, 1, kc, Ap, Bp, C, ldc, alpha, beta, mr, nr);                                                                             \
  }
TILE_FOR_V(MR)
TILE_FOR_V(8)
TILE_FOR_V(4)
TILE_FOR_V(2)
TILE_FOR_V(1)

// One MR x NR tile of C, or its first mr x nr at the edges: rows in chunks of 8, 4, 2 and 1, and
// only the vectors that hold columns.
static void microkernel(int64_t kc, const float* Ap, const float* Bp, float* C, int64_t ldc, float alpha, float beta, int64_t mr, int64_t nr) {
  int v = (int)((nr + VW - 1) / VW);
  if (mr == MR) {
    tile_MR(v, kc, Ap, Bp, C, ldc, alpha, beta, mr, nr);
    return;
  }
  for (int64_t r = 0; r < mr;) {
    int64_t left = mr - r;
    const float* a = Ap + r;
    float* c = C + r * ldc;
    if (left >= 8 && MR > 8) tile_8(v, kc, a, Bp, c, ldc, alpha, beta, 8, nr), r += 8;
    else if (left >= 4 && MR > 4) tile_4(v, kc, a, Bp, c, ldc, alpha, beta, 4, nr), r += 4;
    else if (left >= 2 && MR > 2) tile_2(v, kc, a, Bp, c, ldc, alpha, beta, 2, nr), r += 2;
    else tile_1(v, kc, a, Bp, c, ldc, alpha, beta, 1, nr), r += 1;
  }
}

// op(A)[m0 + i][k0 + k] for i < mc, k < kc into MR-tall panels: Ap[panel][k][0..MR), zero-padded.
static void pack_a(int ta, const float* A, int64_t lda, int64_t m0, int64_t k0, int64_t mc, int64_t kc, float* restrict Ap) {
  for (int64_t p = 0; p < mc; p += MR, Ap += MR * kc) {
    int64_t rows = mc - p < MR ? mc - p : MR;
    if (ta) {  // op(A)[m][k] = A[k][m]: each k reads rows consecutive floats
      for (int64_t k = 0; k < kc; k++) {
        const float* src = A + (k0 + k) * lda + m0 + p;
        float* dst = Ap + k * MR;
        int64_t i = 0;
        for (; i < rows; i++) dst[i] = src[i];
        for (; i < MR; i++) dst[i] = 0.0f;
      }
    } else {
      for (int64_t i = 0; i < rows; i++) {
        const float* src = A + (m0 + p + i) * lda + k0;
        for (int64_t k = 0; k < kc; k++) Ap[k * MR + i] = src[k];
      }
      for (int64_t i = rows; i < MR; i++)
        for (int64_t k = 0; k < kc; k++) Ap[k * MR + i] = 0.0f;
    }
  }
}

// op(B)[k0 + k][n0 + j] for k < kc, j < nc into NR-wide panels: Bp[panel][k][0..NR), zero-padded.
static void pack_b(int tb, const float* B, int64_t ldb, int64_t k0, int64_t n0, int64_t kc, int64_t nc, float* restrict Bp) {
  for (int64_t p = 0; p < nc; p += NR, Bp += NR * kc) {
    int64_t cols = nc - p < NR ? nc - p : NR;
    if (!tb) {  // rows of B are contiguous
      for (int64_t k = 0; k < kc; k++) {
        const float* src = B + (k0 + k) * ldb + n0 + p;
        float* dst = Bp + k * NR;
        if (cols == NR) {
          for (int j = 0; j < NV; j++) *(vf*)(dst + j * VW) = load_u(src + j * VW);
        } else {
          int64_t j = 0;
          for (; j < cols; j++) dst[j] = src[j];
          for (; j < NR; j++) dst[j] = 0.0f;
        }
      }
    } else {  // op(B)[k][n] = B[n][k]: each column j of the panel is a contiguous row of B
      for (int64_t j = 0; j < cols; j++) {
        const float* src = B + (n0 + p + j) * ldb + k0;
        for (int64_t k = 0; k < kc; k++) Bp[k * NR + j] = src[k];
      }
      for (int64_t j = cols; j < NR; j++)
        for (int64_t k = 0; k < kc; k++) Bp[k * NR + j] = 0.0f;
    }
  }
}

// Per-thread packing buffers, kept between calls (64-byte aligned for the vector loads).
static __thread void *buf_a, *buf_b;
static __thread size_t cap_a, cap_b;

static int round_up(int64_t x, int64_t to) { return (int)(((x + to - 1) / to) * to); }

// C[m0..m1, n0..n1) without buffers: only where the packing buffers could not be allocated.
static void gemm_unpacked(int ta, int tb, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K, float alpha, const float* A, int64_t lda,
                          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = m0; i < m1; i++)
    for (int64_t j = n0; j < n1; j++) {
      float s = 0.0f;
      for (int64_t k = 0; k < K; k++) s += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
      C[i * ldc + j] = beta == 0.0f ? alpha * s : alpha * s + beta * C[i * ldc + j];
    }
}

// C[m0..m1, n0..n1) on the calling thread.
static void gemm_range(int ta, int tb, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K, float alpha, const float* A, int64_t lda,
                      const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  int64_t M = m1 - m0, N = n1 - n0;
  int64_t kcMax = K < KC ? K : KC;
  float* Ap = ck_packing_buffer(&buf_a, &cap_a, (size_t)round_up(M < MC ? M : MC, MR) * kcMax * sizeof(float));
  float* Bp = ck_packing_buffer(&buf_b, &cap_b, (size_t)round_up(N < NC ? N : NC, NR) * kcMax * sizeof(float));
  if (!Ap || !Bp) {
    gemm_unpacked(ta, tb, m0, m1, n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  for (int64_t jc = 0; jc < N; jc += NC) {
    int64_t nc = N - jc < NC ? N - jc : NC;
    for (int64_t pc = 0; pc < K; pc += KC) {
      int64_t kc = K - pc < KC ? K - pc : KC;
      float b = pc == 0 ? beta : 1.0f;
      pack_b(tb, B, ldb, pc, n0 + jc, kc, nc, Bp);
      for (int64_t ic = 0; ic < M; ic += MC) {
        int64_t mc = M - ic < MC ? M - ic : MC;
        pack_a(ta, A, lda, m0 + ic, pc, mc, kc, Ap);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          int64_t nr = nc - jr < NR ? nc - jr : NR;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            int64_t mr = mc - ir < MR ? mc - ir : MR;
            microkernel(kc, Ap + ir * kc, Bp + jr * kc, C + (m0 + ic + ir) * ldc + n0 + jc + jr, ldc, alpha, b, mr, nr);
          }
        }
      }
    }
  }
}

// A product with at most one tile's width of columns (a LoRA down-projection: N = the rank) uses
// each row of op(A) for a single tile: packing it would cost as much as the product. With op(A) = A
// the rows are read in place (NARROW_ROWS at a time, R being a constant where inlined), and only
// op(B) is packed. The sums run in blocks of KC values of k, added into C block after block, as the
// tiled path's do: a row of C is the same whichever path computes it, so it does not depend on how
// many rows the product has (continuous batching relies on it).
#define NARROW_ROWS 6
static inline __attribute__((always_inline)) void narrow_tile(const int R, int64_t K, const float* A, int64_t lda, const float* Bp,
                                                              float* C, int64_t ldc, float alpha, float beta, int64_t nr) {
  const float* row[NARROW_ROWS];
  for (int i = 0; i < R; i++) row[i] = A + i * lda;
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    int64_t k1 = K - k0 < KC ? K : k0 + KC;
    vf acc[NARROW_ROWS][NV];
    for (int i = 0; i < R; i++)
      for (int j = 0; j < NV; j++) acc[i][j] = (vf){0};
    for (int64_t k = k0; k < k1; k++) {
      vf b[NV];
      for (int j = 0; j < NV; j++) b[j] = *(const vf*)(Bp + k * NR + j * VW);
      for (int i = 0; i < R; i++)
        for (int j = 0; j < NV; j++) acc[i][j] += b[j] * row[i][k];
    }
    float out[NARROW_ROWS * NR] __attribute__((aligned(64)));
    for (int i = 0; i < R; i++)
      for (int j = 0; j < NV; j++) *(vf*)(out + i * NR + j * VW) = acc[i][j];
    float b = k0 == 0 ? beta : 1.0f;  // the first block scales C by beta; the next ones add into it
    for (int64_t i = 0; i < R; i++)
      for (int64_t j = 0; j < nr && j < NR; j++) {
        float* c = C + i * ldc + j;
        float r = alpha * out[i * NR + j];
        *c = b == 0.0f ? r : r + b * *c;
      }
  }
}

static void narrow_rows(int64_t m0, int64_t m1, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* Bp,
                        float beta, float* C, int64_t ldc) {
  int64_t i = m0;
  for (; i + NARROW_ROWS <= m1; i += NARROW_ROWS)
    narrow_tile(NARROW_ROWS, K, A + i * lda, lda, Bp, C + i * ldc, ldc, alpha, beta, N);
  for (; i < m1; i++) narrow_tile(1, K, A + i * lda, lda, Bp, C + i * ldc, ldc, alpha, beta, N);
}

void CK_BLOCKED_GEMM(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                     float beta, float* C, int64_t ldc);

// With op(A) = A^T the rows of op(A) are columns in memory, slow to read in place: the product runs
// transposed instead, C^T = op(B)^T A, whose packing of A reads its rows, into a scratch N x M that
// is then added into C. Returns 0 when the scratch could not be allocated.
static int narrow_transposed(int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                             float beta, float* C, int64_t ldc) {
  float* t = malloc((size_t)(M * N) * sizeof(float));
  if (!t) return 0;
  CK_BLOCKED_GEMM(!tb, 0, N, M, K, alpha, B, ldb, A, lda, 0.0f, t, M);
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? t[j * M + i] : t[j * M + i] + beta * C[i * ldc + j];
  free(t);
  return 1;
}

// op(A) = A: its rows are read in place. Returns 0 when op(B)'s panel could not be allocated.
static int narrow(int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                  float beta, float* C, int64_t ldc, int threads) {
  float* Bp = aligned_alloc(64, ((size_t)(K * NR) * sizeof(float) + 63) / 64 * 64);
  if (!Bp) return 0;
  pack_b(tb, B, ldb, 0, 0, K, N, Bp);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    int t = omp_get_thread_num(), n = omp_get_num_threads();
    int64_t blocks = (M + NARROW_ROWS - 1) / NARROW_ROWS;
    int64_t lo = blocks * t / n * NARROW_ROWS, hi = blocks * (t + 1) / n * NARROW_ROWS;
    narrow_rows(lo, hi < M ? hi : M, N, K, alpha, A, lda, Bp, beta, C, ldc);
  }
  free(Bp);
  return 1;
}

void CK_BLOCKED_GEMM(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                    float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {  // C = beta C
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  int threads = omp_in_parallel() || (double)M * N * K < PAR_MIN_FLOPS ? 1 : omp_get_max_threads();
  if (N <= NR && M >= 4 * MR) {
    if (!ta && narrow(tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads)) return;
    if (ta && narrow_transposed(tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
  }
  int byRows;
  int64_t tiles;
  threads = ck_split(M, N, MR, NR, threads, &byRows, &tiles);
  if (threads <= 1) {
    gemm_range(ta, tb, 0, M, 0, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num(), n = omp_get_num_threads();
    int64_t lo = tiles * t / n, hi = tiles * (t + 1) / n;
    if (lo < hi && byRows) gemm_range(ta, tb, lo * MR, hi * MR < M ? hi * MR : M, 0, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    if (lo < hi && !byRows) gemm_range(ta, tb, 0, M, lo * NR, hi * NR < N ? hi * NR : N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
}
