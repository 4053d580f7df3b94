// Float32Arrays are row-major; every function checks array lengths against the shapes it is given.
/** The libraries a float32 product can run on: Crucible's own is always built in. */
export type GemmLibrary = 'crucible' | 'onednn' | 'openblas';

export interface NativeKernels {
  /** c[i] = op(a[i]) x op(b[i]) for i < batch; strides in elements. */
  sgemm(
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    batch: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    strideA: number,
    strideB: number,
  ): void;
  /**
   * c = alpha op(a) op(b) + beta c with leading dimensions (row-major; op(a) is M x K, op(b) K x N),
   * on the named library ('auto': the measured choice, in the precision set by setPrecision; a
   * library not built in runs Crucible's own; 'bf16': Crucible's bf16 kernel, operands rounded to
   * bf16 and float32 sums, which throws where the CPU has no AVX512-BF16). beta 0 never reads c.
   */
  gemm(
    library: GemmLibrary | 'auto' | 'bf16',
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Float32Array,
    lda: number,
    b: Float32Array,
    ldb: number,
    beta: number,
    c: Float32Array,
    ldc: number,
  ): void;
  /**
   * Crucible's bf16 product (throws without AVX512-BF16): c = alpha op(a) op(b) + beta c, each of a
   * and b a Float32Array (rounded to bf16 as it is packed) or a Uint16Array of bf16 values (an
   * activation saved in bf16); the same sums either way.
   */
  gemmBf16(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Float32Array | Uint16Array,
    lda: number,
    b: Float32Array | Uint16Array,
    ldb: number,
    beta: number,
    c: Float32Array,
    ldc: number,
  ): void;
  /** out[i] = x[i] rounded to bf16 (to nearest even; as the packing of the bf16 product rounds), i < n. */
  toBf16(x: Float32Array, out: Uint16Array, n: number): void;
  /**
   * Registers bf16 copies (toBf16) of float32 arrays, replacing the earlier registration ([] and []
   * clear it): a bf16 product on Crucible's kernel (setPrecision('bf16'), gemm 'auto', linear,
   * sgemm) whose operand lies inside arrays[i] reads copies[i] at the same offset instead of rounding
   * as it packs: the same numbers, half the reads, no rounding per product. The caller keeps both
   * alive and arrays[i] unchanged until it clears them (a training step's weights, between optimizer
   * updates). Returns how many are registered.
   */
  setBf16Copies(arrays: Float32Array[], copies: Uint16Array[]): number;
  /** The bf16 products that have read a registered copy since the addon loaded (for tests). */
  bf16CopyReads(): number;
  /**
   * linear, with x rounded to bf16 (toBf16) into x16 on the way: where the mode runs on Crucible's
   * bf16 kernel the product then packs x from x16 (half the bytes); the same numbers as linear's.
   */
  linearBf16Input(
    x: Float32Array,
    x16: Uint16Array,
    w: Float32Array,
    bias: Float32Array | null,
    y: Float32Array,
    m: number,
    k: number,
    n: number,
    transposedW: boolean,
  ): void;
  /** y[M, N] = x[M, K] w (+ bias[N]); w is [K, N], or [N, K] when transposedW. */
  linear(x: Float32Array, w: Float32Array, bias: Float32Array | null, y: Float32Array, m: number, k: number, n: number, transposedW: boolean): void;
  /** out[N] = column sums of x[M, N]. */
  colSum(x: Float32Array, out: Float32Array, m: number, n: number): void;
  /** out[i] = a[i] + b[i % nb]: b repeats over a's leading axes (nb = n: same shape; 1: a scalar). */
  add(a: Float32Array, b: Float32Array, out: Float32Array, n: number, nb: number): void;
  /** out[i] = a[i] * b[i % nb]. */
  mul(a: Float32Array, b: Float32Array, out: Float32Array, n: number, nb: number): void;
  sumSquares(x: Float32Array, n: number): number;
  /** GELU, tanh approximation. */
  gelu(x: Float32Array, y: Float32Array, n: number): void;
  geluBackward(x: Float32Array, dy: Float32Array, dx: Float32Array, n: number): void;
  /** gelu, keeping x rounded to bf16 (to nearest even) in x16 for the backward pass. */
  geluSavingBf16(x: Float32Array, y: Float32Array, x16: Uint16Array, n: number): void;
  /** geluBackward at the input kept in bf16 (geluSavingBf16's x16). */
  geluBackwardBf16(x16: Uint16Array, dy: Float32Array, dx: Float32Array, n: number): void;
  /** LayerNorm over rows of length c; writes y and each row's mean and 1/std. */
  layerNorm(
    x: Float32Array,
    g: Float32Array,
    b: Float32Array | null,
    y: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    rows: number,
    c: number,
    eps: number,
  ): void;
  layerNormBackward(
    dy: Float32Array,
    x: Float32Array,
    g: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    dx: Float32Array,
    dg: Float32Array,
    db: Float32Array | null,
    rows: number,
    c: number,
  ): void;
  /** Multi-head attention: qkv [B, T, 3 * nh * hs] (q, k, v side by side), out [B, T, nh * hs], probs [B, nh, T, T]; keyBias [B, T] is added to the scores. */
  attention(
    qkv: Float32Array,
    out: Float32Array,
    probs: Float32Array,
    B: number,
    T: number,
    nh: number,
    hs: number,
    causal: boolean,
    keyBias: Float32Array | null,
  ): void;
  attentionBackward(
    dout: Float32Array,
    qkv: Float32Array,
    probs: Float32Array,
    dqkv: Float32Array,
    B: number,
    T: number,
    nh: number,
    hs: number,
    causal: boolean,
  ): void;
  /** RMSNorm over rows of length c: y = x / sqrt(mean(x^2) + eps) * w; writes each row's 1/rms. */
  rmsNorm(x: Float32Array, w: Float32Array, y: Float32Array, rstd: Float32Array, rows: number, c: number, eps: number): void;
  rmsNormBackward(dy: Float32Array, x: Float32Array, w: Float32Array, rstd: Float32Array, dx: Float32Array, dw: Float32Array, rows: number, c: number): void;
  /**
   * Rotary position embeddings in Hugging Face's rotate_half layout over x [B, T, n, hd] with cos and
   * sin tables [T, hd]; `backward` applies the transposed rotation (the gradient).
   */
  rope(x: Float32Array, cos: Float32Array, sin: Float32Array, y: Float32Array, B: number, T: number, n: number, hd: number, backward: boolean): void;
  /** y = silu(gate) * up. */
  swiglu(gate: Float32Array, up: Float32Array, y: Float32Array, n: number): void;
  swigluBackward(gate: Float32Array, up: Float32Array, dy: Float32Array, dgate: Float32Array, dup: Float32Array, n: number): void;
  /** swiglu, keeping gate and up rounded to bf16 (to nearest even) in g16 and u16 for the backward pass. */
  swigluSavingBf16(gate: Float32Array, up: Float32Array, y: Float32Array, g16: Uint16Array, u16: Uint16Array, n: number): void;
  /** swigluBackward at the inputs kept in bf16 (swigluSavingBf16's g16 and u16). */
  swigluBackwardBf16(g16: Uint16Array, u16: Uint16Array, dy: Float32Array, dgate: Float32Array, dup: Float32Array, n: number): void;
  /**
   * Grouped-query attention: q [B, T, H * hd], k and v [B, S, Hkv * hd] (heads side by side; query
   * head h reads key/value head h / (H / Hkv), no copies), out [B, T, H * hd], probs [B, H, T, S].
   * causal >= 0: the queries are positions causal.. of the keys and see keys up to their own; -1:
   * every key. keyBias [B, S] is added to the scores.
   */
  gqaAttention(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    out: Float32Array,
    probs: Float32Array,
    B: number,
    T: number,
    S: number,
    H: number,
    Hkv: number,
    hd: number,
    causal: number,
    keyBias: Float32Array | null,
  ): void;
  gqaAttentionBackward(
    dout: Float32Array,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    probs: Float32Array,
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    B: number,
    T: number,
    S: number,
    H: number,
    Hkv: number,
    hd: number,
    causal: number,
  ): void;
  /** Weighted mean cross-entropy; writes its gradient into dlogits; returns the loss. */
  crossEntropy(logits: Float32Array, targets: Int32Array, weights: Float32Array | null, dlogits: Float32Array, n: number, v: number): number;
  /** One optimizer update in place. kind: 0 AdamW, 1 Adam (L2), 2 LAMB; bc1/bc2 are the bias corrections. */
  adamUpdate(
    p: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    n: number,
    kind: 0 | 1 | 2,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    bc1: number,
    bc2: number,
    gradScale: number,
  ): void;
  /**
   * Attention without the probability tensor (online softmax over blocks of keys): every operand is
   * rows at a stride (ldq, ldk, ldo; a subarray of a fused qkv buffer for the multi-head layout).
   * q [B, T] rows of H heads of hd, k and v [B, S] rows of Hkv heads (query head h reads key head
   * h / (H / Hkv)); out like q at stride ldo; lse [B, H, T] each query row's log-sum-exp for the
   * backward pass. causal >= 0: the queries sit at key positions causal..; < 0: every key.
   * dropout (default 0) in [0, 1) drops attention weights with a mask hashed from seed (a uint32),
   * the query row (b, h, i) and the key: keep iff (mix(...) >>> 8) >= ceil(dropout * 2^24).
   * keyStart [B, T] (packed rows): the first key each query may see (its example's first position).
   */
  flashAttention(
    q: Float32Array,
    ldq: number,
    k: Float32Array,
    v: Float32Array,
    ldk: number,
    out: Float32Array,
    ldo: number,
    lse: Float32Array,
    b: number,
    t: number,
    s: number,
    h: number,
    hkv: number,
    hd: number,
    causal: number,
    keyBias: Float32Array | null,
    dropout?: number,
    seed?: number,
    keyStart?: Int32Array | null,
  ): void;
  /**
   * Gradients of flashAttention (recomputing the probabilities and the dropout mask): dq at q's
   * stride, dk and dv at k's; overwritten. q, k, v and out are all Float32Arrays, or all
   * Uint16Arrays of their bf16 values (what a bf16 training step keeps, at the same strides).
   */
  flashAttentionBackward(
    dout: Float32Array,
    q: Float32Array | Uint16Array,
    ldq: number,
    k: Float32Array | Uint16Array,
    v: Float32Array | Uint16Array,
    ldk: number,
    out: Float32Array | Uint16Array,
    ldo: number,
    lse: Float32Array,
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    b: number,
    t: number,
    s: number,
    h: number,
    hkv: number,
    hd: number,
    causal: number,
    keyBias: Float32Array | null,
    dropout?: number,
    seed?: number,
    keyStart?: Int32Array | null,
  ): void;
  /** Threads for the matrix products (every library) and the element-wise kernels. */
  setThreads(n: number): void;
  /** Keeps freed buffers (up to 32 MB) in the C heap for reuse rather than unmapping them (glibc). */
  retainFreedMemory(): void;
  /**
   * Mixed precision for matrix products (sgemm, linear, gemm 'auto'): 'bf16' rounds both operands
   * to bfloat16 and sums in float32, where the CPU has AVX512-BF16 (Crucible's kernel) or AMX-BF16
   * (oneDNN, where built in); products of at most 16 columns stay float32. Returns the precision now in force.
   */
  setPrecision(precision: 'float32' | 'bf16'): 'float32' | 'bf16';
  /**
   * Which library runs float32 products: 'auto' (the default) measures every library built in on
   * the first product of each shape class and keeps the fastest; a library's name pins it (one not
   * built in gives 'crucible'). Returns the choice in force; forgets the measured table.
   */
  setGemm(library: GemmLibrary | 'auto'): GemmLibrary | 'auto';
  /** The shape classes measured so far (m, n, k: the sizes' power-of-two ceilings), each library's GFLOP/s and the winner. */
  gemmTable(): Array<{ transA: boolean; transB: boolean; m: number; n: number; k: number; library: GemmLibrary; gflops: Partial<Record<GemmLibrary, number>> }>;
  /**
   * isa: the element-wise kernels' instruction set; blas: OpenBLAS's configuration (or that it is
   * not built in); gemmLibraries: the libraries built in; gemmIsa: the instruction set and tile of
   * Crucible's own product; gemm: the choice in force; bf16: what runs bf16 products
   * ("AVX512-BF16 on Crucible's kernel", "AMX-BF16 on oneDNN"), or "none (...)" and why.
   */
  info(): {
    isa: string;
    blas: string;
    gemmLibraries: GemmLibrary[];
    gemmIsa: string;
    gemm: GemmLibrary | 'auto';
    threads: number;
    features: Record<string, boolean>;
    bf16: string;
    precision: 'float32' | 'bf16';
    /** Whether products now read the copies setBf16Copies registers (bf16 on Crucible's kernel). */
    bf16Copies: boolean;
  };
}
/** The addon when it was built (a C compiler present at install), else null. */
export const native: NativeKernels | null;
