// Matrix products for the kernels. float32 runs on oneDNN's sgemm when the addon was built with it
// (it picks AVX-512 or AMX code for the CPU at run time; OpenBLAS follows OPENBLAS_CORETYPE, which
// may pin older kernels), else on OpenBLAS. In the mixed-precision mode, products of contiguous
// operands without scaling or accumulation take bf16-rounded operands (bf16.c).
#include "gemm.h"

#include <cblas.h>
#ifdef CRUCIBLE_DNNL
#include <dnnl.h>

#include "bf16.h"
#endif

static int onednn = 0;
static int bf16 = 0;

int ck_gemm_use_onednn(int on) {
#ifdef CRUCIBLE_DNNL
  onednn = on ? 1 : 0;
#else
  (void)on;
  onednn = 0;
#endif
  return onednn;
}

int ck_gemm_onednn(void) { return onednn; }

int ck_gemm_bf16(void) { return bf16; }

int ck_gemm_use_bf16(int on) {
#ifdef CRUCIBLE_DNNL
  bf16 = on && ck_bf16_available() ? 1 : 0;
#else
  (void)on;
  bf16 = 0;
#endif
  return bf16;
}

void ck_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
             float* C, int64_t ldc) {
#ifdef CRUCIBLE_DNNL
  if (bf16 && alpha == 1.0f && beta == 0.0f && lda == (ta ? M : K) && ldb == (tb ? K : N) && ldc == N && ck_bf16_gemm(A, B, C, M, N, K, ta, tb))
    return;
  if (onednn && dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) == dnnl_success) return;
#endif
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, alpha, A, (int)lda, B,
              (int)ldb, beta, C, (int)ldc);
}
