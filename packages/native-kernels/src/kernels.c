// The trainer's CPU kernels over plain float32 buffers (row-major, no copies): matrix products
// through ck_gemm (gemm.c: oneDNN or OpenBLAS); LayerNorm, GELU, fused multi-head attention, cross-entropy and the AdamW / Adam / LAMB
// update written here; the llama architecture's kernels in kernels_decoder.c. Element-wise loops are threaded with OpenMP and compiled for AVX-512, AVX2
// and baseline x86-64: kernels_{v4,v3,base}.c compile this file once per instruction set, and the
// addon picks the variant the CPU supports when it loads.
#ifndef CK_TABLE
#error "compile through kernels_v4.c, kernels_v3.c or kernels_base.c"
#endif
#include "kernels.h"

#include "bf16_gemm.h"
#include "gemm.h"
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


// Loops shorter than this stay on the calling thread (a parallel region costs a few microseconds).
#define PAR_MIN 32768


// exp(x) for x <= ~88, relative error ~2e-7: 2^(x log2 e) split into 2^n * 2^f with a degree-6
// polynomial for 2^f on [-0.5, 0.5]. Written without calls so that loops over it vectorise.
static inline float exp_approx(float x) {
  if (x < -87.0f) x = -87.0f;
  if (x > 88.0f) x = 88.0f;
  float t = x * 1.44269504088896341f;
  float n = (t + 12582912.0f) - 12582912.0f; // round to nearest (1.5 * 2^23 trick; vectorises)
  float f = t - n;
  // 2^f = e^(f ln2), Taylor/minimax coefficients of e^y with y = f ln 2
  float y = f * 0.693147180559945309f;
  float p = 1.0f + y * (1.0f + y * (0.5f + y * (0.166666671633f + y * (0.0416666679084f + y * (0.00833333376795f + y * 0.00138888892f)))));
  int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

static inline float tanh_approx(float x) {
  // tanh x = 1 - 2 / (e^(2x) + 1); exact at the clamps to float precision
  float e = exp_approx(2.0f * x);
  return 1.0f - 2.0f / (e + 1.0f);
}

// ---- matrix products ----

// c[i] = op(a[i]) op(b[i]) for i < batch
static void ck_sgemm(const float* a, const float* b, float* c, int64_t batch, int64_t M, int64_t N, int64_t K, int ta, int tb, int64_t sa,
                     int64_t sb) {
  for (int64_t i = 0; i < batch; i++) ck_gemm(ta, tb, M, N, K, 1.0f, a + i * sa, ta ? M : K, b + i * sb, tb ? K : N, 0.0f, c + i * M * N, N);
}

// y[M, N] = x[M, K] w[K, N] (+ bias[N]); w given transposed ([N, K]) when tw. The bias is added
// after the product's sums (so that the product itself may run in bf16, gemm.c): by Crucible's bf16
// kernel as it writes y, else in a pass of its own.
static void ck_linear(const float* x, const float* w, const float* bias, float* y, int64_t M, int64_t K, int64_t N, int tw) {
  if (ck_gemm_bias(0, tw, M, N, K, 1.0f, x, K, w, tw ? K : N, 0.0f, y, N, bias)) return;  // the bf16 kernel added it
  if (bias) {
#pragma omp parallel for if (M * N > PAR_MIN)
    for (int64_t i = 0; i < M; i++) {
      float* row = y + i * N;
      for (int64_t j = 0; j < N; j++) row[j] += bias[j];
    }
  }
}

// out[N] = sum over rows of x[M, N] (a bias gradient).
static void ck_col_sum(const float* x, float* out, int64_t M, int64_t N) {
  // each thread sums its columns 256 at a time in a local row (kept in registers and L1, not
  // written back per row: a gpt2-small step's 48 bias gradients took 35 ms instead of 50); each
  // column's sum still runs down the rows in order, so the result does not depend on the thread count
#pragma omp parallel if (M * N > PAR_MIN)
  {
    int nt = omp_get_num_threads(), id = omp_get_thread_num();
    int64_t lo = N * id / nt, hi = N * (id + 1) / nt;
    for (int64_t j0 = lo; j0 < hi; j0 += 256) {
      int64_t n = hi - j0 < 256 ? hi - j0 : 256;
      float acc[256] = {0};
      for (int64_t i = 0; i < M; i++) {
        const float* row = x + i * N + j0;
#pragma omp simd
        for (int64_t j = 0; j < n; j++) acc[j] += row[j];
      }
      memcpy(out + j0, acc, (size_t)n * sizeof(float));
    }
  }
}

// ---- element-wise ----

// out[i] = a[i] + b[i % nb] and out[i] = a[i] * b[i % nb]: b is repeated over a's leading axes
// (nb == n: same shape; nb == 1: a scalar).
// (threaded over elements, so that a same-shape operation, one repetition of b, uses every thread)
static void ck_add(const float* a, const float* b, float* out, int64_t n, int64_t nb) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
  for (int64_t i0 = 0; i0 < n; i0 += 4096) {
    int64_t end = i0 + 4096 < n ? i0 + 4096 : n;
    for (int64_t i = i0; i < end;) {  // runs of b from its offset i % nb
      int64_t at = i % nb, len = end - i < nb - at ? end - i : nb - at;
      for (int64_t j = 0; j < len; j++) out[i + j] = a[i + j] + b[at + j];
      i += len;
    }
  }
}

