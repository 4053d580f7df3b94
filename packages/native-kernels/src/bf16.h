// bf16 matrix products on oneDNN (bf16.c; present when the addon was built with libdnnl-dev).
#ifndef CRUCIBLE_BF16_H
#define CRUCIBLE_BF16_H
#include <stdint.h>
/** The CPU's bf16 instructions as oneDNN sees them ("AVX512-BF16", "AMX-BF16"), or NULL. */
const char* ck_bf16_isa(void);
/** Whether bf16 products can run fast here (also starts oneDNN's engine). */
int ck_bf16_available(void);
/** c[M, N] = op(a) op(b), operands rounded to bf16, float32 accumulation; 0 on failure. */
int ck_bf16_gemm(const float* a, const float* b, float* c, int64_t M, int64_t N, int64_t K, int ta, int tb);
#endif
