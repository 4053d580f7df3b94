// Attention without the [B, H, T, S] probability tensor (included by kernels.c): the forward pass
// walks the keys in blocks with an online softmax (a running maximum and sum per query, the partial
// output rescaled as the maximum grows) and keeps only each query row's log-sum-exp; the backward
// pass recomputes each block's probabilities from it (FlashAttention-2's order: Dao, 2023). Memory
// then grows linearly with the context instead of with its square.
//
// One kernel serves the fused multi-head layout (q, k and v side by side in rows of 3C) and grouped-
// query attention (query head h reads key/value head h / (H / Hkv) in place): every operand is given
// as a pointer and a row stride. Scores = scale q k^T + keyBias; causal >= 0 puts the queries at key
// positions causal.. (0 in training, the cache's length in decoding), < 0 lets every query see every
// key. Blocks of 128 queries and 128 keys (measured at gpt2-small's 4 x 1024: 12% faster than 64 x 64
// in float32 and 17% in bf16, fewer and larger block products); their products run on Crucible's own GEMM on the calling
// thread (the blocks themselves are spread over the threads), in bf16 in the mixed-precision mode
// (q, k, v, the probabilities and the output's gradient rounded as they enter a product; the
// softmax, its statistics and every sum stay float32), as FlashAttention runs in bf16. On Crucible's
// bf16 kernel the operands that many block products read (a head's K and V, a block of queries' Q
// and dO) are rounded and packed into the kernel's panels once, not by every product (flash_op):
// 12% off the backward pass and 5-8% off the forward at gpt2-small's shape, the same numbers.
//
// Packed rows (several examples in one row, attention never crossing an example) give keyStart
// [B, T]: the first key each query may see (its example's first position); the keys before it are
// skipped block by block, so a row of short examples costs what its examples do.
//
// Dropout on the attention weights is fused: each weight's keep/drop decision is a hash of the
// seed, its query row (b, h, i) and its key j (no mask is stored), so the backward pass draws the
// same mask again and the result does not depend on the blocking or the thread count. With
// Z = keep / (1 - rate): out = (P o Z) V; dV = (P o Z)^T dO; dP = (dO V^T) o Z; dS = P o (dP - D)
// with D = rowsum(dO o out) as without dropout (since out = (P o Z) V).

#define FLASH_BQ 128
#define FLASH_BK 128

// Dropout on the weights: keep iff (hash >> 8) >= threshold, threshold = ceil(rate * 2^24); kept
// weights are scaled by 1 / (1 - rate). on = 0: no dropout.
typedef struct {
  int on;
  uint32_t seed, threshold;
  float scale;
} flash_dropout;

static flash_dropout flash_dropout_of(double rate, uint32_t seed) {
  flash_dropout d = {0, seed, 0, 1.0f};
  if (rate > 0.0 && rate < 1.0) d.on = 1, d.threshold = (uint32_t)ceil(rate * 16777216.0), d.scale = (float)(1.0 / (1.0 - rate));
  return d;
}

// murmur3's 32-bit finaliser
static inline uint32_t flash_mix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x85ebca6bu;
  x ^= x >> 13;
  x *= 0xc2b2ae35u;
  x ^= x >> 16;
  return x;
}

// The hash key of query row `row` = (b H + h) T + i.
static inline uint32_t flash_row_key(uint32_t seed, uint64_t row) {
  return flash_mix(seed ^ flash_mix((uint32_t)row * 0x9e3779b9u + flash_mix((uint32_t)(row >> 32) + 0x7f4a7c15u)));
}

// z[0..n): the row's mask Z over keys j0..j0+n (0 or 1 / (1 - rate)).
static inline void flash_mask_row(float* z, int64_t n, int64_t j0, uint32_t key, const flash_dropout* d) {
  const uint32_t threshold = d->threshold, first = (uint32_t)j0;
  const float scale = d->scale;
  for (int64_t j = 0; j < n; j++) {
    uint32_t x = flash_mix(key + (first + (uint32_t)j) * 0x9e3779b9u);
    z[j] = (x >> 8) >= threshold ? scale : 0.0f;
  }
}

