// Node-API bindings for the kernel table (kernels.h). Arguments are Float32Arrays (Int32Array for
// targets) and integers; every length is checked against the shapes before a kernel runs. The
// variant for the CPU's instruction set is chosen once, when the addon loads.
#include <malloc.h>
#include <node_api.h>
#include <omp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"
#include "bf16_gemm.h"
#include "gemm.h"
#ifdef CRUCIBLE_DNNL
#include "bf16.h"
#endif
#ifdef CRUCIBLE_OPENBLAS
#include <cblas.h>
#endif

static const ck_table* K = &ck_baseline;
static bool string_is(napi_env env, napi_value v, const char* want);
static const char* isa = "baseline";
static const char* gemm_isa = "baseline";
static int threads = 1;
#define MAX_ARGS 24
#define ARGS(n)                                                                                  \
  size_t argc = MAX_ARGS;                                                                        \
  napi_value argv[MAX_ARGS];                                                                     \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < (n)) {           \
    napi_throw_error(env, NULL, "crucible_native: expected " #n " arguments");                   \
    return NULL;                                                                                 \
  }
#define FAIL(msg)                                   \
  do {                                              \
    napi_throw_range_error(env, NULL, "crucible_native: " msg); \
    return NULL;                                    \
  } while (0)

#define FAIL_MEMORY()                                                                    \
  do {                                                                                   \
    napi_throw_error(env, "ENOMEM", "crucible_native: out of memory for a kernel's scratch buffer"); \
    return NULL;                                                                         \
  } while (0)

// A typed array's data when it has the given type and at least `need` elements, else NULL.
// `optional`: null/undefined give NULL without error (ok stays true).
static void* array(napi_env env, napi_value v, napi_typedarray_type want, int64_t need, bool optional, bool* ok) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (optional && (t == napi_null || t == napi_undefined)) return NULL;
  napi_typedarray_type type;
  size_t len;
  void* data;
  napi_value buf;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, &buf, &off) != napi_ok || type != want || need < 0 || (int64_t)len < need) {
    *ok = false;
    return NULL;
  }
  return data;
}

static int64_t integer(napi_env env, napi_value v) {
  int64_t x = 0;
  napi_get_value_int64(env, v, &x);
  return x;
}

static double number(napi_env env, napi_value v) {
  double x = 0;
  napi_get_value_double(env, v, &x);
  return x;
}

static bool flag(napi_env env, napi_value v) {
  bool b = false;
  napi_get_value_bool(env, v, &b);
  return b;
}

static napi_value double_value(napi_env env, double x) {
  napi_value r;
  napi_create_double(env, x, &r);
  return r;
}

#define F32(i, need) ((float*)array(env, argv[i], napi_float32_array, (need), false, &ok))
#define F32_OPT(i, need) ((float*)array(env, argv[i], napi_float32_array, (need), true, &ok))
#define CHECK_ARRAYS(name) \
  if (!ok) FAIL(name ": an array has the wrong type or is shorter than the shapes say");


static int library_named(napi_env env, napi_value v);

// gemm(library, transA, transB, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc): one product with
// leading dimensions and scaling on the named library ('auto', 'crucible', 'onednn', 'openblas'),
// for tests and benchmarks
static napi_value Gemm(napi_env env, napi_callback_info info) {
  ARGS(14);
  bool ok = true;
  int own_bf16 = string_is(env, argv[0], "bf16");
  int lib = own_bf16 ? CK_GEMM_CRUCIBLE : library_named(env, argv[0]);
  int ta = flag(env, argv[1]), tb = flag(env, argv[2]);
  int64_t M = integer(env, argv[3]), N = integer(env, argv[4]), Kd = integer(env, argv[5]);
  int64_t lda = integer(env, argv[8]), ldb = integer(env, argv[10]), ldc = integer(env, argv[13]);
  if (lib < CK_GEMM_AUTO) FAIL("gemm: unknown library");
  if (M < 0 || N < 0 || Kd < 0) FAIL("gemm: bad shape");
  if (lda < (ta ? M : Kd) || ldb < (tb ? Kd : N) || ldc < N || lda < 1 || ldb < 1 || ldc < 1) FAIL("gemm: a leading dimension is smaller than its rows");
  float* a = F32(7, ta ? ck_span(Kd, M, lda) : ck_span(M, Kd, lda));
  float* b = F32(9, tb ? ck_span(N, Kd, ldb) : ck_span(Kd, N, ldb));
  float* c = F32(12, ck_span(M, N, ldc));
  CHECK_ARRAYS("gemm");
  float alpha = (float)number(env, argv[6]), beta = (float)number(env, argv[11]);
  if (own_bf16 && !ck_bf16_kernel_supported()) FAIL("gemm: Crucible's bf16 kernel needs AVX512-BF16");
  if (own_bf16 && ck_bf16_blocked_gemm(ta, tb, M, N, Kd, alpha, a, lda, b, ldb, beta, c, ldc)) return NULL;
  if (lib == CK_GEMM_AUTO) ck_gemm(ta, tb, M, N, Kd, alpha, a, lda, b, ldb, beta, c, ldc);
  else ck_gemm_on(lib, ta, tb, M, N, Kd, alpha, a, lda, b, ldb, beta, c, ldc);
  return NULL;
}

// An operand that is a Float32Array (rounded to bf16 as it is packed) or a Uint16Array of bf16 values.
static const void* bf16_operand(napi_env env, napi_value v, int64_t need, int* is_bf16, bool* ok) {
  bool f32 = true;
  const void* data = array(env, v, napi_float32_array, need, false, &f32);
  *is_bf16 = !f32;
  return f32 ? data : array(env, v, napi_uint16_array, need, false, ok);
}

