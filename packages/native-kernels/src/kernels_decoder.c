// The llama architecture's fused kernels and their gradients: RMSNorm, rotary position embeddings
// (Hugging Face's rotate_half layout), the SwiGLU gate and grouped-query attention. Included by
// kernels.c (it uses exp_approx, the softmax rows and PAR_MIN from there), so it is compiled once per
// instruction set with the rest of the table.

// ---- RMSNorm over the last axis: y = x / sqrt(mean(x^2) + eps) * w ----

static void ck_rms_norm(const float* x, const float* w, float* y, float* rstd, int64_t rows, int64_t C, float eps) {
#pragma omp parallel for if (rows * C > PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * C;
    float ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < C; j++) ss += xr[j] * xr[j];
    float rs = 1.0f / sqrtf(ss / (float)C + eps);
    float* yr = y + r * C;
#pragma omp simd
    for (int64_t j = 0; j < C; j++) yr[j] = xr[j] * rs * w[j];
    rstd[r] = rs;
  }
}

// With u = dy w: dx = rstd u - x rstd^3 mean(u x); dw = sum over rows of dy x rstd.
static int ck_rms_norm_backward(const float* dy, const float* x, const float* w, const float* rstd, float* dx, float* dw, int64_t rows,
                                 int64_t C) {
  int nt = (rows * C > PAR_MIN) ? omp_get_max_threads() : 1;
  float* part = calloc((size_t)nt * C, sizeof(float));
  if (!part) return -1;
#pragma omp parallel num_threads(nt)
  {
    float* pw = part + (size_t)omp_get_thread_num() * C;
#pragma omp for
    for (int64_t r = 0; r < rows; r++) {
      const float* xr = x + r * C;
      const float* dyr = dy + r * C;
      float rs = rstd[r];
      float dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t j = 0; j < C; j++) {
        dot += dyr[j] * w[j] * xr[j];
        pw[j] += dyr[j] * xr[j] * rs;
      }
      float k = rs * rs * rs * dot / (float)C;
      float* dxr = dx + r * C;
#pragma omp simd
      for (int64_t j = 0; j < C; j++) dxr[j] = rs * dyr[j] * w[j] - xr[j] * k;
    }
  }
  for (int64_t j = 0; j < C; j++) {
    float s = 0;
    for (int t = 0; t < nt; t++) s += part[(size_t)t * C + j];
    dw[j] = s;
  }
  free(part);
  return 0;
}

// ---- rotary position embeddings ----
// x [B, T, n, hd] (heads side by side, as a projection writes them); cos and sin [T, hd], the
// tables of ropeTables (decoder-ops.ts). Forward, with the halves x1 = x[..., :hd/2] and x2:
// y1 = x1 cos1 - x2 sin1, y2 = x2 cos2 + x1 sin2 (x cos + rotate_half(x) sin). The gradient is the
// transposed rotation: dx1 = dy1 cos1 + dy2 sin2, dx2 = dy2 cos2 - dy1 sin1.
static void ck_rope(const float* x, const float* cs, const float* sn, float* y, int64_t B, int64_t T, int64_t n, int64_t hd, int backward) {
  int64_t half = hd / 2;
#pragma omp parallel for collapse(2) if (B * T * n * hd > PAR_MIN)
  for (int64_t b = 0; b < B; b++) {
    for (int64_t t = 0; t < T; t++) {
      const float* c = cs + t * hd;
      const float* s = sn + t * hd;
      for (int64_t h = 0; h < n; h++) {
        const float* xr = x + ((b * T + t) * n + h) * hd;
        float* yr = y + ((b * T + t) * n + h) * hd;
        if (!backward) {
#pragma omp simd
          for (int64_t i = 0; i < half; i++) {
            float x1 = xr[i], x2 = xr[half + i];
            yr[i] = x1 * c[i] - x2 * s[i];
            yr[half + i] = x2 * c[half + i] + x1 * s[half + i];
          }
        } else {
#pragma omp simd
          for (int64_t i = 0; i < half; i++) {
            float d1 = xr[i], d2 = xr[half + i];
            yr[i] = d1 * c[i] + d2 * s[half + i];
            yr[half + i] = d2 * c[half + i] - d1 * s[i];
          }
        }
      }
    }
  }
}

// ---- SwiGLU: y = silu(gate) up = gate sigmoid(gate) up ----

static inline float sigmoid_of(float g) { return 1.0f / (1.0f + exp_approx(-g)); }

static inline float swiglu_of(float g, float u) { return g * sigmoid_of(g) * u; }

// dgate = dy up sigmoid(g) (1 + g (1 - sigmoid(g))); dup = dy silu(g).
static inline void swiglu_grads(float g, float u, float dy, float* dgate, float* dup) {
  float s = sigmoid_of(g);
  *dgate = dy * u * s * (1.0f + g * (1.0f - s));
  *dup = dy * g * s;
}

