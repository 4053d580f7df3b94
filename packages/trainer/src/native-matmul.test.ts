// The OpenBLAS matrix-product kernel (when @crucible/native-kernels is built) against a plain
// JavaScript triple loop, for 2-D, batched and transposed products.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { backendChoice } from './backend';
import { randomTokens, useBackend } from './test-helpers';

beforeAll(useBackend);

function reference(a: number[][][], b: number[][][], ta: boolean, tb: boolean): number[][][] {
  return a.map((A, i) => {
    const B = b[i] as number[][];
    const at = (r: number, c: number) => (ta ? (A[c] as number[])[r] : (A[r] as number[])[c]) as number;
    const bt = (r: number, c: number) => (tb ? (B[c] as number[])[r] : (B[r] as number[])[c]) as number;
    const M = ta ? (A[0] as number[]).length : A.length;
    const K = ta ? A.length : (A[0] as number[]).length;
    const N = tb ? B.length : (B[0] as number[]).length;
    return Array.from({ length: M }, (_, r) =>
      Array.from({ length: N }, (_, c) => {
        let s = 0;
        for (let k = 0; k < K; k++) s += at(r, k) * bt(k, c);
        return s;
      }),
    );
  });
}

const values = (shape: number[], seed: number) =>
  Float32Array.from(
    randomTokens(
      shape.reduce((x, y) => x * y, 1),
      2001,
      seed,
    ),
    (v) => (v - 1000) / 500,
  );

describe('matrix products', () => {
  it.each([
    [[1, 5, 7], [1, 7, 3], false, false],
    [[4, 5, 7], [4, 7, 3], false, false],
    [[3, 7, 5], [3, 7, 4], true, false],
    [[3, 5, 7], [3, 4, 7], false, true],
    [[2, 7, 5], [2, 4, 7], true, true],
  ])('%j x %j (transposeA %s, transposeB %s) matches a triple loop', (sa, sb, ta, tb) => {
    const a = tf.tensor3d(values(sa, 1), sa as [number, number, number]);
    const b = tf.tensor3d(values(sb, 2), sb as [number, number, number]);
    const got = tf.matMul(a, b, ta, tb).arraySync() as number[][][];
    const want = reference(a.arraySync(), b.arraySync(), ta, tb);
    let worst = 0;
    got.forEach((m, i) => {
      m.forEach((row, r) => {
        row.forEach((v, c) => {
          worst = Math.max(worst, Math.abs(v - (want[i]?.[r]?.[c] as number)));
        });
      });
    });
    expect(got.flat(2)).toHaveLength(want.flat(2).length);
    expect(worst).toBeLessThan(1e-4);
  });

  it('reports which kernel ran', () => {
    // on machines with OpenBLAS headers the addon builds and the wasm backend uses it
    expect(['backend', 'native']).toContain(backendChoice()?.matmul);
  });
});
