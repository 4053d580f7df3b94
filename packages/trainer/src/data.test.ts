import { describe, expect, it } from 'vitest';
import { applyMasking, BatchSource, trainValSplit } from './data';
import { Rng } from './rng';

describe('batches', () => {
  it('causal windows: targets are the inputs shifted by one', () => {
    const tokens = Int32Array.from({ length: 100 }, (_, i) => i);
    const b = new BatchSource(tokens, 3, 8, 'causal', 1).next();
    for (let r = 0; r < 3; r++) {
      for (let t = 0; t < 8; t++) expect(b.y[r * 8 + t]).toBe((b.x[r * 8 + t] as number) + 1);
    }
  });

  it('the same seed or saved state gives the same windows', () => {
    const tokens = Int32Array.from({ length: 1000 }, (_, i) => i);
    const a = new BatchSource(tokens, 2, 4, 'causal', 7);
    a.next();
    const state = a.state();
    const b = new BatchSource(tokens, 2, 4, 'causal', state);
    expect(b.next()).toEqual(a.next());
  });

  it('says how many tokens a window needs when the data is too short', () => {
    expect(() => new BatchSource(new Int32Array(8), 1, 8, 'causal', 1)).toThrow(/has 8 tokens; a causal window needs at least 9/);
  });

  it('splits 90/10 by default', () => {
    const { train, val } = trainValSplit(new Int32Array(100));
    expect([train.length, val.length]).toEqual([90, 10]);
  });
});

describe('BERT masking', () => {
  it('selects ~15% of non-special tokens: 80% mask, 10% random, 10% kept; loss only there', () => {
    const n = 200_000;
    const input = Int32Array.from({ length: n }, (_, i) => 5 + (i % 50)); // ids 5..54; 0..4 special
    input[0] = 1; // a special token is never selected
    const specialIds = new Set([0, 1, 2, 3, 4]);
    const b = applyMasking(input, { probability: 0.15, maskId: 2, vocabSize: 55, specialIds }, new Rng(3), 1, n);
    const w = b.w as Float32Array;
    let selected = 0;
    let masked = 0;
    let kept = 0;
    let random = 0;
    for (let i = 0; i < n; i++) {
      expect(b.y[i]).toBe(input[i]);
      if (w[i] === 0) {
        expect(b.x[i]).toBe(input[i]);
        continue;
      }
      selected++;
      if (b.x[i] === 2) masked++;
      else if (b.x[i] === input[i]) kept++;
      else {
        random++;
        expect(specialIds.has(b.x[i] as number)).toBe(false);
      }
    }
    expect(w[0]).toBe(0);
    expect(selected / n).toBeCloseTo(0.15, 2);
    expect(masked / selected).toBeCloseTo(0.8, 1);
    // a random draw can hit the original token (1 in 50), which then counts as kept
    expect(random / selected).toBeCloseTo(0.1 * (49 / 50), 2);
    expect(kept / selected).toBeCloseTo(0.1 + 0.1 / 50, 2);
  });
});

describe('loss masks', () => {
  it('causal windows carry the weight of each target token', () => {
    const tokens = Int32Array.from({ length: 50 }, (_, i) => i);
    const weights = Float32Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? 1 : 0));
    const b = new BatchSource(tokens, 2, 5, 'causal', 3, undefined, weights).next();
    for (let i = 0; i < 10; i++) expect(b.w?.[i]).toBe((b.y[i] as number) % 2 === 0 ? 1 : 0);
  });
});
