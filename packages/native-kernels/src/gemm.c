// Matrix products for the kernels, on one of three libraries:
// - Crucible's own (blocked_gemm.c), always built in: it needs only the C compiler;
// - oneDNN's sgemm, when the addon was built with libdnnl-dev (it picks AVX-512 or AMX code at run time);
// - OpenBLAS, when built with libopenblas-dev (it follows OPENBLAS_CORETYPE, which may pin older kernels).
// By default (auto) each shape class (the transposes and the power-of-two sizes of M, N and K) runs
// on the library measured fastest for it: the first product of a class runs once on every library
// built in, timed, and the class keeps the winner. A product of a class never measured with beta 0
// or too large to copy runs on Crucible's own until one is. Different libraries round differently,
// so setGemm('crucible') pins every product to one library where runs must match bit for bit.
// In the mixed-precision mode (bf16) products take bf16-rounded operands with float32 sums: on
// Crucible's own AVX512-BF16 kernel (bf16_gemm.c), or, on CPUs with AMX where oneDNN is built in, on
// oneDNN for products of contiguous operands without scaling or accumulation (bf16.c). Products of
// at most 16 columns (a LoRA rank) stay float32: half of a bf16 tile would be padding.
#include "gemm.h"

#include "bf16_gemm.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef CRUCIBLE_OPENBLAS
#include <cblas.h>
#endif
#ifdef CRUCIBLE_DNNL
#include <dnnl.h>

#include "bf16.h"
#endif

typedef void (*gemm_fn)(int, int, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t);
void ck_blocked_gemm_v4(int, int, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t);
void ck_blocked_gemm_v3(int, int, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t);
void ck_blocked_gemm_base(int, int, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t);

static gemm_fn blocked = ck_blocked_gemm_base;
static int choice = CK_GEMM_AUTO;
static int bf16 = 0;

// CRUCIBLE_GEMM_ISA=avx2 or baseline picks an older variant than the CPU allows (for tests).
const char* ck_gemm_init(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  const char* want = getenv("CRUCIBLE_GEMM_ISA");
  int older = want && strcmp(want, "avx2") == 0 ? 1 : want && strcmp(want, "baseline") == 0 ? 2 : 0;
  __builtin_cpu_init();
  if (older < 1 && __builtin_cpu_supports("x86-64-v4")) {
    blocked = ck_blocked_gemm_v4;
    return "AVX-512, 14 x 32 tiles";
  }
  if (older < 2 && __builtin_cpu_supports("x86-64-v3")) {
    blocked = ck_blocked_gemm_v3;
    return "AVX2, 6 x 16 tiles";
  }
#endif
  return "baseline, 6 x 8 tiles";
}

int ck_gemm_built_in(int library) {
  switch (library) {
    case CK_GEMM_CRUCIBLE:
      return 1;
#ifdef CRUCIBLE_DNNL
    case CK_GEMM_ONEDNN:
      return 1;
#endif
#ifdef CRUCIBLE_OPENBLAS
    case CK_GEMM_OPENBLAS:
      return 1;
#endif
    default:
      return 0;
  }
}

const char* ck_gemm_name(int library) {
  static const char* names[] = {"crucible", "onednn", "openblas"};
  return library >= 0 && library < CK_GEMM_LIBRARIES ? names[library] : "auto";
}

void ck_gemm_on(int library, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
                int64_t ldb, float beta, float* C, int64_t ldc) {
  // empty products on Crucible's own: oneDNN's reads C (0 x NaN) when K is 0 and beta 0
  if (M == 0 || N == 0 || K == 0) library = CK_GEMM_CRUCIBLE;
#ifdef CRUCIBLE_DNNL
  if (library == CK_GEMM_ONEDNN && dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) == dnnl_success) return;
#endif
#ifdef CRUCIBLE_OPENBLAS
  if (library == CK_GEMM_OPENBLAS) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, alpha, A, (int)lda, B,
                (int)ldb, beta, C, (int)ldc);
    return;
  }
