// Batches from a token stream. Causal LM: random windows of T+1 tokens, inputs x = w[0..T),
// targets y = w[1..T] (nanoGPT's get_batch). Masked LM: windows of T tokens with BERT masking.
// A batch may carry per-token loss weights `w` (0 = no loss at that position; used for SFT masks).

import type { PackedRows } from './packing';
import { Rng, type RngState } from './rng';

export interface Batch {
  B: number;
  T: number;
  /** Inputs, B*T token ids, row-major. */
  x: Int32Array;
  /** Targets, B*T token ids. */
  y: Int32Array;
  /** Optional per-token loss weights, B*T. Absent means every position counts. */
  w?: Float32Array;
  /** Packed examples (packing.ts): their segments and positions; attention stays within each. */
  packing?: PackedRows;
}

export interface MaskingConfig {
  /** Share of eligible tokens selected for prediction. Default 0.15. */
  probability: number;
  maskId: number;
  vocabSize: number;
  /** Ids never selected nor drawn as random replacements (special tokens). */
  specialIds: ReadonlySet<number>;
}

import type { Objective } from '@crucible/training-config';

export type { Objective };

/** A source of training batches whose position can be saved and restored. */
export class BatchSource {
  private readonly rng: Rng;

  constructor(
    private readonly tokens: Int32Array,
    private readonly B: number,
    private readonly T: number,
    private readonly objective: Objective,
    seed: number | RngState,
    private readonly masking?: MaskingConfig,
    /** Per-token loss weights aligned with `tokens` (causal only): a target's weight is its token's. */
    private readonly weights?: Float32Array,
  ) {
    if (weights && weights.length !== tokens.length) throw new RangeError('weights must align with tokens');
    const need = objective === 'causal' ? T + 1 : T;
    if (tokens.length < need) {
      throw new RangeError(`the data has ${tokens.length} tokens; a ${objective} window needs at least ${need}`);
    }
    if (objective === 'mlm' && !masking) throw new Error('mlm batches need a masking config');
    this.rng = new Rng(seed);
  }

  /** The next batch; `shape` overrides the batch size and window length for this one batch. */
  next(shape?: { B: number; T: number }): Batch {
    const { tokens } = this;
    const B = shape?.B ?? this.B;
    const T = shape?.T ?? this.T;
    const span = this.objective === 'causal' ? T + 1 : T;
    const x = new Int32Array(B * T);
    const y = new Int32Array(B * T);
    const w = this.weights && this.objective === 'causal' ? new Float32Array(B * T) : undefined;
    for (let b = 0; b < B; b++) {
      const start = this.rng.int(tokens.length - span + 1);
      if (this.objective === 'causal') {
        x.set(tokens.subarray(start, start + T), b * T);
        y.set(tokens.subarray(start + 1, start + T + 1), b * T);
        w?.set((this.weights as Float32Array).subarray(start + 1, start + T + 1), b * T);
      } else x.set(tokens.subarray(start, start + T), b * T);
    }
    if (this.objective === 'causal') return w ? { B, T, x, y, w } : { B, T, x, y };
    return applyMasking(x, this.masking as MaskingConfig, this.rng, B, T);
  }

  /** The data position: the RNG state that decides every later window and mask. */
  state(): RngState {
    return this.rng.state();
  }
}

/**
 * BERT masking: each eligible token is selected with `probability`; a selected token becomes
 * the mask token 80% of the time, a random token 10%, and stays itself 10%. Targets are the
 * original tokens, and only selected positions carry loss weight.
 */
export function applyMasking(input: Int32Array, m: MaskingConfig, rng: Rng, B: number, T: number): Batch {
  const x = Int32Array.from(input);
  const y = Int32Array.from(input);
  const w = new Float32Array(input.length);
  for (let i = 0; i < input.length; i++) {
    if (m.specialIds.has(input[i] as number) || rng.next() >= m.probability) continue;
    w[i] = 1;
    const r = rng.next();
    if (r < 0.8) x[i] = m.maskId;
    else if (r < 0.9) x[i] = randomNonSpecial(m, rng);
  }
  return { B, T, x, y, w };
}

function randomNonSpecial(m: MaskingConfig, rng: Rng): number {
  for (;;) {
    const id = rng.int(m.vocabSize);
    if (!m.specialIds.has(id)) return id;
  }
}

/** A fixed set of evaluation batches (the same windows and masks at every evaluation). */
export function evalBatches(
  tokens: Int32Array,
  B: number,
  T: number,
  n: number,
  objective: Objective,
  seed: number,
  masking?: MaskingConfig,
  weights?: Float32Array,
): Batch[] {
  const src = new BatchSource(tokens, B, T, objective, seed, masking, weights);
  return Array.from({ length: n }, () => src.next());
}

/** Splits a token stream: the first `trainFraction` for training, the rest for validation. */
export function trainValSplit(tokens: Int32Array, trainFraction = 0.9): { train: Int32Array; val: Int32Array } {
  const n = Math.floor(tokens.length * trainFraction);
  return { train: tokens.subarray(0, n), val: tokens.subarray(n) };
}
