// A small seeded PRNG (sfc32, seeded through splitmix32) whose whole state is four uint32s,
// so data order, masking and sampling are reproducible and can be saved in a checkpoint.

export type RngState = [number, number, number, number];

export class Rng {
  private s: Uint32Array;

  constructor(seed: number | RngState) {
    if (Array.isArray(seed)) {
      this.s = Uint32Array.from(seed);
      return;
    }
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s = Uint32Array.from([next(), next(), next(), next()]);
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    const s = this.s;
    const t = ((((s[0] as number) + (s[1] as number)) >>> 0) + (s[3] as number)) >>> 0;
    s[3] = ((s[3] as number) + 1) >>> 0;
    s[0] = (s[1] as number) ^ ((s[1] as number) >>> 9);
    s[1] = ((s[2] as number) + ((s[2] as number) << 3)) >>> 0;
    s[2] = (((s[2] as number) << 21) | ((s[2] as number) >>> 11)) >>> 0;
    s[2] = ((s[2] as number) + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  state(): RngState {
    return [this.s[0] as number, this.s[1] as number, this.s[2] as number, this.s[3] as number];
  }
}

/** Mixes integers into one 31-bit seed (for per-step dropout seeds and the like). */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x01000193) >>> 0;
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
  }
  return h & 0x7fffffff;
}
