// Backend choice, and the embedding gradient (gather -> UnsortedSegmentSum) on the chosen backend
// against a hand-computed scatter-add. Each test file runs in its own process, so the choice is fresh.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { BACKEND_ORDER, backendChoice, initBackend } from './backend';

describe('initBackend', () => {
  it('takes the first backend that loads, in the documented order, and says why it skipped others', async () => {
    const logs: string[] = [];
    const choice = await initBackend('auto', (m) => logs.push(m));
    expect(BACKEND_ORDER.slice(0, BACKEND_ORDER.indexOf(choice.name))).toEqual(choice.skipped.map((s) => s.name));
    for (const s of choice.skipped) expect(s.reason.length).toBeGreaterThan(0);
    expect(logs[0]).toMatch(new RegExp(`^tfjs backend: ${choice.name}`));
    expect(backendChoice()).toBe(choice);
    expect(tf.getBackend()).toBe(choice.name === 'tensorflow-gpu' ? 'tensorflow' : choice.name);
  });

  it('computes the embedding gradient as a scatter-add of the rows picked', () => {
    const table = tf.variable(tf.zeros([4, 2]));
    const idx = tf.tensor1d([3, 1, 3, 0, 3], 'int32');
    const upstream = tf.tensor2d([
      [1, 2],
      [3, 4],
      [5, 6],
      [7, 8],
      [9, 10],
    ]);
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(tf.gather(table, idx), upstream)) as tf.Scalar, [table]);
    // row 0 <- [7, 8]; row 1 <- [3, 4]; row 2 <- nothing; row 3 <- [1,2] + [5,6] + [9,10]
    expect(grads[table.name]?.arraySync()).toEqual([
      [7, 8],
      [3, 4],
      [0, 0],
      [15, 18],
    ]);
  });
});