// An operand of a block product: its float32 rows (p, ld) and, where the block products run on
// Crucible's bf16 kernel, the same values already in the kernel's panels (packed: panel i at packed
// + i * stride, entries). Q, K, V and the output's gradient are packed once per head or per block of
// queries instead of once per block product: packing was a quarter of the bf16 kernel's time here.
typedef struct {
  const float* p;
  int64_t ld;
  const uint32_t* packed;
  int64_t stride;
} flash_op;

static inline flash_op flash_rows(const float* p, int64_t ld) { return (flash_op){p, ld, NULL, 0}; }

// C = alpha op(A) op(B) + beta C. From the panels when both operands have them, with the sums
// ck_gemm_own's bf16 product would make; else through ck_gemm_own (which keeps products of at most
// 16 columns in float32: so does this).
static inline void flash_product(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, flash_op A, flash_op B, float beta, float* C,
                                 int64_t ldc) {
  if (A.packed && B.packed && N > 16) ck_bf16_tiles(M, N, (K + 1) / 2, A.packed, A.stride, B.packed, B.stride, alpha, beta, C, ldc);
  else ck_gemm_own(ta, tb, M, N, K, alpha, A.p, A.ld, B.p, B.ld, beta, C, ldc);
}

// Whether the block products take packed operands: bf16 on Crucible's kernel, unless
// NATIVE_FLASH_PACKED=0 (the products then pack their operands themselves, the same sums: for tests).
static int flash_packs(void) {
  if (!ck_gemm_own_bf16()) return 0;
  const char* e = getenv("NATIVE_FLASH_PACKED");
  return !(e && e[0] == '0');
}

// Entries of a packed operand: `lines` rows of op(A) (width CK_BF16_MR) or columns of op(B)
// (CK_BF16_NR) over K values of k.
static inline int64_t flash_panels(int64_t lines, int64_t width, int64_t K) { return (lines + width - 1) / width * width * ((K + 1) / 2); }

// An operand from x's float32 rows (leading dimension ld), packed into dst when dst is given:
// op(A) of `rows` rows over K values of k (ta: x holds op(A) transposed), or op(B) of `cols` columns.
static inline flash_op flash_a(int ta, const float* x, int64_t ld, int64_t rows, int64_t K, uint32_t* dst) {
  flash_op o = flash_rows(x, ld);
  if (dst) ck_bf16_pack_a(ta, x, ld, rows, K, dst), o.packed = dst, o.stride = flash_panels(CK_BF16_MR, CK_BF16_MR, K);
  return o;
}

static inline flash_op flash_b(int tb, const float* x, int64_t ld, int64_t K, int64_t cols, uint32_t* dst) {
  flash_op o = flash_rows(x, ld);
  if (dst) ck_bf16_pack_b(tb, x, ld, K, cols, dst), o.packed = dst, o.stride = flash_panels(CK_BF16_NR, CK_BF16_NR, K);
  return o;
}

// Operands read whole by a head's products, packed once (per head): K^T for Q K^T (columns: keys;
// k: the head's dims; key block j0, a multiple of 128, starts at panel j0 / NR), V for P V and K for
// dS K (columns: the head's dims; k: keys; key block j0 starts at pair j0 / 2). packed NULL: none.
static inline flash_op flash_keys_t(const uint32_t* packed, const float* kh, int64_t ldk, int64_t j0, int64_t hd) {
  return (flash_op){kh + j0 * ldk, ldk, packed ? packed + j0 / CK_BF16_NR * flash_panels(CK_BF16_NR, CK_BF16_NR, hd) : NULL,
                    flash_panels(CK_BF16_NR, CK_BF16_NR, hd)};
}

static inline flash_op flash_along_keys(const uint32_t* packed, const float* xh, int64_t ldk, int64_t j0, int64_t S) {
  return (flash_op){xh + j0 * ldk, ldk, packed ? packed + j0 / 2 * CK_BF16_NR : NULL, flash_panels(CK_BF16_NR, CK_BF16_NR, S)};
}

