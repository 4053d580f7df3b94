// Crucible's own bf16 matrix product for CPUs with AVX512-BF16: row-major C = alpha op(A) op(B) + beta C
// with both operands rounded to bfloat16 (to nearest even, as the VCVTNEPS2BF16 instruction does)
// and every sum accumulated in float32. The blocking is blocked_gemm.c's (BLIS); what differs is the
// packing and the microkernel:
// - operands are rounded while they are packed, so the conversion costs no pass of its own and no
//   bf16 copy of a tensor is ever allocated: packing reads every operand once per block anyway;
// - a packed panel holds pairs of consecutive k, the layout of VDPBF16PS, which multiplies 16 pairs
//   of bf16 per instruction and adds both products to one float32 lane: twice the multiply-adds of
//   a float32 FMA, from half the bytes;
// - the tile is 14 x 32 (28 accumulators in the 32 zmm registers), as float32's.
// Threads split C by rows or columns as in blocked_gemm.c, so results do not depend on their count.
#include "bf16_gemm.h"

#include "gemm.h"

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && (__GNUC__ >= 10 || defined(__clang__))
#include <cpuid.h>

// (compiled for any x86-64: it runs before anything else here is allowed to)
// AVX512-BF16 is CPUID leaf 7, sub-leaf 1, EAX bit 5; the AVX-512 state the OS saves is checked by
// __builtin_cpu_supports for AVX512F.
int ck_bf16_kernel_supported(void) {
  unsigned a, b, c, d;
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vl")) return 0;
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
  return (a >> 5) & 1;
}

#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")
#include <immintrin.h>

#define MR CK_BF16_MR
#define NR CK_BF16_NR
#define KC 1024  // k per packed block (even): measured best here from 192 to 2048 (fewer passes over C)
#define MC 112
#define NC 3072
#define PAR_MIN_FLOPS (1 << 18)

// (ck_bf16_bits, bf16_gemm.h: the instruction's rounding written out, for the ends of rows; the
// rest uses the instruction)
float ck_bf16_round(float x) { return ck_bf16_float(ck_bf16_bits(x)); }

static inline uint32_t pair(float lo, float hi) { return (uint32_t)ck_bf16_bits(lo) | ((uint32_t)ck_bf16_bits(hi) << 16); }

// A store of 16 32-bit lanes under a mask: a plain store when every lane is written. Masked stores
// to memory are slow on some CPUs (on the AMD EPYC development VM, plain ones made a gpt2-small bf16
// step 2-5% faster, measured side by side), and the packers store every pair through here.
static inline void store16(uint32_t* dst, __mmask16 m, __m512i v) {
  if (m == 0xffff) _mm512_storeu_si512(dst, v);
  else _mm512_mask_storeu_epi32(dst, m, v);
}

// 16 pairs from two rows of 16 floats: lane j = (lo[j], hi[j]) as bf16.
static inline __m512i pairs16(__m512 lo, __m512 hi) {
  __m512i l = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(lo));
  __m512i h = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(hi));
  return _mm512_or_si512(l, _mm512_slli_epi32(h, 16));
}

// r[i] lane j -> r[j] lane i: a 16 x 16 transpose of 32-bit lanes (pairs within 128-bit lanes, then
// the 128-bit lanes themselves).
static inline void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 16; i += 2) t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]), t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  for (int i = 0; i < 16; i += 4) {
    u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]), u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]), u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // u[4g + j], 128-bit lane L: column 4L + j of rows 4g..4g+3
  for (int j = 0; j < 4; j++) {
    __m512i v0 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x88), v1 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xdd);
    __m512i v2 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x88), v3 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xdd);
    r[j] = _mm512_shuffle_i32x4(v0, v2, 0x88), r[8 + j] = _mm512_shuffle_i32x4(v0, v2, 0xdd);
    r[4 + j] = _mm512_shuffle_i32x4(v1, v3, 0x88), r[12 + j] = _mm512_shuffle_i32x4(v1, v3, 0xdd);
  }
}

