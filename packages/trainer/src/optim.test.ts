import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { globalNorm, Optimizer } from './optim';
import { useBackend } from './test-helpers';

beforeAll(useBackend);

function setup() {
  const params = new Map<string, tf.Variable>([
    ['w', tf.variable(tf.tensor2d([[0.5, -1.0]]), true)], // matrix: decayed
    ['b', tf.variable(tf.tensor1d([2.0]), true)], // bias: never decayed
  ]);
  const grads = new Map<string, tf.Tensor>([
    ['w', tf.tensor2d([[0.1, 0.3]])],
    ['b', tf.tensor1d([-0.2])],
  ]);
  return { params, grads };
}

const values = (p: tf.Variable) => [...(p.dataSync() as Float32Array)];

describe('optimizers, one step against hand-computed values', () => {
  it('AdamW: decoupled decay on matrices only', () => {
    const { params, grads } = setup();
    const opt = new Optimizer({ kind: 'adamw', beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
    const lr = 0.01;
    opt.step(params, grads, lr);
    // step 1: m = 0.1 g, v = 0.01 g^2, m_hat = g, v_hat = g^2 -> direction g / (|g| + eps) = sign(g)
    // w: 0.5 * (1 - 0.01 * 0.1) - 0.01 * 1 = 0.4895 ; -1 * (1 - 0.001) - 0.01 * 1 = -1.009
    // b: 2 - 0.01 * (-1) = 2.01 (no decay)
    const w = values(params.get('w') as tf.Variable);
    expect(w[0]).toBeCloseTo(0.4895, 6);
    expect(w[1]).toBeCloseTo(-1.009, 6);
    expect(values(params.get('b') as tf.Variable)[0]).toBeCloseTo(2.01, 6);
    // second step with the same gradient: m = 0.19 g, v = 0.0199 g^2; bias corrections 0.19 and 0.0199
    opt.step(params, grads, lr);
    const w2 = values(params.get('w') as tf.Variable);
    expect(w2[0]).toBeCloseTo(0.4895 * (1 - 0.001) - 0.01, 5);
    expect(opt.t).toBe(2);
  });

  it('Adam: L2 penalty added to the gradient (torch.optim.Adam semantics)', () => {
    const { params, grads } = setup();
    const opt = new Optimizer({ kind: 'adam', beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.5 });
    opt.step(params, grads, 0.1);
    // w[0]: g' = 0.1 + 0.5 * 0.5 = 0.35 > 0 -> 0.5 - 0.1 = 0.4 ; w[1]: g' = 0.3 - 0.5 = -0.2 -> -1 + 0.1 = -0.9
    const w = values(params.get('w') as tf.Variable);
    expect(w[0]).toBeCloseTo(0.4, 6);
    expect(w[1]).toBeCloseTo(-0.9, 6);
  });

  it('LAMB: the update is scaled by the trust ratio ||w|| / ||r||', () => {
    const { params, grads } = setup();
    const opt = new Optimizer({ kind: 'lamb', beta1: 0.9, beta2: 0.999, eps: 1e-6, weightDecay: 0.01 });
    const lr = 0.1;
    opt.step(params, grads, lr);
    // w: adam direction ~ sign(g) = [1, 1] (eps 1e-6 on |g| ~ 0.1: direction g/(|g|+1e-6))
    const d0 = 0.1 / (0.1 + 1e-6);
    const d1 = 0.3 / (0.3 + 1e-6);
    const r: [number, number] = [d0 + 0.01 * 0.5, d1 + 0.01 * -1.0];
    const wNorm = Math.hypot(0.5, -1.0);
    const rNorm = Math.hypot(r[0], r[1]);
    const trust = wNorm / rNorm;
    const w = values(params.get('w') as tf.Variable);
    expect(w[0]).toBeCloseTo(0.5 - lr * trust * r[0], 5);
    expect(w[1]).toBeCloseTo(-1.0 - lr * trust * r[1], 5);
    // b: no decay; r = -0.2/(0.2+1e-6); trust = |2| / |r|
    const rb = -0.2 / (0.2 + 1e-6);
    expect(values(params.get('b') as tf.Variable)[0]).toBeCloseTo(2 - lr * (2 / Math.abs(rb)) * rb, 5);
  });

  it('global norm is sqrt of the sum of squares over all gradients', () => {
    const { grads } = setup();
    expect(globalNorm(grads.values())).toBeCloseTo(Math.sqrt(0.01 + 0.09 + 0.04), 6);
  });

  it('gradScale multiplies the gradients first (clipping)', () => {
    const a = setup();
    const b = setup();
    const cfg = { kind: 'adam' as const, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
    new Optimizer(cfg).step(a.params, a.grads, 0.1, 0.5);
    new Optimizer(cfg).step(b.params, new Map([...b.grads].map(([k, g]) => [k, tf.mul(g, 0.5)])), 0.1);
    expect(values(a.params.get('w') as tf.Variable)).toEqual(values(b.params.get('w') as tf.Variable));
  });
});
