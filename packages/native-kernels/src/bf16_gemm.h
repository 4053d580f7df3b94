// Crucible's own bf16 matrix product (bf16_gemm.c): AVX512-BF16, built with the C compiler alone.
#ifndef CRUCIBLE_BF16_GEMM_H
#define CRUCIBLE_BF16_GEMM_H
#include <stdint.h>
/** Whether this CPU has the instructions (AVX512-BF16) and the addon was compiled with the kernel. */
int ck_bf16_kernel_supported(void);
/**
 * Row-major C = alpha op(A) op(B) + beta C with both operands rounded to bf16 (nearest even) and
 * float32 sums. Returns 0 (nothing written) for an empty product or alpha 0, which the caller runs.
 */
int ck_bf16_blocked_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                         float beta, float* C, int64_t ldc);
/** The same with either operand already stored as bf16 (uint16: a_bf16 / b_bf16 = 1); leading dimensions in elements. */
int ck_bf16_gemm_operands(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const void* A, int a_bf16, int64_t lda, const void* B,
                          int b_bf16, int64_t ldb, float beta, float* C, int64_t ldc);
/** y[i] = x[i] rounded to bf16 (nearest even, denormals to zero, as the instruction rounds). */
void ck_bf16_convert(const float* x, uint16_t* y, int64_t n);
/** x rounded to the nearest bf16 (ties to even), as a float. */
float ck_bf16_round(float x);
#endif
