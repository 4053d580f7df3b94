// bf16 matrix products with float32 results on oneDNN: both operands are rounded to bfloat16 (to
// nearest even) on the way in, products accumulate in float32. Used for the mixed-precision mode
// (float32 master weights and everything else; only the products' inputs are bf16), and only where
// oneDNN reports AVX512-BF16 or AMX-BF16: elsewhere bf16 would be emulated, slower than float32.
// Built when oneDNN's headers exist (libdnnl-dev); see binding.gyp.
#include "bf16.h"

#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static dnnl_engine_t engine;
static dnnl_stream_t stream;

typedef struct {
  int64_t M, N, K;
  int ta, tb;
  dnnl_primitive_t prim;
  dnnl_memory_desc_t a_md, b_md, c_md;
} entry;

#define CACHE 128
static entry cache[CACHE];
static int cache_used, cache_next;
static uint16_t *buf_a, *buf_b;
static size_t cap_a, cap_b;

// oneDNN's ISA values are bit sets: every ISA from avx512_core_bf16 up (AMX included) has its bits
const char* ck_bf16_isa(void) {
  unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
  if ((isa & (unsigned)dnnl_cpu_isa_avx512_core_amx) == (unsigned)dnnl_cpu_isa_avx512_core_amx) return "AMX-BF16";
  if ((isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) == (unsigned)dnnl_cpu_isa_avx512_core_bf16) return "AVX512-BF16";
  return NULL;
}

int ck_bf16_available(void) {
  if (!ck_bf16_isa()) return 0;
  if (!engine) {
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) return 0;
    if (dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) return 0;
  }
  return 1;
}

static uint16_t* grow(uint16_t** buf, size_t* cap, size_t n) {
  if (n > *cap) {
    free(*buf);
    *buf = malloc(n * sizeof(uint16_t));
    *cap = *buf ? n : 0;
  }
  return *buf;
}

// round to nearest even; NaN stays NaN
static void to_bf16(const float* x, uint16_t* y, int64_t n) {
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &x[i], sizeof u);
    uint32_t r = ((u & 0x7fffffffu) > 0x7f800000u) ? (u | 0x00400000u) : u + 0x7fffu + ((u >> 16) & 1u);
    y[i] = (uint16_t)(r >> 16);
  }
}

static entry* primitive(int64_t M, int64_t N, int64_t K, int ta, int tb) {
  for (int i = 0; i < cache_used; i++) {
    entry* e = &cache[i];
    if (e->M == M && e->N == N && e->K == K && e->ta == ta && e->tb == tb) return e;
  }
  dnnl_memory_desc_t a_md, b_md, c_md;
  dnnl_dims_t a_dims = {M, K}, b_dims = {K, N}, c_dims = {M, N};
  dnnl_dims_t a_str = {ta ? 1 : K, ta ? M : 1}, b_str = {tb ? 1 : N, tb ? K : 1}, c_str = {N, 1};
  if (dnnl_memory_desc_init_by_strides(&a_md, 2, a_dims, dnnl_bf16, a_str) != dnnl_success) return NULL;
  if (dnnl_memory_desc_init_by_strides(&b_md, 2, b_dims, dnnl_bf16, b_str) != dnnl_success) return NULL;
  if (dnnl_memory_desc_init_by_strides(&c_md, 2, c_dims, dnnl_f32, c_str) != dnnl_success) return NULL;
  dnnl_matmul_desc_t desc;
  if (dnnl_matmul_desc_init(&desc, &a_md, &b_md, NULL, &c_md) != dnnl_success) return NULL;
  dnnl_primitive_desc_t pd;
  if (dnnl_primitive_desc_create(&pd, &desc, NULL, engine, NULL) != dnnl_success) return NULL;
  dnnl_primitive_t prim = NULL;
  dnnl_status_t st = dnnl_primitive_create(&prim, pd);
  dnnl_primitive_desc_destroy(pd);
  if (st != dnnl_success) return NULL;
  entry* e = &cache[cache_next];
  if (cache_used == CACHE) dnnl_primitive_destroy(e->prim);
  else cache_used++;
  *e = (entry){M, N, K, ta, tb, prim, a_md, b_md, c_md};
  cache_next = (cache_next + 1) % CACHE;
  return e;
}

int ck_bf16_gemm(const float* a, const float* b, float* c, int64_t M, int64_t N, int64_t K, int ta, int tb) {
  if (!engine || M == 0 || N == 0) return engine != NULL;
  if (K == 0) {
    memset(c, 0, (size_t)(M * N) * sizeof(float));
    return 1;
  }
  entry* e = primitive(M, N, K, ta, tb);
  uint16_t* ab = grow(&buf_a, &cap_a, (size_t)(M * K));
  uint16_t* bb = grow(&buf_b, &cap_b, (size_t)(K * N));
  if (!e || !ab || !bb) return 0;
  to_bf16(a, ab, M * K);
  to_bf16(b, bb, K * N);
  dnnl_memory_t am = NULL, bm = NULL, cm = NULL;
  int ok = dnnl_memory_create(&am, &e->a_md, engine, ab) == dnnl_success;
  ok = ok && dnnl_memory_create(&bm, &e->b_md, engine, bb) == dnnl_success;
  ok = ok && dnnl_memory_create(&cm, &e->c_md, engine, c) == dnnl_success;
  if (ok) {
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
    ok = dnnl_primitive_execute(e->prim, stream, 3, args) == dnnl_success && dnnl_stream_wait(stream) == dnnl_success;
  }
  if (am) dnnl_memory_destroy(am);
  if (bm) dnnl_memory_destroy(bm);
  if (cm) dnnl_memory_destroy(cm);
  return ok;
}
