// The pure parts of data parallelism: a rank's rows of a global batch, the gradient average over
// buckets, and the loud failure on diverged parameters, with a group of ranks simulated in memory
// (the real one, Gloo between processes, is tested in test/data-parallel.test.ts).
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { type Collective, DataParallel, DivergenceError, parameterChecksum } from './data-parallel';

/** Rank `rank` of a group whose other ranks hold `others` (one buffer per call, in call order). */
function fakeGroup(rank: number, size: number, others: Float64Array[][]): Collective {
  let call = 0;
  return {
    rank,
    size,
    allreduce(buf, op = 'sum') {
      const theirs = others[call++] ?? [];
      for (const t of theirs) {
        for (let i = 0; i < buf.length; i++) {
          const [a, b] = [buf[i] as number, t[i] as number];
          buf[i] = op === 'sum' ? a + b : op === 'min' ? Math.min(a, b) : Math.max(a, b);
        }
      }
      return buf;
    },
    broadcast(buf) {
      return buf;
    },
  };
}

describe('DataParallel', () => {
  it('gives each rank its own rows of the global batch, weights and packing included', () => {
    const B = 4;
    const T = 2;
    const batch = {
      B,
      T,
      x: Int32Array.from({ length: B * T }, (_, i) => i),
      y: Int32Array.from({ length: B * T }, (_, i) => 100 + i),
      w: Float32Array.from({ length: B * T }, (_, i) => i / 10),
      packing: { segments: Int32Array.from({ length: B * T }, (_, i) => i % 3), positions: Int32Array.from({ length: B * T }, (_, i) => i % 2) },
    };
    const r1 = new DataParallel(fakeGroup(1, 2, [])).shard(batch);
    expect(r1.B).toBe(2);
    expect([...r1.x]).toEqual([4, 5, 6, 7]);
    expect([...r1.y]).toEqual([104, 105, 106, 107]);
    expect([...(r1.w as Float32Array)]).toEqual([0.4, 0.5, 0.6, 0.7].map(Math.fround));
    expect([...(r1.packing?.segments ?? [])]).toEqual([1, 2, 0, 1]);
    expect(() => new DataParallel(fakeGroup(0, 3, [])).shard(batch)).toThrow(/does not split over 3 ranks/);
  });

  it('sums gradients over the ranks across bucket boundaries, a missing gradient counting as zeros', () => {
    tf.tidy(() => {
      const params = new Map([
        ['a', tf.variable(tf.zeros([3]), true, 'dp.a')],
        ['b', tf.variable(tf.zeros([2]), true, 'dp.b')],
      ]);
      // buckets of 2 floats: [a0 a1] [a2 b0] [b1 loss]; the other rank's gradients are a = 10, b = 20, loss 3
      const other = [
        [10, 10],
        [10, 20],
        [20, 3],
      ].map((v) => [Float64Array.from(v)]);
      const dp = new DataParallel(fakeGroup(0, 2, other), { bucketBytes: 8 });
      const grads = new Map<string, tf.Tensor>([['a', tf.tensor1d([2, 4, 6])]]);
      const [loss] = dp.allreduceSum(grads, params, [1]);
      expect([...(grads.get('a') as tf.Tensor).dataSync()]).toEqual([12, 14, 16]);
      expect([...(grads.get('b') as tf.Tensor).dataSync()]).toEqual([20, 20]);
      expect(loss).toBe(4);
      for (const v of params.values()) v.dispose();
    });
  });

  it('streams gradients in the order they become final, each bucket queued once filled, and waits at the end', () => {
    tf.tidy(() => {
      const params = new Map([
        ['a', tf.variable(tf.zeros([3]), true, 'dps.a')],
        ['b', tf.variable(tf.zeros([2]), true, 'dps.b')],
        ['c', tf.variable(tf.zeros([1]), true, 'dps.c')],
      ]);
      const queued: number[][] = [];
      let waited = 0;
      const group: Collective = {
        ...fakeGroup(0, 2, []),
        allreduceAsync(buf) {
          queued.push([...buf]);
          return () => {
            waited += 1;
            buf.set(buf.map((x) => x * 2)); // the other rank holds the same values
          };
        },
      };
      const dp = new DataParallel(group, { bucketBytes: 8 });
      const stream = dp.stream(params, 1);
      if (!stream) throw new Error('a group with allreduceAsync streams');
      stream.add('b', Float32Array.from([1, 2])); // b's gradient is final first
      expect(queued).toEqual([[1, 2]]); // a full bucket goes at once
      stream.add('a', Float32Array.from([3, 4, 5]));
      expect(queued).toEqual([
        [1, 2],
        [3, 4],
      ]);
      expect(waited).toBe(0);
      const grads = new Map<string, tf.Tensor>();
      const [loss] = stream.finish(grads, [0.5]); // c never got a gradient: zeros
      expect(queued.slice(2)).toEqual([[5, 0], [0.5]]);
      expect(waited).toBe(4);
      expect([...(grads.get('a') as tf.Tensor).dataSync()]).toEqual([6, 8, 10]);
      expect([...(grads.get('b') as tf.Tensor).dataSync()]).toEqual([2, 4]);
      expect([...(grads.get('c') as tf.Tensor).dataSync()]).toEqual([0]);
      expect(loss).toBe(1);
      expect(new DataParallel(fakeGroup(0, 2, [])).stream(params, 1)).toBeNull();
      for (const v of params.values()) v.dispose();
    });
  });

  it('fails loudly when another rank holds other parameters', () => {
    const params = new Map([['w', tf.variable(tf.tensor1d([1, 2, 3]), true, 'dp.w')]]);
    const mine = parameterChecksum(params);
    expect(mine[0]).toBe(6);
    const same = new DataParallel(fakeGroup(0, 2, [[Float64Array.from(mine)], [Float64Array.from(mine)]]));
    expect(() => same.verify(params, 7)).not.toThrow();
    const off = Float64Array.from([mine[0] + 1e-7, mine[1]]);
    const diverged = new DataParallel(fakeGroup(0, 2, [[off], [off]]));
    expect(() => diverged.verify(params, 7)).toThrow(DivergenceError);
    expect(() => new DataParallel(fakeGroup(0, 2, [[off], [off]])).verify(params, 7)).toThrow(/diverged at step 7/);
    for (const v of params.values()) v.dispose();
  });
});