static void ck_mul(const float* a, const float* b, float* out, int64_t n, int64_t nb) {
  if (nb == 1) {
    float s = b[0];
#pragma omp parallel for if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] * s;
    return;
  }
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
  for (int64_t i0 = 0; i0 < n; i0 += 4096) {
    int64_t end = i0 + 4096 < n ? i0 + 4096 : n;
    for (int64_t i = i0; i < end;) {
      int64_t at = i % nb, len = end - i < nb - at ? end - i : nb - at;
      for (int64_t j = 0; j < len; j++) out[i + j] = a[i + j] * b[at + j];
      i += len;
    }
  }
}

static double ck_sum_squares(const float* x, int64_t n) {
  double total = 0;
#pragma omp parallel for reduction(+ : total) if (n > PAR_MIN)
  for (int64_t c = 0; c < n; c += 4096) {
    int64_t end = c + 4096 < n ? c + 4096 : n;
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = c; i < end; i++) s += x[i] * x[i];
    total += s;
  }
  return total;
}

#define GELU_C 0.7978845608028654f
#define GELU_A 0.044715f

static inline float gelu_of(float v) { return 0.5f * v * (1.0f + tanh_approx(GELU_C * (v + GELU_A * v * v * v))); }

// d gelu(v) / dv
static inline float gelu_slope(float v) {
  float v2 = v * v;
  float t = tanh_approx(GELU_C * (v + GELU_A * v2 * v));
  return 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * GELU_C * (1.0f + 3.0f * GELU_A * v2);
}

static void ck_gelu(const float* x, float* y, int64_t n) {
#pragma omp parallel for if (n > PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++) y[i] = gelu_of(x[i]);
}

static void ck_gelu_backward(const float* x, const float* dy, float* dx, int64_t n) {
#pragma omp parallel for if (n > PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * gelu_slope(x[i]);
}

// GELU keeping its input for the backward pass in bf16 (x16), as mixed precision keeps activations:
// the output from x itself, the slope later from x rounded to bf16.
static void ck_gelu_saving_bf16(const float* x, float* y, uint16_t* x16, int64_t n) {
#pragma omp parallel for if (n > PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++) {
    y[i] = gelu_of(x[i]);
    x16[i] = ck_bf16_bits(x[i]);
  }
}

static void ck_gelu_backward_bf16(const uint16_t* x16, const float* dy, float* dx, int64_t n) {
#pragma omp parallel for if (n > PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * gelu_slope(ck_bf16_float(x16[i]));
}

// ---- LayerNorm over the last axis ----

static void ck_layer_norm(const float* x, const float* g, const float* b, float* y, float* mean, float* rstd, int64_t rows,
                              int64_t C, float eps) {
#pragma omp parallel for if (rows * C > PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * C;
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < C; j++) s += xr[j];
    float m = s / (float)C;
    float v = 0;
#pragma omp simd reduction(+ : v)
    for (int64_t j = 0; j < C; j++) {
      float d = xr[j] - m;
      v += d * d;
    }
    float rs = 1.0f / sqrtf(v / (float)C + eps);
    float* yr = y + r * C;
    if (b) {
      for (int64_t j = 0; j < C; j++) yr[j] = (xr[j] - m) * rs * g[j] + b[j];
    } else {
      for (int64_t j = 0; j < C; j++) yr[j] = (xr[j] - m) * rs * g[j];
    }
    mean[r] = m;
    rstd[r] = rs;
  }
}