// gemmBf16(transA, transB, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc): Crucible's bf16 product
// with a and b each a Float32Array or a Uint16Array of bf16 values (an activation saved in bf16)
static napi_value GemmBf16(napi_env env, napi_callback_info info) {
  ARGS(13);
  bool ok = true;
  int ta = flag(env, argv[0]), tb = flag(env, argv[1]);
  int64_t M = integer(env, argv[2]), N = integer(env, argv[3]), Kd = integer(env, argv[4]);
  int64_t lda = integer(env, argv[7]), ldb = integer(env, argv[9]), ldc = integer(env, argv[12]);
  if (!ck_bf16_kernel_supported()) FAIL("gemmBf16: Crucible's bf16 kernel needs AVX512-BF16");
  if (M < 1 || N < 1 || Kd < 1) FAIL("gemmBf16: bad shape");
  if (lda < (ta ? M : Kd) || ldb < (tb ? Kd : N) || ldc < N) FAIL("gemmBf16: a leading dimension is smaller than its rows");
  int abf = 0, bbf = 0;
  const void* a = bf16_operand(env, argv[6], ta ? ck_span(Kd, M, lda) : ck_span(M, Kd, lda), &abf, &ok);
  const void* b = bf16_operand(env, argv[8], tb ? ck_span(N, Kd, ldb) : ck_span(Kd, N, ldb), &bbf, &ok);
  float* c = F32(11, ck_span(M, N, ldc));
  CHECK_ARRAYS("gemmBf16");
  float alpha = (float)number(env, argv[5]), beta = (float)number(env, argv[10]);
  if (alpha == 0.0f) FAIL("gemmBf16: alpha 0");
  ck_bf16_gemm_operands(ta, tb, M, N, Kd, alpha, a, abf, lda, b, bbf, ldb, beta, c, ldc, NULL);
  return NULL;
}

// toBf16(x: Float32Array, out: Uint16Array, n): out[i] = x[i] rounded to bf16 (nearest even)
static napi_value ToBf16(napi_env env, napi_callback_info info) {
  ARGS(3);
  bool ok = true;
  int64_t n = integer(env, argv[2]);
  float* x = F32(0, n);
  uint16_t* y = (uint16_t*)array(env, argv[1], napi_uint16_array, n, false, &ok);
  CHECK_ARRAYS("toBf16");
  ck_bf16_convert(x, y, n);
  return NULL;
}

// sgemm(a, b, c, batch, M, N, K, transA, transB, strideA, strideB)
static napi_value Sgemm(napi_env env, napi_callback_info info) {
  ARGS(11);
  bool ok = true;
  int64_t batch = integer(env, argv[3]), M = integer(env, argv[4]), N = integer(env, argv[5]), Kd = integer(env, argv[6]);
  int64_t sa = integer(env, argv[9]), sb = integer(env, argv[10]);
  if (batch < 1 || M < 0 || N < 0 || Kd < 0) FAIL("sgemm: bad shape");
  float* a = F32(0, (batch - 1) * sa + M * Kd);
  float* b = F32(1, (batch - 1) * sb + Kd * N);
  float* c = F32(2, batch * M * N);
  CHECK_ARRAYS("sgemm");
  K->sgemm(a, b, c, batch, M, N, Kd, flag(env, argv[7]), flag(env, argv[8]), sa, sb);
  return NULL;
}

// linear(x, w, bias | null, y, M, K, N, transposedW)
static napi_value Linear(napi_env env, napi_callback_info info) {
  ARGS(8);
  bool ok = true;
  int64_t M = integer(env, argv[4]), Kd = integer(env, argv[5]), N = integer(env, argv[6]);
  if (M < 0 || Kd < 0 || N < 0) FAIL("linear: bad shape");
  float* x = F32(0, M * Kd);
  float* w = F32(1, Kd * N);
  float* bias = F32_OPT(2, N);
  float* y = F32(3, M * N);
  CHECK_ARRAYS("linear");
  K->linear(x, w, bias, y, M, Kd, N, flag(env, argv[7]));
  return NULL;
}

// linearBf16Input(x, x16, w, bias | null, y, M, K, N, transposedW): linear, with x rounded to bf16
// into x16 (a Uint16Array) on the way
static napi_value LinearBf16Input(napi_env env, napi_callback_info info) {
  ARGS(9);
  bool ok = true;
  int64_t M = integer(env, argv[5]), Kd = integer(env, argv[6]), N = integer(env, argv[7]);
  if (M < 0 || Kd < 0 || N < 0) FAIL("linearBf16Input: bad shape");
  float* x = F32(0, M * Kd);
  uint16_t* x16 = (uint16_t*)array(env, argv[1], napi_uint16_array, M * Kd, false, &ok);
  float* w = F32(2, Kd * N);
  float* bias = F32_OPT(3, N);
  float* y = F32(4, M * N);
  CHECK_ARRAYS("linearBf16Input");
  int tw = flag(env, argv[8]);
  if (!ck_linear_bf16_input(x, x16, w, bias, y, M, Kd, N, tw)) {
    K->linear(x, w, bias, y, M, Kd, N, tw);
    ck_bf16_convert(x, x16, M * Kd);
  }
  return NULL;
}

// colSum(x, out, M, N)
static napi_value ColSum(napi_env env, napi_callback_info info) {
  ARGS(4);
  bool ok = true;
  int64_t M = integer(env, argv[2]), N = integer(env, argv[3]);
  float* x = F32(0, M * N);
  float* out = F32(1, N);
  CHECK_ARRAYS("colSum");
  K->col_sum(x, out, M, N);
  return NULL;
}

// add(a, b, out, n, nb) / mul(...): b (nb elements) repeats over a; nb divides n
static napi_value binary(napi_env env, napi_callback_info info, int op) {
  ARGS(5);
  bool ok = true;
  int64_t n = integer(env, argv[3]), nb = integer(env, argv[4]);
  if (nb < 1 || n < 0 || n % nb != 0) FAIL("add/mul: b's length must divide a's");
  float* a = F32(0, n);
  float* b = F32(1, nb);
  float* out = F32(2, n);
  CHECK_ARRAYS("add/mul");
  (op ? K->mul : K->add)(a, b, out, n, nb);
  return NULL;
}