// The first block of keys any of the nq queries may see: 0, or with packed rows the block holding
// the smallest of their first keys.
static inline int64_t first_key_block(const int32_t* start, int64_t nq) {
  if (!start) return 0;
  int64_t lo = start[0];
  for (int64_t i = 1; i < nq; i++) lo = start[i] < lo ? start[i] : lo;
  return lo / FLASH_BK * FLASH_BK;
}

// One block of queries of one head: out rows and their log-sum-exp. Scratch: s [BQ * BK], acc [BQ * hd];
// with packed operands (kp, vp: the head's K^T and V, flash_keys_t and flash_along_keys) also qa and
// pa, for the queries' and the probabilities' panels.
static void flash_forward_block(const float* qh, int64_t ldq, const float* kh, const float* vh, int64_t ldk, const uint32_t* kp,
                                const uint32_t* vp, float* oh, int64_t ldo, float* lse, int64_t i0, int64_t nq, int64_t S, int64_t hd, int64_t causal,
                                const float* bias, float scale, float* s, float* acc, uint32_t* qa, uint32_t* pa, uint64_t row0,
                                const flash_dropout* drop, const int32_t* start) {
  float m[FLASH_BQ], l[FLASH_BQ];
  for (int64_t i = 0; i < nq; i++) m[i] = -INFINITY, l[i] = 0.0f;
  memset(acc, 0, (size_t)(nq * hd) * sizeof(float));
  flash_op q = flash_a(0, qh, ldq, nq, hd, kp ? qa : NULL);
  int64_t kend = keys_seen(i0 + nq - 1, S, causal);
  for (int64_t j0 = first_key_block(start, nq); j0 < kend; j0 += FLASH_BK) {
    int64_t nk = kend - j0 < FLASH_BK ? kend - j0 : FLASH_BK;
    flash_product(0, 1, nq, nk, hd, scale, q, flash_keys_t(kp, kh, ldk, j0, hd), 0.0f, s, FLASH_BK);
    for (int64_t i = 0; i < nq; i++) {
      float* r = s + i * FLASH_BK;
      int64_t seen = keys_seen(i0 + i, S, causal) - j0;
      int64_t n = seen < nk ? seen : nk;
      int64_t lo = start && start[i] > j0 ? start[i] - j0 : 0;  // keys lo..n of the block
      if (n <= lo) {  // this query sees none of these keys
        for (int64_t j = 0; j < nk; j++) r[j] = 0.0f;
        continue;
      }
      if (bias)
        for (int64_t j = lo; j < n; j++) r[j] += bias[j0 + j];
      float mx;
      float sum = exp_shifted(r + lo, r + lo, n - lo, &mx);
      for (int64_t j = 0; j < lo; j++) r[j] = 0.0f;
      for (int64_t j = n; j < nk; j++) r[j] = 0.0f;
      float mnew = mx > m[i] ? mx : m[i];
      // rescale what came before to the new maximum, and this block's terms to it too
      float old = m[i] == -INFINITY ? 0.0f : exp_approx(m[i] - mnew), now = exp_approx(mx - mnew);
      for (int64_t j = lo; j < n; j++) r[j] *= now;
      if (drop->on) {  // l keeps the undropped sum
        float z[FLASH_BK];
        flash_mask_row(z, n, j0, flash_row_key(drop->seed, row0 + (uint64_t)i), drop);
        for (int64_t j = 0; j < n; j++) r[j] *= z[j];
      }
      float* a = acc + i * hd;
      for (int64_t d = 0; d < hd; d++) a[d] *= old;
      l[i] = l[i] * old + sum * now;
      m[i] = mnew;
    }
    flash_product(0, 0, nq, hd, nk, 1.0f, flash_a(0, s, FLASH_BK, nq, nk, kp ? pa : NULL), flash_along_keys(vp, vh, ldk, j0, S), 1.0f, acc, hd);
  }
  for (int64_t i = 0; i < nq; i++) {
    float inv = 1.0f / l[i];
    for (int64_t d = 0; d < hd; d++) oh[i * ldo + d] = acc[i * hd + d] * inv;
    lse[i] = m[i] + logf(l[i]);
  }
}

