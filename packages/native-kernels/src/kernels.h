// The kernel table: kernels.c compiled once per instruction set fills one of these. Kernels that
// need scratch memory return 0, or -1 when it could not be allocated (before writing anything).
#ifndef CRUCIBLE_KERNELS_H
#define CRUCIBLE_KERNELS_H
#include <stdint.h>

// Keys query row i sees: causal >= 0 puts the queries at positions causal.. of the keys (0 in
// training, a KV cache's length in decoding), each seeing the keys up to its own; < 0: all S.
static inline int64_t keys_seen(int64_t i, int64_t S, int64_t causal) {
  if (causal < 0) return S;
  int64_t n = causal + i + 1;
  return n < S ? n : S;
}

typedef struct {
  void (*sgemm)(const float* a, const float* b, float* c, int64_t batch, int64_t M, int64_t N, int64_t K, int ta, int tb, int64_t sa,
                int64_t sb);
  void (*linear)(const float* x, const float* w, const float* bias, float* y, int64_t M, int64_t K, int64_t N, int tw);
  void (*col_sum)(const float* x, float* out, int64_t M, int64_t N);
  void (*add)(const float* a, const float* b, float* out, int64_t n, int64_t nb);
  void (*mul)(const float* a, const float* b, float* out, int64_t n, int64_t nb);
  double (*sum_squares)(const float* x, int64_t n);
  void (*gelu)(const float* x, float* y, int64_t n);
  void (*gelu_backward)(const float* x, const float* dy, float* dx, int64_t n);
  void (*gelu_saving_bf16)(const float* x, float* y, uint16_t* x16, int64_t n);
  void (*gelu_backward_bf16)(const uint16_t* x16, const float* dy, float* dx, int64_t n);
  void (*layer_norm)(const float* x, const float* g, const float* b, float* y, float* mean, float* rstd, int64_t rows, int64_t C, float eps);
  int (*layer_norm_backward)(const float* dy, const float* x, const float* g, const float* mean, const float* rstd, float* dx, float* dg,
                              float* db, int64_t rows, int64_t C);
  void (*attention)(const float* qkv, float* out, float* probs, int64_t B, int64_t T, int64_t nh, int64_t hs, int causal,
                    const float* keyBias);
  int (*attention_backward)(const float* dout, const float* qkv, const float* probs, float* dqkv, int64_t B, int64_t T, int64_t nh,
                             int64_t hs, int causal);
  double (*cross_entropy)(const float* logits, const int32_t* targets, const float* weights, float* dlogits, int64_t N, int64_t V);
  void (*adam_update)(float* p, const float* g, float* m, float* v, int64_t n, int kind, float lr, float beta1, float beta2, float eps,
                      float wd, float bc1, float bc2, float gradScale);
  void (*rms_norm)(const float* x, const float* w, float* y, float* rstd, int64_t rows, int64_t C, float eps);
  int (*rms_norm_backward)(const float* dy, const float* x, const float* w, const float* rstd, float* dx, float* dw, int64_t rows, int64_t C);
  void (*rope)(const float* x, const float* cs, const float* sn, float* y, int64_t B, int64_t T, int64_t n, int64_t hd, int backward);
  void (*swiglu)(const float* gate, const float* up, float* y, int64_t n);
  void (*swiglu_backward)(const float* gate, const float* up, const float* dy, float* dgate, float* dup, int64_t n);
  void (*swiglu_saving_bf16)(const float* gate, const float* up, float* y, uint16_t* g16, uint16_t* u16, int64_t n);
  void (*swiglu_backward_bf16)(const uint16_t* g16, const uint16_t* u16, const float* dy, float* dgate, float* dup, int64_t n);
  void (*gqa_attention)(const float* q, const float* k, const float* v, float* out, float* probs, int64_t B, int64_t T, int64_t S, int64_t H,
                        int64_t Hkv, int64_t hd, int64_t causal, const float* keyBias);
  int (*gqa_attention_backward)(const float* dout, const float* q, const float* k, const float* v, const float* probs, float* dq, float* dk,
                                 float* dv, int64_t B, int64_t T, int64_t S, int64_t H, int64_t Hkv, int64_t hd, int64_t causal);
  int (*flash_attention)(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldk, float* out, int64_t ldo, float* lse, int64_t B,
                         int64_t T, int64_t S, int64_t H, int64_t Hkv, int64_t hd, int64_t causal, const float* keyBias,
                         const int32_t* keyStart, double dropout, uint32_t seed);
  // saved_bf16: q, k, v and out are bf16 values (uint16) with the same row strides, not float32
  int (*flash_attention_backward)(const float* dout, const void* q, int64_t ldq, const void* k, const void* v, int64_t ldk, const void* out,
                                  int64_t ldo, const float* lse, float* dq, float* dk, float* dv, int64_t B, int64_t T, int64_t S, int64_t H,
                                  int64_t Hkv, int64_t hd, int64_t causal, const float* keyBias, const int32_t* keyStart, double dropout,
                                  uint32_t seed, int saved_bf16);
} ck_table;

extern const ck_table ck_x86_64_v4, ck_x86_64_v3, ck_baseline;
#endif