// dx = rstd * (dy g - mean(dy g) - xhat mean(dy g xhat)); dg = sum dy xhat; db = sum dy.
static int ck_layer_norm_backward(const float* dy, const float* x, const float* g, const float* mean, const float* rstd, float* dx,
                                       float* dg, float* db, int64_t rows, int64_t C) {
  int nt = (rows * C > PAR_MIN) ? omp_get_max_threads() : 1;
  float* part = calloc((size_t)nt * 2 * C, sizeof(float));
  if (!part) return -1;
#pragma omp parallel num_threads(nt)
  {
    int id = omp_get_thread_num();
    float* pg = part + (size_t)id * 2 * C;
    float* pb = pg + C;
#pragma omp for
    for (int64_t r = 0; r < rows; r++) {
      const float* xr = x + r * C;
      const float* dyr = dy + r * C;
      float m = mean[r], rs = rstd[r];
      float s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
      for (int64_t j = 0; j < C; j++) {
        float xh = (xr[j] - m) * rs;
        float dyg = dyr[j] * g[j];
        s1 += dyg;
        s2 += dyg * xh;
        pg[j] += dyr[j] * xh;
        pb[j] += dyr[j];
      }
      s1 /= (float)C;
      s2 /= (float)C;
      float* dxr = dx + r * C;
      for (int64_t j = 0; j < C; j++) {
        float xh = (xr[j] - m) * rs;
        dxr[j] = rs * (dyr[j] * g[j] - s1 - xh * s2);
      }
    }
  }
  for (int64_t j = 0; j < C; j++) {
    float sg = 0, sb = 0;
    for (int t = 0; t < nt; t++) {
      sg += part[(size_t)t * 2 * C + j];
      sb += part[(size_t)t * 2 * C + C + j];
    }
    dg[j] = sg;
    if (db) db[j] = sb;
  }
  free(part);
  return 0;
}

// ---- multi-head attention ----
// qkv: [B, T, 3C] with q, k, v side by side and C = nh * hs (heads side by side within each), as
// one projection produces them; out: [B, T, C]. probs: [B, nh, T, T], kept for the backward pass.
// keyBias: optional [B, T] added to every query's scores for that key (0 or -1e9 for padding).
// Causal: query i sees keys 0..i. Products run on OpenBLAS with strided operands (no copies).

// y[j] = exp(x[j] - max x) for j < n (x and y may be the same row); returns the sum of y and writes
// max x to *max_out. The unnormalised softmax both attention and cross-entropy start from.
static inline float exp_shifted(const float* x, float* y, int64_t n, float* max_out) {
  float mx = x[0];
#pragma omp simd reduction(max : mx)
  for (int64_t j = 1; j < n; j++) mx = x[j] > mx ? x[j] : mx;
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; j++) {
    y[j] = exp_approx(x[j] - mx);
    sum += y[j];
  }
  *max_out = mx;
  return sum;
}


// Softmax of score rows row0..row1-1 of length S in place, keyBias added, unseen keys zeroed.
static void softmax_rows(float* s, int64_t S, int64_t causal, const float* keyBias, int64_t row0, int64_t row1) {
  for (int64_t i = row0; i < row1; i++) {
    float* r = s + i * S;
    int64_t n = keys_seen(i, S, causal);
    if (keyBias)
      for (int64_t j = 0; j < n; j++) r[j] += keyBias[j];
    float mx;
    float inv = 1.0f / exp_shifted(r, r, n, &mx);
    for (int64_t j = 0; j < n; j++) r[j] *= inv;
    for (int64_t j = n; j < S; j++) r[j] = 0.0f;
  }
}

// dS = P (dP - rowsum(dP P)) scale, in place over dP.
static void softmax_backward_rows(float* dp, const float* p, int64_t S, float scale, int64_t causal, int64_t row0, int64_t row1) {
  for (int64_t i = row0; i < row1; i++) {
    float* d = dp + i * S;
    const float* pr = p + i * S;
    int64_t n = keys_seen(i, S, causal);
    float dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < n; j++) dot += d[j] * pr[j];
    for (int64_t j = 0; j < n; j++) d[j] = pr[j] * (d[j] - dot) * scale;
    for (int64_t j = n; j < S; j++) d[j] = 0.0f;
  }
}