static void ck_swiglu(const float* gate, const float* up, float* y, int64_t n) {
#pragma omp parallel for if (n > PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++) y[i] = swiglu_of(gate[i], up[i]);
}

static void ck_swiglu_backward(const float* gate, const float* up, const float* dy, float* dgate, float* dup, int64_t n) {
#pragma omp parallel for if (n > PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++) swiglu_grads(gate[i], up[i], dy[i], dgate + i, dup + i);
}

// SwiGLU keeping gate and up for the backward pass in bf16 (g16, u16), as mixed precision keeps
// activations: the output from the float32 inputs, the gradients later from the rounded ones.
static void ck_swiglu_saving_bf16(const float* gate, const float* up, float* y, uint16_t* g16, uint16_t* u16, int64_t n) {
#pragma omp parallel for if (n > PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++) {
    y[i] = swiglu_of(gate[i], up[i]);
    g16[i] = ck_bf16_bits(gate[i]);
    u16[i] = ck_bf16_bits(up[i]);
  }
}

static void ck_swiglu_backward_bf16(const uint16_t* g16, const uint16_t* u16, const float* dy, float* dgate, float* dup, int64_t n) {
#pragma omp parallel for if (n > PAR_MIN / 4)
  for (int64_t i = 0; i < n; i++) swiglu_grads(ck_bf16_float(g16[i]), ck_bf16_float(u16[i]), dy[i], dgate + i, dup + i);
}

// ---- grouped-query attention ----
// q [B, T, H * hd], k and v [B, S, Hkv * hd] (heads side by side); query head h reads key/value
// head h / (H / Hkv) in place: no copies of the shared heads. out [B, T, H * hd]; probs
// [B, H, T, S] kept for the backward pass. causal >= 0: the queries sit at positions causal..
// causal + T - 1 of the keys (0 in training, the cache's length in decoding) and query i sees keys
// 0..causal + i; causal < 0: every key. keyBias: optional [B, S] added to the scores (padding).

static void ck_gqa_attention(const float* q, const float* k, const float* v, float* out, float* probs, int64_t B, int64_t T, int64_t S,
                             int64_t H, int64_t Hkv, int64_t hd, int64_t causal, const float* keyBias) {
  int64_t ldq = H * hd, ldk = Hkv * hd, group = H / Hkv;
  float scale = 1.0f / sqrtf((float)hd);
  for (int64_t b = 0; b < B; b++) {
    for (int64_t h = 0; h < H; h++) {
      int64_t g = h / group;
      const float* qh = q + b * T * ldq + h * hd;
      const float* kh = k + b * S * ldk + g * hd;
      const float* vh = v + b * S * ldk + g * hd;
      float* p = probs + (b * H + h) * T * S;
      ck_gemm(0, 1, T, S, hd, scale, qh, ldq, kh, ldk, 0.0f, p, S);
      parallel_softmax(p, T, S, causal, keyBias ? keyBias + b * S : NULL);
      ck_gemm(0, 0, T, hd, S, 1.0f, p, S, vh, ldk, 0.0f, out + b * T * ldq + h * hd, ldq);
    }
  }
}

// dV[g] = sum over the group's heads of P^T dOut; dQ = dS K[g]; dK[g] = sum of dS^T Q. The heads of
// a group accumulate into their shared dK and dV (beta 1), so those are zeroed first.
static int ck_gqa_attention_backward(const float* dout, const float* q, const float* k, const float* v, const float* probs, float* dq,
                                      float* dk, float* dv, int64_t B, int64_t T, int64_t S, int64_t H, int64_t Hkv, int64_t hd,
                                      int64_t causal) {
  int64_t ldq = H * hd, ldk = Hkv * hd, group = H / Hkv;
  float scale = 1.0f / sqrtf((float)hd);
  float* dp = malloc((size_t)(T * S) * sizeof(float));
  if (!dp) return -1;
  memset(dk, 0, (size_t)(B * S * ldk) * sizeof(float));
  memset(dv, 0, (size_t)(B * S * ldk) * sizeof(float));
  for (int64_t b = 0; b < B; b++) {
    for (int64_t h = 0; h < H; h++) {
      int64_t g = h / group;
      int64_t qo = b * T * ldq + h * hd, ko = b * S * ldk + g * hd;
      const float* p = probs + (b * H + h) * T * S;
      const float* dy = dout + qo;
      ck_gemm(1, 0, S, hd, T, 1.0f, p, S, dy, ldq, 1.0f, dv + ko, ldk);
      ck_gemm(0, 1, T, S, hd, 1.0f, dy, ldq, v + ko, ldk, 0.0f, dp, S);
      parallel_softmax_backward(dp, p, T, S, scale, causal);
      ck_gemm(0, 0, T, hd, S, 1.0f, dp, S, k + ko, ldk, 0.0f, dq + qo, ldq);
      ck_gemm(1, 0, S, hd, T, 1.0f, dp, S, q + qo, ldq, 1.0f, dk + ko, ldk);
    }
  }
  free(dp);
  return 0;
}