// One head's K^T and V packed for the forward pass (flash_keys_t, flash_along_keys). Entries:
// flash_panels(S, NR, hd) and flash_panels(hd, NR, S).
static void flash_pack_head(const float* kh, const float* xh, int64_t ldk, int64_t S, int64_t hd, uint32_t* kt, uint32_t* x) {
  ck_bf16_pack_b(1, kh, ldk, hd, S, kt);
  ck_bf16_pack_b(0, xh, ldk, S, hd, x);
}

// out [B, T] rows of stride ldo (head h at h * hd); lse [B, H, T]. Returns -1 when scratch could not
// be allocated (before writing anything).
static int ck_flash_attention(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldk, float* out, int64_t ldo, float* lse,
                              int64_t B, int64_t T, int64_t S, int64_t H, int64_t Hkv, int64_t hd, int64_t causal, const float* keyBias,
                              const int32_t* keyStart, double dropout, uint32_t seed) {
  int64_t group = H / Hkv, blocks = (T + FLASH_BQ - 1) / FLASH_BQ, units = B * H * blocks;
  float scale = 1.0f / sqrtf((float)hd);
  flash_dropout drop = flash_dropout_of(dropout, seed);
  int parallel = units > 1 && (T * S * hd) * B * H > PAR_MIN;
  // with packed operands: every head's K^T and V first (a pass of their own, over the threads)
  int64_t ktn = flash_panels(S, CK_BF16_NR, hd), vn = flash_panels(hd, CK_BF16_NR, S);
  uint32_t* heads = flash_packs() ? aligned_alloc(64, (size_t)(B * Hkv * (ktn + vn)) * sizeof(uint32_t)) : NULL;
  if (heads) {
#pragma omp parallel for schedule(static) if (parallel && B * Hkv > 1)
    for (int64_t u = 0; u < B * Hkv; u++)
      flash_pack_head(k + u / Hkv * S * ldk + u % Hkv * hd, v + u / Hkv * S * ldk + u % Hkv * hd, ldk, S, hd, heads + u * (ktn + vn),
                      heads + u * (ktn + vn) + ktn);
  }
  size_t scratch = (size_t)(FLASH_BQ * FLASH_BK + FLASH_BQ * hd) * sizeof(float) +
                   (heads ? (size_t)(flash_panels(FLASH_BQ, CK_BF16_MR, hd) + flash_panels(FLASH_BQ, CK_BF16_MR, FLASH_BK)) * sizeof(uint32_t) : 0);
  int failed = 0;
#pragma omp parallel if (parallel) reduction(| : failed)
  {
    float* s = malloc(scratch);
    uint32_t* qa = s && heads ? (uint32_t*)(s + FLASH_BQ * FLASH_BK + FLASH_BQ * hd) : NULL;
    uint32_t* pa = qa ? qa + flash_panels(FLASH_BQ, CK_BF16_MR, hd) : NULL;
    if (!s) failed = 1;
#pragma omp for schedule(dynamic)
    for (int64_t u = 0; u < units; u++) {
      if (!s) continue;
      int64_t b = u / (H * blocks), h = u / blocks % H, i0 = u % blocks * FLASH_BQ;
      int64_t nq = T - i0 < FLASH_BQ ? T - i0 : FLASH_BQ, g = h / group;
      const uint32_t* kp = heads ? heads + (b * Hkv + g) * (ktn + vn) : NULL;
      flash_forward_block(q + (b * T + i0) * ldq + h * hd, ldq, k + b * S * ldk + g * hd, v + b * S * ldk + g * hd, ldk, kp, kp ? kp + ktn : NULL,
                          out + (b * T + i0) * ldo + h * hd, ldo, lse + (b * H + h) * T + i0, i0, nq, S, hd, causal, keyBias ? keyBias + b * S : NULL,
                          scale, s, s + FLASH_BQ * FLASH_BK, qa, pa, (uint64_t)((b * H + h) * T + i0), &drop, keyStart ? keyStart + b * T + i0 : NULL);
    }
    free(s);
  }
  free(heads);
  return failed ? -1 : 0;
}