#endif
  blocked(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// ---- the measured table ----

typedef struct {
  uint8_t ta, tb, m, n, k, library;
  double gflops[CK_GEMM_LIBRARIES];
} table_entry;

#define TABLE 512
static table_entry table[TABLE];
static int table_used;

static int bucket(int64_t x) {
  int b = 0;
  while (b < 62 && ((int64_t)1 << b) < x) b++;
  return b;
}

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

// Runs the product on every library built in (into scratch when C is small enough to copy, in place
// when beta is 0), keeps the class's fastest, and leaves C = alpha op(A) op(B) + beta C.
static int measure(table_entry* e, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
                   int64_t ldb, float beta, float* C, int64_t ldc) {
  int64_t cells = M * N;
  float* scratch = cells <= (1 << 22) ? malloc((size_t)cells * sizeof(float)) : NULL;
  if (!scratch && beta != 0.0f) return 0;
  double flops = 2.0 * (double)M * (double)N * (double)K;
  // the best of three for small products, two for large ones, one for the largest (a language-model
  // head's): a first run may pay one-time costs (oneDNN's code generation, threads starting)
  int rounds = flops < 2e8 ? 3 : flops < 2e10 ? 2 : 1;
  // the output's pages are touched before any library is timed, so that none pays their first faults
  if (scratch) memset(scratch, 0, (size_t)cells * sizeof(float));
  else
    for (int64_t i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof(float));
  double fastest[CK_GEMM_LIBRARIES];
  for (int lib = 0; lib < CK_GEMM_LIBRARIES; lib++) fastest[lib] = 1e30;
  // each round starts at another library, so that none always follows one whose threads still spin
  // (OpenBLAS's busy-wait after a call)
  for (int r = 0; r < rounds; r++)
    for (int i = 0; i < CK_GEMM_LIBRARIES; i++) {
      int lib = (r + i) % CK_GEMM_LIBRARIES;
      if (!ck_gemm_built_in(lib)) continue;
      float* out = scratch ? scratch : C;
      int64_t ld = scratch ? N : ldc;
      if (scratch && beta != 0.0f)
        for (int64_t row = 0; row < M; row++) memcpy(scratch + row * N, C + row * ldc, (size_t)N * sizeof(float));
      double t0 = seconds();
      ck_gemm_on(lib, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, out, ld);
      double t = seconds() - t0;
      if (t < fastest[lib]) fastest[lib] = t;
    }
  int best = CK_GEMM_CRUCIBLE;
  for (int lib = 0; lib < CK_GEMM_LIBRARIES; lib++) {
    e->gflops[lib] = ck_gemm_built_in(lib) ? flops / (fastest[lib] > 1e-9 ? fastest[lib] : 1e-9) / 1e9 : 0.0;
    if (e->gflops[lib] > e->gflops[best]) best = lib;
  }
  free(scratch);
  e->library = (uint8_t)best;
  ck_gemm_on(best, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  return 1;
}

static int libraries_built_in(void) {
  int n = 0;
  for (int lib = 0; lib < CK_GEMM_LIBRARIES; lib++) n += ck_gemm_built_in(lib);
  return n;
}

static void auto_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                      float beta, float* C, int64_t ldc) {
  if (libraries_built_in() == 1 || M == 0 || N == 0 || K == 0) {
    blocked(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  int m = bucket(M), n = bucket(N), k = bucket(K);
  for (int i = 0; i < table_used; i++) {
    table_entry* e = &table[i];
    if (e->ta == ta && e->tb == tb && e->m == m && e->n == n && e->k == k) {
      ck_gemm_on(e->library, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      return;
    }
  }
  // measured on the calling thread only outside parallel regions, so that the timing means something
  if (table_used < TABLE && !omp_in_parallel()) {
    table_entry* e = &table[table_used];
    *e = (table_entry){(uint8_t)ta, (uint8_t)tb, (uint8_t)m, (uint8_t)n, (uint8_t)k, 0, {0}};
    if (measure(e, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) {
      table_used++;
      return;
    }
  }
  blocked(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

int ck_gemm_table_entry(int i, int* ta, int* tb, int* mBucket, int* nBucket, int* kBucket, int* library, double gflops[CK_GEMM_LIBRARIES]) {
  if (i < 0 || i >= table_used) return 0;
  table_entry* e = &table[i];
  *ta = e->ta, *tb = e->tb, *mBucket = e->m, *nBucket = e->n, *kBucket = e->k, *library = e->library;
  memcpy(gflops, e->gflops, sizeof e->gflops);
  return 1;
}

int ck_gemm_use(int library) {
  choice = library == CK_GEMM_AUTO || ck_gemm_built_in(library) ? library : CK_GEMM_CRUCIBLE;
  table_used = 0;
  return choice;
}

int ck_gemm_choice(void) { return choice; }

int ck_gemm_bf16(void) { return bf16 != 0; }

// bf16: 0 off, BF16_OWN on Crucible's kernel, BF16_ONEDNN on oneDNN (AMX)
enum { BF16_OWN = 1, BF16_ONEDNN = 2 };

static int bf16_engine(void) {
#ifdef CRUCIBLE_DNNL
  const char* isa = ck_bf16_isa();
  if (isa && strcmp(isa, "AMX-BF16") == 0 && ck_bf16_available()) return BF16_ONEDNN;
#endif
  if (ck_bf16_kernel_supported()) return BF16_OWN;
#ifdef CRUCIBLE_DNNL
  if (ck_bf16_available()) return BF16_ONEDNN;
#endif
  return 0;
}

const char* ck_gemm_bf16_engine(void) {
  switch (bf16_engine()) {
    case BF16_OWN:
      return "AVX512-BF16 on Crucible's kernel";
    case BF16_ONEDNN:
      return "AMX-BF16 on oneDNN";
    default:
      return NULL;
  }
}

int ck_gemm_use_bf16(int on) {
  bf16 = on ? bf16_engine() : 0;
  return bf16 != 0;
}

// ---- bf16 copies of registered arrays ----

typedef struct {
  const float* array;
  const uint16_t* copy;
  int64_t length;
} bf16_copy;

static bf16_copy copies[CK_BF16_COPIES];
static int copies_used;
static int64_t copy_reads;

int ck_gemm_set_bf16_copies(const float* const* arrays, const uint16_t* const* bf16s, const int64_t* lengths, int n) {
  if (n < 0 || n > CK_BF16_COPIES) return 0;
  for (int i = 0; i < n; i++) copies[i] = (bf16_copy){arrays[i], bf16s[i], lengths[i]};
  copies_used = n;
  return 1;
}

int64_t ck_gemm_bf16_copy_reads(void) { return copy_reads; }

int ck_gemm_own_bf16(void) { return bf16 == BF16_OWN; }

// The copy of the `extent` floats from x on, when one registered array holds all of them; else NULL.
static const uint16_t* copy_of(const float* x, int64_t extent) {
  for (int i = 0; i < copies_used; i++) {
    const bf16_copy* c = &copies[i];
    if (x >= c->array && x + extent <= c->array + c->length) return c->copy + (x - c->array);
  }
  return NULL;
}

// The product on Crucible's bf16 kernel when the mode runs there and it is wider than 16 columns;
// 0 when it is not (the caller runs it in float32). With `copies`, an operand inside a registered
// array is read from its bf16 copy.
static int on_own_bf16(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                       float beta, float* C, int64_t ldc, int with_copies, const float* bias) {
  if (bf16 != BF16_OWN || N <= 16) return 0;
  const uint16_t *a16 = NULL, *b16 = NULL;
  if (with_copies && copies_used && M > 0 && N > 0 && K > 0) {
    a16 = copy_of(A, ta ? ck_span(K, M, lda) : ck_span(M, K, lda));
    b16 = copy_of(B, tb ? ck_span(N, K, ldb) : ck_span(K, N, ldb));
    if (a16 || b16) __atomic_fetch_add(&copy_reads, 1, __ATOMIC_RELAXED);
  }
  return ck_bf16_gemm_operands(ta, tb, M, N, K, alpha, a16 ? (const void*)a16 : A, a16 != NULL, lda, b16 ? (const void*)b16 : B, b16 != NULL,
                               ldb, beta, C, ldc, bias);
}

// (flash attention's blocks read activations only: no lookup of copies)
void ck_gemm_own(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb,
                 float beta, float* C, int64_t ldc) {
  if (!on_own_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 0, NULL)) blocked(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void ck_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
             float* C, int64_t ldc) {
  if (on_own_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 1, NULL)) return;
#ifdef CRUCIBLE_DNNL
  if (bf16 == BF16_ONEDNN && N > 16 && alpha == 1.0f && beta == 0.0f && lda == (ta ? M : K) && ldb == (tb ? K : N) && ldc == N &&
      ck_bf16_gemm(A, B, C, M, N, K, ta, tb))
    return;
#endif
  if (choice == CK_GEMM_AUTO) auto_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else ck_gemm_on(choice, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

int ck_linear_bf16_input(const float* x, uint16_t* x16, const float* w, const float* bias, float* y, int64_t M, int64_t K, int64_t N, int tw) {
  if (bf16 != BF16_OWN || N <= 16 || M <= 0 || K <= 0) return 0;
  ck_bf16_convert(x, x16, M * K);
  const uint16_t* w16 = copies_used ? copy_of(w, K * N) : NULL;
  if (w16) __atomic_fetch_add(&copy_reads, 1, __ATOMIC_RELAXED);
  return ck_bf16_gemm_operands(0, tw, M, N, K, 1.0f, x16, 1, K, w16 ? (const void*)w16 : w, w16 != NULL, tw ? K : N, 0.0f, y, N, bias);
}

int ck_gemm_bias(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                 float* C, int64_t ldc, const float* bias) {
  if (on_own_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 1, bias)) return 1;
  ck_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  return 0;
}