static napi_value Add(napi_env env, napi_callback_info info) { return binary(env, info, 0); }
static napi_value Mul(napi_env env, napi_callback_info info) { return binary(env, info, 1); }

// sumSquares(x, n) -> number
static napi_value SumSquares(napi_env env, napi_callback_info info) {
  ARGS(2);
  bool ok = true;
  int64_t n = integer(env, argv[1]);
  float* x = F32(0, n);
  CHECK_ARRAYS("sumSquares");
  return double_value(env, K->sum_squares(x, n));
}

// gelu(x, y, n)
static napi_value Gelu(napi_env env, napi_callback_info info) {
  ARGS(3);
  bool ok = true;
  int64_t n = integer(env, argv[2]);
  float* x = F32(0, n);
  float* y = F32(1, n);
  CHECK_ARRAYS("gelu");
  K->gelu(x, y, n);
  return NULL;
}

// geluBackward(x, dy, dx, n)
static napi_value GeluBackward(napi_env env, napi_callback_info info) {
  ARGS(4);
  bool ok = true;
  int64_t n = integer(env, argv[3]);
  float* x = F32(0, n);
  float* dy = F32(1, n);
  float* dx = F32(2, n);
  CHECK_ARRAYS("geluBackward");
  K->gelu_backward(x, dy, dx, n);
  return NULL;
}

// geluSavingBf16(x, y, x16, n): gelu, keeping x rounded to bf16 in x16 (a Uint16Array)
static napi_value GeluSavingBf16(napi_env env, napi_callback_info info) {
  ARGS(4);
  bool ok = true;
  int64_t n = integer(env, argv[3]);
  float* x = F32(0, n);
  float* y = F32(1, n);
  uint16_t* x16 = (uint16_t*)array(env, argv[2], napi_uint16_array, n, false, &ok);
  CHECK_ARRAYS("geluSavingBf16");
  K->gelu_saving_bf16(x, y, x16, n);
  return NULL;
}

// geluBackwardBf16(x16, dy, dx, n): geluBackward at the input kept in bf16
static napi_value GeluBackwardBf16(napi_env env, napi_callback_info info) {
  ARGS(4);
  bool ok = true;
  int64_t n = integer(env, argv[3]);
  uint16_t* x16 = (uint16_t*)array(env, argv[0], napi_uint16_array, n, false, &ok);
  float* dy = F32(1, n);
  float* dx = F32(2, n);
  CHECK_ARRAYS("geluBackwardBf16");
  K->gelu_backward_bf16(x16, dy, dx, n);
  return NULL;
}

// layerNorm(x, g, b | null, y, mean, rstd, rows, C, eps)
static napi_value LayerNorm(napi_env env, napi_callback_info info) {
  ARGS(9);
  bool ok = true;
  int64_t rows = integer(env, argv[6]), C = integer(env, argv[7]);
  if (rows < 0 || C < 1) FAIL("layerNorm: bad shape");
  float* x = F32(0, rows * C);
  float* g = F32(1, C);
  float* b = F32_OPT(2, C);
  float* y = F32(3, rows * C);
  float* mean = F32(4, rows);
  float* rstd = F32(5, rows);
  CHECK_ARRAYS("layerNorm");
  K->layer_norm(x, g, b, y, mean, rstd, rows, C, (float)number(env, argv[8]));
  return NULL;
}

// layerNormBackward(dy, x, g, mean, rstd, dx, dg, db | null, rows, C)
static napi_value LayerNormBackward(napi_env env, napi_callback_info info) {
  ARGS(10);
  bool ok = true;
  int64_t rows = integer(env, argv[8]), C = integer(env, argv[9]);
  if (rows < 0 || C < 1) FAIL("layerNormBackward: bad shape");
  float* dy = F32(0, rows * C);
  float* x = F32(1, rows * C);
  float* g = F32(2, C);
  float* mean = F32(3, rows);
  float* rstd = F32(4, rows);
  float* dx = F32(5, rows * C);
  float* dg = F32(6, C);
  float* db = F32_OPT(7, C);
  CHECK_ARRAYS("layerNormBackward");
  if (K->layer_norm_backward(dy, x, g, mean, rstd, dx, dg, db, rows, C) != 0) FAIL_MEMORY();
  return NULL;
}

// attention(qkv, out, probs, B, T, nh, hs, causal, keyBias | null)
static napi_value Attention(napi_env env, napi_callback_info info) {
  ARGS(9);
  bool ok = true;
  int64_t B = integer(env, argv[3]), T = integer(env, argv[4]), nh = integer(env, argv[5]), hs = integer(env, argv[6]);
  if (B < 1 || T < 1 || nh < 1 || hs < 1) FAIL("attention: bad shape");
  int64_t n = B * T * nh * hs;
  float* qkv = F32(0, 3 * n);
  float* out = F32(1, n);
  float* probs = F32(2, B * nh * T * T);
  float* keyBias = F32_OPT(8, B * T);
  CHECK_ARRAYS("attention");
  K->attention(qkv, out, probs, B, T, nh, hs, flag(env, argv[7]), keyBias);
  return NULL;
}

// attentionBackward(dout, qkv, probs, dqkv, B, T, nh, hs, causal)
static napi_value AttentionBackward(napi_env env, napi_callback_info info) {
  ARGS(9);
  bool ok = true;
  int64_t B = integer(env, argv[4]), T = integer(env, argv[5]), nh = integer(env, argv[6]), hs = integer(env, argv[7]);
  if (B < 1 || T < 1 || nh < 1 || hs < 1) FAIL("attentionBackward: bad shape");
  int64_t n = B * T * nh * hs;
  float* dout = F32(0, n);
  float* qkv = F32(1, 3 * n);
  float* probs = F32(2, B * nh * T * T);
  float* dqkv = F32(3, 3 * n);
  CHECK_ARRAYS("attentionBackward");
  if (K->attention_backward(dout, qkv, probs, dqkv, B, T, nh, hs, flag(env, argv[8])) != 0) FAIL_MEMORY();
  return NULL;
}