// Panel entries dst[q * width + i] = pair q (values 2q and 2q + 1, the second 0 past kc) of line i,
// for lines i < width (zeros from n on) and pairs q < (kc + 1) / 2, where line i's kc values run
// contiguously from f + i * ld (float32, rounded here) or h + i * ld (bf16). Sixteen lines and
// sixteen pairs at a time go through a register transpose, so every store writes 16 lines' pair.
static void pack_lines(const float* f, const uint16_t* h, int64_t ld, int64_t n, int64_t kc, int64_t width, uint32_t* restrict dst) {
  int64_t kp = (kc + 1) / 2, q16 = kc / 2 / 16 * 16;
  for (int64_t i0 = 0; i0 < width; i0 += 16) {
    int64_t lanes = width - i0 < 16 ? width - i0 : 16;
    __mmask16 m = (__mmask16)((1u << lanes) - 1);
    for (int64_t q = 0; q < q16; q += 16) {
      __m512i r[16];
      for (int64_t i = 0; i < 16; i++) {
        int64_t line = i0 + i;
        if (line >= n) r[i] = _mm512_setzero_si512();
        else if (f) r[i] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(f + line * ld + 2 * q + 16), _mm512_loadu_ps(f + line * ld + 2 * q));
        else r[i] = _mm512_loadu_si512(h + line * ld + 2 * q);
      }
      transpose16(r);
      for (int64_t j = 0; j < 16; j++) store16(dst + (q + j) * width + i0, m, r[j]);
    }
  }
  for (int64_t i = 0; i < width; i++)  // the pairs after the last 16
    for (int64_t q = q16; q < kp; q++) {
      uint32_t v = 0;
      if (i < n && f) v = pair(f[i * ld + 2 * q], 2 * q + 1 < kc ? f[i * ld + 2 * q + 1] : 0.0f);
      if (i < n && h) v = (uint32_t)h[i * ld + 2 * q] | (2 * q + 1 < kc ? (uint32_t)h[i * ld + 2 * q + 1] << 16 : 0u);
      dst[q * width + i] = v;
    }
}

// Panel entries dst[q * width + i] = pair q of line i (values 2q and 2q + 1 of k, the second 0 past
// kc), panel after panel of `width` lines, zeros from line n on, where value k of line i is f[k * ld
// + i], rounded here: two rows of k give 16 lines' pairs per vector, and each row is read once for
// every panel.
static void pack_rows(const float* f, int64_t ld, int64_t n, int64_t kc, int64_t width, uint32_t* restrict dst) {
  int64_t kp = (kc + 1) / 2;
  for (int64_t q = 0; q < kp; q++) {
    const float* r0 = f + 2 * q * ld;
    const float* r1 = 2 * q + 1 < kc ? r0 + ld : NULL;
    for (int64_t p = 0; p < n; p += width)
      for (int64_t j = 0; j < width; j += 16) {
        int64_t lanes = width - j < 16 ? width - j : 16, have = n - p - j;
        have = have < 0 ? 0 : have < lanes ? have : lanes;
        __mmask16 m = (__mmask16)((1u << have) - 1);
        __m512 lo = _mm512_maskz_loadu_ps(m, r0 + p + j);
        __m512 hi = r1 ? _mm512_maskz_loadu_ps(m, r1 + p + j) : _mm512_setzero_ps();
        store16(dst + (p / width) * width * kp + q * width + j, (__mmask16)((1u << lanes) - 1), pairs16(lo, hi));
      }
  }
}

// op(B)[k0 + k][n0 + j] for k < kc, j < nc into 32-wide panels of k pairs: Bp[panel][k / 2][j] is the
// 32-bit pair (k, k + 1) of column j; zero-padded in j and in an odd last k.
static void pack_b(int tb, const float* B, int64_t ldb, int64_t k0, int64_t n0, int64_t kc, int64_t nc, uint32_t* restrict Bp) {
  if (!tb) {  // rows of op(B) are contiguous
    pack_rows(B + k0 * ldb + n0, ldb, nc, kc, NR, Bp);
    return;
  }
  int64_t kp = (kc + 1) / 2;
  for (int64_t p = 0; p < nc; p += NR, Bp += NR * kp)  // op(B)[k][n] = B[n][k]: a pair is two adjacent floats of a row of B
    pack_lines(B + (n0 + p) * ldb + k0, NULL, ldb, nc - p < NR ? nc - p : NR, kc, NR, Bp);
}

