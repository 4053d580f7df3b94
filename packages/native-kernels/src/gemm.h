// The one matrix-product entry point of the kernels (gemm.c): row-major C = alpha op(A) op(B) + beta C.
#ifndef CRUCIBLE_GEMM_H
#define CRUCIBLE_GEMM_H
#include <stdint.h>
#include <stdlib.h>

/** The libraries that can run a float32 product; only CK_GEMM_CRUCIBLE is always built in. */
enum { CK_GEMM_CRUCIBLE = 0, CK_GEMM_ONEDNN = 1, CK_GEMM_OPENBLAS = 2, CK_GEMM_LIBRARIES = 3, CK_GEMM_AUTO = -1 };

void ck_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
             float* C, int64_t ldc);
/**
 * ck_gemm, then C's rows + bias (N values) where the product ran on Crucible's bf16 kernel, which adds
 * it as it writes C (the same roundings as adding it afterwards). Returns 1 when the bias was added,
 * 0 when the caller still has to add it.
 */
int ck_gemm_bias(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                 float* C, int64_t ldc, const float* bias);
/**
 * y[M, N] = x[M, K] w (+ bias) with x first rounded to bf16 into x16 (the input a linear layer keeps
 * for its weight's gradient) and the product packing x from x16: half the bytes, no rounding in the
 * packing; the same numbers as ck_gemm_bias's. Only where the mode runs on Crucible's bf16 kernel and
 * N > 16 (w read from its registered copy when it has one): returns 1; else 0, nothing written.
 */
int ck_linear_bf16_input(const float* x, uint16_t* x16, const float* w, const float* bias, float* y, int64_t M, int64_t K, int64_t N, int tw);
/** One product on the given library (when built in; else on Crucible's own). */
void ck_gemm_on(int library, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
                int64_t ldb, float beta, float* C, int64_t ldc);
/**
 * A product on Crucible's own kernels in the precision in force (bf16 where the mixed-precision mode
 * runs on Crucible's bf16 kernel, else float32): the blocks of flash attention.
 */
void ck_gemm_own(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                 float beta, float* C, int64_t ldc);
/** Picks the instruction set of Crucible's own product (called once at load). Returns its name. */
const char* ck_gemm_init(void);
/** Whether the library is built in. */
int ck_gemm_built_in(int library);
/** Its name: "crucible", "onednn", "openblas". */
const char* ck_gemm_name(int library);
/**
 * Which library runs float32 products: one of them, or CK_GEMM_AUTO (the default): the fastest for
 * each shape class, measured the first time the class is seen (gemm.c). A library that is not built
 * in falls back to Crucible's own. Returns the choice in force; forgets the measured table.
 */
int ck_gemm_use(int library);
int ck_gemm_choice(void);
/** The measured table: entry i (0 when there are no more) as a shape class and the winner. */
int ck_gemm_table_entry(int i, int* ta, int* tb, int* mBucket, int* nBucket, int* kBucket, int* library, double gflops[CK_GEMM_LIBRARIES]);
/**
 * Mixed precision: 1 = products take bf16-rounded operands with float32 sums, where the CPU has
 * AVX512-BF16 (Crucible's kernel) or AMX-BF16 (oneDNN). Returns the mode in force.
 */
int ck_gemm_use_bf16(int on);
int ck_gemm_bf16(void);
/**
 * bf16 copies of float32 arrays (a training step's weights, converted once per optimizer step): while
 * registered, a bf16 product on Crucible's kernel whose operand lies inside arrays[i] reads copies[i]
 * at the same offset instead of rounding the float32 values as it packs them (the same numbers: the
 * copy is rounded as the packing rounds). Replaces every earlier registration; n = 0 clears. The
 * caller keeps the arrays alive and unchanged until it clears them. Returns 0 when n is over
 * CK_BF16_COPIES.
 */
#define CK_BF16_COPIES 4096
int ck_gemm_set_bf16_copies(const float* const* arrays, const uint16_t* const* copies, const int64_t* lengths, int n);
/**
 * Whether bf16 products run on Crucible's kernel now (the mixed-precision mode on a CPU with
 * AVX512-BF16 and no AMX): then they read registered copies, and flash attention packs once.
 */
int ck_gemm_own_bf16(void);
/** The products that have read a registered copy since the addon loaded (for tests). */
int64_t ck_gemm_bf16_copy_reads(void);
/** What bf16 products run on here ("AVX512-BF16 on Crucible's kernel", "AMX-BF16 on oneDNN"), or NULL. */
const char* ck_gemm_bf16_engine(void);

/** Elements a row-major operand with `rows` rows of `cols` used columns and leading dimension ld spans. */
static inline int64_t ck_span(int64_t rows, int64_t cols, int64_t ld) { return rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols; }

// ---- shared by Crucible's float32 and bf16 products (blocked_gemm.c, bf16_gemm.c) ----

/** A packing buffer of at least `bytes`, 64-byte aligned, kept between calls; NULL when it cannot be allocated. */
static inline void* ck_packing_buffer(void** buf, size_t* cap, size_t bytes) {
  if (bytes > *cap) {
    free(*buf);
    *buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
    *cap = *buf ? bytes : 0;
  }
  return *buf;
}

/**
 * How a product splits over `threads`: in whole mr-tall row tiles or nr-wide column tiles of C,
 * along the longer side so that each thread packs only its own share of it. Sets *byRows and
 * *tiles; returns the threads to use (at most one per tile).
 */
static inline int ck_split(int64_t M, int64_t N, int64_t mr, int64_t nr, int threads, int* byRows, int64_t* tiles) {
  int64_t mTiles = (M + mr - 1) / mr, nTiles = (N + nr - 1) / nr;
  *byRows = mTiles >= threads * 4 || mTiles * mr >= nTiles * nr;
  *tiles = *byRows ? mTiles : nTiles;
  return threads > *tiles ? (int)*tiles : threads;
}
#endif