// rmsNorm(x, w, y, rstd, rows, C, eps)
static napi_value RmsNorm(napi_env env, napi_callback_info info) {
  ARGS(7);
  bool ok = true;
  int64_t rows = integer(env, argv[4]), C = integer(env, argv[5]);
  if (rows < 0 || C < 1) FAIL("rmsNorm: bad shape");
  float* x = F32(0, rows * C);
  float* w = F32(1, C);
  float* y = F32(2, rows * C);
  float* rstd = F32(3, rows);
  CHECK_ARRAYS("rmsNorm");
  K->rms_norm(x, w, y, rstd, rows, C, (float)number(env, argv[6]));
  return NULL;
}

// rmsNormBackward(dy, x, w, rstd, dx, dw, rows, C)
static napi_value RmsNormBackward(napi_env env, napi_callback_info info) {
  ARGS(8);
  bool ok = true;
  int64_t rows = integer(env, argv[6]), C = integer(env, argv[7]);
  if (rows < 0 || C < 1) FAIL("rmsNormBackward: bad shape");
  float* dy = F32(0, rows * C);
  float* x = F32(1, rows * C);
  float* w = F32(2, C);
  float* rstd = F32(3, rows);
  float* dx = F32(4, rows * C);
  float* dw = F32(5, C);
  CHECK_ARRAYS("rmsNormBackward");
  if (K->rms_norm_backward(dy, x, w, rstd, dx, dw, rows, C) != 0) FAIL_MEMORY();
  return NULL;
}

// rope(x, cos, sin, y, B, T, n, hd, backward)
static napi_value Rope(napi_env env, napi_callback_info info) {
  ARGS(9);
  bool ok = true;
  int64_t B = integer(env, argv[4]), T = integer(env, argv[5]), n = integer(env, argv[6]), hd = integer(env, argv[7]);
  if (B < 1 || T < 1 || n < 1 || hd < 2 || hd % 2) FAIL("rope: bad shape (hd must be even)");
  float* x = F32(0, B * T * n * hd);
  float* cs = F32(1, T * hd);
  float* sn = F32(2, T * hd);
  float* y = F32(3, B * T * n * hd);
  CHECK_ARRAYS("rope");
  K->rope(x, cs, sn, y, B, T, n, hd, flag(env, argv[8]));
  return NULL;
}

// swiglu(gate, up, y, n)
static napi_value Swiglu(napi_env env, napi_callback_info info) {
  ARGS(4);
  bool ok = true;
  int64_t n = integer(env, argv[3]);
  float* gate = F32(0, n);
  float* up = F32(1, n);
  float* y = F32(2, n);
  CHECK_ARRAYS("swiglu");
  K->swiglu(gate, up, y, n);
  return NULL;
}

// swigluSavingBf16(gate, up, y, g16, u16, n): swiglu, keeping gate and up rounded to bf16
static napi_value SwigluSavingBf16(napi_env env, napi_callback_info info) {
  ARGS(6);
  bool ok = true;
  int64_t n = integer(env, argv[5]);
  float* gate = F32(0, n);
  float* up = F32(1, n);
  float* y = F32(2, n);
  uint16_t* g16 = (uint16_t*)array(env, argv[3], napi_uint16_array, n, false, &ok);
  uint16_t* u16 = (uint16_t*)array(env, argv[4], napi_uint16_array, n, false, &ok);
  CHECK_ARRAYS("swigluSavingBf16");
  K->swiglu_saving_bf16(gate, up, y, g16, u16, n);
  return NULL;
}

// swigluBackwardBf16(g16, u16, dy, dgate, dup, n): swigluBackward at the inputs kept in bf16
static napi_value SwigluBackwardBf16(napi_env env, napi_callback_info info) {
  ARGS(6);
  bool ok = true;
  int64_t n = integer(env, argv[5]);
  uint16_t* g16 = (uint16_t*)array(env, argv[0], napi_uint16_array, n, false, &ok);
  uint16_t* u16 = (uint16_t*)array(env, argv[1], napi_uint16_array, n, false, &ok);
  float* dy = F32(2, n);
  float* dgate = F32(3, n);
  float* dup = F32(4, n);
  CHECK_ARRAYS("swigluBackwardBf16");
  K->swiglu_backward_bf16(g16, u16, dy, dgate, dup, n);
  return NULL;
}

// swigluBackward(gate, up, dy, dgate, dup, n)
static napi_value SwigluBackward(napi_env env, napi_callback_info info) {
  ARGS(6);
  bool ok = true;
  int64_t n = integer(env, argv[5]);
  float* gate = F32(0, n);
  float* up = F32(1, n);
  float* dy = F32(2, n);
  float* dgate = F32(3, n);
  float* dup = F32(4, n);
  CHECK_ARRAYS("swigluBackward");
  K->swiglu_backward(gate, up, dy, dgate, dup, n);
  return NULL;
}

static bool gqa_shape(int64_t B, int64_t T, int64_t S, int64_t H, int64_t Hkv, int64_t hd, int64_t causal) {
  return B >= 1 && T >= 1 && S >= 1 && H >= 1 && Hkv >= 1 && hd >= 1 && H % Hkv == 0 && (causal < 0 || causal + T <= S);
}

