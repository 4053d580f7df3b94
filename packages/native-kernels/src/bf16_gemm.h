// Crucible's own bf16 matrix product (bf16_gemm.c): AVX512-BF16, built with the C compiler alone.
#ifndef CRUCIBLE_BF16_GEMM_H
#define CRUCIBLE_BF16_GEMM_H
#include <stdint.h>
#include <string.h>

/**
 * x rounded to bf16 (to nearest even, denormals to zero, NaN stays a quiet NaN): the rounding of
 * VCVTNEPS2BF16, written out for the ends of rows and for loops that keep bf16 copies.
 */
static inline uint16_t ck_bf16_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/** A bf16 value (its 16 bits) as a float. */
static inline float ck_bf16_float(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
/** Whether this CPU has the instructions (AVX512-BF16) and the addon was compiled with the kernel. */
int ck_bf16_kernel_supported(void);
/**
 * Row-major C = alpha op(A) op(B) + beta C with both operands rounded to bf16 (nearest even) and
 * float32 sums. Returns 0 (nothing written) for an empty product or alpha 0, which the caller runs.
 */
int ck_bf16_blocked_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                         float beta, float* C, int64_t ldc);
/**
 * The same with either operand already stored as bf16 (uint16: a_bf16 / b_bf16 = 1); leading
 * dimensions in elements. bias (N values, or NULL) is then added to every row of C, with the
 * roundings of adding it afterwards.
 */
int ck_bf16_gemm_operands(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const void* A, int a_bf16, int64_t lda, const void* B,
                          int b_bf16, int64_t ldb, float beta, float* C, int64_t ldc, const float* bias);
/**
 * Operands packed once for many products (flash attention's blocks), in the kernel's panels: rows of
 * op(A) in panels of CK_BF16_MR, columns of op(B) in panels of CK_BF16_NR, each panel (K + 1) / 2
 * pairs of consecutive k (the second of an odd last pair 0) with consecutive pairs one panel's width
 * apart; the last panel zero-padded. So op(A) takes round_up(rows, MR) * kp entries, op(B)
 * round_up(cols, NR) * kp, and pairs q0.. of every panel start at panel + q0 * width (a range of k
 * that starts at an even k). dst is 64-byte aligned.
 */
#define CK_BF16_MR 14
#define CK_BF16_NR 32
void ck_bf16_pack_a(int ta, const float* A, int64_t lda, int64_t rows, int64_t K, uint32_t* dst);
void ck_bf16_pack_b(int tb, const float* B, int64_t ldb, int64_t K, int64_t cols, uint32_t* dst);
/**
 * C = alpha op(A) op(B) + beta C (beta 0 never reads C) over M x N from packed panels, kp pairs of k:
 * A's panel i at Ap + i * aStride, B's panel j at Bp + j * bStride (entries; B's 64-byte aligned). The
 * same sums as ck_bf16_gemm_operands of the same operands with K <= 1024 on one thread.
 */
void ck_bf16_tiles(int64_t M, int64_t N, int64_t kp, const uint32_t* Ap, int64_t aStride, const uint32_t* Bp, int64_t bStride, float alpha,
                   float beta, float* C, int64_t ldc);
/** y[i] = x[i] rounded to bf16 (nearest even, denormals to zero, as the instruction rounds). */
void ck_bf16_convert(const float* x, uint16_t* y, int64_t n);
/** x rounded to the nearest bf16 (ties to even), as a float. */
float ck_bf16_round(float x);
#endif