// op(A)[m0 + i][k0 + k] for i < mc, k < kc into 14-tall panels of k pairs: Ap[panel][k / 2][i].
static void pack_a(int ta, const float* A, int64_t lda, int64_t m0, int64_t k0, int64_t mc, int64_t kc, uint32_t* restrict Ap) {
  if (ta) {  // op(A)[m][k] = A[k][m]: rows of A run along m
    pack_rows(A + k0 * lda + m0, lda, mc, kc, MR, Ap);
    return;
  }
  int64_t kp = (kc + 1) / 2;
  for (int64_t p = 0; p < mc; p += MR, Ap += MR * kp)  // a pair is two adjacent floats of a row of A
    pack_lines(A + (m0 + p) * lda + k0, NULL, lda, mc - p < MR ? mc - p : MR, kc, MR, Ap);
}

// The same panels from operands already stored as bf16 (uint16: a weight's copy made once per
// optimizer step, an activation saved in bf16): only a regrouping of 16-bit values into pairs, no
// rounding. Panels of `width` lines (rows of op(A) or columns of op(B)) over kc values of k, from element
// (line i, k) at src[k * ld + i] (k_major) or src[i * ld + k]: each entry two consecutive k of a line.
static void pack_pairs16(int k_major, const uint16_t* src, int64_t ld, int64_t i0, int64_t k0, int64_t lines, int64_t kc, int64_t width,
                         uint32_t* restrict dst) {
  int64_t kp = (kc + 1) / 2;
  if (!k_major) {  // a pair is two adjacent values of a line
    for (int64_t p = 0; p < lines; p += width, dst += width * kp)
      pack_lines(NULL, src + (i0 + p) * ld + k0, ld, lines - p < width ? lines - p : width, kc, width, dst);
    return;
  }
  // pack_rows's layout from bf16 rows: two rows of k give the pairs of up to 32 lines at a time (an
  // interleave of 16-bit lanes; lane j of the low half: (a[j], b[j]), of the high half: (a[16 + j],
  // b[16 + j])), for every panel: each row is read once
  const __m512i lo_idx = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2,
                                          33, 1, 32, 0);
  const __m512i hi_idx = _mm512_add_epi16(lo_idx, _mm512_set1_epi16(16));
  __mmask16 wlo = width >= 16 ? 0xffff : (__mmask16)((1u << width) - 1), whi = width >= 32 ? 0xffff : width > 16 ? (__mmask16)((1u << (width - 16)) - 1) : 0;
  for (int64_t q = 0; q < kp; q++) {
    const uint16_t* r0 = src + (k0 + 2 * q) * ld + i0;
    int second = 2 * q + 1 < kc;
    for (int64_t p = 0; p < lines; p += width) {
      int64_t n = lines - p < width ? lines - p : width;
      __mmask32 m = n >= 32 ? 0xffffffffu : (__mmask32)((1u << n) - 1);
      __m512i a = _mm512_maskz_loadu_epi16(m, r0 + p);
      __m512i b = second ? _mm512_maskz_loadu_epi16(m, r0 + ld + p) : _mm512_setzero_si512();
      uint32_t* d = dst + (p / width) * width * kp + q * width;
      store16(d, wlo, _mm512_permutex2var_epi16(a, lo_idx, b));
      if (whi) store16(d + 16, whi, _mm512_permutex2var_epi16(a, hi_idx, b));
    }
  }
}

// The 14 x 32 tile of kp pairs; C = alpha tile + beta C over its first mr x nr (beta 0 never reads C),
// then + bias[j] on every row when bias is given (the last block of k of a linear layer's product:
// the sums and roundings of adding it to C afterwards, without another pass over C).
static void microkernel(int64_t kp, const uint32_t* restrict Ap, const uint32_t* restrict Bp, float* restrict C, int64_t ldc, float alpha,
                        float beta, int64_t mr, int64_t nr, const float* restrict bias) {
  __m512 acc[MR][2];
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t q = 0; q < kp; q++) {
    __m512bh b0 = (__m512bh)_mm512_load_si512(Bp), b1 = (__m512bh)_mm512_load_si512(Bp + 16);
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
      __m512bh a = (__m512bh)_mm512_set1_epi32((int)Ap[i]);
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], a, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], a, b1);
    }
    Ap += MR;
    Bp += NR;
  }
  __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int64_t i = 0; i < mr; i++)
    for (int h = 0; h < 2; h++) {
      int64_t n = nr - 16 * h;
      if (n <= 0) break;
      __mmask16 m = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
      float* c = C + i * ldc + 16 * h;
      __m512 r = _mm512_mul_ps(acc[i][h], va);
      if (beta != 0.0f) r = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, c), vb, r);
      if (bias) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(m, bias + 16 * h));
      store16((uint32_t*)c, m, _mm512_castps_si512(r));
    }
}

