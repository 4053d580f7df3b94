// The mask of dropout on attention weights, the same on every backend: the native flash kernel
// draws it inside its blocks (kernels_flash.c), the tfjs-op path builds it here. Weight (b, h, i, j)
// (query row i, key j) is kept iff (hash >>> 8) >= ceil(rate 2^24), where the hash is murmur3's
// 32-bit finaliser over the seed, the row (b H + h) T + i and j; kept weights are scaled by
// 1 / (1 - rate). Nothing is stored between the passes: the backward pass draws the mask again.

/** murmur3's 32-bit finaliser. */
function mix(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The hash key of query row `row` = (b H + h) T + i. */
function rowKey(seed: number, row: number): number {
  return mix(seed ^ mix(Math.imul(row >>> 0, 0x9e3779b9) + mix(Math.floor(row / 2 ** 32) + 0x7f4a7c15)));
}

/** [B, H, T, S] of 0 (dropped) and 1 / (1 - rate) (kept), for weights of T queries over S keys. */
export function attentionDropoutMask(B: number, H: number, T: number, S: number, rate: number, seed: number): Float32Array {
  const mask = new Float32Array(B * H * T * S);
  const threshold = Math.ceil(rate * 2 ** 24);
  const scale = Math.fround(1 / (1 - rate));
  for (let row = 0; row < B * H * T; row++) {
    const key = rowKey(seed >>> 0, row);
    const at = row * S;
    for (let j = 0; j < S; j++) if (mix(key + Math.imul(j, 0x9e3779b9)) >>> 8 >= threshold) mask[at + j] = scale;
  }
  return mask;
}
