// The text_similarity grader's metrics, each a score in [0, 1] (1: identical).

/** Longest common subsequence length of two sequences (O(|a| x |b|) time, O(|b|) memory). */
export function lcsLength<T>(a: readonly T[], b: readonly T[]): number {
  let prev = new Int32Array(b.length + 1);
  let row = new Int32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      row[j] = a[i - 1] === b[j - 1] ? (prev[j - 1] as number) + 1 : Math.max(prev[j] as number, row[j - 1] as number);
    }
    [prev, row] = [row, prev];
  }
  return prev[b.length] as number;
}

/** Character similarity as rapidfuzz's ratio / 100: 2 x LCS / (|a| + |b|) over code points; two empty texts are identical. */
export function fuzzyMatch(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  if (x.length + y.length === 0) return 1;
  return (2 * lcsLength(x, y)) / (x.length + y.length);
}

/** Words split on white space (BLEU's and GLEU's tokens). */
export const words = (s: string): string[] => s.split(/\s+/).filter(Boolean);

/** ROUGE's tokens: lower case, runs of letters and digits. */
export const rougeWords = (s: string): string[] => s.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];

function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join('\u0000');
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}

/** Matches of n-grams counted with clipping: each n-gram at most as often as the other side has it. */
function overlap(a: Map<string, number>, b: Map<string, number>): number {
  let m = 0;
  for (const [k, c] of a) m += Math.min(c, b.get(k) ?? 0);
  return m;
}

/**
 * Sentence BLEU: the geometric mean of the clipped n-gram precisions for n = 1..N with
 * N = min(4, |hypothesis|, |reference|) (a short answer is scored on the n-grams it can have),
 * times the brevity penalty exp(1 - r / c) when the hypothesis is shorter. 0 when a precision is 0.
 */
export function bleu(hypothesis: string, reference: string): number {
  const h = words(hypothesis);
  const r = words(reference);
  if (h.length === 0 || r.length === 0) return h.length === r.length ? 1 : 0;
  const N = Math.min(4, h.length, r.length);
  let logSum = 0;
  for (let n = 1; n <= N; n++) {
    const p = overlap(ngramCounts(h, n), ngramCounts(r, n)) / (h.length - n + 1);
    if (p === 0) return 0;
    logSum += Math.log(p) / N;
  }
  const bp = h.length < r.length ? Math.exp(1 - r.length / h.length) : 1;
  return bp * Math.exp(logSum);
}

/** Google-BLEU (Wu et al., 2016): over all 1..4-grams, min(matches / hypothesis n-grams, matches / reference n-grams). */
export function gleu(hypothesis: string, reference: string): number {
  const h = words(hypothesis);
  const r = words(reference);
  let matches = 0;
  let hTotal = 0;
  let rTotal = 0;
  for (let n = 1; n <= 4; n++) {
    matches += overlap(ngramCounts(h, n), ngramCounts(r, n));
    hTotal += Math.max(0, h.length - n + 1);
    rTotal += Math.max(0, r.length - n + 1);
  }
  if (hTotal === 0 || rTotal === 0) return hTotal === rTotal ? 1 : 0;
  return Math.min(matches / hTotal, matches / rTotal);
}

const f1 = (matches: number, a: number, b: number) => (matches === 0 ? 0 : (2 * matches) / (a + b));

/** ROUGE-N F1: clipped n-gram matches over the n-grams of each side. */
export function rougeN(hypothesis: string, reference: string, n: number): number {
  const h = rougeWords(hypothesis);
  const r = rougeWords(reference);
  const hn = Math.max(0, h.length - n + 1);
  const rn = Math.max(0, r.length - n + 1);
  if (hn === 0 || rn === 0) return hn === rn && h.length === r.length ? 1 : 0;
  return f1(overlap(ngramCounts(h, n), ngramCounts(r, n)), hn, rn);
}

/** ROUGE-L F1: the longest common subsequence of words over each side's length. */
export function rougeL(hypothesis: string, reference: string): number {
  const h = rougeWords(hypothesis);
  const r = rougeWords(reference);
  if (h.length === 0 || r.length === 0) return h.length === r.length ? 1 : 0;
  return f1(lcsLength(h, r), h.length, r.length);
}

/** Cosine similarity of two vectors, clamped to [0, 1] (opposite directions score 0); 0 for a zero vector. */
export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += (a[i] as number) * (b[i] as number);
    na += (a[i] as number) ** 2;
    nb += (b[i] as number) ** 2;
  }
  if (na === 0 || nb === 0) return 0;
  return Math.max(0, Math.min(1, dot / Math.sqrt(na * nb)));
}
