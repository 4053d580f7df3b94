// The one matrix-product entry point of the kernels (gemm.c): row-major C = alpha op(A) op(B) + beta C.
#ifndef CRUCIBLE_GEMM_H
#define CRUCIBLE_GEMM_H
#include <stdint.h>
void ck_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
             float* C, int64_t ldc);
/** Which library runs float32 products: 1 = oneDNN (when built in), 0 = OpenBLAS. Returns the one in force. */
int ck_gemm_use_onednn(int on);
/** Mixed precision: 1 = contiguous products with alpha 1, beta 0 take bf16 operands (oneDNN). Returns the mode in force. */
int ck_gemm_use_bf16(int on);
/** The modes in force. */
int ck_gemm_onednn(void);
int ck_gemm_bf16(void);
#endif