// gqaAttention(q, k, v, out, probs, B, T, S, H, Hkv, hd, causal, keyBias | null)
static napi_value GqaAttention(napi_env env, napi_callback_info info) {
  ARGS(13);
  bool ok = true;
  int64_t B = integer(env, argv[5]), T = integer(env, argv[6]), S = integer(env, argv[7]), H = integer(env, argv[8]), Hkv = integer(env, argv[9]),
          hd = integer(env, argv[10]), causal = integer(env, argv[11]);
  if (!gqa_shape(B, T, S, H, Hkv, hd, causal)) FAIL("gqaAttention: bad shape (H a multiple of Hkv; causal + T <= S)");
  float* q = F32(0, B * T * H * hd);
  float* k = F32(1, B * S * Hkv * hd);
  float* v = F32(2, B * S * Hkv * hd);
  float* out = F32(3, B * T * H * hd);
  float* probs = F32(4, B * H * T * S);
  float* keyBias = F32_OPT(12, B * S);
  CHECK_ARRAYS("gqaAttention");
  K->gqa_attention(q, k, v, out, probs, B, T, S, H, Hkv, hd, causal, keyBias);
  return NULL;
}

// gqaAttentionBackward(dout, q, k, v, probs, dq, dk, dv, B, T, S, H, Hkv, hd, causal)
static napi_value GqaAttentionBackward(napi_env env, napi_callback_info info) {
  ARGS(15);
  bool ok = true;
  int64_t B = integer(env, argv[8]), T = integer(env, argv[9]), S = integer(env, argv[10]), H = integer(env, argv[11]), Hkv = integer(env, argv[12]),
          hd = integer(env, argv[13]), causal = integer(env, argv[14]);
  if (!gqa_shape(B, T, S, H, Hkv, hd, causal)) FAIL("gqaAttentionBackward: bad shape (H a multiple of Hkv; causal + T <= S)");
  float* dout = F32(0, B * T * H * hd);
  float* q = F32(1, B * T * H * hd);
  float* k = F32(2, B * S * Hkv * hd);
  float* v = F32(3, B * S * Hkv * hd);
  float* probs = F32(4, B * H * T * S);
  float* dq = F32(5, B * T * H * hd);
  float* dk = F32(6, B * S * Hkv * hd);
  float* dv = F32(7, B * S * Hkv * hd);
  CHECK_ARRAYS("gqaAttentionBackward");
  if (K->gqa_attention_backward(dout, q, k, v, probs, dq, dk, dv, B, T, S, H, Hkv, hd, causal) != 0) FAIL_MEMORY();
  return NULL;
}

// The shape arguments both flash-attention bindings share: B, T, S, H, Hkv, hd, causal from argv[at],
// and the elements q-like rows (B T of H heads at stride ldq or ldo) and k-like rows (B S of Hkv
// heads at stride ldk) span.
typedef struct {
  int64_t B, T, S, H, Hkv, hd, causal, q_rows, o_rows, k_rows;
} flash_shape;

static bool read_flash_shape(napi_env env, napi_value* argv, int at, int64_t ldq, int64_t ldk, int64_t ldo, flash_shape* f) {
  int64_t x[7];
  for (int i = 0; i < 7; i++) x[i] = integer(env, argv[at + i]);
  *f = (flash_shape){x[0], x[1], x[2], x[3], x[4], x[5], x[6], 0, 0, 0};
  if (!gqa_shape(f->B, f->T, f->S, f->H, f->Hkv, f->hd, f->causal)) return false;
  f->q_rows = ck_span(f->B * f->T, f->H * f->hd, ldq);
  f->o_rows = ck_span(f->B * f->T, f->H * f->hd, ldo);
  f->k_rows = ck_span(f->B * f->S, f->Hkv * f->hd, ldk);
  return ldq >= f->H * f->hd && ldk >= f->Hkv * f->hd && ldo >= f->H * f->hd;
}

// flashAttention(q, ldq, k, v, ldk, out, ldo, lse, B, T, S, H, Hkv, hd, causal, keyBias | null[, dropout, seed, keyStart | null]):
// attention without the probability tensor (kernels_flash.c); operands are rows at the given
// strides (a subarray of the fused qkv for the multi-head layout); lse [B, H, T]; dropout in [0, 1)
// on the weights with a mask hashed from seed (a uint32); keyStart [B, T] int32 (packed rows): the
// first key each query sees, at most its last one
// keyStart, when given: each query row's first key lies in 0..(its last key)
static bool key_starts_valid(const int32_t* ks, const flash_shape* f) {
  if (!ks) return true;
  for (int64_t b = 0; b < f->B; b++)
    for (int64_t i = 0; i < f->T; i++) {
      int32_t s = ks[b * f->T + i];
      if (s < 0 || s >= keys_seen(i, f->S, f->causal)) return false;
    }
  return true;
}

static napi_value FlashAttention(napi_env env, napi_callback_info info) {
  ARGS(16);
  bool ok = true;
  int64_t ldq = integer(env, argv[1]), ldk = integer(env, argv[4]), ldo = integer(env, argv[6]);
  flash_shape f;
  if (!read_flash_shape(env, argv, 8, ldq, ldk, ldo, &f))
    FAIL("flashAttention: bad shape (H a multiple of Hkv; causal + T <= S; a row stride is shorter than its heads)");
  float* q = F32(0, f.q_rows);
  float* k = F32(2, f.k_rows);
  float* v = F32(3, f.k_rows);
  float* out = F32(5, f.o_rows);
  float* lse = F32(7, f.B * f.H * f.T);
  float* keyBias = F32_OPT(15, f.B * f.S);
  int32_t* keyStart = (int32_t*)array(env, argv[18], napi_int32_array, f.B * f.T, true, &ok);
  CHECK_ARRAYS("flashAttention");
  double dropout = number(env, argv[16]);
  if (!(dropout >= 0.0 && dropout < 1.0)) FAIL("flashAttention: dropout must be in [0, 1)");
  if (!key_starts_valid(keyStart, &f)) FAIL("flashAttention: a query's first key (keyStart) is negative or after its last");
  if (K->flash_attention(q, ldq, k, v, ldk, out, ldo, lse, f.B, f.T, f.S, f.H, f.Hkv, f.hd, f.causal, keyBias, keyStart, dropout,
                         (uint32_t)integer(env, argv[17])) != 0)
    FAIL_MEMORY();
  return NULL;
}