// This thread's rows of T (inside a parallel region); rows seeing a growing causal prefix are split
// by area, so that each thread gets about the same work.
static void row_range(int64_t T, int64_t causal, int64_t* lo, int64_t* hi) {
  int nt = omp_get_num_threads(), id = omp_get_thread_num();
  if (causal == 0) {
    *lo = (int64_t)(T * sqrt((double)id / nt));
    *hi = id == nt - 1 ? T : (int64_t)(T * sqrt((double)(id + 1) / nt));
  } else {
    *lo = T * id / nt;
    *hi = T * (id + 1) / nt;
  }
}

// The softmax of a [T, S] score matrix, rows split over the threads.
static void parallel_softmax(float* s, int64_t T, int64_t S, int64_t causal, const float* keyBias) {
#pragma omp parallel if (T * S > PAR_MIN)
  {
    int64_t lo, hi;
    row_range(T, causal, &lo, &hi);
    softmax_rows(s, S, causal, keyBias, lo, hi);
  }
}

static void parallel_softmax_backward(float* dp, const float* p, int64_t T, int64_t S, float scale, int64_t causal) {
#pragma omp parallel if (T * S > PAR_MIN)
  {
    int64_t lo, hi;
    row_range(T, causal, &lo, &hi);
    softmax_backward_rows(dp, p, S, scale, causal, lo, hi);
  }
}

static void ck_attention(const float* qkv, float* out, float* probs, int64_t B, int64_t T, int64_t nh, int64_t hs, int causal,
                         const float* keyBias) {
  int64_t C = nh * hs, ld = 3 * C;
  float scale = 1.0f / sqrtf((float)hs);
  for (int64_t b = 0; b < B; b++) {
    for (int64_t h = 0; h < nh; h++) {
      const float* qh = qkv + b * T * ld + h * hs;
      const float* kh = qh + C;
      const float* vh = qh + 2 * C;
      float* p = probs + (b * nh + h) * T * T;
      // scores = scale q k^T (the causal upper triangle is computed, then zeroed by the softmax)
      ck_gemm(0, 1, T, T, hs, scale, qh, ld, kh, ld, 0.0f, p, T);
      parallel_softmax(p, T, T, causal ? 0 : -1, keyBias ? keyBias + b * T : NULL);
      ck_gemm(0, 0, T, hs, T, 1.0f, p, T, vh, ld, 0.0f,
                  out + b * T * C + h * hs, C);
    }
  }
}

static int ck_attention_backward(const float* dout, const float* qkv, const float* probs, float* dqkv, int64_t B, int64_t T, int64_t nh,
                                  int64_t hs, int causal) {
  int64_t C = nh * hs, ld = 3 * C;
  float scale = 1.0f / sqrtf((float)hs);
  float* dp = malloc((size_t)(T * T) * sizeof(float));
  if (!dp) return -1;
  for (int64_t b = 0; b < B; b++) {
    for (int64_t h = 0; h < nh; h++) {
      int64_t off = b * T * ld + h * hs;
      const float* q = qkv + off;
      const float* k = q + C;
      const float* v = q + 2 * C;
      float *dq = dqkv + off, *dk = dq + C, *dv = dq + 2 * C;
      const float* dy = dout + b * T * C + h * hs;
      const float* p = probs + (b * nh + h) * T * T;
      // dV = P^T dOut; dP = dOut V^T
      ck_gemm(1, 0, T, hs, T, 1.0f, p, T, dy, C, 0.0f, dv, ld);
      ck_gemm(0, 1, T, T, hs, 1.0f, dy, C, v, ld, 0.0f, dp, T);
      parallel_softmax_backward(dp, p, T, T, scale, causal ? 0 : -1);
      // dQ = dS K; dK = dS^T Q
      ck_gemm(0, 0, T, hs, T, 1.0f, dp, T, k, ld, 0.0f, dq, ld);
      ck_gemm(1, 0, T, hs, T, 1.0f, dp, T, q, ld, 0.0f, dk, ld);
    }
  }
  free(dp);
  return 0;
}