// The next n entries of a scratch block, kept 64-byte aligned.
static inline uint32_t* flash_carve(uint32_t** at, int64_t n) {
  uint32_t* p = *at;
  *at += (n + 15) / 16 * 16;
  return p;
}

// rows x cols bf16 values (row stride ld) as float32 rows of stride cols
static void flash_widen(const uint16_t* x, int64_t ld, int64_t rows, int64_t cols, float* dst) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) dst[r * cols + c] = ck_bf16_float(x[r * ld + c]);
}

// Gradients of q, k and v from dout, the inputs, the forward output and its log-sum-exp. dq has q's
// layout (ldq), dk and dv k's (ldk); they are overwritten. With saved_bf16, q, k, v and out are the
// bf16 copies a training step kept (uint16, the same strides): each head's K and V and each block's
// Q and output are widened to float32 as they are reached, so the products (which round them to
// bf16 anyway) give the same sums; D = rowsum(dout o out) reads the rounded output. Each thread owns whole key/value heads
// (b, g): the query heads of a group add into their shared dk and dv without races. With packed
// operands, a thread packs its head's K (twice: K^T for the scores, K along keys for dS K) and V^T
// once, and each block of queries' Q and dO (as rows of a product and along the queries) once.
// Returns -1 when scratch could not be allocated.
static int ck_flash_attention_backward(const float* dout, const void* q_, int64_t ldq, const void* k_, const void* v_, int64_t ldk,
                                       const void* out_, int64_t ldo, const float* lse, float* dq, float* dk, float* dv, int64_t B, int64_t T,
                                       int64_t S, int64_t H, int64_t Hkv, int64_t hd, int64_t causal, const float* keyBias,
                                       const int32_t* keyStart, double dropout, uint32_t seed, int saved_bf16) {
  const float *q = saved_bf16 ? NULL : q_, *k = saved_bf16 ? NULL : k_, *v = saved_bf16 ? NULL : v_, *out = saved_bf16 ? NULL : out_;
  // (widened: a head's K and V, a block of queries' Q and output)
  const uint16_t *q16 = saved_bf16 ? q_ : NULL, *k16 = saved_bf16 ? k_ : NULL, *v16 = saved_bf16 ? v_ : NULL, *out16 = saved_bf16 ? out_ : NULL;
  // widened rows read at these strides: a head's K and V, a block's Q (hd each when widened)
  const int64_t ldkr = saved_bf16 ? hd : ldk, ldqr = saved_bf16 ? hd : ldq, ldor = saved_bf16 ? hd : ldo;
  int64_t group = H / Hkv, units = B * Hkv;
  float scale = 1.0f / sqrtf((float)hd);
  flash_dropout drop = flash_dropout_of(dropout, seed);
  const int64_t MR = CK_BF16_MR, NR = CK_BF16_NR, BQ = FLASH_BQ, BK = FLASH_BK;
  int packs = flash_packs();
  // packed scratch per thread: the head's K^T, V^T, K along keys; a query block's Q and dO as rows
  // (k: dims) and along the queries; a key block's P^T, dS and dS^T as rows
  int64_t per_head = flash_panels(S, NR, hd) * 2 + flash_panels(hd, NR, S), per_queries = flash_panels(BQ, MR, hd) * 2 + flash_panels(hd, NR, BQ) * 2,
          per_block = flash_panels(BK, MR, BQ) * 2 + flash_panels(BQ, MR, BK), packed = packs ? per_head + per_queries + per_block + 16 * 10 : 0;
  int failed = 0;
#pragma omp parallel if (units > 1 && (T * S * hd) * B * H > PAR_MIN) reduction(| : failed)
  {
    size_t wide = saved_bf16 ? (size_t)(2 * S * hd + 2 * FLASH_BQ * hd) : 0;
    float* p = malloc((size_t)(2 * FLASH_BQ * FLASH_BK + wide) * sizeof(float));
    float* ds = p ? p + FLASH_BQ * FLASH_BK : NULL;
    float* kw = p && saved_bf16 ? ds + FLASH_BQ * FLASH_BK : NULL;
    float* vw = kw ? kw + S * hd : NULL;
    float* qw = vw ? vw + S * hd : NULL;
    float* ow = qw ? qw + FLASH_BQ * hd : NULL;
    uint32_t* scratch = packed ? aligned_alloc(64, (size_t)packed * sizeof(uint32_t)) : NULL;
    float D[FLASH_BQ];
    if (!p || (packed && !scratch)) failed = 1;
    uint32_t *kt = NULL, *vt = NULL, *ka = NULL, *qa = NULL, *da = NULL, *db = NULL, *qb = NULL, *pt = NULL, *dsa = NULL, *dst = NULL;
    if (scratch) {
      uint32_t* at = scratch;
      kt = flash_carve(&at, flash_panels(S, NR, hd)), vt = flash_carve(&at, flash_panels(S, NR, hd)), ka = flash_carve(&at, flash_panels(hd, NR, S));
      db = flash_carve(&at, flash_panels(hd, NR, BQ)), qb = flash_carve(&at, flash_panels(hd, NR, BQ));
      qa = flash_carve(&at, flash_panels(BQ, MR, hd)), da = flash_carve(&at, flash_panels(BQ, MR, hd));
      pt = flash_carve(&at, flash_panels(BK, MR, BQ)), dst = flash_carve(&at, flash_panels(BK, MR, BQ)), dsa = flash_carve(&at, flash_panels(BQ, MR, BK));
    }
#pragma omp for schedule(dynamic)
    for (int64_t u = 0; u < units; u++) {
      if (!p || (packed && !scratch)) continue;
      int64_t b = u / Hkv, g = u % Hkv;
      const float* kh = kw ? kw : k + b * S * ldk + g * hd;
      const float* vh = vw ? vw : v + b * S * ldk + g * hd;
      if (kw) {
        flash_widen(k16 + b * S * ldk + g * hd, ldk, S, hd, kw);
        flash_widen(v16 + b * S * ldk + g * hd, ldk, S, hd, vw);
      }
      float* dkh = dk + b * S * ldk + g * hd;
      float* dvh = dv + b * S * ldk + g * hd;
      const float* bias = keyBias ? keyBias + b * S : NULL;
      if (scratch) {
        ck_bf16_pack_b(1, kh, ldkr, hd, S, kt);
        ck_bf16_pack_b(1, vh, ldkr, hd, S, vt);
        ck_bf16_pack_b(0, kh, ldkr, S, hd, ka);
      }
      for (int64_t j = 0; j < S; j++) {
        memset(dkh + j * ldk, 0, (size_t)hd * sizeof(float));
        memset(dvh + j * ldk, 0, (size_t)hd * sizeof(float));
      }
      for (int64_t h = g * group; h < (g + 1) * group; h++) {
        for (int64_t t = 0; t < T; t++) memset(dq + (b * T + t) * ldq + h * hd, 0, (size_t)hd * sizeof(float));
        for (int64_t i0 = 0; i0 < T; i0 += FLASH_BQ) {
          int64_t nq = T - i0 < FLASH_BQ ? T - i0 : FLASH_BQ;
          const float* qh = qw ? qw : q + (b * T + i0) * ldq + h * hd;
          if (qw) flash_widen(q16 + (b * T + i0) * ldq + h * hd, ldq, nq, hd, qw);
          const float* doh = dout + (b * T + i0) * ldo + h * hd;
          const float* oh = ow ? ow : out + (b * T + i0) * ldo + h * hd;
          if (ow) flash_widen(out16 + (b * T + i0) * ldo + h * hd, ldo, nq, hd, ow);
          const float* L = lse + (b * H + h) * T + i0;
          float* dqh = dq + (b * T + i0) * ldq + h * hd;
          for (int64_t i = 0; i < nq; i++) {  // D = rowsum(dout * out): the softmax's correction term
            float d = 0.0f;
            for (int64_t e = 0; e < hd; e++) d += doh[i * ldo + e] * oh[i * ldor + e];
            D[i] = d;
          }
          // (the panels are NULL without packed operands: flash_a and flash_b then pack nothing)
          flash_op qRows = flash_a(0, qh, ldqr, nq, hd, qa), doRows = flash_a(0, doh, ldo, nq, hd, da);
          flash_op qAlong = flash_b(0, qh, ldqr, nq, hd, qb), doAlong = flash_b(0, doh, ldo, nq, hd, db);
          const int32_t* start = keyStart ? keyStart + b * T + i0 : NULL;
          int64_t kend = keys_seen(i0 + nq - 1, S, causal);
          for (int64_t j0 = first_key_block(start, nq); j0 < kend; j0 += FLASH_BK) {
            int64_t nk = kend - j0 < FLASH_BK ? kend - j0 : FLASH_BK;
            // the block's probabilities again, from the scores and the row's log-sum-exp
            flash_product(0, 1, nq, nk, hd, scale, qRows, flash_keys_t(kt, kh, ldkr, j0, hd), 0.0f, p, FLASH_BK);
            for (int64_t i = 0; i < nq; i++) {
              float* r = p + i * FLASH_BK;
              int64_t seen = keys_seen(i0 + i, S, causal) - j0;
              int64_t n = seen < nk ? (seen > 0 ? seen : 0) : nk;
              int64_t lo = start && start[i] > j0 ? start[i] - j0 : 0;
              if (lo > n) lo = n;
              for (int64_t j = 0; j < lo; j++) r[j] = 0.0f;
              for (int64_t j = lo; j < n; j++) r[j] = exp_approx(r[j] + (bias ? bias[j0 + j] : 0.0f) - L[i]);
              for (int64_t j = n; j < nk; j++) r[j] = 0.0f;
            }
            flash_product(0, 1, nq, nk, hd, 1.0f, doRows, flash_keys_t(vt, vh, ldkr, j0, hd), 0.0f, ds, FLASH_BK);  // dO V^T
            for (int64_t i = 0; i < nq; i++) {
              float *r = p + i * FLASH_BK, *d = ds + i * FLASH_BK;
              if (drop.on) {  // dP = (dO V^T) o Z, and P o Z for dV
                float z[FLASH_BK];
                flash_mask_row(z, nk, j0, flash_row_key(drop.seed, (uint64_t)((b * H + h) * T + i0 + i)), &drop);
                for (int64_t j = 0; j < nk; j++) {
                  d[j] = r[j] * (d[j] * z[j] - D[i]) * scale;
                  r[j] *= z[j];
                }
              } else {
                for (int64_t j = 0; j < nk; j++) d[j] = r[j] * (d[j] - D[i]) * scale;
              }
            }
            flash_op pT = flash_a(1, p, FLASH_BK, nk, nq, pt), dsRows = flash_a(0, ds, FLASH_BK, nq, nk, dsa), dsT = flash_a(1, ds, FLASH_BK, nk, nq, dst);
            flash_product(1, 0, nk, hd, nq, 1.0f, pT, doAlong, 1.0f, dvh + j0 * ldk, ldk);  // dV += (P o Z)^T dO
            flash_product(0, 0, nq, hd, nk, 1.0f, dsRows, flash_along_keys(ka, kh, ldkr, j0, S), 1.0f, dqh, ldq);  // dQ += dS K
            flash_product(1, 0, nk, hd, nq, 1.0f, dsT, qAlong, 1.0f, dkh + j0 * ldk, ldk);  // dK += dS^T Q
          }
        }
      }
    }
    free(p);
    free(scratch);
  }
  return failed ? -1 : 0;
}
