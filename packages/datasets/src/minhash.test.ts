import { describe, expect, it } from 'vitest';
import { bandRows, jaccard, NearDuplicateIndex, shingles } from './minhash';

const words = (ids: number[]) => ids.map((i) => `w${i}`).join(' ');
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('near-duplicate detection', () => {
  it('computes exact Jaccard similarity of shingle sets', () => {
    const a = shingles(words(range(1, 9)), 'word', 1);
    const b = shingles(words([...range(1, 8), 10]), 'word', 1);
    expect(jaccard(a, b)).toBeCloseTo(8 / 10, 12); // |A∩B| = 8, |A∪B| = 10
  });

  it('chooses bands that catch a pair at the threshold with high probability', () => {
    const { bands, rows } = bandRows(0.8, 128);
    expect(bands * rows).toBe(128);
    expect(1 - (1 - 0.8 ** rows) ** bands).toBeGreaterThanOrEqual(0.995);
  });

  // Pairs with known Jaccard similarities (word 1-grams): at the threshold (8/10 = 0.8), just
  // above (9/10 and 0.8125 = 13/16), just below (7/9 ≈ 0.778 and 12/16 = 0.75).
  it.each([
    ['at the threshold', range(1, 9), [...range(1, 8), 10], true],
    ['well above', range(1, 10), range(1, 9), true],
    ['just above', range(1, 15), [...range(1, 13), 16], true], // 13 / 16
    ['just below', range(1, 8), [...range(1, 7), 9], false], // 7 / 9
    ['below', range(1, 14), [...range(1, 12), 15, 16], false], // 12 / 16
  ])('%s', (_label, a, b, dup) => {
    const idx = new NearDuplicateIndex({ threshold: 0.8, unit: 'word', n: 1, permutations: 128 });
    expect(idx.checkAndAdd(1, words(a as number[]))).toBeNull();
    const r = idx.checkAndAdd(2, words(b as number[]));
    if (dup) expect(r).toMatchObject({ of: 1 });
    else expect(r).toBeNull();
  });

  it('finds a near copy among many different records', () => {
    const idx = new NearDuplicateIndex();
    const base = 'the quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat by the door';
    for (let i = 0; i < 200; i++)
      expect(
        idx.checkAndAdd(
          i,
          `record ${i}: ${range(i * 100, i * 100 + 20)
            .map((k) => `token${k}`)
            .join(' ')}`,
        ),
      ).toBeNull();
    expect(idx.checkAndAdd(1000, base)).toBeNull();
    expect(idx.checkAndAdd(1001, `${base}.`)).toMatchObject({ of: 1000 });
    expect(idx.comparisons).toBeLessThan(50);
  });
});
