// How much of the machine a training run uses: the useful work of a step in floating-point
// operations, against the matrix-product peak measured in the same process at the same threads.
//
// Work per token (the accounting of the PaLM paper's appendix B, counting a multiply-add as 2):
// - the linear layers: 2 N forward and 2 N for the gradient of the inputs, where N counts every
//   parameter that multiplies activations (the embedding's rows are looked up, not multiplied, but a
//   tied embedding is the language-model head, so it counts); plus 2 N_trainable for the gradients
//   of the weights: 6 N in full training, 4 N + 2 N_trainable with a frozen base (LoRA);
// - attention: 4 L T d forward (scores and the weighted sum over T keys, d = heads x head size) and
//   8 L T d backward = 12 L T d, counted over every key as the kernels compute them (no causal halving).
import { nativeKernels } from '../src/native-backend';

export interface StepShape {
  /** every parameter (position embeddings, looked up rather than multiplied, are a small overcount) */
  params: number;
  /** parameters that receive gradients */
  trainable: number;
  layers: number;
  dModel: number;
  /** tokens of context each query attends over */
  seqLen: number;
}

export function flopsPerToken(s: StepShape): number {
  return 4 * s.params + 2 * s.trainable + 12 * s.layers * s.seqLen * s.dModel;
}

/**
 * The best float32 matrix product this process can run at its current thread count: square
 * 2048 products on every library built into the native addon, best of three each. Undefined
 * without the addon.
 */
export function sgemmPeak(): { gflops: number; library: string } | undefined {
  const k = nativeKernels();
  if (!k) return undefined;
  const n = 2048;
  const a = Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const c = new Float32Array(n * n);
  let best = { gflops: 0, library: '' };
  for (const library of k.info().gemmLibraries) {
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      k.gemm(library, false, false, n, n, n, 1, a, n, a, n, 0, c, n);
      const gflops = (2 * n ** 3) / ((performance.now() - t0) / 1000) / 1e9;
      if (gflops > best.gflops) best = { gflops, library };
    }
  }
  return best;
}

/** "123.4 GFLOP/s, 71% of the sgemm peak (173.0 GFLOP/s, onednn)" */
export function utilisation(flopsPerTok: number, tokensPerSecond: number, peak: { gflops: number; library: string } | undefined): string {
  const gflops = (flopsPerTok * tokensPerSecond) / 1e9;
  return `${gflops.toFixed(1)} GFLOP/s${peak ? `, ${((100 * gflops) / peak.gflops).toFixed(0)}% of the sgemm peak (${peak.gflops.toFixed(1)} GFLOP/s, ${peak.library})` : ''}`;
}