// flashAttentionBackward(dout, q, ldq, k, v, ldk, out, ldo, lse, dq, dk, dv, B, T, S, H, Hkv, hd, causal, keyBias | null[, dropout, seed, keyStart | null]):
// dout and out at stride ldo, dq at q's stride, dk and dv at k's (overwritten); the forward pass's dropout, seed and keyStart
static napi_value FlashAttentionBackward(napi_env env, napi_callback_info info) {
  ARGS(20);
  bool ok = true;
  int64_t ldq = integer(env, argv[2]), ldk = integer(env, argv[5]), ldo = integer(env, argv[7]);
  flash_shape f;
  if (!read_flash_shape(env, argv, 12, ldq, ldk, ldo, &f))
    FAIL("flashAttentionBackward: bad shape (H a multiple of Hkv; causal + T <= S; a row stride is shorter than its heads)");
  float* dout = F32(0, f.o_rows);
  // q, k, v and out: all Float32Arrays, or all Uint16Arrays of bf16 values (a training step's copies)
  int qb = 0, kb = 0, vb = 0, ob = 0;
  const void* q = bf16_operand(env, argv[1], f.q_rows, &qb, &ok);
  const void* k = bf16_operand(env, argv[3], f.k_rows, &kb, &ok);
  const void* v = bf16_operand(env, argv[4], f.k_rows, &vb, &ok);
  const void* out = bf16_operand(env, argv[6], f.o_rows, &ob, &ok);
  float* lse = F32(8, f.B * f.H * f.T);
  float* dq = F32(9, f.q_rows);
  float* dk = F32(10, f.k_rows);
  float* dv = F32(11, f.k_rows);
  float* keyBias = F32_OPT(19, f.B * f.S);
  int32_t* keyStart = (int32_t*)array(env, argv[22], napi_int32_array, f.B * f.T, true, &ok);
  CHECK_ARRAYS("flashAttentionBackward");
  double dropout = number(env, argv[20]);
  if (!(dropout >= 0.0 && dropout < 1.0)) FAIL("flashAttentionBackward: dropout must be in [0, 1)");
  if (!key_starts_valid(keyStart, &f)) FAIL("flashAttentionBackward: a query's first key (keyStart) is negative or after its last");
  if (qb != kb || qb != vb || qb != ob) FAIL("flashAttentionBackward: q, k, v and out must all be float32 or all bf16 (Uint16Array)");
  if (K->flash_attention_backward(dout, q, ldq, k, v, ldk, out, ldo, lse, dq, dk, dv, f.B, f.T, f.S, f.H, f.Hkv, f.hd, f.causal, keyBias, keyStart, dropout,
                                  (uint32_t)integer(env, argv[21]), qb) != 0)
    FAIL_MEMORY();
  return NULL;
}

// crossEntropy(logits, targets, weights | null, dlogits, N, V) -> mean loss
static napi_value CrossEntropy(napi_env env, napi_callback_info info) {
  ARGS(6);
  bool ok = true;
  int64_t N = integer(env, argv[4]), V = integer(env, argv[5]);
  if (N < 0 || V < 1) FAIL("crossEntropy: bad shape");
  float* logits = F32(0, N * V);
  int32_t* targets = (int32_t*)array(env, argv[1], napi_int32_array, N, false, &ok);
  float* weights = F32_OPT(2, N);
  float* dlogits = F32(3, N * V);
  CHECK_ARRAYS("crossEntropy");
  return double_value(env, K->cross_entropy(logits, targets, weights, dlogits, N, V));
}

// adamUpdate(p, g, m, v, n, kind, lr, beta1, beta2, eps, wd, bc1, bc2, gradScale): in place
static napi_value AdamUpdate(napi_env env, napi_callback_info info) {
  ARGS(14);
  bool ok = true;
  int64_t n = integer(env, argv[4]);
  float* p = F32(0, n);
  float* g = F32(1, n);
  float* m = F32(2, n);
  float* v = F32(3, n);
  CHECK_ARRAYS("adamUpdate");
  int kind = (int)integer(env, argv[5]);
  if (kind < 0 || kind > 2) FAIL("adamUpdate: kind must be 0 (adamw), 1 (adam) or 2 (lamb)");
  float f[8];
  for (int i = 0; i < 8; i++) f[i] = (float)number(env, argv[6 + i]);
  K->adam_update(p, g, m, v, n, kind, f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]);
  return NULL;
}

static napi_value SetThreads(napi_env env, napi_callback_info info) {
  ARGS(1);
  int64_t n = integer(env, argv[0]);
  threads = n < 1 ? 1 : (int)n;
#ifdef CRUCIBLE_OPENBLAS
  openblas_set_num_threads(threads);
#endif
  omp_set_num_threads(threads);
  return NULL;
}

// Keeps freed buffers of up to 32 MB in the heap for reuse instead of unmapping them: a training
// step frees and allocates the same activation sizes each time, and fresh pages cost a fault each.
static napi_value RetainFreedMemory(napi_env env, napi_callback_info info) {
  (void)info;
#ifdef M_MMAP_THRESHOLD
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
#endif
  return NULL;
}

static napi_value string_value(napi_env env, const char* s) {
  napi_value r;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &r);
  return r;
}

static bool string_is(napi_env env, napi_value v, const char* want) {
  char got[16] = {0};
  size_t len = 0;
  napi_get_value_string_utf8(env, v, got, sizeof got, &len);
  return strcmp(got, want) == 0;
}