static __thread void *buf_a, *buf_b;
static __thread size_t cap_a, cap_b;

static int64_t round_up(int64_t x, int64_t to) { return ((x + to - 1) / to) * to; }

// An operand: float32 (rounded as it is packed) or bf16 already.
typedef struct {
  const void* p;
  int bf16;
} operand;

static inline float element(operand x, int64_t i) {
  if (!x.bf16) return ck_bf16_round(((const float*)x.p)[i]);
  return ck_bf16_float(((const uint16_t*)x.p)[i]);
}

// C[m0..m1, n0..n1) without buffers, the same sums: only where the packing buffers could not be allocated.
static void gemm_unpacked(int ta, int tb, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K, float alpha, operand A, int64_t lda,
                          operand B, int64_t ldb, float beta, float* C, int64_t ldc, const float* bias) {
  for (int64_t i = m0; i < m1; i++)
    for (int64_t j = n0; j < n1; j++) {
      float s = 0.0f;
      for (int64_t k = 0; k < K; k++) s += element(A, ta ? k * lda + i : i * lda + k) * element(B, tb ? j * ldb + k : k * ldb + j);
      C[i * ldc + j] = beta == 0.0f ? alpha * s : alpha * s + beta * C[i * ldc + j];
      if (bias) C[i * ldc + j] += bias[j];
    }
}

// op(B)'s columns n0 .. n0 + n over kc values of k from pc, into panels at Bp.
static void pack_b_operand(int tb, operand B, int64_t ldb, int64_t pc, int64_t n0, int64_t kc, int64_t n, uint32_t* restrict Bp) {
  if (B.bf16) pack_pairs16(!tb, B.p, ldb, n0, pc, n, kc, NR, Bp);  // op(B)'s columns: k-major unless transposed
  else pack_b(tb, B.p, ldb, pc, n0, kc, n, Bp);
}

// C[m0..m1, n0..n1) on the calling thread.
static void gemm_range(int ta, int tb, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K, float alpha, operand A, int64_t lda,
                       operand B, int64_t ldb, float beta, float* C, int64_t ldc, const float* bias) {
  int64_t M = m1 - m0, N = n1 - n0;
  int64_t kpMax = ((K < KC ? K : KC) + 1) / 2;
  uint32_t* Ap = ck_packing_buffer(&buf_a, &cap_a, (size_t)(round_up(M < MC ? M : MC, MR) * kpMax) * sizeof(uint32_t));
  uint32_t* Bp = ck_packing_buffer(&buf_b, &cap_b, (size_t)(round_up(N < NC ? N : NC, NR) * kpMax) * sizeof(uint32_t));
  if (!Ap || !Bp) {
    gemm_unpacked(ta, tb, m0, m1, n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc, bias);
    return;
  }
  for (int64_t jc = 0; jc < N; jc += NC) {
    int64_t nc = N - jc < NC ? N - jc : NC;
    for (int64_t pc = 0; pc < K; pc += KC) {
      int64_t kc = K - pc < KC ? K - pc : KC, kp = (kc + 1) / 2;
      float b = pc == 0 ? beta : 1.0f;
      pack_b_operand(tb, B, ldb, pc, n0 + jc, kc, nc, Bp);
      for (int64_t ic = 0; ic < M; ic += MC) {
        int64_t mc = M - ic < MC ? M - ic : MC;
        if (A.bf16) pack_pairs16(ta, A.p, lda, m0 + ic, pc, mc, kc, MR, Ap);  // op(A)'s rows: k-major when transposed
        else pack_a(ta, A.p, lda, m0 + ic, pc, mc, kc, Ap);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          int64_t nr = nc - jr < NR ? nc - jr : NR;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            int64_t mr = mc - ir < MR ? mc - ir : MR;
            microkernel(kp, Ap + ir * kp, Bp + jr * kp, C + (m0 + ic + ir) * ldc + n0 + jc + jr, ldc, alpha, b, mr, nr,
                        bias && pc + KC >= K ? bias + n0 + jc + jr : NULL);
          }
        }
      }
    }
  }
}

