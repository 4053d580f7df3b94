export interface NativeKernels {
  /** c[i] = op(a[i]) x op(b[i]) for i < batch (row-major float32); strides in elements. */
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
  setThreads(n: number): void;
}
/** The addon when it was built (OpenBLAS headers present at install), else null. */
export const native: NativeKernels | null;