// ---- cross-entropy ----
// Weighted mean over rows of -log softmax(logits)[target]; writes dlogits = (softmax - onehot) *
// w / total (the gradient of that mean). weights may be NULL (all 1). Returns the loss.
static double ck_cross_entropy(const float* logits, const int32_t* targets, const float* weights, float* dlogits, int64_t N,
                                   int64_t V) {
  double total = 0;
  for (int64_t i = 0; i < N; i++) total += weights ? weights[i] : 1.0;
  if (total < 1e-12) total = 1e-12;
  double loss = 0;
#pragma omp parallel for reduction(+ : loss) if (N * V > PAR_MIN / 4)
  for (int64_t i = 0; i < N; i++) {
    const float* l = logits + i * V;
    float* d = dlogits + i * V;
    float mx;
    float sum = exp_shifted(l, d, V, &mx);
    float w = weights ? weights[i] : 1.0f;
    int32_t t = targets[i];
    float scale = (float)(w / total) / sum;
    for (int64_t j = 0; j < V; j++) d[j] *= scale;
    if (t >= 0 && t < V) {
      d[t] -= (float)(w / total);
      if (w != 0.0f) loss += (double)w * ((double)logf(sum) + (double)mx - (double)l[t]);
    }
  }
  return loss / total;
}

// ---- optimizers over one flat parameter buffer, in place ----
// kind: 0 adamw (decoupled decay), 1 adam (L2 added to the gradient), 2 lamb (layer-wise trust).

static void ck_adam_update(float* p, const float* g, float* m, float* v, int64_t n, int kind, float lr, float beta1, float beta2,
                               float eps, float wd, float bc1, float bc2, float gradScale) {
  if (kind == 2) {
    double wn = 0, rn = 0;
#pragma omp parallel for reduction(+ : wn, rn) if (n > PAR_MIN)
    for (int64_t c = 0; c < n; c += 4096) {
      int64_t end = c + 4096 < n ? c + 4096 : n;
      float sw = 0, sr = 0;
#pragma omp simd reduction(+ : sw, sr)
      for (int64_t i = c; i < end; i++) {
        float gi = g[i] * gradScale;
        float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float r = (mi / bc1) / (sqrtf(vi / bc2) + eps) + wd * p[i];
        sw += p[i] * p[i];
        sr += r * r;
      }
      wn += sw;
      rn += sr;
    }
    float trust = (wn > 0 && rn > 0) ? (float)(sqrt(wn) / sqrt(rn)) : 1.0f;
    float step = lr * trust;
#pragma omp parallel for if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
      float r = (m[i] / bc1) / (sqrtf(v[i] / bc2) + eps) + wd * p[i];
      p[i] -= step * r;
    }
    return;
  }
  float decay = kind == 0 ? 1.0f - lr * wd : 1.0f;
  float l2 = kind == 1 ? wd : 0.0f;
#pragma omp parallel for if (n > PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i] * gradScale + l2 * p[i];
    float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - lr * (mi / bc1) / (sqrtf(vi / bc2) + eps);
  }
}

#include "kernels_decoder.c"
#include "kernels_flash.c"

const ck_table CK_TABLE = {
    .sgemm = ck_sgemm,
    .linear = ck_linear,
    .col_sum = ck_col_sum,
    .add = ck_add,
    .mul = ck_mul,
    .sum_squares = ck_sum_squares,
    .gelu = ck_gelu,
    .gelu_backward = ck_gelu_backward,
    .gelu_saving_bf16 = ck_gelu_saving_bf16,
    .gelu_backward_bf16 = ck_gelu_backward_bf16,
    .layer_norm = ck_layer_norm,
    .layer_norm_backward = ck_layer_norm_backward,
    .attention = ck_attention,
    .attention_backward = ck_attention_backward,
    .cross_entropy = ck_cross_entropy,
    .adam_update = ck_adam_update,
    .rms_norm = ck_rms_norm,
    .rms_norm_backward = ck_rms_norm_backward,
    .rope = ck_rope,
    .swiglu = ck_swiglu,
    .swiglu_backward = ck_swiglu_backward,
    .swiglu_saving_bf16 = ck_swiglu_saving_bf16,
    .swiglu_backward_bf16 = ck_swiglu_backward_bf16,
    .gqa_attention = ck_gqa_attention,
    .gqa_attention_backward = ck_gqa_attention_backward,
    .flash_attention = ck_flash_attention,
    .flash_attention_backward = ck_flash_attention_backward,
};
