// sgemm over Float32Arrays (N-API, no copies): c[i] = op(a[i]) x op(b[i]) for i < batch, row-major.
// Called by the trainer's wasm MatMul kernel with views into the wasm heap.
#include <cblas.h>
#include <node_api.h>
#include <stdint.h>

#define CHECK(call) if ((call) != napi_ok) { napi_throw_error(env, NULL, "crucible_native: bad arguments"); return NULL; }

static float* f32(napi_env env, napi_value v, size_t* len) {
  napi_typedarray_type type;
  void* data;
  napi_value buf;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, len, &data, &buf, &off) != napi_ok || type != napi_float32_array) return NULL;
  return (float*)data;
}

static int64_t i64(napi_env env, napi_value v) {
  int64_t x = 0;
  napi_get_value_int64(env, v, &x);
  return x;
}

// sgemm(a, b, c, batch, M, N, K, transA, transB, strideA, strideB)
static napi_value Sgemm(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 11) { napi_throw_error(env, NULL, "crucible_native.sgemm: expected 11 arguments"); return NULL; }
  size_t la, lb, lc;
  float* a = f32(env, argv[0], &la);
  float* b = f32(env, argv[1], &lb);
  float* c = f32(env, argv[2], &lc);
  if (!a || !b || !c) { napi_throw_type_error(env, NULL, "crucible_native.sgemm: a, b, c must be Float32Arrays"); return NULL; }
  int64_t batch = i64(env, argv[3]), M = i64(env, argv[4]), N = i64(env, argv[5]), K = i64(env, argv[6]);
  bool ta, tb;
  CHECK(napi_get_value_bool(env, argv[7], &ta));
  CHECK(napi_get_value_bool(env, argv[8], &tb));
  int64_t sa = i64(env, argv[9]), sb = i64(env, argv[10]);
  if ((size_t)((batch - 1) * sa + M * K) > la || (size_t)((batch - 1) * sb + K * N) > lb || (size_t)(batch * M * N) > lc) {
    napi_throw_range_error(env, NULL, "crucible_native.sgemm: shapes exceed the arrays");
    return NULL;
  }
  for (int64_t i = 0; i < batch; i++) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, 1.0f,
                a + i * sa, ta ? (int)M : (int)K, b + i * sb, tb ? (int)K : (int)N, 0.0f, c + i * M * N, (int)N);
  }
  return NULL;
}

static napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  openblas_set_num_threads((int)i64(env, argv[0]));
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"sgemm", NULL, Sgemm, NULL, NULL, NULL, napi_default, NULL},
    {"setThreads", NULL, SetThreads, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, 2, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