static __thread void* buf_shared;
static __thread size_t cap_shared;

// Rows split over the threads with op(B)'s block packed once, by all of them: each packs its share
// of the panels into one shared buffer (Bp, from the calling thread), and after a barrier each runs
// its rows against all of it, instead of each thread packing the whole block for itself (a weight
// gradient's product, 768 x 2304 x 4096, went from 770 to 795 GFLOP/s at two threads). Returns 0,
// having written nothing, when a thread's buffer for op(A) could not be allocated.
static int gemm_rows_shared_b(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, operand A, int64_t lda, operand B, int64_t ldb,
                              float beta, float* C, int64_t ldc, const float* bias, int threads, int64_t tiles, uint32_t* Bp) {
  int64_t kpMax = ((K < KC ? K : KC) + 1) / 2;
  int failed = 0;
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num(), n = omp_get_num_threads();
    int64_t m0 = tiles * t / n * MR, m1 = tiles * (t + 1) / n * MR;
    m1 = m1 < M ? m1 : M;
    int64_t rows = m1 - m0;
    uint32_t* Ap = ck_packing_buffer(&buf_a, &cap_a, (size_t)(round_up(rows < MC ? rows : MC, MR) * kpMax) * sizeof(uint32_t));
    if (!Ap && rows > 0) {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp barrier
    int ok;
#pragma omp atomic read
    ok = failed;
    ok = !ok;
    for (int64_t jc = 0; ok && jc < N; jc += NC) {
      int64_t nc = N - jc < NC ? N - jc : NC, panels = (nc + NR - 1) / NR;
      for (int64_t pc = 0; pc < K; pc += KC) {
        int64_t kc = K - pc < KC ? K - pc : KC, kp = (kc + 1) / 2;
        float b = pc == 0 ? beta : 1.0f;
        int64_t p0 = panels * t / n * NR, p1 = panels * (t + 1) / n * NR;
        p1 = p1 < nc ? p1 : nc;
        if (p0 < p1) pack_b_operand(tb, B, ldb, pc, jc + p0, kc, p1 - p0, Bp + p0 * kp);
#pragma omp barrier
        for (int64_t ic = 0; ic < rows; ic += MC) {
          int64_t mc = rows - ic < MC ? rows - ic : MC;
          if (A.bf16) pack_pairs16(ta, A.p, lda, m0 + ic, pc, mc, kc, MR, Ap);
          else pack_a(ta, A.p, lda, m0 + ic, pc, mc, kc, Ap);
          for (int64_t jr = 0; jr < nc; jr += NR) {
            int64_t nr = nc - jr < NR ? nc - jr : NR;
            for (int64_t ir = 0; ir < mc; ir += MR) {
              int64_t mr = mc - ir < MR ? mc - ir : MR;
              microkernel(kp, Ap + ir * kp, Bp + jr * kp, C + (m0 + ic + ir) * ldc + jc + jr, ldc, alpha, b, mr, nr,
                          bias && pc + KC >= K ? bias + jc + jr : NULL);
            }
          }
        }
#pragma omp barrier
      }
    }
  }
  return !failed;
}