// setBf16Copies(arrays: Float32Array[], copies: Uint16Array[]) -> how many are registered: bf16
// products read copies[i] for operands inside arrays[i] (gemm.h's ck_gemm_set_bf16_copies) until the
// next call; setBf16Copies([], []) clears. The caller keeps both alive and arrays[i] unchanged meanwhile.
static napi_value SetBf16Copies(napi_env env, napi_callback_info info) {
  ARGS(2);
  bool ok = true, isArray = false;
  uint32_t n = 0, m = 0;
  napi_is_array(env, argv[0], &isArray);
  if (!isArray) FAIL("setBf16Copies: arrays must be an array");
  napi_is_array(env, argv[1], &isArray);
  if (!isArray) FAIL("setBf16Copies: copies must be an array");
  napi_get_array_length(env, argv[0], &n);
  napi_get_array_length(env, argv[1], &m);
  if (n != m) FAIL("setBf16Copies: one copy per array");
  if (n > CK_BF16_COPIES) FAIL("setBf16Copies: more arrays than the registry holds (4096)");
  static const float* arrays[CK_BF16_COPIES];
  static const uint16_t* bf16s[CK_BF16_COPIES];
  static int64_t lengths[CK_BF16_COPIES];
  for (uint32_t i = 0; i < n; i++) {
    napi_value a, c;
    napi_typedarray_type ta, tc;
    size_t la, lc, oa, oc;
    void *da, *dc;
    napi_value buf;
    napi_get_element(env, argv[0], i, &a);
    napi_get_element(env, argv[1], i, &c);
    if (napi_get_typedarray_info(env, a, &ta, &la, &da, &buf, &oa) != napi_ok || ta != napi_float32_array) ok = false;
    else if (napi_get_typedarray_info(env, c, &tc, &lc, &dc, &buf, &oc) != napi_ok || tc != napi_uint16_array || lc != la) ok = false;
    if (!ok) FAIL("setBf16Copies: each array must be a Float32Array and its copy a Uint16Array of the same length");
    arrays[i] = da, bf16s[i] = dc, lengths[i] = (int64_t)la;
  }
  ck_gemm_set_bf16_copies(arrays, bf16s, lengths, (int)n);
  napi_value r;
  napi_create_uint32(env, n, &r);
  return r;
}

// bf16CopyReads() -> the bf16 products that have read a registered copy since the addon loaded
static napi_value Bf16CopyReads(napi_env env, napi_callback_info info) { return double_value(env, (double)ck_gemm_bf16_copy_reads()); }

// setPrecision("float32" | "bf16") -> the precision now in force (bf16 only where the CPU has
// AVX512-BF16 or AMX-BF16)
static napi_value SetPrecision(napi_env env, napi_callback_info info) {
  ARGS(1);
  return string_value(env, ck_gemm_use_bf16(string_is(env, argv[0], "bf16")) ? "bf16" : "float32");
}

// CK_GEMM_AUTO or a library's number for its name; CK_GEMM_AUTO - 1 for an unknown name
static int library_named(napi_env env, napi_value v) {
  if (string_is(env, v, "auto")) return CK_GEMM_AUTO;
  for (int lib = 0; lib < CK_GEMM_LIBRARIES; lib++)
    if (string_is(env, v, ck_gemm_name(lib))) return lib;
  return CK_GEMM_AUTO - 1;
}

// setGemm("auto" | "crucible" | "onednn" | "openblas") -> the choice now in force (a library not
// built in gives "crucible"); forgets the measured table
static napi_value SetGemm(napi_env env, napi_callback_info info) {
  ARGS(1);
  int lib = library_named(env, argv[0]);
  if (lib < CK_GEMM_AUTO) FAIL("setGemm: expected auto, crucible, onednn or openblas");
  return string_value(env, ck_gemm_name(ck_gemm_use(lib)));
}

// gemmTable() -> [{ transA, transB, m, n, k, library, gflops: { crucible, onednn?, openblas? } }]:
// the shape classes measured so far (m, n, k: the sizes' power-of-two ceilings) and their winners
static napi_value GemmTable(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value list;
  napi_create_array(env, &list);
  int ta, tb, m, n, k, lib;
  double gflops[CK_GEMM_LIBRARIES];
  for (int i = 0; ck_gemm_table_entry(i, &ta, &tb, &m, &n, &k, &lib, gflops); i++) {
    napi_value e, g, v;
    napi_create_object(env, &e);
    napi_create_object(env, &g);
    napi_get_boolean(env, ta, &v);
    napi_set_named_property(env, e, "transA", v);
    napi_get_boolean(env, tb, &v);
    napi_set_named_property(env, e, "transB", v);
    napi_set_named_property(env, e, "m", double_value(env, (double)((int64_t)1 << m)));
    napi_set_named_property(env, e, "n", double_value(env, (double)((int64_t)1 << n)));
    napi_set_named_property(env, e, "k", double_value(env, (double)((int64_t)1 << k)));
    napi_set_named_property(env, e, "library", string_value(env, ck_gemm_name(lib)));
    for (int l = 0; l < CK_GEMM_LIBRARIES; l++)
      if (ck_gemm_built_in(l)) napi_set_named_property(env, g, ck_gemm_name(l), double_value(env, gflops[l]));
    napi_set_named_property(env, e, "gflops", g);
    napi_set_element(env, list, (uint32_t)i, e);
  }
  return list;
}

static void set_string(napi_env env, napi_value obj, const char* key, const char* value) {
  napi_value v;
  napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, key, v);
}

static void set_bool(napi_env env, napi_value obj, const char* key, bool value) {
  napi_value v;
  napi_get_boolean(env, value, &v);
  napi_set_named_property(env, obj, key, v);
}

