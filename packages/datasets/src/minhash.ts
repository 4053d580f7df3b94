// Near-duplicate detection: MinHash signatures of each record's shingles, banded into an LSH
// index for candidates, and every candidate confirmed by the exact Jaccard similarity of the two
// shingle sets (so "near duplicate" means exactly "Jaccard >= threshold", not an estimate).
// Bands are chosen so that a pair exactly at the threshold becomes a candidate with probability
// >= 0.995; lower similarities cost only extra exact checks.
import { NEAR_DUPLICATE_DEFAULTS } from '@crucible/domain';

export interface NearDupOptions {
  /** Jaccard similarity at or above which a record is a near duplicate of an earlier one. */
  threshold: number;
  /** Shingle unit: words (default) or characters. */
  unit: 'word' | 'char';
  /** Shingle length in units (default 5 words / 5 characters). */
  n: number;
  /** Hash functions in a signature. */
  permutations: number;
}

export const NEAR_DUP_DEFAULTS: NearDupOptions = { ...NEAR_DUPLICATE_DEFAULTS, permutations: 128 };

/** 32-bit FNV-1a of a string. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's finalizer: a good 32-bit mix (one seeded "permutation" per seed). */
function mix(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The record's shingles as sorted unique 32-bit hashes (case and spacing ignored). */
export function shingles(text: string, unit: 'word' | 'char', n: number): Uint32Array {
  const norm = text.toLowerCase().replace(/\s+/g, ' ').trim();
  const set = new Set<number>();
  if (unit === 'word') {
    const words = norm.split(' ').filter(Boolean);
    if (words.length <= n) set.add(fnv1a(words.join(' ')));
    else for (let i = 0; i + n <= words.length; i++) set.add(fnv1a(words.slice(i, i + n).join(' ')));
  } else if (norm.length <= n) set.add(fnv1a(norm));
  else for (let i = 0; i + n <= norm.length; i++) set.add(fnv1a(norm.slice(i, i + n)));
  return Uint32Array.from(set).sort();
}

/** Exact Jaccard similarity of two sorted unique hash arrays. */
export function jaccard(a: Uint32Array, b: Uint32Array): number {
  let i = 0;
  let j = 0;
  let inter = 0;
  while (i < a.length && j < b.length) {
    const x = a[i] as number;
    const y = b[j] as number;
    if (x === y) {
      inter++;
      i++;
      j++;
    } else if (x < y) i++;
    else j++;
  }
  const union = a.length + b.length - inter;
  return union === 0 ? 1 : inter / union;
}

/** Rows per band: the most that still makes a pair at `threshold` a candidate with p >= 0.995. */
export function bandRows(threshold: number, permutations: number): { bands: number; rows: number } {
  let best = { bands: permutations, rows: 1 };
  for (let rows = 1; rows <= permutations; rows++) {
    if (permutations % rows !== 0) continue;
    const bands = permutations / rows;
    const p = 1 - (1 - threshold ** rows) ** bands;
    if (p >= 0.995) best = { bands, rows };
  }
  return best;
}

export interface NearDuplicate {
  /** The earlier record's key (as given to `add`). */
  of: number;
  similarity: number;
}

/** An index of kept records; `check` finds whether a new record nearly duplicates one of them. */
export class NearDuplicateIndex {
  private readonly seeds: Uint32Array;
  private readonly bands: number;
  private readonly rows: number;
  private readonly buckets = new Map<string, number[]>();
  private readonly sets = new Map<number, Uint32Array>();
  /** Exact comparisons made (for the report and the benchmark). */
  comparisons = 0;

  constructor(readonly options: NearDupOptions = NEAR_DUP_DEFAULTS) {
    if (!(options.threshold > 0 && options.threshold <= 1)) throw new RangeError('threshold must be in (0, 1]');
    this.seeds = Uint32Array.from({ length: options.permutations }, (_, i) => mix(0x9e3779b9 * (i + 1)));
    ({ bands: this.bands, rows: this.rows } = bandRows(options.threshold, options.permutations));
  }

  private signature(set: Uint32Array): Uint32Array {
    const sig = new Uint32Array(this.seeds.length).fill(0xffffffff);
    for (const x of set) {
      for (let k = 0; k < this.seeds.length; k++) {
        const h = mix(x ^ (this.seeds[k] as number));
        if (h < (sig[k] as number)) sig[k] = h;
      }
    }
    return sig;
  }

  private bandKeys(sig: Uint32Array): string[] {
    const out: string[] = [];
    for (let b = 0; b < this.bands; b++) out.push(`${b}:${Array.from(sig.subarray(b * this.rows, (b + 1) * this.rows)).join(',')}`);
    return out;
  }

  /**
   * The most similar earlier record at or above the threshold, or null; in that case the record
   * is added to the index under `key`.
   */
  checkAndAdd(key: number, text: string): NearDuplicate | null {
    const set = shingles(text, this.options.unit, this.options.n);
    const bandKeys = this.bandKeys(this.signature(set));
    let best: NearDuplicate | null = null;
    const seen = new Set<number>();
    for (const bk of bandKeys) {
      for (const other of this.buckets.get(bk) ?? []) {
        if (seen.has(other)) continue;
        seen.add(other);
        this.comparisons++;
        const sim = jaccard(set, this.sets.get(other) as Uint32Array);
        if (sim >= this.options.threshold && (!best || sim > best.similarity)) best = { of: other, similarity: sim };
      }
    }
    if (best) return best;
    this.sets.set(key, set);
    for (const bk of bandKeys) {
      const list = this.buckets.get(bk);
      if (list) list.push(key);
      else this.buckets.set(bk, [key]);
    }
    return null;
  }
}