int ck_bf16_gemm_operands(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const void* Ap, int a_bf16, int64_t lda, const void* Bp,
                          int b_bf16, int64_t ldb, float beta, float* C, int64_t ldc, const float* bias) {
  operand A = {Ap, a_bf16}, B = {Bp, b_bf16};
  if (M <= 0 || N <= 0 || K <= 0 || alpha == 0.0f) return 0;  // the caller's float32 path handles C = beta C
  int threads = omp_in_parallel() || (double)M * N * K < PAR_MIN_FLOPS ? 1 : omp_get_max_threads();
  int byRows;
  int64_t tiles;
  threads = ck_split(M, N, MR, NR, threads, &byRows, &tiles);
  if (threads <= 1) {
    gemm_range(ta, tb, 0, M, 0, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias);
    return 1;
  }
  if (byRows) {
    int64_t kpMax = ((K < KC ? K : KC) + 1) / 2;
    uint32_t* shared = ck_packing_buffer(&buf_shared, &cap_shared, (size_t)(round_up(N < NC ? N : NC, NR) * kpMax) * sizeof(uint32_t));
    if (shared && gemm_rows_shared_b(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias, threads, tiles, shared)) return 1;
  }
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num(), n = omp_get_num_threads();
    int64_t lo = tiles * t / n, hi = tiles * (t + 1) / n;
    if (lo < hi && byRows) gemm_range(ta, tb, lo * MR, hi * MR < M ? hi * MR : M, 0, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias);
    if (lo < hi && !byRows) gemm_range(ta, tb, 0, M, lo * NR, hi * NR < N ? hi * NR : N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias);
  }
  return 1;
}

int ck_bf16_blocked_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                         float beta, float* C, int64_t ldc) {
  return ck_bf16_gemm_operands(ta, tb, M, N, K, alpha, A, 0, lda, B, 0, ldb, beta, C, ldc, NULL);
}

// ---- operands packed once and used by many products (flash attention's blocks) ----

void ck_bf16_pack_a(int ta, const float* A, int64_t lda, int64_t rows, int64_t K, uint32_t* dst) {
  pack_a(ta, A, lda, 0, 0, rows, K, dst);
}

void ck_bf16_pack_b(int tb, const float* B, int64_t ldb, int64_t K, int64_t cols, uint32_t* dst) { pack_b(tb, B, ldb, 0, 0, K, cols, dst); }

void ck_bf16_tiles(int64_t M, int64_t N, int64_t kp, const uint32_t* Ap, int64_t aStride, const uint32_t* Bp, int64_t bStride, float alpha,
                   float beta, float* C, int64_t ldc) {
  for (int64_t jr = 0; jr < N; jr += NR)
    for (int64_t ir = 0; ir < M; ir += MR)
      microkernel(kp, Ap + ir / MR * aStride, Bp + jr / NR * bStride, C + ir * ldc + jr, ldc, alpha, beta, M - ir < MR ? M - ir : MR,
                  N - jr < NR ? N - jr : NR, NULL);
}

// (memory-bound: threads split it in blocks of 64 Ki values where there are several)
void ck_bf16_convert(const float* x, uint16_t* y, int64_t n) {
  const int64_t block = 1 << 16, whole = n / 16 * 16;
#pragma omp parallel for schedule(static) if (n >= 4 * block && !omp_in_parallel())
  for (int64_t b = 0; b < whole; b += block) {
    int64_t end = b + block < whole ? b + block : whole;
    for (int64_t i = b; i < end; i += 16) _mm256_storeu_si256((__m256i*)(y + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)));
  }
  for (int64_t i = whole; i < n; i++) y[i] = ck_bf16_bits(x[i]);
}

#else
int ck_bf16_kernel_supported(void) { return 0; }
void ck_bf16_pack_a(int ta, const float* A, int64_t lda, int64_t rows, int64_t K, uint32_t* dst) {}
void ck_bf16_pack_b(int tb, const float* B, int64_t ldb, int64_t K, int64_t cols, uint32_t* dst) {}
void ck_bf16_tiles(int64_t M, int64_t N, int64_t kp, const uint32_t* Ap, int64_t aStride, const uint32_t* Bp, int64_t bStride, float alpha,
                   float beta, float* C, int64_t ldc) {}
int ck_bf16_blocked_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                         float beta, float* C, int64_t ldc) {
  return 0;
}
int ck_bf16_gemm_operands(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const void* A, int a_bf16, int64_t lda, const void* B,
                          int b_bf16, int64_t ldb, float beta, float* C, int64_t ldc, const float* bias) {
  return 0;
}
void ck_bf16_convert(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = ck_bf16_bits(x[i]);
}
float ck_bf16_round(float x) { return ck_bf16_float(ck_bf16_bits(x)); }
#endif