// info() -> { isa, blas, threads, features: { avx2, avx512f, avx512bf16, amxbf16 } }
static napi_value Info(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value obj, features, t;
  napi_create_object(env, &obj);
  napi_create_object(env, &features);
  set_string(env, obj, "isa", isa);
#ifdef CRUCIBLE_OPENBLAS
  set_string(env, obj, "blas", openblas_get_config());
#else
  set_string(env, obj, "blas", "none (built without OpenBLAS)");
#endif
  napi_value libs;
  napi_create_array(env, &libs);
  for (int lib = 0, n = 0; lib < CK_GEMM_LIBRARIES; lib++)
    if (ck_gemm_built_in(lib)) napi_set_element(env, libs, (uint32_t)n++, string_value(env, ck_gemm_name(lib)));
  napi_set_named_property(env, obj, "gemmLibraries", libs);
  set_string(env, obj, "gemmIsa", gemm_isa);
  napi_create_int32(env, threads, &t);
  napi_set_named_property(env, obj, "threads", t);
#if defined(__x86_64__) && defined(__GNUC__)
  set_bool(env, features, "avx2", __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
  set_bool(env, features, "avx512f", __builtin_cpu_supports("avx512f"));
#if __GNUC__ >= 12
  set_bool(env, features, "avx512bf16", __builtin_cpu_supports("avx512bf16"));
  set_bool(env, features, "amxbf16", __builtin_cpu_supports("amx-bf16"));
#endif
#endif
  napi_set_named_property(env, obj, "features", features);
  const char* engine = ck_gemm_bf16_engine();
  set_string(env, obj, "bf16", engine ? engine : "none (this CPU has neither AVX512-BF16 nor AMX-BF16)");
  set_string(env, obj, "precision", ck_gemm_bf16() ? "bf16" : "float32");
  set_bool(env, obj, "bf16Copies", ck_gemm_own_bf16());
  set_string(env, obj, "gemm", ck_gemm_name(ck_gemm_choice()));
  return obj;
}

static napi_value Init(napi_env env, napi_value exports) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) {
    K = &ck_x86_64_v4;
    isa = "x86-64-v4 (AVX-512)";
  } else if (__builtin_cpu_supports("x86-64-v3")) {
    K = &ck_x86_64_v3;
    isa = "x86-64-v3 (AVX2)";
  }
#endif
  gemm_isa = ck_gemm_init();
  // one thread until the trainer asks for more (OpenBLAS otherwise starts one per core)
#ifdef CRUCIBLE_OPENBLAS
  openblas_set_num_threads(1);
#endif
  omp_set_num_threads(1);
  napi_property_descriptor props[] = {
      {"sgemm", NULL, Sgemm, NULL, NULL, NULL, napi_default, NULL},
      {"gemm", NULL, Gemm, NULL, NULL, NULL, napi_default, NULL},
      {"gemmBf16", NULL, GemmBf16, NULL, NULL, NULL, napi_default, NULL},
      {"toBf16", NULL, ToBf16, NULL, NULL, NULL, napi_default, NULL},
      {"linearBf16Input", NULL, LinearBf16Input, NULL, NULL, NULL, napi_default, NULL},
      {"setBf16Copies", NULL, SetBf16Copies, NULL, NULL, NULL, napi_default, NULL},
      {"bf16CopyReads", NULL, Bf16CopyReads, NULL, NULL, NULL, napi_default, NULL},
      {"gemmTable", NULL, GemmTable, NULL, NULL, NULL, napi_default, NULL},
      {"linear", NULL, Linear, NULL, NULL, NULL, napi_default, NULL},
      {"colSum", NULL, ColSum, NULL, NULL, NULL, napi_default, NULL},
      {"add", NULL, Add, NULL, NULL, NULL, napi_default, NULL},
      {"mul", NULL, Mul, NULL, NULL, NULL, napi_default, NULL},
      {"sumSquares", NULL, SumSquares, NULL, NULL, NULL, napi_default, NULL},
      {"gelu", NULL, Gelu, NULL, NULL, NULL, napi_default, NULL},
      {"geluBackward", NULL, GeluBackward, NULL, NULL, NULL, napi_default, NULL},
      {"geluSavingBf16", NULL, GeluSavingBf16, NULL, NULL, NULL, napi_default, NULL},
      {"geluBackwardBf16", NULL, GeluBackwardBf16, NULL, NULL, NULL, napi_default, NULL},
      {"layerNorm", NULL, LayerNorm, NULL, NULL, NULL, napi_default, NULL},
      {"layerNormBackward", NULL, LayerNormBackward, NULL, NULL, NULL, napi_default, NULL},
      {"attention", NULL, Attention, NULL, NULL, NULL, napi_default, NULL},
      {"attentionBackward", NULL, AttentionBackward, NULL, NULL, NULL, napi_default, NULL},
      {"crossEntropy", NULL, CrossEntropy, NULL, NULL, NULL, napi_default, NULL},
      {"adamUpdate", NULL, AdamUpdate, NULL, NULL, NULL, napi_default, NULL},
      {"rmsNorm", NULL, RmsNorm, NULL, NULL, NULL, napi_default, NULL},
      {"rmsNormBackward", NULL, RmsNormBackward, NULL, NULL, NULL, napi_default, NULL},
      {"rope", NULL, Rope, NULL, NULL, NULL, napi_default, NULL},
      {"swiglu", NULL, Swiglu, NULL, NULL, NULL, napi_default, NULL},
      {"swigluBackward", NULL, SwigluBackward, NULL, NULL, NULL, napi_default, NULL},
      {"swigluSavingBf16", NULL, SwigluSavingBf16, NULL, NULL, NULL, napi_default, NULL},
      {"swigluBackwardBf16", NULL, SwigluBackwardBf16, NULL, NULL, NULL, napi_default, NULL},
      {"gqaAttention", NULL, GqaAttention, NULL, NULL, NULL, napi_default, NULL},
      {"gqaAttentionBackward", NULL, GqaAttentionBackward, NULL, NULL, NULL, napi_default, NULL},
      {"flashAttention", NULL, FlashAttention, NULL, NULL, NULL, napi_default, NULL},
      {"flashAttentionBackward", NULL, FlashAttentionBackward, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, SetThreads, NULL, NULL, NULL, napi_default, NULL},
      {"info", NULL, Info, NULL, NULL, NULL, napi_default, NULL},
      {"setPrecision", NULL, SetPrecision, NULL, NULL, NULL, napi_default, NULL},
      {"setGemm", NULL, SetGemm, NULL, NULL, NULL, napi_default, NULL},
      {"retainFreedMemory", NULL, RetainFreedMemory, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
